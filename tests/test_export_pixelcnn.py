"""export/ for the PixelCNN family: one .tflite file holds distribution(images[, label]),
sample(uniform[, label], temperature) and complete(images, start_row, uniform[, label],
temperature); the exported sampler is the model's cached sampler (TFLite WHILE loops, builtin ops
only) and returns exactly PixelCNN.sample's / complete's images for the same noise."""

import json

import numpy as np
import keras
import pytest
import tensorflow as tf

import export
import keras_gen as kg

pytestmark = pytest.mark.slow  # trains and exports models: the slow tier, still in CI

SIGNATURES = ["complete", "distribution", "sample"]


def _digits(n, seed):
    batch = next(iter(kg.data.load("digits", batch_size=n, image_range="binary", with_labels=True, seed=seed)))
    return batch[0].numpy().astype(np.int32), batch[1].numpy().astype(np.int32)


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
    """SavedModel + one model[.<mode>].tflite per mode, as `keras-gen export` lays them out."""
    out = tmp_path_factory.mktemp("pixelcnn_exported")
    export.saved_model(cpixelcnn, out / "saved_model")
    images, labels = _digits(16, seed=1)
    data = export.prior_samples(cpixelcnn, n=16, seed=1)
    data["distribution"] = {"images": images, "label": labels}
    data["complete"] = {**data["sample"], "images": images, "label": labels, "start_row": 4}
    for quantize in export.QUANTIZE_MODES:
        export.tflite(out / "saved_model", out, quantize=quantize, representative_data=data)
    return out


def _runner(path, signature):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_signature_runner(signature)


def test_one_file_holds_every_signature_and_each_matches_keras(cpixelcnn, exported):
    from ai_edge_litert.interpreter import Interpreter

    assert sorted(p.name for p in exported.glob("*.tflite")) == [
        "model.dynamic.tflite", "model.float16.tflite", "model.int8.tflite", "model.tflite",
    ]
    for f in exported.glob("*.tflite"):
        assert sorted(Interpreter(model_path=str(f)).get_signature_list()) == SIGNATURES
    report = export.validate(cpixelcnn, exported, n=3, repeats=1)
    assert report.passed
    rows = {(r.format, r.signature, r.batch): r for r in report.rows}
    for fmt in ("saved_model", "tflite", "tflite.float16", "tflite.dynamic", "tflite.int8"):
        for signature in SIGNATURES:
            assert (fmt, signature, 1) in rows and (fmt, signature, 3) in rows
    # Float32 sampling and completion are exact: the same levels as the Keras model.
    for fmt in ("saved_model", "tflite"):
        for signature in ("sample", "complete"):
            assert rows[(fmt, signature, 3)].max_abs_error == 0.0
    assert rows[("tflite.int8", "distribution", 3)].psnr >= 30
    assert rows[("tflite.float16", "distribution", 3)].max_abs_error <= 1e-2
    # The table says whether each signature suits the GPU delegate: the sampler's loop does not.
    assert rows[("tflite", "sample", 3)].gpu_delegate["compatible"] is False
    assert "WHILE" in rows[("tflite", "sample", 3)].gpu_delegate["blocking_ops"]
    assert "GPU delegate" in report.table() and "no: " in report.table()


def _check_sampler(model, tflite_path, labels, temperature, known_rows, saved_model=None):
    """sample and complete of the exported file == PixelCNN.sample / complete for the same
    noise, bit for bit; labels and temperature are passed through."""
    n = 3
    expected = model.sample(n, seed=4, labels=labels, temperature=temperature)
    inputs = {"uniform": model.uniform_noise(4, 0, n).numpy(), "temperature": np.float32(temperature)}
    if labels is not None:
        inputs["label"] = labels
    got = _runner(tflite_path, "sample")(**inputs)["images"]
    np.testing.assert_array_equal(got, expected)

    known = np.roll(expected, 1, axis=0)
    completed = model.complete(known, known_rows, seed=5, labels=labels, temperature=temperature)
    inputs.update(
        images=known, start_row=np.int32(known_rows), uniform=model.uniform_noise(5, 0, n).numpy()
    )
    got = _runner(tflite_path, "complete")(**inputs)["images"]
    np.testing.assert_array_equal(got, completed)
    np.testing.assert_array_equal(got[:, :known_rows], known[:, :known_rows])
    if saved_model is not None:
        loaded = tf.saved_model.load(str(saved_model))
        out = loaded.signatures["complete"](**{k: tf.constant(v) for k, v in inputs.items()})
        np.testing.assert_array_equal(out["images"].numpy(), completed)
    return expected


