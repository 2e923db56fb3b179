"""The GAN family: `GAN` wraps any generator and discriminator in the minimax game; `DCGAN`
builds a sensible pair for square images."""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks
from keras_gen import losses as kg_losses
from keras_gen import networks
from keras_gen.models.base import GenerativeModel

# Purposes of the noise drawn in one step (see GenerativeModel.step_noise).
_GEN_PURPOSE = 63
_ALPHA_PURPOSE = 32


@keras.saving.register_keras_serializable(package="keras_gen")
class GAN(GenerativeModel):
    """A generative adversarial network trained with `model.fit`.

    Args:
      generator: latent vectors `(batch, latent_dim)` (plus int labels `(batch,)` when
        conditional, as `[z, labels]`) to images in `image_range`.
      discriminator: images (plus labels) to one logit per image.
      latent_dim: size of the latent vectors.
      loss: "non_saturating" (default), "minimax", "wasserstein_gp" or "hinge".
      image_range: the generator's output range, "tanh" ([-1, 1]) or "unit" ([0, 1]); training
        data must come in the same range (`keras_gen.data.load(..., image_range=...)`).
      discriminator_steps: discriminator updates per generator update.
      label_smoothing: one-sided smoothing of the real targets (minimax / non_saturating).
      gradient_penalty_weight: weight of the WGAN-GP penalty (loss="wasserstein_gp").
      ema_decay: if set (e.g. 0.999), keep an exponential moving average of the generator's
        weights and let `generate` use it.
      num_classes: number of classes for a conditional GAN (both networks take the label).
      seed: seed of the training noise; two runs with the same seed and data end alike.
    """

    network_args = ("generator", "discriminator")

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        loss="non_saturating",
        image_range="tanh",
        discriminator_steps=1,
        label_smoothing=0.0,
        gradient_penalty_weight=10.0,
        ema_decay=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        checks.choice("loss", loss, kg_losses.GAN_LOSSES)
        checks.choice("image_range", image_range, ("tanh", "unit"))
        latent_dim = checks.positive_int("latent_dim", latent_dim)
        image_shape = _output_image_shape(generator)
        super().__init__(image_shape, num_classes=num_classes, seed=seed, **kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.loss_kind = loss
        self.image_range = image_range
        self.discriminator_steps = checks.positive_int(
            "discriminator_steps", discriminator_steps
        )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be None or in (0, 1), e.g. 0.999; got {ema_decay!r}.")
        self.ema_decay = ema_decay
        self.ema_generator = _clone_for_ema(generator) if ema_decay is not None else None
        self._check_networks()

        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")
        self.gp_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.built = True

    # -- set-up -------------------------------------------------------------------------------

    def _check_networks(self):
        z = tf.zeros((2, self.latent_dim), tf.float32)
        y = tf.zeros((2,), tf.int32)
        try:
            images = self.generator(z if self.num_classes is None else [z, y], training=False)
        except Exception as e:
            raise ValueError(
                f"the generator cannot take latent vectors of size latent_dim={self.latent_dim}"
                + (" with labels [z, labels]" if self.num_classes else "")
                + f": {str(e)[:500]}"
            ) from e
        try:
            logits = self.discriminator(
                images if self.num_classes is None else [images, y], training=False
            )
        except Exception as e:
            raise ValueError(
                "the discriminator cannot take the generator's images"
                + (" with labels [images, labels]" if self.num_classes else "")
                + f": {str(e)[:500]}"
            ) from e
        if tuple(logits.shape) not in ((2, 1), (2,)):
            raise ValueError(
                "the discriminator must return one logit per image, shape (batch, 1); got "
                f"shape {tuple(logits.shape)[1:]} per batch."
            )

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Defaults: Adam(2e-4, beta_1=0.5) for both networks (DCGAN), or
        Adam(1e-4, beta_1=0, beta_2=0.9) for WGAN-GP, as in the papers."""
        if "optimizer" in kwargs:
            raise ValueError(
                "a GAN has two optimisers: pass d_optimizer= and g_optimizer= instead of optimizer=."
            )
        d_optimizer = d_optimizer or self.default_optimizer("d_optimizer")
        g_optimizer = g_optimizer or self.default_optimizer("g_optimizer")
        d_optimizer = keras.optimizers.get(d_optimizer)
        g_optimizer = keras.optimizers.get(g_optimizer)
        if d_optimizer is g_optimizer:
            raise ValueError("d_optimizer and g_optimizer must be two different optimiser objects.")
        # The generator's optimiser is Keras's own `optimizer`, so `iterations` counts training
        # steps for callbacks; the discriminator's is extra state.
        super().compile(optimizer=g_optimizer, **kwargs)
        # Keras wraps its own `optimizer` in a LossScaleOptimizer under mixed_float16; the
        # discriminator's needs the same.
        self.d_optimizer = self.loss_scaled(d_optimizer)
        with self.distribute_strategy.scope():
            self.d_optimizer.build(self.discriminator.trainable_variables)

    def optimized_variables(self):
        return self.generator.trainable_variables

    def default_optimizer(self, argument="g_optimizer"):
        """The optimiser `compile()` gives `argument` ("d_optimizer" or "g_optimizer")."""
        checks.choice("argument", argument, ("d_optimizer", "g_optimizer", "optimizer"))
        if self.loss_kind == "wasserstein_gp":
            return keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)
        return keras.optimizers.Adam(2e-4, beta_1=0.5)

    @property
    def g_optimizer(self):
        return self.optimizer

    def get_compile_config(self):
        if not getattr(self, "compiled", False):
            return None
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
        )

    @property
    def metrics(self):
        trackers = [self.d_loss_tracker, self.g_loss_tracker]
        if self.loss_kind == "wasserstein_gp":
            trackers.append(self.gp_tracker)
        return trackers + [self.real_score_tracker, self.fake_score_tracker]

    # -- the minimax game ---------------------------------------------------------------------

    def call(self, inputs, training=False):
        """Runs the generator: `model(z)` or `model([z, labels])` gives images in image_range."""
        return self.generator(inputs, training=training)

    def _gen_inputs(self, z, labels):
        return z if labels is None else [z, labels]

    def _disc_inputs(self, images, labels):
        return images if labels is None else [images, labels]

    def _discriminator_phase(self, real, labels, step, d_step, train):
        batch = tf.shape(real)[0]
        global_batch = self.global_batch_size(batch)
        z = self.step_noise(step, d_step, batch, (self.latent_dim,))
        with tf.GradientTape() as tape:
            fake = self.generator(self._gen_inputs(z, labels), training=train)
            real_logits = self.discriminator(self._disc_inputs(real, labels), training=train)
            fake_logits = self.discriminator(self._disc_inputs(fake, labels), training=train)
            per_example = kg_losses.discriminator_loss(
                self.loss_kind, real_logits, fake_logits, self.label_smoothing
            )
            if self.loss_kind == "wasserstein_gp":
                alpha = self.step_noise(
                    step, _ALPHA_PURPOSE + d_step, batch, (), distribution="uniform"
                )
                penalty = kg_losses.gradient_penalty(
                    self.discriminator, real, fake, alpha, labels
                )
                per_example = per_example + self.gradient_penalty_weight * penalty
                self.gp_tracker.update_state(penalty)
            loss = tf.reduce_sum(per_example) / global_batch
            scaled_loss = self.d_optimizer.scale_loss(loss) if train else loss
        if train:
            variables = self.discriminator.trainable_variables
            self.apply_gradients(self.d_optimizer, tape.gradient(scaled_loss, variables), variables)
        self.d_loss_tracker.update_state(per_example)
        self.real_score_tracker.update_state(tf.reshape(real_logits, [-1]))
        self.fake_score_tracker.update_state(tf.reshape(fake_logits, [-1]))

    def _generator_phase(self, labels, batch, step, train):
        global_batch = self.global_batch_size(batch)
        z = self.step_noise(step, _GEN_PURPOSE, batch, (self.latent_dim,))
        with tf.GradientTape() as tape:
            fake = self.generator(self._gen_inputs(z, labels), training=train)
            fake_logits = self.discriminator(self._disc_inputs(fake, labels), training=train)
            per_example = kg_losses.generator_loss(self.loss_kind, fake_logits)
            loss = tf.reduce_sum(per_example) / global_batch
            scaled_loss = self.optimizer.scale_loss(loss) if train else loss
        if train:
            variables = self.generator.trainable_variables
            self.apply_gradients(self.optimizer, tape.gradient(scaled_loss, variables), variables)
            self._update_ema()
        self.g_loss_tracker.update_state(per_example)

    def train_step(self, data):
        real, labels = self._unpack(data)
        real = tf.cast(real, tf.float32)
        step = self.optimizer.iterations
        for d_step in range(self.discriminator_steps):
            self._discriminator_phase(real, labels, step, d_step, train=True)
        self._generator_phase(labels, tf.shape(real)[0], step, train=True)
        return self.metrics_logs()

    def test_step(self, data):
        real, labels = self._unpack(data)
        real = tf.cast(real, tf.float32)
        # A fixed step key: validation noise is the same at every evaluation.
        step = tf.constant(-1, tf.int64)
        self._discriminator_phase(real, labels, step, 0, train=False)
        self._generator_phase(labels, tf.shape(real)[0], step, train=False)
        return self.metrics_logs()

    def _update_ema(self):
        if self.ema_generator is None:
            return
        decay = self.ema_decay
        for ema_w, w in zip(self.ema_generator.weights, self.generator.weights):
            if w.trainable:
                ema_w.assign(decay * ema_w + (1.0 - decay) * w)
            else:  # batch-norm statistics follow the live generator
                ema_w.assign(w)

    # -- sampling -----------------------------------------------------------------------------

    @property
    def sampling_generator(self):
        """The network `generate` uses: the EMA generator when enabled."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    @property
    def data_range(self):
        return self.image_range

    def to_unit_range(self, images):
        """Generator outputs (image_range) -> [0, 1], NumPy float32."""
        images = keras.ops.convert_to_numpy(images)
        if self.image_range == "tanh":
            images = (images + 1.0) / 2.0
        return np.clip(images, 0.0, 1.0).astype(np.float32)

    def images_from_noise(self, noise, labels=None):
        inputs = noise if labels is None else [noise, labels]
        return self.to_unit_range(self.sampling_generator(inputs, training=False))

    # -- serialisation ------------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.pop("image_shape")
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            discriminator=keras.saving.serialize_keras_object(self.discriminator),
            latent_dim=self.latent_dim,
            loss=self.loss_kind,
            image_range=self.image_range,
            discriminator_steps=self.discriminator_steps,
            label_smoothing=self.label_smoothing,
            gradient_penalty_weight=self.gradient_penalty_weight,
            ema_decay=self.ema_decay,
        )
        return config



