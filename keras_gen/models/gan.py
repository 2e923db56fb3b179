"""The GAN family: `GAN` wraps any generator and discriminator in the minimax game; `DCGAN`
builds a sensible pair for square images."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import augment, checks
from keras_gen import losses as kg_losses
from keras_gen import networks
from keras_gen import text as kg_text
from keras_gen.layers.dropout import ReplicaExactDropout
from keras_gen.families import FILTERS_OPTION, LATENT_DIM_OPTION, FamilyDescription, Option
from keras_gen.models.base import AdversarialModel, Sampler, to_unit_range

# Noise purposes within one training step (`GenerativeModel.step_noise` keys 64 per step):
# discriminator step k uses 8 k + (one of the offsets below), the generator step the last 8.
_PURPOSES_PER_PHASE = 8
MAX_DISCRIMINATOR_STEPS = 7
_GENERATOR_PHASE = 7
_Z, _ALPHA, _AUGMENT_REAL, _AUGMENT_FAKE = 0, 1, 2, 3


@keras.saving.register_keras_serializable(package="keras_gen")
class GAN(Sampler, AdversarialModel):
    """A generative adversarial network trained with `model.fit`.

    Each `train_step` plays the minimax game: `discriminator_steps` discriminator updates, each
    on its own part of the real batch (rows k, k + n, ... for step k of n, so the critic sees
    fresh real images every step, as in the WGAN-GP paper; with n = 1 the whole batch), then one
    generator update.

    Args:
      generator: latent vectors `(batch, latent_dim)` (plus int labels `(batch,)` when
        conditional, as `[z, labels]`) to images in `image_range`.
      discriminator: images (plus labels) to one logit per image.
      latent_dim: size of the latent vectors.
      loss: "non_saturating" (default), "minimax", "wasserstein_gp" or "hinge".
      image_range: the generator's output range, "tanh" ([-1, 1]) or "unit" ([0, 1]); training
        data must come in the same range (`keras_gen.data.load(..., image_range=...)`); `fit`
        checks the first batch.
      discriminator_steps: discriminator updates per generator update (at most 7); None: 5 for
        "wasserstein_gp" (Gulrajani et al. 2017), else 1. Load batches that many times larger
        to keep the per-step batch.
      label_smoothing: one-sided smoothing of the real targets (minimax / non_saturating).
      gradient_penalty_weight: weight of the WGAN-GP penalty (loss="wasserstein_gp").
      r1_weight: gamma of the R1 penalty (Mescheder et al. 2018), gamma / 2 * ||grad D(x)||^2 on
        the real images the discriminator sees; 0 turns it off.
      diffaugment: differentiable augmentation of real and generated images before the
        discriminator (Zhao et al. 2020): a comma-separated subset of "color,translation,cutout",
        or None. Its noise is replica-exact step noise.
      ema_decay: if set (e.g. 0.999), keep an exponential moving average of the generator's
        weights, warmed up as min(ema_decay, (1 + t) / (10 + t)) at step t, and let `generate`,
        the sample callbacks, evaluation and export use it. Its batch-norm statistics are its
        own: the averaged generator runs forward in training mode every
        `ema_statistics_every` steps. Off (None) by
        default here: the EMA copy needs `keras.models.clone_model`, which a subclassed network
        of yours may not support, and `generate` then gives your generator's own output. DCGAN,
        whose networks are known to copy, turns it on (0.999, measured better in
        benchmarks/RESULTS.md); that is its one default that differs from GAN's.
      ema_statistics_every: steps between the EMA generator's batch-norm passes (its forward
        pass in training mode on the step's latent vectors). Its batch-norm momentum is raised
        to the power of this, so the statistics average over as many steps as the live
        generator's; 1 runs it every step. 10 (default) saves most of that pass, which cost
        14-27 % of the DCGAN step; the generator and discriminator train exactly as with 1
        (benchmarks/RESULTS.md, "The EMA generator's batch-norm pass").
      discriminator_pass: how the discriminator phase runs the discriminator over the real and
        the generated images: "separate" (two calls, as DCGAN's paper), "joint" (one call over
        both, concatenated, as the keras-io DCGAN; batch norm in the discriminator then
        normalises real and generated images together, which changes what it learns; with
        dropout it is refused, as 1 and N replicas would draw other masks), or
        "auto" (default): "joint" where that cannot change the result, i.e. for networks this
        package builds without batch norm or dropout (the R1 and WGAN-GP configurations), else
        "separate" (your own discriminator may couple the examples of a batch in ways this
        class cannot see). Joint and separate train alike to float tolerance where both are
        exact (tests/test_speed_options.py).
      num_classes: number of classes for a conditional GAN (both networks take the label).
      seed: seed of the training noise; two runs with the same seed and data end alike.
    """

    network_args = ("generator", "discriminator")

    # The image shape of a subclass that builds its networks itself (build_networks).
    network_image_shape = None

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        loss="non_saturating",
        image_range="tanh",
        discriminator_steps=None,
        label_smoothing=0.0,
        gradient_penalty_weight=10.0,
        r1_weight=0.0,
        diffaugment=None,
        ema_decay=None,
        ema_statistics_every=10,
        discriminator_pass="auto",
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        checks.choice("loss", loss, kg_losses.GAN_LOSSES)
        self.discriminator_pass = checks.choice(
            "discriminator_pass", discriminator_pass, DISCRIMINATOR_PASSES)
        checks.choice("image_range", image_range, ("tanh", "unit"))
        latent_dim = checks.positive_int("latent_dim", latent_dim)
        # generator=None: a named network choice (DCGAN) builds both from the settings below
        if generator is None and self.network_image_shape is None:
            raise ValueError(
                "generator and discriminator must be Keras models (or use a GAN with named "
                "networks, keras_gen.models.DCGAN(image_shape, ...)); got None."
            )
        image_shape = self.network_image_shape if generator is None else _output_image_shape(generator)
        super().__init__(image_shape, num_classes=num_classes, seed=seed, **kwargs)
        self.latent_dim = latent_dim
        self.loss_kind = loss
        self.image_range = image_range
        if discriminator_steps is None:
            discriminator_steps = 5 if loss == "wasserstein_gp" else 1
        self.discriminator_steps = checks.positive_int("discriminator_steps", discriminator_steps)
        if self.discriminator_steps > MAX_DISCRIMINATOR_STEPS:
            raise ValueError(
                f"discriminator_steps must be at most {MAX_DISCRIMINATOR_STEPS} (each step draws "
                f"its own noise stream, and a training step has room for {MAX_DISCRIMINATOR_STEPS}); "
                f"got {discriminator_steps}."
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)
        self.gradient_penalty_weight = checks.non_negative_number(
            "gradient_penalty_weight", gradient_penalty_weight)
        self.r1_weight = checks.non_negative_number("r1_weight", r1_weight, " (0 turns R1 off)")
        self.diffaugment = augment.parse_policy(diffaugment)
        named_networks = generator is None
        if named_networks:
            with self.policy_scope():
                generator, discriminator = self.build_networks()
        batch_norm, dropouts = _batch_coupling(discriminator)
        # "auto": one call only where it is the same computation, in networks this class built
        # (your own may couple the examples of a batch in ways it cannot see)
        self.joint_discriminator_pass = self.discriminator_pass == "joint" or (
            self.discriminator_pass == "auto" and named_networks and not (batch_norm or dropouts))
        if self.joint_discriminator_pass and any(
                isinstance(layer, ReplicaExactDropout) for layer in dropouts):
            raise ValueError(
                "discriminator_pass='joint' with dropout in the discriminator: one call over "
                "[real; fake] lays the batch out differently on 1 and on N replicas, so the "
                "dropout masks (and the training) would differ between them; pass dropout=0.0 "
                "or discriminator_pass='separate'."
            )
        self.generator = generator
        self.discriminator = discriminator
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be None or in (0, 1), e.g. 0.999; got {ema_decay!r}.")
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_statistics_every = checks.positive_int("ema_statistics_every", ema_statistics_every)
        self.ema_generator = (_clone_for_ema(generator, self.ema_statistics_every)
                              if ema_decay is not None else None)
        self._check_networks()

        self.add_trackers(d_loss="d_loss", g_loss="g_loss", real_score="real_score",
                          fake_score="fake_score", gp="gradient_penalty", r1="r1_penalty")
        self.built = True

    # -- set-up -------------------------------------------------------------------------------

    def _check_networks(self):
        images = self.probe_network(
            self.generator, tf.zeros((2, self.latent_dim), tf.float32),
            f"the generator cannot take latent vectors of size latent_dim={self.latent_dim}", "z")
        logits = self.probe_network(
            self.discriminator, images, "the discriminator cannot take the generator's images",
            "images")
        if tuple(logits.shape) not in ((2, 1), (2,)):
            raise ValueError(
                "the discriminator must return one logit per image, shape (batch, 1); got "
                f"shape {tuple(logits.shape)[1:]} per batch."
            )

    def adam_settings(self):
        """Adam(5e-4, beta_1=0.5) for both networks (measured best at a fixed CPU budget in
        benchmarks/gan_quality.py, against DCGAN's 2e-4), or Adam(1e-4, beta_1=0, beta_2=0.9)
        for WGAN-GP, as in its paper."""
        if self.loss_kind == "wasserstein_gp":
            both = dict(learning_rate=1e-4, beta_1=0.0, beta_2=0.9)
        else:
            both = dict(learning_rate=5e-4, beta_1=0.5)
        return {"d_optimizer": both, "g_optimizer": both}


    # The matching-aware discriminator loss of a text model (DCGAN text_discriminator="matching").
    matching_aware = False

    @property
    def metrics(self):
        trackers = [self.d_loss_tracker, self.g_loss_tracker]
        if self.loss_kind == "wasserstein_gp":
            trackers.append(self.gp_tracker)
        if self.r1_weight:
            trackers.append(self.r1_tracker)
        return trackers + [self.real_score_tracker, self.fake_score_tracker]

    # -- the minimax game ---------------------------------------------------------------------

    def call(self, inputs, training=False):
        """Runs the generator: `model(z)` or `model([z, labels])` gives images in image_range."""
        return self.generator(inputs, training=training)

    def _gen_inputs(self, z, labels):
        return z if labels is None else [z, labels]

    def _disc_inputs(self, images, labels):
        return images if labels is None else [images, labels]

    def _noise(self, step, phase, offset, batch, shape, distribution="normal"):
        return self.step_noise(step, phase * _PURPOSES_PER_PHASE + offset, batch, shape, distribution)

    def _augment(self, images, step, phase, offset):
        """DiffAugment with this step's noise (the identity when it is off)."""
        if not self.diffaugment:
            return images
        uniform = self._noise(step, phase, offset, tf.shape(images)[0],
                              (augment.noise_size(self.diffaugment),), "uniform")
        return augment.diff_augment(images, uniform, self.diffaugment)

    def _discriminator_phase(self, real, labels, step, d_step, train):
        batch = tf.shape(real)[0]
        global_batch = self.global_batch_size(batch)
        z = self._noise(step, d_step, _Z, batch, (self.latent_dim,))
        with tf.GradientTape() as tape:
            fake = self.generator(self._gen_inputs(z, labels), training=train)
            real_in = self._augment(real, step, d_step, _AUGMENT_REAL)
            fake_in = self._augment(fake, step, d_step, _AUGMENT_FAKE)
            with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
                r1_tape.watch(real_in)
                if self.joint_discriminator_pass:  # one call over [real; fake]
                    both = tf.concat([real_in, tf.cast(fake_in, real_in.dtype)], axis=0)
                    both_labels = None if labels is None else tf.concat([labels, labels], axis=0)
                    logits = self.discriminator(self._disc_inputs(both, both_labels), training=train)
                    real_logits, fake_logits = logits[:batch], logits[batch:]
                else:
                    real_logits = self.discriminator(self._disc_inputs(real_in, labels), training=train)
            if not self.joint_discriminator_pass:
                fake_logits = self.discriminator(self._disc_inputs(fake_in, labels), training=train)
            per_example = kg_losses.discriminator_loss(
                self.loss_kind, real_logits, fake_logits, self.label_smoothing
            )
            if self.matching_aware:
                # Reed et al. 2016: a real image with a wrong caption is fake too, so the critic
                # must judge the match; real + (fake + mismatched) / 2 per example.
                wrong_logits = self.discriminator(
                    self._disc_inputs(real_in, kg_text.mismatched_captions(labels)), training=train)
                per_example = 0.5 * (per_example + kg_losses.discriminator_loss(
                    self.loss_kind, real_logits, wrong_logits, self.label_smoothing))
            if self.r1_weight:
                penalty = kg_losses.r1_penalty(r1_tape, real_logits, real_in)
                per_example = per_example + 0.5 * self.r1_weight * penalty
                self.r1_tracker.update_state(penalty)
            if self.loss_kind == "wasserstein_gp":
                alpha = self._noise(step, d_step, _ALPHA, batch, (), distribution="uniform")
                penalty = kg_losses.gradient_penalty(
                    self.discriminator, real_in, fake_in, alpha, labels
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
        z = self._noise(step, _GENERATOR_PHASE, _Z, batch, (self.latent_dim,))
        with tf.GradientTape() as tape:
            fake = self.generator(self._gen_inputs(z, labels), training=train)
            fake_in = self._augment(fake, step, _GENERATOR_PHASE, _AUGMENT_FAKE)
            fake_logits = self.discriminator(self._disc_inputs(fake_in, labels), training=train)
            per_example = kg_losses.generator_loss(self.loss_kind, fake_logits)
            loss = tf.reduce_sum(per_example) / global_batch
            scaled_loss = self.optimizer.scale_loss(loss) if train else loss
        if train:
            variables = self.generator.trainable_variables
            self.apply_gradients(self.optimizer, tape.gradient(scaled_loss, variables), variables)
            self._update_ema(z, labels)
        self.g_loss_tracker.update_state(per_example)

    def _part(self, tensor, k):
        """Rows k, k + n, k + 2n, ... of the batch for discriminator step k of n. Strided, so
        the parts of all replicas together are the parts of the global batch (when the
        per-replica batch is a multiple of n), and training stays replica-exact."""
        if tensor is None or self.discriminator_steps == 1:
            return tensor
        return tensor[k :: self.discriminator_steps]

    def train_step(self, data):
        real, labels = self._unpack(data)
        real = tf.cast(real, tf.float32)
        step = self.optimizer.iterations
        for d_step in range(self.discriminator_steps):
            self._discriminator_phase(
                self._part(real, d_step), self._part(labels, d_step), step, d_step, train=True
            )
        first = self._part(real, 0)
        self._generator_phase(self._part(labels, 0), tf.shape(first)[0], step, train=True)
        return self.metrics_logs()

    def test_step(self, data):
        real, labels = self._unpack(data)
        real = tf.cast(real, tf.float32)
        # A fixed step key: validation noise is the same at every evaluation.
        step = tf.constant(-1, tf.int64)
        self._discriminator_phase(real, labels, step, 0, train=False)
        self._generator_phase(labels, tf.shape(real)[0], step, train=False)
        return self.metrics_logs()

    def _update_ema(self, z, labels):
        """Moves the averaged generator towards the live one (with a warm-up of the decay, so the
        random initial weights do not linger), then, on the first step and every
        `ema_statistics_every` steps after it, runs it forward in training mode so its
        batch-norm statistics describe the averaged weights, not the live ones."""
        if self.ema_generator is None:
            return
        iterations = self.optimizer.iterations  # already counts this step: t = 1 on the first
        t = tf.cast(iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        for ema_w, w in zip(self.ema_generator.weights, self.generator.weights):
            if w.trainable:
                ema_w.assign(decay * ema_w + (1.0 - decay) * tf.cast(w, ema_w.dtype))
        if not self.ema_generator.non_trainable_weights:
            return
        if self.ema_statistics_every == 1:
            self.ema_generator(self._gen_inputs(z, labels), training=True)
            return
        # Not a tf.cond: under a distribution strategy the synchronised batch norm all-reduces,
        # which TensorFlow does not allow inside control flow. Instead the pass runs every step,
        # on the whole batch when due and on one example otherwise, and a step that is not due
        # puts the statistics back: one path for every strategy, so replicas stay exact.
        due = tf.equal((tf.cast(iterations, tf.int64) - 1) % self.ema_statistics_every, 0)
        rows = tf.where(due, tf.shape(z)[0], 1)
        moving = [v for layer in self.ema_generator._flatten_layers(include_self=False)
                  if isinstance(layer, keras.layers.BatchNormalization)
                  for v in (layer.moving_mean, layer.moving_variance)]
        kept = [tf.identity(v) for v in moving]
        self.ema_generator(self._gen_inputs(z[:rows], None if labels is None else labels[:rows]),
                           training=True)
        for v, old in zip(moving, kept):
            v.assign(tf.where(due, v, old))

    # -- sampling -----------------------------------------------------------------------------

    @property
    def preset_weight_links(self):
        """A preset stores the EMA generator once, for both networks: it is the one that samples,
        and fine-tuning from a preset starts the generator from it. A third less to ship."""
        return {"generator": "ema_generator"} if self.ema_generator is not None else {}

    @property
    def sampling_generator(self):
        """The network `generate` uses: the EMA generator when enabled."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    @property
    def data_range(self):
        return self.image_range

    def check_batch(self, images, *rest):
        """Images in the generator's range: a discriminator fed [0, 1] images against a tanh
        generator's [-1, 1] ones learns the wrong thing silently."""
        if not images.size:
            return
        lo, hi = float(images.min()), float(images.max())
        expected = "[-1, 1]" if self.image_range == "tanh" else "[0, 1]"
        wrong = lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3 or (
            self.image_range == "unit" and lo < -1e-3
        ) or (self.image_range == "tanh" and lo >= 0.0 and hi > 0.0)
        if wrong:
            found = "[0, 1]" if lo >= 0.0 and hi <= 1.0 else f"[{lo:.3g}, {hi:.3g}]"
            raise ValueError(
                f"the generator ends in {'tanh' if self.image_range == 'tanh' else 'sigmoid'} "
                f"(image_range={self.image_range!r}, images in {expected}), but the data holds "
                f"values in {found}. Load it with keras_gen.data.load(..., "
                f"image_range={self.image_range!r}), or build the model with the data's range."
            )

    @property
    def batches_per_step(self):
        return self.discriminator_steps

    def to_unit_range(self, images):
        """Generator outputs (image_range) -> [0, 1], NumPy float32."""
        return to_unit_range(images, self.image_range)

    def images_from_noise(self, noise, labels=None):
        inputs = noise if labels is None else [noise, labels]
        return self.to_unit_range(self.sampling_generator(inputs, training=False))

    # -- serialisation ------------------------------------------------------------------------

    config_args = ("latent_dim", "image_range", "discriminator_steps", "label_smoothing",
                   "gradient_penalty_weight", "r1_weight", "ema_decay", "ema_statistics_every",
                   "discriminator_pass")

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_kind,
                "diffaugment": ",".join(self.diffaugment) or None}



@keras.saving.register_keras_serializable(package="keras_gen")
class DCGAN(kg_text.TextConditioned, GAN):
    """A GAN with DCGAN networks (`keras_gen.networks.dcgan_generator` and
    `dcgan_discriminator`) for square images whose side is a multiple of 4, 8 to 128.

    Generator: a dense projection to a small feature map, stride-2 upsamplings (transposed
    convolutions or resize + convolution) with batch normalisation (synchronised across
    replicas, so training on N devices equals one) and ReLU, and a tanh (or sigmoid for
    image_range="unit") output. Discriminator: strided convolutions with LeakyReLU, optional
    spectral normalisation, batch normalisation and replica-exact dropout. Conditional models feed
    the label to the generator through an embedding and to the discriminator by projection
    (Miyato & Koyama 2018). The other arguments are `GAN`'s.

    Args:
      filters: the generator's width at full resolution (it doubles at each halving).
      discriminator_filters: the discriminator's first width (None: twice `filters`; the
        discriminator costs little next to the generator, and a stronger one trains it faster).
      upsampling: "transpose" (4x4 transposed convolutions) or "resize" (nearest + 3x3 conv).
      spectral_norm: spectral normalisation of every discriminator layer.
      dropout: dropout rate before the discriminator's last layer (not with WGAN-GP).
      discriminator_batch_norm: batch norm in the discriminator's hidden layers, as in Radford et
        al. (synchronised across replicas); None: on, except with WGAN-GP or R1, whose penalties
        need each example's own gradient.
      discriminator_style: "dcgan" (one 4x4 stride-2 convolution per scale) or "sngan" (a 3x3
        convolution before each, and one at the end: Miyato et al.'s standard CNN).
      ema_decay: as in `GAN`, but on (0.999) by default: the EMA generator samples better
        (benchmarks/RESULTS.md, "c2ema") and the DCGAN networks always copy.
      text: condition on captions: data are (images, captions) batches
        (`keras_gen.data.load(..., text=True)`), `model.adapt(data)` learns the vocabulary before
        `fit`, and `generate(prompts=[...], seed=...)` gives one image per prompt. Each network
        owns a `keras_gen.text.TextEncoder` trained by its own loss (so the generator, its EMA
        copy and its export carry the whole text path, and the generator's gradients never
        push the discriminator's caption features).
      text_conditioning: "film" (the pooled caption embedding concatenated with z, and FiLM,
        Perez et al. 2018, of every upsampling's features by it; the default: +10 points of
        class and colour accuracy at a 3-minute budget, FID 66 against 55, RESULTS.md) or
        "concat" (with z only).
      text_discriminator: how the discriminator judges the caption: "projection" (Miyato &
        Koyama 2018: logit += <W embed(caption), features>; the default, measured better at a
        3-minute budget in benchmarks/RESULTS.md) or "matching" (Reed et al. 2016: the
        embedding tiled onto the last feature map, and real images with the batch's captions
        rolled by one count as fake, at an extra discriminator pass per step).
      max_tokens, sequence_length, text_dim: the tokenizer's id range (padding and
        out-of-vocabulary included) and length, and the text encoder's width.
      vocabulary, sample_prompts: set by `adapt` and restored from the config.
    """

    # Smaller batches train faster per CPU second (benchmarks/gan_quality.py).
    default_batch_size = 32

    def __init__(
        self,
        image_shape,
        latent_dim=100,
        num_classes=None,
        filters=32,
        discriminator_filters=None,
        upsampling="transpose",
        spectral_norm=False,
        dropout=0.0,
        discriminator_batch_norm=None,
        discriminator_style="dcgan",
        ema_decay=0.999,
        text=False,
        text_discriminator="projection",
        text_conditioning="film",
        max_tokens=1000,
        sequence_length=16,
        text_dim=64,
        vocabulary=None,
        sample_prompts=None,
        **kwargs,
    ):
        self.size_named_networks(image_shape, filters)
        self.init_text(text, num_classes, max_tokens, sequence_length, text_dim, vocabulary,
                       sample_prompts)
        self.text_discriminator = checks.choice(
            "text_discriminator", text_discriminator, TEXT_DISCRIMINATORS)
        self.text_conditioning = checks.choice(
            "text_conditioning", text_conditioning, TEXT_CONDITIONINGS)
        self.discriminator_filters = checks.positive_int(
            "discriminator_filters", 2 * filters if discriminator_filters is None else discriminator_filters)
        self.upsampling = checks.choice("upsampling", upsampling, networks.UPSAMPLING)
        self.spectral_norm = bool(spectral_norm)
        self.dropout = float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
        self.discriminator_batch_norm = discriminator_batch_norm  # None: see build_networks
        self.discriminator_style = checks.choice(
            "discriminator_style", discriminator_style, networks.DISCRIMINATOR_STYLES)
        # GAN checks its own arguments, then calls build_networks with them in place.
        super().__init__(
            None, None, latent_dim, ema_decay=ema_decay, num_classes=num_classes, **kwargs)
        self.make_tokenizer()

    @property
    def matching_aware(self):
        return self.text and self.text_discriminator == "matching"

    def build_networks(self):
        """The DCGAN generator and discriminator for this GAN's settings (image range, loss, R1),
        seeded by the model's seed so equal seeds give equal runs."""
        per_example = self.loss_kind == "wasserstein_gp" or self.r1_weight > 0
        if self.discriminator_batch_norm is None:  # on, unless a penalty needs per-example gradients
            self.discriminator_batch_norm = not per_example
        self.discriminator_batch_norm = bool(self.discriminator_batch_norm)
        if self.loss_kind == "wasserstein_gp" and (self.dropout or self.discriminator_batch_norm):
            raise ValueError(
                "the WGAN-GP critic has neither dropout nor batch norm (Gulrajani et al. 2017: its "
                "gradient penalty is per example); pass dropout=0.0 and "
                "discriminator_batch_norm=False with loss='wasserstein_gp'."
            )
        if self.r1_weight and self.discriminator_batch_norm:
            raise ValueError(
                "R1 penalises each real image's own gradient, which batch norm in the "
                "discriminator mixes across the batch; pass discriminator_batch_norm=False with "
                "r1_weight > 0."
            )
        text = self.text_encoder("generator_text", 0) if self.text else None
        generator = networks.dcgan_generator(
            self.image_shape, self.latent_dim, self.num_classes, self.filters, self.image_range,
            upsampling=self.upsampling, seed=self.seed, text_encoder=text,
            film=self.text_conditioning == "film",
        )
        text = self.text_encoder("discriminator_text", 1) if self.text else None
        discriminator = networks.dcgan_discriminator(
            self.image_shape, self.num_classes, self.discriminator_filters, self.spectral_norm,
            self.dropout, self.discriminator_batch_norm, self.discriminator_style, seed=self.seed,
            text_encoder=text, text_mode=self.text_discriminator,
        )
        return generator, discriminator

    network_args = ()  # built from the settings below
    config_args = ("image_shape", "filters", "discriminator_filters", "upsampling", "spectral_norm",
                   "dropout", "discriminator_batch_norm", "discriminator_style",
                   "text_discriminator", "text_conditioning")


TEXT_DISCRIMINATORS = ("matching", "projection")
TEXT_CONDITIONINGS = ("concat", "film")


DISCRIMINATOR_PASSES = ("auto", "joint", "separate")


def _batch_coupling(discriminator):
    """(has batch norm, its dropout layers): the layers whose output for one example depends on
    the rest of the call's batch (batch norm's statistics) or on its layout (dropout draws one
    mask per call, so one call over [real; fake] draws other masks than two, and other rows on
    each replica)."""
    layers = list(discriminator._flatten_layers(include_self=False))
    batch_norm = any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)
    dropouts = [layer for layer in layers
                if isinstance(layer, (keras.layers.Dropout, ReplicaExactDropout)) and layer.rate]
    return batch_norm, dropouts


def _output_image_shape(generator):
    shape = getattr(generator, "output_shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(
            "generator must be a built Keras model whose output is images (batch, H, W, C); "
            f"got output shape {shape}."
        )
    return tuple(shape[1:])


def _clone_for_ema(generator, statistics_every=1):
    try:
        ema = keras.models.clone_model(generator)
    except Exception as e:
        raise ValueError(
            "ema_decay needs a generator that keras.models.clone_model can copy (a Functional or "
            f"Sequential model); cloning failed: {e}"
        ) from e
    ema.set_weights(generator.get_weights())
    ema.trainable = False
    # Its batch-norm layers stay trainable so that a forward pass in training mode updates
    # their moving statistics (Keras runs a non-trainable BatchNormalization in inference
    # mode); no optimiser ever sees their variables.
    # With a pass every k steps, momentum m^k keeps the horizon of the live generator's m.
    for layer in ema._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
            layer.momentum = float(layer.momentum) ** statistics_every
    return ema


FAMILY = FamilyDescription(
    name="dcgan",
    model=DCGAN,
    instances=GAN,  # a GAN with the user's own networks is the same family
    data_range="tanh",
    metrics=("fid",),
    options=(
        LATENT_DIM_OPTION,
        FILTERS_OPTION,
        Option("loss", "adversarial loss", choices=kg_losses.GAN_LOSSES),
        Option("ema_decay", "EMA of the generator's weights for sampling, e.g. 0.999; none: off",
               float, none=True),
        Option("ema_statistics_every", "steps between the EMA generator's batch-norm passes "
               "(1: every step)", int),
        Option("discriminator_pass", "one discriminator call over real and generated images "
               "(joint) or two (separate); auto: joint where it cannot change the result",
               choices=DISCRIMINATOR_PASSES),
        Option("discriminator_steps", "discriminator updates per generator update, each on its "
               "own --batch-size real images (default: 5 for wasserstein_gp, else 1)", int),
        Option("spectral_norm", "spectral normalisation of the discriminator", bool),
        Option("label_smoothing", "one-sided label smoothing of the real targets", float),
        Option("diffaugment", "differentiable augmentation, a comma-separated subset of "
               + ",".join(augment.POLICIES) + ", or none", none=True),
        Option("r1_weight", "gamma of the R1 penalty on real images", float),
        kg_text.TEXT_OPTION,
        Option("text_discriminator", "how the discriminator judges the caption (--text)",
               choices=TEXT_DISCRIMINATORS),
        Option("text_conditioning", "how the generator reads the caption (--text): concat "
               "(with z) or film (also FiLM of every upsampling)", choices=TEXT_CONDITIONINGS),
    ),
    sample_options=kg_text.PROMPT_OPTIONS,
    optimizers={"d_optimizer": "d_lr", "g_optimizer": "g_lr"},
    signatures="gan",
)
