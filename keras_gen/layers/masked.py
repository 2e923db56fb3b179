"""Causal layers for PixelCNNs: `MaskedConv2D` and the gated PixelCNN block.

Causality: the output at pixel (i, j) may see the input at pixels above (i, j) and to its left,
never below or to its right. For colour images a pixel is generated R, then G, then B (van den
Oord et al. 2016), so feature maps are split into `channel_groups` groups (channel k belongs to
group k % channel_groups; the image's own channel c is group c) and, at the centre tap, an
output of group g sees inputs of groups < g (mask "A", first layer) or <= g (mask "B", later
layers).

Cached single steps (Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive
Models"): `layer.stepper(labels)` gives the layer one row or one pixel at a time (`ConvStep`,
`GatedStep`, `ResidualStep`), computing what `call` computes there (tests/test_masked.py checks
it pixel by pixel) from caches the PixelCNN sampler keeps: the rows above, computed once per row
for all columns, and pending sums for the pixels to the right. Plain TensorFlow on static
shapes, so the same code runs in graphs, under XLA and in LiteRT (builtin ops only).
"""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from keras_gen.checks import odd_kernel
from keras_gen.configs import ListedConfig

MASK_TYPES = ("A", "B")


def check_channel_groups(channels, channel_groups, what):
    if channels % channel_groups:
        raise ValueError(
            f"{what} must be a multiple of channel_groups={channel_groups} so every colour "
            f"channel gets the same number of features; got {channels}."
        )


def causal_mask(kernel_size, in_channels, out_channels, mask_type, channel_groups=1):
    """The 0/1 mask (kh, kw, in_channels, out_channels) of a causal convolution (NumPy).

    Rows above the centre: all taps. Centre row: taps left of the centre. Centre tap: input
    group < output group (mask "A") or <= (mask "B").
    """
    kh, kw = odd_kernel(kernel_size)
    if mask_type not in MASK_TYPES:
        raise ValueError(
            f"mask_type must be 'A' (first layer: a pixel does not see itself) or 'B' (later "
            f"layers); got {mask_type!r}."
        )
    mask = np.zeros((kh, kw, in_channels, out_channels), np.float32)
    ch, cw = kh // 2, kw // 2
    mask[:ch] = 1.0
    mask[ch, :cw] = 1.0
    g_in = np.arange(in_channels) % channel_groups
    g_out = np.arange(out_channels) % channel_groups
    if mask_type == "A":
        centre = g_in[:, None] < g_out[None, :]
    else:
        centre = g_in[:, None] <= g_out[None, :]
    mask[ch, cw] = centre.astype(np.float32)
    return mask


@keras.saving.register_keras_serializable(package="keras_gen")
class MaskedConv2D(keras.layers.Conv2D):
    """A `Conv2D` whose kernel is multiplied by a constant causal mask in `call`.

    The mask is a constant, not a weight: the kernel variable keeps its masked-out entries
    (they get zero gradient and never matter), so there is no `kernel.assign` in `call` and no
    constraint, and the layer works under `tf.function`, XLA and `tf.distribute` as a plain
    convolution does. Padding is always "same" and strides 1, so the output has the input's
    height and width.

    Args:
      filters: output channels (a multiple of `channel_groups`).
      kernel_size: odd int or pair of odd ints.
      mask_type: "A" (the first layer: no pixel sees its own value) or "B" (later layers).
      channel_groups: 1 for grey images; 3 for RGB, so R, G and B are generated in order.
      **kwargs: the other `Conv2D` arguments (activation, use_bias, initialisers, ...).
    """

    def __init__(self, filters, kernel_size, mask_type="B", channel_groups=1, **kwargs):
        kernel_size = odd_kernel(kernel_size)
        if mask_type not in MASK_TYPES:
            raise ValueError(
                f"mask_type must be 'A' (first layer: a pixel does not see itself) or 'B' "
                f"(later layers); got {mask_type!r}."
            )
        for arg in ("strides", "dilation_rate", "groups"):
            value = kwargs.get(arg, 1)
            if value not in (1, (1, 1), [1, 1]):
                raise ValueError(f"MaskedConv2D supports only {arg}=1; got {value!r}.")
        if kwargs.get("padding", "same") != "same":
            raise ValueError(
                f"MaskedConv2D always pads 'same' (outputs line up with inputs); got "
                f"padding={kwargs['padding']!r}."
            )
        if kwargs.get("data_format", "channels_last") not in (None, "channels_last"):
            raise ValueError("MaskedConv2D supports only data_format='channels_last' (NHWC).")
        for arg in ("strides", "dilation_rate", "groups", "padding", "data_format"):
            kwargs.pop(arg, None)
        channel_groups = int(channel_groups)
        if channel_groups <= 0:
            raise ValueError(f"channel_groups must be a positive integer; got {channel_groups!r}.")
        check_channel_groups(int(filters), channel_groups, "filters")
        super().__init__(filters, kernel_size, padding="same", data_format="channels_last", **kwargs)
        self.mask_type = mask_type
        self.channel_groups = channel_groups

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        check_channel_groups(in_channels, self.channel_groups, "the input's channel count")
        super().build(input_shape)
        self.mask = causal_mask(
            self.kernel_size, in_channels, self.filters, self.mask_type, self.channel_groups
        )

    def masked_kernel(self):
        return self.kernel * ops.convert_to_tensor(self.mask, dtype=self.kernel.dtype)

    def stepper(self):
        """This layer one output pixel at a time (see `ConvStep`), its weights prepared once."""
        return ConvStep(self)

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.masked_kernel())
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        for arg in ("strides", "dilation_rate", "groups", "padding", "data_format"):
            config.pop(arg, None)
        config.update(mask_type=self.mask_type, channel_groups=self.channel_groups)
        return config


