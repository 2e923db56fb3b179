"""MaskedConv2D and the PixelCNN blocks: masks, equivalence with a plain convolution,
causality of the blocks, their cached single steps against `call`, serialisation and argument
errors."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from keras_gen.layers.masked import (
    GatedPixelCNNBlock,
    MaskedConv2D,
    MaskedResidualBlock,
    causal_mask,
)


def test_grey_masks_a_and_b():
    a = causal_mask(3, 1, 1, "A")[..., 0, 0]
    b = causal_mask(3, 1, 1, "B")[..., 0, 0]
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    wide = causal_mask((1, 5), 1, 1, "B")[..., 0, 0]
    np.testing.assert_array_equal(wide, [[1, 1, 1, 0, 0]])


def test_colour_centre_masks_follow_r_g_b_order():
    # Image channels R, G, B are groups 0, 1, 2; outputs 6 channels: group k % 3.
    a = causal_mask(3, 3, 6, "A", channel_groups=3)
    b = causal_mask(3, 3, 6, "B", channel_groups=3)
    centre_a, centre_b = a[1, 1], b[1, 1]
    for out in range(6):
        g = out % 3
        np.testing.assert_array_equal(centre_a[:, out], [1.0 if i < g else 0.0 for i in range(3)])
        np.testing.assert_array_equal(centre_b[:, out], [1.0 if i <= g else 0.0 for i in range(3)])
    # Off-centre taps see every channel of earlier pixels and none of later ones.
    assert a[0].min() == 1.0 and a[1, 0].min() == 1.0
    assert a[2].max() == 0.0 and a[1, 2].max() == 0.0


def test_masked_conv_equals_conv_with_masked_kernel_and_leaves_kernel_alone():
    layer = MaskedConv2D(6, 5, mask_type="A", channel_groups=3, kernel_initializer="he_normal")
    x = tf.random.stateless_normal((2, 7, 7, 3), seed=(1, 2))
    y = layer(x)
    kernel_before = layer.kernel.numpy().copy()
    expected = tf.nn.conv2d(x, kernel_before * layer.mask, 1, "SAME") + layer.bias
    np.testing.assert_allclose(y.numpy(), expected.numpy(), atol=1e-5)
    layer(x)
    # The mask is applied in call, not written into the kernel.
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel_before)
    assert np.abs(kernel_before * (1 - layer.mask)).sum() > 0
    assert len(layer.weights) == 2  # the mask is a constant, not a weight


@pytest.mark.parametrize("kernel_size", [1, 3, 7, (1, 5), (3, 5)])
def test_masked_conv_is_causal_for_any_odd_kernel(kernel_size):
    layer = MaskedConv2D(4, kernel_size, mask_type="A")
    x = tf.random.stateless_normal((1, 6, 6, 2), seed=(3, 4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)[0, 3, 2]
        total = tf.reduce_sum(y * tf.range(1.0, 5.0))
    grad = tape.gradient(total, x).numpy()[0]
    flat = np.abs(grad).sum(-1).reshape(-1)
    assert flat[3 * 6 + 2 :].max() == 0.0  # the pixel itself and every later pixel


def test_masked_conv_serialises_and_reloads(tmp_path):
    model = keras.Sequential(
        [keras.Input((5, 5, 3)), MaskedConv2D(6, 3, mask_type="A", channel_groups=3)]
    )
    path = str(tmp_path / "masked.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(model(x).numpy(), restored(x).numpy())
    layer = restored.layers[0]
    assert (layer.mask_type, layer.channel_groups) == ("A", 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(filters=4, kernel_size=4), "odd"),
        (dict(filters=4, kernel_size=(3, 2)), "odd"),
        (dict(filters=4, kernel_size=3, mask_type="C"), "mask_type"),
        (dict(filters=4, kernel_size=3, channel_groups=3), "multiple of channel_groups"),
        (dict(filters=4, kernel_size=3, strides=2), "strides"),
        (dict(filters=4, kernel_size=3, padding="valid"), "same"),
    ],
)
def test_masked_conv_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedConv2D(**kwargs)


def test_masked_conv_input_channels_must_split_into_groups():
    layer = MaskedConv2D(6, 3, channel_groups=3)
    with pytest.raises(ValueError, match="input's channel count"):
        layer(tf.zeros((1, 4, 4, 2)))


def test_gated_block_stacks_see_only_the_past():
    block = GatedPixelCNNBlock(4, kernel_size=3, first=True)
    x = tf.random.stateless_normal((1, 6, 6, 1), seed=(5, 6))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        v, h = block([x, x])
        v_out = tf.reduce_sum(v[0, 3])  # a whole row of the vertical stack
        h_out = tf.reduce_sum(h[0, 3, 2])
    gv = np.abs(tape.gradient(v_out, x).numpy()[0, ..., 0])
    gh = np.abs(tape.gradient(h_out, x).numpy()[0, ..., 0])
    assert gv[3:].max() == 0.0 and gv[:3].max() > 0.0  # rows above only
    # Pixel (3, 2) sees exactly: the 1x3 horizontal mask A's pixel to the left, (3, 1), and the
    # 2x3 vertical kernel's rows 1..2 at columns 1..3; nothing else, itself included.
    seen = {tuple(p) for p in np.argwhere(gh > 0.0)}
    assert seen == {(3, 1)} | {(i, j) for i in (1, 2) for j in (1, 2, 3)}


def test_blocks_round_trip_through_config():
    for block in (
        GatedPixelCNNBlock(6, 3, first=False, channel_groups=3, num_classes=4, name="g"),
        MaskedResidualBlock(6, 5, channel_groups=3, num_classes=4, name="r"),
    ):
        clone = type(block).from_config(block.get_config())
        assert clone.get_config() == block.get_config()


# -- cached single steps: what `call` computes, row by row and pixel by pixel ----------------


def _pad_rows(x, top, side):
    return tf.pad(x, [[0, 0], [top, 0], [side, side], [0, 0]])


def _step_conv_through_image(step, x):
    """A ConvStep run over x (B, H, W, C) in raster order, as the sampler runs it: the rows
    above once per row, then pixel by pixel with pending sums. -> (B, H, W, filters)."""
    h, w = x.shape[1:3]
    padded = _pad_rows(x, step.rh, step.rw)
    out = []
    for i in range(h):
        above = step.rows_above(padded[:, i : i + step.rh]) if step.rh else None
        pending, row = step.empty_pending(x.shape[0]), []
        for j in range(w):
            y, pending = step.pixel(x[:, i, j], pending, None if above is None else above[:, j])
            row.append(y)
        out.append(tf.stack(row, 1))
    return tf.stack(out, 1)


@pytest.mark.parametrize(
    "kernel_size, mask_type, groups", [(3, "A", 1), (5, "B", 1), ((3, 5), "A", 3), (1, "B", 3), ((1, 3), "B", 1)]
)
def test_conv_step_computes_what_call_computes(kernel_size, mask_type, groups):
    layer = MaskedConv2D(6, kernel_size, mask_type=mask_type, channel_groups=groups, activation="tanh")
    x = tf.random.stateless_normal((2, 5, 6, 3), seed=(7, 8))
    expected = layer(x).numpy()
    np.testing.assert_allclose(_step_conv_through_image(layer.stepper(), x).numpy(), expected, atol=2e-6)


@pytest.mark.parametrize("first", [True, False])
def test_gated_steps_compute_what_call_computes(first):
    """vertical_row per row and horizontal_pixel per pixel (pending sums carried along the
    row) reproduce both stacks of `call`, labels included."""
    block = GatedPixelCNNBlock(6, kernel_size=5, first=first, channel_groups=3, num_classes=4)
    v_in = tf.random.stateless_normal((2, 5, 6, 3 if first else 6), seed=(1, 2))
    h_in = v_in if first else tf.random.stateless_normal((2, 5, 6, 6), seed=(3, 4))
    labels = tf.constant([1, 3])
    v_full, h_full = block([v_in, h_in, labels])
    step = block.stepper(labels)
    r = 2
    # The vertical input's rows i-r..i (the first block: the image's rows i-r-1..i-1).
    padded = _pad_rows(v_in, r + 1 if first else r, r)
    for i in range(5):
        v_row, to_h = step.vertical_row(padded[:, i : i + r + 1])
        np.testing.assert_allclose(v_row.numpy(), v_full[:, i].numpy(), atol=2e-6)
        pending = step.empty_pending(2)
        for j in range(6):
            h, pending = step.horizontal_pixel(h_in[:, i, j], to_h[:, j], pending)
            np.testing.assert_allclose(h.numpy(), h_full[:, i, j].numpy(), atol=2e-6)


def test_residual_steps_compute_what_call_computes():
    block = MaskedResidualBlock(6, 3, channel_groups=3, num_classes=2)
    x = tf.random.stateless_normal((2, 5, 6, 6), seed=(5, 6))
    labels = tf.constant([0, 1])
    full = block([x, labels])
    step = block.stepper(labels)
    t = block.inner_input(x, labels)
    padded = _pad_rows(t, 1, 1)
    for i in range(5):
        above = step.rows_above(padded[:, i : i + 1])
        pending = step.empty_pending(2)
        for j in range(6):
            t_here = step.inner(x[:, i, j])
            np.testing.assert_allclose(t_here.numpy(), t[:, i, j].numpy(), atol=2e-6)
            out, pending = step.outer(t_here, pending, above[:, j])
            np.testing.assert_allclose((x[:, i, j] + out).numpy(), full[:, i, j].numpy(), atol=2e-6)


def test_advance_is_the_pending_part_of_pixel():
    """The first layer's pending sums, recomputed once its input pixel is whole, equal those
    `pixel` gives from the whole input."""
    layer = MaskedConv2D(6, (1, 5), mask_type="A", channel_groups=3)
    layer.build((None, 4, 4, 3))
    step = layer.stepper()
    x = tf.random.stateless_normal((2, 3), seed=(9, 9))
    pending = tf.random.stateless_normal((2, 2 * 6), seed=(9, 1))
    np.testing.assert_allclose(
        step.advance(x, pending).numpy(), step.pixel(x, pending)[1].numpy(), atol=1e-6
    )
