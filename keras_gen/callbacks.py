"""Callbacks for generative models: sample grids, reconstructions and translations (`Translations`)
in TensorBoard and as PNG, the family's quality metric each epoch (`Evaluate`), and a VAE's KL
warm-up (`KLWarmup`), and a budget of wall-clock or CPU seconds or steps (`TrainingBudget`)."""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks, families


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


class _SummaryCallback(keras.callbacks.Callback):
    """A callback that writes TensorBoard summaries under `log_dir/<summary_subdir>` (opening
    the writer on first use, closing it when training ends) and/or PNG grids to `png_dir`."""

    summary_subdir = "images"

    def __init__(self, log_dir=None, png_dir=None, every=1, tag=None, need_output=True):
        super().__init__()
        if need_output and log_dir is None and png_dir is None:
            raise ValueError(
                f"{type(self).__name__} needs log_dir (TensorBoard), png_dir (PNG files) or both."
            )
        self.log_dir, self.png_dir, self.tag = log_dir, png_dir, tag
        self.every = checks.positive_int("every", every)
        self._writer = None

    def due(self, epoch):
        return (epoch + 1) % self.every == 0

    def write_summaries(self, write):
        """Calls `write()` (tf.summary.* calls) under this callback's writer, then flushes."""
        if self.log_dir is None:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, self.summary_subdir)
            )
        with self._writer.as_default():
            write()
        self._writer.flush()

    def write_grid(self, images, epoch, png_name, columns=None):
        """`images` (n, H, W, C) in [0, 1] as one grid: `png_dir/png_name` and TensorBoard image
        `tag` at step epoch + 1."""
        if self.png_dir is not None:
            os.makedirs(self.png_dir, exist_ok=True)
            save_grid(os.path.join(self.png_dir, png_name), images, columns)
        self.write_summaries(
            lambda: tf.summary.image(self.tag, make_grid(images, columns)[None], step=epoch + 1)
        )

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class SampleGrid(_SummaryCallback):
    """Every `every` epochs, generates `n` images from fixed noise (`seed`) and writes them to
    TensorBoard (`log_dir`, tag "samples") and/or PNG files `png_dir/epoch_NNN.png`.

    Fixed noise makes successive grids comparable: the same latent vector becomes the same cell.
    """

    def __init__(self, log_dir=None, png_dir=None, n=64, seed=0, labels=None, every=1, tag="samples"):
        super().__init__(log_dir, png_dir, every, tag)
        self.n, self.seed, self.labels = n, seed, labels

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        labels = self.labels if self.labels is not None else default_labels(self.model, self.n)
        images = self.model.generate(self.n, seed=self.seed, labels=labels)
        self.write_grid(images, epoch, f"epoch_{epoch + 1:03d}.png")