class ConvStep:
    """A `MaskedConv2D` one output pixel at a time, for row-by-row, left-to-right generation.

    Row i's output at pixel j sums the kernel's taps over the rows above (known for the whole
    row when row i starts) and over pixels j-kw//2..j of row i (known one by one). So:
    `rows_above(window)` gives the first part for every column at once, from the input's rows
    i-kh//2..i-1, (B, kh//2, W + 2 (kw//2), C_in) zero-padded at the sides, -> (B, W, filters)
    (None when kh = 1); and `pixel(x, pending, above)` takes the input at pixel j, x (B, C_in),
    and returns the output there (B, filters) with the new `pending` (B, kw//2 * filters): what
    pixels j-kw//2+1..j add to outputs j+1..j+kw//2, so each input pixel is multiplied by the
    kernel once, when it is known (one matrix product per pixel). `above` is
    rows_above(...)[:, j]; pending starts at zeros (the padding left of the row). `advance`
    serves the first layer, whose input at j (the pixel being drawn) is complete only after
    its output there was used.

    The masked kernel is cut once into the matrices these multiply by, in float32 whatever the
    layer's dtype policy.
    """

    def __init__(self, conv):
        kh, kw = conv.kernel_size
        self.rh, self.rw = kh // 2, kw // 2
        self.filters = conv.filters
        kernel = ops.cast(conv.masked_kernel(), "float32")
        # Input pixel j reaches output j + d through tap (rh, rw - d): one (C_in, (rw+1) F) matrix.
        self.row_kernel = ops.concatenate([kernel[self.rh, self.rw - d] for d in range(self.rw + 1)], axis=-1)
        self.above_kernel = kernel[: self.rh] if self.rh else None
        self.bias = ops.cast(conv.bias, "float32") if conv.use_bias else None
        self.activation = conv.activation

    def empty_pending(self, batch):
        """Pending sums at the start of a row: zeros, (B, max(1, kw//2) * filters), the sums
        for outputs j+1, j+2, ... side by side (one unused block for 1-wide kernels keeps a
        sampling loop's state the same shape)."""
        return ops.zeros((batch, max(1, self.rw) * self.filters))

    def rows_above(self, window):
        if self.above_kernel is None:
            return None
        return ops.conv(window, self.above_kernel, padding="valid")[:, 0]

    def pixel(self, x, pending=None, above=None):
        parts = ops.matmul(x, self.row_kernel)
        outputs = parts
        if self.rw:  # (no slicing for 1-wide kernels: every op counts in a LiteRT loop)
            outputs, later = ops.split(parts, [self.filters], axis=-1)
            outputs = outputs + pending[:, : self.filters]
            pending = self._shift(later, pending)
        if above is not None:
            outputs = outputs + above
        if self.bias is not None:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs, pending

    def advance(self, x, pending):
        """The pending sums after pixel j from its input x alone: for a layer whose input at j
        is completed after its output there was needed (the first layer, whose input is the
        pixel being drawn, channel by channel)."""
        if not self.rw:
            return pending
        return self._shift(ops.matmul(x, self.row_kernel[:, self.filters :]), pending)

    def _shift(self, later, pending):
        """x's parts for outputs j+1..j+rw plus what earlier pixels left for j+2..j+rw."""
        if self.rw == 1:
            return later
        return later + ops.pad(pending[:, self.filters :], ((0, 0), (0, self.filters)))

    def __call__(self, x):
        """A 1 x 1 layer at one pixel: x (B, C_in) -> (B, filters)."""
        return self.pixel(x)[0]


