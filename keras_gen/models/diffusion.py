"""The diffusion family: `Diffusion`, a denoising diffusion model trained with `model.fit` and
sampled in a few steps with DPM-Solver++(2M), DDIM or ancestral DDPM
(`keras_gen.diffusion_samplers`)."""

from __future__ import annotations

import hashlib

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks, networks
from keras_gen import text as kg_text
from keras_gen import diffusion_samplers as samplers
from keras_gen.families import FamilyDescription, Option
from keras_gen.models.base import GenerativeModel, Sampler

# Noise purposes within one training step (`GenerativeModel.step_noise`).
_TIME, _NOISE, _LABEL_DROP = 0, 1, 2
# How a text model's U-Net reads the caption.
TEXT_CONDITIONINGS = ("pooled", "cross_attention")


@keras.saving.register_keras_serializable(package="keras_gen")
class Diffusion(kg_text.TextConditioned, Sampler, GenerativeModel):
    """A denoising diffusion model for images in [-1, 1] ("tanh" range of keras_gen.data.load).

    Each `train_step` noises the batch at a random time t, x_t = alpha_t x + sigma_t eps on the
    cosine schedule in continuous time (`keras_gen.diffusion_samplers`), and regresses the
    network's prediction on its target with a mean squared error. Choices, and why:

    - v-prediction (`prediction="v"`, target alpha_t eps - sigma_t x; Salimans & Ho 2022): the
      estimates of x and eps it gives are exact at both ends of the schedule, where an eps
      network's x estimate (x_t - sigma eps) / alpha divides by alpha -> 0 and needs clipping;
      that keeps few-step sampling (whose first step is at t ~ 1) sound. Its MSE equals an MSE on
      x weighted by (1 + SNR), a weighting that does not vanish at high noise. `prediction="eps"`
      (with the x estimate clipped, as keras-io DDIM and DDPM do) is kept for comparison.
    - Continuous time with the cosine schedule, t ~ U[1e-3, 1 - 1e-3]: any step count can be
      sampled from one trained network.
    - Classifier-free guidance (Ho & Salimans 2022): when conditional, each label is replaced
      by the extra "no label" class with probability `label_dropout` during training, so one
      network predicts both ways. At sampling, prediction = uncond + guidance * (cond - uncond):
      guidance 0 ignores the labels (the unconditional model), 1 is the plain conditional model,
      above 1 pushes toward the class.
    - An EMA of the weights, warmed up as min(ema_decay, (1 + t) / (10 + t)) at step t: the
      published 0.999 with no warm-up left a 10-minute CPU run's average at its random start
      (issue 22). `generate`, evaluation and export use it. GroupNorm in the U-Net means the
      averaged network has no batch statistics to recompute.

    Args:
      image_shape: (H, W, C); H and W multiples of 2 ** (len(widths) - 1).
      num_classes: number of classes for a conditional model (labels as for every family).
      widths: the U-Net's width at each resolution (`keras_gen.networks.diffusion_unet`).
      attention: self-attention at the lowest resolution.
      blocks: residual blocks per resolution and side.
      prediction: "v" (default) or "eps".
      label_dropout: probability of training a label as "no label" (classifier-free guidance).
      ema_decay: the EMA's decay after warm-up, in (0, 1).
      steps, sampler, guidance: `generate`'s defaults.
      seed: seed of the initial weights and the training noise.
      text: condition on captions instead of labels: data are (images, captions) batches
        (`keras_gen.data.load(..., text=True)`), `model.adapt(data)` learns the vocabulary
        before `fit`, and `generate(prompts=[...], seed=...)` gives one image per prompt. Each
        U-Net (live and EMA) owns a `keras_gen.text.TextEncoder`; classifier-free guidance runs
        over the caption: with probability `label_dropout` a caption is trained as the empty
        caption (all padding), and `guidance` 0 ignores the prompt.
      text_conditioning: "pooled" (the caption's pooled embedding added to the time embedding,
        FiLM into every residual block) or "cross_attention" (that, and cross-attention from the
        lowest-resolution feature map to the caption's token states). Pooled is the default:
        at equal steps the two drew the prompt's colour equally often (seen and unseen pairs), and
        cross-attention cost ~40% more per step (benchmarks/RESULTS.md).
      max_tokens, sequence_length, text_dim: the tokenizer's id range and length, and the text
        encoder's width. vocabulary, sample_prompts: set by `adapt`, restored from the config.
    """

    # Images per batch the defaults were chosen with.
    default_batch_size = 64
    generate_batch_size = 250

    def __init__(
        self,
        image_shape,
        num_classes=None,
        widths=(32, 64, 96),
        attention=True,
        blocks=1,
        prediction="v",
        label_dropout=0.1,
        ema_decay=0.999,
        steps=16,
        sampler="dpm++2m",
        guidance=2.0,
        seed=None,
        text=False,
        text_conditioning="pooled",
        max_tokens=1000,
        sequence_length=16,
        text_dim=64,
        vocabulary=None,
        sample_prompts=None,
        **kwargs,
    ):
        image_shape = checks.image_shape(image_shape)
        self.init_text(text, num_classes, max_tokens, sequence_length, text_dim, vocabulary,
                       sample_prompts)
        self.text_conditioning = checks.choice("text_conditioning", text_conditioning,
                                               TEXT_CONDITIONINGS)
        super().__init__(image_shape, num_classes=num_classes, seed=seed, **kwargs)
        self.widths = tuple(checks.positive_int("widths", w) for w in widths)
        self.attention = bool(attention)
        self.blocks = checks.positive_int("blocks", blocks)
        self.prediction = checks.choice("prediction", prediction, samplers.PREDICTIONS)
        if not 0.0 <= float(label_dropout) < 1.0:
            raise ValueError(
                f"label_dropout must be in [0, 1) (the probability of training a label as 'no "
                f"label'; 0.1 is usual); got {label_dropout!r}."
            )
        self.label_dropout = float(label_dropout)
        if not 0.0 < float(ema_decay) < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), e.g. 0.999; got {ema_decay!r}.")
        self.ema_decay = float(ema_decay)
        self.steps, self.guidance, self.sampler, _ = self.sampling_options(steps, guidance, sampler, 0.0)
        with self.policy_scope():
            self.network, self.ema_network = (
                networks.diffusion_unet(
                    image_shape, self.widths, num_classes, self.attention, self.blocks,
                    seed=self.seed, text_encoder=self.text_encoder("text_encoder", 0) if self.text else None,
                    cross_attention=self.text_conditioning == "cross_attention")
                for _ in range(2))
        self.ema_network.set_weights(self.network.get_weights())
        self.make_tokenizer()
        self.ema_network.trainable = False
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self._network_functions = {}
        self.built = True

    # -- training -----------------------------------------------------------------------------

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def data_range(self):
        return "tanh"

    def default_optimizer(self, argument="optimizer"):
        """Adam(5e-4): a U-Net of this size trained at a CPU budget takes a higher rate than
        the 1e-4..2e-4 of long GPU runs; the EMA smooths what it leaves."""
        return keras.optimizers.Adam(5e-4)

    def call(self, inputs, training=False):
        """The live network: `model([x_t, t])` or `model([x_t, t, labels])` -> its prediction."""
        return self.network(inputs, training=training)

    def _inputs(self, x, t, labels):
        return [x, t] if labels is None else [x, t, labels]

    @property
    def conditional(self):
        """Whether the network takes a condition: class labels or (text) token ids."""
        return self.num_classes is not None or self.text

    def unconditional(self, labels):
        """The "no condition" input of classifier-free guidance for `labels`: the extra class
        num_classes, or the empty caption (all padding) of a text model."""
        if self.text:
            return tf.zeros_like(labels)
        return tf.fill(tf.shape(labels), self.num_classes)

    def training_inputs(self, images, labels, step):
        """(x_t, t, eps, labels) of a step: times, noise and dropped labels from the step noise
        of `step`, so replicas and the tests see the same draw."""
        batch = tf.shape(images)[0]
        uniform = self.step_noise(step, _TIME, batch, (), "uniform")
        t = samplers.training_time(uniform)
        eps = self.step_noise(step, _NOISE, batch, self.image_shape)
        alpha, sigma = samplers.alpha_sigma(t[:, None, None, None])
        x_t = alpha * images + sigma * eps
        if labels is not None and self.label_dropout:
            drop = self.step_noise(step, _LABEL_DROP, batch, (), "uniform") < self.label_dropout
            if self.text:  # the whole caption at once
                drop = drop[:, None]
            labels = tf.where(drop, self.unconditional(labels), labels)
        return x_t, t, eps, labels

    def target(self, images, eps, t):
        if self.prediction == "eps":
            return eps
        alpha, sigma = samplers.alpha_sigma(t[:, None, None, None])
        return samplers.v_target(images, eps, alpha, sigma)

    def _loss(self, images, labels, step, training):
        x_t, t, eps, labels = self.training_inputs(images, labels, step)
        output = tf.cast(self.network(self._inputs(x_t, t, labels), training=training), tf.float32)
        per_example = tf.reduce_mean(tf.square(output - self.target(images, eps, t)), axis=[1, 2, 3])
        return per_example, tf.reduce_sum(per_example) / self.global_batch_size(tf.shape(images)[0])

    def train_step(self, data):
        images, labels = self._unpack(data)
        images = tf.cast(images, tf.float32)
        with tf.GradientTape() as tape:
            per_example, loss = self._loss(images, labels, self.optimizer.iterations, True)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.network.trainable_variables
        self.apply_gradients(self.optimizer, tape.gradient(scaled, variables), variables)
        self._update_ema()
        self.loss_tracker.update_state(per_example)
        return self.metrics_logs()

    def test_step(self, data):
        images, labels = self._unpack(data)
        # A fixed step key: the validation noise is the same at every evaluation.
        per_example, _ = self._loss(tf.cast(images, tf.float32), labels, tf.constant(-1, tf.int64), False)
        self.loss_tracker.update_state(per_example)
        return self.metrics_logs()

    def optimized_variables(self):
        return self.network.trainable_variables

    def _update_ema(self):
        t = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        for ema_w, w in zip(self.ema_network.weights, self.network.weights):
            ema_w.assign(decay * ema_w + (1.0 - decay) * tf.cast(w, ema_w.dtype))

    def check_batch(self, images, *rest):
        """Images in [-1, 1], not [0, 1]: noise of unit variance on [0, 1] images trains a model
        whose samples come out dim and grey."""
        if not images.size:
            return
        lo, hi = float(images.min()), float(images.max())
        if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3 or (lo >= 0.0 and hi > 0.0):
            raise ValueError(
                "Diffusion trains on images in [-1, 1], but the data holds values in "
                f"[{lo:.3g}, {hi:.3g}]. Load it with keras_gen.data.load(..., image_range='tanh')."
            )

    # -- sampling -----------------------------------------------------------------------------

    @property
    def noise_shape(self):
        return self.image_shape

    def sampling_options(self, steps=None, guidance=None, sampler=None, eta=None):
        """(steps, guidance, sampler, eta) checked, the model's defaults for those not given."""
        steps = getattr(self, "steps", None) if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(
                f"steps must be a positive integer (network evaluations per image; 8-32 is "
                f"usual with 'dpm++2m'); got {steps!r}."
            )
        guidance = getattr(self, "guidance", 0.0) if guidance is None else guidance
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float, np.number)) or not (
                np.isfinite(guidance) and guidance >= 0):
            raise ValueError(
                f"guidance must be a number >= 0 (0: ignore the labels, 1: plain conditional, "
                f"2-4: stronger classes); got {guidance!r}."
            )
        sampler = getattr(self, "sampler", "dpm++2m") if sampler is None else sampler
        if sampler not in samplers.SAMPLERS:
            raise ValueError(
                f"sampler must be one of {', '.join(map(repr, samplers.SAMPLERS))}; got "
                f"{sampler!r}. 'dpm++2m' gives the best images in few steps."
            )
        eta = 0.0 if eta is None else eta
        if isinstance(eta, bool) or not isinstance(eta, (int, float, np.number)) or not 0 <= eta <= 1:
            raise ValueError(
                f"eta must be a number in [0, 1] (DDIM's noise: 0 deterministic, 1 as DDPM); "
                f"got {eta!r}."
            )
        if eta and sampler != "ddim":
            raise ValueError(f"eta is DDIM's option; pass sampler='ddim' with eta={eta}, or eta=0.")
        return int(steps), float(guidance), sampler, float(eta)

    def network_function(self, network):
        """`network` as a tf.function of (x, t[, labels]) -> float32 prediction, traced once for
        every batch size: the eager sampling loop of `generate` calls it at every step."""
        key = id(network)
        if key not in self._network_functions:
            specs = [tf.TensorSpec([None, *self.image_shape], tf.float32), tf.TensorSpec([None], tf.float32)]
            if self.text:
                specs.append(tf.TensorSpec([None, self.sequence_length], tf.int32))
            elif self.num_classes is not None:
                specs.append(tf.TensorSpec([None], tf.int32))

            def predict(*inputs):
                return tf.cast(network(list(inputs), training=False), tf.float32)

            self._network_functions[key] = tf.function(predict, input_signature=specs)
        return self._network_functions[key]

    def denoiser(self, labels, guidance, network=None):
        """`denoise(x, t) -> (x0, eps)` for the samplers: the network (default: the EMA one) at
        time t, guided. `guidance` a Python number picks the cheapest exact path (0: one
        unconditional call, 1: one conditional call); a tensor always runs the conditional and
        unconditional predictions in one batched call."""
        network = network or self.ema_network
        # Eagerly, the traced network; inside a graph (export), the Keras network itself: the
        # TFLite converter loses the shapes across nested function calls.
        traced = self.network_function(network) if tf.executing_eagerly() else None

        def predict(x, t, batch_labels):
            time = tf.fill(tf.shape(x)[:1], tf.constant(samplers.clip_time(t), tf.float32))
            if traced is not None:
                return traced(*self._inputs(x, time, batch_labels))
            return tf.cast(network(self._inputs(x, time, batch_labels), training=False), tf.float32)

        def denoise(x, t):
            if labels is None:
                output = predict(x, t, None)
            else:
                null = self.unconditional(labels)
                if isinstance(guidance, (int, float)) and guidance in (0.0, 1.0):
                    output = predict(x, t, labels if guidance else null)
                else:
                    both = predict(tf.concat([x, x], 0), t, tf.concat([labels, null], 0))
                    cond, uncond = tf.split(both, 2, axis=0)
                    output = uncond + guidance * (cond - uncond)
            alpha, sigma = samplers.alpha_sigma(samplers.clip_time(t))
            return samplers.estimates(self.prediction, output, x, alpha, sigma)

        return denoise

    def sample_tensor(self, noise, labels=None, guidance=None, steps=None, sampler=None, eta=0.0,
                      step_noise=None, network=None):
        """The whole sampling loop as TensorFlow ops: noise (batch, H, W, C) at t = 1 -> images in
        [0, 1]. `steps` and `sampler` are fixed (the loop unrolls); `guidance` a number or a
        scalar tensor; `step_noise` (steps, batch, H, W, C) for "ddpm" and DDIM with eta > 0;
        `network` the denoiser (default: the EMA network; export passes its LiteRT-friendly
        form). `generate` and the exported `generate` signature both run this."""
        steps, guidance_value, sampler, eta = self.sampling_options(
            steps, guidance if not tf.is_tensor(guidance) else None, sampler, eta)
        if not tf.is_tensor(guidance):
            guidance = guidance_value
        x = samplers.sample(sampler, self.denoiser(labels, guidance, network), tf.cast(noise, tf.float32),
                            steps, eta, step_noise)
        return tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)

    def ancestral_noise(self, noise, steps):
        """The per-step noise of the stochastic samplers for each image, (steps, batch, H, W, C):
        drawn from a generator keyed by the image's starting noise, so the same seed gives the
        same images and image k does not depend on how many are generated."""
        out = np.empty((steps,) + noise.shape, np.float32)
        for k, image in enumerate(np.asarray(noise, np.float32)):
            key = int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "little")
            out[:, k] = np.random.default_rng(key).standard_normal((steps,) + image.shape)
        return out

    def images_from_noise(self, noise, labels=None, steps=None, guidance=None, sampler=None, eta=0.0):
        steps, guidance, sampler, eta = self.sampling_options(steps, guidance, sampler, eta)
        if not self.conditional:
            guidance = 0.0  # nothing to guide; keeps the traced functions to one
        # The loop runs eagerly around the traced network (`network_function`): a graph of the
        # whole unrolled loop (what export builds) takes minutes to optimise at 64 steps, and
        # the element-wise updates between network calls cost nothing next to the network.
        step_noise = None
        if samplers.needs_step_noise(sampler, eta):
            step_noise = tf.constant(self.ancestral_noise(noise, steps))
        return self.sample_tensor(
            tf.constant(noise, tf.float32), None if labels is None else tf.constant(labels, tf.int32),
            guidance, steps, sampler, eta, step_noise)

    def generate(self, n=None, seed=None, labels=None, steps=None, guidance=None, sampler=None,
                 eta=0.0, batch_size=None, z=None, prompts=None):
        """`n` images, float32 (n, H, W, C) in [0, 1], sampled by the EMA network.

        steps: network evaluations per image (default: the model's `steps`, 16).
        guidance: classifier-free guidance w >= 0, prediction = uncond + w (cond - uncond):
          0 ignores the labels, 1 is the conditional model, more strengthens the class; each
          step then costs two network evaluations (batched as one call). Unconditional models
          ignore it.
        sampler: "dpm++2m" (default; DPM-Solver++(2M), good at 8-16 steps), "ddim" (with eta in
          [0, 1]) or "ddpm" (ancestral; needs many steps).
        z: the starting noise (n, H, W, C) instead of the noise of `seed`.
        prompts: text models: one image per caption (`keras_gen.text.TextConditioned`); guidance
          then runs over the caption (0 ignores the prompt)."""
        options = self.sampling_options(steps, guidance, sampler, eta)
        return super().generate(
            n, seed=seed, labels=labels, batch_size=batch_size, z=z, prompts=prompts,
            **dict(zip(("steps", "guidance", "sampler", "eta"), options)),
        )

    # -- serialisation ------------------------------------------------------------------------

    # The text settings and vocabulary come from TextConditioned's own config_args.
    config_args = ("image_shape", "widths", "attention", "blocks", "prediction", "label_dropout",
                   "ema_decay", "steps", "sampler", "guidance", "text_conditioning")


FAMILY = FamilyDescription(
    name="diffusion",
    model=Diffusion,
    data_range="tanh",
    metrics=("fid",),
    options=(
        Option("attention", "self-attention at the U-Net's lowest resolution", bool),
        Option("blocks", "residual blocks per resolution and side of the U-Net", int),
        Option("prediction", "what the network predicts", choices=samplers.PREDICTIONS),
        Option("label_dropout", "probability of training a label as 'no label' (classifier-free "
               "guidance)", float),
        Option("ema_decay", "EMA of the weights for sampling, after its warm-up", float),
        kg_text.TEXT_OPTION,
        Option("text_conditioning", "how the U-Net reads the caption (--text): pooled (FiLM of "
               "every block) or cross_attention (also attention to the tokens at the lowest "
               "resolution)", choices=TEXT_CONDITIONINGS),
    ),
    sample_options=(
        Option("steps", "network evaluations per image", int),
        Option("guidance", "classifier-free guidance w: uncond + w (cond - uncond); 0 ignores the "
               "labels", float),
        Option("sampler", "the sampling loop", choices=samplers.SAMPLERS),
        *kg_text.PROMPT_OPTIONS,
    ),
    signatures="diffusion",
)
