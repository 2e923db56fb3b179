"""keras_gen.data.load_pairs: each derived task's pair is what it says, paired folders match by
name, side-by-side and npz pairs split right, every `load` source takes a task, bad input fails
clearly."""

import gzip
import struct

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from keras_gen import data


def all_pairs(ds):
    """Every batch of a pairs dataset, concatenated per component, as NumPy."""
    parts = [tuple(np.asarray(t) for t in batch) for batch in ds]
    return tuple(np.concatenate(p) for p in zip(*parts))


def pairs_of(source, **kwargs):
    kwargs.setdefault("image_range", "unit")
    kwargs.setdefault("shuffle", False)
    return all_pairs(data.load_pairs(source, **kwargs))


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


# -- derived tasks -------------------------------------------------------------------------------


def test_load_pairs_takes_loads_read_options_with_loads_defaults():
    import inspect

    defaults = inspect.signature(data.load).parameters
    read = data.read_options("load_pairs", {"seed": 3})
    assert read.seed == 3 and read.shuffle is defaults["shuffle"].default
    assert {k: getattr(read, k) for k in data.READ_OPTIONS if k != "seed"} == {
        k: defaults[k].default for k in data.READ_OPTIONS if k != "seed"}
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['shufle'\].*shuffle, seed"):
        data.load_pairs("digits", task="edges", shufle=False)
    shuffled = data.load_pairs("digits", task="edges", split="train[:16]", batch_size=16, seed=0)
    ordered = data.load_pairs("digits", task="edges", split="train[:16]", batch_size=16, shuffle=False)
    assert not np.array_equal(next(iter(shuffled))[1], next(iter(ordered))[1])  # shuffle on by default


def test_edges_of_a_flat_image_are_zero_and_a_step_has_edges_along_it(tmp_path):
    flat = np.full((3, 12, 12), 137, np.uint8)
    step = np.zeros((1, 12, 12), np.uint8)
    step[:, :, 6:] = 255
    x, y = pairs_of(save_npz(tmp_path / "d.npz", x=np.concatenate([flat, step])), task="edges")
    assert not np.any(x[:3]), "a flat image, borders included, has no edges"
    np.testing.assert_allclose(y[:3], flat[..., None] / 255.0, atol=1e-6)
    edge_columns = np.nonzero(x[3, :, :, 0].any(axis=0))[0]
    np.testing.assert_array_equal(edge_columns, [5, 6])  # the two columns beside the step
    assert set(np.unique(x)) == {0.0, 1.0}
    # A step of contrast 0.1 is below the default threshold 0.2, above 0.05.
    faint = np.zeros((1, 12, 12), np.uint8)
    faint[:, :, 6:] = 26
    path = save_npz(tmp_path / "f.npz", x=faint)
    assert not np.any(pairs_of(path, task="edges")[0])
    assert np.any(pairs_of(path, task="edges", edge_threshold=0.05)[0])


def test_inpaint_input_equals_the_target_outside_one_square_hole(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 16, 12), dtype=np.uint8)
    x, y = pairs_of(save_npz(tmp_path / "d.npz", x=images), task="inpaint", hole_size=5,
                    batch_size=16, seed=3)
    corners = set()
    for inp, target in zip(x[..., 0], y[..., 0]):
        hole = np.isclose(inp, data.HOLE_FILL / 255.0) & ~np.isclose(target, data.HOLE_FILL / 255.0)
        rows, cols = np.nonzero(hole)
        top, left = rows.min(), cols.min()
        mask = np.zeros_like(inp, bool)
        mask[top : top + 5, left : left + 5] = True
        assert rows.max() - top < 5 and cols.max() - left < 5  # one 5x5 square at most
        np.testing.assert_array_equal(inp[~mask], target[~mask])  # untouched outside it
        np.testing.assert_allclose(inp[mask], data.HOLE_FILL / 255.0)  # filled inside it
        corners.add((top, left))
    assert len(corners) > 10, "holes are placed at random"


