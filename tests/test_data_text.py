"""keras_gen.data with text=True: every captioned source yields (images, captions) with each
image beside its own caption; bad captions fail with a message that says what to do; the tinted
Fashion-MNIST sets hold their held-out pairs out and the colour judge reads colours back."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_gen import data

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def collect(ds):
    """All batches of a dataset, concatenated per component (NumPy)."""
    parts = list(zip(*[[np.asarray(c) for c in batch] for batch in ds]))
    return [np.concatenate(p) for p in parts]


def numbered_images(n, size=6, channels=1):
    """Image i is filled with level 10 * i, so a caption can be checked against its image."""
    return np.stack([np.full((size, size, channels), 10 * i, np.uint8) for i in range(n)])


def captions_for(n):
    return [f"image number {i}, a \"quoted\" caption" for i in range(n)]


def check_pairing(images, captions, levels_per_image=10):
    for x, c in zip(images, captions):
        i = int(round(float(x.max()) * 255)) // levels_per_image
        assert c.decode().startswith(f"image number {i},"), (i, c)


# -- npz ---------------------------------------------------------------------------------------


def test_npz_captions_keep_each_image_with_its_caption(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, x=numbered_images(12), text=np.array(captions_for(12)),
             y=np.arange(12) % 3)
    ds = data.load(f"npz:{path}", text=True, batch_size=5, shuffle=True, seed=1)
    images, captions = collect(ds)  # first epoch
    first_images, first_captions = next(iter(ds))
    assert first_images.dtype == tf.float32 and first_images.shape == (5, 6, 6, 1)
    assert first_captions.dtype == tf.string and first_captions.shape == (5,)
    assert sorted(captions.tolist()) == sorted(c.encode() for c in captions_for(12))
    check_pairing(images, captions)
    _, again = collect(data.load(f"npz:{path}", text=True, batch_size=5, shuffle=True, seed=1))
    np.testing.assert_array_equal(again, captions)  # the seed repeats the order
    _, captions, labels = collect(data.load(f"npz:{path}", text=True, with_labels=True,
                                            shuffle=False, split="train[4:8]"))
    assert captions.tolist() == [c.encode() for c in captions_for(12)[4:8]]
    np.testing.assert_array_equal(labels, np.arange(4, 8) % 3)


def test_npz_caption_errors(tmp_path):
    no_text = tmp_path / "no_text.npz"
    np.savez(no_text, x=numbered_images(3))
    with pytest.raises(data.DataError, match="has no captions.*'text'.*text=False"):
        data.load(f"npz:{no_text}", text=True)
    data.load(f"npz:{no_text}")  # fine without text
    short = tmp_path / "short.npz"
    np.savez(short, x=numbered_images(3), text=np.array(["a", "b"]))
    with pytest.raises(data.DataError, match="3 images but 2 captions"):
        data.load(f"npz:{short}", text=True)
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=numbered_images(3), text=np.array(["a bag", "  ", "a coat"]))
    with pytest.raises(data.DataError, match=r"empty caption.*text\[1\]"):
        data.load(f"npz:{empty}", text=True)
    numbers = tmp_path / "numbers.npz"
    np.savez(numbers, x=numbered_images(3), text=np.arange(3))
    with pytest.raises(data.DataError, match="1-D array of strings"):
        data.load(f"npz:{numbers}", text=True)


# -- folders -----------------------------------------------------------------------------------


def write_images(folder, n, channels=3):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, x in enumerate(numbered_images(n, channels=channels)):
        name = f"img_{i:02d}.png"
        Image.fromarray(x if channels == 3 else x[..., 0]).save(folder / name)
        names.append(name)
    return names


def write_jsonl(folder, names, captions):
    with open(folder / "metadata.jsonl", "w") as f:
        for name, caption in zip(names, captions):
            f.write(json.dumps({"file_name": name, "text": caption}) + "\n")


def write_csv(folder, names, captions):
    with open(folder / "captions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "text"])
        writer.writerows(zip(names, captions))


@pytest.mark.parametrize("write", [write_jsonl, write_csv])
def test_folder_captions(tmp_path, write):
    names = write_images(tmp_path / "pics", 7)
    # Listed out of file order, with commas and quotes (csv quoting), in a sub-folder path.
    order = [3, 0, 6, 1, 5, 2, 4]
    write(tmp_path / "pics", [names[i] for i in order], [captions_for(7)[i] for i in order])
    ds = data.load(f"folder:{tmp_path / 'pics'}", text=True, batch_size=3, shuffle=False)
    images, captions = collect(ds)
    assert images.shape == (7, 6, 6, 3)
    assert captions.tolist() == [captions_for(7)[i].encode() for i in order]
    check_pairing(images, captions)
    assert data.info(f"folder:{tmp_path / 'pics'}", text=True).num_examples == 7


def test_folder_caption_splits(tmp_path):
    for split, n in (("train", 5), ("test", 2)):
        names = write_images(tmp_path / split, n, channels=1)
        write_jsonl(tmp_path / split, names, captions_for(n))
    test_images, test_captions = collect(
        data.load(f"folder:{tmp_path}", split="test", text=True, shuffle=False))
    assert test_images.shape == (2, 6, 6, 1)
    check_pairing(test_images, test_captions)
    i = data.info(f"folder:{tmp_path}", split="train[:60%]", text=True)
    assert (i.num_examples, i.splits) == (3, ("test", "train"))
    with pytest.raises(data.DataError, match="validation.*found"):
        data.load(f"folder:{tmp_path}", split="validation", text=True)


def test_folder_caption_errors(tmp_path):
    names = write_images(tmp_path / "pics", 3)
    folder = f"folder:{tmp_path / 'pics'}"
    with pytest.raises(data.DataError, match="no caption file.*metadata.jsonl.*captions.csv"):
        data.load(folder, text=True)
    write_jsonl(tmp_path / "pics", names[:2], ["a bag", "a coat"])
    with pytest.raises(data.DataError, match=r"1 image\(s\).*no caption.*img_02.png"):
        data.load(folder, text=True)
    write_jsonl(tmp_path / "pics", names + ["gone.png"], ["a bag", "a coat", "a shirt", "x"])
    with pytest.raises(data.DataError, match="do not exist.*gone.png"):
        data.load(folder, text=True)
    write_jsonl(tmp_path / "pics", names, ["a bag", "", "a shirt"])
    with pytest.raises(data.DataError, match="empty caption.*metadata.jsonl line 2"):
        data.load(folder, text=True)
    (tmp_path / "pics" / "metadata.jsonl").unlink()
    write_csv(tmp_path / "pics", names, ["a bag", "a coat", " "])
    with pytest.raises(data.DataError, match="empty caption.*captions.csv line 4"):
        data.load(folder, text=True)
    (tmp_path / "pics" / "captions.csv").write_text("name,caption\nimg_00.png,a bag\n")
    with pytest.raises(data.DataError, match="'file_name' and 'text'"):
        data.load(folder, text=True)


def test_text_on_a_source_without_captions_says_which_to_use():
    with pytest.raises(data.DataError, match="no captions.*'fashion_mnist_10k_captions'"):
        data.load("fashion_mnist_10k", text=True)
    with pytest.raises(data.DataError, match="no captions.*fashion_mnist_captions:/some/where"):
        data.load("idx:/some/where", text=True)
    with pytest.raises(data.DataError, match="no captions"):
        data.load("digits", text=True)


# -- tinted Fashion-MNIST ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tinted():
    """Both splits of the bundled set as levels, with labels, in file order."""
    out = {}
    for split in ("train", "unseen"):
        ds = data.load("fashion_mnist_10k_captions", split=split, text=True, with_labels=True,
                       image_range="levels", shuffle=False, batch_size=2048)
        out[split] = collect(ds)
    return out


def test_tinted_set_shapes_ranges_and_captions(tinted):
    images, captions, classes, colours = tinted["train"]
    assert images.shape[1:] == (28, 28, 3) and images.dtype == np.int32
    assert len(images) + len(tinted["unseen"][0]) == 10_000
    assert images.min() == 0 and images.max() == 255
    for c, k, col in zip(captions[:200], classes[:200], colours[:200]):
        c = c.decode()
        assert data.CAPTION_CLASS_NOUNS[k] in c and data.CAPTION_COLOURS[col] in c
    phrasings = {c.decode().replace(data.CAPTION_COLOURS[col], "{colour}")
                 .replace(data.CAPTION_CLASS_NOUNS[k], "{noun}")
                 for c, k, col in zip(captions, classes, colours)}
    assert len(phrasings) >= len(data.CAPTION_TEMPLATES)  # several phrasings, a/an both
    assert data.caption(7, 0) == "a red sneaker" and data.caption(9, 4, 1) == "an ankle boot in orange"
    unit = next(iter(data.load("fashion_mnist_10k_captions", text=True, batch_size=64)))[0]
    assert unit.dtype == tf.float32 and 0.0 <= float(tf.reduce_min(unit)) <= float(tf.reduce_max(unit)) <= 1.0


def test_unseen_pairs_are_never_in_train_and_all_in_unseen(tinted):
    unseen = {(data.CAPTION_CLASS_NOUNS.index(n), data.CAPTION_COLOURS.index(c))
              for n, c in data.UNSEEN_CAPTION_PAIRS}
    assert 8 <= len(unseen) <= 12
    _, _, classes, colours = tinted["train"]
    train_pairs = set(zip(classes.tolist(), colours.tolist()))
    assert not train_pairs & unseen
    # Every class and every colour is still seen in training, with other partners.
    assert {k for k, _ in train_pairs} == set(range(10))
    assert {c for _, c in train_pairs} == set(range(len(data.CAPTION_COLOURS)))
    _, captions, classes, colours = tinted["unseen"]
    assert set(zip(classes.tolist(), colours.tolist())) == unseen
    assert data.is_unseen_pair(classes, colours).all()


def test_tinting_keeps_the_garment_and_the_judge_reads_the_colour(tinted):
    grey, labels = collect(data.load("fashion_mnist_10k", image_range="levels",
                                     with_labels=True, shuffle=False, batch_size=2048))
    keep = ~data.is_unseen_pair(labels, data.caption_colours(np.arange(10_000)))
    images, _, classes, colours = tinted["train"]
    np.testing.assert_array_equal(classes, labels[keep])
    np.testing.assert_array_equal(colours, data.caption_colours(np.flatnonzero(keep)))
    # The luminance comes back exactly (every colour has a channel at 1) ...
    np.testing.assert_array_equal(data.garment_luminance(images), grey[keep])
    # ... and so does the colour, from levels and from [0, 1] floats alike.
    assert (data.judge_colour(images) == colours).mean() >= 0.995
    assert (data.judge_colour(images[:500] / 255.0) == colours[:500]).mean() >= 0.995
    unseen_images, _, _, unseen_colours = tinted["unseen"]
    assert (data.judge_colour(unseen_images) == unseen_colours).mean() >= 0.995
    # The judge is not answering one colour: each colour is read back where it was painted.
    assert len(np.unique(data.judge_colour(images))) == len(data.CAPTION_COLOURS)


def test_tinted_split_errors():
    with pytest.raises(data.DataError, match="available.*'unseen'"):
        data.load("fashion_mnist_10k_captions", split="test", text=True)
    with pytest.raises(data.DataError, match="does not exist"):
        data.load("fashion_mnist_captions:/no/such/folder", text=True)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_the_same_derivation_over_the_debian_60k():
    name = f"fashion_mnist_captions:{DEBIAN_FASHION_MNIST}"
    train, unseen = data.info(name, text=True), data.info(name, split="unseen", text=True)
    assert train.num_examples + unseen.num_examples == 60_000
    assert train.splits == ("train", "test", "unseen")
    assert data.info(name, split="test", text=True).num_examples == 10_000
    images, _, classes, colours = collect(data.load(
        name, split="unseen[:256]", text=True, with_labels=True, image_range="levels",
        shuffle=False, batch_size=256))
    assert data.is_unseen_pair(classes, colours).all()
    assert (data.judge_colour(images) == colours).mean() >= 0.99
    # The test split is the bundled 10k with every pair, coloured as the bundled set is.
    test = collect(data.load(name, split="test[:64]", text=True, with_labels=True,
                             image_range="levels", shuffle=False))
    bundled_colours = data.caption_colours(np.arange(64))
    np.testing.assert_array_equal(test[3], bundled_colours)
