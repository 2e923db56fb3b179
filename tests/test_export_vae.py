"""export/ for the VAE family: decode(z[, label]) and encode(images[, label]) in SavedModel and
every TFLite mode match the Keras model."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import keras
import pytest
import tensorflow as tf

import export
import keras_gen as kg

pytestmark = pytest.mark.slow  # trains and exports models: the slow tier, still in CI

LATENT = 4


def _digits(n, seed):
    batch = next(iter(kg.data.load("digits", batch_size=n, image_range="unit", with_labels=True, seed=seed)))
    return batch[0].numpy(), batch[1].numpy()


@pytest.fixture(scope="module")
def cvae():
    """A conditional convolutional VAE trained for a few steps on 8x8 digits."""
    from keras_gen.models.vae import ConvVAE

    vae = ConvVAE(
        (8, 8, 1), latent_dim=LATENT, filters=8, num_classes=10, likelihood="gaussian",
        observation_variance=0.05, seed=0,
    )
    data = kg.data.load("digits", batch_size=32, image_range="unit", with_labels=True, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(data.repeat().take(60), epochs=1, verbose=0)
    return vae


@pytest.fixture(scope="module")
def exported(cvae, tmp_path_factory):
    out = tmp_path_factory.mktemp("vae_exported")
    export.saved_model(cvae, out / "saved_model")
    images, labels = _digits(256, seed=1)
    data = export.prior_samples(cvae, n=256, seed=1)
    data["encode"] = {"images": images, "label": labels}
    for quantize in export.QUANTIZE_MODES:
        export.tflite(out / "saved_model", out, quantize=quantize, representative_data=data)
    return out


def test_decode_and_encode_match_keras_in_every_format(cvae, exported):
    z = cvae.latent_vectors(16, 0)
    assert cvae.generate(16, labels=np.arange(16) % 10, z=z).std() > 0.05  # not a flat output
    report = export.validate(cvae, exported, n=8)
    assert report.passed
    rows = {(r.format, r.signature, r.batch): r for r in report.rows}
    for fmt in ("saved_model", "tflite", "tflite.float16", "tflite.dynamic", "tflite.int8"):
        for signature in ("decode", "encode"):
            assert (fmt, signature, 1) in rows and (fmt, signature, 8) in rows
    assert rows[("tflite", "decode", 8)].max_abs_error <= 1e-4
    assert rows[("tflite", "encode", 8)].max_abs_error <= 1e-4
    assert rows[("tflite.int8", "decode", 8)].psnr >= 30
    assert rows[("tflite.int8", "decode", 8)].max_abs_error > 1e-4  # really quantised
    assert sorted(p.name for p in exported.glob("*.tflite")) == sorted(
        f"model{q}.tflite" for q in ("", ".float16", ".dynamic", ".int8")
    )


def test_exported_decoder_and_encoder_take_the_label(cvae, exported):
    from ai_edge_litert.interpreter import Interpreter

    z = np.repeat(cvae.latent_vectors(1, 5), 3, axis=0)
    labels = np.array([1, 4, 7], np.int32)
    expected = cvae.generate(3, labels=labels, z=z)
    decode = Interpreter(model_path=str(exported / "model.tflite")).get_signature_runner("decode")
    np.testing.assert_allclose(decode(z=z, label=labels)["images"], expected, atol=1e-5)
    assert np.abs(expected[0] - expected[1]).max() > 1e-2

    images, _ = _digits(3, seed=2)
    mean, logvar = (t.numpy() for t in cvae.encode(images, labels))
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    out = loaded.signatures["encode"](images=tf.constant(images), label=tf.constant(labels))
    np.testing.assert_allclose(out["mean"].numpy(), mean, atol=1e-5)
    np.testing.assert_allclose(out["logvar"].numpy(), logvar, atol=1e-5)
    # The first signature is the serving default.
    default = loaded.signatures["serving_default"](z=tf.constant(z), label=tf.constant(labels))
    np.testing.assert_allclose(default["images"].numpy(), expected, atol=1e-6)


def test_saved_model_in_a_fresh_process_without_keras_gen(cvae, exported, tmp_path):
    z = cvae.latent_vectors(4, 9)
    labels = np.array([0, 1, 2, 3], np.int32)
    np.savez(tmp_path / "inputs.npz", z=z, label=labels)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        inputs = np.load("inputs.npz")
        loaded = tf.saved_model.load({str(exported / "saved_model")!r})
        out = loaded.signatures["decode"](z=tf.constant(inputs["z"]), label=tf.constant(inputs["label"]))
        np.save("decoded.npy", out["images"].numpy())
        assert "keras_gen" not in sys.modules and "export" not in sys.modules
        print(json.loads(loaded.metadata().numpy().decode())["family"])
    """))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "vae"
    np.testing.assert_allclose(
        np.load(tmp_path / "decoded.npy"), cvae.generate(4, labels=labels, z=z), atol=1e-6
    )


def test_metadata(cvae, exported):
    meta = json.loads((exported / "model.int8.json").read_text())
    assert meta["family"] == "vae" and meta["model_class"] == "ConvVAE"
    assert meta["latent_dim"] == LATENT and meta["num_classes"] == 10
    assert meta["image_shape"] == [8, 8, 1] and meta["likelihood"] == "gaussian"
    assert sorted(meta["signatures"]) == ["decode", "encode"]
    encode = meta["signatures"]["encode"]
    assert encode["outputs"] == ["mean", "logvar"]
    assert encode["inputs"]["images"] == {"shape": [None, 8, 8, 1], "dtype": "float32"}
    assert meta["quantize"] == "int8" and meta["calibration_examples"] == {"decode": 256, "encode": 256}
    saved = export.read_metadata(exported / "saved_model")
    assert list(saved["signatures"]) == ["decode", "encode"]


def test_int8_needs_images_for_the_encoder(cvae, tmp_path):
    with pytest.raises(ValueError, match="no entry for signature 'encode'"):
        export.tflite(
            cvae, tmp_path / "out", quantize="int8",
            representative_data=export.prior_samples(cvae, n=16),
        )
    assert not (tmp_path / "out").exists()


def test_cli_int8_calibrates_the_encoder_on_a_named_data_set(cvae, tmp_path, capsys):
    import argparse

    from export import cli
    from export.signatures import spec_for

    cvae.save(tmp_path / "vae.keras")
    argv = ["--model", str(tmp_path / "vae.keras"), "--out", str(tmp_path / "o"), "--quantize", "int8"]
    assert cli.main(argv) == 2
    assert "--representative-data" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

    args = argparse.Namespace(representative_data="digits", representative_samples=24, seed=0)
    data = cli._representative_data(cvae, args, spec_for(cvae))
    assert data["decode"]["z"].shape == (24, LATENT) and data["decode"]["label"].shape == (24,)
    images = data["encode"]["images"]
    assert images.shape == (24, 8, 8, 1) and images.min() >= 0.0 and images.max() <= 1.0
    assert images.max() > 0.5 and data["encode"]["label"].dtype == np.int32