def test_inpaint_holes_repeat_with_the_seed_and_change_every_epoch():
    def holes(seed, epochs=1):
        ds = data.load_pairs("digits", task="inpaint", split="train[:32]", batch_size=8,
                             shuffle=False, seed=seed)
        return [all_pairs(ds)[0] for _ in range(epochs)]

    first, second = holes(seed=1, epochs=2)
    np.testing.assert_array_equal(holes(seed=1)[0], first)
    assert not np.array_equal(first, second)
    assert not np.array_equal(holes(seed=2)[0], first)


def test_superres_input_is_the_block_mean_of_the_target(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 12, 8, 3), dtype=np.uint8)
    x, y = pairs_of(save_npz(tmp_path / "d.npz", x=images), task="superres", scale=4,
                    image_range="tanh")
    assert x.shape == y.shape == (5, 12, 8, 3)
    levels = images.astype(np.float64)
    for i in range(0, 12, 4):
        for j in range(0, 8, 4):
            mean = levels[:, i : i + 4, j : j + 4].mean(axis=(1, 2))  # (5, 3)
            np.testing.assert_allclose(x[:, i : i + 4, j : j + 4], np.broadcast_to(
                (mean / 127.5 - 1.0)[:, None, None], (5, 4, 4, 3)), atol=1e-5)
    np.testing.assert_allclose(y, levels / 127.5 - 1.0, atol=1e-6)


def test_colorize_input_is_the_grey_of_the_target_and_needs_colour(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    path = save_npz(tmp_path / "c.npz", x=images)
    x, y = pairs_of(path, task="colorize", image_range="unit")
    luma = np.round(images @ np.array([0.2989, 0.5870, 0.1140]))[..., None]  # as tf.image
    np.testing.assert_allclose(x * 255.0, luma, atol=1e-3)
    np.testing.assert_allclose(y * 255.0, images, atol=1e-3)
    info = data.pair_info(path, task="colorize")
    assert (info.input_shape, info.target_shape) == ((8, 8, 1), (8, 8, 3))
    with pytest.raises(data.DataError, match="colorize.*needs colour images.*has 1 channel"):
        data.load_pairs("digits", task="colorize")


def test_tanh_pairs_are_unit_pairs_times_two_minus_one():
    unit = pairs_of("digits", task="edges", split="train[:20]", image_range="unit")
    tanh = pairs_of("digits", task="edges", split="train[:20]", image_range="tanh")
    for u, t in zip(unit, tanh):
        np.testing.assert_allclose(t, 2.0 * u - 1.0, atol=1e-6)
    # The default range is what Pix2Pix trains on.
    default = all_pairs(data.load_pairs("digits", task="edges", split="train[:20]", shuffle=False))
    np.testing.assert_array_equal(default[1], tanh[1])


def test_labels_follow_their_images_through_a_task():
    images, labels = next(iter(data.load("fashion_mnist_10k", split="train[:50]", batch_size=50,
                                         with_labels=True, shuffle=True, seed=4, image_range="unit")))
    _, targets, pair_labels = all_pairs(data.load_pairs(
        "fashion_mnist_10k", task="superres", split="train[:50]", batch_size=50, shuffle=True,
        seed=4, with_labels=True, image_range="unit"))
    np.testing.assert_array_equal(targets, images.numpy())
    np.testing.assert_array_equal(pair_labels, labels.numpy())


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_every_source_load_reads_takes_a_task(tmp_path):
    rng = np.random.default_rng(3)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 8, 8)))
    (tmp_path / "imgs").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    sources = ["digits", "fashion_mnist_10k", save_npz(tmp_path / "x.npz", x=np.zeros((4, 8, 8))),
               f"idx:{tmp_path}", f"folder:{tmp_path}/imgs"]
    for source in sources:
        x, y = next(iter(data.load_pairs(source, task="superres", scale=2, batch_size=4)))
        assert x.shape == y.shape and x.shape[0] == 4, source
    with tfds.testing.mock_data(num_examples=8):
        x, y = next(iter(data.load_pairs("cifar10", task="colorize", batch_size=4)))
        assert (x.shape, y.shape) == ((4, 32, 32, 1), (4, 32, 32, 3))


