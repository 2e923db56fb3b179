"""export/xnnpack.py: the sub-pixel form of a transposed convolution equals the layer, and the
exported generators hold no TRANSPOSE_CONV (whose run-time output shape keeps XNNPACK off at a
dynamic batch), while still matching Keras at any batch size."""

from collections import Counter

import numpy as np
import keras
import pytest

import export
import keras_gen as kg
from export import signatures, validation
from export.xnnpack import SubpixelConv2DTranspose, rewritable, xnnpack_friendly


@pytest.mark.parametrize("kernel,stride", [(4, 2), (3, 2), (5, 2), (4, 3), (2, 2), (1, 2)])
@pytest.mark.parametrize("use_bias", [False, True])
def test_subpixel_form_equals_the_transposed_convolution(kernel, stride, use_bias):
    layer = keras.layers.Conv2DTranspose(
        5, kernel, strides=stride, padding="same", use_bias=use_bias, activation="relu"
    )
    inputs = keras.Input((7, 6, 3))
    network = keras.Model(inputs, layer(inputs))
    if use_bias:
        layer.bias.assign(np.random.default_rng(1).standard_normal(5))
    rewritten = xnnpack_friendly(network)
    assert any(isinstance(l, SubpixelConv2DTranspose) for l in rewritten.layers)
    x = np.random.default_rng(0).standard_normal((2, 7, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(rewritten(x), network(x), atol=1e-5)


def test_layers_it_cannot_rewrite_stay():
    assert not rewritable(keras.layers.Conv2DTranspose(4, 3, strides=1, padding="same"))
    assert not rewritable(keras.layers.Conv2DTranspose(4, 3, strides=2, padding="valid"))
    assert not rewritable(keras.layers.Conv2D(4, 3))
    inputs = keras.Input((4, 4, 2))
    plain = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    assert xnnpack_friendly(plain) is plain


def _ops(path):
    from ai_edge_litert.interpreter import Interpreter

    return Counter(op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details())


@pytest.mark.parametrize("family", ["dcgan", "pix2pix"])
def test_exported_networks_have_no_transpose_conv_and_match_keras_at_any_batch(family, tmp_path):
    if family == "dcgan":
        model = kg.models.DCGAN((8, 8, 1), latent_dim=8, filters=4, num_classes=3, seed=0)
        assert any(isinstance(l, keras.layers.Conv2DTranspose) for l in model.generator.layers)
    else:
        model = kg.models.Pix2Pix((8, 8, 1), filters=4, seed=0)
    export.tflite(model, tmp_path / "model.tflite")
    path = tmp_path / "model.tflite"
    ops = _ops(path)
    assert "TRANSPOSE_CONV" not in ops and "DEPTH_TO_SPACE" in ops, ops
    spec = signatures.spec_for(model)
    signature = spec.signatures[0]
    for batch in (1, 5):
        inputs = signature.example_inputs(batch, 3)
        if family == "pix2pix":
            inputs = {"images": np.random.default_rng(batch).uniform(size=(batch, 8, 8, 1)).astype(np.float32)}
        ours = validation.tflite_runner(path, signature.name)(inputs)
        want = signature.reference(**inputs)
        np.testing.assert_allclose(ours["images"], want["images"], atol=1e-5)


def _converted_ops(network, shapes):
    """The TFLite ops of `network` called on inputs of `shapes` (batch left dynamic)."""
    import tensorflow as tf

    specs = [tf.TensorSpec([None, *shape], dtype) for shape, dtype in shapes]
    function = tf.function(lambda *inputs: network(list(inputs), training=False), input_signature=specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=converter.convert())
    return Counter(op["op_name"] for op in interpreter._get_ops_details())


def test_diffusion_unet_stand_ins_equal_keras_with_constant_shapes():
    """Group norms (also the one inside the attention) and nearest upsampling in their
    constant-shape forms: the same outputs, and none of the run-time shape ops (SHAPE -> PACK ->
    RESHAPE, TILE) that cut XNNPACK's graph, which the Keras layers have."""
    from export.xnnpack import DepthToSpaceUpSampling2D, StaticGroupNormalization

    model = kg.models.Diffusion((8, 8, 1), num_classes=3, widths=(8, 16), attention=True, seed=0)
    rng = np.random.default_rng(0)
    network = model.ema_network
    network.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in network.get_weights()])
    rewritten = xnnpack_friendly(network)
    kinds = Counter(type(layer).__name__ for layer in rewritten.layers)
    assert kinds["StaticGroupNormalization"] > 4 and kinds["DepthToSpaceUpSampling2D"] == 1, kinds
    attention = [l for l in rewritten.layers if type(l).__name__ == "SpatialSelfAttention"]
    assert len(attention) == 1 and isinstance(attention[0].norm, StaticGroupNormalization)
    assert not any(isinstance(l, keras.layers.GroupNormalization) for l in rewritten.layers)
    assert DepthToSpaceUpSampling2D.__name__ in kinds
    x = rng.standard_normal((3, 8, 8, 1)).astype(np.float32)
    inputs = [x, np.array([0.1, 0.5, 0.9], np.float32), np.array([0, 2, 3], np.int32)]
    np.testing.assert_allclose(rewritten(inputs), network(inputs), atol=1e-5)
    shapes = [((8, 8, 1), "float32"), ((), "float32"), ((), "int32")]
    dynamic = {"SHAPE", "PACK", "TILE"}
    assert dynamic & set(_converted_ops(network, shapes))  # the control: Keras' layers have them
    assert not dynamic & set(_converted_ops(rewritten, shapes))
