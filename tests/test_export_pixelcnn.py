"""export/ for the PixelCNN family: distribution(images[, label]) in every format matches Keras;
sample(uniform[, label]) runs the whole autoregressive loop in one graph (TFLite WHILE) and gives
exactly PixelCNN.sample's images for the same noise."""

import json
from pathlib import Path

import numpy as np
import keras
import pytest
import tensorflow as tf

import export
import keras_gen as kg

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (REPO / "keras_gen" / "models" / "pixelcnn.py").exists(),
    reason="the PixelCNN family (keras_gen/models/pixelcnn.py) does not exist yet",
)


@pytest.fixture(scope="module")
def cpixelcnn():
    """A class-conditional gated PixelCNN on binarised 8x8 digits, a few training steps."""
    from keras_gen.models.pixelcnn import PixelCNN

    model = PixelCNN(
        (8, 8, 1), levels=2, filters=8, num_layers=2, kernel_size=3, first_kernel_size=3,
        num_classes=10, seed=0,
    )
    data = kg.data.load("digits", batch_size=32, image_range="binary", with_labels=True, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(data.repeat().take(40), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(cpixelcnn, tmp_path_factory):
    out = tmp_path_factory.mktemp("pixelcnn_exported")
    export.saved_model(cpixelcnn, out / "saved_model")
    batch = next(iter(kg.data.load("digits", batch_size=128, image_range="binary", with_labels=True, seed=1)))
    data = export.prior_samples(cpixelcnn, n=16, seed=1)
    data["distribution"] = {"images": batch[0].numpy().astype(np.int32), "label": batch[1].numpy()}
    for quantize in export.QUANTIZE_MODES:
        export.tflite(out / "saved_model", out, quantize=quantize, representative_data=data)
    return out


def test_every_format_matches_keras(cpixelcnn, exported):
    report = export.validate(cpixelcnn, exported, n=3, repeats=2)
    assert report.passed
    rows = {(r.format, r.signature, r.batch): r for r in report.rows}
    for fmt in ("saved_model", "tflite", "tflite.float16", "tflite.dynamic", "tflite.int8"):
        assert (fmt, "distribution", 1) in rows and (fmt, "distribution", 3) in rows
        assert (fmt, "sample", 1) in rows and (fmt, "sample", 3) in rows
    # Float32 sampling is exact: the same levels as the Keras model for the same noise.
    for fmt in ("saved_model", "tflite"):
        assert rows[(fmt, "sample", 3)].max_abs_error == 0.0
    assert rows[("tflite.int8", "distribution", 3)].psnr >= 30
    assert rows[("tflite.float16", "distribution", 3)].max_abs_error <= 1e-2


def test_exported_sampler_reproduces_pixelcnn_sample(cpixelcnn, exported):
    """sample(model.uniform_noise(seed, 0, n), labels) == PixelCNN.sample(n, seed, labels)."""
    from ai_edge_litert.interpreter import Interpreter

    labels = np.array([0, 7, 7], np.int32)
    expected = cpixelcnn.sample(3, seed=4, labels=labels)
    uniform = cpixelcnn.uniform_noise(4, 0, 3).numpy()
    runner = Interpreter(model_path=str(exported / "sample.tflite")).get_signature_runner("sample")
    np.testing.assert_array_equal(runner(uniform=uniform, label=labels)["images"], expected)
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    out = loaded.signatures["sample"](uniform=tf.constant(uniform), label=tf.constant(labels))
    np.testing.assert_array_equal(out["images"].numpy(), expected)
    # The label is used: same noise, another class, other images.
    other = runner(uniform=uniform, label=np.array([3, 3, 3], np.int32))["images"]
    assert not np.array_equal(other, expected)


def test_distribution_takes_the_label_and_is_the_serving_default(cpixelcnn, exported):
    images = np.random.default_rng(0).integers(0, 2, (2, 8, 8, 1)).astype(np.int32)
    labels = np.array([2, 5], np.int32)
    expected = cpixelcnn.distribution_params(tf.constant(images), labels=tf.constant(labels)).numpy()
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    out = loaded.signatures["serving_default"](images=tf.constant(images), label=tf.constant(labels))
    np.testing.assert_allclose(out["logits"].numpy(), expected, atol=1e-5)
    assert expected.shape == (2, 8, 8, 1, 2)


def test_metadata(cpixelcnn, exported):
    meta = json.loads((exported / "sample.float16.json").read_text())
    assert meta["family"] == "pixelcnn" and meta["levels"] == 2 and meta["num_classes"] == 10
    assert meta["inputs"]["uniform"] == {"shape": [None, 8, 8, 1, 2], "dtype": "float32"}
    assert meta["outputs"] == ["images"] and "WHILE" in meta["tflite_ops"]
    assert "Gumbel" in meta["sampling"] and meta["likelihood"] == "categorical"
    dist = json.loads((exported / "distribution.json").read_text())
    assert dist["inputs"]["images"] == {"shape": [None, 8, 8, 1], "dtype": "int32"}
    assert dist["outputs"] == ["logits"]


def test_logistic_mixture_original_variant_exports_with_builtin_ops(tmp_path):
    """Mixture parameters (not logits) and the residual variant: the sampler keeps every
    tensor at rank <= 4 in the loop, which TFLite's kernels need; float32 sampling is exact."""
    from keras_gen.models.pixelcnn import PixelCNN

    model = PixelCNN(
        (8, 8, 1), levels=256, filters=8, num_layers=1, kernel_size=3, first_kernel_size=3,
        likelihood="logistic_mixture", num_mixtures=2, variant="original", seed=0,
    )
    export.saved_model(model, tmp_path / "saved_model")
    paths = export.tflite(tmp_path / "saved_model", tmp_path)
    assert sorted(paths) == ["distribution", "sample"]
    meta = json.loads((tmp_path / "distribution.json").read_text())
    assert meta["outputs"] == ["mixture_params"] and meta["likelihood"] == "logistic_mixture"
    report = export.validate(model, tmp_path, n=2, repeats=1)
    assert report.passed
    assert all(r.max_abs_error == 0.0 for r in report.rows if r.signature == "sample")
