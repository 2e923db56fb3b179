"""Layers of the diffusion U-Net: the sinusoidal time embedding and self-attention over the
positions of a feature map (builtin TFLite ops only: sin/cos, matmul, softmax)."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gen")
class SinusoidalEmbedding(keras.layers.Layer):
    """Times t (batch,) in [0, 1] -> (batch, dim) features [sin(f t), cos(f t)] at `dim / 2`
    frequencies spaced geometrically from 1 to `max_frequency` (Vaswani et al. 2017 on 1000 t,
    as DDPM embeds its step index). Computed in float32 whatever the policy: float16 loses the
    phase of the high frequencies."""

    def __init__(self, dim, max_frequency=1000.0, **kwargs):
        super().__init__(**kwargs)
        if int(dim) < 2 or int(dim) % 2:
            raise ValueError(f"dim must be an even integer >= 2; got {dim!r}.")
        self.dim = int(dim)
        self.max_frequency = float(max_frequency)

    def call(self, t):
        half = self.dim // 2
        exponents = ops.arange(half, dtype="float32") / max(half - 1, 1)
        frequencies = ops.exp(exponents * math.log(self.max_frequency))
        angles = ops.cast(ops.reshape(t, (-1, 1)), "float32") * frequencies[None, :]
        features = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(features, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_frequency": self.max_frequency}


@keras.saving.register_keras_serializable(package="keras_gen")
class SpatialSelfAttention(keras.layers.Layer):
    """Single-head self-attention over the H x W positions of a feature map, with a group norm
    before it and a residual connection around it (as in the DDPM U-Net). Cheap only at low
    resolution: the attention matrix is (HW)^2 per image."""

    def __init__(self, groups=8, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.norm = keras.layers.GroupNormalization(min(self.groups, channels), dtype=self.dtype_policy)
        self.norm.build(input_shape)
        self.qkv = keras.layers.Dense(3 * channels, kernel_initializer=self.kernel_initializer,
                                      dtype=self.dtype_policy)
        self.qkv.build(input_shape)
        self.out = keras.layers.Dense(channels, kernel_initializer="zeros", dtype=self.dtype_policy)
        self.out.build(input_shape[:-1] + (channels,))

    def call(self, x):
        _, height, width, channels = x.shape
        # Constant shapes (-1 for the batch) where the map's size is known, and the projections
        # on 2-D (positions, channels) rows: a shape computed at run time (Dense on a 3-D or 4-D
        # input computes one) cuts the graph LiteRT's XNNPACK delegate takes (export/xnnpack.py).
        if height is not None and width is not None:
            positions, shape = (-1, height * width, 3 * channels), (-1, height, width, channels)
        else:
            shape = ops.shape(x)
            positions = (shape[0], -1, 3 * channels)
        h = ops.reshape(self.qkv(ops.reshape(self.norm(x), (-1, channels))), positions)
        q, k, v = h[..., :channels], h[..., channels : 2 * channels], h[..., 2 * channels :]
        weights = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 1))) / math.sqrt(channels), axis=-1)
        attended = ops.reshape(ops.matmul(weights, v), (-1, channels))
        return x + ops.reshape(self.out(attended), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="keras_gen")
class FiLM(keras.layers.Layer):
    """Feature-wise modulation (Perez et al. 2018) of a feature map by a conditioning vector:
    [features (B, H, W, C), params (B, 2C)] -> features * (1 + scale) + shift, with
    (scale, shift) = params. Zero params leave the features unchanged."""

    def call(self, inputs):
        features, params = inputs
        channels = features.shape[-1]
        params = ops.reshape(params, (-1, 1, 1, 2 * channels))
        return features * (1.0 + params[..., :channels]) + params[..., channels:]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="keras_gen")
class CaptionCrossAttention(keras.layers.Layer):
    """Single-head cross-attention from the H x W positions of a feature map to a caption's
    token states: `[features (B, H, W, C), states (B, L, D), token_ids (B, L)]` -> features +
    out(attention), with a group norm on the queries. Padding tokens are pushed to -1e9 before
    the softmax; a caption without words (the "no caption" of classifier-free guidance) adds
    nothing. Written with matmuls and softmax (builtin TFLite ops): Keras' MultiHeadAttention
    with a mask gave NaN in LiteRT."""

    def __init__(self, groups=8, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        feature_shape, state_shape = input_shape[0], input_shape[1]
        channels = int(feature_shape[-1])
        self.norm = keras.layers.GroupNormalization(min(self.groups, channels), dtype=self.dtype_policy)
        self.norm.build(feature_shape)
        self.query = keras.layers.Dense(channels, kernel_initializer=self.kernel_initializer,
                                        dtype=self.dtype_policy)
        self.query.build(feature_shape)
        self.key_value = keras.layers.Dense(2 * channels, kernel_initializer=self.kernel_initializer,
                                            dtype=self.dtype_policy)
        self.key_value.build(state_shape)
        self.out = keras.layers.Dense(channels, kernel_initializer="zeros", dtype=self.dtype_policy)
        self.out.build(feature_shape)

    def call(self, inputs):
        x, states, token_ids = inputs
        shape = ops.shape(x)
        channels = x.shape[-1]
        q = ops.reshape(self.query(self.norm(x)), (shape[0], shape[1] * shape[2], channels))
        kv = self.key_value(ops.cast(states, self.compute_dtype))
        k, v = kv[..., :channels], kv[..., channels:]
        words = ops.cast(ops.not_equal(token_ids, 0), "float32")  # (B, L); 0 is padding
        scores = ops.cast(ops.matmul(q, ops.transpose(k, (0, 2, 1))), "float32") / math.sqrt(channels)
        scores = scores + (words[:, None, :] - 1.0) * 1e9
        weights = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        attended = ops.reshape(ops.matmul(weights, v), shape)
        has_words = ops.cast(ops.max(words, axis=-1), self.compute_dtype)[:, None, None, None]
        return x + self.out(attended) * has_words

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
