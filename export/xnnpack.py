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


def xnnpack_friendly(network):
    """`network` (a functional Keras model) with every rewritable Conv2DTranspose replaced by
    its exact sub-pixel form; the network itself when it has none (or is not functional)."""
    layers = getattr(network, "layers", [])
    if not any(rewritable(layer) for layer in layers) or not hasattr(network, "inputs"):
        return network

    def clone(layer):
        if rewritable(layer):
            return SubpixelConv2DTranspose(layer)
        return layer  # shared: the clone reuses the trained layer itself

    try:
        return keras.models.clone_model(network, clone_function=clone)
    except (ValueError, TypeError):  # subclassed or unusual graphs: keep the original
        return network
