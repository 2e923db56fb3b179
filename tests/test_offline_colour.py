"""Training on colour data offline: the InceptionV3 weights of val_fid are missing, so FID is
skipped with one warning before the first step, the run exits 0; OSError is a one-line error."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_gen import callbacks, cli, metrics
from keras_gen.models import DCGAN


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    assert not metrics.inception_v3_weights_path().exists()
    return home


def rgb_folder(root):
    rng = np.random.default_rng(0)
    for colour, name in (((220, 40, 40), "red"), ((40, 40, 220), "blue")):
        (root / name).mkdir(parents=True)
        for i in range(16):
            pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (16, 16, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_dcgan_on_an_rgb_folder_offline_exits_0_with_one_warning(tmp_path, empty_keras_home):
    folder = rgb_folder(tmp_path / "imgs")
    env = {**os.environ, "KERAS_HOME": str(empty_keras_home), "PYTHONPATH": os.getcwd()}
    result = subprocess.run(
        [sys.executable, "-m", "keras_gen.cli", "train", "--model", "dcgan", "--dataset",
         f"folder:{folder}", "--epochs", "1", "--verbose", "0", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "val_fid" in line]
    assert len(warnings) == 1 and warnings[0].startswith("keras-gen train: warning: no val_fid")
    assert str(metrics.inception_v3_weights_path()) in warnings[0]
    assert (tmp_path / "run" / "model.keras").is_file()


def test_evaluate_callback_skips_fid_with_one_warning_before_the_first_step(empty_keras_home):
    model = DCGAN((8, 8, 3), latent_dim=4, filters=4, seed=0)
    model.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 3)).astype(np.float32)
    evaluate = callbacks.Evaluate(x, metrics=["fid"], num_samples=16)
    with pytest.warns(UserWarning, match="no val_fid.*not in the Keras cache") as caught:
        history = model.fit(x, batch_size=32, epochs=2, verbose=0, callbacks=[evaluate])
    assert len([w for w in caught if "val_fid" in str(w.message)]) == 1
    assert "val_fid" not in history.history and len(history.history["d_loss"]) == 2


def test_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--model", "dcgan", "--dataset", "digits", "--split", "train[:32]",
                     "--filters", "4", "--latent-dim", "4", "--epochs", "1", "--verbose", "0",
                     "--eval-samples", "0", "--samples", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    missing = tmp_path / "nowhere" / "classifier.keras"
    assert cli.main(["evaluate", "--model", str(run / "model.keras"), "--dataset", "digits",
                     "--metrics", "fid", "--num-samples", "32", "--extractor", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-gen evaluate: error:") and str(missing) in err and "\n" not in err
    # As a process, after the model and the data were loaded: it ends (no thread left alive keeps
    # it hanging) with the same line and no traceback.
    result = subprocess.run(
        [sys.executable, "-m", "keras_gen.cli", "evaluate", "--model", str(run / "model.keras"),
         "--dataset", "digits", "--metrics", "fid", "--num-samples", "32", "--extractor", str(missing)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == err

