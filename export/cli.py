"""The `export` command: `keras-gen export ...` and `python -m export ...` share this code.

    python -m export --model runs/x/model.keras --out exported/ \
        --formats saved_model,tflite --quantize float16

writes out/saved_model/ and one out/model[.<mode>].tflite per TFLite mode holding every signature
of the model (--separate-files: one file per signature), validates every file against the Keras
model and prints a table (format, file size, max error, PSNR, latency, whether each signature
runs on the LiteRT GPU delegate). Exit status 0 when every file is within tolerance, 1 when one
is not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FORMATS = ("saved_model", "tflite")
QUANTIZE_CHOICES = ("none", "float16", "dynamic", "int8")


def add_parser(subparsers):
    """Adds the `export` sub-command to an argparse sub-parsers object."""
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to SavedModel / TFLite and validate it against Keras",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    return parser


def configure(parser):
    parser.add_argument("--model", default=None, help="a saved keras-gen model (.keras file)")
    parser.add_argument("--preset", default=None,
                        help="a shipped preset (keras-gen info --presets) or a preset folder, "
                             "instead of --model: a validated .tflite without training")
    parser.add_argument("--out", required=True, help="output folder (must be new or empty unless --force)")
    parser.add_argument(
        "--formats", default="saved_model,tflite",
        help="comma-separated subset of saved_model,tflite (default: both)",
    )
    parser.add_argument(
        "--quantize", default="none",
        help="comma-separated TFLite variants among none (float32), float16, dynamic, int8; "
        "e.g. none,float16,dynamic,int8 (default: none)",
    )
    parser.add_argument(
        "--calibration-data", "--representative-data", dest="representative_data", default=None,
        metavar="DATASET",
        help="int8 calibration images for signatures that take images (a translator's inputs, "
        "VAE encode, PixelCNN distribution): a keras_gen.data name such as fashion_mnist_10k "
        "(a translator's pairs with the task it was trained on). Default: the --dataset of the "
        "run whose folder holds --model (its config.json). Latent vectors and noise are drawn "
        "from the model's prior.",
    )
    parser.add_argument("--representative-samples", type=int, default=256, help="int8 calibration examples (default 256)")
    parser.add_argument("--validate-n", type=int, default=64, help="larger validation batch (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation inputs")
    parser.add_argument(
        "--tolerance", action="append", default=[], metavar="MODE=VALUE",
        help="override a validation limit, e.g. dynamic=0.05 (max abs error) or int8=35 (PSNR "
        "floor, dB); defaults: float32 1e-4, float16 and dynamic 1e-2, int8 30 dB",
    )
    parser.add_argument(
        "--separate-files", action="store_true",
        help="one <signature>[.<mode>].tflite per signature instead of one model[.<mode>].tflite",
    )
    parser.add_argument("--no-validate", action="store_true", help="export only")
    parser.add_argument("--force", action="store_true", help="replace existing exported files in --out")
    # Errors start with the command's own name: "keras-gen export: error:" as a sub-command of
    # keras-gen, "python -m export: error:" on its own.
    parser.set_defaults(func=run, prog=parser.prog)
    return parser


def _split(value, choices, flag):
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in choices]
    if not items or bad:
        raise ValueError(f"{flag} takes a comma-separated subset of {','.join(choices)}; got {value!r}.")
    return list(dict.fromkeys(items))


def _calibration_source(args, model_path):
    """(data set name, its run's task and data_dir) for int8 calibration: --calibration-data,
    else the --dataset of the run that wrote `model_path` (the config.json beside it)."""
    if args.representative_data is not None:
        return args.representative_data, {}
    if getattr(args, "preset", None):  # the data the preset was trained on (its metadata)
        from keras_gen.models import base

        saved = json.loads((base.preset_folder(args.preset) / "metadata.json").read_text())
        return saved.get("dataset"), {k: saved[k] for k in ("task",) if saved.get(k)}
    config = Path(model_path).parent / "config.json" if model_path is not None else None
    if config is not None and config.is_file():
        saved = json.loads(config.read_text()).get("args", {})
        if saved.get("dataset"):
            return saved["dataset"], {k: saved[k] for k in ("task", "data_dir") if saved.get(k)}
    return None, {}


def _representative_data(model, args, spec, model_path=None):
    import export

    data = export.prior_samples(model, n=args.representative_samples, seed=args.seed + 1)
    needs_images = [s for s in spec.signatures if not s.prior_inputs]
    source, run = _calibration_source(args, model_path) if needs_images else (None, {})
    if needs_images and source is None:
        raise ValueError(
            f"--quantize int8 needs calibration images for {[s.name for s in needs_images]}: "
            "pass --calibration-data DATASET (or its other name --representative-data; e.g. the "
            "data set the model was trained on), or export a model.keras of a keras-gen run "
            "folder, whose config.json names its data set."
        )
    if needs_images:
        import keras_gen
        from keras_gen import families

        for sig in needs_images:
            # The image input: the first of rank 4 (batch, H, W, C), whatever the family calls it.
            name, image_spec = next((k, v) for k, v in sig.inputs.items() if len(v.shape) == 4)
            conditional = "label" in sig.inputs
            if families.kind_of(model) == families.TRANSLATOR:  # its inputs, in [0, 1]
                pairs = keras_gen.data.load_pairs(
                    source, task=run.get("task", model.task), image_range="unit",
                    batch_size=args.representative_samples, seed=args.seed,
                    data_dir=run.get("data_dir"))
                images = next(iter(pairs))[0]
            else:
                # The range the model trains on (PixelCNN: "levels" or "binary"; VAE: "unit").
                image_range = getattr(model, "data_range", "levels" if image_spec.dtype.is_integer else "unit")
                ds = keras_gen.data.load(
                    source, batch_size=args.representative_samples, image_range=image_range,
                    with_labels=conditional, seed=args.seed, data_dir=run.get("data_dir"),
                )
                batch = next(iter(ds))
                images = batch[0] if conditional else batch
            # The signature's other inputs (noise, a start row, ...) as validation draws them.
            inputs = sig.example_inputs(len(images), args.seed + 1)
            inputs[name] = images.numpy()
            if conditional:
                inputs["label"] = batch[1].numpy()
            data[sig.name] = inputs
    return data


def _error(args, message):
    print(f"{getattr(args, 'prog', 'keras-gen export')}: error: {message}", file=sys.stderr)
    return 2


def run(args):
    """Runs the export command; returns the exit status."""
    try:
        formats = _split(args.formats, FORMATS, "--formats")
        quantize = _split(args.quantize, QUANTIZE_CHOICES, "--quantize")
    except ValueError as e:
        return _error(args, e)
    tolerances = {}
    for item in args.tolerance:
        mode, _, value = item.partition("=")
        try:
            if mode not in ("float32",) + QUANTIZE_CHOICES:
                raise ValueError
            tolerances[mode] = float(value)
        except ValueError:
            return _error(args, f"--tolerance takes MODE=VALUE with MODE in float32,float16,dynamic,int8; got {item!r}.")
    model_path = Path(args.model) if args.model is not None else None
    if model_path is not None and not model_path.is_file():
        return _error(args, f"--model {str(model_path)!r} is not a file; pass a model saved with model.save('x.keras').")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        return _error(args,
            f"--out {str(out)!r} exists and is not empty; choose a new folder or pass --force to "
            "replace the exported files in it."
        )

    import export
    from export.signatures import ExportError, spec_for
    from keras_gen import runs

    try:  # the version-checked loader `keras-gen sample` and `evaluate` use, or a preset
        model = runs.load_model_or_preset(args.model, args.preset)
    except runs.RunError as e:
        return _error(args, e)
    try:
        spec = spec_for(model)
        calibration = (
            _representative_data(model, args, spec, model_path)
            if "tflite" in formats and "int8" in quantize else None
        )
        written = []
        saved = None
        if "saved_model" in formats:
            saved = export.saved_model(model, out / "saved_model", overwrite=args.force)
            written.append(saved)
        if "tflite" in formats:
            for q in quantize:
                q = None if q == "none" else q
                data = calibration if q == "int8" else None
                paths = export.tflite(
                    saved if saved is not None else model, out, quantize=q,
                    representative_data=data, overwrite=args.force,
                    separate_files=args.separate_files,
                )
                written.extend(dict.fromkeys(paths.values()))
    except (ExportError, ValueError, FileExistsError, OSError) as e:
        return _error(args, e)

    print(f"exported {spec.family} ({type(model).__name__}) to {out}:")
    for p in written:
        print(f"  {p}")
    if args.no_validate:
        return 0
    # Signatures that take images are validated on the calibration images, when there are some.
    real = {s.name: calibration[s.name] for s in spec.signatures
            if not s.prior_inputs and calibration and s.name in calibration}
    report = export.validate(
        model, written, n=args.validate_n, seed=args.seed, tolerances=tolerances,
        raise_on_failure=False, inputs=real or None,
    )
    print()
    print(report.summary())
    if not report.passed:
        print("\nFAILED: some exported files differ from the Keras model beyond tolerance.", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    """`python -m export ...`: the same arguments and code as `keras-gen export ...`."""
    parser = argparse.ArgumentParser(
        prog="python -m export", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    args = parser.parse_args(argv)
    return args.func(args)
