"""`DataInfo.class_names`: label index -> name, from class sub-folders, TFDS ClassLabel names, the
bundled sets, and `idx:` folders that hold Fashion-MNIST; None where a source has no names."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_gen import data

FASHION_MNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def labels_of(name, n, **kwargs):
    ds = data.load(name, split=f"train[:{n}]", batch_size=n, with_labels=True, shuffle=False, **kwargs)
    return next(iter(ds))[1].numpy()


def test_bundled_sets_name_their_classes():
    fashion = data.info("fashion_mnist_10k")
    assert fashion.class_names == FASHION_MNIST and len(fashion.class_names) == fashion.num_classes
    # Index 9 is the ankle boot, as in Fashion-MNIST's own table: the first test image is one.
    assert fashion.class_names[labels_of("fashion_mnist_10k", 1)[0]] == "Ankle boot"
    digits = data.info("digits")
    assert digits.class_names == tuple(str(d) for d in range(10))


def test_folder_class_names_follow_the_label_indices(tmp_path):
    # Sorted folder names are the labels 0, 1, 2; each folder's images have their own grey level.
    for level, name in ((30, "boot"), (130, "coat"), (230, "shirt")):
        (tmp_path / name).mkdir()
        for k in range(2):
            Image.fromarray(np.full((8, 8), level, np.uint8)).save(tmp_path / name / f"{k}.png")
    info = data.info(f"folder:{tmp_path}")
    assert info.class_names == ("boot", "coat", "shirt") and info.num_classes == 3
    ds = data.load(f"folder:{tmp_path}", batch_size=6, with_labels=True, shuffle=False, image_range="levels")
    images, labels = (t.numpy() for t in next(iter(ds)))
    level_of = {"boot": 30, "coat": 130, "shirt": 230}
    for image, label in zip(images, labels):
        assert image.max() == level_of[info.class_names[label]]


def test_folder_layouts_without_classes_and_with_splits(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(plain / "a.png")
    assert data.info(f"folder:{plain}").class_names is None
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / "split" / split / name).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "split" / split / name / "a.png")
    assert data.info(f"folder:{tmp_path / 'split'}", split="test").class_names == ("cat", "dog")


def test_tfds_class_names_come_from_the_label_feature():
    with tfds.testing.mock_data(num_examples=4):
        fashion = data.info("fashion_mnist")
        assert fashion.class_names == tuple(tfds.builder("fashion_mnist").info.features["label"].names)
        assert fashion.class_names[7] == "Sneaker" and len(fashion.class_names) == 10
        # A ClassLabel made from a count (cifar10's names come with its download): "0".."9".
        assert data.info("cifar10").class_names == tuple(str(d) for d in range(10))


def write_idx(folder, prefix, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, *images.shape) + images.astype(np.uint8).tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, len(labels)) + labels.astype(np.uint8).tobytes())


def test_idx_folders_are_named_only_when_they_hold_fashion_mnist(tmp_path):
    # The bundled test split written out as IDX files is Fashion-MNIST: named.
    bundled = data.load("fashion_mnist_10k", split="train[:20]", batch_size=20, with_labels=True,
                        shuffle=False, image_range="levels")
    images, labels = (t.numpy() for t in next(iter(bundled)))
    write_idx(tmp_path / "fashion", "t10k", images[..., 0], labels)
    assert data.info(f"idx:{tmp_path / 'fashion'}", split="test").class_names == FASHION_MNIST
    # The same shapes and classes, other pixels (MNIST, say): no names to guess.
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "other", "t10k", rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10)
    other = data.info(f"idx:{tmp_path / 'other'}", split="test")
    assert other.num_classes == 10 and other.class_names is None


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_is_named_in_both_splits():
    for split in ("train", "test"):
        assert data.info(f"idx:{DEBIAN_FASHION_MNIST}", split=split).class_names == FASHION_MNIST


def test_npz_labels_have_no_names(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    info = data.info(f"npz:{tmp_path / 'd.npz'}")
    assert info.num_classes == 4 and info.class_names is None
