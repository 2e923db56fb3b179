"""The PixelCNN family: autoregressive image models with exact likelihoods.

`PixelCNN` models p(x) = prod_i p(x_i | x_<i) over sub-pixels in raster order, channels R, G, B
within a pixel. `variant="gated"` is the Gated PixelCNN (van den Oord et al. 2016, no blind
spot, class conditioning); `variant="original"` the residual masked-convolution PixelCNN of
"Pixel Recurrent Neural Networks" (with its blind spot). Sampling runs inside one compiled
graph, either naively (a full forward pass per sub-pixel) or with the cached incremental
scheme of Ramachandran et al. 2017, which computes only the activations the next pixel needs.
Both draw the same Gumbel noise, so for the same seed they return the same images.
"""

from __future__ import annotations

import math

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks
from keras_gen.layers.masked import GatedPixelCNNBlock, MaskedConv2D, MaskedResidualBlock, gate
from keras_gen.models import pixelcnn_likelihoods as lik
from keras_gen.models.base import GenerativeModel
from keras_gen.networks import Initializers

VARIANTS = ("gated", "original")
METHODS = ("fast", "naive")


@keras.saving.register_keras_serializable(package="keras_gen")
class PixelCNN(GenerativeModel):
    """A PixelCNN trained with `model.fit` on integer pixel levels.

    Args:
      image_shape: (height, width, channels); channels are generated in order (R, G, B).
      levels: pixel values 0..levels-1 (256 for 8-bit data loaded with image_range="levels";
        2 for image_range="binary").
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
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_per_dim_tracker = keras.metrics.Mean(name="bits_per_dim")
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
        shape = tf.concat([tf.shape(x)[:-1], [self.num_params, c]], axis=0)
        x = tf.reshape(x, shape)
        rank = len(x.shape)
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        return tf.transpose(x, perm)

    def _network(self, x, labels, collect=False):
        """Scaled images (B, H, W, C) -> distribution parameters (B, H, W, C, P), and with
        `collect`, the inputs of the layers the fast sampler caches."""
        taps = []
        if self.variant == "gated":
            v = h = x
            for block in self.blocks:
                taps.append(v)
                v, h = block([v, h] if labels is None else [v, h, labels])
        else:
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
        message = (
            f"PixelCNN(levels={self.levels}) takes integer pixel levels 0..{self.levels - 1}. "
            "Load the data with keras_gen.data.load(..., image_range='levels') for levels=256, "
            "or image_range='binary' for levels=2."
        )
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

    def check_data(self, x, y=None):
        super().check_data(x, y)
        if isinstance(x, tf.data.Dataset):
            for batch in x.take(1):
                images = batch[0] if isinstance(batch, (tuple, list)) else batch
                self._check_levels_array(images.numpy(), "the data")
        elif isinstance(x, np.ndarray):
            self._check_levels_array(x, "the data")

    def _check_levels_array(self, images, where):
        images = np.asarray(images)
        if images.size == 0:
            return
        hint = (
            "Load the data with keras_gen.data.load(..., image_range='levels') for levels=256, "
            "or image_range='binary' for levels=2"
        )
        if np.issubdtype(images.dtype, np.floating) and not np.all(images == np.round(images)):
            raise ValueError(
                f"PixelCNN takes integer pixel levels 0..{self.levels - 1}; {where} has "
                f"non-integer values (e.g. {float(images[images != np.round(images)][0])}), "
                f"probably images scaled to [0, 1] or [-1, 1]. {hint}."
            )
        lo, hi = int(np.min(images)), int(np.max(images))
        if lo < 0 or hi >= self.levels:
            raise ValueError(
                f"PixelCNN(levels={self.levels}) takes pixel levels 0..{self.levels - 1}; {where} "
                f"has values in {lo}..{hi}. {hint}, or build the model with levels={hi + 1}."
            )

    # -- likelihood ---------------------------------------------------------------------------

    def log_prob(self, images, labels=None, batch_size=256):
        """log p(x) in nats per image: NumPy levels (n, H, W, C) -> float64 (n,)."""
        images = self._check_images(images, "images")
        n = len(images)
        labels = checks.labels(labels, n, self.num_classes)
        fn = self._compiled("log_prob", self._log_prob_fn)
        out = np.zeros((n,), np.float64)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            out[start:stop] = fn(
                tf.constant(images[start:stop], tf.int32), self._labels_or_zeros(labels, start, stop)
            ).numpy()
        return out

    def _log_prob_fn(self, levels, labels):
        return self._log_prob_tensor(levels, None if self.num_classes is None else labels)

    def log_likelihood(self, data, labels=None, batch_size=256):
        """The exact log-likelihood of a data set (a `tf.data.Dataset` of levels or (levels,
        labels) batches, or a NumPy array of levels with `labels`), as the VAE's evaluation
        methods report theirs: a dict with `nats_per_image` (the mean negative log-likelihood),
        `bits_per_dim` and `num_examples`."""
        total, count = 0.0, 0
        if isinstance(data, tf.data.Dataset):
            for batch in data:
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
        """Gumbel noise: one value per level of every sub-pixel."""
        return self.image_shape + (self.levels,)

    def sample(self, n, seed=None, labels=None, method="fast", temperature=1.0, batch_size=64):
        """`n` images as int32 NumPy levels (n, H, W, C). Same seed, same images, with either
        method: "fast" (cached incremental generation) or "naive" (a full forward pass per
        sub-pixel). `temperature` < 1 sharpens every conditional, > 1 flattens it."""
        n = checks.count(n)
        levels = np.zeros((n,) + self.image_shape, np.int32)
        return self._autoregress(levels, 0, labels, seed, method, temperature, batch_size)

    def complete(
        self, images, known_rows, seed=None, labels=None, method="fast", temperature=1.0,
        batch_size=64,
    ):
        """Keeps the top `known_rows` rows of `images` (levels) and samples the rest."""
        images = self._check_images(images, "images")
        h = self.image_shape[0]
        if isinstance(known_rows, bool) or not isinstance(known_rows, (int, np.integer)) or not (
            0 <= known_rows <= h
        ):
            raise ValueError(f"known_rows must be an integer in 0..{h}; got {known_rows!r}.")
        return self._autoregress(
            images.astype(np.int32), int(known_rows), labels, seed, method, temperature, batch_size
        )

    def generate(self, n, seed=None, labels=None, batch_size=None, method="fast", temperature=1.0, z=None):
        """`n` images as float32 (n, H, W, C) in [0, 1] (levels / (levels - 1)): `sample`
        through the package's `generate` contract. `z` is the Gumbel noise itself."""
        checks.choice("method", method, METHODS)
        _check_temperature(temperature)
        return super().generate(
            n, seed, labels, batch_size, z=z, method=method, temperature=temperature
        )

    def generation_noise(self, seed, start, stop):
        return self.gumbel_noise(seed, start, stop)

    def images_from_noise(self, noise, labels=None, method="fast", temperature=1.0):
        levels = self._sample_batch(
            np.zeros((len(noise),) + self.image_shape, np.int32), 0, labels, noise, method,
            temperature,
        )
        return levels.astype(np.float32) / (self.levels - 1)

    def uniform_noise(self, seed, start, stop):
        """The uniform noise in (0, 1), (stop - start, H, W, C, levels), behind images
        start..stop-1 of `sample(n, seed)`: keyed by (seed, image index), so an image does not
        depend on n or the batch size. `sample_tensor(uniform)` turns it into the same images."""
        shape = self.image_shape + (self.levels,)
        tiny = np.finfo(np.float32).tiny
        return tf.stack([
            tf.random.stateless_uniform(shape, seed=[seed, k], minval=tiny, maxval=1.0)
            for k in range(start, stop)
        ])

    def gumbel_noise(self, seed, start, stop):
        """Gumbel noise -log(-log(u)) of `uniform_noise`: what sampling adds to the (tempered)
        log-probabilities of the levels before taking the argmax (Gumbel-max)."""
        return -tf.math.log(-tf.math.log(self.uniform_noise(seed, start, stop)))

    def sample_tensor(self, uniform, labels=None, temperature=1.0, images=None, start_row=0):
        """Sampling as one pure TensorFlow graph, for export: no random ops, TFLite builtin ops
        only, any batch size. `uniform` (B, H, W, C, levels) in (0, 1) (see `uniform_noise`),
        int32 `labels` (B,) for conditional models; with `images` (B, H, W, C) levels, rows
        from `start_row` on are resampled (completion). Returns int32 levels (B, H, W, C), the
        images `sample`/`complete` give for the same noise."""
        h, w, c = self.image_shape
        steps = h * w * c
        uniform = tf.convert_to_tensor(uniform, tf.float32)
        batch = tf.shape(uniform)[0]
        labels = None if self.num_classes is None else _labels_tensor(labels)
        inv_temperature = 1.0 / tf.cast(temperature, tf.float32)
        gumbel = tf.reshape(-tf.math.log(-tf.math.log(uniform)), (batch, steps, self.levels))
        if images is None:
            images = tf.zeros(tf.stack([batch, h, w, c]), tf.int32)
        images = tf.cast(images, tf.int32)

        # One network pass per sub-pixel. The current sub-pixel's parameters and noise are
        # picked, and its level written, with one-hot masks, so every tensor stays rank <= 4
        # (TFLite's limit for several kernels) and no gather/scatter is needed.
        def body(t, images):
            params = self._network(self.scale(images), labels)  # (B, H, W, C, P)
            params = tf.reshape(tf.cast(params, tf.float32), (batch, steps, params.shape[-1]))
            pick = tf.reshape(tf.one_hot(t, steps, dtype=tf.float32), (1, steps, 1))
            logp = lik.level_log_probs(tf.reduce_sum(params * pick, axis=1), self.likelihood, self.levels)
            noise = tf.reduce_sum(gumbel * pick, axis=1)
            drawn = tf.argmax(logp * inv_temperature + noise, axis=-1, output_type=tf.int32)
            mask = tf.reshape(tf.one_hot(t, steps, dtype=tf.int32), (1, h, w, c))
            images = images * (1 - mask) + drawn[:, None, None, None] * mask
            return t + 1, tf.ensure_shape(images, [None, h, w, c])

        start = tf.cast(start_row, tf.int32) * (w * c)
        _, images = tf.while_loop(
            lambda t, _: t < steps, body, (start, images), maximum_iterations=steps,
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, h, w, c])),
        )
        return images

    def _autoregress(self, levels, start_row, labels, seed, method, temperature, batch_size):
        checks.choice("method", method, METHODS)
        _check_temperature(temperature)
        batch_size = checks.positive_int("batch_size", batch_size)
        n = len(levels)
        labels = checks.labels(labels, n, self.num_classes)
        seed = checks.seed_or_fresh(seed)
        out = np.array(levels, np.int32, copy=True)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            out[start:stop] = self._sample_batch(
                out[start:stop], start_row, None if labels is None else labels[start:stop],
                self.gumbel_noise(seed, start, stop), method, temperature,
            )
        return out

    def _sample_batch(self, levels, start_row, labels, gumbel, method, temperature):
        """One batch through the compiled sampler: levels (B, H, W, C) with rows < start_row
        known -> int32 NumPy levels."""
        fn = self._compiled(method, self._sample_fast if method == "fast" else self._sample_naive)
        batch = len(levels)
        return fn(
            tf.constant(levels, tf.int32),
            tf.zeros((batch,), tf.int32) if labels is None else tf.constant(labels, tf.int32),
            tf.convert_to_tensor(gumbel, tf.float32),
            tf.constant(start_row, tf.int32),
            tf.constant(1.0 / float(temperature), tf.float32),
        ).numpy()

    def _compiled(self, key, fn):
        """One traced graph per entry point; batch size free, so it traces once."""
        if key not in self._sampler_fns:
            h, w, c = self.image_shape
            images = tf.TensorSpec((None, h, w, c), tf.int32)
            labels = tf.TensorSpec((None,), tf.int32)
            if key == "log_prob":
                signature = [images, labels]
            else:
                signature = [
                    images, labels, tf.TensorSpec((None, h, w, c, self.levels), tf.float32),
                    tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.float32),
                ]
            # Plain graphs, not XLA: on CPU they compile 3-4x faster and run as fast or faster.
            self._sampler_fns[key] = tf.function(fn, input_signature=signature)
        return self._sampler_fns[key]

    def _draw(self, params, gumbel, inv_temperature):
        """Gumbel-max: the level maximising log p(level) / T + g; params (B, P), g (B, levels)."""
        logp = lik.level_log_probs(tf.cast(params, tf.float32), self.likelihood, self.levels)
        return tf.argmax(logp * inv_temperature + gumbel, axis=-1, output_type=tf.int32)

    def _sample_naive(self, levels, labels, gumbel, start_row, inv_temperature):
        """A full forward pass per sub-pixel, in one tf.while_loop."""
        h, w, c = self.image_shape
        labels = None if self.num_classes is None else labels
        batch = tf.shape(levels)[0]
        rows = tf.range(batch)

        def body(t, levels):
            i, j, ch = t // (w * c), (t // c) % w, t % c
            params = _at(self._network(self.scale(levels), labels), i, j, ch)
            value = self._draw(params, _at(gumbel, i, j, ch), inv_temperature)
            index = tf.stack(
                [rows, tf.fill([batch], i), tf.fill([batch], j), tf.fill([batch], ch)], axis=1
            )
            return t + 1, tf.tensor_scatter_nd_update(levels, index, value)

        _, levels = tf.while_loop(
            lambda t, _: t < h * w * c, body, (start_row * w * c, levels)
        )
        return levels

    # -- fast sampling (Ramachandran et al. 2017) ---------------------------------------------

    def _sample_fast(self, levels, labels, gumbel, start_row, inv_temperature):
        """Cached incremental generation. Every activation at pixel p depends only on sub-pixels
        before p, so each is computed once, when p is generated, and cached: per pixel each
        layer computes one output vector from a window of its input cache. The gated variant's
        vertical stack depends on rows above only, so it is computed a row at a time. The
        caches start from one full forward pass over the starting image, which makes
        `complete` (known top rows) the same loop."""
        labels = None if self.num_classes is None else labels
        x = self.scale(levels)
        _, taps = self._network(x, labels, collect=True)
        # The cached path computes in float32 whatever the dtype policy (layer calls below are
        # cast back), so mixed-precision models sample too.
        taps = [tf.cast(t, tf.float32) for t in taps]
        if self.variant == "gated":
            return self._fast_gated(levels, x, taps, labels, gumbel, start_row, inv_temperature)
        return self._fast_original(levels, x, taps, labels, gumbel, start_row, inv_temperature)

    def _head_vector(self, features):
        """The head at one pixel: (B, F) -> (B, C, P)."""
        hid = tf.matmul(tf.nn.elu(features), _matrix(self.head_hidden)) + self.head_hidden.bias
        out = tf.matmul(tf.nn.elu(hid), _matrix(self.head_out)) + self.head_out.bias
        return self._to_params(out)

    def _write(self, levels, x_pad, i, j, ch, value, offset):
        """Stores a sampled level in the int image and in the padded scaled image."""
        batch = tf.shape(levels)[0]
        rows = tf.range(batch)
        fill = lambda v: tf.fill([batch], v)  # noqa: E731
        levels = tf.tensor_scatter_nd_update(
            levels, tf.stack([rows, fill(i), fill(j), fill(ch)], 1), value
        )
        x_pad = tf.tensor_scatter_nd_update(
            x_pad,
            tf.stack([rows, fill(i + offset[0]), fill(j + offset[1]), fill(ch)], 1),
            self.scale(value),
        )
        return levels, x_pad

    def _fast_gated(self, levels, x, taps, labels, gumbel, start_row, inv_temperature):
        h, w, c = self.image_shape
        blocks = self.blocks
        radii = [b.kernel_size // 2 for b in blocks]
        r0 = radii[0]
        batch = tf.shape(levels)[0]
        rows = tf.range(batch)
        # Image padded as the first block's vertical input: rows i-r0-1..i-1 for row i.
        x_pad = tf.pad(x, [[0, 0], [r0 + 1, 0], [r0, r0], [0, 0]])
        # Vertical inputs of blocks 1.. (padded top and sides), and one row of each block's
        # horizontal input (padded left).
        v_caches = [
            tf.pad(taps[l], [[0, 0], [radii[l], 0], [radii[l], radii[l]], [0, 0]])
            for l in range(1, len(blocks))
        ]
        h_rows = [
            tf.zeros([batch, w + radii[l], self.filters]) for l in range(1, len(blocks))
        ]
        h_kernels = [b.h_conv.masked_kernel()[0, : b.kernel_size // 2 + 1] for b in blocks]
        h_out = [_matrix(b.h_out) for b in blocks]
        v_label = [None] * len(blocks)
        h_label = [None] * len(blocks)
        if labels is not None:
            v_label = [tf.cast(b.v_embedding(labels), tf.float32)[:, None, None, :] for b in blocks]
            h_label = [tf.cast(b.h_embedding(labels), tf.float32) for b in blocks]

        def row_step(i, x_pad, v_caches):
            """The vertical stack for row i (all columns); returns each block's v_to_h row."""
            v_caches = list(v_caches)
            strip = tf.slice(x_pad, [0, i, 0, 0], [-1, r0 + 1, -1, -1])
            vh_rows = []
            for l, block in enumerate(blocks):
                v_pre = tf.nn.conv2d(strip, block.v_conv.kernel, 1, "VALID") + block.v_conv.bias
                vh_rows.append(tf.cast(block.v_to_h(v_pre), tf.float32)[:, 0])
                if v_label[l] is not None:
                    v_pre = v_pre + v_label[l]
                if l + 1 < len(blocks):
                    r = radii[l + 1]
                    v_out = tf.pad(gate(v_pre)[:, 0], [[0, 0], [r, r], [0, 0]])
                    v_caches[l] = tf.tensor_scatter_nd_update(
                        v_caches[l], tf.stack([rows, tf.fill([batch], i + r)], 1), v_out
                    )
                    strip = tf.slice(v_caches[l], [0, i, 0, 0], [-1, r + 1, -1, -1])
            return vh_rows, v_caches

        def pixel_step(i, j, x_pad, h_rows, vh_rows):
            """The horizontal stack and head at pixel (i, j): (B, C, P)."""
            h_rows = list(h_rows)
            window = tf.slice(x_pad, [0, i + r0 + 1, j, 0], [-1, 1, r0 + 1, -1])[:, 0]
            for l, block in enumerate(blocks):
                pre = tf.einsum("bkc,kcf->bf", window, h_kernels[l]) + block.h_conv.bias
                pre = pre + tf.slice(vh_rows[l], [0, j, 0], [-1, 1, -1])[:, 0]
                if h_label[l] is not None:
                    pre = pre + h_label[l]
                out = tf.matmul(gate(pre), h_out[l]) + block.h_out.bias
                if l > 0:
                    out = out + window[:, -1]
                if l + 1 < len(blocks):
                    r = radii[l + 1]
                    h_rows[l] = tf.tensor_scatter_nd_update(
                        h_rows[l], tf.stack([rows, tf.fill([batch], j + r)], 1), out
                    )
                    window = tf.slice(h_rows[l], [0, j, 0], [-1, r + 1, -1])
            return self._head_vector(out), h_rows

        def row_body(i, levels, x_pad, v_caches, h_rows):
            vh_rows, v_caches = row_step(i, x_pad, v_caches)

            def col_body(j, levels, x_pad, h_rows):
                for ch in range(c):
                    params, h_rows = pixel_step(i, j, x_pad, h_rows, vh_rows)
                    value = self._draw(params[:, ch], _at(gumbel, i, j, ch), inv_temperature)
                    levels, x_pad = self._write(levels, x_pad, i, j, ch, value, (r0 + 1, r0))
                return j + 1, levels, x_pad, h_rows

            _, levels, x_pad, h_rows = tf.while_loop(
                lambda j, *_: j < w, col_body, (0, levels, x_pad, h_rows)
            )
            return i + 1, levels, x_pad, v_caches, h_rows

        loop = tf.while_loop(
            lambda i, *_: i < h, row_body, (start_row, levels, x_pad, v_caches, h_rows)
        )
        return loop[1]

    def _fast_original(self, levels, x, taps, labels, gumbel, start_row, inv_temperature):
        h, w, c = self.image_shape
        k0 = self.first_kernel_size
        r0 = k0 // 2
        k = self.kernel_size
        r = k // 2
        batch = tf.shape(levels)[0]
        rows = tf.range(batch)
        x_pad = tf.pad(x, [[0, 0], [r0, r0], [r0, r0], [0, 0]])
        caches = [tf.pad(t, [[0, 0], [r, r], [r, r], [0, 0]]) for t in taps]
        first_kernel = self.input_conv.masked_kernel()
        mid_kernels = [b.conv_mid.masked_kernel() for b in self.blocks]
        in_mats = [_matrix(b.conv_in) for b in self.blocks]
        out_mats = [_matrix(b.conv_out) for b in self.blocks]
        label_bias = [None] * len(self.blocks)
        if labels is not None:
            label_bias = [tf.cast(b.embedding(labels), tf.float32) for b in self.blocks]

        def pixel_step(i, j, x_pad, caches):
            caches = list(caches)
            window = tf.slice(x_pad, [0, i, j, 0], [-1, k0, k0, -1])
            feat = tf.einsum("bhwc,hwcf->bf", window, first_kernel) + self.input_conv.bias
            for l, block in enumerate(self.blocks):
                t = tf.matmul(tf.nn.relu(feat), in_mats[l]) + block.conv_in.bias
                if label_bias[l] is not None:
                    t = t + label_bias[l]
                t = tf.nn.relu(t)
                index = tf.stack([rows, tf.fill([batch], i + r), tf.fill([batch], j + r)], 1)
                caches[l] = tf.tensor_scatter_nd_update(caches[l], index, t)
                window_l = tf.slice(caches[l], [0, i, j, 0], [-1, k, k, -1])
                u = tf.einsum("bhwc,hwcf->bf", window_l, mid_kernels[l]) + block.conv_mid.bias
                feat = feat + tf.matmul(tf.nn.relu(u), out_mats[l]) + block.conv_out.bias
            return self._head_vector(feat), caches

        def body(p, levels, x_pad, caches):
            i, j = p // w, p % w
            for ch in range(c):
                params, caches = pixel_step(i, j, x_pad, caches)
                value = self._draw(params[:, ch], _at(gumbel, i, j, ch), inv_temperature)
                levels, x_pad = self._write(levels, x_pad, i, j, ch, value, (r0, r0))
            return p + 1, levels, x_pad, caches

        loop = tf.while_loop(
            lambda p, *_: p < h * w, body, (start_row * w, levels, x_pad, caches)
        )
        return loop[1]

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

    def get_config(self):
        config = super().get_config()
        config.update(
            levels=self.levels,
            filters=self.filters,
            num_layers=self.num_layers,
            variant=self.variant,
            kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size,
            likelihood=self.likelihood,
            num_mixtures=self.num_mixtures,
        )
        return config



def _at(t, i, j, ch):
    """t[:, i, j, ch] for (B, H, W, C, P) tensors. tf.slice has a static size, so the graph
    stays XLA-compilable (XLA mis-sizes strided slices whose bounds are both tensors)."""
    return tf.slice(t, [0, i, j, ch, 0], [-1, 1, 1, 1, -1])[:, 0, 0, 0]


def _matrix(conv):
    """A 1x1 (masked) convolution's kernel as a (in, out) matrix."""
    kernel = conv.masked_kernel() if isinstance(conv, MaskedConv2D) else conv.kernel
    return kernel[0, 0]


def _labels_tensor(labels):
    if labels is None:
        return None
    return tf.cast(tf.reshape(labels, [-1]), tf.int32)


def _check_temperature(temperature):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, e.g. 1.0; got {temperature!r}.")
    return float(temperature)


def _square_odd(size, arg):
    kh, kw = checks.odd_kernel(size, arg)
    if kh != kw:
        raise ValueError(f"{arg} must be one odd integer (square kernels); got {size!r}.")
    return kh