@keras.saving.register_keras_serializable(package="keras_gen")
class DCGAN(GAN):
    """A GAN with DCGAN networks (`keras_gen.networks.dcgan_generator` and
    `dcgan_discriminator`) for square images whose side is a multiple of 4, 8 to 128.

    Generator: a dense projection to a small feature map, strided transposed convolutions with
    batch normalisation (synchronised across replicas, so training on N devices equals one) and
    ReLU, and a tanh (or sigmoid for image_range="unit") output. Discriminator: strided
    convolutions with LeakyReLU, no batch normalisation (so the WGAN-GP penalty stays per example),
    optional spectral normalisation, and dropout. Conditional models feed the label to the
    generator through an embedding and to the discriminator by projection (Miyato & Koyama 2018).
    """

    def __init__(
        self,
        image_shape,
        latent_dim=100,
        num_classes=None,
        filters=64,
        spectral_norm=False,
        dropout=0.3,
        **kwargs,
    ):
        image_shape = checks.square_image_shape(image_shape, "DCGAN")
        latent_dim = checks.positive_int("latent_dim", latent_dim)
        self.filters = checks.positive_int("filters", filters)
        self.spectral_norm = bool(spectral_norm)
        self.dropout = float(dropout)
        image_range = kwargs.get("image_range", "tanh")
        # The model's seed also fixes the initial weights, so equal seeds give equal runs.
        kwargs["seed"] = seed = checks.seed_or_fresh(kwargs.get("seed"))
        with networks.policy_scope(kwargs.get("dtype")):
            generator = networks.dcgan_generator(
                image_shape, latent_dim, num_classes, filters, image_range, seed=seed
            )
            discriminator = networks.dcgan_discriminator(
                image_shape, num_classes, filters, spectral_norm, dropout, seed=seed
            )
        super().__init__(
            generator, discriminator, latent_dim, num_classes=num_classes, **kwargs
        )

    def get_config(self):
        config = super().get_config()
        del config["generator"], config["discriminator"]
        config.update(
            image_shape=list(self.image_shape),
            filters=self.filters,
            spectral_norm=self.spectral_norm,
            dropout=self.dropout,
        )
        return config


def _output_image_shape(generator):
    shape = getattr(generator, "output_shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(
            "generator must be a built Keras model whose output is images (batch, H, W, C); "
            f"got output shape {shape}."
        )
    return tuple(shape[1:])


def _clone_for_ema(generator):
    try:
        ema = keras.models.clone_model(generator)
    except Exception as e:
        raise ValueError(
            "ema_decay needs a generator that keras.models.clone_model can copy (a Functional or "
            f"Sequential model); cloning failed: {e}"
        ) from e
    ema.set_weights(generator.get_weights())
    ema.trainable = False
    return ema
