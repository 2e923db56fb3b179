"""Image data sets as batched `tf.data` pipelines, in the value range a model asks for.

`load(name, ...)` is the one entry point for images, `load_pairs(source, task=None, ...)` for
(input, target) pairs of image-to-image translation (see its docstring). A name is one of:

- a TFDS image data set (`mnist`, `fashion_mnist`, `cifar10`, `celeb_a`, ...);
- `folder:PATH`: a folder of images; sub-folders are class labels (plain or tfds.ImageFolder
  layout, `PATH/<split>/<label>/*.png`);
- `npz:PATH`: a NumPy `.npz` file with an array `x` (N, H, W[, C]) and optionally labels `y`;
- `idx:PATH`: a folder of MNIST-format IDX files (`train-images-idx3-ubyte[.gz]`, ...), such as
  Debian's `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`);
- `fashion_mnist_10k`: the 10,000-image Fashion-MNIST test split, bundled with the package;
- `digits`: scikit-learn's bundled 8x8 digits (1,797 images, levels 0..16 scaled to 0..255);
- `fashion_mnist_10k_captions` and `fashion_mnist_captions:PATH` (an IDX folder): Fashion-MNIST
  garments tinted with a named colour and captioned ("a red sneaker"), for text-to-image; see
  "Captioned images" below.

With `text=True`, `load` yields `(images, captions)` from a captioned source: those two,
`npz:PATH` with an array `text`, or `folder:PATH` with `metadata.jsonl` or `captions.csv`.

Every source yields pixel levels 0..255 first; one function (`_to_range`) turns them into the
requested range, so all sources agree exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import inspect
import os
import re
import struct
import types
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_gen import checks

IMAGE_RANGES = ("tanh", "unit", "levels", "binary")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
BUNDLED = ("fashion_mnist_10k", "digits", "fashion_mnist_10k_captions")
PREFIXES = ("folder:", "npz:", "idx:", "fashion_mnist_captions:")
_DATASETS_DIR = Path(__file__).parent / "datasets"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGITS_CLASSES = tuple(str(d) for d in range(10))
# SHA-256 of the first image of Fashion-MNIST's train and test IDX files: how an `idx:` folder is
# recognised as Fashion-MNIST (MNIST has the same shapes and number of classes).
_FASHION_MNIST_FIRST_IMAGES = {
    "5bd44e331a6d6998daf675700cd0c13dcd7af8ab954b7585124124da61459e7b",  # train
    "ffc7351ed0f8bae542820866086177fa4e0b366b97bf9d998dffdb8dbe138787",  # test (t10k)
}


class DataError(ValueError):
    """Raised for data that cannot be loaded; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about a data set before it sees a batch."""

    name: str
    image_shape: tuple  # (H, W, C)
    num_classes: int | None  # None when the source has no labels
    num_examples: int  # in the split asked for
    splits: tuple
    # The name of each label (index -> name) where the source has them: folder names, TFDS
    # ClassLabel names, the bundled sets' classes; None otherwise.
    class_names: tuple | None = None


# --------------------------------------------------------------------------------------------
# Public API


def load(
    name,
    split="train",
    batch_size=None,
    image_range=None,
    with_labels=None,
    shuffle=True,
    seed=None,
    data_dir=None,
    drop_remainder=False,
    channels=None,
    image_size=None,
    strict=False,
    download=True,
    text=False,
    model=None,
):
    """Returns a batched, prefetched `tf.data.Dataset` of NHWC images (or `(images, labels)`;
    `(images, captions)` with `text=True`).

    The one way to get data for a model: `load(name, model=model)`, which takes from the model
    what its `fit` needs, so nothing is chosen by hand:

        model = kg.models.DCGAN((28, 28, 1), num_classes=10)
        model.fit(kg.data.load("fashion_mnist_10k", model=model), epochs=10)

    Args:
      name: data set name (see the module docstring).
      split: `"train"`, `"test"` (where the source has one) or a TFDS-style slice such as
        `"train[:90%]"` or `"train[9000:]"`.
      batch_size: images per batch. Default: the model's (`model.default_batch_size` times
        `model.batches_per_step`, the batch `keras-gen train` loads), else 64.
      image_range: `"tanh"` (float32 in [-1, 1]), `"unit"` (float32 in [0, 1]), `"levels"` (int32
        pixel levels 0..255) or `"binary"` (float32 {0, 1}, binarised afresh every epoch).
        Default: `model.data_range`, else `"unit"`.
      with_labels: yield `(images, labels)` with int32 labels. Default: whether the model is
        conditional (`model.num_classes`), else False.
      shuffle: shuffle every epoch (reproducibly when `seed` is given).
      seed: seed for shuffling and dynamic binarisation.
      data_dir: TFDS data directory.
      drop_remainder: drop the last incomplete batch.
      channels: for `folder:` sources, convert every image to 1 (grey) or 3 (RGB) channels.
      image_size: for `folder:` sources, `(height, width)` to resize every image to; without it,
        images of different sizes are an error.
      strict: for `folder:` sources, fail on files that are not images instead of skipping them.
      download: for TFDS names, download and prepare the data set if it is not there yet.
      text: yield `(images, captions)`, captions a tf.string vector, from a captioned source;
        with `with_labels=True`, `(images, captions, labels)`, and `(images, captions,
        classes, colours)` for the tinted Fashion-MNIST sets.
      model: a keras_gen sampler (GAN, VAE, PixelCNN, VQ-VAE) whose range, labels and batch size
        are the defaults above; `image_range` or `with_labels` given as well must agree with it.
    """
    batch_size, image_range, with_labels = _model_defaults(model, batch_size, image_range, with_labels)
    checks.choice("image_range", image_range, IMAGE_RANGES)
    batch_size = checks.positive_int("batch_size", batch_size)
    resolve = _resolve_captioned if text else _resolve
    source = resolve(
        name, split, data_dir, channels=channels, image_size=image_size, strict=strict,
        download=download,
    )
    if with_labels and source.labels is None and source.num_classes is None:
        raise DataError(
            f"with_labels=True, but the data set {name!r} has no labels. Load it with "
            "with_labels=False, or use a source with labels (class sub-folders for folder:, "
            "an array 'y' for npz:)."
        )
    if text:
        ds = source.captioned_dataset(shuffle=shuffle, seed=seed, with_labels=with_labels)
    else:
        ds = source.dataset(shuffle=shuffle, seed=seed)
        if not with_labels:
            ds = ds.map(lambda x, y: x, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if image_range == "binary":
        # One stateless seed pair per batch, fresh every epoch, so binarisation is dynamic yet
        # repeatable with `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))
        ds = ds.map(
            lambda batch, s: _apply_to_images(batch, lambda x: _binarise(x, s)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    else:
        ds = ds.map(
            lambda *batch: _apply_to_images(batch, lambda x: _to_range(x, image_range)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    # Shard by element: the sources here are index ranges and generators, not files, so
    # multi-worker training splits the batches, not the files.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _model_defaults(model, batch_size, image_range, with_labels):
    """`load`'s batch_size, image_range and with_labels: those given, else the model's, else
    64, "unit" and False."""
    if model is None:
        return (64 if batch_size is None else batch_size, image_range or "unit", bool(with_labels))
    if callable(getattr(model, "translate", None)):
        raise ValueError(
            f"load(model=...): {type(model).__name__} translates images and trains on (input, "
            "target) pairs: load them with keras_gen.data.load_pairs(source, task=..., "
            "image_range=model.data_range)."
        )
    wanted = {"image_range": model.data_range, "with_labels": bool(model.num_classes)}
    for arg, given in (("image_range", image_range), ("with_labels", with_labels)):
        if given is not None and given != wanted[arg]:
            raise ValueError(
                f"load(model=...): {arg}={given!r}, but the {type(model).__name__} trains on "
                f"{arg}={wanted[arg]!r}; leave {arg} out to take the model's."
            )
    if batch_size is None:
        batch_size = model.default_batch_size * model.batches_per_step
    return batch_size, wanted["image_range"], wanted["with_labels"]


def info(name, split="train", data_dir=None, download=True, text=False):
    """Returns `DataInfo(name, image_shape, num_classes, num_examples, splits, class_names)`
    without reading the pixel data (`text=True`: of the captioned source, as `load(...,
    text=True)` reads it)."""
    source = (_resolve_captioned if text else _resolve)(name, split, data_dir, download=download)
    return DataInfo(name, source.image_shape, source.num_classes, source.num_examples, source.splits,
                    source.class_names)


def available():
    """Names of the built-in sources and the source prefixes (TFDS names come on top)."""
    return list(BUNDLED) + [p + "PATH" for p in PREFIXES]


# --------------------------------------------------------------------------------------------
# Ranges


def _to_range(levels, image_range):
    levels = tf.cast(levels, tf.float32)
    if image_range == "tanh":
        return levels / 127.5 - 1.0
    if image_range == "unit":
        return levels / 255.0
    return tf.cast(tf.round(levels), tf.int32)  # "levels"


def _binarise(levels, seed_pair):
    p = tf.cast(levels, tf.float32) / 255.0
    u = tf.random.stateless_uniform(tf.shape(p), seed=tf.cast(seed_pair, tf.int32))
    return tf.cast(u < p, tf.float32)


def _apply_to_images(batch, fn):
    """Applies `fn` to the images of a batch given as a tuple of components."""
    if isinstance(batch, tuple) and len(batch) == 1:
        batch = batch[0]
    if isinstance(batch, tuple):
        return (fn(batch[0]),) + tuple(batch[1:])
    return fn(batch)


# --------------------------------------------------------------------------------------------
# Sources. Each yields unbatched (uint8 HWC image, int32 label) pairs; label -1 means "none".


class _Source:
    def __init__(self, image_shape, num_examples, num_classes, splits, labels=None, class_names=None):
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_examples = int(num_examples)
        self.num_classes = num_classes
        self.splits = tuple(splits)
        self.labels = labels
        self.class_names = None if class_names is None else tuple(str(n) for n in class_names)

    def dataset(self, shuffle, seed):
        raise NotImplementedError


class _ArraySource(_Source):
    """In-memory uint8 arrays. Batches are gathered by index, so the array is never copied into
    the graph (no `from_tensor_slices` constant) and shuffling only moves indices."""

    def __init__(self, images, labels, num_classes, splits, class_names=None):
        super().__init__(images.shape[1:], len(images), num_classes, splits, labels, class_names)
        self.images = images

    def dataset(self, shuffle, seed):
        images, labels = self.images, self.labels
        if labels is None:
            labels = np.full((len(images),), -1, np.int32)
        n = len(images)
        if n == 0:
            raise DataError("the selected split holds no images; choose a larger split.")
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

        def gather(i):
            x, y = tf.numpy_function(
                lambda j: (images[j], labels[j]), [i], (tf.uint8, tf.int32), stateful=False
            )
            x.set_shape(self.image_shape)
            y.set_shape(())
            return x, y

        return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class _FolderSource(_Source):
    """Image files streamed from disk; only the file names and header sizes are read up front."""

    def __init__(self, files, labels, num_classes, splits, image_shape, resize, class_names=None):
        super().__init__(image_shape, len(files), num_classes, splits, labels, class_names)
        self.files = files
        self.resize = resize

    def dataset(self, shuffle, seed):
        labels = self.labels if self.labels is not None else [-1] * len(self.files)
        ds = tf.data.Dataset.from_tensor_slices(
            (tf.constant(self.files), tf.constant(labels, tf.int32))
        )
        if shuffle:
            ds = ds.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        h, w, c = self.image_shape
        resize = self.resize

        def read(path):
            path = path.decode() if isinstance(path, bytes) else str(path)
            return _read_image(path, c, (h, w) if resize else None)

        def decode(path, label):
            x = tf.numpy_function(read, [path], tf.uint8, stateful=False)
            x.set_shape((h, w, c))
            return x, label

        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class _TFDSSource(_Source):
    def __init__(self, name, split, data_dir, builder_info):
        features = builder_info.features
        image_key = _tfds_image_key(name, features)
        self.image_key = image_key
        self.label_key = "label" if "label" in features else None
        shape = features[image_key].shape
        num_classes = features["label"].num_classes if self.label_key else None
        try:
            num_examples = builder_info.splits[split].num_examples
        except (KeyError, ValueError):
            num_examples = 0
        super().__init__(
            shape, num_examples, num_classes, tuple(builder_info.splits.keys()),
            labels=None, class_names=_tfds_class_names(features) if self.label_key else None,
        )
        self.name, self.split, self.data_dir = name, split, data_dir
        if None in self.image_shape:
            raise DataError(
                f"the TFDS data set {name!r} has images of varying size {shape}; keras-gen "
                "models need one size. Resize the images yourself and save them as npz: or "
                "folder: data."
            )

    def dataset(self, shuffle, seed):
        import tensorflow_datasets as tfds

        read_config = tfds.ReadConfig(shuffle_seed=seed)
        ds = tfds.load(
            self.name, split=self.split, data_dir=self.data_dir, shuffle_files=shuffle,
            read_config=read_config, download=False,
        )
        if shuffle:
            ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
        ik, lk = self.image_key, self.label_key
        return ds.map(
            lambda ex: (
                tf.cast(ex[ik], tf.uint8),
                tf.cast(ex[lk], tf.int32) if lk else tf.constant(-1, tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )


# --------------------------------------------------------------------------------------------
# Name resolution


def _resolve(name, split, data_dir, channels=None, image_size=None, strict=False, download=True):
    if not isinstance(name, str) or not name:
        raise DataError(f"name must be a data set name such as 'fashion_mnist_10k'; got {name!r}.")
    if channels is not None and channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey), 3 (RGB) or None; got {channels!r}.")
    if name == "digits":
        images, labels = _digits()
        return _array_source(images, labels, 10, split, ("train",), class_names=DIGITS_CLASSES)
    if name == "fashion_mnist_10k":
        images = _read_idx(_DATASETS_DIR / "t10k-images-idx3-ubyte.gz")[..., None]
        labels = _read_idx(_DATASETS_DIR / "t10k-labels-idx1-ubyte.gz").astype(np.int32)
        return _array_source(images, labels, 10, split, ("train",), class_names=FASHION_MNIST_CLASSES)
    if name.startswith("npz:"):
        return _npz_source(name[4:], split)
    if name.startswith("idx:"):
        return _idx_source(name[4:], split)
    if name.startswith("folder:"):
        return _folder_source(name[7:], split, channels, image_size, strict)
    if name == "fashion_mnist_10k_captions" or name.startswith("fashion_mnist_captions:"):
        return _tinted_source(name, split)
    return _tfds_source(name, split, data_dir, download)


def _array_source(images, labels, num_classes, split, splits, split_arrays=None, class_names=None):
    base, sl = _parse_split(split)
    if split_arrays is not None:
        if base not in split_arrays:
            raise DataError(
                f"split {split!r} does not exist here; available splits: {sorted(split_arrays)}."
            )
        images, labels = split_arrays[base]
    elif base != "train":
        raise DataError(
            f"split {split!r} does not exist; this source has one split, 'train'. Hold data out "
            "with a slice, e.g. split='train[:90%]' and split='train[90%:]'."
        )
    start, stop = _slice_bounds(sl, len(images), split)
    images = images[start:stop]
    labels = None if labels is None else labels[start:stop]
    return _ArraySource(images, labels, num_classes, splits, class_names)


_SPLIT_RE = re.compile(r"^(\w+)(?:\[(-?\d*%?)?:(-?\d*%?)?\])?$")


def _parse_split(split):
    m = _SPLIT_RE.match(str(split).replace(" ", ""))
    if not m:
        raise DataError(
            f"split must look like 'train', 'test' or 'train[:90%]'; got {split!r}."
        )
    return m.group(1), (m.group(2), m.group(3)) if "[" in str(split) else None


def _slice_bounds(sl, n, split):
    if sl is None:
        return 0, n

    def bound(text, default):
        if text in (None, ""):
            return default
        if text.endswith("%"):
            return int(round(int(text[:-1]) * n / 100))
        return int(text)

    start, stop = bound(sl[0], 0), bound(sl[1], n)
    start, stop = slice(start, stop).indices(n)[:2]
    if stop <= start:
        raise DataError(f"split {split!r} selects no examples out of {n}.")
    return start, stop


def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DataError(
            "the 'digits' data set comes from scikit-learn, which is not installed: "
            "pip install scikit-learn"
        ) from e
    d = load_digits()
    levels = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return levels, d.target.astype(np.int32)


# -- IDX (MNIST format)


def _read_idx(path):
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (MNIST format).")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} values.")
    return arr.reshape(dims)


def _idx_source(folder, split):
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"idx: folder {str(folder)!r} does not exist. On Debian, `apt-get install "
            "dataset-fashion-mnist` puts Fashion-MNIST in /usr/share/datasets/fashion-mnist."
        )
    found = {}
    for base, prefix in (("train", "train"), ("test", "t10k")):
        img = _first_existing(folder, f"{prefix}-images-idx3-ubyte")
        lab = _first_existing(folder, f"{prefix}-labels-idx1-ubyte")
        if img is not None:
            found[base] = (img, lab)
    if not found:
        raise DataError(
            f"no IDX files in {str(folder)!r}: expected train-images-idx3-ubyte[.gz] and/or "
            "t10k-images-idx3-ubyte[.gz] (MNIST format)."
        )
    base, _ = _parse_split(split)
    if base not in found:
        raise DataError(f"split {split!r} does not exist in {folder}; available: {sorted(found)}.")
    img, lab = found[base]
    images = _read_idx(img)[..., None]
    labels = _read_idx(lab).astype(np.int32) if lab is not None else None
    num_classes = int(labels.max()) + 1 if labels is not None else None
    class_names = FASHION_MNIST_CLASSES if num_classes == 10 and _is_fashion_mnist(images) else None
    return _array_source(
        images, labels, num_classes, split, tuple(found), split_arrays={base: (images, labels)},
        class_names=class_names,
    )


def _is_fashion_mnist(images):
    """Whether IDX images are Fashion-MNIST's (either split), by their first image."""
    import hashlib

    return len(images) > 0 and hashlib.sha256(
        np.ascontiguousarray(images[0]).tobytes()
    ).hexdigest() in _FASHION_MNIST_FIRST_IMAGES


