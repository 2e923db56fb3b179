"""The pix2pix family: `Pix2Pix` turns one image into another (edges to photos, masked to whole,
grey to colour, coarse to fine), trained on (input, target) pairs with a conditional GAN loss
plus an L1 term (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks")."""

from __future__ import annotations

import warnings

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks
from keras_gen import losses as kg_losses
from keras_gen import networks
from keras_gen.data import PAIR_TASKS
from keras_gen.families import FamilyDescription, Option
from keras_gen.models.base import AdversarialModel, Translator

PIX2PIX_LOSSES = ("non_saturating", "minimax", "hinge")


@keras.saving.register_keras_serializable(package="keras_gen")
class Pix2Pix(Translator, AdversarialModel):
    """A U-Net generator and a conditional PatchGAN discriminator trained with `model.fit` on
    `(input, target)` batches from `keras_gen.data.load_pairs`.

    One training step updates both networks from one generator pass (as the TensorFlow pix2pix
    tutorial does): the discriminator on real pairs (input, target) and fake pairs (input, G(input)),
    half the sum of their losses, as in the paper; the generator on the adversarial loss of its
    fake pairs plus `l1_weight` x the mean absolute error to the target. Nothing in a step is
    random (no dropout), so N replicas train exactly as one.

    Args:
      image_shape: (H, W, C) of the inputs (the model's `input_image_shape`; its `image_shape`
        is the outputs'). `input_shape`, its name before keras-gen 0.3, still works, deprecated.
      output_shape: (H, W, C) of the outputs (the targets); None: the input's. H and W must match.
      filters: width of both networks' first level (the paper's 64; wider levels double it, up
        to 8x).
      depth: U-Net levels (None: `networks.unet_depth`, down to 2x2 pixels).
      upsampling: "transpose" (stride-2 transposed convolutions, the paper's) or "resize"
        (nearest-neighbour resize + 3x3 convolution).
      discriminator_layers: stride-2 layers of the PatchGAN (None: `networks.patchgan_layers`);
        `receptive_field` is the side of the patch each logit judges.
      l1_weight: weight of the L1 term (the paper's 100).
      loss: adversarial loss, "non_saturating" (the paper's), "minimax" or "hinge".
      image_range: "tanh" ([-1, 1], default) or "unit" ([0, 1]): the range of inputs, targets and
        the generator's output; load the pairs in it (`load_pairs(..., image_range=...)`).
      task: what the inputs are (e.g. "edges", a `load_pairs` task); informational, kept in the
        config and the export metadata, and the default `--task` of `keras-gen evaluate`.
      seed: seed of the initial weights.
    """

    def __init__(
        self,
        image_shape=None,
        output_shape=None,
        filters=64,
        depth=None,
        upsampling="transpose",
        discriminator_layers=None,
        l1_weight=100.0,
        loss="non_saturating",
        image_range="tanh",
        task=None,
        seed=None,
        input_shape=None,
        **kwargs,
    ):
        if input_shape is not None:
            if image_shape is not None:
                raise ValueError("pass image_shape only: input_shape is its deprecated old name.")
            warnings.warn("Pix2Pix(input_shape=...) is deprecated: pass image_shape, the inputs' "
                          "(H, W, C), as every family names it.", DeprecationWarning, stacklevel=2)
            image_shape = input_shape
        if image_shape is None:
            raise TypeError("Pix2Pix needs image_shape, the (H, W, C) of its inputs.")
        input_shape = checks.image_shape(image_shape, "image_shape")
        output_shape = input_shape if output_shape is None else checks.image_shape(
            output_shape, "output_shape")
        if output_shape[:2] != input_shape[:2]:
            raise ValueError(
                f"output_shape must have the input's height and width {input_shape[:2]}: a U-Net "
                f"maps each pixel to a pixel; got output_shape={output_shape}. Resize one side "
                "of the pairs (load_pairs(..., image_size=...))."
            )
        checks.choice("upsampling", upsampling, networks.UNET_UPSAMPLING)
        checks.choice("loss", loss, PIX2PIX_LOSSES)
        checks.choice("image_range", image_range, ("tanh", "unit"))
        self.filters = checks.positive_int("filters", filters)
        if depth is not None:
            depth = checks.positive_int("depth", depth)
        if discriminator_layers is not None:
            discriminator_layers = checks.positive_int("discriminator_layers", discriminator_layers)
        self.l1_weight = checks.non_negative_number("l1_weight", l1_weight)
        kwargs["seed"] = seed = checks.seed_or_fresh(seed)
        kwargs.setdefault("name", "pix2pix")
        super().__init__(output_shape, num_classes=None, **kwargs)
        self.input_image_shape = tuple(input_shape)
        self.depth = networks.unet_depth(*input_shape[:2]) if depth is None else depth
        self.discriminator_layers = (
            networks.patchgan_layers(*input_shape[:2]) if discriminator_layers is None
            else discriminator_layers
        )
        self.upsampling, self.loss_kind, self.image_range, self.task = (
            upsampling, loss, image_range, task)
        with self.policy_scope():
            self.generator = networks.unet_generator(
                input_shape, output_shape[2], self.filters, self.depth, upsampling, image_range,
                seed=seed,
            )
            self.discriminator = networks.patchgan_discriminator(
                input_shape, output_shape, self.filters, self.discriminator_layers, seed=seed
            )
        self.add_trackers(d_loss="d_loss", g_loss="g_loss", adversarial="g_adversarial", l1="l1")
        self.built = True

    @property
    def receptive_field(self):
        """Side, in pixels, of the patch each of the discriminator's logits judges."""
        return networks.patchgan_receptive_field(self.discriminator_layers)

    @property
    def data_range(self):
        return self.image_range

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.adversarial_tracker, self.l1_tracker]

    # -- optimisers: two (AdversarialModel.compile), like GAN ---------------------------------

    def adam_settings(self):
        """Adam(2e-4, beta_1=0.5) for both networks, as in the paper."""
        both = dict(learning_rate=2e-4, beta_1=0.5)
        return {"d_optimizer": both, "g_optimizer": both}

    # -- the objective ------------------------------------------------------------------------

    def call(self, inputs, training=False):
        """The generator: inputs (in `image_range`) -> outputs in `image_range`."""
        return self.generator(inputs, training=training)

    def discriminator_loss(self, real_logits, fake_logits):
        """Per example: half the adversarial loss of real and fake pairs, averaged over patches."""
        per_patch = kg_losses.discriminator_loss(self.loss_kind, real_logits, fake_logits)
        return 0.5 * _mean_per_example(per_patch, tf.shape(real_logits)[0])

    def generator_loss(self, fake_logits, targets, outputs):
        """Per example: (total, adversarial, L1) with total = adversarial + l1_weight * L1; the
        adversarial term averaged over patches, L1 the mean absolute error over pixels."""
        batch = tf.shape(fake_logits)[0]
        adversarial = _mean_per_example(kg_losses.generator_loss(self.loss_kind, fake_logits), batch)
        error = tf.abs(tf.cast(targets, tf.float32) - tf.cast(outputs, tf.float32))
        l1 = _mean_per_example(error, batch)
        return adversarial + self.l1_weight * l1, adversarial, l1

    def _objective(self, inputs, targets, training):
        outputs = self.generator(inputs, training=training)
        real_logits = self.discriminator([inputs, targets], training=training)
        fake_logits = self.discriminator([inputs, outputs], training=training)
        d_loss = self.discriminator_loss(real_logits, fake_logits)
        g_loss, adversarial, l1 = self.generator_loss(fake_logits, targets, outputs)
        for tracker, value in zip(self.metrics, (d_loss, g_loss, adversarial, l1)):
            tracker.update_state(value)
        return d_loss, g_loss

    def train_step(self, data):
        inputs, targets = self._pair(data)
        global_batch = self.global_batch_size(tf.shape(inputs)[0])
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            d_loss, g_loss = self._objective(inputs, targets, training=True)
            d_scaled = self.d_optimizer.scale_loss(tf.reduce_sum(d_loss) / global_batch)
            g_scaled = self.optimizer.scale_loss(tf.reduce_sum(g_loss) / global_batch)
        for optimizer, tape, loss, network in (
            (self.d_optimizer, d_tape, d_scaled, self.discriminator),
            (self.optimizer, g_tape, g_scaled, self.generator),
        ):
            variables = network.trainable_variables
            self.apply_gradients(optimizer, tape.gradient(loss, variables), variables)
        return self.metrics_logs()

    def test_step(self, data):
        inputs, targets = self._pair(data)
        self._objective(inputs, targets, training=False)
        return self.metrics_logs()

    def _pair(self, data):
        if not isinstance(data, (tuple, list)) or len(data) < 2:
            raise ValueError(_PAIRS_NEEDED)
        return tf.cast(data[0], tf.float32), tf.cast(data[1], tf.float32)

    # -- translation --------------------------------------------------------------------------

    def translate(self, inputs, batch_size=256):
        """Outputs for `inputs` (n, H, W, C) or one image (H, W, C) in [0, 1], whatever range
        the model trains in (as its exported `translate` and `keras-gen translate` take them):
        float32 NumPy in [0, 1], the same shape."""
        batch_size = checks.positive_int("batch_size", batch_size)
        x = np.asarray(keras.ops.convert_to_numpy(inputs), np.float32)
        single = x.ndim == 3
        x = x[None] if single else x
        if x.ndim != 4 or x.shape[1:] != self.input_image_shape:
            raise ValueError(
                f"translate takes inputs of shape (n, {', '.join(map(str, self.input_image_shape))}) "
                f"or one image {self.input_image_shape}; got {np.shape(inputs)}."
            )
        _check_range(x, "unit", "translate's inputs", advice=(
            f"translate takes images in [0, 1] (pixels / 255) whatever the model's image_range "
            f"({self.image_range!r}), as its exported signature and keras-gen translate do."))
        x = self.from_unit_range(x)
        out = np.zeros((len(x),) + self.image_shape, np.float32)
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            out[start : start + len(batch)] = self.to_unit_range(self.generator(batch, training=False))
        return out[0] if single else out

    # -- data checks --------------------------------------------------------------------------

    def check_structure(self, inputs, targets=None, *rest):
        """(input, target) pairs of the model's shapes."""
        if targets is None:
            raise ValueError(_PAIRS_NEEDED)
        for what, spec, expected in zip(("inputs", "targets"), (inputs, targets),
                                        (self.input_image_shape, self.image_shape)):
            shape = tuple(spec.shape[1:])
            if len(shape) != 3 or any(d is not None and d != e for d, e in zip(shape, expected)):
                raise ValueError(
                    f"Pix2Pix expects {what} of shape (batch, {', '.join(map(str, expected))}); the "
                    f"data gives (batch, {', '.join(map(str, shape))}). Build the model for this data "
                    "(keras_gen.data.pair_info gives input_shape and target_shape) or load pairs of "
                    "the model's size."
                )

    def check_batch(self, inputs, targets, *rest):
        """Inputs and targets in the model's `image_range`."""
        _check_range(inputs, self.image_range, "the training inputs", batch=True)
        _check_range(targets, self.image_range, "the training targets", batch=True)

    # -- serialisation ------------------------------------------------------------------------

    config_args = ("filters", "depth", "upsampling", "discriminator_layers", "l1_weight",
                   "image_range", "task")

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("num_classes", None)  # not class-conditional: its condition is the input image
        if "input_shape" in config:  # files of keras-gen 0.x
            config["image_shape"] = config.pop("input_shape")
        return super().from_config(config)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.input_image_shape),
                "output_shape": list(self.image_shape), "loss": self.loss_kind}

    def load_own_variables(self, store):
        # Files of keras-gen 0.x hold two weights of the model itself, the first training inputs
        # it kept for int8 calibration (now export's representative_data): not read.
        if self._trainable_variables or self._non_trainable_variables:
            super().load_own_variables(store)


