"""Dropout that keeps training replica-exact under `tf.distribute`."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen.configs import ListedConfig


@keras.saving.register_keras_serializable(package="keras_gen")
class ReplicaExactDropout(ListedConfig, keras.layers.Layer):
    """Dropout whose mask is drawn for the *global* batch, each replica taking its own slice.

    Keras' `Dropout` draws a mask of the local batch's shape on every replica from the same seed
    state, so 2 replicas use other masks than 1 replica on the same global batch. Here every
    replica draws the same global mask (its seed state advances identically on all of them) and
    keeps the rows of its part of the batch, so 1, 2 or 4 replicas compute the same update.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"rate must be in [0, 1); got {rate!r}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        local = tf.shape(inputs)[0]
        shape = tf.concat([[local * replicas], tf.shape(inputs)[1:]], axis=0)
        uniform = keras.random.uniform(shape, seed=self.seed_generator)
        start = tf.cast(replica, tf.int32) * local
        keep = tf.slice(uniform, tf.concat([[start], tf.zeros_like(shape[1:])], 0),
                        tf.concat([[local], shape[1:]], 0)) >= self.rate
        return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    config_args = ("rate", "seed")