def _first_existing(folder, stem):
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.exists():
            return candidate
    return None


# -- npz


def _read_npz(path, missing):
    """The arrays of the .npz file `path` as {name: array}. `missing(path, keys)` returns the
    message for a file without the arrays needed, or None; unreadable files get a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"npz: file {str(path)!r} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.keys())
            message = missing(path, keys)
            if message:
                raise DataError(message)
            return path, {k: f[k] for k in keys}
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"cannot read {path} as a NumPy .npz file: {e}") from e


def _npz_source(path, split, text=False):
    path, arrays = _read_npz(path, lambda path, keys: _npz_missing(path, keys, text))
    x, y = arrays["x"], arrays.get("y")
    x = _levels_from_array(x, path)
    labels, num_classes = None, None
    if y is not None:
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
            raise DataError(
                f"{path}: 'y' must be integer labels of shape ({len(x)},); got dtype {y.dtype} "
                f"and shape {y.shape}."
            )
        if len(y) and y.min() < 0:
            raise DataError(f"{path}: labels must be >= 0; found {int(y.min())}.")
        labels = y.astype(np.int32)
        num_classes = int(labels.max()) + 1 if len(labels) else 0
    if text:
        return _captioned_arrays(path, x, labels, num_classes, arrays["text"], split)
    return _array_source(x, labels, num_classes, split, ("train",))


def _levels_from_array(x, where):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise DataError(
            f"{where}: images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
            f"got {x.shape}."
        )
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        lo, hi = float(np.min(x)), float(np.max(x))
        if lo >= 0.0 and hi <= 1.0:
            return np.round(x * 255.0).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0:
            return np.round(x).astype(np.uint8)
        raise DataError(
            f"{where}: float images must be in [0, 1] or [0, 255]; found values in [{lo}, {hi}]."
        )
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{where}: integer images must be in 0..255.")
        return x.astype(np.uint8)
    raise DataError(f"{where}: images must be uint8 or float; got dtype {x.dtype}.")


# -- folders


def _folder_source(folder, split, channels, image_size, strict):
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"folder: {str(root)!r} is not a folder.")
    base, sl = _parse_split(split)
    splits = ("train",)
    # tfds.ImageFolder layout: root/<split>/<label>/<image>.
    split_dirs = [d for d in sorted(root.iterdir()) if d.is_dir()]
    is_image_folder_layout = bool(split_dirs) and all(
        d.name in ("train", "test", "validation", "val") for d in split_dirs
    )
    if is_image_folder_layout:
        splits = tuple(d.name for d in split_dirs)
        if base not in splits:
            raise DataError(f"split {split!r} is not a sub-folder of {root}; found {list(splits)}.")
        root = root / base
    elif base != "train":
        raise DataError(
            f"split {split!r} does not exist in {root}; a plain folder is one 'train' split "
            "(use 'train[:90%]' to hold data out, or the layout root/train/<label>, root/test/<label>)."
        )
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir())
    entries = []  # (path, label)
    if class_dirs:
        class_names = [d.name for d in class_dirs]
        for label, d in enumerate(class_dirs):
            entries += [(p, label) for p in sorted(d.iterdir()) if p.is_file()]
        num_classes = len(class_names)
    else:
        entries = [(p, -1) for p in sorted(root.iterdir()) if p.is_file()]
        class_names, num_classes = None, None
    images = [(p, y) for p, y in entries if p.suffix.lower() in IMAGE_EXTENSIONS]
    others = [str(p) for p, _ in entries if p.suffix.lower() not in IMAGE_EXTENSIONS]
    if others:
        if strict:
            raise DataError(
                f"{len(others)} files in {root} are not images (strict=True): {others[:10]}"
            )
        warnings.warn(
            f"skipping {len(others)} files in {root} that are not images: {others[:10]}"
            + (" ..." if len(others) > 10 else ""),
            stacklevel=3,
        )
    if not images:
        raise DataError(
            f"no images found in {root} (looked for {', '.join(IMAGE_EXTENSIONS)}, in the folder "
            "or in one sub-folder per class)."
        )
    start, stop = _slice_bounds(sl, len(images), split)
    images = images[start:stop]
    (h, w, channels), resize = _probe_images([p for p, _ in images], root, channels, image_size)
    labels = [y for _, y in images] if num_classes else None
    return _FolderSource(
        [str(p) for p, _ in images], labels, num_classes, splits, (h, w, channels), resize=resize,
        class_names=class_names,
    )


def _probe_images(paths, root, channels, image_size):
    """`((H, W, C), resize)` of the image files `paths`, from their headers."""
    from PIL import Image

    # Read headers only (PIL opens lazily): sizes and modes, and fail on unreadable files by name.
    sizes, modes = {}, set()
    for p in paths:
        try:
            with Image.open(p) as im:
                sizes.setdefault(im.size, []).append(str(p))
                modes.add(im.mode)
        except Exception as e:
            raise DataError(f"cannot read image {p}: {e}. Remove or replace the file.") from e
    if len(sizes) > 1 and image_size is None:
        summary = {f"{w}x{h}": (len(v), v[0]) for (w, h), v in sizes.items()}
        raise DataError(
            f"images in {root} have different sizes (WxH: count, example): {summary}. Pass "
            "image_size=(height, width) to resize them all, or make them one size."
        )
    if image_size is not None:
        h, w = _check_image_size(image_size)
    else:
        w, h = next(iter(sizes))
    if channels is None:
        channels = 1 if modes <= {"L", "1", "I", "I;16", "F", "LA"} else 3
    return (h, w, channels), image_size is not None


def _check_image_size(image_size):
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise DataError(f"image_size must be (height, width); got {image_size!r}.") from None
    if h <= 0 or w <= 0:
        raise DataError(f"image_size must be positive; got {image_size!r}.")
    return h, w


def _read_image(path, channels, size):
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as e:
        raise DataError(f"cannot read image {path}: {e}. Remove or replace the file.") from e
    return arr.reshape(arr.shape[0], arr.shape[1], channels)


# -- TFDS


_OFFLINE_HINT = (
    "Offline, use 'fashion_mnist_10k' (bundled), 'digits' (scikit-learn), "
    "'idx:/usr/share/datasets/fashion-mnist' (apt-get install dataset-fashion-mnist), or your "
    "own folder:/npz: data."
)


def _tfds_source(name, split, data_dir, download=True):
    import tensorflow_datasets as tfds

    base_name = name.split(":")[0].split("/")[0]
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        known = list(BUNDLED) + list(tfds.list_builders())
        close = difflib.get_close_matches(base_name, known, n=3, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(
            f"unknown data set {name!r}.{hint} keras-gen takes a TFDS name, "
            f"{', '.join(BUNDLED)}, or one of {', '.join(p + 'PATH' for p in PREFIXES)}."
        ) from None
    if not _tfds_prepared(builder):
        if not download:
            raise DataError(
                f"the TFDS data set {name!r} is not prepared in {builder.data_dir_root} and "
                f"download=False. {_OFFLINE_HINT}"
            )
        try:
            builder.download_and_prepare()
        except Exception as e:
            raise DataError(
                f"the TFDS data set {name!r} is not in {builder.data_dir_root} and downloading it "
                f"failed ({type(e).__name__}: {str(e)[:200]}). With internet, run "
                f"tfds.builder('{name}').download_and_prepare() once. {_OFFLINE_HINT}"
            ) from e
    base, _ = _parse_split(split)
    # Split sizes are known once the data set is prepared (under tfds.testing.mock_data they
    # may not be).
    if builder.info.splits and base not in builder.info.splits:
        raise DataError(
            f"split {split!r} does not exist in {name!r}; available: {list(builder.info.splits)}."
        )
    source = _TFDSSource(name, split, data_dir, builder.info)
    try:
        source.num_examples = builder.info.splits[split].num_examples
    except Exception:
        pass
    return source


def _tfds_prepared(builder):
    # tfds.testing.mock_data replaces as_dataset and needs no files; it marks itself through
    # the environment by patching, so accept any builder whose info has split sizes and whose
    # data directory exists, or when running under the mock.
    if _under_tfds_mock():
        return True
    return tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def _under_tfds_mock():
    import tensorflow_datasets as tfds

    as_dataset = tfds.core.DatasetBuilder.as_dataset
    return "mock" in type(as_dataset).__name__.lower() or "mock" in getattr(
        as_dataset, "__module__", ""
    )


def _tfds_class_names(features):
    """The label's ClassLabel names ("0".."9" for a ClassLabel made from a count only)."""
    names = getattr(features["label"], "names", None)
    return tuple(names) if names else None


