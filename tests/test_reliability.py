"""Reliability: training survives SIGKILL (exact resume, atomic checkpoints), stops cleanly on a
NaN loss, and every bad input gets a clear error.

`python tests/test_reliability.py` rewrites docs/bad_inputs.md from the BAD_INPUTS cases below,
with the exact message each one gives.
"""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

import keras
import tensorflow as tf

import families
import keras_gen as kg
from keras_gen import cli, training

SCRIPT = str(Path(__file__).with_name("_train_script.py"))
# 320 digits in batches of 16: 20 steps an epoch, 40 in the run, a checkpoint every 6 steps.
RUN = ["--model", "dcgan", "--dataset", "digits", "--split", "train[:320]", "--batch-size", "16",
       "--filters", "4", "--latent-dim", "8", "--samples", "4", "--seed", "3", "--verbose", "0",
       "--ema-decay", "0.9", "--epochs", "2", "--checkpoint-every", "6"]


def _script(out, *hooks, extra=(), wait=True):
    cmd = [sys.executable, SCRIPT, *hooks, "--", *RUN, *extra, "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _pointer(out):
    try:
        return json.loads((out / "checkpoints" / "checkpoint.json").read_text())
    except (OSError, ValueError):
        return None


def _wait_for(predicate, proc, timeout=180):
    start = time.time()
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - start < timeout, "timed out"
        time.sleep(0.05)


def _h5_arrays(path):
    arrays = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def _final_state(out):
    pointer = _pointer(out)
    return pointer, _h5_arrays(out / "checkpoints" / pointer["weights"])


def _assert_same_state(a, b):
    (pa, wa), (pb, wb) = a, b
    assert (pa["epoch"], pa["global_step"]) == (pb["epoch"], pb["global_step"]) == (2, 40)
    assert pa["seed_states"] == pb["seed_states"]
    assert wa.keys() == wb.keys()
    # generator, discriminator, EMA generator and both optimisers (moments and iterations)
    for part in ("generator", "discriminator", "ema_generator", "d_optimizer", "g_optimizer"):
        assert any(k.startswith(part + "/") for k in wa), part
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)  # bit for bit


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: 2 epochs, 40 steps."""
    out = tmp_path_factory.mktemp("ref") / "run"
    result = _script(out)
    assert result.returncode == 0, result.stderr[-3000:]
    return _final_state(out)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_exact(reference, tmp_path):
    out = tmp_path / "run"
    proc = _script(out, "--delay", "0.1", wait=False)  # slowed down so the kill lands mid-epoch
    _wait_for(lambda: (_pointer(out) or {}).get("global_step") == 24, proc)
    time.sleep(0.35)  # a few more steps, not yet at the next checkpoint (30)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    pointer = _pointer(out)
    assert pointer["epoch"] == 1 and 0 < pointer["step_in_epoch"] < 20  # inside epoch 2
    assert json.loads((out / "history.json").read_text())["d_loss"].__len__() == 1
    result = _script(out, extra=["--resume"])
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_same_state(_final_state(out), reference)
    assert len(json.loads((out / "history.json").read_text())["d_loss"]) == 2


@pytest.mark.slow
def test_sigkill_during_checkpoint_write_still_resumes(reference, tmp_path):
    out, flag = tmp_path / "run", tmp_path / "paused"
    proc = _script(out, "--pause-in-write", f"30:{flag}", wait=False)
    _wait_for(flag.exists, proc)  # step 30's weights are on disk under a temporary name
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    folder = out / "checkpoints"
    assert list(folder.glob(".tmp-*ckpt-000000030.weights.h5"))  # the half-published write
    assert _pointer(out)["global_step"] == 24  # still names the previous, complete checkpoint
    result = _script(out, extra=["--resume"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(folder.glob(".tmp-*"))  # the stale temporary file was cleaned up
    _assert_same_state(_final_state(out), reference)


@pytest.mark.slow
def test_nan_batch_stops_run_keeps_last_checkpoint_exit_code_3(tmp_path):
    out = tmp_path / "run"
    result = _script(out, "--nan-at-batch", "9")  # the 10th step of epoch 1 sees NaN pixels
    assert result.returncode == 3, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert re.search(r"training diverged: the loss '\w+' became nan at step 10 \(epoch 1, batch 10\)", message), message
    assert "The last good checkpoint (step 6, epoch 1) is kept" in message
    pointer = _pointer(out)
    assert pointer["global_step"] == 6
    weights = _h5_arrays(out / "checkpoints" / pointer["weights"])
    assert all(np.isfinite(w).all() for w in weights.values() if w.dtype.kind == "f")
    assert not (out / "model.keras").exists()  # no NaN model was written


# --------------------------------------------------------------------------------------------
# The library helper, in process


def _tiny_gan(**kwargs):
    model = kg.models.DCGAN((8, 8, 1), latent_dim=8, filters=4, ema_decay=0.9, seed=1, **kwargs)
    model.compile()
    return model


def _digits(epoch):
    return kg.data.load("digits", split="train[:96]", batch_size=16, image_range="tanh",
                        seed=training.epoch_seed(5, epoch))


def test_fit_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    # Killed at step 10 = epoch 2, batch 4; the last checkpoint: step 8.
    resumed, history = families.assert_resume_is_exact(_tiny_gan, _digits, tmp_path)
    assert list(history["d_loss"]).__len__() == 1  # only epoch 2 was left
    assert int(resumed.optimizer.iterations) == 12


def test_fit_without_checkpoint_position_would_differ(tmp_path):
    """The control: restarting epoch 2 from its start (ignoring the saved position) changes the
    result, so the exact test above would catch a resume that lost the data position."""
    reference = _tiny_gan()
    training.fit(reference, _digits, 2, tmp_path / "a", checkpoint_every=4)
    other = _tiny_gan()
    with pytest.raises(KeyboardInterrupt):
        training.fit(other, _digits, 2, tmp_path / "b", checkpoint_every=4, callbacks=[families.KillAt(10)])
    state = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    state["step_in_epoch"] = 0  # forget the position inside epoch 2
    (tmp_path / "b" / "checkpoint.json").write_text(json.dumps(state))
    resumed = _tiny_gan()
    training.fit(resumed, _digits, 2, tmp_path / "b", checkpoint_every=4)
    assert any(not np.array_equal(a, b)
               for a, b in zip(families.training_state(reference), families.training_state(resumed)))


def test_fit_stops_on_inf_loss_and_keeps_checkpoint(tmp_path):
    families.assert_stops_on_non_finite_loss(_tiny_gan(), _digits, tmp_path, value=np.float32("inf"))


def test_atomic_write_keeps_old_file_when_writer_dies(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def dies(path):
        Path(path).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        training.write_atomic(target, dies)
    assert target.read_text() == "old" and not list(tmp_path.glob(".tmp-*"))


def test_epoch_data_depends_only_on_seed_and_epoch():
    first = [b.numpy() for b in _digits(1)]
    again = [b.numpy() for b in _digits(1)]
    other = [b.numpy() for b in _digits(0)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


# --------------------------------------------------------------------------------------------
# Bad inputs: each case returns the error text and asserts it.

BAD_INPUTS = []


def bad_input(what):
    def register(fn):
        BAD_INPUTS.append((fn.__name__, what, fn))
        return fn

    return register


def _cli_error(argv, code=2):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli.main(argv) == code
    return err.getvalue().strip().splitlines()[-1]


def _raises(fn, exc=ValueError):
    with pytest.raises(exc) as info:
        fn()
    return str(info.value)


def _pngs(folder, sizes_modes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (size, mode) in enumerate(sizes_modes):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")
    return folder


def _train(tmp_path, *extra):
    return ["train", "--model", "dcgan", "--filters", "4", "--latent-dim", "8", "--epochs", "1",
            "--batch-size", "4", "--samples", "4", "--verbose", "0", "--seed", "0",
            "--out", str(tmp_path / "run"), *extra]


@pytest.fixture(scope="module")
def saved_gan(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "gan.keras"
    model = kg.models.DCGAN((8, 8, 1), latent_dim=8, filters=4, seed=0)
    model.compile()
    model.save(path)
    return path


@bad_input("unknown data set name")
def unknown_dataset(tmp_path, saved_gan):
    msg = _cli_error(_train(tmp_path, "--dataset", "digitz"))
    assert "unknown data set 'digitz'. Did you mean 'digits'?" in msg
    return msg


@bad_input("empty image folder")
def empty_folder(tmp_path, saved_gan):
    (tmp_path / "empty").mkdir()
    msg = _cli_error(_train(tmp_path, "--dataset", f"folder:{tmp_path / 'empty'}"))
    assert "no images found in" in msg
    return msg


@bad_input("corrupt PNG (bad header)")
def corrupt_png(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L")] * 3)
    (folder / "bad.png").write_bytes(b"\x89PNG not really")
    msg = _cli_error(_train(tmp_path, "--dataset", f"folder:{folder}"))
    assert f"cannot read image {folder / 'bad.png'}" in msg
    return msg


@bad_input("truncated PNG (header fine, fails to decode mid-training)")
def truncated_png(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L")] * 8)
    raw = (folder / "5.png").read_bytes()
    (folder / "5.png").write_bytes(raw[: len(raw) // 2])
    msg = _cli_error(_train(tmp_path, "--dataset", f"folder:{folder}"))
    assert f"cannot read image {folder / '5.png'}: image file is truncated" in msg
    return msg


@bad_input("text file in the image folder")
def text_file_in_folder(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L")] * 2)
    (folder / "notes.txt").write_text("hello")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert kg.data.info(f"folder:{folder}").num_examples == 2  # skipped, training goes on
    messages = [str(w.message) for w in caught if "not images" in str(w.message)]
    assert len(messages) == 1 and "notes.txt" in messages[0]
    return "warning: " + messages[0]


@bad_input("text file in the image folder, strict=True")
def text_file_strict(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L")] * 2)
    (folder / "notes.txt").write_text("hello")
    msg = _raises(lambda: kg.data.load(f"folder:{folder}", strict=True))
    assert "are not images (strict=True)" in msg and "notes.txt" in msg
    return msg


@bad_input("images of mixed sizes")
def mixed_sizes(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L"), (8, "L"), (12, "L")])
    msg = _cli_error(_train(tmp_path, "--dataset", f"folder:{folder}"))
    assert "have different sizes" in msg and "image_size=(height, width)" in msg
    return msg


@bad_input("grey and colour images mixed (converted, not an error)")
def grey_and_colour(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L"), (8, "RGB")])
    batch = next(iter(kg.data.load(f"folder:{folder}", batch_size=2, shuffle=False)))
    assert batch.shape == (2, 8, 8, 3)
    grey = kg.data.load(f"folder:{folder}", batch_size=2, channels=1, shuffle=False)
    assert next(iter(grey)).shape == (2, 8, 8, 1)
    return "no error: converted to 3 channels (RGB), or to channels=1/3 when asked"


@bad_input("wrong channel count asked for")
def wrong_channels(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L")] * 2)
    msg = _raises(lambda: kg.data.load(f"folder:{folder}", channels=2))
    assert "channels must be 1 (grey), 3 (RGB) or None; got 2." in msg
    return msg


@bad_input("data of another image shape than the model")
def wrong_image_shape(tmp_path, saved_gan):
    model = _tiny_gan()
    data = kg.data.load("fashion_mnist_10k", split="train[:8]", batch_size=4, image_range="tanh")
    msg = _raises(lambda: model.fit(data, epochs=1, verbose=0))
    assert "DCGAN expects images of shape (batch, 8, 8, 1); the data gives (batch, 28, 28, 1)" in msg
    return msg


@bad_input("labels out of range for the model's classes")
def labels_out_of_range(tmp_path, saved_gan):
    # XLA-compiled (on a CPU "auto" leaves it off): checked in the input pipeline, since an XLA
    # step has no Assert op.
    model = kg.models.DCGAN((8, 8, 1), latent_dim=8, filters=4, num_classes=3, seed=1)
    model.compile(jit_compile=True)
    assert model.jit_compile is True
    images, labels = np.zeros((4, 8, 8, 1), np.float32), np.array([0, 1, 2, 7], np.int32)
    data = lambda epoch: tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    msg = _raises(lambda: training.fit(model, data, 1, tmp_path / "ckpt"))
    assert "a label in the data is outside 0..2 (the model has num_classes=3)" in msg
    assert msg.endswith("Labels in the batch: 0..7.")
    return msg


@bad_input("npz: file with the wrong keys")
def npz_wrong_keys(tmp_path, saved_gan):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.zeros(4, np.int64))
    msg = _cli_error(_train(tmp_path, "--dataset", f"npz:{tmp_path / 'd.npz'}"))
    assert "has arrays ['images', 'labels']; keras-gen needs an array 'x'" in msg
    return msg


@bad_input("npz: labels of the wrong dtype")
def npz_wrong_dtype(tmp_path, saved_gan):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(4, np.float32))
    msg = _cli_error(_train(tmp_path, "--dataset", f"npz:{tmp_path / 'd.npz'}"))
    assert "'y' must be integer labels of shape (4,); got dtype float32" in msg
    return msg


@bad_input("zero batch size")
def zero_batch_size(tmp_path, saved_gan):
    msg = _cli_error(_train(tmp_path, "--dataset", "digits", "--batch-size", "0"))
    assert "batch_size must be a positive integer; got 0." in msg
    return msg


@bad_input("wrong latent size given to generate")
def wrong_latent_size(tmp_path, saved_gan):
    model = keras.models.load_model(saved_gan)
    msg = _raises(lambda: model.generate(2, z=np.zeros((2, 5))))
    assert msg == "z must have shape (2, 8); got (2, 5)."
    return msg


@bad_input("negative sample count")
def negative_count(tmp_path, saved_gan):
    msg = _cli_error(["sample", "--model", str(saved_gan), "-n", "-3", "--out", str(tmp_path / "a.png")])
    assert "-n must be a positive number of images; got -3." in msg
    return msg


@bad_input("labels for an unconditional model")
def labels_unconditional(tmp_path, saved_gan):
    msg = _cli_error(["sample", "--model", str(saved_gan), "-n", "2", "--labels", "1",
                      "--out", str(tmp_path / "a.png")])
    assert "labels were given, but this model is unconditional" in msg
    return msg


@bad_input("missing model file")
def missing_model(tmp_path, saved_gan):
    msg = _cli_error(["sample", "--model", str(tmp_path / "nope.keras"), "--out", str(tmp_path / "a.png")])
    assert msg.endswith("nope.keras does not exist.")
    return msg


@bad_input("model file of another library (a .pt file)")
def model_other_suffix(tmp_path, saved_gan):
    (tmp_path / "m.pt").write_bytes(b"\x80\x04pickle")
    msg = _cli_error(["sample", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "a.png")])
    assert "--model must be a .keras file saved by keras-gen" in msg
    return msg


@bad_input("random bytes named .keras")
def model_random_bytes(tmp_path, saved_gan):
    (tmp_path / "m.keras").write_bytes(os.urandom(256))
    msg = _cli_error(["sample", "--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "a.png")])
    assert "it is not a Keras .keras file (not a zip archive)" in msg
    return msg


@bad_input("a plain keras.Sequential saved as .keras")
def model_plain_keras(tmp_path, saved_gan):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(tmp_path / "seq.keras")
    msg = _cli_error(["sample", "--model", str(tmp_path / "seq.keras"), "--out", str(tmp_path / "a.png")])
    assert "holds a keras.Sequential model, not a keras-gen generative model" in msg
    return msg


def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for item in a.namelist():
            data = a.read(item)
            if item == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            b.writestr(item, data)


@bad_input("model saved by an incompatible keras-gen version")
def model_other_version(tmp_path, saved_gan):
    _rewrite_config(saved_gan, tmp_path / "v.keras", lambda c: c["config"].update(keras_gen_version="9.0.0"))
    msg = _cli_error(["sample", "--model", str(tmp_path / "v.keras"), "--out", str(tmp_path / "a.png")])
    assert "was saved by keras-gen 9.0.0; this is keras-gen" in msg
    return msg


@bad_input("model of a keras-gen class this version lacks")
def model_unknown_class(tmp_path, saved_gan):
    _rewrite_config(saved_gan, tmp_path / "u.keras", lambda c: c.update(registered_name="keras_gen>GAN9", class_name="GAN9"))
    msg = _cli_error(["sample", "--model", str(tmp_path / "u.keras"), "--out", str(tmp_path / "a.png")])
    assert "holds a keras-gen GAN9, which this keras-gen" in msg
    return msg


@bad_input("sample output file exists")
def sample_output_exists(tmp_path, saved_gan):
    (tmp_path / "a.png").write_bytes(b"mine")
    msg = _cli_error(["sample", "--model", str(saved_gan), "--out", str(tmp_path / "a.png")])
    assert "exists; pass --force to overwrite it." in msg
    assert (tmp_path / "a.png").read_bytes() == b"mine"
    return msg


@bad_input("train output folder exists")
def train_output_exists(tmp_path, saved_gan):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    msg = _cli_error(_train(tmp_path, "--dataset", "digits"))
    assert "exists and is not empty. Continue that run with --resume" in msg
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"
    return msg


@bad_input("--resume with no run to continue")
def resume_nothing(tmp_path, saved_gan):
    msg = _cli_error(_train(tmp_path, "--dataset", "digits", "--resume"))
    assert "--resume: there is no run in" in msg
    return msg


@bad_input("--conditional on a data set without labels")
def conditional_no_labels(tmp_path, saved_gan):
    folder = _pngs(tmp_path / "imgs", [(8, "L")] * 2)
    msg = _cli_error(_train(tmp_path, "--dataset", f"folder:{folder}", "--conditional"))
    assert "has no labels" in msg
    return msg


@bad_input("a NaN/Inf loss in training (the command exits with code 3)")
def nan_loss(tmp_path, saved_gan):
    def data(epoch):  # the 4th batch of every epoch holds NaN pixels
        return _digits(epoch).enumerate().map(lambda i, x: tf.where(i == 3, x * np.float32("nan"), x))

    with pytest.raises(training.TrainingDiverged) as info:
        training.fit(_tiny_gan(), data, 2, tmp_path / "ckpt", checkpoint_every=2)
    msg = str(info.value)
    assert re.search(r"training diverged: the loss '\w+' became nan at step 4 \(epoch 1, batch 4\)\. "
                     r"The last good checkpoint \(step 2, epoch 1\) is kept in ", msg), msg
    return msg


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(case, tmp_path, saved_gan):
    name, _, fn = case
    assert fn(tmp_path, saved_gan)


def test_there_are_at_least_fifteen_bad_inputs():
    assert len(BAD_INPUTS) >= 15


def write_table(path):
    """Runs every case and writes the markdown table with the messages they give."""
    import tempfile

    rows = ["| Bad input | What keras-gen says | Test |", "|---|---|---|"]
    model_dir = Path(tempfile.mkdtemp())
    saved = model_dir / "gan.keras"
    model = kg.models.DCGAN((8, 8, 1), latent_dim=8, filters=4, seed=0)
    model.compile()
    model.save(saved)
    for name, what, fn in BAD_INPUTS:
        tmp = Path(tempfile.mkdtemp())
        msg = fn(tmp, saved).replace(str(tmp), "TMP").replace(str(model_dir), "TMP")
        rows.append(f"| {what} | `{msg.replace('|', '/')}` | `tests/test_reliability.py::test_bad_input[{name}]` |")
    Path(path).write_text(
        "# Bad inputs and what keras-gen says\n\n"
        "Generated by `python tests/test_reliability.py` (each row's test asserts the message; "
        "`keras-gen` errors exit with code 2, a diverged run with code 3). TMP is a temporary "
        "folder.\n\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    write_table(Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md")
