"""The PixelCNN family: autoregressive image models with exact likelihoods.

`PixelCNN` models p(x) = prod_i p(x_i | x_<i) over sub-pixels in raster order, channels R, G, B
within a pixel. `variant="gated"` is the Gated PixelCNN (van den Oord et al. 2016, no blind
spot, class conditioning); `variant="original"` the residual masked-convolution PixelCNN of
"Pixel Recurrent Neural Networks" (with its blind spot). Sampling has one algorithm,
`sample_tensor`: the cached incremental scheme of Ramachandran et al. 2017 (each layer computes
only the activations the next pixel needs), one pure graph that `sample`, `complete`,
`generate` and the exported signatures all run. The naive sampler (a full forward pass per
sub-pixel) stays as its reference; both turn the same uniform noise into Gumbel noise, so for
the same seed they return the same images.
"""

from __future__ import annotations

import math

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks, progress
from keras_gen.families import FamilyDescription, Option
from keras_gen.layers.masked import GatedPixelCNNBlock, MaskedConv2D, MaskedResidualBlock, gate
from keras_gen.models import pixelcnn_likelihoods as lik
from keras_gen.models.base import GenerativeModel, Sampler
from keras_gen.networks import Initializers

VARIANTS = ("gated", "original")
METHODS = ("fast", "naive")
_DATA_HINT = (
    "Load 8-bit images with keras_gen.data.load(..., image_range='levels') for levels=256, "
    "binarised ones with image_range='binary' for levels=2; other levels take integer codes, "
    "e.g. a VQ-VAE's code grids"
)