def _tfds_image_key(name, features):
    if "image" in features:
        return "image"
    keys = [k for k, v in features.items() if type(v).__name__ == "Image"]
    if not keys:
        raise DataError(f"the TFDS data set {name!r} has no image feature.")
    return keys[0]


# --------------------------------------------------------------------------------------------
# Captioned images: `load(..., text=True)` yields (images, captions).
#
# A captioned source reads its images by index, so shuffling moves indices, never pixels, and
# yields unbatched (uint8 image, caption, label[, colour]); label -1 means "none".
#
# The tinted Fashion-MNIST sets (`fashion_mnist_10k_captions`, `fashion_mnist_captions:PATH`)
# are derived at load time: image i is tinted with colour `caption_colours(i)` (a fixed hash of
# its index in its IDX file), so the pixels are round(luminance * the colour's RGB) on a black
# background, and captioned in one of `CAPTION_TEMPLATES` (also a hash of i). The pairs in
# `UNSEEN_CAPTION_PAIRS` are left out of split "train" and make split "unseen", so a model can
# be judged on compositions it never saw; `judge_colour` reads the colour back from pixels.

CAPTION_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "pink")
# RGB in [0, 1]; every colour has a channel at 1, so the max over channels of a tinted pixel is
# the garment's luminance (`garment_luminance`), and their directions are far apart.
CAPTION_COLOUR_RGB = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0.5, 0], [0.6, 0, 1], [1, 1, 1],
     [1, 0.4, 0.7]], np.float32,
)
CAPTION_CLASS_NOUNS = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
    "ankle boot",
)
CAPTION_TEMPLATES = (
    "{a} {colour} {noun}", "{a_noun} in {colour}", "{colour} {noun}",
    "a photo of {a} {colour} {noun}", "{a_noun} coloured {colour}",
)
# (class noun, colour) never in split "train": one per class, each colour at most twice, so every
# class and every colour is still seen with others.
UNSEEN_CAPTION_PAIRS = tuple(
    (CAPTION_CLASS_NOUNS[c], CAPTION_COLOURS[(3 * c) % len(CAPTION_COLOURS)]) for c in range(10)
)
CAPTION_SEED = 23
_UNSEEN = np.zeros((len(CAPTION_CLASS_NOUNS), len(CAPTION_COLOURS)), bool)
for _noun, _colour in UNSEEN_CAPTION_PAIRS:
    _UNSEEN[CAPTION_CLASS_NOUNS.index(_noun), CAPTION_COLOURS.index(_colour)] = True