# -- paired sources ------------------------------------------------------------------------------


def make_paired_folder(root, names, size=(6, 4), a_order=None, b_suffix=".png"):
    """A/NAME.png holds level k everywhere, B/NAME holds 255 - k (k: the name's index)."""
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir(parents=True)
    for k in a_order or range(len(names)):
        Image.fromarray(np.full(size[::-1], 10 * k, np.uint8)).save(root / "A" / f"{names[k]}.png")
    for k in reversed(range(len(names))):
        Image.fromarray(np.full(size[::-1] + (3,), 255 - 10 * k, np.uint8)).save(
            root / "B" / f"{names[k]}{b_suffix}")


def test_folder_pairs_match_by_name_whatever_the_order_and_extension(tmp_path):
    names = ["zeta", "alpha", "mid", "b10", "b9", "omega"]
    make_paired_folder(tmp_path / "p", names, b_suffix=".bmp")
    source = f"folder:{tmp_path}/p"
    info = data.pair_info(source)
    assert (info.input_shape, info.target_shape, info.num_examples) == ((4, 6, 1), (4, 6, 3), 6)
    x, y = pairs_of(source, image_range="unit", shuffle=True, seed=0, batch_size=4)
    levels_a, levels_b = np.round(x[:, 0, 0, 0] * 255), np.round(y[:, 0, 0, 0] * 255)
    np.testing.assert_array_equal(levels_a + levels_b, 255)  # each input with its own target
    assert sorted(levels_a) == [10 * k for k in range(6)]
    # Slices are taken after matching, in name order.
    x, _ = pairs_of(source, split="train[:2]")
    np.testing.assert_allclose(np.round(x[:, 0, 0, 0] * 255), [10 * names.index(n) for n in sorted(names)[:2]])
    # BtoA swaps the roles.
    x, y = pairs_of(source, direction="BtoA")
    assert (x.shape[-1], y.shape[-1]) == (3, 1)


def test_folder_pairs_with_split_subfolders(tmp_path):
    for split, names in (("train", ["a", "b", "c"]), ("test", ["d"])):
        for side, level in (("A", 10), ("B", 20)):
            (tmp_path / side / split).mkdir(parents=True)
            for n in names:
                Image.fromarray(np.full((4, 4), level, np.uint8)).save(tmp_path / side / split / f"{n}.png")
    assert data.pair_info(f"folder:{tmp_path}", split="test").num_examples == 1
    assert data.pair_info(f"folder:{tmp_path}").num_examples == 3


def test_side_by_side_pairs_split_down_the_middle(tmp_path):
    (tmp_path / "sbs" / "train").mkdir(parents=True)
    (tmp_path / "sbs" / "val").mkdir(parents=True)
    for k in range(5):
        image = np.zeros((8, 16, 3), np.uint8)
        image[:, :8], image[:, 8:] = 10 * k, 20 * k
        Image.fromarray(image).save(tmp_path / "sbs" / ("val" if k == 4 else "train") / f"{k}.png")
    source = f"folder:{tmp_path}/sbs"
    x, y = pairs_of(source, image_range="unit")
    assert x.shape == y.shape == (4, 8, 8, 3)
    np.testing.assert_allclose(np.round(y * 255), 2 * np.round(x * 255))
    x, y = pairs_of(source, split="val", direction="BtoA")
    np.testing.assert_allclose(np.round(x * 255), 80)
    np.testing.assert_allclose(np.round(y * 255), 40)
    # image_size is the size of one image of the pair.
    assert data.pair_info(source, image_size=(4, 4)).input_shape == (4, 4, 3)


def test_npz_pairs(tmp_path):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (10, 6, 6), dtype=np.uint8)
    b = rng.random((10, 6, 6, 3)).astype(np.float32)
    path = save_npz(tmp_path / "p.npz", a=a, b=b)
    x, y = pairs_of(path, split="train[5:]", image_range="unit")
    np.testing.assert_allclose(x[..., 0], a[5:] / 255.0, atol=1e-6)
    np.testing.assert_allclose(y, np.round(b[5:] * 255) / 255.0, atol=1e-6)