def test_exported_sampler_is_pixelcnn_sample_grey_conditional_gated_categorical(cpixelcnn, exported):
    labels = np.array([0, 7, 7], np.int32)
    expected = _check_sampler(
        cpixelcnn, exported / "model.tflite", labels, 0.7, known_rows=3,
        saved_model=exported / "saved_model",
    )
    # The label is used: same noise, another class, other images.
    other = _runner(exported / "model.tflite", "sample")(
        uniform=cpixelcnn.uniform_noise(4, 0, 3).numpy(), label=np.array([3, 3, 3], np.int32),
        temperature=np.float32(0.7),
    )["images"]
    assert not np.array_equal(other, expected)


def test_exported_sampler_is_pixelcnn_sample_colour_original_logistic_mixture(tmp_path):
    """The residual variant, 3 colour channels drawn in order, mixture parameters (not logits),
    no labels, a temperature above 1."""
    from keras_gen.models.pixelcnn import PixelCNN

    model = PixelCNN(
        (5, 5, 3), levels=16, filters=6, num_layers=2, kernel_size=3, first_kernel_size=3,
        likelihood="logistic_mixture", num_mixtures=2, variant="original", seed=0,
    )
    paths = export.tflite(model, tmp_path / "pixelcnn.tflite")
    assert set(paths) == set(SIGNATURES) and set(paths.values()) == {tmp_path / "pixelcnn.tflite"}
    meta = json.loads((tmp_path / "pixelcnn.json").read_text())
    assert meta["signatures"]["distribution"]["outputs"] == ["mixture_params"]
    _check_sampler(model, tmp_path / "pixelcnn.tflite", None, 1.3, known_rows=2)


def test_metadata(cpixelcnn, exported):
    meta = json.loads((exported / "model.float16.json").read_text())
    assert meta["family"] == "pixelcnn" and meta["levels"] == 2 and meta["num_classes"] == 10
    assert sorted(meta["signatures"]) == SIGNATURES and meta["quantize"] == "float16"
    sample = meta["signatures"]["sample"]
    assert sample["inputs"] == {
        "uniform": {"shape": [None, 8, 8, 1, 2], "dtype": "float32"},
        "label": {"shape": [None], "dtype": "int32"},
        "temperature": {"shape": [], "dtype": "float32"},
    }
    assert sample["outputs"] == ["images"]
    assert sample["gpu_delegate"]["compatible"] is False and "WHILE" in sample["gpu_delegate"]["blocking_ops"]
    complete = meta["signatures"]["complete"]["inputs"]
    assert complete["start_row"] == {"shape": [], "dtype": "int32"}
    assert complete["images"] == {"shape": [None, 8, 8, 1], "dtype": "int32"}
    assert "WHILE" in meta["tflite_ops"] and not any(op.startswith("Flex") for op in meta["tflite_ops"])
    assert "Gumbel" in meta["sampling"] and meta["likelihood"] == "categorical"
    assert meta["signatures"]["distribution"]["outputs"] == ["logits"]
    int8 = json.loads((exported / "model.int8.json").read_text())
    assert int8["calibration_examples"] == {"complete": 16, "distribution": 16, "sample": 16}


def test_distribution_takes_the_label_and_is_the_serving_default(cpixelcnn, exported):
    images = np.random.default_rng(0).integers(0, 2, (2, 8, 8, 1)).astype(np.int32)
    labels = np.array([2, 5], np.int32)
    expected = cpixelcnn.distribution_params(tf.constant(images), labels=tf.constant(labels)).numpy()
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    out = loaded.signatures["serving_default"](images=tf.constant(images), label=tf.constant(labels))
    np.testing.assert_allclose(out["logits"].numpy(), expected, atol=1e-5)
    assert expected.shape == (2, 8, 8, 1, 2)