CAPTION_FILES = ("metadata.jsonl", "captions.csv")


def caption(class_index, colour_index, template=0):
    """The caption of a garment of class `class_index` in colour `colour_index`, phrased by
    `CAPTION_TEMPLATES[template]`: `caption(7, 0)` is "a red sneaker"."""
    noun, colour = CAPTION_CLASS_NOUNS[int(class_index)], CAPTION_COLOURS[int(colour_index)]
    return CAPTION_TEMPLATES[int(template)].format(
        a=_article(colour), colour=colour, noun=noun, a_noun=f"{_article(noun)} {noun}"
    )


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def caption_colours(indices, seed=CAPTION_SEED):
    """The colour index (into `CAPTION_COLOURS`) of the images at `indices` of their IDX file."""
    return (_index_hash(indices, seed) % np.uint64(len(CAPTION_COLOURS))).astype(np.int32)


def _index_hash(indices, seed):
    """splitmix64 of (index, seed): a fixed, well-mixed function of the index alone."""
    offset = np.uint64((int(seed) * 0x9E3779B97F4A7C15) % 2**64)
    with np.errstate(over="ignore"):
        z = np.asarray(indices, np.uint64) + offset
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def is_unseen_pair(classes, colours):
    """True where (class, colour) is one of `UNSEEN_CAPTION_PAIRS`."""
    return _UNSEEN[np.asarray(classes, np.int64), np.asarray(colours, np.int64)]


def tint(levels, colours):
    """Grey uint8 levels (N, H, W[, 1]) tinted with colour indices (N,): uint8 (N, H, W, 3),
    round(luminance * RGB); black stays black."""
    levels = np.asarray(levels, np.float32)
    if levels.ndim == 3:
        levels = levels[..., None]
    rgb = CAPTION_COLOUR_RGB[np.asarray(colours, np.int64)][:, None, None, :]
    return np.round(levels * rgb).astype(np.uint8)


