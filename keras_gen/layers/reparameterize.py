"""The reparameterisation trick of a diagonal Gaussian posterior, z = mean + exp(logvar / 2) * noise,
so gradients reach the encoder through a sample (Kingma & Welling 2014)."""

from __future__ import annotations

import keras


def reparameterize(mean, logvar, noise):
    """z = mean + exp(logvar / 2) * noise, with `noise` ~ N(0, I) drawn by the caller."""
    return mean + keras.ops.exp(0.5 * logvar) * noise


@keras.saving.register_keras_serializable(package="keras_gen")
class Reparameterize(keras.layers.Layer):
    """z from a diagonal Gaussian posterior.

    Called on `[mean, logvar, noise]` it is deterministic: the noise is an input, which is how
    keras-gen's training steps (replica-exact noise) and exported graphs (no random ops) use it.
    Called on `[mean, logvar]` it draws N(0, I) noise from its own seed, like the `Sampling`
    layer of the Keras VAE example.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                "Reparameterize takes [mean, logvar] or [mean, logvar, noise]; got "
                f"{type(inputs).__name__} of length {len(inputs) if isinstance(inputs, (list, tuple)) else 1}."
            )
        mean, logvar = inputs[0], inputs[1]
        if len(inputs) == 3:
            noise = inputs[2]
        else:
            noise = keras.random.normal(
                keras.ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator
            )
        return reparameterize(mean, logvar, noise)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
