"""Networks rewritten so LiteRT's XNNPACK delegate runs them whole at any batch size.

A `Conv2DTranspose` converts to TFLite's TRANSPOSE_CONV, whose output shape is an input tensor.
With a dynamic batch that tensor is computed at run time (SHAPE -> STRIDED_SLICE -> PACK), and
XNNPACK only takes TRANSPOSE_CONV with a constant output shape, so the op falls back to the
builtin kernel: the default DCGAN generator ran 5.4x slower per image than its SavedModel at
batch 64 (RESULTS.md, `benchmarks/export_latency.py --batch-sizes 1,64`).

A stride-s transposed convolution is s*s ordinary convolutions, one per output phase (a, b),
interleaved by DEPTH_TO_SPACE (the "sub-pixel" form). Each phase's kernel is read off the layer
itself by feeding it impulses, so the rewrite is exact for any kernel size and needs no index
algebra: PAD, STRIDED_SLICE, CONV_2D, CONCATENATION and DEPTH_TO_SPACE all take a dynamic batch
in XNNPACK, with the same multiply-adds as the transposed convolution.

The same holds for any op whose shape is computed at run time: each one (SHAPE -> STRIDED_SLICE
-> PACK -> RESHAPE) falls back to the builtin kernels and cuts XNNPACK's graph in two. The
default diffusion loop's file (16 steps) was cut into 337 pieces (benchmarks/RESULTS.md): Keras'
GroupNormalization reshapes back to `ops.shape(inputs)`, and a nearest UpSampling2D is
`ops.repeat`. Their stand-ins below compute the same values with constant shapes (-1 for the
batch): group statistics from per-channel means over the positions, and upsampling by s as s*s
copies along the channels put in place by DEPTH_TO_SPACE.
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf


def _phase_kernels(layer):
    """{(a, b): (row window, column window, kernel (kh, kw, in, out))} for a Conv2DTranspose
    layer: output pixel (s*i + a, s*j + b) is the VALID convolution of the input rows
    i+lo..i+hi (columns likewise) with the phase's kernel."""
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), np.float64)
    k_h, k_w, out_c, in_c = kernel.shape
    s_h, s_w = layer.strides
    reach_h, reach_w = -(-k_h // s_h), -(-k_w // s_w)
    size_h, size_w = 2 * reach_h + 1, 2 * reach_w + 1
    # Impulse responses: input channel c at the centre of a (size_h, size_w) map.
    impulses = np.zeros((in_c, size_h, size_w, in_c), np.float64)
    impulses[np.arange(in_c), reach_h, reach_w, np.arange(in_c)] = 1.0
    response = tf.nn.conv2d_transpose(
        impulses, kernel, (in_c, size_h * s_h, size_w * s_w, out_c), (1, s_h, s_w, 1),
        padding="SAME",
    ).numpy()  # (in_c, H*s, W*s, out_c)
    phases = {}
    for a in range(s_h):
        for b in range(s_w):
            # taps[di, dj, c, o]: weight of input (i + di, j + dj, c) in output (s*i+a, s*j+b, o)
            taps = np.zeros((size_h, size_w, in_c, out_c), np.float64)
            for di in range(-reach_h, reach_h + 1):
                for dj in range(-reach_w, reach_w + 1):
                    row, col = s_h * (reach_h - di) + a, s_w * (reach_w - dj) + b
                    if 0 <= row < size_h * s_h and 0 <= col < size_w * s_w:
                        taps[di + reach_h, dj + reach_w] = response[:, row, col, :]
            used = np.abs(taps).sum(axis=(2, 3)) > 0
            rows = np.flatnonzero(used.any(axis=1)) if used.any() else np.array([reach_h])
            cols = np.flatnonzero(used.any(axis=0)) if used.any() else np.array([reach_w])
            lo_h, hi_h, lo_w, hi_w = rows.min(), rows.max(), cols.min(), cols.max()
            phases[(a, b)] = (
                (lo_h - reach_h, hi_h - reach_h),
                (lo_w - reach_w, hi_w - reach_w),
                taps[lo_h : hi_h + 1, lo_w : hi_w + 1].astype(np.float32),
            )
    return phases, (reach_h, reach_w)


def rewritable(layer):
    """A Conv2DTranspose this module can rewrite exactly: 'same' padding, equal strides of 2 or
    more (stride 1 has a static output shape already), no dilation or output padding, channels
    last."""
    return (
        isinstance(layer, keras.layers.Conv2DTranspose)
        and layer.padding == "same"
        and layer.strides[0] == layer.strides[1] >= 2
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.output_padding is None
        and layer.data_format == "channels_last"
    )


class SubpixelConv2DTranspose(keras.layers.Layer):
    """Export-time stand-in of a Conv2DTranspose: the same outputs as per-phase convolutions
    and DEPTH_TO_SPACE (see the module docstring). Built from a trained layer; not for
    training."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.stride = int(source.strides[0])
        self.activation = source.activation
        self.phases, self.reach = _phase_kernels(source)
        self.bias = (
            None if not source.use_bias
            else np.asarray(keras.ops.convert_to_numpy(source.bias), np.float32)
        )

    def call(self, x):
        reach_h, reach_w = self.reach
        height, width = x.shape[1], x.shape[2]
        padded = tf.pad(x, [[0, 0], [reach_h, reach_h], [reach_w, reach_w], [0, 0]])
        outputs = []
        for (a, b), ((lo_h, hi_h), (lo_w, hi_w), kernel) in sorted(self.phases.items()):
            window = padded[
                :, reach_h + lo_h : reach_h + hi_h + height, reach_w + lo_w : reach_w + hi_w + width, :
            ]
            outputs.append(tf.nn.conv2d(window, tf.constant(kernel, x.dtype), 1, "VALID"))
        y = tf.nn.depth_to_space(tf.concat(outputs, axis=-1), self.stride)
        if self.bias is not None:
            y = y + tf.constant(self.bias, y.dtype)
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        out_c = next(iter(self.phases.values()))[2].shape[-1]
        s = self.stride
        return (n, None if h is None else h * s, None if w is None else w * s, out_c)


class StaticGroupNormalization(keras.layers.Layer):
    """Export-time stand-in of a channels-last GroupNormalization of 4-D feature maps of known
    size: the same statistics, two-pass as Keras computes them, from per-channel means over the
    positions (MEAN over H and W, which XNNPACK runs as global average pooling) averaged within
    each group; no reshape of the feature map itself (see the module docstring). A group view
    (-1, H*W, groups, C/groups) reduced over two axes made the exported diffusion loop slower
    than Keras' own layers (benchmarks/RESULTS.md, run 1). Built from a trained layer; not for
    training."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.groups, self.epsilon = int(source.groups), float(source.epsilon)
        self.gamma, self.beta = (
            None if variable is None else np.asarray(keras.ops.convert_to_numpy(variable), np.float32)
            for variable in (source.gamma, source.beta))

    def _group_mean(self, per_channel):
        """(B, 1, 1, C) per-channel values -> their mean over each group, per channel."""
        channels = per_channel.shape[-1]
        size = channels // self.groups
        grouped = tf.reduce_mean(tf.reshape(per_channel, [-1, self.groups, size]), axis=2, keepdims=True)
        return tf.reshape(grouped * tf.ones([1, 1, size]), [-1, 1, 1, channels])

    def call(self, x):
        x = tf.cast(x, tf.float32)
        centred = x - self._group_mean(tf.reduce_mean(x, axis=[1, 2], keepdims=True))
        variance = self._group_mean(tf.reduce_mean(tf.square(centred), axis=[1, 2], keepdims=True))
        scale = tf.math.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            scale = scale * self.gamma
        y = centred * scale
        if self.beta is not None:
            y = y + self.beta
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


class DepthToSpaceUpSampling2D(keras.layers.Layer):
    """Export-time stand-in of a nearest UpSampling2D by an equal factor s: s*s copies of the
    map along the channels, put in place by DEPTH_TO_SPACE (equal to the layer exactly)."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.factor = int(source.size[0])

    def call(self, x):
        return tf.nn.depth_to_space(tf.concat([x] * self.factor**2, axis=-1), self.factor)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = self.factor
        return (n, None if h is None else h * s, None if w is None else w * s, c)


def _input_shape(layer):
    """The input shape `layer` was built with, or None."""
    shapes = getattr(layer, "_build_shapes_dict", None) or {}
    return next(iter(shapes.values()), None)


def _group_norm_rewritable(layer):
    shape = _input_shape(layer)
    return (isinstance(layer, keras.layers.GroupNormalization) and layer.axis in (-1, 3)
            and shape is not None and len(shape) == 4 and None not in tuple(shape)[1:])


def _upsampling_rewritable(layer):
    return (isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "nearest"
            and layer.size[0] == layer.size[1] and layer.data_format == "channels_last")


def _with_static_norm(layer):
    """A copy of a layer that normalises with a nested GroupNormalization `norm` (the diffusion
    U-Net's attention), with the same weights and that norm's static stand-in."""
    clone = type(layer).from_config(layer.get_config())
    clone.build(_input_shape(layer))
    clone.set_weights(layer.get_weights())
    # Untracked: the stand-in holds constants, no state (and the built layer is locked).
    object.__setattr__(clone, "norm", StaticGroupNormalization(layer.norm))
    return clone


def _stand_in(layer):
    """The export-time stand-in of `layer`, or None when it needs none."""
    if rewritable(layer):
        return SubpixelConv2DTranspose(layer)
    if _group_norm_rewritable(layer):
        return StaticGroupNormalization(layer)
    if _upsampling_rewritable(layer):
        return DepthToSpaceUpSampling2D(layer)
    if _group_norm_rewritable(getattr(layer, "norm", None)) and _input_shape(layer) is not None:
        return _with_static_norm(layer)
    return None


def xnnpack_friendly(network):
    """`network` (a functional Keras model) with every layer that has a stand-in above replaced
    by it (transposed convolutions, group norms, nearest upsampling, attention's group norm);
    the network itself when it has none (or is not functional)."""
    layers = getattr(network, "layers", [])
    if not any(_stand_in(layer) is not None for layer in layers) or not hasattr(network, "inputs"):
        return network

    def clone(layer):
        # Others are shared: the clone reuses the trained layer itself.
        return _stand_in(layer) or layer

    try:
        return keras.models.clone_model(network, clone_function=clone)
    except (ValueError, TypeError):  # subclassed or unusual graphs: keep the original
        return network
