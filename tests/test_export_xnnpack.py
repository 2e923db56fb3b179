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
