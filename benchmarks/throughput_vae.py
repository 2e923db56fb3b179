"""ConvVAE training step: keras-gen's VAE against the keras-io VAE example's train_step.

The reference is written the way the keras-io example ("Variational AutoEncoder") writes it: a
`Sampling` layer drawing keras.random noise from a SeedGenerator, one GradientTape step, a
sigmoid decoder output with `binary_crossentropy` summed over pixels, the closed-form KL, and
`compile(optimizer=Adam())` without jit or steps_per_execution. Both use the very same encoder
and decoder: the reference trains copies (`keras.models.clone_model`) of ConvVAE's own networks;
ours is ConvVAE with its defaults and its real compiled train function.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gen.models import ConvVAE
from keras_gen.networks import policy_scope
from throughput_common import case, policy_lever, train_call

IMAGE_SHAPE = (28, 28, 1)
LATENT_DIM = 32


class Sampling(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch, dim = ops.shape(z_mean)[0], ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class ReferenceVAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.sampling = Sampling()
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var = self.encoder(data)
            z = self.sampling([z_mean, z_log_var])
            # keras-io's decoder has one output per pixel; ConvVAE's default (a discretised
            # logistic) has two, of which this takes the first.
            reconstruction = ops.sigmoid(self.decoder(z)[..., : data.shape[-1]])
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


def _images(batch_size):
    """A fixed binary batch."""
    rng = np.random.default_rng(0)
    return (rng.uniform(size=(batch_size,) + IMAGE_SHAPE) < 0.3).astype("float32")


def cases(batch_size=64):
    """The library's defaults (`ConvVAE(shape)` + `compile()`) and each compilation option,
    against the keras-io step on copies of the same encoder and decoder."""
    out = []
    reference_call = None
    for name, model_kwargs, compile_kwargs, policy in (
        ("ConvVAE defaults: compile()", {}, {}, None),
        ("ConvVAE defaults, mixed_bfloat16", {}, {}, "mixed_bfloat16"),
        # the breakdown: the reference's Bernoulli term in place of the discretised logistic
        ("ConvVAE defaults, likelihood=bernoulli", {"likelihood": "bernoulli"}, {}, None),
        ("ConvVAE defaults, 4 steps/exec", {}, {"steps_per_execution": 4}, None),
        ("ConvVAE defaults, 16 steps/exec", {}, {"steps_per_execution": 16}, None),
        ("ConvVAE, XLA on", {}, {"jit_compile": True}, None),
        ("ConvVAE, XLA on, 8 steps/exec", {}, {"jit_compile": True, "steps_per_execution": 8}, None),
    ):
        with policy_scope(policy):
            model = _build(compile_kwargs, **model_kwargs)
        if reference_call is None:
            reference = ReferenceVAE(
                keras.models.clone_model(model.encoder), keras.models.clone_model(model.decoder)
            )
            reference.compile(optimizer=keras.optimizers.Adam())
            reference_call = train_call(reference, _images(batch_size))
        out.append(case(name, model, batch_size, reference_call,
                        "keras-io VAE train_step, same networks", _images(batch_size)))
    return out + [policy_lever("ConvVAE defaults", _build, batch_size, _images(batch_size))]


def _build(compile_kwargs=None, **model_kwargs):
    model = ConvVAE(IMAGE_SHAPE, latent_dim=LATENT_DIM, seed=0, **model_kwargs)
    model.compile(**(compile_kwargs or {}))
    return model