@keras.saving.register_keras_serializable(package="keras_gen")
class PixelCNN(Sampler, GenerativeModel):
    """A PixelCNN trained with `model.fit` on integer pixel levels.

    Args:
      image_shape: (height, width, channels); channels are generated in order (R, G, B).
      levels: pixel values 0..levels-1 (256 for 8-bit data loaded with image_range="levels";
        2 for image_range="binary"; the codebook size, e.g. 512, for a prior over a VQ-VAE's
        integer code grids (batch, h, w, 1)).
      filters: feature maps per layer (a multiple of the channel count).
      num_layers: gated blocks (variant="gated") or residual blocks (variant="original").
      variant: "gated" (Gated PixelCNN, no blind spot) or "original" (2016 PixelCNN).
      kernel_size: odd kernel size of the blocks.
      first_kernel_size: odd kernel size of the first (mask "A") layer.
      num_classes: class-conditional model when given (fit on (images, labels) batches).
      likelihood: "categorical" (softmax over levels) or "logistic_mixture" (PixelCNN++).
      num_mixtures: logistic components for likelihood="logistic_mixture".
      seed: seeds the initial weights (equal seeds, equal runs).

    The loss is the negative log-likelihood per image in nats; `bits_per_dim` is the same
    divided by (height * width * channels * ln 2).
    """

    def __init__(
        self,
        image_shape,
        levels=256,
        filters=64,
        num_layers=7,
        variant="gated",
        kernel_size=3,
        first_kernel_size=7,
        num_classes=None,
        likelihood="categorical",
        num_mixtures=5,
        seed=None,
        **kwargs,
    ):
        image_shape = checks.image_shape(image_shape)
        checks.choice("variant", variant, VARIANTS)
        checks.choice("likelihood", likelihood, lik.LIKELIHOODS)
        levels = checks.positive_int("levels", levels)
        if levels < 2:
            raise ValueError(f"levels must be at least 2 (2 for binary images); got {levels}.")
        filters = checks.positive_int("filters", filters)
        num_layers = checks.positive_int("num_layers", num_layers)
        num_mixtures = checks.positive_int("num_mixtures", num_mixtures)
        kernel_size = _square_odd(kernel_size, "kernel_size")
        first_kernel_size = _square_odd(first_kernel_size, "first_kernel_size")
        channels = image_shape[2]
        if filters % channels:
            raise ValueError(
                f"filters must be a multiple of the image's {channels} channels (each colour "
                f"gets filters / {channels} features); got filters={filters}. Try "
                f"filters={filters + channels - filters % channels}."
            )
        kwargs["seed"] = seed = checks.seed_or_fresh(seed)
        super().__init__(image_shape, num_classes=num_classes, **kwargs)
        self.levels = levels
        self.filters = filters
        self.num_layers = num_layers
        self.variant = variant
        self.kernel_size = kernel_size
        self.first_kernel_size = first_kernel_size
        self.likelihood = likelihood
        self.num_mixtures = num_mixtures
        self.num_params = lik.num_params(likelihood, levels, num_mixtures)
        with self.policy_scope():
            self._build_layers(seed)
        self.add_trackers(loss="loss", bits_per_dim="bits_per_dim")
        # Build every layer now so weights exist before fit, save and load.
        h, w, c = image_shape
        self._network(
            tf.zeros((1, h, w, c)), None if self.num_classes is None else tf.zeros((1,), tf.int32)
        )
        self.built = True
        self._sampler_fns = {}

    def _build_layers(self, seed):
        channels = self.image_shape[2]
        filters, kernel_size, first_kernel_size = self.filters, self.kernel_size, self.first_kernel_size
        init = Initializers(seed)
        groups = dict(channel_groups=channels)
        if self.variant == "gated":
            self.input_conv = None
            self.blocks = [
                GatedPixelCNNBlock(
                    filters,
                    first_kernel_size if i == 0 else kernel_size,
                    first=i == 0,
                    num_classes=self.num_classes,
                    kernel_initializer=init(),
                    name=f"gated_block_{i}",
                    **groups,
                )
                for i in range(self.num_layers)
            ]
        else:
            self.input_conv = MaskedConv2D(
                filters, first_kernel_size, "A", kernel_initializer=init(), name="input_conv",
                **groups,
            )
            self.blocks = [
                MaskedResidualBlock(
                    filters, kernel_size, num_classes=self.num_classes,
                    kernel_initializer=init(), name=f"residual_block_{i}", **groups,
                )
                for i in range(self.num_layers)
            ]
        self.head_hidden = MaskedConv2D(
            filters, 1, "B", kernel_initializer=init(), name="head_hidden", **groups
        )
        self.head_out = MaskedConv2D(
            self.num_params * channels, 1, "B", kernel_initializer=init(), name="head_out",
            **groups,
        )

    # -- the network --------------------------------------------------------------------------

    @property
    def data_range(self):
        return "binary" if self.levels == 2 else "levels"

    def scale(self, levels):
        """Integer levels 0..levels-1 -> network inputs in [-1, 1]."""
        return tf.cast(levels, tf.float32) * (2.0 / (self.levels - 1)) - 1.0

    def _head(self, features):
        x = self.head_hidden(tf.nn.elu(features))
        x = self.head_out(tf.nn.elu(x))
        return self._to_params(x)

    def _to_params(self, x):
        """(..., P * C) with channel k of group k % C -> (..., C, P)."""
        c = self.image_shape[2]
        # Static sizes but the batch: no SHAPE ops in exported graphs.
        x = tf.reshape(x, [-1, *x.shape[1:-1], self.num_params, c])
        rank = len(x.shape)
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        return tf.transpose(x, perm)

    def _network(self, x, labels, collect=False):
        """Scaled images (B, H, W, C) -> distribution parameters (B, H, W, C, P), and with
        `collect`, the inputs of the layers whose rows the cached sampler keeps (the image, then
        each gated block's vertical input or each residual block's inner input)."""
        taps = []
        if self.variant == "gated":
            v = h = x
            for block in self.blocks:
                taps.append(v)
                v, h = block([v, h] if labels is None else [v, h, labels])
        else:
            taps.append(x)
            h = self.input_conv(x)
            for block in self.blocks:
                if collect:  # the fast sampler caches the inner input of each block
                    t = block.inner_input(h, labels)
                    taps.append(t)
                    h = h + block.outer(t)
                else:
                    h = block(h if labels is None else [h, labels])
        params = self._head(h)
        return (params, taps) if collect else params

    def params_from_scaled(self, x, labels=None):
        """Distribution parameters from scaled float images (differentiable in `x`; the
        causality tests take gradients through it)."""
        return self._network(tf.convert_to_tensor(x, tf.float32), _labels_tensor(labels))

    def call(self, inputs, training=False):
        """`model(levels)` or `model([levels, labels])` -> parameters (B, H, W, C, P)."""
        if isinstance(inputs, (list, tuple)):
            levels, labels = inputs[0], inputs[1] if len(inputs) > 1 else None
        else:
            levels, labels = inputs, None
        if self.num_classes is None:
            labels = None
        return self._network(self.scale(levels), _labels_tensor(labels))

    def distribution_params(self, levels_images, labels=None):
        """Per-sub-pixel distribution parameters, for export: integer levels (B, H, W, C) (and
        int labels (B,) for conditional models) -> (B, H, W, C, levels) logits for
        "categorical", or (B, H, W, C, 3 K) [mixture logits, means, log scales] for
        "logistic_mixture". Pure: no random ops, no NumPy, any batch size."""
        if self.num_classes is None:
            labels = None
        elif labels is None:
            raise ValueError(
                f"this PixelCNN is conditional on {self.num_classes} classes: pass labels."
            )
        return self._network(self.scale(levels_images), _labels_tensor(labels))

    def _log_prob_tensor(self, levels, labels):
        params = self._network(self.scale(levels), labels)
        per_subpixel = lik.log_prob(params, levels, self.likelihood, self.levels)
        return tf.reduce_sum(per_subpixel, axis=[1, 2, 3])

    # -- training -----------------------------------------------------------------------------

    def compile(self, optimizer=None, **kwargs):
        """Default: Adam(1e-3). The loss is always the model's negative log-likelihood."""
        if kwargs.get("loss") is not None:
            raise ValueError(
                "PixelCNN's loss is its negative log-likelihood; compile without loss=."
            )
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.loss_tracker, self.bits_per_dim_tracker]

    def _levels_from_batch(self, images):
        """Casts a batch to int32 levels, failing with a clear message outside 0..levels-1."""
        message = f"PixelCNN(levels={self.levels}) takes integer levels 0..{self.levels - 1}. {_DATA_HINT}."
        levels = tf.cast(images, tf.int32)
        if self.jit_compile:  # XLA has no Assert op; fit's check_data covers the data up front
            return levels
        if images.dtype.is_floating:
            tf.debugging.assert_equal(images, tf.round(images), message=message)
        tf.debugging.assert_non_negative(levels, message=message)
        tf.debugging.assert_less(levels, self.levels, message=message)
        return levels

    def _nll_step(self, data, train):
        images, labels = self._unpack(data)
        levels = self._levels_from_batch(images)
        labels = None if labels is None else tf.cast(tf.reshape(labels, [-1]), tf.int32)
        batch = tf.shape(levels)[0]
        with tf.GradientTape() as tape:
            per_example = -self._log_prob_tensor(levels, labels)
            loss = tf.reduce_sum(per_example) / self.global_batch_size(batch)
            scaled_loss = self.optimizer.scale_loss(loss) if train else loss
        if train:
            variables = self.trainable_variables
            self.apply_gradients(self.optimizer, tape.gradient(scaled_loss, variables), variables)
        self.loss_tracker.update_state(per_example)
        self.bits_per_dim_tracker.update_state(per_example / (self.num_dims * math.log(2.0)))
        return self.metrics_logs()

    def train_step(self, data):
        return self._nll_step(data, train=True)

    def test_step(self, data):
        return self._nll_step(data, train=False)

    def check_batch(self, images, *rest):
        self._check_levels_array(images, "the data")

    def _check_levels_array(self, images, where):
        images = np.asarray(images)
        if images.size == 0:
            return
        hint = _DATA_HINT
        if np.issubdtype(images.dtype, np.floating) and not np.all(images == np.round(images)):
            raise ValueError(
                f"PixelCNN takes integer levels 0..{self.levels - 1}; {where} has "
                f"non-integer values (e.g. {float(images[images != np.round(images)][0])}), "
                f"probably images scaled to [0, 1] or [-1, 1]. {hint}."
            )
        lo, hi = int(np.min(images)), int(np.max(images))
        if lo < 0 or hi >= self.levels:
            raise ValueError(
                f"PixelCNN(levels={self.levels}) takes levels 0..{self.levels - 1}; {where} "
                f"has values in {lo}..{hi}. {hint}, or build the model with levels={hi + 1}."
            )

    # -- likelihood ---------------------------------------------------------------------------

    def log_prob(self, images, labels=None, batch_size=256):
        """log p(x) in nats per image: NumPy levels (n, H, W, C) -> float64 (n,)."""
        images = self._check_images(images, "images")
        n = len(images)
        labels = self.label_indices(labels, n)
        fn = self._compiled("log_prob")
        out = np.zeros((n,), np.float64)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            out[start:stop] = fn(
                tf.constant(images[start:stop], tf.int32), self._labels_or_zeros(labels, start, stop)
            ).numpy()
        return out

    def _log_prob_fn(self, levels, labels):
        return self._log_prob_tensor(levels, None if self.num_classes is None else labels)

    def log_likelihood(self, data, labels=None, batch_size=256, verbose="auto"):
        """The exact log-likelihood of a data set (a `tf.data.Dataset` of levels or (levels,
        labels) batches, or a NumPy array of levels with `labels`), as the VAE's evaluation
        methods report theirs: a dict with `nats_per_image` (the mean negative log-likelihood),
        `bits_per_dim` and `num_examples`. verbose: a progress bar per batch of a dataset, as in
        Keras' `predict`."""
        total, count = 0.0, 0
        if isinstance(data, tf.data.Dataset):
            for batch in progress.tracked(data, progress.num_batches(data), verbose):
                images, batch_labels = self._unpack(batch)
                images = images.numpy()
                batch_labels = None if batch_labels is None else batch_labels.numpy()
                total += float(np.sum(self.log_prob(images, batch_labels, batch_size)))
                count += len(images)
        else:
            images = np.asarray(data)
            total, count = float(np.sum(self.log_prob(images, labels, batch_size))), len(images)
        if count == 0:
            raise ValueError("log_likelihood got no images.")
        nats = -total / count
        return {
            "nats_per_image": nats,
            "bits_per_dim": nats / (self.num_dims * math.log(2.0)),
            "num_examples": count,
        }

    def bits_per_dim(self, data, labels=None):
        """`log_likelihood(data, labels)["bits_per_dim"]`: the average negative
        log2-likelihood per sub-pixel."""
        return self.log_likelihood(data, labels)["bits_per_dim"]

    # -- sampling -----------------------------------------------------------------------------

    generate_batch_size = 64

    @property
    def noise_shape(self):
        """Uniform noise in (0, 1): one value per level of every sub-pixel (Gumbel-max)."""
        return self.image_shape + (self.levels,)

    def sample(self, n, seed=None, labels=None, method="fast", temperature=1.0, batch_size=64,
               verbose="auto"):
        """`n` images as int32 NumPy levels (n, H, W, C). Same seed, same images, with either
        method: "fast" (the cached sampler of `sample_tensor`) or "naive" (a full forward pass
        per sub-pixel, the reference). `temperature` < 1 sharpens every conditional, > 1
        flattens it, 0 takes the most likely level. verbose: a progress bar per batch, as in Keras' `predict`."""
        n = checks.count(n)
        return self._autoregress(n, None, 0, labels, seed, method, temperature, batch_size, verbose)

    def complete(
        self, images, known_rows, seed=None, labels=None, method="fast", temperature=1.0,
        batch_size=64, verbose="auto",
    ):
        """Keeps the top `known_rows` rows of `images` (levels) and samples the rest."""
        images = self._check_images(images, "images")
        h = self.image_shape[0]
        if isinstance(known_rows, bool) or not isinstance(known_rows, (int, np.integer)) or not (
            0 <= known_rows <= h
        ):
            raise ValueError(f"known_rows must be an integer in 0..{h}; got {known_rows!r}.")
        return self._autoregress(
            len(images), images, int(known_rows), labels, seed, method, temperature, batch_size,
            verbose,
        )

    def generate(self, n, seed=None, labels=None, batch_size=None, method="fast", temperature=1.0, z=None,
                 verbose="auto"):
        """`n` images as float32 (n, H, W, C) in [0, 1] (levels / (levels - 1)): `sample`
        through the package's `generate` contract. `z` is the uniform noise itself, (n, H, W, C,
        levels), as the exported `sample` signature takes it."""
        checks.choice("method", method, METHODS)
        _check_temperature(temperature)
        return super().generate(
            n, seed, labels, batch_size, z=z, verbose=verbose, method=method, temperature=temperature
        )

    def generation_noise(self, seed, start, stop):
        return self.uniform_noise(seed, start, stop)

    def images_from_noise(self, noise, labels=None, method="fast", temperature=1.0):
        levels = self._sample_batch(noise, labels, method, temperature)
        return levels.astype(np.float32) / (self.levels - 1)

    def uniform_noise(self, seed, start, stop):
        """The noise behind images start..stop-1 of `sample(n, seed)`: uniform in (tiny, 1),
        (stop - start, H, W, C, levels), keyed by (seed, image index), so an image depends on
        neither n nor the batch size. The one definition of PixelCNN noise: `sample`,
        `generate`, `complete` and the exported signatures all take it."""
        if "noise" not in self._sampler_fns:
            tiny = np.finfo(np.float32).tiny

            def noise(seed, indices):
                return tf.map_fn(
                    lambda k: tf.random.stateless_uniform(
                        self.noise_shape, seed=tf.stack([seed, k]), minval=tiny, maxval=1.0
                    ),
                    indices, fn_output_signature=tf.float32,
                )

            # A graph (one call per batch), not XLA: XLA's generator gives other numbers.
            self._sampler_fns["noise"] = tf.function(noise, input_signature=[
                tf.TensorSpec((), tf.int64), tf.TensorSpec((None,), tf.int64)
            ])
        return self._sampler_fns["noise"](
            tf.constant(seed, tf.int64), tf.range(start, stop, dtype=tf.int64)
        )

    def sample_from_noise(
        self, uniform, labels=None, temperature=1.0, images=None, start_row=0, method="fast"
    ):
        """The images for given uniform noise (B, H, W, C, levels), as int32 NumPy levels: what
        `sample` / `complete` do once they have drawn the noise of their seed, and what the
        exported `sample` / `complete` signatures return for the same inputs. With `images`,
        rows from `start_row` on are resampled."""
        _check_temperature(temperature)
        uniform = np.asarray(uniform, np.float32)
        if uniform.ndim != 5 or uniform.shape[1:] != self.noise_shape:
            raise ValueError(
                f"uniform must have shape (batch, {', '.join(map(str, self.noise_shape))}); "
                f"got {uniform.shape}."
            )
        labels = checks.labels(labels, len(uniform), self.num_classes)
        if images is not None:
            images = self._check_images(images, "images")
        return self._sample_batch(uniform, labels, method, temperature, images, int(start_row))

    def _autoregress(self, n, images, start_row, labels, seed, method, temperature, batch_size,
                     verbose="auto"):
        checks.choice("method", method, METHODS)
        _check_temperature(temperature)
        batch_size = checks.positive_int("batch_size", batch_size)
        labels = self.label_indices(labels, n)
        seed = checks.seed_or_fresh(seed)
        out = np.zeros((n,) + self.image_shape, np.int32)
        starts = range(0, n, batch_size)
        for start in progress.tracked(starts, len(starts), verbose):
            stop = min(n, start + batch_size)
            out[start:stop] = self._sample_batch(
                self.uniform_noise(seed, start, stop), None if labels is None else labels[start:stop],
                method, temperature, None if images is None else images[start:stop], start_row,
            )
        return out

    def _sample_batch(self, uniform, labels, method, temperature, images=None, start_row=0):
        """One batch through the compiled sampler -> int32 NumPy levels (B, H, W, C)."""
        checks.choice("method", method, METHODS)
        uniform = tf.convert_to_tensor(uniform, tf.float32)
        batch = int(uniform.shape[0])
        args = [
            uniform,
            tf.zeros((batch,), tf.int32) if labels is None else tf.constant(labels, tf.int32),
            tf.constant(float(temperature), tf.float32),
        ]
        if images is not None:
            args += [tf.constant(images, tf.int32), tf.constant(start_row, tf.int32)]
        return self._compiled(method, images is not None)(*args).numpy()

    def _compiled(self, key, completion=False):
        """One traced graph per entry point; batch size free, so it traces once per size
        under XLA and once otherwise."""
        key = (key, completion)
        if key not in self._sampler_fns:
            h, w, c = self.image_shape
            images = tf.TensorSpec((None, h, w, c), tf.int32)
            labels = tf.TensorSpec((None,), tf.int32)
            if key[0] == "log_prob":
                fn, signature, jit = self._log_prob_fn, [images, labels], False
            else:
                fn = self.sample_tensor if key[0] == "fast" else self._sample_naive
                signature = [
                    tf.TensorSpec((None, h, w, c, self.levels), tf.float32), labels,
                    tf.TensorSpec((), tf.float32),
                ] + ([images, tf.TensorSpec((), tf.int32)] if completion else [])
                jit = key[0] == "fast" and self.jit_sampling
            self._sampler_fns[key] = tf.function(fn, input_signature=signature, jit_compile=jit)
        return self._sampler_fns[key]

    # XLA compiles the cached sampler's loops into one program: measured faster on CPU
    # (benchmarks/pixelcnn_sampling.py). The exported graphs use the same code without XLA.
    jit_sampling = True

    def _draw(self, params, gumbel, temperature):
        """Gumbel-max: the level maximising log p(level) / T + g, written as log p(level) + T g
        (the same maximiser for T > 0) so that T = 0 is the argmax; params (B, P), g (B, levels).
        The first level reaching the maximum, as `tf.argmax` picks it, from two plain
        reductions: XLA vectorises those, not argmax's (value, index) reduction (measured in
        benchmarks/pixelcnn_sampler_breakdown.py); elsewhere `tf.argmax` itself."""
        scores = lik.sampling_scores(params, self.likelihood, self.levels)
        z = scores + temperature * gumbel
        if not _in_xla():  # one ARG_MAX op in LiteRT and plain graphs
            return tf.argmax(z, axis=-1, output_type=tf.int32)
        top = tf.reduce_max(z, axis=-1, keepdims=True)
        first = tf.where(z == top, tf.range(self.levels)[None], self.levels)
        return tf.reduce_min(first, axis=-1)

    def _sampling_inputs(self, uniform, labels, temperature, images):
        h, w, c = self.image_shape
        uniform = tf.convert_to_tensor(uniform, tf.float32)
        batch = tf.shape(uniform)[0]
        labels = None if self.num_classes is None else _labels_tensor(labels)
        temperature = tf.cast(temperature, tf.float32)
        if images is None:
            images = tf.zeros(tf.stack([batch, h, w, c]), tf.int32)
        return uniform, batch, labels, temperature, tf.cast(images, tf.int32)

    def _sample_naive(self, uniform, labels=None, temperature=1.0, images=None, start_row=0):
        """The reference sampler: a full forward pass per sub-pixel, in one tf.while_loop."""
        h, w, c = self.image_shape
        uniform, batch, labels, temperature, images = self._sampling_inputs(
            uniform, labels, temperature, images
        )
        rows = tf.range(batch)

        def body(t, images):
            i, j, ch = t // (w * c), (t // c) % w, t % c
            params = _at(self._network(self.scale(images), labels), i, j, ch)
            value = self._draw(params, _gumbel(_at(uniform, i, j, ch)), temperature)
            index = tf.stack(
                [rows, tf.fill([batch], i), tf.fill([batch], j), tf.fill([batch], ch)], axis=1
            )
            return t + 1, tf.tensor_scatter_nd_update(images, index, value)

        _, images = tf.while_loop(
            lambda t, _: t < h * w * c, body, (tf.cast(start_row, tf.int32) * w * c, images)
        )
        return images

    # -- the cached sampler (Ramachandran et al. 2017) -----------------------------------------

    def sample_tensor(self, uniform, labels=None, temperature=1.0, images=None, start_row=0):
        """Sampling as one pure TensorFlow graph: what `sample`, `complete`, `generate` and the
        exported `sample`/`complete` signatures run. No random ops, TFLite builtin ops only, any
        batch size. `uniform` (B, H, W, C, levels) in (0, 1) (see `uniform_noise`), int32
        `labels` (B,) for conditional models; with `images` (B, H, W, C) levels, rows from
        `start_row` on are resampled (completion). Returns int32 levels (B, H, W, C).

        Cached generation: an activation at pixel (i, j) depends only on earlier pixels, so each
        is computed once, when (i, j) is generated. Every layer keeps a rolling window of its
        input (rows above; pixels to the left in the current row) and advances it one row or
        one pixel at a time with the layers' single-step API. For colour images the pixel's
        layers run once per channel. Known rows (completion) fill the windows with one forward
        pass first."""
        h, w, c = self.image_shape
        completing = images is not None
        uniform, batch, labels, temperature, images = self._sampling_inputs(
            uniform, labels, temperature, images
        )
        start_row = tf.cast(start_row, tf.int32)
        stack = (_GatedStack if self.variant == "gated" else _ResidualStack)(self, labels)
        if completing:
            caches = stack.caches_from(self.scale(images), labels, start_row)
        else:
            caches = stack.empty_caches(batch)
        # Gumbel noise for every sub-pixel at once (vectorised), laid out (H, W * C, B, levels)
        # so that a row, and in it a sub-pixel, is a contiguous slice (rank 4, as TFLite wants).
        gumbel = _gumbel(tf.reshape(uniform, [-1, h, w * c, self.levels]))
        gumbel = tf.transpose(gumbel, [1, 2, 0, 3])
        no_value = tf.zeros(tf.stack([batch, c]), tf.int32)

        def row_body(i, images, caches):
            context, caches = stack.row_start(caches)
            row_gumbel = tf.gather(gumbel, i)

            def pixel_body(j, row, state):
                # row: the levels drawn so far, sliding left (the whole row after W steps).
                value = no_value
                for ch in range(c):
                    params, new_state = stack.pixel(self.scale(value), j, context, state, ch)
                    noise = tf.gather(row_gumbel, j * c + ch)
                    drawn = self._draw(params, noise, temperature)
                    if c == 1:
                        value = drawn[:, None]
                    else:
                        value = value + drawn[:, None] * tf.one_hot(ch, c, dtype=tf.int32)
                # The passes above saw the pixel partly drawn; now it is whole.
                new_state = stack.pixel_drawn(self.scale(value), state, new_state)
                return j + 1, _slide(row, value), new_state

            _, row, state = tf.while_loop(
                lambda j, *_: j < w, pixel_body,
                (tf.constant(0), tf.zeros(tf.stack([batch, w, c]), tf.int32), stack.empty_state(batch)),
            )
            here = tf.reshape(tf.one_hot(i, h, dtype=tf.int32), (1, h, 1, 1))
            images = images * (1 - here) + row[:, None] * here
            return i + 1, images, stack.row_end(caches, self.scale(row), state)

        _, images, _ = tf.while_loop(lambda i, *_: i < h, row_body, (start_row, images, caches))
        return images

    # -- helpers ------------------------------------------------------------------------------

    def _labels_or_zeros(self, labels, start, stop):
        if labels is None:
            return tf.zeros((stop - start,), tf.int32)
        return tf.constant(labels[start:stop], tf.int32)

    def _check_images(self, images, arg):
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{arg} must be levels of shape (n, {', '.join(map(str, self.image_shape))}); "
                f"got shape {images.shape}."
            )
        self._check_levels_array(images, arg)
        return images.astype(np.int32)

    # -- serialisation ------------------------------------------------------------------------

    config_args = ("image_shape", "levels", "filters", "num_layers", "variant", "kernel_size",
                   "first_kernel_size", "likelihood", "num_mixtures")



