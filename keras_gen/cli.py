"""The `keras-gen` command: train, sample, info. A thin layer over the public library.

Extra sub-commands (such as `keras-gen export` from the top-level `export` package) plug in
through the entry-point group "keras_gen.cli", so the library never imports them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the command's output readable


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


# --------------------------------------------------------------------------------------------
# Families: how the command builds, compiles and feeds each model.


def _build_dcgan(args, info):
    from keras_gen.models import DCGAN

    return DCGAN(
        info.image_shape,
        latent_dim=args.latent_dim or 100,
        num_classes=info.num_classes if args.conditional else None,
        loss=args.loss or "non_saturating",
        filters=args.filters or 64,
        ema_decay=args.ema_decay,
        seed=args.seed,
    )


def _compile_dcgan(model, args):
    import keras

    kwargs = {}
    defaults = model._default_optimizer().get_config()
    if args.d_lr or args.lr:
        kwargs["d_optimizer"] = keras.optimizers.Adam.from_config(
            {**defaults, "learning_rate": args.d_lr or args.lr}
        )
    if args.g_lr or args.lr:
        kwargs["g_optimizer"] = keras.optimizers.Adam.from_config(
            {**defaults, "learning_rate": args.g_lr or args.lr}
        )
    model.compile(jit_compile=args.jit_compile, steps_per_execution=args.steps_per_execution, **kwargs)


FAMILIES = {
    "dcgan": {"build": _build_dcgan, "compile": _compile_dcgan, "image_range": lambda args: "tanh"},
}


# --------------------------------------------------------------------------------------------
# train


def _prepare_out_dir(out, resume, force):
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if resume:
            return out
        if not force:
            raise CommandError(
                f"the output folder {out} exists and is not empty. Continue that run with "
                "--resume, choose another --out, or pass --force to delete it and start over."
            )
        shutil.rmtree(out)
    elif resume:
        raise CommandError(f"--resume: there is no run in {out} to continue.")
    out.mkdir(parents=True, exist_ok=True)
    return out


TRAIN_SETTINGS = (
    "model", "dataset", "epochs", "batch_size", "lr", "d_lr", "g_lr", "loss", "latent_dim",
    "filters", "seed", "conditional", "ema_decay", "samples", "jit_compile",
    "steps_per_execution", "data_dir", "split", "strategy",
)


def cmd_train(args):
    out = _prepare_out_dir(args.out, args.resume, args.force)
    config_path = out / "config.json"
    if args.resume:
        if not config_path.exists():
            raise CommandError(f"--resume: {config_path} is missing, so {out} is not a keras-gen run.")
        saved = json.loads(config_path.read_text())
        for key in TRAIN_SETTINGS:  # the run's own settings win; --epochs may extend it
            if key != "epochs" and key in saved["args"]:
                setattr(args, key, saved["args"][key])
    if args.model not in FAMILIES:
        raise CommandError(
            f"--model must be one of {', '.join(sorted(FAMILIES))}; got {args.model!r}."
        )
    if args.seed is None:
        import numpy as np

        args.seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))

    import keras

    import keras_gen
    from keras_gen import callbacks as kg_callbacks
    from keras_gen import data as kg_data

    family = FAMILIES[args.model]
    info = kg_data.info(args.dataset, split=args.split, data_dir=args.data_dir)
    if args.conditional and not info.num_classes:
        raise CommandError(f"--conditional: the data set {args.dataset!r} has no labels.")
    dataset = kg_data.load(
        args.dataset, split=args.split, batch_size=args.batch_size,
        image_range=family["image_range"](args), with_labels=bool(args.conditional),
        seed=args.seed, data_dir=args.data_dir,
    )
    from keras_gen import distribute

    strategy = distribute.get_strategy(args.strategy)
    with strategy.scope():
        model = family["build"](args, info)
        family["compile"](model, args)
    if not args.resume:
        config = {
            "args": {k: getattr(args, k) for k in TRAIN_SETTINGS},
            "data": {"image_shape": list(info.image_shape), "num_classes": info.num_classes,
                     "num_examples": info.num_examples},
            "model_config": model.get_config(),
            "versions": {"keras_gen": keras_gen.__version__, "keras": keras.__version__,
                         "tensorflow": _version("tensorflow")},
            "command": " ".join(sys.argv),
        }
        config_path.write_text(json.dumps(config, indent=2, default=str))
    callbacks = [
        # Kept after the run ends too, so --resume can also extend a finished run.
        keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
        keras.callbacks.TensorBoard(str(out / "logs")),
        kg_callbacks.SampleGrid(
            log_dir=str(out / "logs"), png_dir=str(out / "samples"), n=args.samples, seed=args.seed
        ),
        keras.callbacks.ModelCheckpoint(str(out / "model.keras")),
        keras.callbacks.TerminateOnNaN(),
    ]
    start = time.time()
    history = model.fit(dataset, epochs=args.epochs, callbacks=callbacks, verbose=args.verbose)
    model.save(out / "model.keras")
    elapsed = time.time() - start
    summary = {k: float(v[-1]) for k, v in history.history.items()}
    history_path = out / "history.json"
    full = json.loads(history_path.read_text()) if history_path.exists() else {}
    for key, values in history.history.items():
        full.setdefault(key, []).extend(float(v) for v in values)
    history_path.write_text(json.dumps(full, indent=1))
    print(f"trained {args.model} on {args.dataset} for {args.epochs} epochs in {elapsed:.0f} s: "
          + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()))
    print(f"model: {out / 'model.keras'}  samples: {out / 'samples'}  "
          f"TensorBoard: tensorboard --logdir {out / 'logs'}")
    return 0


# --------------------------------------------------------------------------------------------
# sample


def load_model(path):
    """Loads a keras-gen `.keras` file (safe_mode stays on), with a clear error otherwise."""
    import keras

    import keras_gen  # noqa: F401  (registers the model classes)

    path = Path(path)
    if not path.exists():
        raise CommandError(f"--model: {path} does not exist.")
    if path.suffix != ".keras":
        raise CommandError(f"--model must be a .keras file saved by keras-gen; got {path}.")
    try:
        model = keras.models.load_model(path)
    except Exception as e:
        raise CommandError(f"cannot load {path} as a keras-gen model: {e}") from e
    if not hasattr(model, "generate"):
        raise CommandError(
            f"{path} is a Keras model ({type(model).__name__}), not a keras-gen generative model."
        )
    return model


def cmd_sample(args):
    import numpy as np

    from keras_gen.callbacks import save_grid

    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise CommandError(f"--out must end in .png or .npy; got {out}.")
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists; pass --force to overwrite it.")
    if args.n <= 0:
        raise CommandError(f"-n must be a positive number of images; got {args.n}.")
    model = load_model(args.model)
    labels = None
    if args.labels is not None:
        try:
            labels = [int(v) for v in args.labels.split(",")]
        except ValueError:
            raise CommandError(f"--labels must be comma-separated integers; got {args.labels!r}.") from None
        if len(labels) == 1:
            labels = labels * args.n
        elif len(labels) != args.n:
            raise CommandError(f"--labels gives {len(labels)} labels for -n {args.n} images.")
    elif getattr(model, "num_classes", None):
        labels = list(np.arange(args.n) % model.num_classes)
    try:
        images = model.generate(args.n, seed=args.seed, labels=labels)
    except ValueError as e:
        raise CommandError(str(e)) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        save_grid(out, images)
    print(f"wrote {args.n} images to {out}")
    return 0


# --------------------------------------------------------------------------------------------
# info


def cmd_info(args):
    from keras_gen import data as kg_data

    print("keras-gen models (keras-gen train --model NAME):")
    for name in sorted(FAMILIES):
        print(f"  {name}")
    print("\nbundled data sets:")
    for name in kg_data.BUNDLED:
        i = kg_data.info(name)
        print(f"  {name:20s} {'x'.join(map(str, i.image_shape)):10s} {i.num_examples:6d} images, "
              f"{i.num_classes} classes")
    print("\nother sources:")
    print("  folder:PATH          a folder of images, one sub-folder per class")
    print("  npz:PATH             a .npz file with arrays x (images) and optional y (labels)")
    print("  idx:PATH             MNIST-format IDX files, e.g. idx:/usr/share/datasets/fashion-mnist")
    print("  any TFDS image data set name (mnist, fashion_mnist, cifar10, celeb_a, ...), prepared")
    print("  in its TFDS data directory (--data-dir)")
    return 0


# --------------------------------------------------------------------------------------------


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _jit(value):
    return {"auto": "auto", "on": True, "off": False}[value]


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-gen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model with model.fit")
    train.add_argument("--model", required=True, help="model family: " + ", ".join(sorted(FAMILIES)))
    train.add_argument("--dataset", required=True, help="data set name (see keras-gen info)")
    train.add_argument("--split", default="train")
    train.add_argument("--data-dir", default=None, help="TFDS data directory")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=None, help="learning rate (all optimisers)")
    train.add_argument("--d-lr", type=float, default=None, help="GAN discriminator learning rate")
    train.add_argument("--g-lr", type=float, default=None, help="GAN generator learning rate")
    train.add_argument("--loss", default=None, help="GAN loss: non_saturating, minimax, wasserstein_gp, hinge")
    train.add_argument("--latent-dim", type=int, default=None)
    train.add_argument("--filters", type=int, default=None, help="base width of the networks")
    train.add_argument("--ema-decay", type=float, default=None, help="GAN: EMA of generator weights, e.g. 0.999")
    train.add_argument("--conditional", action="store_true", help="condition on the class labels")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--samples", type=int, default=64, help="images in each sample grid")
    train.add_argument("--jit-compile", type=_jit, default="auto", choices=["auto", True, False],
                       metavar="{auto,on,off}", help="XLA compilation of the train step")
    train.add_argument("--steps-per-execution", type=int, default=1)
    train.add_argument("--strategy", default="auto",
                       choices=["auto", "default", "one_device", "mirrored", "multi_worker", "tpu"],
                       help="tf.distribute strategy; --batch-size is the global batch")
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--force", action="store_true", help="delete an existing --out first")
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="generate images from a saved model")
    sample.add_argument("--model", required=True, help="a .keras file written by keras-gen")
    sample.add_argument("-n", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--labels", default=None, help="comma-separated class labels (conditional)")
    sample.add_argument("--out", required=True, help=".png (a grid) or .npy (float32 [0, 1])")
    sample.add_argument("--force", action="store_true", help="overwrite --out")
    sample.set_defaults(func=cmd_sample)

    info = sub.add_parser("info", help="list data sets and models")
    info.set_defaults(func=cmd_info)

    for entry in metadata.entry_points(group="keras_gen.cli"):
        try:
            entry.load()(sub)
        except Exception as e:  # a broken plug-in must not break the core commands
            print(f"keras-gen: sub-command {entry.name!r} unavailable: {e}", file=sys.stderr)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except CommandError as e:
        print(f"keras-gen {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # the library's own input errors: say them plainly
        print(f"keras-gen {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
