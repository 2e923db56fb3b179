"""Diffusion training step: keras-gen's Diffusion against the keras-io DDIM example's train_step.

The reference is written the way the keras-io example ("Denoising Diffusion Implicit Models")
writes it: noise and diffusion times from keras.random with a SeedGenerator, the cosine
schedule's signal and noise rates, a mean absolute error on the predicted noise, one
GradientTape step, and an EMA copy of the network updated by `assign` after every step;
`compile(optimizer=Adam())` without jit or steps_per_execution. Its network is a copy
(`keras.models.clone_model`) of Diffusion's own U-Net (the example's U-Net is sized for 64x64
flowers; the same network on both sides is the point), fed the time t where the example feeds
the noise variance. The example's Normalization layer is left out (the data here are already
in [-1, 1]).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gen.models import Diffusion
from keras_gen.networks import policy_scope
from throughput_common import case, policy_lever, train_call

IMAGE_SHAPE = (28, 28, 1)


class ReferenceDDIM(keras.Model):
    def __init__(self, network, ema=0.999):
        super().__init__()
        self.network = network
        self.ema_network = keras.models.clone_model(network)
        self.ema_network.set_weights(network.get_weights())
        self.ema = ema
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")

    @property
    def metrics(self):
        return [self.noise_loss_tracker]

    def diffusion_schedule(self, diffusion_times):
        angles = diffusion_times * (0.5 * math.pi)
        return ops.sin(angles), ops.cos(angles)  # noise rates, signal rates

    def train_step(self, images):
        batch_size = ops.shape(images)[0]
        noises = keras.random.normal((batch_size,) + IMAGE_SHAPE, seed=self.seed_generator)
        diffusion_times = keras.random.uniform((batch_size,), seed=self.seed_generator)
        noise_rates, signal_rates = self.diffusion_schedule(diffusion_times[:, None, None, None])
        noisy_images = signal_rates * images + noise_rates * noises
        with tf.GradientTape() as tape:
            pred_noises = self.network([noisy_images, diffusion_times], training=True)
            noise_loss = ops.mean(ops.abs(noises - pred_noises))
        gradients = tape.gradient(noise_loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        self.noise_loss_tracker.update_state(noise_loss)
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return {m.name: m.result() for m in self.metrics}


def _images(batch_size):
    return np.random.default_rng(0).uniform(-1, 1, (batch_size,) + IMAGE_SHAPE).astype("float32")


def cases(batch_size=64):
    """The library's defaults (`Diffusion(shape)` + `compile()`) and steps_per_execution, against
    the keras-io step on a copy of the same U-Net."""
    out = []
    reference_call = None
    for name, compile_kwargs, policy in (
        ("Diffusion defaults: compile()", {}, "float32"),
        ("Diffusion defaults, mixed_bfloat16", {}, "mixed_bfloat16"),
        ("Diffusion defaults, 4 steps/exec", {"steps_per_execution": 4}, "float32"),
    ):
        with policy_scope(policy):
            model = _build(**compile_kwargs)
        if reference_call is None:
            reference = ReferenceDDIM(keras.models.clone_model(model.network))
            reference.compile(optimizer=keras.optimizers.Adam(5e-4))
            reference_call = train_call(reference, _images(batch_size))
        out.append(case(name, model, batch_size, reference_call,
                        "keras-io DDIM train_step, same U-Net", _images(batch_size)))
    return out + [policy_lever("Diffusion defaults", _build, batch_size, _images(batch_size))]


def _build(**compile_kwargs):
    model = Diffusion(IMAGE_SHAPE, seed=0)
    model.compile(**compile_kwargs)
    return model