def _at(t, i, j, ch):
    """t[:, i, j, ch] for (B, H, W, C, P) tensors. tf.slice has a static size, so the graph
    stays XLA-compilable (XLA mis-sizes strided slices whose bounds are both tensors)."""
    return tf.slice(t, [0, i, j, ch, 0], [-1, 1, 1, 1, -1])[:, 0, 0, 0]


def _labels_tensor(labels):
    if labels is None:
        return None
    return tf.cast(tf.reshape(labels, [-1]), tf.int32)


def _check_temperature(temperature):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)) or not temperature >= 0:
        raise ValueError(
            f"temperature must be a number >= 0 (1.0 samples the model, 0 takes the most likely "
            f"level); got {temperature!r}."
        )
    return float(temperature)


def _square_odd(size, arg):
    kh, kw = checks.odd_kernel(size, arg)
    if kh != kw:
        raise ValueError(f"{arg} must be one odd integer (square kernels); got {size!r}.")
    return kh


class _Stack:
    """What both variants' rolling caches share: the head at one pixel."""

    def __init__(self, model):
        self.model = model
        self.head_hidden = model.head_hidden.stepper()
        self.head_out = model.head_out.stepper()

    def head(self, features, channel):
        """Features (B, F) at one pixel -> the distribution parameters of one channel (B, P).
        The head's output k belongs to channel k % C (see `PixelCNN._to_params`)."""
        hidden = self.head_hidden(tf.nn.elu(features))
        out = self.head_out(tf.nn.elu(hidden))
        c = self.model.image_shape[2]
        return out if c == 1 else out[:, channel::c]

    def caches_from(self, x, labels, start_row):
        """The row windows at row `start_row` of known (scaled) images, from one forward pass."""
        _, taps = self.model._network(x, labels, collect=True)
        return [_rows_before(tap, r, start_row) for tap, r in zip(taps, self.radii)]


