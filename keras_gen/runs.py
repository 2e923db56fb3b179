"""Run folders: creating one, resuming one, writing its model and history as it trains, and
loading a keras-gen `.keras` file with a clear error for anything this version cannot read.
`keras-gen train`, `sample`, `evaluate`, `translate` and `export` all use it."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path


class RunError(ValueError):
    """A user error about a run folder or a model file: printed as one line, exit code 2."""

    exit_code = 2


# Arguments of `train` that describe the invocation, not the run: everything else is saved in
# config.json and restored by --resume.
NOT_SETTINGS = ("command", "func", "out", "resume", "force", "verbose", "given")


def settings(args):
    """The run's settings in `args` (an argparse namespace): what config.json keeps."""
    return {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}


def prepare(out, resume=False, force=False):
    """The run folder `out`, made if needed: an existing non-empty folder is an error unless
    `resume` (continue it) or `force` (delete it first)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if resume:
            return out
        if not force:
            raise RunError(
                f"the output folder {out} exists and is not empty. Continue that run with "
                "--resume, choose another --out, or pass --force to delete it and start over."
            )
        shutil.rmtree(out)
    elif resume:
        raise RunError(f"--resume: there is no run in {out} to continue.")
    out.mkdir(parents=True, exist_ok=True)
    return out


def saved_settings(out):
    """The settings config.json of the run in `out` keeps, checked to be resumable exactly."""
    out = Path(out)
    config_path = out / "config.json"
    if not config_path.exists():
        raise RunError(f"--resume: {config_path} is missing, so {out} is not a keras-gen run.")
    if not (out / "checkpoints" / "checkpoint.json").exists() and (out / "model.keras").exists():
        raise RunError(
            f"--resume: {out} has a model but no checkpoints/checkpoint.json (it was written "
            "by an older keras-gen, or its checkpoints were deleted), so it cannot be resumed "
            "exactly. Start a new run with another --out."
        )
    return json.loads(config_path.read_text())["args"]


def resume_settings(args, given, extendable=("epochs",)):
    """Puts the run's saved settings into `args` (the run's own win, except `extendable`) and
    returns the flags of `given` (argument names the user typed) whose value differs from the
    run's and is therefore ignored."""
    saved = saved_settings(args.out)
    ignored = []
    for key, value in saved.items():
        if key in extendable or key in NOT_SETTINGS:
            continue
        if key in given and getattr(args, key, None) != value:
            ignored.append(key)
        setattr(args, key, value)
    return ignored


def write_config(out, config):
    from keras_gen import training

    training.write_atomic(
        Path(out) / "config.json", lambda p: Path(p).write_text(json.dumps(config, indent=2, default=str))
    )


def writer(out, model):
    """A callback writing model.keras and history.json at the end of every epoch, atomically,
    so a kill leaves both whole."""
    import keras

    from keras_gen import distribute, training

    out = Path(out)

    class RunWriter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if not distribute.is_chief():  # every worker saves (it may read synchronised state)
                scratch = out / f".worker-{os.getpid()}"
                scratch.mkdir(exist_ok=True)
                model.save(scratch / "model.keras")
                shutil.rmtree(scratch, ignore_errors=True)
                return
            training.write_atomic(out / "model.keras", model.save)
            path = out / "history.json"
            full = json.loads(path.read_text()) if path.exists() else {}
            for key, value in (logs or {}).items():
                # by epoch index: an epoch trained again after a resume replaces its entry
                full[key] = full.get(key, [])[:epoch] + [float(value)]
            training.write_atomic(path, lambda p: Path(p).write_text(json.dumps(full, indent=1)))

    return RunWriter()


def check_keras_file(path, flag="--model"):
    """Reads the `.keras` archive's own description (JSON, never a pickle) and fails clearly if
    it is not a keras-gen model this version can load."""
    import keras

    import keras_gen

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise RunError(
                    f"{flag}: cannot load {path}: it is a zip archive but not a Keras .keras file (no "
                    "config.json). Pass a model saved by keras-gen train or model.save()."
                )
            config = json.loads(archive.read("config.json"))
            metadata_json = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    except zipfile.BadZipFile:
        raise RunError(
            f"{flag}: cannot load {path}: it is not a Keras .keras file (not a zip archive). Pass a model saved "
            "by keras-gen train or model.save()."
        ) from None
    except (ValueError, KeyError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"{flag}: cannot load {path}: it is a damaged .keras file ({e}).") from None
    saved_keras = str(metadata_json.get("keras_version", ""))
    if saved_keras and saved_keras.split(".")[0] != keras.__version__.split(".")[0]:
        raise RunError(
            f"{flag}: {path} was saved by Keras {saved_keras}; this keras-gen runs on Keras "
            f"{keras.__version__}. Load it with a matching Keras version and re-save it."
        )
    registered = str(config.get("registered_name") or "")
    module = str(config.get("module") or "")
    class_name = config.get("class_name")
    if not registered.startswith("keras_gen>") and not module.startswith("keras_gen"):
        raise RunError(
            f"{flag}: {path} holds a {module + '.' if module else ''}{class_name} model, not a "
            "keras-gen generative model; it must be a trained keras-gen model. Pass a model saved "
            "by keras-gen train or a keras-gen model's save()."
        )
    if keras.saving.get_registered_object(registered) is None:
        raise RunError(
            f"{flag}: {path} holds a keras-gen {class_name}, which this keras-gen "
            f"{keras_gen.__version__} does not have. Use the keras-gen version that saved it."
        )
    saved_version = (config.get("config") or {}).get("keras_gen_version")
    if saved_version and str(saved_version).split(".")[:2] != keras_gen.__version__.split(".")[:2]:
        raise RunError(
            f"{flag}: {path} was saved by keras-gen {saved_version}; this is keras-gen "
            f"{keras_gen.__version__}, which may not read it. Use keras-gen {saved_version}."
        )


def load_model(path, flag="--model"):
    """Loads a keras-gen `.keras` file with safe_mode=True (nothing is ever unpickled), with a
    clear error (naming `flag`) for anything else."""
    import keras

    from keras_gen import families

    path = Path(path)
    if not path.exists():
        raise RunError(f"{flag}: {path} does not exist.")
    if path.is_dir() or path.suffix != ".keras":
        raise RunError(f"{flag} must be a .keras file saved by keras-gen; got {path}.")
    check_keras_file(path, flag)
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as e:
        raise RunError(f"cannot load {path} as a keras-gen model: {e}") from e
    if families.of(model) is None:
        raise RunError(
            f"{path} is a Keras model ({type(model).__name__}), not a keras-gen generative model."
        )
    return model


def load_model_or_preset(model=None, preset=None, flag="--model"):
    """The model a command works on: a keras-gen `.keras` file (`model`, by `load_model`) or a
    preset (`preset`: a shipped name or a preset folder, by `from_preset`), exactly one of them."""
    if (model is None) == (preset is None):
        raise RunError(
            f"give {flag} (a .keras file) or --preset (a shipped preset name or a preset folder; "
            "keras-gen info --presets lists them), exactly one" + ("; got both." if model else ".")
        )
    if model is not None:
        return load_model(model, flag)
    from keras_gen.models import GenerativeModel

    try:
        return GenerativeModel.from_preset(preset)
    except ValueError as e:
        raise RunError(f"--preset: {e}") from None
