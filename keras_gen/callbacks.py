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


class Evaluate(keras.callbacks.Callback):
    """Every `every` epochs, computes the family's quality metric on validation data and puts it
    into the Keras `logs` as "val_<metric>", so `EarlyStopping(monitor="val_fid")`,
    `ModelCheckpoint(monitor="val_fid", save_best_only=True)` and Keras's `TensorBoard` (as
    validation/epoch_fid) see it. List `Evaluate` *before* those callbacks: Keras runs callbacks
    in order and they share one `logs` dict. Keras cannot guess the direction of a new metric:
    pass `mode="min"` to `EarlyStopping` / `ModelCheckpoint` (every value here is lower-better).

    Args:
      data: validation data: a `tf.data.Dataset` (or NumPy array) of images, or
        (images, labels) batches.
      every: evaluate after every `every`-th epoch (other epochs have no "val_<metric>").
      metrics: names for `keras_gen.metrics.evaluate_model`; None picks the family's: "fid" for
        GANs, "neg_elbo" for VAEs (add "neg_iwae" for the importance-weighted bound),
        "bits_per_dim" for PixelCNN.
      num_samples: generated images (and at most as many validation images) for FID/KID. Small
        counts bias FID upwards; compare values computed with the same count.
      extractor: feature extractor for FID/KID (see `keras_gen.metrics.feature_extractor`);
        None: "fashion_mnist" for 28x28 grey images, "inception_v3" for colour.
      log_dir: if given, also writes the values as TensorBoard scalars `val_<metric>` under
        `log_dir/evaluation`, with the epoch (0-based, as Keras's `epoch_*` scalars) as step.
      data_range: range of `data` for FID/KID; None takes a GAN's `image_range`, else "unit".
      num_importance_samples: k of the VAE's IWAE bound (default 100 when "neg_iwae" is asked).
      seed: generation seed, the same at every evaluation so values are comparable.
    """

    def __init__(self, data, every=1, metrics=None, num_samples=1000, extractor=None,
                 log_dir=None, data_range=None, num_importance_samples=None, seed=0):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer (epochs); got {every!r}.")
        self.data, self.every, self.metrics = data, every, metrics
        self.num_samples, self.extractor, self.log_dir = num_samples, extractor, log_dir
        self.data_range, self.num_importance_samples, self.seed = (
            data_range, num_importance_samples, seed)
        self._reference = None
        self._writer = None

    def evaluate(self):
        """The metrics of the current model as a dict {"val_<metric>": value}."""
        from keras_gen import metrics as kg_metrics

        model = self.model
        names = self.metrics if self.metrics is not None else kg_metrics.default_metrics(model)
        names = [names] if isinstance(names, str) else list(names)
        quality = [n for n in names if n in kg_metrics.QUALITY_METRICS]
        values = {}
        if quality:
            extractor = self.extractor or kg_metrics.default_extractor(model.image_shape)
            data_range = self.data_range or (
                model.image_range if getattr(model, "image_range", None) in ("tanh", "unit")
                else "unit")
            if self._reference is None:  # the validation data do not change: extract once
                self._reference = kg_metrics.feature_statistics(
                    self.data, extractor, self.num_samples, data_range=data_range, seed=self.seed)
            values.update(kg_metrics.quality_metrics(
                model, self._reference, quality, extractor, self.num_samples,
                data_range=data_range, seed=self.seed))
            values.pop("num_samples"), values.pop("num_reference")
        others = [n for n in names if n not in kg_metrics.QUALITY_METRICS]
        if others:
            values.update(kg_metrics.evaluate_model(
                model, self.data, others, num_importance_samples=self.num_importance_samples,
                seed=self.seed))
        return {f"val_{k}": float(v) for k, v in values.items()}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        values = self.evaluate()
        if logs is not None:
            logs.update(values)
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "evaluation"))
            with self._writer.as_default():
                for name, value in values.items():
                    tf.summary.scalar(name, value, step=epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Reconstructions(keras.callbacks.Callback):
    """Every `every` epochs, shows fixed validation images beside their reconstructions
    (`model.reconstruct`), in TensorBoard (`log_dir`, tag "reconstructions") and/or PNG files
    `png_dir/reconstructions_NNN.png`. Each pair is original then reconstruction, left to right.

    Args:
      images: the images to reconstruct, (n, H, W, C) in the model's data range ([0, 1] for a
        VAE), or a dataset whose first `n` images (and labels, for conditional models) are used.
      labels: labels of `images` for a conditional model (taken from the dataset when it has them).
      n: how many images to take from a dataset (all of an array are used).
    """

    def __init__(self, images, log_dir=None, png_dir=None, labels=None, n=16, every=1,
                 tag="reconstructions"):
        super().__init__()
        if log_dir is None and png_dir is None:
            raise ValueError(
                "Reconstructions needs log_dir (TensorBoard), png_dir (PNG files) or both."
            )
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer (epochs); got {every!r}.")
        if isinstance(images, tf.data.Dataset):
            images, labels = _first_images(images, n, labels)
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
            raise ValueError(
                f"images must be a non-empty batch (n, H, W, 1 or 3); got shape {images.shape}."
            )
        self.images = images
        self.labels = None if labels is None else np.asarray(labels)
        self.log_dir, self.png_dir, self.every, self.tag = log_dir, png_dir, every, tag
        self._writer = None

    def grid_images(self):
        """Originals and reconstructions interleaved: (2n, H, W, C) in [0, 1]."""
        labels = self.labels if getattr(self.model, "num_classes", None) else None
        recon = np.asarray(self.model.reconstruct(self.images, labels=labels), np.float32)
        pairs = np.stack([np.clip(self.images, 0.0, 1.0), recon], axis=1)
        return pairs.reshape((-1,) + self.images.shape[1:])

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        images = self.grid_images()
        # An even number of columns keeps each original next to its reconstruction.
        columns = 2 * max(1, int(math.ceil(math.sqrt(len(self.images)))))
        if self.png_dir is not None:
            os.makedirs(self.png_dir, exist_ok=True)
            save_grid(
                os.path.join(self.png_dir, f"reconstructions_{epoch + 1:03d}.png"), images, columns
            )
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
            with self._writer.as_default():
                tf.summary.image(self.tag, make_grid(images, columns)[None], step=epoch + 1)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _first_images(dataset, n, labels):
    """The first `n` images of a dataset of images or (images, labels) batches, with labels."""
    images, found = [], []
    count = 0
    for batch in dataset:
        x, y = (batch[0], batch[1] if len(batch) > 1 else None) if isinstance(batch, (tuple, list)) else (batch, None)
        images.append(np.asarray(x))
        if y is not None:
            found.append(np.asarray(y))
        count += len(images[-1])
        if count >= n:
            break
    images = np.concatenate(images)[:n]
    if labels is None and found:
        labels = np.concatenate(found)[:n]
    return images, labels
