"""export/ for the GAN family: SavedModel + TFLite in every quantisation mode match Keras, run in
fresh processes without keras-gen, carry their metadata (GPU-delegate report included), and
refuse bad input."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import keras
import pytest
import tensorflow as tf

import export
import keras_gen as kg
from export import validation as validate_module
from export.signatures import ExportError

REPO = Path(__file__).resolve().parents[1]
LATENT = 8


def _train(model, steps=90):
    data = kg.data.load(
        "digits", batch_size=32, image_range=model.image_range,
        with_labels=model.num_classes is not None, seed=0,
    )
    model.compile(
        d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
    )
    model.fit(data.repeat().take(steps), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def cgan():
    """A conditional DCGAN trained for a few steps on 8x8 digits (about 7k generator weights)."""
    return _train(kg.models.DCGAN((8, 8, 1), latent_dim=LATENT, filters=8, num_classes=10, seed=0))


@pytest.fixture(scope="module")
def exported(cgan, tmp_path_factory):
    """SavedModel + the four TFLite variants (model[.<mode>].tflite) in one folder, as `python -m
    export` lays it out."""
    out = tmp_path_factory.mktemp("exported")
    export.saved_model(cgan, out / "saved_model")
    for quantize in export.QUANTIZE_MODES:
        export.tflite(
            out / "saved_model", out, quantize=quantize,
            representative_data=export.prior_samples(cgan, n=256, seed=1),
        )
    return out


def _fresh_python(code, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # Run from an empty folder so neither keras_gen nor export is importable from the cwd.
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# -- parity -------------------------------------------------------------------------------------


@pytest.mark.slow  # exports and runs every TFLite mode
def test_every_format_matches_keras_within_tolerance(cgan, exported):
    # The check is only meaningful if the generator's images vary: a flat grey output would
    # match whatever the quantisation did.
    z = cgan.latent_vectors(64, 0)
    assert cgan.generate(64, labels=np.arange(64) % 10, z=z).std() > 0.05

    report = export.validate(cgan, exported, n=16, seed=0)
    assert report.passed
    by_format = {(r.format, r.batch): r for r in report.rows}
    expected = {"saved_model", "tflite", "tflite.float16", "tflite.dynamic", "tflite.int8"}
    assert {f for f, _ in by_format} == expected | {"keras"}
    for fmt in expected:
        assert (fmt, 1) in by_format and (fmt, 16) in by_format  # batch 1 and a resized batch
    for batch in (1, 16):
        assert by_format[("saved_model", batch)].max_abs_error <= 1e-5
        assert by_format[("tflite", batch)].max_abs_error <= 1e-4
        assert by_format[("tflite.float16", batch)].max_abs_error <= 1e-2
        assert by_format[("tflite.dynamic", batch)].max_abs_error <= 1e-2
        assert by_format[("tflite.int8", batch)].psnr >= 30.0
        # The quantised files really are quantised: they differ from Keras a little.
        assert by_format[("tflite.int8", batch)].max_abs_error > 1e-4
        assert by_format[("tflite.dynamic", batch)].max_abs_error > 1e-6
    sizes = {f: by_format[(f, 1)].size_bytes for f in expected}
    assert sizes["tflite.float16"] < 0.75 * sizes["tflite"]
    assert sizes["tflite.dynamic"] < 0.75 * sizes["tflite"]
    assert sizes["tflite.int8"] < 0.75 * sizes["tflite"]


def test_validate_fails_for_a_different_model(cgan, exported):
    """Same architecture, other weights: validation must notice."""
    other = kg.models.DCGAN((8, 8, 1), latent_dim=LATENT, filters=8, num_classes=10, seed=5)
    with pytest.raises(export.ValidationError, match="beyond tolerance") as info:
        export.validate(other, exported / "model.tflite", n=4)
    assert not info.value.report.passed


def test_psnr_and_error_formulas():
    ref = np.zeros((2, 2), np.float32)
    out = np.array([[0.1, 0.0], [0.0, 0.0]], np.float32)
    error, psnr = validate_module.compare(ref, out, peak=1.0)
    assert error == pytest.approx(0.1)
    assert psnr == pytest.approx(10 * math.log10(1 / (0.01 / 4)))
    assert validate_module.compare(ref, ref, peak=1.0) == (0.0, math.inf)


def test_label_input_selects_the_class(cgan, exported):
    from ai_edge_litert.interpreter import Interpreter

    z = np.repeat(cgan.latent_vectors(1, 3), 10, axis=0)
    labels = np.arange(10, dtype=np.int32)
    keras_images = cgan.generate(10, labels=labels, z=z)
    runner = Interpreter(model_path=str(exported / "model.tflite")).get_signature_runner("generate")
    for label in range(10):
        out = runner(z=z[:1], label=labels[label : label + 1])["images"]
        np.testing.assert_allclose(out[0], keras_images[label], atol=1e-5)
    loaded = tf.saved_model.load(str(exported / "saved_model"))
    out = loaded.signatures["generate"](z=tf.constant(z), label=tf.constant(labels))["images"]
    np.testing.assert_allclose(out.numpy(), keras_images, atol=1e-6)
    # Same z, different labels: different images (the label is really used).
    assert np.abs(keras_images[0] - keras_images[1]).max() > 1e-2


# -- fresh processes --------------------------------------------------------------------------


def test_saved_model_in_a_fresh_process_without_keras_gen(cgan, exported, tmp_path):
    z = cgan.latent_vectors(5, 7)
    labels = np.array([0, 3, 9, 3, 1], np.int32)
    np.savez(tmp_path / "inputs.npz", z=z, label=labels)
    code = f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        inputs = np.load("inputs.npz")
        loaded = tf.saved_model.load({str(exported / "saved_model")!r})
        assert list(loaded.signatures)[:1] and "serving_default" in loaded.signatures
        for key in ("generate", "serving_default"):
            out = loaded.signatures[key](z=tf.constant(inputs["z"]), label=tf.constant(inputs["label"]))
            np.save(key + ".npy", out["images"].numpy())
        meta = json.loads(loaded.metadata().numpy().decode())
        print(json.dumps({{"meta": meta, "leaked": [m for m in ("keras_gen", "export") if m in sys.modules]}}))
    """
    result = json.loads(_fresh_python(code, tmp_path).strip().splitlines()[-1])
    assert result["leaked"] == []
    assert result["meta"]["family"] == "gan" and result["meta"]["latent_dim"] == LATENT
    expected = cgan.generate(5, labels=labels, z=z)
    for key in ("generate", "serving_default"):
        np.testing.assert_allclose(np.load(tmp_path / f"{key}.npy"), expected, atol=1e-6)