def garment_luminance(images):
    """The luminance a tinted image was made from (its max over channels), (N, H, W, 1) in the
    images' own scale: what the class of a tinted garment is judged on."""
    return np.max(np.asarray(images), axis=-1, keepdims=True)


def judge_colour(images, threshold=0.5):
    """The colour index (into `CAPTION_COLOURS`) of each RGB image (N, H, W, 3), uint8 levels or
    floats in [0, 1]: the mean RGB of the garment's bright pixels (max channel at least
    `threshold` of the image's brightest), scaled to a max of 1, to the nearest named colour.
    Tinting scales a colour's RGB by the luminance, so the direction survives it."""
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be RGB, (N, H, W, 3); got shape {x.shape}.")
    brightness = x.max(axis=-1)
    peak = brightness.reshape(len(x), -1).max(axis=1)[:, None, None]
    bright = (brightness >= threshold * peak) & (brightness > 0)
    weights = bright[..., None].astype(np.float32)
    mean = (x * weights).sum(axis=(1, 2)) / np.maximum(weights.sum(axis=(1, 2)), 1.0)
    direction = mean / np.maximum(mean.max(axis=1, keepdims=True), 1e-6)
    distances = np.linalg.norm(direction[:, None, :] - CAPTION_COLOUR_RGB[None], axis=-1)
    return distances.argmin(axis=1).astype(np.int32)


class _CaptionedSource(_Source):
    """Images read by index (`read(i) -> uint8 HWC`), one caption each; `colours` only for the
    tinted sets."""

    def __init__(self, read, image_shape, captions, labels, num_classes, splits, colours=None):
        super().__init__(image_shape, len(captions), num_classes, splits, labels)
        self.read = read
        self.captions = np.asarray([c.encode() for c in captions], dtype=object)
        self.colours = colours

    def dataset(self, shuffle, seed):
        return self.captioned_dataset(shuffle, seed, with_labels=True).map(
            lambda x, caption, label, *colour: (x, label)
        )

    def captioned_dataset(self, shuffle, seed, with_labels):
        """Unbatched (image, caption), or (image, caption, label[, colour]) `with_labels`."""
        n = self.num_examples
        if n == 0:
            raise DataError("the selected split holds no images; choose a larger split.")
        labels = self.labels if self.labels is not None else np.full((n,), -1, np.int32)
        colours = self.colours if self.colours is not None else np.full((n,), -1, np.int32)
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

        def fetch(i):
            x, text, label, colour = tf.numpy_function(
                lambda j: (self.read(j), self.captions[j], labels[j], colours[j]), [i],
                (tf.uint8, tf.string, tf.int32, tf.int32), stateful=False,
            )
            x.set_shape(self.image_shape)
            for t in (text, label, colour):
                t.set_shape(())
            if not with_labels:
                return x, text
            return (x, text, label) + ((colour,) if self.colours is not None else ())

        return ds.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


_CAPTION_SOURCES = (
    "npz:PATH with arrays 'x' and 'text', folder:PATH with metadata.jsonl or captions.csv, "
    "fashion_mnist_10k_captions, or fashion_mnist_captions:PATH (an IDX folder)"
)


def _resolve_captioned(name, split, data_dir, channels=None, image_size=None, strict=False,
                       download=True):
    if isinstance(name, str) and name.startswith("npz:"):
        return _npz_source(name[4:], split, text=True)
    if isinstance(name, str) and name.startswith("folder:"):
        return _folder_captioned(name[7:], split, channels, image_size)
    if isinstance(name, str) and (
        name == "fashion_mnist_10k_captions" or name.startswith("fashion_mnist_captions:")
    ):
        return _tinted_source(name, split)
    hint = ""
    if name == "fashion_mnist_10k" or (isinstance(name, str) and name.startswith("idx:")):
        hint = (" Its tinted, captioned version is "
                + ("'fashion_mnist_10k_captions'." if name == "fashion_mnist_10k"
                   else f"'fashion_mnist_captions:{name[4:]}'."))
    raise DataError(
        f"text=True, but the data set {name!r} has no captions.{hint} Captioned sources: "
        f"{_CAPTION_SOURCES}. Or load it with text=False."
    )


def _tinted_source(name, split):
    base, sl = _parse_split(split)
    if name == "fashion_mnist_10k_captions":
        files = {"train": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
        folder = _DATASETS_DIR
    else:
        folder = Path(name.split(":", 1)[1])
        if not folder.is_dir():
            raise DataError(
                f"{name!r}: the IDX folder {str(folder)!r} does not exist. On Debian, "
                "`apt-get install dataset-fashion-mnist` puts Fashion-MNIST in "
                "/usr/share/datasets/fashion-mnist."
            )
        files = {b: (f"{p}-images-idx3-ubyte", f"{p}-labels-idx1-ubyte")
                 for b, p in (("train", "train"), ("test", "t10k"))
                 if _first_existing(folder, f"{p}-images-idx3-ubyte")}
    # "unseen" holds the left-out pairs of the training images; a test split holds every pair.
    splits = tuple(files) + ("unseen",)
    if base not in splits:
        raise DataError(
            f"split {split!r} does not exist in {name!r}; available: {list(splits)} ('unseen': "
            "the (class, colour) pairs in UNSEEN_CAPTION_PAIRS, never in 'train')."
        )
    image_file, label_file = files["train" if base == "unseen" else base]
    lab_path = _first_existing(folder, label_file.removesuffix(".gz"))
    if lab_path is None:
        raise DataError(f"{name!r} needs the labels {label_file}[.gz] in {folder}.")
    grey = _read_idx(_first_existing(folder, image_file.removesuffix(".gz")))
    classes = _read_idx(lab_path).astype(np.int32)
    indices = np.arange(len(grey))
    colours = caption_colours(indices)
    if base != "test":
        keep = is_unseen_pair(classes, colours) == (base == "unseen")
        indices = indices[keep]
    start, stop = _slice_bounds(sl, len(indices), split)
    indices = indices[start:stop]
    templates = _index_hash(indices, CAPTION_SEED + 1) % np.uint64(len(CAPTION_TEMPLATES))
    captions = [caption(classes[i], colours[i], t) for i, t in zip(indices, templates)]

    def read(j):
        i = indices[j]
        return tint(grey[i : i + 1], colours[i : i + 1])[0]

    return _CaptionedSource(read, grey.shape[1:] + (3,), captions, classes[indices], 10, splits,
                            colours=colours[indices])


def _npz_missing(path, keys, text):
    """The message for an npz: file without the arrays `load` needs, or None."""
    if "x" not in keys:
        return (f"{path} has arrays {keys}; keras-gen needs an array 'x' of images (N, H, W) or "
                "(N, H, W, C), optionally 'y' of integer labels (N,)"
                + (" and, with text=True, 'text' of captions (N,)." if text else "."))
    if text and "text" not in keys:
        return (f"text=True, but {path} has no captions: its arrays are {keys}. Save the "
                "captions as an array 'text' of N strings (np.savez(path, x=images, "
                "text=np.array(captions))), or load it with text=False.")
    return None


def _captioned_arrays(path, x, labels, num_classes, text, split):
    text = np.asarray(text)
    if text.dtype.kind not in "US" or text.ndim != 1:
        raise DataError(
            f"{path}: 'text' must be a 1-D array of strings (one caption per image); got dtype "
            f"{text.dtype} and shape {text.shape}."
        )
    if len(text) != len(x):
        raise DataError(
            f"{path}: {len(x)} images but {len(text)} captions in 'text'; every image needs "
            "exactly one caption. Save as many captions as images."
        )
    captions = [t.decode() if isinstance(t, bytes) else str(t) for t in text]
    _check_captions(path, captions, [f"text[{i}]" for i in range(len(captions))])
    # The split of the images, with their indices standing in for labels, picks the captions.
    part = _array_source(x, np.arange(len(x)), None, split, ("train",))
    images, kept = part.images, part.labels
    return _CaptionedSource(
        lambda j: images[j], images.shape[1:], [captions[i] for i in kept],
        None if labels is None else labels[kept], num_classes, ("train",),
    )


def _check_captions(where, captions, names):
    empty = [n for n, c in zip(names, captions) if not c.strip()]
    if empty:
        raise DataError(
            f"{where}: {len(empty)} empty caption(s), e.g. {empty[:5]}. Every image needs a "
            "caption with words; write one, or remove the image."
        )


def _folder_captioned(root, split, channels, image_size):
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder: {str(root)!r} is not a folder.")
    base, sl = _parse_split(split)
    split_dirs = sorted(d.name for d in root.iterdir() if d.is_dir() and _caption_file(d))
    if _caption_file(root):
        folder, splits = root, ("train",)
        if base != "train":
            raise DataError(
                f"split {split!r} does not exist in {root}; a folder with one caption file is "
                "one 'train' split (use 'train[:90%]' to hold data out, or one sub-folder per "
                "split, each with its own caption file)."
            )
    elif split_dirs:
        splits = tuple(split_dirs)
        if base not in splits:
            raise DataError(f"split {split!r} is not a sub-folder of {root}; found {list(splits)}.")
        folder = root / base
    else:
        raise DataError(
            f"text=True, but the folder {str(root)!r} has no caption file: expected "
            f"{' or '.join(CAPTION_FILES)} in it (or in each split sub-folder). metadata.jsonl "
            'holds one {"file_name": "a.png", "text": "a red sneaker"} per line (the Hugging '
            "Face image-folder layout); captions.csv has the header file_name,text. Or load "
            "the folder with text=False."
        )
    caption_file = _caption_file(folder)
    rows = _read_caption_file(caption_file)
    names = [f"{caption_file.name} line {line}" for line, _, _ in rows]
    _check_captions(caption_file, [t for _, _, t in rows], names)
    files = [folder / f for _, f, _ in rows]
    missing = [f"{f} ({n})" for (_, f, _), n, p in zip(rows, names, files) if not p.is_file()]
    if missing:
        raise DataError(
            f"{caption_file}: {len(missing)} file_name(s) do not exist in {folder}: "
            f"{missing[:5]}. file_name is relative to the caption file's folder; fix the names "
            "or add the images."
        )
    seen = {p.resolve() for p in files}
    if len(seen) != len(files):
        dup = sorted({f for _, f, _ in rows if sum(g == f for _, g, _ in rows) > 1})
        raise DataError(f"{caption_file}: file names listed more than once: {dup[:5]}.")
    uncaptioned = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.resolve() not in seen
    )
    if uncaptioned:
        raise DataError(
            f"{len(uncaptioned)} image(s) in {folder} have no caption in {caption_file.name}: "
            f"{uncaptioned[:5]}{' ...' if len(uncaptioned) > 5 else ''}. Add a line for each, "
            "or move them out of the folder."
        )
    start, stop = _slice_bounds(sl, len(files), split)
    files, captions = [str(p) for p in files[start:stop]], [t for _, _, t in rows][start:stop]
    shape, resize = _probe_images(files, folder, channels, image_size)

    def read(j):
        return _read_image(files[int(j)], shape[2], shape[:2] if resize else None)

    return _CaptionedSource(read, shape, captions, None, None, splits)


