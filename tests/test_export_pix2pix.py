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
def real_inputs():
    """Held-out edge maps in [0, 1], the inputs the model is for: int8 calibration and validation
    data, given to export (the model keeps no training inputs)."""
    pairs = kg.data.load_pairs("digits", task="edges", split="train[1000:1128]", batch_size=128,
                               image_range="unit", shuffle=False)
    return {"translate": {"images": next(iter(pairs))[0].numpy()}}


@pytest.fixture(scope="module")
def exported(pix2pix, real_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("pix2pix_exported")
    export.saved_model(pix2pix, out / "saved_model")
    for quantize in export.QUANTIZE_MODES:
        export.tflite(out / "saved_model", out, quantize=quantize, representative_data=real_inputs)
    return out


def test_translate_matches_keras_in_every_format(pix2pix, exported, real_inputs):
    report = export.validate(pix2pix, exported, n=16, inputs=real_inputs)
    assert report.passed
    rows = {(r.format, r.batch): r for r in report.rows if r.signature == "translate"}
    for fmt in ("saved_model", "tflite", "tflite.float16", "tflite.dynamic", "tflite.int8"):
        assert (fmt, 1) in rows and (fmt, 16) in rows
    assert rows[("tflite", 16)].max_abs_error <= 1e-4
    assert rows[("tflite.int8", 16)].psnr >= 30
    assert rows[("tflite.int8", 16)].max_abs_error > 1e-4  # really quantised
    assert set(np.unique(real_inputs["translate"]["images"])) <= {0.0, 1.0}  # edge maps, not noise


def test_exported_file_takes_unit_images_and_needs_only_builtin_ops(pix2pix, exported, real_inputs):
    from ai_edge_litert.interpreter import Interpreter

    meta = json.loads((exported / "model.int8.json").read_text())  # one file per mode, every signature
    assert meta["family"] == "pix2pix" and meta["task"] == "edges"
    assert meta["input_range"] == meta["value_range"] == [0.0, 1.0]
    assert meta["training_image_range"] == "tanh" and meta["input_shape"] == [8, 8, 1]
    assert not any(op.startswith("Flex") for op in meta["tflite_ops"])
    assert "TRANSPOSE_CONV" not in meta["tflite_ops"]  # upsampling="resize"
    interpreter = Interpreter(model_path=str(exported / "model.tflite"))
    run = interpreter.get_signature_runner("translate")
    images = real_inputs["translate"]["images"][:1]
    out = run(images=images)["images"]
    np.testing.assert_allclose(out, pix2pix.translate(images), atol=1e-4)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_a_model_validates_on_noise_and_int8_asks_for_real_images(tmp_path):
    model = kg.models.Pix2Pix((8, 8, 3), output_shape=(8, 8, 3), filters=2, seed=1)
    assert export.prior_samples(model, n=3) == {}  # a translator's inputs are not drawn from a prior
    export.saved_model(model, tmp_path / "sm")
    assert export.validate(model, tmp_path / "sm", n=4).passed  # drawn noise in [0, 1]
    for missing in (None, export.prior_samples(model)):
        with pytest.raises(ValueError, match=r"needs representative_data for signature 'translate'.*"
                                             r"real ones, in \[0, 1\].*load_pairs"):
            export.tflite(model, tmp_path / "out", quantize="int8", representative_data=missing)