def test_tflite_in_a_fresh_process_with_only_litert_and_numpy(cgan, exported, tmp_path):
    z = cgan.latent_vectors(3, 11)
    labels = np.array([2, 2, 7], np.int32)
    np.savez(tmp_path / "inputs.npz", z=z, label=labels)
    code = f"""
        import sys
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
        inputs = np.load("inputs.npz")
        interpreter = Interpreter(model_path={str(exported / "model.tflite")!r})
        runner = interpreter.get_signature_runner("generate")
        out = runner(z=inputs["z"], label=inputs["label"])["images"]
        np.save("out.npy", out)
        heavy = [m for m in ("tensorflow", "keras", "keras_gen", "export") if m in sys.modules]
        assert not heavy, heavy
    """
    _fresh_python(code, tmp_path)
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), cgan.generate(3, labels=labels, z=z), atol=1e-5
    )


# -- metadata -------------------------------------------------------------------------------


def test_metadata_beside_every_tflite_file_and_in_the_saved_model(cgan, exported):
    for quantize in export.QUANTIZE_MODES:
        name = "model" if quantize is None else f"model.{quantize}"
        meta = json.loads((exported / f"{name}.json").read_text())
        assert meta["family"] == "gan"
        assert meta["model_class"] == "DCGAN"
        assert meta["keras_gen_version"] == kg.__version__
        assert meta["latent_dim"] == LATENT
        assert meta["image_shape"] == [8, 8, 1]
        assert meta["num_classes"] == 10
        assert meta["value_range"] == [0.0, 1.0]
        assert list(meta["signatures"]) == ["generate"]
        assert meta["quantize"] == quantize
        generate = meta["signatures"]["generate"]
        assert generate["inputs"] == {
            "z": {"shape": [None, LATENT], "dtype": "float32"},
            "label": {"shape": [None], "dtype": "int32"},
        }
        assert generate["outputs"] == ["images"]
        assert set(generate["gpu_delegate"]) == {"compatible", "blocking_ops", "reasons"}
        assert not any(op.startswith("Flex") or op == "CUSTOM" for op in meta["tflite_ops"])
        assert meta["calibration_examples"] == ({"generate": 256} if quantize == "int8" else None)
    # A DCGAN generator's layers are ops the GPU delegate implements; with the free batch size
    # only Keras' Reshape, whose target shape is computed at run time, stays on the CPU.
    report = json.loads((exported / "model.json").read_text())["signatures"]["generate"]["gpu_delegate"]
    assert report["compatible"] is False
    assert set(report["blocking_ops"]) <= {"SHAPE", "STRIDED_SLICE", "RESHAPE"}
    assert "run time" in report["reasons"]["RESHAPE"]
    saved = export.read_metadata(exported / "saved_model")
    assert saved["signatures"]["generate"]["inputs"]["z"]["shape"] == [None, LATENT]
    assert saved["family"] == "gan" and saved["num_classes"] == 10