def _caption_file(folder):
    for name in CAPTION_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _read_caption_file(path):
    """[(line number, file_name, text)] of a metadata.jsonl or captions.csv file."""
    import csv
    import json

    rows = []
    # utf-8-sig: spreadsheet programs start their CSV files with a byte-order mark.
    with open(path, newline="", encoding="utf-8-sig") as f:
        if path.suffix == ".jsonl":
            for line, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path} line {line} is not JSON ({e}): {raw[:80]!r}") from e
                rows.append((line, row, row.keys() if isinstance(row, dict) else ()))
        else:
            reader = csv.DictReader(f)
            for row in reader:
                rows.append((reader.line_num, row, reader.fieldnames or ()))
    out = []
    for line, row, keys in rows:
        if "file_name" not in keys or "text" not in keys:
            raise DataError(
                f"{path} line {line}: expected the fields 'file_name' and 'text'; found "
                f"{sorted(keys)}."
            )
        name, text = row["file_name"], row["text"]
        if not isinstance(name, str) or not isinstance(text, (str, type(None))):
            raise DataError(f"{path} line {line}: file_name and text must be strings; got {row}.")
        out.append((line, name, text or ""))
    if not out:
        raise DataError(f"{path} lists no images; write one line per image (file_name, text).")
    return out


# --------------------------------------------------------------------------------------------
# Pairs for image-to-image translation: `load_pairs` yields (input, target) batches.
#
# Pairs come from a paired source (a folder with A/ and B/ sub-folders, a folder of side-by-side
# images, an npz: file with arrays `a` and `b`) or are derived from any source `load` reads by a
# task computed in the tf.data pipeline. Every pair source yields uint8 levels first, like the
# image sources, and `_to_range` turns both halves of a pair into the model's range.

PAIR_TASKS = ("edges", "inpaint", "colorize", "superres")
PAIR_RANGES = ("tanh", "unit")
PAIR_DIRECTIONS = ("AtoB", "BtoA")
# The range `Pix2Pix` trains on (its `data_range`); `load_pairs` yields it unless told otherwise.
DEFAULT_PAIR_RANGE = "tanh"
# Grey level a hole is filled with: mid-grey, 0.0 in the tanh range.
HOLE_FILL = 128.0


@dataclasses.dataclass(frozen=True)
class PairInfo:
    """What a translation model needs to know about paired data before it sees a batch."""

    name: str
    task: str | None
    input_shape: tuple  # (H, W, C) of the inputs
    target_shape: tuple  # (H, W, C) of the targets
    num_classes: int | None  # labels of the underlying images (derived tasks), else None
    num_examples: int
    splits: tuple


# The keywords of `load` that say how a source is read and batched; `load_pairs` takes them with
# `load`'s defaults (`read_options`).
READ_OPTIONS = ("shuffle", "seed", "data_dir", "drop_remainder", "channels", "image_size",
                "strict", "download")


def read_options(caller, options):
    """`options` (keywords given to `caller`) as `load`'s READ_OPTIONS, with `load`'s defaults
    for those not given; a keyword that is none of them is an error naming what it takes."""
    unknown = sorted(set(options) - set(READ_OPTIONS))
    if unknown:
        raise TypeError(
            f"{caller}() got unexpected keyword arguments {unknown}; besides its own it takes "
            f"load's {', '.join(READ_OPTIONS)}."
        )
    defaults = inspect.signature(load).parameters
    return types.SimpleNamespace(**{k: options.get(k, defaults[k].default) for k in READ_OPTIONS})


