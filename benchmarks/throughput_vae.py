"""ConvVAE training step: keras-gen's VAE against the keras-io VAE example's train_step.

The reference is written the way the keras-io example ("Variational AutoEncoder") writes it: a
`Sampling` layer drawing keras.random noise from a SeedGenerator, one GradientTape step, a
sigmoid decoder output with `binary_crossentropy` summed over pixels, the closed-form KL, and
`compile(optimizer=Adam())` without jit or steps_per_execution. Both use the very same encoder
and decoder architecture (ConvVAE's networks, built twice); ours is ConvVAE(likelihood=
"bernoulli") with its real compiled train function.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gen.models import ConvVAE
from keras_gen.networks import conv_decoder, conv_encoder

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
            reconstruction = ops.sigmoid(self.decoder(z))
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


def train_call(model, batch_size):
    """One call of the model's compiled train function on a fixed in-memory binary batch."""
    rng = np.random.default_rng(0)
    images = (rng.uniform(size=(batch_size,) + IMAGE_SHAPE) < 0.3).astype("float32")
    iterator = iter(tf.data.Dataset.from_tensors(images).repeat())
    model.make_train_function()
    return lambda: model.train_function(iterator)


def cases(batch_size=64):
    reference = ReferenceVAE(
        conv_encoder(IMAGE_SHAPE, LATENT_DIM, seed=0),
        conv_decoder(IMAGE_SHAPE, LATENT_DIM, params_per_channel=1, seed=0),
    )
    reference.compile(optimizer=keras.optimizers.Adam())
    reference_call = train_call(reference, batch_size)
    out = []
    for name, jit, spe in (("ConvVAE", False, 1), ("ConvVAE, XLA", True, 1),
                           ("ConvVAE, XLA, 8 steps/exec", True, 8)):
        model = ConvVAE(IMAGE_SHAPE, latent_dim=LATENT_DIM, likelihood="bernoulli", seed=0)
        model.compile(jit_compile=jit, steps_per_execution=spe)
        out.append({
            "name": f"{name} 28x28x1",
            "images_per_call": batch_size * spe,
            "reference_images_per_call": batch_size,
            "ours": train_call(model, batch_size),
            "reference": reference_call,
            "reference_name": "keras-io VAE train_step",
        })
    return out
