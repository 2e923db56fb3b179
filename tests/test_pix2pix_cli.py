"""The command for pix2pix: train --task (and on a paired source) writes a run with triplet grids
and translation metrics, resumes with both optimisers; translate reads files and folders and never
overwrites without --force; evaluate reports MAE/PSNR/SSIM on held pairs; bad input is one line."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_gen import cli, data

TINY = ["--model", "pix2pix", "--dataset", "digits", "--task", "superres", "--split", "train[:64]",
        "--batch-size", "32", "--filters", "4", "--seed", "0", "--verbose", "0", "--eval-samples", "64"]

pytestmark = pytest.mark.slow  # trains and exports models: the slow tier, still in CI


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "p"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


def test_train_writes_a_run_with_triplets_and_translation_metrics(run):
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["input_shape"] == config["data"]["target_shape"] == [8, 8, 1]
    assert config["data"]["task"] == "superres" and config["args"]["task"] == "superres"
    model = keras.models.load_model(run / "model.keras")
    assert model.task == "superres" and model.filters == 4
    grid = Image.open(run / "samples" / "translations_001.png")
    assert grid.size == (9 * 9 + 1, 3 * 9 + 1)  # 8 triplets of 8x8 images, 3 per row, 1 px padding
    history = json.loads((run / "history.json").read_text())
    assert {"d_loss", "g_loss", "g_adversarial", "l1", "val_mae", "val_psnr", "val_ssim"} <= set(history)
    assert "val_fid" not in history  # no feature extractor for 8x8 images
    events = list((run / "logs" / "images").glob("events.out.tfevents.*"))
    tags = {v.tag for e in events for r in tf.compat.v1.train.summary_iterator(str(e)) for v in r.summary.value}
    assert tags == {"translations"}


def test_resume_restores_both_optimisers(run, tmp_path):
    out = tmp_path / "r"
    assert cli.main(["train", *TINY, "--epochs", "1", "--checkpoint-every", "1", "--out", str(out)]) == 0
    assert cli.main(["train", "--model", "pix2pix", "--dataset", "digits", "--epochs", "2", "--out", str(out),
                     "--resume", "--verbose", "0"]) == 0
    model = keras.models.load_model(out / "model.keras")
    assert int(model.optimizer.iterations) == int(model.d_optimizer.iterations) == 4


def test_translate_files_and_folders_never_overwriting(run, tmp_path, capsys):
    model = keras.models.load_model(run / "model.keras")
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    pixels = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(tmp_path / "in" / f"img{i}.png")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    assert cli.main(["translate", "--model", str(run / "model.keras"), "--input", str(tmp_path / "in"),
                     "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    written = np.asarray(Image.open(tmp_path / "out" / "img1.png"), np.float32) / 255.0
    expected = model.translate(pixels[1][..., None] / 255.0)[..., 0]
    np.testing.assert_allclose(written, expected, atol=0.5 / 255 + 1e-6)
    before = (tmp_path / "out" / "img0.png").read_bytes()
    assert cli.main(["translate", "--model", str(run / "model.keras"), "--input", str(tmp_path / "in"),
                     "--out", str(tmp_path / "out")]) == 2
    assert "3 output file(s) exist" in capsys.readouterr().err
    assert (tmp_path / "out" / "img0.png").read_bytes() == before
    assert cli.main(["translate", "--model", str(run / "model.keras"), "--input", str(tmp_path / "in"),
                     "--out", str(tmp_path / "out"), "--force"]) == 0
    # One file; another size only with --resize.
    Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8)).save(tmp_path / "big.png")
    one = ["translate", "--model", str(run / "model.keras"), "--input", str(tmp_path / "big.png"),
           "--out", str(tmp_path / "one.png")]
    assert cli.main(one) == 2
    assert "big.png is 12x10 (WxH); the model translates 8x8 images" in capsys.readouterr().err
    assert cli.main(one + ["--resize"]) == 0
    assert Image.open(tmp_path / "one.png").size == (8, 8)


def test_evaluate_reports_translation_metrics_on_held_pairs(run, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert cli.main(["evaluate", "--model", str(run / "model.keras"), "--dataset", "digits",
                     "--split", "train[1000:1200]", "--out", str(out)]) == 0  # the model's own task
    assert "no FID" in capsys.readouterr().err
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"mae", "psnr", "ssim", "num_pairs"} and results["num_pairs"] == 200
    model = keras.models.load_model(run / "model.keras")
    pairs = data.load_pairs("digits", task="superres", split="train[1000:1200]", shuffle=False)
    outputs = np.concatenate([model.translate((x.numpy() + 1) / 2) for x, _ in pairs])
    targets = np.concatenate([(y.numpy() + 1) / 2 for _, y in pairs])
    assert results["mae"] == pytest.approx(np.abs(outputs - targets).mean(), rel=1e-5)


def test_train_on_a_paired_source_and_evaluate_it(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "p.npz", a=a, b=np.stack([255 - a] * 3, axis=-1))
    out = tmp_path / "npz_run"
    assert cli.main(["train", "--model", "pix2pix", "--dataset", f"npz:{tmp_path}/p.npz", "--batch-size", "20",
                     "--filters", "4", "--epochs", "1", "--seed", "0", "--verbose", "0", "--eval-samples", "0",
                     "--out", str(out)]) == 0
    model = keras.models.load_model(out / "model.keras")
    assert (model.input_image_shape, model.image_shape, model.task) == ((8, 8, 1), (8, 8, 3), None)
    assert cli.main(["evaluate", "--model", str(out / "model.keras"), "--dataset", f"npz:{tmp_path}/p.npz",
                     "--metrics", "mae,ssim", "--out", str(tmp_path / "e.json")]) == 0
    assert set(json.loads((tmp_path / "e.json").read_text())["results"]) == {"mae", "ssim", "num_pairs"}


def test_bad_input_is_one_clear_line(run, tmp_path, capsys):
    def error(argv):
        assert cli.main(argv) == 2
        return capsys.readouterr().err.strip()

    assert "is a data set of single images, not pairs" in error(
        ["train", "--model", "pix2pix", "--dataset", "digits", "--out", str(tmp_path / "a")])
    assert "--task derives (input, target) pairs" in error(
        ["train", "--model", "dcgan", "--dataset", "digits", "--task", "edges", "--out", str(tmp_path / "b")])
    assert "task must be one of" in error(
        ["train", *TINY, "--task", "edgy", "--out", str(tmp_path / "c")])
    assert "Pix2Pix is a translator: it needs an input" in error(
        ["sample", "--model", str(run / "model.keras"), "--out", str(tmp_path / "s.png")])
    assert "--input: " in error(["translate", "--model", str(run / "model.keras"), "--input",
                                 str(tmp_path / "missing"), "--out", str(tmp_path / "o.png")])
    (tmp_path / "empty").mkdir()
    assert "no images in" in error(["translate", "--model", str(run / "model.keras"), "--input",
                                    str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert "--metrics: unknown ['fidd']" in error(
        ["evaluate", "--model", str(run / "model.keras"), "--dataset", "digits", "--metrics", "fidd"])
    from keras_gen.models import DCGAN

    DCGAN((8, 8, 1), latent_dim=2, filters=2, seed=0).save(tmp_path / "gan.keras")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    assert "generates images instead of translating them: use keras-gen sample" in error(
        ["translate", "--model", str(tmp_path / "gan.keras"), "--input", str(tmp_path / "x.png"),
         "--out", str(tmp_path / "o.png")])


def test_export_int8_calibrates_on_the_runs_dataset_or_the_given_one(run, tmp_path, capsys):
    import argparse

    from export import cli as export_cli
    from export.signatures import spec_for

    model = keras.models.load_model(run / "model.keras")
    args = argparse.Namespace(representative_data=None, representative_samples=24, seed=0)
    # The run's config.json names its data set and task: the inputs of its pairs, in [0, 1].
    from_run = export_cli._representative_data(model, args, spec_for(model), run / "model.keras")
    expected = next(iter(data.load_pairs("digits", task="superres", image_range="unit",
                                          batch_size=24, seed=0)))[0].numpy()
    np.testing.assert_array_equal(from_run["translate"]["images"], expected)
    # Given with --calibration-data, with the task the model was trained on.
    args.representative_data = "digits"
    given = export_cli._representative_data(model, args, spec_for(model), tmp_path / "x.keras")
    np.testing.assert_array_equal(given["translate"]["images"], expected)
    # Outside a run folder and without the flag: an error that says what to pass.
    model.save(tmp_path / "alone.keras")
    argv = ["export", "--model", str(tmp_path / "alone.keras"), "--out", str(tmp_path / "o"),
            "--formats", "tflite", "--quantize", "int8"]
    assert cli.main(argv) == 2
    assert "--calibration-data DATASET" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(run / "model.keras"), "--out", str(tmp_path / "e"),
                     "--formats", "tflite", "--quantize", "int8"]) == 0
    meta = json.loads((tmp_path / "e" / "model.int8.json").read_text())
    assert meta["calibration_examples"] == {"translate": 256}
