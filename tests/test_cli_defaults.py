"""What a newcomer meets in the command's defaults: evaluate scores the test split where the
data has one (and says which), export's errors carry the command's name."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_gen import cli


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory):
    """train/ of dark 8x8 images, test/ of bright ones: a score tells which split it saw."""
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    for split, level in (("train", 40), ("test", 210)):
        (root / split).mkdir()
        for i in range(32):
            pixels = np.clip(level + rng.integers(-30, 30, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / split / f"{i}.png")
    return root


def evaluate(model, dataset, out, *extra):
    assert cli.main(["evaluate", "--model", str(model), "--dataset", dataset, "--metrics", "elbo",
                     "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_evaluate_uses_the_test_split_where_there_is_one(split_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--model", "vae", "--dataset", f"folder:{split_folder}", "--filters", "4",
                     "--epochs", "1", "--batch-size", "32", "--seed", "0", "--verbose", "0",
                     "--eval-samples", "0", "--samples", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    default = evaluate(run / "model.keras", f"folder:{split_folder}", tmp_path / "d.json")
    assert "evaluating on the test split" in capsys.readouterr().out
    test = evaluate(run / "model.keras", f"folder:{split_folder}", tmp_path / "t.json", "--split", "test")
    train = evaluate(run / "model.keras", f"folder:{split_folder}", tmp_path / "r.json", "--split", "train")
    assert default["split"] == "test" and default["results"] == test["results"]
    assert default["results"]["neg_elbo"] != train["results"]["neg_elbo"]


def test_evaluate_says_when_it_falls_back_to_train(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--model", "vae", "--dataset", "digits", "--split", "train[:32]",
                     "--filters", "4", "--epochs", "1", "--batch-size", "32", "--seed", "0",
                     "--verbose", "0", "--eval-samples", "0", "--samples", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    assert evaluate(run / "model.keras", "digits", tmp_path / "g.json")["split"] == "train"
    assert "train split of digits (it has no test split" in capsys.readouterr().out


def test_export_errors_start_with_the_command_name(tmp_path, capsys):
    assert cli.main(["export", "--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-gen export: error: --model") and "\n" not in err
    from export import cli as export_cli

    assert export_cli.main(["--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "e")]) == 2
    assert capsys.readouterr().err.startswith("python -m export: error: --model")
