"""keras_gen.data: every source loads with the right shapes, ranges and labels; bad input fails
with a message that says what to do."""

import gzip
import struct

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from keras_gen import data


def first(ds):
    return next(iter(ds))


def all_images(ds):
    return np.concatenate([np.asarray(b[0] if isinstance(b, tuple) else b) for b in ds])


# -- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image_range, dtype, lo, hi",
    [("tanh", tf.float32, -1.0, 1.0), ("unit", tf.float32, 0.0, 1.0), ("levels", tf.int32, 0, 255)],
)
def test_ranges_are_exact_transforms_of_the_levels(image_range, dtype, lo, hi):
    levels = all_images(data.load("digits", image_range="levels", shuffle=False, batch_size=500))
    x = data.load("digits", image_range=image_range, shuffle=False, batch_size=500)
    images = all_images(x)
    assert first(x).dtype == dtype
    assert images.min() == lo and images.max() == hi
    expected = {"tanh": levels / 127.5 - 1, "unit": levels / 255.0, "levels": levels}[image_range]
    np.testing.assert_allclose(images, expected, atol=1e-6)


def test_binary_is_dynamic_and_repeatable():
    ds = data.load("fashion_mnist_10k", split="train[:64]", image_range="binary", shuffle=False, seed=3)
    epoch1, epoch2 = all_images(ds), all_images(ds)
    assert set(np.unique(epoch1)) <= {0.0, 1.0}
    assert not np.array_equal(epoch1, epoch2)  # binarised afresh each epoch
    again = all_images(
        data.load("fashion_mnist_10k", split="train[:64]", image_range="binary", shuffle=False, seed=3)
    )
    np.testing.assert_array_equal(epoch1, again)  # ... yet repeatable with the seed
    unit = all_images(data.load("fashion_mnist_10k", split="train[:64]", shuffle=False))
    assert np.all(epoch1[unit == 0] == 0) and np.all(epoch1[unit == 1] == 1)


# -- bundled sources ---------------------------------------------------------------------------


def test_fashion_mnist_10k_is_the_original_test_split():
    i = data.info("fashion_mnist_10k")
    assert (i.image_shape, i.num_classes, i.num_examples) == ((28, 28, 1), 10, 10000)
    x, y = first(data.load("fashion_mnist_10k", batch_size=10000, with_labels=True, shuffle=False,
                           image_range="levels"))
    assert x.shape == (10000, 28, 28, 1) and y.shape == (10000,)
    # The first test image of Fashion-MNIST is an ankle boot (9), the second a pullover (2).
    assert list(y.numpy()[:2]) == [9, 2]
    assert np.bincount(y.numpy()).tolist() == [1000] * 10


def test_digits_shapes_labels_and_slices():
    i = data.info("digits")
    assert (i.image_shape, i.num_classes, i.num_examples) == ((8, 8, 1), 10, 1797)
    assert data.info("digits", split="train[:90%]").num_examples == 1617
    assert data.info("digits", split="train[1617:]").num_examples == 180
    x, y = first(data.load("digits", batch_size=16, with_labels=True))
    assert x.shape == (16, 8, 8, 1) and y.dtype == tf.int32


def test_shuffle_is_seeded_and_changes_every_epoch():
    ds = data.load("digits", batch_size=1797, with_labels=True, seed=5)
    y1, y2 = first(ds)[1].numpy(), first(ds)[1].numpy()
    ds_again = data.load("digits", batch_size=1797, with_labels=True, seed=5)
    np.testing.assert_array_equal(y1, first(ds_again)[1].numpy())
    assert not np.array_equal(y1, y2)
    assert sorted(y1) == sorted(y2)


# -- npz, idx, folder ---------------------------------------------------------------------------


