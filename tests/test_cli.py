"""The keras-gen command: train writes a complete run, resumes, refuses to overwrite; sample and
info work; errors are one clear line with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_gen import cli

TINY = ["--model", "dcgan", "--dataset", "digits", "--split", "train[:64]", "--batch-size", "32",
        "--filters", "4", "--latent-dim", "8", "--samples", "4", "--seed", "0", "--verbose", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "x"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


def test_train_writes_model_config_logs_and_samples(run):
    assert (run / "model.keras").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["args"]["dataset"] == "digits" and config["args"]["seed"] == 0
    assert config["model_config"]["latent_dim"] == 8
    assert list((run / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((run / "logs" / "images").glob("events.out.tfevents.*"))
    grid = Image.open(run / "samples" / "epoch_001.png")
    assert grid.size == (2 * 9 + 1, 2 * 9 + 1)  # 4 images of 8x8 in a 2x2 grid, 1 px padding


def test_existing_run_is_not_overwritten(run, capsys):
    before = (run / "model.keras").read_bytes()
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (run / "model.keras").read_bytes() == before


def test_resume_continues_to_more_epochs(run):
    assert cli.main(["train", "--model", "dcgan", "--dataset", "digits", "--epochs", "2",
                     "--out", str(run), "--resume", "--verbose", "0"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert len(history["d_loss"]) == 2  # one epoch per call: the second call ran only epoch 2
    import keras

    assert int(keras.models.load_model(run / "model.keras").optimizer.iterations) == 4  # 2 + 2 steps
    assert (run / "samples" / "epoch_002.png").is_file()
    # the run's own settings were kept (tiny networks, not the command-line defaults)
    assert json.loads((run / "config.json").read_text())["args"]["filters"] == 4


def test_sample_png_and_npy(run, tmp_path):
    assert cli.main(["sample", "--model", str(run / "model.keras"), "-n", "9", "--seed", "1",
                     "--out", str(tmp_path / "g.npy")]) == 0
    images = np.load(tmp_path / "g.npy")
    assert images.shape == (9, 8, 8, 1) and images.min() >= 0 and images.max() <= 1
    import keras

    model = keras.models.load_model(run / "model.keras")
    np.testing.assert_array_equal(images, model.generate(9, seed=1))
    assert cli.main(["sample", "--model", str(run / "model.keras"), "-n", "9", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (28, 28)
    assert cli.main(["sample", "--model", str(run / "model.keras"), "-n", "9", "--out", str(tmp_path / "g.png")]) == 2


def test_command_errors(tmp_path, capsys):
    assert cli.main(["sample", "--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "a.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["train", "--model", "gan9", "--dataset", "digits", "--out", str(tmp_path / "r")]) == 2
    assert "--model must be one of" in capsys.readouterr().err
    assert cli.main(["train", "--model", "dcgan", "--dataset", "digitz", "--out", str(tmp_path / "s")]) == 2
    assert "Did you mean 'digits'" in capsys.readouterr().err
    not_a_model = tmp_path / "m.keras"
    not_a_model.write_bytes(b"PK\x03\x04 not a zip")
    assert cli.main(["sample", "--model", str(not_a_model), "--out", str(tmp_path / "b.png")]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_console_script_info():
    result = subprocess.run([sys.executable, "-m", "keras_gen.cli", "info"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "fashion_mnist_10k" in result.stdout and "dcgan" in result.stdout


def test_train_under_mirrored_strategy(tmp_path):
    out = tmp_path / "m"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(out), "--strategy", "mirrored"]) == 0
    assert json.loads((out / "config.json").read_text())["args"]["strategy"] == "mirrored"
    assert (out / "model.keras").is_file()


def test_evaluate_writes_json(run, tmp_path):
    # An 8x8 model needs an extractor of its own: a tiny feature model saved as .keras.
    import keras

    inputs = keras.Input((8, 8, 1))
    features = keras.layers.Flatten()(inputs)
    keras.Model(inputs, features).save(tmp_path / "features.keras")
    out = tmp_path / "results.json"
    assert cli.main(["evaluate", "--model", str(run / "model.keras"), "--dataset", "digits",
                     "--split", "train[:200]", "--metrics", "fid,kid", "--num-samples", "200",
                     "--extractor", str(tmp_path / "features.keras"), "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert results["fid"] > 0 and "kid" in results
    assert cli.main(["evaluate", "--model", str(run / "model.keras"), "--dataset", "digits",
                     "--metrics", "fid", "--out", str(out)]) == 2  # exists, no --force


@pytest.mark.parametrize("family, extra", [
    ("vae", ["--likelihood", "bernoulli"]),
    ("pixelcnn", ["--levels", "2", "--num-layers", "2"]),
])
def test_train_and_evaluate_other_families(family, extra, tmp_path):
    out = tmp_path / family
    args = ["train", "--model", family, "--dataset", "digits", "--split", "train[:64]", "--batch-size", "32",
            "--filters", "8", "--epochs", "1", "--seed", "0", "--verbose", "0", "--out", str(out), *extra]
    assert cli.main(args) == 0
    assert (out / "model.keras").is_file() and (out / "samples" / "epoch_001.png").is_file()
    assert cli.main(["evaluate", "--model", str(out / "model.keras"), "--dataset", "digits",
                     "--split", "train[:64]", "--out", str(tmp_path / "r.json")]) == 0
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    key = "bits_per_dim" if family == "pixelcnn" else "neg_elbo"
    assert np.isfinite(results[key]) and results[key] > 0


@pytest.mark.slow  # several command runs: the slow tier, still in CI
def test_resume_under_mirrored_strategy(tmp_path):
    out = tmp_path / "mr"
    args = ["train", *TINY, "--out", str(out), "--strategy", "mirrored", "--checkpoint-every", "1"]
    assert cli.main([*args, "--epochs", "1"]) == 0
    assert cli.main(["train", "--model", "dcgan", "--dataset", "digits", "--out", str(out), "--resume",
                     "--epochs", "2", "--verbose", "0"]) == 0
    import keras

    assert int(keras.models.load_model(out / "model.keras").optimizer.iterations) == 4


def test_train_logs_the_family_metric_by_default(tmp_path):
    out = tmp_path / "v"
    assert cli.main(["train", "--model", "vae", "--dataset", "digits", "--split", "train[:64]",
                     "--batch-size", "32", "--filters", "8", "--epochs", "1", "--seed", "0",
                     "--verbose", "0", "--eval-samples", "64", "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert np.isfinite(history["val_neg_elbo"][0]) and history["val_neg_elbo"][0] > 0


def test_gan_run_logs_fid_with_the_shipped_extractor(tmp_path):
    out = tmp_path / "g"
    assert cli.main(["train", "--model", "dcgan", "--dataset", "fashion_mnist_10k", "--split", "train[:64]",
                     "--batch-size", "32", "--filters", "4", "--latent-dim", "8", "--epochs", "1",
                     "--seed", "0", "--verbose", "0", "--eval-samples", "64", "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["val_fid"][0] > 0
