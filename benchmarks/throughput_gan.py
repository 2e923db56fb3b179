"""DCGAN training step: keras-gen's GAN against the keras-io DCGAN example's train_step.

The reference is written the way the keras-io example writes it: one GradientTape step per
batch, concatenated real/fake batch for the discriminator, noise from keras.random with a
SeedGenerator, BinaryCrossentropy(from_logits=True), `compile()` without jit or
steps_per_execution. Both use the very same network architecture (built twice).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gen.distribute import get_strategy
from keras_gen.models import DCGAN
from throughput_common import case, policy_lever, train_call

IMAGE_SHAPE = (28, 28, 1)


class ReferenceGAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(z)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(ops.zeros((batch_size, 1)), self.discriminator(self.generator(z)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def _images(batch_size):
    return np.random.default_rng(0).uniform(-1, 1, (batch_size,) + IMAGE_SHAPE).astype("float32")


def _reference_for(model):
    """The keras-io step on copies of `model`'s own networks (same layers and widths)."""
    reference = ReferenceGAN(
        keras.models.clone_model(model.discriminator), keras.models.clone_model(model.generator),
        model.latent_dim,
    )
    reference.compile(
        keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
        keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return reference


class _EMAWeightsOnly(DCGAN):
    """For the breakdown: the EMA's weight average without its batch-norm forward pass."""

    def _update_ema(self, z, labels):
        t = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        for ema_w, w in zip(self.ema_generator.weights, self.generator.weights):
            if w.trainable:
                ema_w.assign(decay * ema_w + (1.0 - decay) * w)


def cases(batch_size=64):
    """The library's defaults (`DCGAN(shape)` + `compile()`, whatever they choose), the default
    step without parts of its work (the breakdown), and each compilation option, against the
    keras-io step on the same networks."""
    out = []
    variants = (
        # name, model class and constructor kwargs, compile kwargs, strategy, dtype policy
        ("DCGAN defaults: compile()", DCGAN, {}, {}, None, "float32"),
        ("DCGAN defaults, EMA statistics every step (ema_statistics_every=1, the old default)", DCGAN,
         {"ema_statistics_every": 1}, {}, None, "float32"),
        ("DCGAN defaults, EMA off (ema_decay=None)", DCGAN, {"ema_decay": None}, {}, None, "float32"),
        ("DCGAN defaults, EMA weights without its batch-norm pass", _EMAWeightsOnly, {}, {}, None,
         "float32"),
        ("DCGAN defaults, discriminator_pass=joint (batch norm over real and fake together)", DCGAN,
         {"discriminator_pass": "joint"}, {}, None, "float32"),
        ("DCGAN discriminator_batch_norm=False, discriminator_pass=separate", DCGAN,
         {"discriminator_batch_norm": False, "discriminator_pass": "separate"}, {}, None, "float32"),
        ("DCGAN discriminator_batch_norm=False, discriminator_pass=auto (joint)", DCGAN,
         {"discriminator_batch_norm": False}, {}, None, "float32"),
        ("DCGAN defaults, 4 steps/exec", DCGAN, {}, {"steps_per_execution": 4}, None, "float32"),
        ("DCGAN defaults, 16 steps/exec", DCGAN, {}, {"steps_per_execution": 16}, None, "float32"),
        ("DCGAN, XLA on", DCGAN, {}, {"jit_compile": True}, None, "float32"),
        ("DCGAN, XLA on, 8 steps/exec", DCGAN, {}, {"jit_compile": True, "steps_per_execution": 8},
         None, "float32"),
        ("DCGAN, 2 replicas (2 logical CPUs)", DCGAN, {}, {}, "mirrored", "float32"),
        ("DCGAN, mixed_bfloat16", DCGAN, {}, {}, None, "mixed_bfloat16"),
    )
    reference_call = None
    for name, model_class, model_kwargs, compile_kwargs, strategy_name, policy in variants:
        strategy = get_strategy(strategy_name) if strategy_name else tf.distribute.get_strategy()
        keras.mixed_precision.set_global_policy(policy)
        with strategy.scope():
            model = model_class(IMAGE_SHAPE, seed=0, **model_kwargs)
            model.compile(**compile_kwargs)
        keras.mixed_precision.set_global_policy("float32")
        if reference_call is None:
            reference_call = train_call(_reference_for(model), _images(batch_size))
        out.append(case(name, model, batch_size, reference_call,
                        "keras-io DCGAN train_step, same networks", _images(batch_size)))
    return out + lever_cases(batch_size)


def lever_cases(batch_size=64):
    """A lever against the step without it, in alternation ("lever:" rows; the reference column
    is our own step): where a lever's gain is smaller than the spread of two rows against the
    keras-io step, only a direct pair shows it."""
    pairs = (
        # name, lever kwargs, without-lever kwargs
        ("lever: discriminator_pass=joint vs separate, default networks (batch norm in D)",
         {"discriminator_pass": "joint"}, {"discriminator_pass": "separate"}),
        ("lever: discriminator_pass=joint vs separate, discriminator_batch_norm=False",
         {"discriminator_pass": "joint", "discriminator_batch_norm": False},
         {"discriminator_pass": "separate", "discriminator_batch_norm": False}),
    )

    def build(**kwargs):
        model = DCGAN(IMAGE_SHAPE, seed=0, **kwargs)
        model.compile()
        return model

    out = []
    for name, lever, without in pairs:
        out.append(case(name, build(**lever), batch_size, train_call(build(**without), _images(batch_size)),
                        f"the same DCGAN step with {without}", _images(batch_size)))
    return out + [policy_lever("DCGAN defaults", build, batch_size, _images(batch_size))]