def load_pairs(
    source,
    task=None,
    split="train",
    batch_size=64,
    image_range=None,
    with_labels=False,
    direction="AtoB",
    hole_size=None,
    scale=4,
    edge_threshold=0.2,
    **options,
):
    """Returns a batched, prefetched `tf.data.Dataset` of `(input_image, target_image)` pairs
    (or `(input, target, label)` with `with_labels=True`), NHWC float32.

    Args:
      source: a paired source, with `task=None`:
        - `folder:PATH` with sub-folders `A/` (inputs) and `B/` (targets) of files with matching
          names (extensions may differ), optionally split as `A/train/`, `A/test/`, ...;
        - `folder:PATH` of side-by-side images (width twice the height), the layout of the
          public pix2pix data sets (facades, maps, edges2shoes, ...): left half input, right
          half target; `PATH/train/`, `PATH/val/`, `PATH/test/` sub-folders are splits;
        - `npz:PATH` with arrays `a` (inputs) and `b` (targets), (N, H, W[, C]) each;
        or, with a `task`, any name `load` reads (TFDS name, `digits`, `fashion_mnist_10k`,
        `npz:` with `x`, `folder:`, `idx:`).
      task: None (a paired source), or a pair derived from each image in the pipeline:
        - "edges": binary edge map -> image. Edge pixels (255) are those whose Sobel gradient
          magnitude on the grey image in [0, 1], normalised so a full black-to-white step is
          1, exceeds `edge_threshold`; the rest are 0. A flat image has no edges.
        - "inpaint": image with a square hole of side `hole_size` (default: half the smaller
          side) filled with mid-grey -> image. The hole's position is random, fresh every
          epoch and repeatable with `seed`.
        - "colorize": grey (ITU-R 601 luma, rounded to levels) -> colour image; colour data only.
        - "superres": each `scale` x `scale` block replaced by its mean (the downsampled image
          shown at full size, nearest neighbour) -> image; the sides must divide by `scale`.
      image_range: "tanh" ([-1, 1]) or "unit" ([0, 1]) for both images of a pair; None: "tanh",
        what `Pix2Pix` trains on by default (its `data_range`).
      with_labels: also yield the label of each image (derived tasks on labelled data).
      direction: "AtoB" (A / left half / `a` is the input) or "BtoA" (swapped), as in pix2pix.
      split, batch_size, and the keywords of `options` (READ_OPTIONS: shuffle, seed,
        data_dir, drop_remainder, channels, image_size, strict, download): as in `load`, with
        its defaults; `image_size` is the size of one image of a pair (each half of a
        side-by-side image), `channels` applies to both images of a paired folder.
    """
    read = read_options("load_pairs", options)
    seed = read.seed
    image_range = DEFAULT_PAIR_RANGE if image_range is None else image_range
    checks.choice("image_range", image_range, PAIR_RANGES)
    batch_size = checks.positive_int("batch_size", batch_size)
    source = _resolve_pairs(
        source, task, split, read.data_dir, read.channels, read.image_size, read.strict,
        read.download, direction, hole_size, scale, edge_threshold,
    )
    if with_labels and source.num_classes is None:
        raise DataError(
            f"with_labels=True, but the pairs of {source.name!r} have no labels (only a task "
            "derived from a labelled data set has them). Load them with with_labels=False."
        )
    ds = source.dataset(shuffle=read.shuffle, seed=seed).batch(
        batch_size, drop_remainder=read.drop_remainder)
    if source.task is not None:
        # One stateless seed pair per batch, fresh every epoch and repeatable with `seed` (the
        # holes of "inpaint"; the other tasks draw nothing).
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, s: (*source.make_pair(batch[0], s), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def finish(inputs, targets, labels):
        pair = (_to_range(inputs, image_range), _to_range(targets, image_range))
        return pair + (labels,) if with_labels else pair

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    sharding = tf.data.Options()
    sharding.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(sharding).prefetch(tf.data.AUTOTUNE)


def pair_info(source, task=None, split="train", data_dir=None, download=True, **options):
    """`PairInfo(name, task, input_shape, target_shape, num_classes, num_examples, splits)` of
    what `load_pairs(source, task, split, ...)` yields, without reading the pixel data.
    `options`: `load_pairs`' channels, image_size, strict, direction, hole_size, scale,
    edge_threshold."""
    s = _resolve_pairs(
        source, task, split, data_dir, options.get("channels"), options.get("image_size"),
        options.get("strict", False), download, options.get("direction", "AtoB"),
        options.get("hole_size"), options.get("scale", 4), options.get("edge_threshold", 0.2),
    )
    return PairInfo(s.name, s.task, s.input_shape, s.target_shape, s.num_classes, s.num_examples,
                    s.splits)


# -- the derived tasks, on float32 levels 0..255 (batch, H, W, C)


def grey_levels(levels):
    """ITU-R 601 luma of RGB levels (`tf.image.rgb_to_grayscale`: 0.2989 R + 0.5870 G +
    0.1140 B), rounded; grey stays."""
    levels = tf.cast(levels, tf.float32)
    if levels.shape[-1] == 1:
        return levels
    return tf.round(tf.image.rgb_to_grayscale(levels))


def edge_map(levels, threshold=0.2):
    """255 where the Sobel gradient magnitude of the grey image (in [0, 1], a full step
    normalised to 1) exceeds `threshold`, else 0. `tf.image.sobel_edges` pads by reflection, so
    a flat image (borders included) gives no edges."""
    grey = grey_levels(levels) / 255.0
    gradients = tf.image.sobel_edges(grey)  # (batch, H, W, 1, [dy, dx])
    magnitude = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=-1)) / 4.0
    return tf.where(magnitude > threshold, 255.0, 0.0)


def hole_mask(batch, height, width, hole_size, seed_pair):
    """(batch, H, W, 1) float32: 1 inside one `hole_size` square per image at a position drawn
    from the stateless `seed_pair`, 0 outside."""
    limits = tf.constant([height - hole_size + 1, width - hole_size + 1], tf.int32)
    corners = tf.random.stateless_uniform(
        (batch, 2), seed=tf.cast(seed_pair, tf.int32), minval=0, maxval=tf.int32.max, dtype=tf.int32
    ) % limits
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    top, left = corners[:, 0, None, None], corners[:, 1, None, None]
    inside = (rows >= top) & (rows < top + hole_size) & (cols >= left) & (cols < left + hole_size)
    return tf.cast(inside, tf.float32)[..., None]


def block_means(levels, scale):
    """Each `scale` x `scale` block replaced by its mean: the image downsampled by area
    averaging and shown at full size (nearest neighbour)."""
    levels = tf.cast(levels, tf.float32)
    small = tf.nn.avg_pool2d(levels, scale, scale, "VALID")
    return tf.repeat(tf.repeat(small, scale, axis=1), scale, axis=2)


# -- pair sources


class _PairSource:
    """Base of the pair sources: shapes, size, and `dataset()` of unbatched (input, target,
    label) uint8 triples (label -1: none)."""

    task = None

    def __init__(self, name, input_shape, target_shape, num_examples, num_classes, splits):
        self.name = name
        self.input_shape = tuple(int(d) for d in input_shape)
        self.target_shape = tuple(int(d) for d in target_shape)
        self.num_examples = int(num_examples)
        self.num_classes = num_classes
        self.splits = tuple(splits)


class _IndexedPairs(_PairSource):
    """Stored pairs read by index (`read(i) -> (input, target)` uint8), so shuffling moves
    indices, never decoded images."""

    def __init__(self, name, read, input_shape, target_shape, num_examples, splits):
        super().__init__(name, input_shape, target_shape, num_examples, None, splits)
        self.read = read

    def dataset(self, shuffle, seed):
        if self.num_examples == 0:
            raise DataError("the selected split holds no pairs; choose a larger split.")
        ds = tf.data.Dataset.range(self.num_examples)
        if shuffle:
            ds = ds.shuffle(self.num_examples, seed=seed, reshuffle_each_iteration=True)

        def fetch(i):
            a, b = tf.numpy_function(self.read, [i], (tf.uint8, tf.uint8), stateful=False)
            a.set_shape(self.input_shape)
            b.set_shape(self.target_shape)
            return a, b, tf.constant(-1, tf.int32)

        return ds.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class _DerivedPairs(_PairSource):
    """Pairs made from the images of any `load` source by a task."""

    def __init__(self, name, images, task, hole_size, scale, edge_threshold):
        h, w, c = images.image_shape
        input_channels = c if task in ("inpaint", "superres") else 1
        super().__init__(name, (h, w, input_channels), (h, w, c), images.num_examples,
                         images.num_classes, images.splits)
        self.images, self.task = images, task
        self.hole_size, self.scale, self.edge_threshold = hole_size, scale, edge_threshold

    def dataset(self, shuffle, seed):
        # (image, label): `load_pairs` makes each batch's inputs with `make_pair`.
        return self.images.dataset(shuffle, seed)

    def make_pair(self, images, seed_pair):
        """(input, target) float32 levels of a batch of uint8 images."""
        target = tf.cast(images, tf.float32)
        if self.task == "edges":
            return edge_map(target, self.edge_threshold), target
        if self.task == "colorize":
            return grey_levels(target), target
        if self.task == "superres":
            return block_means(target, self.scale), target
        h, w, _ = self.target_shape  # inpaint
        mask = hole_mask(tf.shape(target)[0], h, w, self.hole_size, seed_pair)
        return target * (1.0 - mask) + HOLE_FILL * mask, target


