"""A plain `pip install .` (no extras) into a fresh virtual environment gives a `keras-gen` whose
every sub-command runs offline: info, train, sample, evaluate, export and translate; and every
shipped preset loads and generates.

No `--system-site-packages`: the system's packages would hide a requirement missing from
setup.py. The install itself needs PyPI (minutes); the commands then run without the network
(in a network namespace of their own where `unshare` allows it)."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pypi_reachable():
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def offline_prefix():
    """`unshare -rn` runs a command with no network at all, where the kernel allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


@pytest.fixture(scope="module")
def keras_gen_command(tmp_path_factory):
    if not pypi_reachable():
        pytest.skip("pypi.org is unreachable: the fresh venv cannot install keras-gen's requirements")
    venv = tmp_path_factory.mktemp("venv") / "plain"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # A copy of the tree, so the build leaves nothing (build/, *.egg-info) in the repository;
    # without .ci/run's .venv, gigabytes of TensorFlow the build never reads.
    source = tmp_path_factory.mktemp("src") / "keras-gen"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "runs", ".pytest_cache"))
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
                         capture_output=True, text=True, timeout=1800)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return offline_prefix(), venv / "bin"


# Commands run through the installed `keras_gen.cli.main`, several in one interpreter: starting
# TensorFlow costs 5-10 s a process, and a process per command made this file the slowest of the
# suite. The console script itself runs once per test (`keras-gen info`).
RUNNER = """
import json, sys
from keras_gen.cli import main
for argv in json.loads(sys.argv[1]):
    print("$ keras-gen " + " ".join(argv), flush=True)
    code = main(argv)
    if code:
        sys.exit(f"keras-gen {' '.join(argv)} exited with {code}")
"""


def _environment():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CONFIG")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    return env


def _check(result, what):
    assert result.returncode == 0, f"{what}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def run(installed, *args, cwd):
    """`keras-gen ARGS` through the installed console script, offline."""
    offline, bin_dir = installed
    result = subprocess.run(offline + [str(bin_dir / "keras-gen")] + [str(a) for a in args], cwd=cwd,
                            env=_environment(), capture_output=True, text=True, timeout=900)
    return _check(result, f"keras-gen {' '.join(map(str, args))}")


def run_all(installed, commands, cwd):
    """Each argument list of `commands` through the installed package's `keras_gen.cli.main`, in
    one offline interpreter of the venv."""
    import json

    offline, bin_dir = installed
    argvs = json.dumps([[str(a) for a in argv] for argv in commands])
    result = subprocess.run(offline + [str(bin_dir / "python"), "-c", RUNNER, argvs], cwd=cwd,
                            env=_environment(), capture_output=True, text=True, timeout=1800)
    return _check(result, "keras-gen " + " ; ".join(" ".join(map(str, a)) for a in commands))


@pytest.mark.slow  # a fresh venv from PyPI (minutes), then tiny runs of every sub-command
def test_a_plain_install_runs_every_sub_command_offline(keras_gen_command, tmp_path):
    from PIL import Image

    kg = keras_gen_command
    # Run outside the repository, so `import keras_gen` can only find the installed package.
    info = run(kg, "info", cwd=tmp_path)
    assert "digits" in info and "1797 images" in info and "fashion_mnist_10k" in info

    # 28x28 Fashion-MNIST: the size the bundled FID feature extractor takes.
    tiny_gan = ["--model", "dcgan", "--dataset", "fashion_mnist_10k", "--split", "train[:64]", "--epochs", "1",
                "--batch-size", "32", "--filters", "4", "--latent-dim", "8", "--eval-samples", "0",
                "--samples", "4"]
    gan = tmp_path / "gan" / "model.keras"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).save(tmp_path / "in.png")
    run_all(kg, [
        ["train", *tiny_gan, "--out", tmp_path / "gan"],
        ["sample", "--model", gan, "-n", "4", "--seed", "1", "--out", tmp_path / "s.npy"],
        ["evaluate", "--model", gan, "--dataset", "fashion_mnist_10k", "--split", "train[:64]",
         "--metrics", "fid", "--num-samples", "64", "--out", tmp_path / "eval.json"],
        # export validates every .tflite with ai-edge-litert's interpreter.
        ["export", "--model", gan, "--out", tmp_path / "exported", "--formats", "tflite",
         "--validate-n", "4"],
        ["train", "--model", "pix2pix", "--task", "superres", "--dataset", "digits",
         "--split", "train[:32]", "--epochs", "1", "--batch-size", "16", "--filters", "4",
         "--eval-samples", "0", "--samples", "4", "--out", tmp_path / "p2p"],
        ["translate", "--model", tmp_path / "p2p" / "model.keras", "--input", tmp_path / "in.png",
         "--out", tmp_path / "out.png"],
    ], cwd=tmp_path)
    assert gan.is_file()
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (4, 28, 28, 1) and 0.0 <= samples.min() and samples.max() <= 1.0
    assert "fid" in (tmp_path / "eval.json").read_text()
    assert list((tmp_path / "exported").glob("*.tflite"))
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (8, 8)


@pytest.mark.slow  # the same fresh venv; the presets in one process
def test_every_shipped_preset_loads_offline_and_generates(keras_gen_command, tmp_path):
    """The presets are package data: the plain install lists each one the repository ships and
    samples from it (translates, for a translator) with no network."""
    import json

    from PIL import Image

    kg = keras_gen_command
    shipped = sorted(p.parent.name for p in (ROOT / "keras_gen" / "presets").glob("*/metadata.json"))
    listed = run(kg, "info", "--presets", cwd=tmp_path)
    commands, outputs = [], {}
    for name in shipped:
        assert name in listed
        metadata = json.loads((ROOT / "keras_gen" / "presets" / name / "metadata.json").read_text())
        stored = metadata["samples"]
        if "inputs_file" in stored:  # a translator: its stored inputs, as image files
            inputs = np.load(ROOT / "keras_gen" / "presets" / name / stored["inputs_file"])
            Image.fromarray(np.round(inputs[0, ..., 0] * 255).astype(np.uint8)).save(tmp_path / f"{name}_in.png")
            outputs[name] = tmp_path / f"{name}.png"
            commands.append(["translate", "--preset", name, "--input", tmp_path / f"{name}_in.png",
                             "--out", outputs[name]])
            continue
        extra = ["--prompt", stored["prompts"][0]] if "prompts" in stored else []
        outputs[name] = tmp_path / f"{name}.npy"
        commands.append(["sample", "--preset", name, "-n", "2", *extra, "--out", outputs[name]])
    run_all(kg, commands, cwd=tmp_path)
    for name, out in outputs.items():
        assert out.is_file(), name
        if out.suffix == ".npy":
            samples = np.load(out)
            assert samples.shape[0] == 2 and 0.0 <= samples.min() and samples.max() <= 1.0, name