# -- bad input -----------------------------------------------------------------------------------


def test_mismatched_names_sizes_and_empty_folders_are_named(tmp_path):
    make_paired_folder(tmp_path / "names", ["a", "b", "c"])
    (tmp_path / "names" / "B" / "b.png").rename(tmp_path / "names" / "B" / "x.png")
    with pytest.raises(data.DataError, match=r"same names\. Only in A/: \['b'\] \(1\); only in B/: \['x'\]"):
        data.load_pairs(f"folder:{tmp_path}/names")
    make_paired_folder(tmp_path / "sizes", ["a"])
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "sizes" / "B" / "a.png")
    with pytest.raises(data.DataError, match=r"A/ are 6x4 \(WxH\), those in B/ 5x5.*image_size"):
        data.load_pairs(f"folder:{tmp_path}/sizes")
    assert data.pair_info(f"folder:{tmp_path}/sizes", image_size=(4, 4)).target_shape == (4, 4, 3)
    (tmp_path / "empty" / "A").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "empty" / "A" / "a.png")
    with pytest.raises(data.DataError, match="sub-folder B/ is missing or empty"):
        data.load_pairs(f"folder:{tmp_path}/empty")
    (tmp_path / "empty" / "B").mkdir()
    with pytest.raises(data.DataError, match="sub-folder B/ is missing or empty"):
        data.load_pairs(f"folder:{tmp_path}/empty")


def test_a_folder_of_single_images_is_not_taken_for_pairs(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    with pytest.raises(data.DataError, match=r"neither A/ and B/ sub-folders nor side-by-side.*8x8"):
        data.load_pairs(f"folder:{tmp_path}/imgs")
    assert data.pair_info(f"folder:{tmp_path}/imgs", task="edges").input_shape == (8, 8, 1)


def test_bad_task_arguments_and_sources(tmp_path):
    with pytest.raises(data.DataError, match="'digits' is a data set of single images, not pairs.*task="):
        data.load_pairs("digits")
    with pytest.raises(ValueError, match="task must be one of .*Did you mean 'edges'"):
        data.load_pairs("digits", task="edge")
    with pytest.raises(data.DataError, match="superres.*scale=3.*8x8"):
        data.load_pairs("digits", task="superres", scale=3)
    with pytest.raises(data.DataError, match="hole_size must be an integer from 1 to 7"):
        data.load_pairs("digits", task="inpaint", hole_size=8)
    with pytest.raises(ValueError, match="image_range must be one of 'tanh', 'unit'"):
        data.load_pairs("digits", task="edges", image_range="levels")
    with pytest.raises(data.DataError, match="direction='BtoA' swaps the images of a paired source"):
        data.load_pairs("digits", task="edges", direction="BtoA")
    single = save_npz(tmp_path / "x.npz", x=np.zeros((2, 4, 4)))
    with pytest.raises(data.DataError, match=r"needs arrays 'a' \(inputs\) and 'b'.*task=\.\.\. instead"):
        data.load_pairs(single)
    uneven = save_npz(tmp_path / "u.npz", a=np.zeros((2, 4, 4)), b=np.zeros((3, 4, 4)))
    with pytest.raises(data.DataError, match="as many images of the same height and width"):
        data.load_pairs(uneven)
    with pytest.raises(data.DataError, match="have no labels"):
        data.load_pairs(save_npz(tmp_path / "p.npz", a=np.zeros((2, 4, 4)), b=np.zeros((2, 4, 4))),
                        with_labels=True)


def test_pairs_are_float32_batches_ready_for_fit():
    ds = data.load_pairs("digits", task="inpaint", batch_size=7, drop_remainder=True)
    inputs, targets = ds.element_spec
    assert inputs.shape.as_list() == targets.shape.as_list() == [7, 8, 8, 1]
    assert inputs.dtype == targets.dtype == tf.float32