def _resolve_pairs(source, task, split, data_dir, channels, image_size, strict, download,
                   direction, hole_size, scale, edge_threshold):
    checks.choice("direction", direction, PAIR_DIRECTIONS)
    if task is not None:
        checks.choice("task", task, PAIR_TASKS)
        if direction != "AtoB":
            raise DataError(
                f"direction={direction!r} swaps the images of a paired source; a task "
                f"({task!r}) always makes the input from the image. Leave direction='AtoB'."
            )
        images = _resolve(source, split, data_dir, channels=channels, image_size=image_size,
                          strict=strict, download=download)
        hole_size, scale = _check_task(source, task, images.image_shape, hole_size, scale,
                                       edge_threshold)
        return _DerivedPairs(source, images, task, hole_size, scale, edge_threshold)
    if not isinstance(source, str) or not source.startswith(("folder:", "npz:")):
        raise DataError(
            f"{source!r} is a data set of single images, not pairs: derive pairs from it with "
            f"task= one of {', '.join(PAIR_TASKS)} (command: --task), or give a paired source "
            "(folder:PATH with A/ and B/ sub-folders or side-by-side images; npz:PATH with "
            "arrays 'a' and 'b')."
        )
    if source.startswith("npz:"):
        pairs = _npz_pairs(source[4:], split)
    elif (Path(source[7:]) / "A").is_dir() or (Path(source[7:]) / "B").is_dir():
        pairs = _folder_pairs(source[7:], split, channels, image_size, strict)
    else:
        pairs = _side_by_side_pairs(source[7:], split, channels, image_size, strict)
    if direction == "BtoA":
        read = pairs.read
        pairs = _IndexedPairs(source, lambda i: read(i)[::-1], pairs.target_shape,
                              pairs.input_shape, pairs.num_examples, pairs.splits)
    pairs.name = source
    return pairs


def _check_task(name, task, shape, hole_size, scale, edge_threshold):
    h, w, c = shape
    if task == "colorize" and c != 3:
        raise DataError(
            f"task='colorize' turns grey into colour and needs colour images (3 channels); "
            f"{name!r} has {c} channel(s). Use colour data, or another task (edges, inpaint, "
            "superres)."
        )
    if task == "inpaint":
        hole_size = min(h, w) // 2 if hole_size is None else hole_size
        if isinstance(hole_size, bool) or not isinstance(hole_size, (int, np.integer)) \
                or not 1 <= hole_size < min(h, w):
            raise DataError(
                f"hole_size must be an integer from 1 to {min(h, w) - 1} (smaller than the "
                f"{h}x{w} images of {name!r}); got {hole_size!r}."
            )
    if task == "superres":
        scale = checks.positive_int("scale", scale)
        if scale < 2 or h % scale or w % scale:
            raise DataError(
                f"task='superres' with scale={scale} needs image sides divisible by the scale "
                f"(and scale >= 2); {name!r} has {h}x{w} images. Choose a scale that divides "
                "both sides, or resize the images (image_size= for folder: data)."
            )
    if task == "edges":
        checks.non_negative_number("edge_threshold", edge_threshold)
    return hole_size, scale


def _npz_pairs(path, split):
    def missing(path, keys):
        if "a" in keys and "b" in keys:
            return None
        hint = (" It holds single images ('x'): derive pairs with task=... instead."
                if "x" in keys else "")
        return (f"{path} has arrays {keys}; paired data needs arrays 'a' (inputs) and 'b' "
                f"(targets), (N, H, W) or (N, H, W, C) each.{hint}")

    path, arrays = _read_npz(path, missing)
    a, b = arrays["a"], arrays["b"]
    a, b = _levels_from_array(a, f"{path} 'a'"), _levels_from_array(b, f"{path} 'b'")
    if len(a) != len(b) or a.shape[1:3] != b.shape[1:3]:
        raise DataError(
            f"{path}: 'a' and 'b' must hold as many images of the same height and width; got "
            f"shapes {a.shape} and {b.shape}."
        )
    a_part = _array_source(a, None, None, split, ("train",))
    b_part = _array_source(b, None, None, split, ("train",))
    a, b = a_part.images, b_part.images
    return _IndexedPairs(f"npz:{path}", lambda i: (a[i], b[i]), a.shape[1:], b.shape[1:], len(a),
                         ("train",))


def _folder_pairs(root, split, channels, image_size, strict):
    root = Path(root)
    base, sl = _parse_split(split)
    sides = {}
    for side in ("A", "B"):
        folder = root / side
        if not folder.is_dir() or not any(folder.iterdir()):
            raise DataError(
                f"paired folder {str(root)!r}: the sub-folder {side}/ is missing or empty; it "
                "needs A/ (inputs) and B/ (targets) holding files with matching names."
            )
        # All of the split, so both sides are matched by name before any slice is taken.
        images = _folder_source(str(folder), base, channels, image_size, strict)
        top = folder / base if (folder / base).is_dir() else folder
        sides[side] = (images, {str(Path(f).relative_to(top).with_suffix("")): f for f in images.files})
    (a, a_names), (b, b_names) = sides["A"], sides["B"]
    only_a, only_b = sorted(set(a_names) - set(b_names)), sorted(set(b_names) - set(a_names))
    if only_a or only_b:
        raise DataError(
            f"paired folder {str(root)!r}: A/ and B/ must hold files with the same names. Only "
            f"in A/: {only_a[:5]}{' ...' if len(only_a) > 5 else ''} ({len(only_a)}); only in "
            f"B/: {only_b[:5]}{' ...' if len(only_b) > 5 else ''} ({len(only_b)})."
        )
    if a.image_shape[:2] != b.image_shape[:2]:
        raise DataError(
            f"paired folder {str(root)!r}: the images in A/ are {a.image_shape[1]}x"
            f"{a.image_shape[0]} (WxH), those in B/ {b.image_shape[1]}x{b.image_shape[0]}; a pair "
            "needs one size. Pass image_size=(height, width) to resize both."
        )
    names = sorted(a_names)
    start, stop = _slice_bounds(sl, len(names), split)
    names = names[start:stop]
    files = [(a_names[n], b_names[n]) for n in names]
    size_a = a.image_shape[:2] if a.resize else None
    size_b = b.image_shape[:2] if b.resize else None

    def read(i):
        path_a, path_b = files[int(i)]
        return (_read_image(path_a, a.image_shape[2], size_a),
                _read_image(path_b, b.image_shape[2], size_b))

    return _IndexedPairs(f"folder:{root}", read, a.image_shape, b.image_shape, len(files), a.splits)


def _side_by_side_pairs(root, split, channels, image_size, strict):
    if image_size is not None:
        h, w = _check_image_size(image_size)
        image_size = (h, 2 * w)
    images = _folder_source(root, split, channels, image_size, strict)
    h, w, c = images.image_shape
    if w != 2 * h:
        raise DataError(
            f"{root!r} has neither A/ and B/ sub-folders nor side-by-side pairs (images twice as "
            f"wide as high, input left, target right): its images are {w}x{h} (WxH). Arrange "
            "the pairs in one of those layouts, or derive pairs from single images with task=."
        )
    files, resize = images.files, images.resize

    def read(i):
        both = _read_image(files[int(i)], c, (h, w) if resize else None)
        return both[:, : w // 2], both[:, w // 2 :]

    return _IndexedPairs(f"folder:{root}", read, (h, w // 2, c), (h, w // 2, c), len(files),
                         images.splits)