# -- bad input ------------------------------------------------------------------------------


def test_int8_without_representative_data_is_a_clear_error(cgan, tmp_path):
    with pytest.raises(ValueError, match="quantize='int8' needs representative_data"):
        export.tflite(cgan, tmp_path / "out", quantize="int8")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"inputs \['z', 'label'\]"):
        export.tflite(
            cgan, tmp_path / "out", quantize="int8", representative_data=np.zeros((8, LATENT))
        )
    with pytest.raises(ValueError, match="quantize must be one of"):
        export.tflite(cgan, tmp_path / "out", quantize="int4")


def test_existing_outputs_are_not_overwritten(cgan, exported, tmp_path):
    before = (exported / "model.tflite").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.tflite(exported / "saved_model", exported)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.saved_model(cgan, exported / "saved_model")
    assert (exported / "model.tflite").read_bytes() == before

    path = tmp_path / "sm"
    export.saved_model(cgan, path)
    stamp = (path / "saved_model.pb").stat().st_mtime_ns
    export.saved_model(cgan, path, overwrite=True)
    assert (path / "saved_model.pb").stat().st_mtime_ns != stamp
    # A folder of someone else's files is never deleted, even with overwrite=True.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SavedModel"):
        export.saved_model(cgan, other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_a_model_that_is_not_keras_gen_is_refused(tmp_path):
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ExportError, match="keras-gen model.*Sequential"):
        export.saved_model(plain, tmp_path / "x")


def test_non_finite_weights_are_refused(tmp_path):
    gan = kg.models.DCGAN((8, 8, 1), latent_dim=LATENT, filters=8, seed=0)
    kernel = gan.sampling_generator.layers[1].kernel  # the EMA generator export uses
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(ExportError, match="non-finite weights"):
        export.saved_model(gan, tmp_path / "x")
    assert not (tmp_path / "x").exists()


class _Digamma(keras.layers.Layer):
    def call(self, x):
        return tf.math.digamma(x)


def test_ops_without_a_tflite_builtin_are_named(tmp_path):
    z = keras.Input((LATENT,))
    x = _Digamma()(keras.layers.Dense(8 * 8)(z))
    generator = keras.Model(z, keras.layers.Reshape((8, 8, 1))(x))
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    gan = kg.models.GAN(generator, discriminator, LATENT, seed=0)
    with pytest.raises(ExportError, match="TFLite builtins lack: Digamma"):
        export.tflite(gan, tmp_path / "out")


class _ArgMaxMask(keras.layers.Layer):
    """Keeps each image's brightest column only: ARG_MAX, which the GPU delegate lacks."""

    def call(self, x):
        column = tf.argmax(tf.reduce_sum(x, axis=[1, 3]), axis=-1, output_type=tf.int32)
        return x * tf.one_hot(column, x.shape[2])[:, None, :, None]


def _gan_with(layer):
    z = keras.Input((LATENT,))
    x = keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64, activation="sigmoid")(z))
    generator = keras.Model(z, x if layer is None else layer(x))
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    return kg.models.GAN(generator, discriminator, LATENT, image_range="unit", seed=0)


def test_gpu_report_names_the_op_that_blocks_the_delegate(tmp_path):
    reports = {}
    for name, layer in (("plain", None), ("argmax", _ArgMaxMask())):
        gan = _gan_with(layer)
        export.tflite(gan, tmp_path / f"{name}.tflite")
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())["signatures"]["generate"]["gpu_delegate"]
    assert reports["argmax"]["compatible"] is False and "ARG_MAX" in reports["argmax"]["blocking_ops"]
    assert "GPU delegate" in reports["argmax"]["reasons"]["ARG_MAX"]
    assert "ARG_MAX" not in reports["plain"]["blocking_ops"]
    rows = export.validate(gan, tmp_path / "argmax.tflite", n=2, repeats=1).rows
    assert all("ARG_MAX" in r.gpu_delegate["blocking_ops"] for r in rows if r.format == "tflite")
    assert "ARG_MAX" in export.validate(gan, tmp_path / "argmax.tflite", n=2, repeats=1).table()