class _GatedStack(_Stack):
    """The gated network as caches for `sample_tensor`. Per row, each block's vertical stack
    computes row i, all columns, from a window of its input's last k//2 + 1 rows (`caches`);
    per pixel, each block's horizontal stack advances by one pixel (`state`: its pending
    sums).

    Under XLA (`model.sample`), only what the next draw waits for runs block by block per
    pixel: the horizontal convolution's centre tap, the gate, the 1x1 out. What a pixel leaves
    for the pixels to its right (the pending sums of blocks 1..) is one batched product over the
    blocks' inputs once the pixel is drawn: fewer ops in XLA's loop. Elsewhere (LiteRT, plain
    graphs) each block keeps its one product per pixel (`GatedStep.horizontal_pixel`), which
    measured faster there (benchmarks/pixelcnn_sampler_breakdown.py, RESULTS.md, issue 26).
    """

    def __init__(self, model, labels):
        super().__init__(model)
        self.steps = [b.stepper(labels) for b in model.blocks]
        self.radii = [b.kernel_size // 2 for b in model.blocks]
        self.inputs = [model.image_shape[2]] + [model.filters] * (len(model.blocks) - 1)
        # Blocks 1..: the horizontal convolutions' centre taps, and their taps for the pixels
        # to the right stacked (L - 1, F, rw 2F) for one batched product.
        self.batched = _in_xla()
        n = 2 * model.filters
        self.rw = model.kernel_size // 2
        self.rest = self.steps[1:]
        self.centre = [step.h_conv.row_kernel[:, :n] for step in self.rest]
        self.later = (
            tf.stack([step.h_conv.row_kernel[:, n:] for step in self.rest])
            if self.rest and self.rw else None
        )

    def empty_caches(self, batch):
        """Each block's vertical input at rows -k//2-1..-1: padding."""
        w = self.model.image_shape[1]
        return [
            tf.zeros(tf.stack([batch, r + 1, w + 2 * r, n])) for r, n in zip(self.radii, self.inputs)
        ]

    def row_start(self, caches):
        """Row i of every vertical stack: the blocks' contributions to their horizontal stacks,
        all in one (W, B, L * 2F) tensor (one read per pixel), and the windows of blocks 1..
        advanced to row i (block 0's, the image's, advances when the row has been drawn)."""
        caches = list(caches)
        to_h = []
        for l, step in enumerate(self.steps):
            v, contribution = step.vertical_row(caches[l])
            to_h.append(contribution)
            if l + 1 < len(self.steps):
                caches[l + 1] = _push_row(caches[l + 1], v, self.radii[l + 1])
        return tf.transpose(tf.concat(to_h, axis=-1), [1, 0, 2]), caches

    def empty_state(self, batch):
        """Block 0's pending sums (B, ...); blocks 1..'s, (L - 1, B, max(1, rw) 2F); and
        blocks 1..'s inputs at the pixel, (L - 1, B, F)."""
        if not self.batched:
            return [step.empty_pending(batch) for step in self.steps]
        f, layers = self.model.filters, len(self.steps)
        return (
            self.steps[0].empty_pending(batch),
            tf.zeros(tf.stack([layers - 1, batch, max(1, self.rw) * 2 * f])),
            tf.zeros(tf.stack([layers - 1, batch, f])),
        )

    def pixel(self, x, j, to_h, state, channel):
        """Parameters of `channel` at pixel (i, j), (B, P), from the (scaled) image there, x
        (B, C)."""
        to_h = tf.split(tf.gather(to_h, j), len(self.steps), axis=-1)
        if not self.batched:
            pending = list(state)
            for l, step in enumerate(self.steps):
                x, pending[l] = step.horizontal_pixel(x, to_h[l], pending[l])
            return self.head(x, channel), pending
        first, pending, _ = state
        n = 2 * self.model.filters
        x, first = self.steps[0].horizontal_pixel(x, to_h[0], first)
        inputs = []
        for l, step in enumerate(self.rest):
            inputs.append(x)
            # What ConvStep.pixel adds, in its order, with the pending sums of the row so far.
            h_pre = tf.matmul(x, self.centre[l])
            if self.rw:
                h_pre = h_pre + pending[l, :, :n]
            h_pre = h_pre + to_h[l + 1] + step.h_conv.bias
            if step.h_label is not None:
                h_pre = h_pre + step.h_label
            x = step.h_out(gate(h_pre)) + x
        inputs = tf.stack(inputs) if inputs else state[2]
        return self.head(x, channel), (first, pending, inputs)

    def pixel_drawn(self, x, before, after):
        """`after` with the pending sums from the whole drawn pixel: block 0's from x, blocks
        1..'s from their inputs there (the last channel's pass saw the pixel whole in them)."""
        if not self.batched:
            return [self.steps[0].advance(x, before[0])] + list(after[1:])
        first = self.steps[0].advance(x, before[0])
        pending = before[1]
        if self.later is not None:
            later = tf.matmul(after[2], self.later)
            if self.rw > 1:  # what earlier pixels left for j+2..j+rw
                n = 2 * self.model.filters
                later = later + tf.pad(pending[:, :, n:], [[0, 0], [0, 0], [0, n]])
            pending = later
        return first, pending, after[2]

    def row_end(self, caches, x_row, state):
        caches = list(caches)
        caches[0] = _push_row(caches[0], x_row, self.radii[0])
        return caches


class _ResidualStack(_Stack):
    """The original PixelCNN as caches for `sample_tensor`: each masked k x k layer keeps its
    input's last k//2 + 1 rows (`caches`), whose part of row i is computed once per row for
    all columns; per pixel (`state`), the pending sums of each k x k layer and the current
    row of each block's inner input (pushed into `caches` when the row is done)."""

    def __init__(self, model, labels):
        super().__init__(model)
        self.first = model.input_conv.stepper()
        self.steps = [b.stepper(labels) for b in model.blocks]
        self.radii = [model.first_kernel_size // 2] + [model.kernel_size // 2] * len(model.blocks)

    def empty_caches(self, batch):
        w, c = self.model.image_shape[1:]
        f = self.model.filters
        return [
            tf.zeros(tf.stack([batch, r + 1, w + 2 * r, c if l == 0 else f]))
            for l, r in enumerate(self.radii)
        ]

    def row_start(self, caches):
        """Each k x k layer's part from the rows above, for every column of row i, laid out
        (W, B, F) so that a pixel's is one read."""
        above = [
            tf.transpose(step.rows_above(cache[:, 1:]), [1, 0, 2]) if r else None
            for step, cache, r in zip([self.first] + self.steps, caches, self.radii)
        ]
        return above, caches

    def empty_state(self, batch):
        w, f = self.model.image_shape[1], self.model.filters
        rows = [tf.zeros(tf.stack([batch, w, f])) for _ in self.steps]
        pending = [self.first.empty_pending(batch)] + [s.empty_pending(batch) for s in self.steps]
        return rows, pending

    def pixel(self, x, j, above, state, channel):
        rows, pending = list(state[0]), list(state[1])
        column = [None if a is None else tf.gather(a, j) for a in above]
        features, pending[0] = self.first.pixel(x, pending[0], column[0])
        for l, step in enumerate(self.steps):
            t = step.inner(features)
            rows[l] = _slide(rows[l], t)
            out, pending[l + 1] = step.outer(t, pending[l + 1], column[l + 1])
            features = features + out
        return self.head(features, channel), (rows, pending)

    def pixel_drawn(self, x, before, after):
        return after[0], [self.first.advance(x, before[1][0])] + list(after[1][1:])

    def row_end(self, caches, x_row, state):
        rows = [x_row] + list(state[0])
        return [_push_row(cache, row, r) for cache, row, r in zip(caches, rows, self.radii)]


def _slide(window, value):
    """A window (B, n, ...) moved one step along axis 1: drops the oldest entry, appends
    `value` (B, ...). Static shapes, no scatter: what TFLite's WHILE needs."""
    if window.shape[1] == 1:
        return tf.cast(value, window.dtype)[:, None]
    return tf.concat([window[:, 1:], tf.cast(value, window.dtype)[:, None]], axis=1)


def _push_row(window, row, r):
    """A window of rows (B, n, W + 2r, C) moved down one row: appends `row` (B, W, C),
    zero-padded at the sides."""
    return _slide(window, tf.pad(row, [[0, 0], [r, r], [0, 0]]))


def _rows_before(tap, r, start_row):
    """Rows start_row-r-1..start_row-1 of a layer input (B, H, W, C), zero-padded above and
    at the sides: its window when row `start_row` is next."""
    padded = tf.pad(tf.cast(tap, tf.float32), [[0, 0], [r + 1, 0], [r, r], [0, 0]])
    return tf.slice(padded, [0, start_row, 0, 0], [-1, r + 1, -1, -1])


def _in_xla():
    """Whether the graph being traced compiles with XLA (`jit_compile=True`): the sampler's
    op choices that measured faster there and slower in LiteRT depend on it."""
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _gumbel(uniform):
    return -tf.math.log(-tf.math.log(uniform))


PRIOR_OPTIONS = (
    Option("filters", "base width of the network", int),
    Option("num_layers", "masked blocks", int),
    Option("variant", "gated blocks (van den Oord et al. 2016) or the original residual ones",
           choices=VARIANTS),
)

FAMILY = FamilyDescription(
    name="pixelcnn",
    model=PixelCNN,
    data_range="levels",
    metrics=("bits_per_dim",),
    likelihood="exact",
    options=(
        Option("levels", "pixel levels (256, or 2 for binary images)", int),
        *PRIOR_OPTIONS,
        Option("likelihood", "distribution of each sub-pixel", choices=lik.LIKELIHOODS),
    ),
    signatures="pixelcnn",
)
