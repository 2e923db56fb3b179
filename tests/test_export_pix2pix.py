"""export/ for the pix2pix family: translate(images in [0, 1]) in SavedModel and every TFLite mode
matches the Keras model (int8 within the 30 dB floor), builtin ops only, metadata says the ranges."""

import json

import numpy as np
import keras
import pytest

import export
import keras_gen as kg

pytestmark = pytest.mark.slow  # trains and exports models: the slow tier, still in CI


@pytest.fixture(scope="module")
def pix2pix():
    """A Pix2Pix with resize upsampling trained for a few steps on 8x8 digit edges."""
    model = kg.models.Pix2Pix((8, 8, 1), filters=8, upsampling="resize", task="edges", seed=0)
    model.compile(g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
                  d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5))
    model.fit(kg.data.load_pairs("digits", task="edges", batch_size=32, seed=0).take(20), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(pix2pix, tmp_path_factory):
    out = tmp_path_factory.mktemp("pix2pix_exported")
    export.saved_model(pix2pix, out / "saved_model")
    calibration = export.prior_samples(pix2pix, n=128, seed=1)  # the training inputs it kept
    for quantize in export.QUANTIZE_MODES:
        export.tflite(out / "saved_model", out, quantize=quantize, representative_data=calibration)
    return out


def test_translate_matches_keras_in_every_format(pix2pix, exported):
    report = export.validate(pix2pix, exported, n=16)
    assert report.passed
    rows = {(r.format, r.batch): r for r in report.rows if r.signature == "translate"}
    for fmt in ("saved_model", "tflite", "tflite.float16", "tflite.dynamic", "tflite.int8"):
        assert (fmt, 1) in rows and (fmt, 16) in rows
    assert rows[("tflite", 16)].max_abs_error <= 1e-4
    assert rows[("tflite.int8", 16)].psnr >= 30
    assert rows[("tflite.int8", 16)].max_abs_error > 1e-4  # really quantised
    # Validation ran on the training inputs the model kept, not on noise.
    inputs = export.prior_samples(pix2pix, n=4)["translate"]["images"]
    assert set(np.unique(inputs)) <= {0.0, 1.0}  # edge maps


def test_exported_file_takes_unit_images_and_needs_only_builtin_ops(pix2pix, exported):
    from ai_edge_litert.interpreter import Interpreter

    meta = json.loads((exported / "model.int8.json").read_text())  # one file per mode, every signature
    assert meta["family"] == "pix2pix" and meta["task"] == "edges"
    assert meta["input_range"] == meta["value_range"] == [0.0, 1.0]
    assert meta["training_image_range"] == "tanh" and meta["input_shape"] == [8, 8, 1]
    assert not any(op.startswith("Flex") for op in meta["tflite_ops"])
    assert "TRANSPOSE_CONV" not in meta["tflite_ops"]  # upsampling="resize"
    interpreter = Interpreter(model_path=str(exported / "model.tflite"))
    run = interpreter.get_signature_runner("translate")
    images = export.prior_samples(pix2pix, n=1)["translate"]["images"]
    out = run(images=images)["images"]
    np.testing.assert_allclose(out, pix2pix.translate(pix2pix.from_unit_range(images)), atol=1e-4)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_an_untrained_model_exports_with_noise_inputs(tmp_path):
    model = kg.models.Pix2Pix((8, 8, 3), output_shape=(8, 8, 3), filters=2, seed=1)
    inputs = export.prior_samples(model, n=3)["translate"]["images"]
    assert inputs.shape == (3, 8, 8, 3) and 0.0 <= inputs.min() and inputs.max() <= 1.0
    export.saved_model(model, tmp_path / "sm")
    assert export.validate(model, tmp_path / "sm", n=4).passed
