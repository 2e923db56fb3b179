"""Callbacks that show a generative model's progress: sample grids in TensorBoard and as PNG."""

from __future__ import annotations

import math
import os

import numpy as np
import keras
import tensorflow as tf


def make_grid(images, columns=None, padding=1):
    """Tiles images (n, H, W, C) in [0, 1] into one uint8 image (rows*H, columns*W, C)."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (n, H, W, 1 or 3); got shape {images.shape}.")
    n, h, w, c = images.shape
    columns = columns or max(1, int(math.ceil(math.sqrt(n))))
    rows = max(1, int(math.ceil(n / columns)))
    grid = np.ones((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.float32)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = images[i]
    return np.round(np.clip(grid, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_grid(path, images, columns=None):
    """Writes `make_grid(images)` as a PNG file."""
    from PIL import Image

    grid = make_grid(images, columns)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path


def default_labels(model, n):
    """Labels for a conditional model's grid: classes in order, one per column cycle."""
    num_classes = getattr(model, "num_classes", None)
    return None if num_classes is None else np.arange(n) % num_classes


class SampleGrid(keras.callbacks.Callback):
    """Every `every` epochs, generates `n` images from fixed noise (`seed`) and writes them to
    TensorBoard (`log_dir`, tag "samples") and/or PNG files `png_dir/epoch_NNN.png`.

    Fixed noise makes successive grids comparable: the same latent vector becomes the same cell.
    """

    def __init__(self, log_dir=None, png_dir=None, n=64, seed=0, labels=None, every=1, tag="samples"):
        super().__init__()
        if log_dir is None and png_dir is None:
            raise ValueError("SampleGrid needs log_dir (TensorBoard), png_dir (PNG files) or both.")
        self.log_dir, self.png_dir = log_dir, png_dir
        self.n, self.seed, self.labels, self.every, self.tag = n, seed, labels, every, tag
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        labels = self.labels if self.labels is not None else default_labels(self.model, self.n)
        images = self.model.generate(self.n, seed=self.seed, labels=labels)
        if self.png_dir is not None:
            os.makedirs(self.png_dir, exist_ok=True)
            save_grid(os.path.join(self.png_dir, f"epoch_{epoch + 1:03d}.png"), images)
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
            grid = make_grid(images)
            with self._writer.as_default():
                tf.summary.image(self.tag, grid[None], step=epoch + 1)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