def test_npz_with_and_without_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 12, 12, 3), dtype=np.uint8)
    y = rng.integers(0, 4, 20)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez(tmp_path / "b.npz", x=x.astype(np.float32) / 255.0)
    xs, ys = first(data.load(f"npz:{tmp_path}/a.npz", batch_size=20, with_labels=True,
                             shuffle=False, image_range="levels"))
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)
    assert data.info(f"npz:{tmp_path}/a.npz").num_classes == int(y.max()) + 1
    xb = first(data.load(f"npz:{tmp_path}/b.npz", batch_size=20, shuffle=False, image_range="levels"))
    np.testing.assert_array_equal(xb, x)
    with pytest.raises(ValueError, match="has no labels"):
        data.load(f"npz:{tmp_path}/b.npz", with_labels=True)


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_train_and_test(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    assert data.info(f"idx:{tmp_path}").num_examples == 30
    x, y = first(data.load(f"idx:{tmp_path}", split="test", batch_size=10, with_labels=True,
                           shuffle=False, image_range="levels"))
    np.testing.assert_array_equal(x[..., 0], test)
    np.testing.assert_array_equal(y, np.arange(10))


def make_folder(root, classes=("cat", "dog"), per_class=3, size=(10, 10), mode="RGB"):
    rng = np.random.default_rng(2)
    arrays = {}
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            shape = size[::-1] + ((3,) if mode == "RGB" else ())
            a = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(a, mode).save(root / c / f"{i}.png")
            arrays[(c, i)] = a
    return arrays


def test_folder_with_class_subfolders(tmp_path):
    arrays = make_folder(tmp_path / "imgs")
    i = data.info(f"folder:{tmp_path}/imgs")
    assert (i.image_shape, i.num_classes, i.num_examples) == ((10, 10, 3), 2, 6)
    x, y = first(data.load(f"folder:{tmp_path}/imgs", batch_size=6, with_labels=True, shuffle=False,
                           image_range="levels"))
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(x[3], arrays[("dog", 0)])


def test_folder_imagefolder_layout_and_grey_conversion(tmp_path):
    make_folder(tmp_path / "ds" / "train", per_class=2)
    make_folder(tmp_path / "ds" / "test", per_class=1)
    assert data.info(f"folder:{tmp_path}/ds", split="test").num_examples == 2
    grey = first(data.load(f"folder:{tmp_path}/ds", split="test", batch_size=2, channels=1))
    assert grey.shape == (2, 10, 10, 1)


def test_folder_resize_on_request(tmp_path):
    make_folder(tmp_path / "a", classes=("x",), size=(10, 10))
    make_folder(tmp_path / "b", classes=("x",), size=(12, 8))
    for p in (tmp_path / "b" / "x").iterdir():
        p.rename(tmp_path / "a" / "x" / ("b" + p.name))
    with pytest.raises(ValueError, match="different sizes.*image_size"):
        data.load(f"folder:{tmp_path}/a")
    x = first(data.load(f"folder:{tmp_path}/a", image_size=(16, 16), batch_size=6))
    assert x.shape == (6, 16, 16, 3)


# -- TFDS --------------------------------------------------------------------------------------


def test_tfds_through_mock_data():
    with tfds.testing.mock_data(num_examples=20):
        i = data.info("mnist")
        assert i.image_shape == (28, 28, 1) and i.num_classes == 10
        x, y = first(data.load("mnist", batch_size=8, with_labels=True, image_range="tanh", seed=1))
        assert x.shape == (8, 28, 28, 1) and x.dtype == tf.float32 and y.shape == (8,)
        assert -1.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
        assert first(data.load("cifar10", batch_size=4, image_range="levels")).shape == (4, 32, 32, 3)


# -- bad input ---------------------------------------------------------------------------------


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'fashion_mnist'"):
        data.load("fashon_mnist")
    with pytest.raises(ValueError, match="Did you mean 'fashion_mnist_10k'"):
        data.load("fashion_mnist_10")


def test_tfds_offline_says_how_to_get_it(tmp_path):
    with pytest.raises(ValueError, match="fashion_mnist_10k"):
        data.load("mnist", data_dir=str(tmp_path), download=False)


def test_unreadable_image_is_named(tmp_path):
    make_folder(tmp_path / "imgs", classes=("a",))
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png"):
        data.load(f"folder:{tmp_path}/imgs")


def test_non_image_files_warn_or_fail_when_strict(tmp_path):
    make_folder(tmp_path / "imgs", classes=("a",))
    (tmp_path / "imgs" / "a" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="notes.txt"):
        data.load(f"folder:{tmp_path}/imgs")
    with pytest.raises(ValueError, match="notes.txt"):
        data.load(f"folder:{tmp_path}/imgs", strict=True)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        data.load(f"folder:{tmp_path}/empty")


def test_labels_where_there_are_none(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="has no labels"):
        data.load(f"npz:{tmp_path}/x.npz", with_labels=True)


def test_npz_wrong_keys_and_dtypes(tmp_path):
    np.savez(tmp_path / "k.npz", images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"has arrays \['images'\]"):
        data.load(f"npz:{tmp_path}/k.npz")
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="'y' must be integer labels"):
        data.load(f"npz:{tmp_path}/d.npz")
    np.savez(tmp_path / "r.npz", x=np.full((4, 8, 8), 300.0))
    with pytest.raises(ValueError, match=r"\[0, 1\] or \[0, 255\]"):
        data.load(f"npz:{tmp_path}/r.npz")


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_range must be one of"):
        data.load("digits", image_range="0-1")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        data.load("digits", batch_size=0)
    with pytest.raises(ValueError, match="split 'test' does not exist"):
        data.load("digits", split="test")
    with pytest.raises(ValueError, match="selects no examples"):
        data.load("digits", split="train[5:5]")