class Evaluate(_SummaryCallback):
    """Every `every` epochs, computes the family's quality metric on validation data and puts it
    into the Keras `logs` as "val_<metric>", so `EarlyStopping(monitor="val_fid")`,
    `ModelCheckpoint(monitor="val_fid", save_best_only=True)` and Keras's `TensorBoard` (as
    validation/epoch_fid) see it. List `Evaluate` *before* those callbacks: Keras runs callbacks
    in order and they share one `logs` dict. Keras cannot guess the direction of a new metric:
    pass `mode="min"` to `EarlyStopping` / `ModelCheckpoint` (`mode="max"` for psnr and ssim).

    Args:
      data: validation data: a `tf.data.Dataset` (or NumPy array) of images, or
        (images, labels) batches; for a translator (Pix2Pix), (input, target) pairs.
      every: evaluate after every `every`-th epoch (other epochs have no "val_<metric>").
      metrics: names for `keras_gen.metrics.evaluate_model`; None picks the family's: "fid" for
        GANs, "neg_elbo" for VAEs (add "neg_iwae" for the importance-weighted bound),
        "bits_per_dim" for PixelCNN, "mae", "psnr", "ssim" and "fid" for Pix2Pix.
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

    summary_subdir = "evaluation"

    def __init__(self, data, every=1, metrics=None, num_samples=1000, extractor=None,
                 log_dir=None, data_range=None, num_importance_samples=None, seed=0):
        super().__init__(log_dir, None, every, need_output=False)
        self.data, self.metrics = data, metrics
        self.num_samples, self.extractor = num_samples, extractor
        self.data_range, self.num_importance_samples, self.seed = (
            data_range, num_importance_samples, seed)
        self._reference = None
        self._unavailable = ()

    def on_train_begin(self, logs=None):
        """Checks the feature extractor before the first step: without its weights (InceptionV3
        for colour images, offline), FID/KID are skipped with one warning instead of failing
        after the first epoch."""
        from keras_gen import metrics as kg_metrics

        names = self._names()
        quality = [n for n in names if n in kg_metrics.QUALITY_METRICS]
        if not quality or self._unavailable:
            return
        try:
            extractor = self.extractor or kg_metrics.default_extractor(self.model.image_shape)
        except ValueError:  # no default for this image shape: evaluate() says so
            return
        reason = kg_metrics.extractor_unavailable(extractor)
        if reason is not None:
            self._unavailable = tuple(quality)
            warnings.warn(
                f"Evaluate: no val_{', val_'.join(quality)}, the feature extractor is not available "
                f"({reason}) To enable it, pass Evaluate(extractor=...) a Keras model or a "
                "classifier .keras file, or put its weights file where the message says.",
                stacklevel=2)

    def _names(self):
        from keras_gen import metrics as kg_metrics

        names = self.metrics if self.metrics is not None else kg_metrics.default_metrics(self.model)
        names = [names] if isinstance(names, str) else list(names)
        return [n for n in names if n not in self._unavailable]

    def evaluate(self):
        """The metrics of the current model as a dict {"val_<metric>": value}."""
        from keras_gen import metrics as kg_metrics

        model = self.model
        names = self._names()
        if not names:
            return {}
        if families.kind_of(model) == families.TRANSLATOR:  # `data` holds pairs
            values = kg_metrics.translation_metrics(
                model, self.data, names, self.extractor, num_samples=self.num_samples)
            values.pop("num_pairs")
            return {f"val_{k}": float(v) for k, v in values.items()}
        quality = [n for n in names if n in kg_metrics.QUALITY_METRICS]
        values = {}
        if quality:
            extractor = self.extractor or kg_metrics.default_extractor(model.image_shape)
            data_range = self.data_range or (
                model.data_range if getattr(model, "data_range", None) in ("tanh", "unit")
                else "unit")
            if self._reference is None:  # the validation data do not change: extract once
                self._reference = kg_metrics.feature_statistics(
                    self.data, extractor, self.num_samples, data_range=data_range, seed=self.seed,
                    verbose=0)
            # Quiet: fit's own progress bar is on the same line.
            values.update(kg_metrics.quality_metrics(
                model, self._reference, quality, extractor, self.num_samples,
                data_range=data_range, seed=self.seed, verbose=0))
            values.pop("num_samples"), values.pop("num_reference")
        others = [n for n in names if n not in kg_metrics.QUALITY_METRICS]
        if others:
            values.update(kg_metrics.evaluate_model(
                model, self.data, others, num_importance_samples=self.num_importance_samples,
                seed=self.seed, verbose=0))
        return {f"val_{k}": float(v) for k, v in values.items()}

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        values = self.evaluate()
        if logs is not None:
            logs.update(values)

        def write():
            for name, value in values.items():
                tf.summary.scalar(name, value, step=epoch)

        self.write_summaries(write)


class Reconstructions(_SummaryCallback):
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
        super().__init__(log_dir, png_dir, every, tag)
        if isinstance(images, tf.data.Dataset):
            images, labels = _first_images(images, n, labels)
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
            raise ValueError(
                f"images must be a non-empty batch (n, H, W, 1 or 3); got shape {images.shape}."
            )
        self.images = images
        self.labels = None if labels is None else np.asarray(labels)

    def grid_images(self):
        """Originals and reconstructions interleaved: (2n, H, W, C) in [0, 1]."""
        labels = self.labels if getattr(self.model, "num_classes", None) else None
        recon = np.asarray(self.model.reconstruct(self.images, labels=labels), np.float32)
        pairs = np.stack([np.clip(self.images, 0.0, 1.0), recon], axis=1)
        return pairs.reshape((-1,) + self.images.shape[1:])

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        # An even number of columns keeps each original next to its reconstruction.
        columns = 2 * max(1, int(math.ceil(math.sqrt(len(self.images)))))
        self.write_grid(self.grid_images(), epoch, f"reconstructions_{epoch + 1:03d}.png", columns)


class Translations(_SummaryCallback):
    """Every `every` epochs, shows fixed held-out pairs as input | output | target triplets
    (`model.translate`), in TensorBoard (`log_dir`, tag "translations") and/or PNG files
    `png_dir/translations_NNN.png`. Grey inputs beside colour targets are shown in grey.

    Args:
      pairs: `(inputs, targets)` arrays in the model's data range (as `load_pairs` yields them),
        or a dataset of such pairs, whose first `n` are used.
      n: how many pairs to take from a dataset (all of the arrays are used).
    """

    def __init__(self, pairs, log_dir=None, png_dir=None, n=8, every=1, tag="translations"):
        super().__init__(log_dir, png_dir, every, tag)
        if isinstance(pairs, tf.data.Dataset):
            pairs = _first_images(pairs, n, None)  # the second component: the targets
        if not isinstance(pairs, (tuple, list)) or len(pairs) != 2 or pairs[1] is None:
            raise ValueError("pairs must be (inputs, targets) arrays or a dataset of such pairs.")
        self.inputs, self.targets = (np.asarray(p, np.float32) for p in pairs)
        if self.inputs.ndim != 4 or len(self.inputs) == 0 or len(self.inputs) != len(self.targets):
            raise ValueError(
                "pairs must be two non-empty batches (n, H, W, C) of as many images; got shapes "
                f"{self.inputs.shape} and {self.targets.shape}."
            )

    def grid_images(self):
        """(3n, H, W, C) in [0, 1]: input, output, target of each pair in turn."""
        model = self.model
        inputs = model.to_unit_range(self.inputs)
        outputs = np.asarray(model.translate(inputs), np.float32)
        images = [inputs, outputs, model.to_unit_range(self.targets)]
        channels = max(x.shape[-1] for x in images)
        images = [np.repeat(x, channels, axis=-1) if x.shape[-1] != channels else x for x in images]
        return np.stack(images, axis=1).reshape((-1,) + images[1].shape[1:])

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        columns = 3 * max(1, int(math.ceil(math.sqrt(len(self.inputs)))))
        self.write_grid(self.grid_images(), epoch, f"translations_{epoch + 1:03d}.png", columns)


class KLWarmup(keras.callbacks.Callback):
    """Anneals a VAE's beta linearly from 0 to `target` (default: the model's constructor beta)
    over the first `epochs` epochs or `steps` training steps, then holds it; a common remedy for
    posterior collapse (Bowman et al. 2016; Sønderby et al. 2016).

    Counting uses `model.optimizer.iterations` (for `steps`) and the epoch index, so a resumed
    run continues the schedule where it stopped. With `epochs`, beta also grows within an epoch
    when the number of steps per epoch is known.
    """

    def __init__(self, epochs=None, steps=None, target=None):
        super().__init__()
        if (epochs is None) == (steps is None):
            raise ValueError(
                f"KLWarmup takes exactly one of epochs= or steps=; got epochs={epochs!r}, "
                f"steps={steps!r}."
            )
        self.epochs = None if epochs is None else checks.positive_int("epochs", epochs)
        self.steps = None if steps is None else checks.positive_int("steps", steps)
        self.target = None if target is None else checks.non_negative_number(
            "target", target, " (1.0 is the ELBO)")
        self._epoch = 0

    def _set(self, progress):
        if not hasattr(self.model, "beta_variable"):
            raise ValueError(
                f"KLWarmup works on a keras_gen VAE; got {type(self.model).__name__}."
            )
        target = self.target if self.target is not None else self.model.target_beta
        self.model.beta_variable.assign(target * min(1.0, max(0.0, progress)))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.epochs is not None:
            self._set(epoch / self.epochs)

    def on_train_batch_begin(self, batch, logs=None):
        if self.steps is not None:
            self._set(int(self.model.optimizer.iterations.numpy()) / self.steps)
        elif self.params and self.params.get("steps"):
            self._set((self._epoch + batch / self.params["steps"]) / self.epochs)


class TrainingBudget(keras.callbacks.Callback):
    """Stops `fit` once a budget is spent: `seconds` of wall clock, `cpu_seconds` of this
    process's CPU time (`time.process_time()`: all its threads, so other jobs on a shared machine
    do not shorten the run), or `steps` training steps, whichever comes first.

    The budget counts from the callback's construction, across every `fit` it is passed to, so
    a loop of one-epoch fits (a fresh shuffle each) shares one budget:

        budget = kg.callbacks.TrainingBudget(cpu_seconds=600)
        epoch = 0
        while not budget.spent:
            model.fit(data_for(epoch), initial_epoch=epoch, epochs=epoch + 1, callbacks=[budget])
            epoch += 1

    `steps`, `used_seconds`, `used_cpu_seconds` and `logs` (the last step's) say what was spent.
    """

    def __init__(self, seconds=None, cpu_seconds=None, steps=None):
        super().__init__()
        if seconds is None and cpu_seconds is None and steps is None:
            raise ValueError("TrainingBudget needs at least one of seconds=, cpu_seconds= or "
                             "steps=; got none.")
        self.seconds = None if seconds is None else checks.non_negative_number("seconds", seconds)
        self.cpu_seconds = None if cpu_seconds is None else checks.non_negative_number(
            "cpu_seconds", cpu_seconds)
        self.max_steps = None if steps is None else checks.positive_int("steps", steps)
        self.steps, self.logs = 0, {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    @property
    def used_seconds(self):
        return time.perf_counter() - self._wall

    @property
    def used_cpu_seconds(self):
        return time.process_time() - self._cpu

    @property
    def spent(self):
        return ((self.seconds is not None and self.used_seconds >= self.seconds)
                or (self.cpu_seconds is not None and self.used_cpu_seconds >= self.cpu_seconds)
                or (self.max_steps is not None and self.steps >= self.max_steps))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.logs = dict(logs or {})
        if self.spent:
            self.model.stop_training = True


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