_PAIRS_NEEDED = (
    "Pix2Pix trains on (input, target) pairs: load them with keras_gen.data.load_pairs(source, "
    "task=...) or pass fit(inputs, targets)."
)


def _mean_per_example(values, batch):
    return tf.reduce_mean(tf.reshape(tf.cast(values, tf.float32), [batch, -1]), axis=1)


def _check_range(images, image_range, what, batch=False, advice=None):
    """Fails when images are not in `image_range`: values outside it, or, for a training batch
    in "tanh", no negative value at all (the sign of [0, 1] images). `advice`: what to do, when
    not loading the pairs in the model's range."""
    images = np.asarray(images)
    if not images.size:
        return
    low, high = float(images.min()), float(images.max())
    expected = (-1.0, 1.0) if image_range == "tanh" else (0.0, 1.0)
    tolerance = 1e-3
    if low < expected[0] - tolerance or high > expected[1] + tolerance or (
        batch and image_range == "tanh" and low >= 0.0 and high > 0.0
    ):
        raise ValueError(
            f"{what} span [{low:.3g}, {high:.3g}], but this model works in image_range="
            f"{image_range!r}, i.e. [{expected[0]:g}, {expected[1]:g}]. " + (advice or
            f"Load the pairs with keras_gen.data.load_pairs(..., image_range={image_range!r}) "
            "(its default is 'tanh'), or convert them (x * 2 - 1 turns [0, 1] into [-1, 1]).")
        )


def translation_callbacks(args, model, out, load):
    """Input, output and target triplets of held pairs each epoch."""
    from keras_gen import callbacks as kg_callbacks

    held = load(batch_size=8, shuffle=False, seed=args.seed)
    return [kg_callbacks.Translations(held, log_dir=str(out / "logs"), png_dir=str(out / "samples"), n=8)]


FAMILY = FamilyDescription(
    name="pix2pix",
    model=Pix2Pix,
    data_range="tanh",
    metrics=("mae", "psnr", "ssim", "fid"),
    options=(
        Option("filters", "width of both networks' first level", int),
        Option("l1_weight", "weight of the L1 term", float),
        Option("upsampling", "U-Net upsampling: transposed convolutions or resize + convolution",
               choices=networks.UNET_UPSAMPLING),
        Option("loss", "adversarial loss", choices=PIX2PIX_LOSSES),
        Option("task", "derive (input, target) pairs from --dataset (leave out for a paired "
               "folder:/npz: source)", choices=PAIR_TASKS),
    ),
    optimizers={"d_optimizer": "d_lr", "g_optimizer": "g_lr"},
    callbacks=translation_callbacks,
    signatures="pix2pix",
)