def gate(x):
    """Gated activation tanh(a) * sigmoid(b) of the two halves of the last axis.

    With group(k) = k % channel_groups and a half-width divisible by channel_groups, a[k] and
    b[k] are in the same colour group, so gating keeps causality.
    """
    a, b = ops.split(x, 2, axis=-1)
    return ops.tanh(a) * ops.sigmoid(b)


class _PixelCNNBlock(ListedConfig, keras.layers.Layer):
    """What the PixelCNN blocks share: their arguments, config, and one seeded initialiser per
    sub-layer derived from the block's own."""

    config_args = ("filters", "kernel_size", "channel_groups", "num_classes", "kernel_initializer")

    def __init__(
        self,
        filters,
        kernel_size=3,
        channel_groups=1,
        num_classes=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = odd_kernel(kernel_size)[1]
        self.channel_groups = int(channel_groups)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        check_channel_groups(self.filters, self.channel_groups, "filters")

    def _initializer(self, offset):
        # A distinct seed per sub-layer when the block's initialiser is seeded.
        config = self.kernel_initializer.get_config()
        if config.get("seed") is not None:
            config["seed"] = int(config["seed"]) * 8 + offset
        return self.kernel_initializer.__class__.from_config(config)


@keras.saving.register_keras_serializable(package="keras_gen")
class GatedPixelCNNBlock(_PixelCNNBlock):
    """One layer of the Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation
    with PixelCNN Decoders"): a vertical stack that sees the rows above, and a horizontal stack
    that sees the pixels to the left in the current row plus the vertical stack. Together they
    cover every earlier pixel (no blind spot).

    The vertical convolution is an unmasked (k//2 + 1, k) kernel over rows i - k//2 .. i of its
    input; the first block's input is the image shifted down one row, so the vertical features
    at row i depend on image rows < i only, and feed the horizontal stack without a shift. The
    horizontal convolution is a (1, k) masked convolution (mask "A" in the first block), a 1x1
    from the vertical features joins it before the gate, and the horizontal stack is residual
    after the first block. A class label adds a learned bias to both stacks' gate inputs.

    Call with `[vertical, horizontal]` or `[vertical, horizontal, labels]`; returns
    `[vertical, horizontal]`.
    """

    config_args = ("first",)

    def __init__(
        self,
        filters,
        kernel_size=3,
        first=False,
        channel_groups=1,
        num_classes=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(
            filters, kernel_size, channel_groups, num_classes, kernel_initializer, **kwargs
        )
        self.first = bool(first)
        k, r = self.kernel_size, self.kernel_size // 2
        init = self._initializer
        self.v_conv = keras.layers.Conv2D(
            2 * self.filters, (r + 1, k), padding="valid", kernel_initializer=init(0),
            name="v_conv",
        )
        self.v_to_h = keras.layers.Conv2D(
            2 * self.filters, 1, kernel_initializer=init(1), name="v_to_h"
        )
        self.h_conv = MaskedConv2D(
            2 * self.filters, (1, k), mask_type="A" if self.first else "B",
            channel_groups=self.channel_groups, kernel_initializer=init(2), name="h_conv",
        )
        self.h_out = MaskedConv2D(
            self.filters, 1, mask_type="B", channel_groups=self.channel_groups,
            kernel_initializer=init(3), name="h_out",
        )
        if self.num_classes is not None:
            self.v_embedding = keras.layers.Embedding(
                self.num_classes, 2 * self.filters, embeddings_initializer=init(4),
                name="v_embedding",
            )
            self.h_embedding = keras.layers.Embedding(
                self.num_classes, 2 * self.filters, embeddings_initializer=init(5),
                name="h_embedding",
            )

    def pad_vertical(self, v):
        """Pads the vertical input so a VALID (k//2+1, k) convolution gives rows i-k//2..i (or
        i-k//2-1..i-1 for the first block, whose input is the image)."""
        r = self.kernel_size // 2
        if self.first:
            v = ops.pad(v, ((0, 0), (r + 1, 0), (r, r), (0, 0)))
            return v[:, :-1]
        return ops.pad(v, ((0, 0), (r, 0), (r, r), (0, 0)))

    def build(self, input_shape):
        v_shape, h_shape = input_shape[0], input_shape[1]
        r = self.kernel_size // 2
        padded = (v_shape[0], v_shape[1] + r, v_shape[2] + 2 * r, v_shape[3])
        self.v_conv.build(padded)
        self.v_to_h.build(tuple(v_shape[:3]) + (2 * self.filters,))
        self.h_conv.build(h_shape)
        self.h_out.build(tuple(h_shape[:3]) + (self.filters,))
        if self.num_classes is not None:
            self.v_embedding.build((None,))
            self.h_embedding.build((None,))

    def call(self, inputs):
        v, h = inputs[0], inputs[1]
        labels = inputs[2] if len(inputs) > 2 else None
        v_pre = self.v_conv(self.pad_vertical(v))
        h_pre = self.h_conv(h) + self.v_to_h(v_pre)
        if labels is not None:
            v_pre = v_pre + self.v_embedding(labels)[:, None, None, :]
            h_pre = h_pre + self.h_embedding(labels)[:, None, None, :]
        h_new = self.h_out(gate(h_pre))
        if not self.first:
            h_new = h_new + h
        return [gate(v_pre), h_new]

    def stepper(self, labels=None):
        """This block one row (vertical stack) or one pixel (horizontal stack) at a time, for
        a batch with these `labels` (see `GatedStep`)."""
        return GatedStep(self, labels)



class GatedStep:
    """A `GatedPixelCNNBlock`'s cached steps, computing what `call` computes.

    `vertical_row(window)`: row i of the vertical stack for all columns, from the vertical
    input's rows i-k//2..i (the image's rows i-k//2-1..i-1 in the first block), (B, k//2 + 1,
    W + 2 (k//2), C_in) zero-padded at the sides -> (gated output (B, W, F), contribution to
    the horizontal stack (B, W, 2F)). `horizontal_pixel(x, to_h, pending)`: the horizontal
    stack at pixel (i, j) from its input there, x (B, C_in), the vertical contribution there
    (B, 2F) and the horizontal convolution's `pending` sums (see `ConvStep`) -> (B, F) and the
    new pending. Weights and label biases are prepared once, in float32.
    """

    def __init__(self, block, labels=None):
        self.first = block.first
        self.v_kernel = ops.cast(block.v_conv.kernel, "float32")
        self.v_bias = ops.cast(block.v_conv.bias, "float32")
        self.to_h_kernel = ops.cast(block.v_to_h.kernel[0, 0], "float32")
        self.to_h_bias = ops.cast(block.v_to_h.bias, "float32")
        self.h_conv = block.h_conv.stepper()
        self.h_out = block.h_out.stepper()
        self.v_label = self.h_label = None
        if labels is not None and block.num_classes is not None:
            self.v_label = ops.cast(ops.take(block.v_embedding.embeddings, labels, axis=0), "float32")
            self.h_label = ops.cast(ops.take(block.h_embedding.embeddings, labels, axis=0), "float32")

    def empty_pending(self, batch):
        return self.h_conv.empty_pending(batch)

    def advance(self, x, pending):
        """The horizontal convolution's pending sums from input x at pixel j alone (the first
        block: its input is the pixel being drawn; see `ConvStep.advance`)."""
        return self.h_conv.advance(x, pending)

    def vertical_row(self, window):
        v_pre = ops.conv(window, self.v_kernel, padding="valid")[:, 0] + self.v_bias
        to_h = ops.matmul(v_pre, self.to_h_kernel) + self.to_h_bias
        if self.v_label is not None:
            v_pre = v_pre + self.v_label[:, None, :]
        return gate(v_pre), to_h

    def horizontal_pixel(self, x, to_h, pending):
        h_pre, pending = self.h_conv.pixel(x, pending, to_h)
        if self.h_label is not None:
            h_pre = h_pre + self.h_label
        h_new = self.h_out(gate(h_pre))
        return (h_new if self.first else h_new + x), pending


@keras.saving.register_keras_serializable(package="keras_gen")
class MaskedResidualBlock(_PixelCNNBlock):
    """The residual block of the original PixelCNN (van den Oord et al. 2016, "Pixel Recurrent
    Neural Networks"): x + 1x1(relu(kxk(relu(1x1(relu(x)))))), all masked "B". Stacks of these
    have the known blind spot: pixels above-right of the cone are never seen.

    Call with `x` or `[x, labels]`; a label adds a learned bias after the first 1x1.
    """

    def __init__(self, filters, kernel_size=3, channel_groups=1, num_classes=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(
            filters, kernel_size, channel_groups, num_classes, kernel_initializer, **kwargs
        )
        init = self._initializer
        common = dict(mask_type="B", channel_groups=self.channel_groups)
        self.conv_in = MaskedConv2D(self.filters, 1, kernel_initializer=init(0), name="conv_in", **common)
        self.conv_mid = MaskedConv2D(
            self.filters, self.kernel_size, kernel_initializer=init(1), name="conv_mid", **common
        )
        self.conv_out = MaskedConv2D(self.filters, 1, kernel_initializer=init(2), name="conv_out", **common)
        if self.num_classes is not None:
            self.embedding = keras.layers.Embedding(
                self.num_classes, self.filters, embeddings_initializer=init(3), name="embedding"
            )

    def build(self, input_shape):
        x_shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        for layer in (self.conv_in, self.conv_mid, self.conv_out):
            layer.build(tuple(x_shape[:3]) + (self.filters,))
        if self.num_classes is not None:
            self.embedding.build((None,))

    def inner_input(self, x, labels=None):
        """The input of the kxk convolution (what the fast sampler caches)."""
        t = self.conv_in(ops.relu(x))
        if labels is not None:
            t = t + self.embedding(labels)[:, None, None, :]
        return ops.relu(t)

    def outer(self, t):
        """The residual branch after the inner input: 1x1(relu(kxk(t)))."""
        return self.conv_out(ops.relu(self.conv_mid(t)))

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            x, labels = inputs[0], inputs[1] if len(inputs) > 1 else None
        else:
            x, labels = inputs, None
        return x + self.outer(self.inner_input(x, labels))

    def stepper(self, labels=None):
        """This block one pixel at a time, for a batch with these `labels` (see
        `ResidualStep`)."""
        return ResidualStep(self, labels)


class ResidualStep:
    """A `MaskedResidualBlock`'s cached steps at pixel (i, j). `inner(x)`: `inner_input` there
    from the block input (B, F). `rows_above(window)`: the k x k convolution's part from the
    rows above for all of row i (see `ConvStep`), from the inner inputs' rows i-k//2..i-1.
    `outer(t, pending, above)`: `outer` at pixel j from the inner input there (B, F) -> (B, F)
    and the new pending sums. The block's output is x + outer."""

    def __init__(self, block, labels=None):
        self.conv_in = block.conv_in.stepper()
        self.conv_mid = block.conv_mid.stepper()
        self.conv_out = block.conv_out.stepper()
        self.label = None
        if labels is not None and block.num_classes is not None:
            self.label = ops.cast(ops.take(block.embedding.embeddings, labels, axis=0), "float32")

    def inner(self, x):
        t = self.conv_in(ops.relu(x))
        return ops.relu(t if self.label is None else t + self.label)

    def empty_pending(self, batch):
        return self.conv_mid.empty_pending(batch)

    def rows_above(self, window):
        return self.conv_mid.rows_above(window)

    def outer(self, t, pending, above=None):
        u, pending = self.conv_mid.pixel(t, pending, above)
        return self.conv_out(ops.relu(u)), pending
