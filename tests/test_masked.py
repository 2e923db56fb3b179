"""MaskedConv2D and the PixelCNN blocks: masks, equivalence with a plain convolution,
causality of the blocks, serialisation and argument errors."""

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
    flat = gh.reshape(-1)
    assert flat[3 * 6 + 2 :].max() == 0.0 and flat[: 3 * 6 + 2].min() >= 0.0
    # 1x3 horizontal: the pixel to the left; 2x3 vertical: rows 1..2, columns 1..3.
    assert gh[3, 1] > 0.0 and gh[1:3, 1:4].min() > 0.0


def test_blocks_round_trip_through_config():
    for block in (
        GatedPixelCNNBlock(6, 3, first=False, channel_groups=3, num_classes=4, name="g"),
        MaskedResidualBlock(6, 5, channel_groups=3, num_classes=4, name="r"),
    ):
        clone = type(block).from_config(block.get_config())
        assert clone.get_config() == block.get_config()