def test_separate_files_on_request(cgan, tmp_path):
    paths = export.tflite(cgan, tmp_path, separate_files=True, quantize="float16")
    assert paths == {"generate": tmp_path / "generate.float16.tflite"}
    meta = json.loads((tmp_path / "generate.float16.json").read_text())
    assert list(meta["signatures"]) == ["generate"] and meta["quantize"] == "float16"
    assert export.validate(cgan, tmp_path, n=2, repeats=1).passed


# -- other GAN set-ups ------------------------------------------------------------------------


def test_ema_unit_range_generator_exports_the_sampling_network(tmp_path):
    gan = _train(
        kg.models.DCGAN((8, 8, 1), latent_dim=LATENT, filters=8, image_range="unit", ema_decay=0.9, seed=1),
        steps=20,
    )
    export.saved_model(gan, tmp_path / "saved_model")
    export.tflite(tmp_path / "saved_model", tmp_path / "g.tflite")
    report = export.validate(gan, tmp_path, n=8)
    assert isinstance(report, export.ValidationReport)
    assert report.passed
    z = gan.latent_vectors(4, 0)
    runner_out = validate_module.tflite_runner(tmp_path / "g.tflite", "generate")({"z": z})["images"]
    live = keras.ops.convert_to_numpy(gan.generator(z, training=False))
    ema = keras.ops.convert_to_numpy(gan.ema_generator(z, training=False))
    assert np.abs(live - ema).max() > 1e-3  # the two networks differ, so the check means something
    np.testing.assert_allclose(runner_out, ema, atol=1e-5)


# -- command line ---------------------------------------------------------------------------


@pytest.mark.slow  # exports and runs every TFLite mode
def test_cli_exports_validates_and_refuses_to_overwrite(cgan, tmp_path, capsys):
    from export import cli

    model_path = tmp_path / "model.keras"
    cgan.save(model_path)
    out = tmp_path / "exported"
    argv = ["--model", str(model_path), "--out", str(out), "--quantize", "none,float16",
            "--validate-n", "4"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    for fmt in ("saved_model", "tflite.float16"):
        assert fmt in printed
    assert "PSNR" in printed and "ms/image" in printed and "NO" not in printed
    assert "GPU delegate" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "model.float16.json", "model.float16.tflite", "model.json", "model.tflite", "saved_model",
    ]
    stamp = (out / "model.tflite").stat().st_mtime_ns
    assert cli.main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "model.tflite").stat().st_mtime_ns == stamp
    assert cli.main(argv + ["--force", "--no-validate"]) == 0
    assert (out / "model.tflite").stat().st_mtime_ns != stamp
    separate = tmp_path / "separate"
    assert cli.main(argv[:2] + ["--out", str(separate), "--formats", "tflite", "--separate-files", "--no-validate"]) == 0
    assert sorted(p.name for p in separate.iterdir()) == ["generate.json", "generate.tflite"]

    # keras-gen discovers the sub-command through add_parser: the same arguments and code.
    import argparse

    parser = argparse.ArgumentParser(prog="keras-gen")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export"] + argv[:4] + ["--quantize", "int8"])
    assert args.func is cli.run and args.quantize == "int8"


def test_cli_bad_input(tmp_path, capsys):
    from export import cli

    assert cli.main(["--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert cli.main(["--model", "x", "--out", "y", "--formats", "onnx"]) == 2
    assert "--formats takes" in capsys.readouterr().err
    assert cli.main(["--model", "x", "--out", "y", "--tolerance", "int4=3"]) == 2
    assert "--tolerance takes" in capsys.readouterr().err
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    assert cli.main(["--model", str(tmp_path / "plain.keras"), "--out", str(tmp_path / "o")]) == 2
    assert "must be a trained keras-gen model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_command_line_entry_points_load_without_tensorflow():
    """`keras-gen` builds its parser through export.cli.add_parser on every call, so loading it
    must stay cheap; `python -m export --help` shows the export options."""
    code = (
        "import sys, argparse, export.cli\n"
        "assert 'tensorflow' not in sys.modules and 'keras_gen' not in sys.modules\n"
        "p = argparse.ArgumentParser(prog='keras-gen')\n"
        "export.cli.add_parser(p.add_subparsers())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "export", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--model", "--out", "--formats", "--quantize", "--force", "--representative-data"):
        assert flag in result.stdout
