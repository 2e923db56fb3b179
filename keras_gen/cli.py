"""The `keras-gen` command: train, sample, evaluate, translate and list generative image models.

A thin layer over the public library: the model families and their options come from their
descriptions (keras_gen.families), run folders from keras_gen.runs.

Extra sub-commands (such as `keras-gen export` from the top-level `export` package) plug in
through the entry-point group "keras_gen.cli", so the library never imports them.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path

from keras_gen import families, runs
from keras_gen.families import TRANSLATOR
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the command's output readable


# A user error: printed as one line, exit code 2 (the run and model-file errors of runs.py are
# the same kind).
CommandError = runs.RunError


class DivergedError(CommandError):
    """Training stopped at a NaN/Inf loss: exit code 3, the last good checkpoint is kept."""

    exit_code = 3


# --------------------------------------------------------------------------------------------
# Families: the command reads their descriptions (keras_gen.families); a flag left out takes the
# constructor's own default, read from its signature, so the command never restates a default.


load_model = runs.load_model


def family_defaults(name):
    """{option: the constructor's default} of a family's command options."""
    return families.get(name).defaults()


def _option_value(option, value):
    return None if option.none and value == "none" else value


DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def build_model(args, info):
    """The family's model for this data: flags that were given, constructor defaults for the rest."""
    if getattr(args, "preset", None):  # fine-tuning: the preset's model and weights
        from keras_gen.models import GenerativeModel

        return GenerativeModel.from_preset(args.preset)
    family = families.get(args.model)
    if family.build is not None:
        return with_class_names(family.build(args, info), info)
    options = {o.name: _option_value(o, getattr(args, o.name)) for o in family.options
               if o.constructor and getattr(args, o.name) is not None}
    if family.kind == TRANSLATOR:  # pairs (kg_data.PairInfo): input and output shapes
        return family.model(info.input_shape, output_shape=info.target_shape, seed=args.seed, **options)
    model = family.model(info.image_shape, num_classes=info.num_classes if args.conditional else None,
                         seed=args.seed, **options)
    return with_class_names(model, info)


def with_class_names(model, info):
    """A conditional model keeps the names of the data's classes (`--labels Sneaker,Bag` then
    works on the saved model)."""
    if model.num_classes and model.class_names is None and info.class_names is not None \
            and len(info.class_names) == model.num_classes:
        model.class_names = info.class_names
    return model


def data_info(args):
    """`kg_data.pair_info` for families trained on pairs (with --task), else `kg_data.info`."""
    from keras_gen import data as kg_data

    if families.get(args.model).kind == TRANSLATOR:
        return kg_data.pair_info(args.dataset, task=args.task, split=args.split, data_dir=args.data_dir)
    return kg_data.info(args.dataset, split=args.split, data_dir=args.data_dir, text=_text(args))


def _text(args):
    """--text (the text mode a family may list, keras_gen.text.TEXT_OPTION): captioned data."""
    return bool(getattr(args, "text", None))


def load_data(args, model, **options):
    """The run's data in the model's range: `(input, target)` pairs for families trained on pairs,
    else images (with labels for --conditional). `options` go to the loader."""
    from keras_gen import data as kg_data

    if families.get(args.model).kind == TRANSLATOR:
        return kg_data.load_pairs(args.dataset, task=args.task, split=args.split,
                                  image_range=model.data_range, data_dir=args.data_dir, **options)
    return kg_data.load(args.dataset, split=args.split, image_range=model.data_range,
                        with_labels=bool(args.conditional), data_dir=args.data_dir,
                        text=_text(args), **options)


def compile_model(model, args):
    """`model.compile()` with the family's default optimisers; --lr (or a network's own flag,
    e.g. --d-lr) replaces only the learning rate of the default."""
    optimizers = {}
    for argument, flag in families.get(args.model).optimizers.items():
        lr = (getattr(args, flag) if flag else None) or args.lr
        if lr:
            default = model.default_optimizer(argument)
            optimizers[argument] = type(default).from_config({**default.get_config(), "learning_rate": lr})
    # None: a run resumed from a config.json of keras-gen 0.1, which meant compile()'s default
    jit_compile = _compile_default("jit_compile") if args.jit_compile is None else args.jit_compile
    model.compile(jit_compile=jit_compile,
                  steps_per_execution=args.steps_per_execution,
                  deterministic=bool(args.deterministic), **optimizers)


# --------------------------------------------------------------------------------------------
# train


def from_preset_settings(args):
    """`keras-gen train --preset NAME`: the family, conditioning, text mode and pix2pix task
    are the preset's (read from its config.json), so its model flags may not be given."""
    import json

    from keras_gen.models import base

    if args.model is not None:
        raise CommandError("give --model (a family to train from scratch) or --preset (a preset "
                           "to fine-tune), not both.")
    try:
        folder = base.preset_folder(args.preset)
        cls = base.preset_class(folder)
    except ValueError as e:
        raise CommandError(f"--preset: {e}") from None
    family = max((f for f in families.all_families() if f.instances and issubclass(cls, f.instances)),
                 key=lambda f: len(f.instances.__mro__))
    fixed = sorted({o.name for o in family.options if o.constructor} & set(getattr(args, "given", ())))
    if fixed:
        raise CommandError(
            f"--preset {args.preset} fixes the model, so {', '.join(_flag(k) for k in fixed)} cannot "
            "change it; leave them out (or train from scratch with --model)."
        )
    config = json.loads((folder / "config.json").read_text())["config"]
    args.model = family.name
    args.conditional = bool(config.get("num_classes")) and not config.get("text")
    if config.get("text"):
        args.text = True
    if family.kind == TRANSLATOR and args.task is None:
        args.task = config.get("task")


def cmd_train(args):
    if getattr(args, "preset", None) and not args.resume:
        from_preset_settings(args)
    elif args.model is None and not args.resume:
        raise CommandError("give --model (a family, keras-gen info lists them) or --preset "
                           "(a preset to fine-tune, keras-gen info --presets lists them).")
    if getattr(args, "with_prior", None):
        return _train_with_prior(args)
    for flag in ("early_stopping", "reduce_lr_on_plateau"):  # fail before anything is written
        if getattr(args, flag):
            _monitor_spec("--" + flag.replace("_", "-"), getattr(args, flag))
    if not args.resume:  # a resumed run's flags are its config's, checked below
        check_family_flags(args)
    out = runs.prepare(args.out, args.resume, args.force)
    if args.resume:  # the run's own settings win; --epochs may extend it
        ignored = runs.resume_settings(args, getattr(args, "given", ()))
        if ignored:
            print("keras-gen train: --resume continues the run with its own settings, so it "
                  "ignores " + ", ".join(_flag(k) for k in ignored) + " (start a new run with "
                  "another --out to change them).", file=sys.stderr)
    check_family_flags(args)
    if args.seed is None:
        import numpy as np

        args.seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))

    import keras

    import keras_gen
    from keras_gen import callbacks as kg_callbacks
    from keras_gen import data as kg_data
    from keras_gen import training

    family = families.get(args.model)
    info = data_info(args)
    if args.conditional and not info.num_classes:
        raise CommandError(f"--conditional: the data set {args.dataset!r} has no labels.")
    from keras_gen import distribute

    from keras_gen.networks import policy_scope

    strategy = distribute.get_strategy(args.strategy)
    with strategy.scope(), policy_scope(args.dtype_policy):
        model = build_model(args, info)
        compile_model(model, args)
    if model.dtype_policy.name != args.dtype_policy:  # a preset keeps the policy it was saved with
        print(f"keras-gen train: the preset computes in {model.dtype_policy.name}, its own "
              f"policy; --dtype-policy {args.dtype_policy} applies to new models.", file=sys.stderr)
    if _text(args) and not getattr(args, "preset", None):
        # the vocabulary of the training captions (the same on --resume); a preset keeps its own
        model.adapt(load_data(args, model, batch_size=256, shuffle=False))
    if not args.resume:
        config = {
            "args": runs.settings(args),
            "data": {k: v for k, v in dataclasses.asdict(info).items() if k not in ("name", "splits")},
            "model_config": model.get_config(),
            "versions": {"keras_gen": keras_gen.__version__, "keras": keras.__version__,
                         "tensorflow": _version("tensorflow")},
            "command": " ".join(sys.argv),
        }
        runs.write_config(out, config)
    callbacks = [keras.callbacks.TensorBoard(str(out / "logs"))]
    if family.sample_grid and family.kind != TRANSLATOR:  # a translator's callback shows pairs
        callbacks.append(kg_callbacks.SampleGrid(
            log_dir=str(out / "logs"), png_dir=str(out / "samples"), n=args.samples, seed=args.seed
        ))
    evaluate = _default_evaluate(args, model, kg_data, kg_callbacks, out)
    if evaluate is not None:  # first, so TensorBoard and the history see its val_<metric>
        callbacks.insert(0, evaluate)
    if family.callbacks is not None:
        callbacks += family.callbacks(args, model, out,
                                      lambda **options: load_data(args, model, **options))
    callbacks += _schedule_callbacks(args)
    callbacks.append(runs.writer(out, model))

    start = time.time()
    try:
        history = training.fit(
            model,
            lambda epoch: load_data(
                # each discriminator step of a GAN takes its own part of the batch
                args, model, batch_size=(model.default_batch_size if args.batch_size is None
                                         else args.batch_size) * model.batches_per_step,
                seed=training.epoch_seed(args.seed, epoch),
            ),
            epochs=args.epochs,
            checkpoint_dir=out / "checkpoints",
            checkpoint_every=args.checkpoint_every or None,
            callbacks=callbacks,
            verbose=args.verbose,
            resume=args.resume,
        )
    except training.TrainingDiverged as e:
        raise DivergedError(str(e)) from e
    elapsed = time.time() - start
    if not history:
        print(f"the run in {out} has already trained {args.epochs} epochs; pass a larger --epochs "
              "to continue it.")
        return 0
    summary = {k: v[-1] for k, v in history.items()}
    print(f"trained {args.model} on {args.dataset} to epoch {args.epochs} in {elapsed:.0f} s: "
          + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()))
    print(f"model: {out / 'model.keras'}  samples: {out / 'samples'}  "
          f"TensorBoard: tensorboard --logdir {out / 'logs'}")
    return 0


def _train_with_prior(args):
    """--with-prior (vqvae): both stages from one command. The VQ-VAE's run goes to
    OUT/autoencoder, then the run of its prior (--model vqvae-prior, the prior at its defaults)
    to OUT/prior, whose model.keras generates. The prior trains --prior-epochs, by default the
    measured split of the budget (keras_gen.models.vqvae.prior_epochs). --resume continues
    whichever stage is unfinished."""
    import copy

    from keras_gen.models import vqvae

    check_family_flags(args)
    out = Path(args.out)
    if not args.resume:
        runs.prepare(out, False, args.force)
    if args.seed is None:
        import numpy as np

        args.seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    stage = copy.copy(args)
    stage.with_prior, stage.force, stage.out = None, False, str(out / "autoencoder")
    code = cmd_train(stage)
    if code:
        return code
    prior = copy.copy(args)
    for option in families.get(args.model).options:  # the VQ-VAE's flags are not the prior's
        setattr(prior, option.name, None)
    prior.model, prior.out, prior.force = "vqvae-prior", str(out / "prior"), False
    prior.vqvae = str(out / "autoencoder" / "model.keras")
    prior.epochs = args.prior_epochs or vqvae.prior_epochs(args.epochs)
    prior.resume = bool(args.resume) and (out / "prior").exists()
    print(f"stage 2: the prior over the codes, {prior.epochs} epochs, in {prior.out}")
    return cmd_train(prior)


def _monitor_spec(flag, value):
    """METRIC[:PATIENCE] -> (metric, patience)."""
    metric, _, patience = value.partition(":")
    try:
        patience = int(patience) if patience else None
    except ValueError:
        raise CommandError(f"{flag} takes METRIC[:PATIENCE], e.g. val_fid:3; got {value!r}.") from None
    if not metric or (patience is not None and patience < 0):
        raise CommandError(f"{flag} takes METRIC[:PATIENCE], e.g. val_fid:3; got {value!r}.")
    return metric, patience


def _mode(metric):
    higher = ("psnr", "ssim", "accuracy", "precision", "recall")
    return "max" if any(metric.endswith(name) for name in higher) else "min"


def _schedule_callbacks(args):
    """Keras' EarlyStopping and ReduceLROnPlateau from --early-stopping / --reduce-lr-on-plateau.
    Losses, FID, KID, MAE and bits/dim are lower-better; PSNR, SSIM, accuracy, precision and
    recall higher-better."""
    import keras

    extra = []
    if args.early_stopping:
        metric, patience = _monitor_spec("--early-stopping", args.early_stopping)
        extra.append(keras.callbacks.EarlyStopping(
            monitor=metric, patience=0 if patience is None else patience, mode=_mode(metric), verbose=1))
    if args.reduce_lr_on_plateau:
        metric, patience = _monitor_spec("--reduce-lr-on-plateau", args.reduce_lr_on_plateau)
        extra.append(keras.callbacks.ReduceLROnPlateau(
            monitor=metric, patience=2 if patience is None else patience, mode=_mode(metric), verbose=1))
    return extra


def cmd_sample(args):
    import numpy as np

    from keras_gen.callbacks import save_grid

    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise CommandError(f"--out must end in .png or .npy; got {out}.")
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists; pass --force to overwrite it.")
    if args.n is not None and args.n <= 0:
        raise CommandError(f"-n must be a positive number of images; got {args.n}.")
    model = runs.load_model_or_preset(args.model, args.preset)
    if families.kind_of(model) == TRANSLATOR:
        raise CommandError(
            f"{type(model).__name__} is a translator: it needs an input image for every output. "
            "Use keras-gen translate --model M --input IMAGE_OR_FOLDER --out OUT."
        )
    prompts = _prompts(args)
    args.n = len(prompts) if prompts is not None else args.n or 64
    labels = None
    if args.labels is not None:
        labels = [int(v) if v.strip().lstrip("-").isdigit() else v.strip()
                  for v in args.labels.split(",")]
        if args.n % len(labels) == 0:  # one for all, one per image, or repeated in turn
            labels = labels * (args.n // len(labels))
        else:
            raise CommandError(
                f"--labels gives {len(labels)} labels for -n {args.n} images: give one label, one "
                f"per image, or a few that -n is a multiple of (they repeat in turn).")
    elif model.num_classes:
        labels = list(np.arange(args.n) % model.num_classes)
    options = {o.name: getattr(args, o.name) for o in families.of(model).sample_options
               if getattr(args, o.name, None) is not None and o.constructor}
    if prompts is not None:
        options["prompts"] = prompts
    try:
        images = model.generate(args.n, seed=args.seed, labels=labels, **options)
    except ValueError as e:
        raise CommandError(str(e)) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        save_grid(out, images)
    print(f"wrote {args.n} images to {out}")
    return 0


def _prompts(args):
    """--prompt P: -n images of P (default 64); --prompts FILE: one image per line, or -n each."""
    from keras_gen import text as kg_text

    prompt, path = getattr(args, "prompt", None), getattr(args, "prompts", None)
    if prompt is not None and path is not None:
        raise CommandError("give --prompt or --prompts FILE, not both.")
    if prompt is not None:
        return [prompt] * (args.n or 64)
    if path is None:
        return None
    try:
        lines = kg_text.read_prompts(path)
    except OSError as e:
        raise CommandError(f"--prompts: cannot read {path}: {e.strerror or e}.") from None
    return [p for p in lines for _ in range(args.n or 1)]


def _default_evaluate(args, model, kg_data, kg_callbacks, out):
    """The family's quality metric every epoch (FID for GANs, negative ELBO for VAEs, bits/dim
    for PixelCNN) on the first --eval-samples images of the training split, or None where
    there is no such metric (a GAN with no feature extractor for its image size)."""
    from keras_gen import metrics as kg_metrics

    if not args.eval_samples:
        return None
    batch = 250
    if families.get(args.model).kind == TRANSLATOR:  # MAE (L1), PSNR, SSIM (and FID where there are features) of outputs
        names = ["mae", "psnr", "ssim"] + (["fid"] if _has_extractor(model.image_shape) else [])
        data = load_data(args, model, batch_size=batch, shuffle=False, seed=args.seed)
        return kg_callbacks.Evaluate(data.take(-(-args.eval_samples // batch)), metrics=names,
                                     num_samples=args.eval_samples, log_dir=str(out / "logs"))
    gan = "fid" in kg_metrics.default_metrics(model)  # sample quality, not a likelihood
    extractor = args.extractor
    if gan:
        try:
            extractor = extractor or kg_metrics.default_extractor(model.image_shape)
        except ValueError:
            print(f"keras-gen train: no feature extractor for {model.image_shape} images, so no "
                  "FID is logged; pass --extractor, or use keras-gen evaluate --extractor later.",
                  file=sys.stderr)
            return None
        # Before the first step: offline, the InceptionV3 weights of colour images are missing.
        if kg_metrics.extractor_unavailable(extractor) is not None:
            print(_no_fid_warning(extractor), file=sys.stderr)
            return None
    data = kg_data.load(
        args.dataset, split=args.split, batch_size=batch,
        image_range="unit" if gan else model.data_range,
        with_labels=bool(args.conditional) and not gan, shuffle=False, seed=args.seed,
        data_dir=args.data_dir,
    ).take(-(-args.eval_samples // batch))
    return kg_callbacks.Evaluate(data, every=1, num_samples=args.eval_samples, log_dir=str(out / "logs"),
                                 data_range="unit" if gan else None, seed=args.seed,
                                 extractor=extractor if gan else None)


def _no_fid_warning(extractor):
    from keras_gen import metrics as kg_metrics

    if extractor == "inception_v3":
        where = (f"put {kg_metrics.INCEPTION_V3_URL} at {kg_metrics.inception_v3_weights_path()}")
    else:
        where = f"make {extractor} a readable .keras file"
    return (f"keras-gen train: warning: no val_fid, the feature extractor {extractor!r} is not "
            f"available offline; to log val_fid, {where}, or pass --extractor FILE.keras (a "
            "classifier from scripts/train_feature_classifier.py) or --eval-samples 0 to silence this.")


def _has_extractor(image_shape):
    """Whether the default feature extractor for these images is at hand (FID is skipped if not)."""
    from keras_gen import metrics as kg_metrics

    try:
        name = kg_metrics.default_extractor(image_shape)
    except ValueError:
        return False
    return kg_metrics.extractor_unavailable(name) is None


# --------------------------------------------------------------------------------------------
# evaluate

SAMPLE_METRICS = ("fid", "kid", "precision", "recall")
LIKELIHOOD_METRICS = ("bpd", "elbo", "iwae", "bits_per_dim", "neg_elbo", "neg_iwae")


def cmd_evaluate(args):
    from keras_gen import data as kg_data
    from keras_gen import metrics as kg_metrics

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise CommandError(f"{out} exists; pass --force to overwrite it.")
    model = load_model(args.model)
    names = (args.metrics.split(",") if args.metrics else list(kg_metrics.default_metrics(model)))
    translator = families.kind_of(model) == TRANSLATOR
    known = kg_metrics.TRANSLATION_METRICS if translator else SAMPLE_METRICS + LIKELIHOOD_METRICS
    unknown = [m for m in names if m not in known]
    if unknown:
        raise CommandError(f"--metrics: unknown {unknown}; choose from {', '.join(known)}.")
    if args.split is None:
        args.split = _evaluation_split(args, model, translator)
    results = _translation_results(model, args, names) if translator else {}
    sample_metrics = [m for m in names if m in SAMPLE_METRICS and not translator]
    if sample_metrics:
        reference = kg_data.load(args.dataset, split=args.split, batch_size=250, image_range="unit",
                                 shuffle=False, data_dir=args.data_dir)
        extractor = args.extractor or kg_metrics.default_extractor(model.image_shape)
        results.update(kg_metrics.quality_metrics(
            model, reference, sample_metrics, extractor, num_samples=args.num_samples, seed=args.seed,
        ))
    likelihood_metrics = [m for m in names if m in LIKELIHOOD_METRICS and not translator]
    if likelihood_metrics:
        image_range = model.data_range
        dataset = kg_data.load(args.dataset, split=args.split, batch_size=250, image_range=image_range,
                               with_labels=bool(model.num_classes), shuffle=False,
                               seed=args.seed, data_dir=args.data_dir)
        results.update(kg_metrics.evaluate_model(
            model, dataset, likelihood_metrics, num_importance_samples=args.importance_samples,
        ))
    results = {k: (float(v) if not isinstance(v, (list, tuple, dict)) else v) for k, v in results.items()}
    width = max(len(k) for k in results) if results else 0
    for key, value in results.items():
        print(f"{key:{width}s}  {value:.6g}" if isinstance(value, float) else f"{key:{width}s}  {value}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"model": str(args.model), "dataset": args.dataset,
                                   "split": args.split, "results": results}, indent=2))
        print(f"wrote {out}")
    return 0


def _evaluation_split(args, model, translator):
    """The held-out "test" split where --dataset has one, else "train"; said on stdout, since
    scores on training images read better than they are."""
    from keras_gen import data as kg_data

    if translator:
        task = model.task if args.task is None else args.task
        splits = kg_data.pair_info(args.dataset, task=None if task == "none" else task,
                                   data_dir=args.data_dir).splits
    else:
        splits = kg_data.info(args.dataset, data_dir=args.data_dir).splits
    split = "test" if "test" in splits else "train"
    print(f"evaluating on the {split} split of {args.dataset}"
          + ("" if split == "test" else " (it has no test split; --split chooses another)"))
    return split


def _translation_results(model, args, names):
    """A translator's metrics on held pairs: derived by --task (default: the model's own task;
    "none" for a paired source) from --dataset, or the pairs of a paired --dataset."""
    from keras_gen import data as kg_data
    from keras_gen import metrics as kg_metrics

    task = model.task if args.task is None else args.task
    task = None if task == "none" else task
    if "fid" in names and args.extractor is None and not _has_extractor(model.image_shape):
        if args.metrics is None:  # the default set: say so, and report the others
            print(f"keras-gen evaluate: no feature extractor for {model.image_shape} images, so no "
                  "FID; pass --extractor to get one.", file=sys.stderr)
            return _translation_results(model, args, [m for m in names if m != "fid"])
        raise CommandError(
            f"no feature extractor for {model.image_shape} images, so no FID: pass --extractor "
            "(a classifier .keras file from scripts/train_feature_classifier.py) or --metrics "
            "mae,psnr,ssim."
        )
    pairs = kg_data.load_pairs(
        args.dataset, task=task, split=args.split, batch_size=250, image_range=model.data_range,
        shuffle=False, seed=args.seed, with_labels="class_accuracy" in names, data_dir=args.data_dir,
    )
    return kg_metrics.translation_metrics(model, pairs, names, args.extractor,
                                          num_samples=args.num_samples)


# --------------------------------------------------------------------------------------------
# translate


def _read_input_image(path, shape, resize):
    """An image file as float32 [0, 1] (H, W, C) of the model's input shape."""
    import numpy as np
    from PIL import Image

    h, w, c = shape
    try:
        with Image.open(path) as im:
            im = im.convert("L" if c == 1 else "RGB")
            if im.size != (w, h):
                if not resize:
                    raise CommandError(
                        f"{path} is {im.size[0]}x{im.size[1]} (WxH); the model translates {w}x{h} "
                        "images. Resize it, or pass --resize to resize every input."
                    )
                im = im.resize((w, h), Image.BILINEAR)
            pixels = np.asarray(im, np.float32) / 255.0
    except CommandError:
        raise
    except Exception as e:
        raise CommandError(f"--input: cannot read image {path}: {e}") from None
    return pixels.reshape(h, w, c)


def cmd_translate(args):
    import numpy as np
    from PIL import Image

    from keras_gen.data import IMAGE_EXTENSIONS

    source, out = Path(args.input), Path(args.out)
    if not source.exists():
        raise CommandError(f"--input: {source} does not exist.")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise CommandError(f"--input: no images in {source} (looked for {', '.join(IMAGE_EXTENSIONS)}).")
        if out.exists() and not out.is_dir():
            raise CommandError(f"--input is a folder, so --out must be a folder; {out} is a file.")
        targets = [out / (p.stem + ".png") for p in files]
    else:
        if out.suffix.lower() != ".png" or out.is_dir():
            raise CommandError(f"--out must be a .png file when --input is one image; got {out}.")
        files, targets = [source], [out]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.force:
        raise CommandError(
            f"{len(existing)} output file(s) exist ({', '.join(existing[:3])}"
            f"{' ...' if len(existing) > 3 else ''}); pass --force to overwrite them."
        )
    model = runs.load_model_or_preset(args.model, args.preset)
    if families.kind_of(model) != TRANSLATOR:
        raise CommandError(
            f"{args.model or args.preset} holds a {type(model).__name__}, which generates images instead of "
            "translating them: use keras-gen sample."
        )
    shape = model.input_image_shape
    # Read before anything is written, so a bad file fails the command with nothing half done.
    images = np.stack([_read_input_image(p, shape, args.resize) for p in files])
    outputs = model.translate(images, batch_size=args.batch_size)
    for target, image in zip(targets, outputs):
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.round(image * 255.0).astype(np.uint8)
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(target)
    print(f"translated {len(files)} image(s) to {out}")
    return 0


# --------------------------------------------------------------------------------------------
# info


def cmd_info(args):
    from keras_gen import data as kg_data

    if args.presets:
        return _info_presets()
    print("keras-gen models (keras-gen train --model NAME):")
    for family in families.all_families():
        print(f"  {family.name:12s} {family.kind:10s} {family.model.__name__}")
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
    print("\npairs for pix2pix (keras-gen train --model pix2pix):")
    print("  --task edges|inpaint|colorize|superres  derived from any data set above")
    print("  folder:PATH          sub-folders A/ (inputs) and B/ (targets), or side-by-side images")
    print("  npz:PATH             a .npz file with arrays a (inputs) and b (targets)")
    return 0


def _info_presets():
    """The shipped presets with their measured numbers: keras-gen info --presets."""
    from keras_gen.models import presets

    shown = ("fid", "class_accuracy", "bits_per_dim", "neg_elbo_bits_per_dim", "psnr",
             "seen_class", "seen_colour", "unseen_class", "unseen_colour")
    found = presets()
    print("keras-gen presets (keras-gen sample --preset NAME; Family.from_preset(NAME)):")
    for name, meta in found.items():
        numbers = ", ".join(f"{k} {meta['metrics'][k]:.3g}" for k in shown
                            if isinstance(meta.get("metrics", {}).get(k), (int, float)))
        print(f"  {name:38s} {meta.get('class_name', '?'):9s} {numbers}")
        print(f"  {'':38s} {meta.get('steps', '?')} steps, {meta.get('cpu_minutes', '?')} CPU min: "
              f"{meta.get('command', '')}")
    if not found:
        print("  (none shipped in this installation)")
    return 0


# --------------------------------------------------------------------------------------------


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _on_off(value):
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off; got {value!r}")
    return value == "on"


def _or_none(parse):
    """A flag type that also takes "none": an explicit value (turn it off), not "not given"
    (the constructor's default)."""

    def parse_or_none(value):
        return "none" if value.lower() == "none" else parse(value)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")
    return parse_or_none


def _shown(value):
    return "none" if value is None else {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


def _flag(name):
    return "--" + name.replace("_", "-")


def family_options():
    """{option name: (the Option, the names of the families that take it)}, over the registry;
    an option several families take is one flag."""
    merged = {}
    for family in families.all_families():
        for option in family.options:
            first, names = merged.setdefault(option.name, (option, []))
            names.append(family.name)
    return merged


def check_family_flags(args):
    """Fails, before anything is written, on an unknown --model or a family flag the chosen
    --model does not take."""
    if args.model not in families.names():
        raise CommandError(f"--model must be one of {', '.join(families.names())}; got {args.model!r}.")
    family = families.get(args.model)
    taken = {o.name for o in family.options}
    for name, (option, names) in family_options().items():
        if name not in taken and getattr(args, name, None) is not None:
            raise CommandError(
                f"{option.flag} applies to --model {', '.join(names)}, not {args.model}; leave it out."
            )


def _add_family_options(train):
    """One argument group per set of families, from their descriptions: each flag once, with its
    choices and each family's default in the help."""
    groups = {}
    for name, (option, names) in family_options().items():
        title = "options of " + ", ".join(names)
        if title not in groups:
            groups[title] = train.add_argument_group(title)
        defaults = {family: families.get(family).defaults().get(name, None) for family in names}
        shown = {family: value for family, value in defaults.items() if option.constructor}
        helps = {family: o.help for family in names for o in families.get(family).options if o.name == name}
        help_text = (option.help if len(set(helps.values())) == 1
                     else "; ".join(f"{family}: {text}" for family, text in helps.items()))
        if shown:
            help_text += " (default: " + ", ".join(
                f"{family} {_shown(value)}" for family, value in shown.items()) + ")"
        if option.type is bool:
            parse, metavar = _on_off, "{on,off}"
        else:
            parse, metavar = option.type, option.metavar
        if option.none:
            parse = _or_none(parse)
        choices = None
        if option.choices is not None:
            choices = tuple(dict.fromkeys(
                c for family in names for o in families.get(family).options if o.name == name
                for c in (o.choices or ())))
            metavar = "{" + ",".join(choices) + "}"
        bare = {"nargs": "?", "const": True} if option.type is bool else {}  # --text = --text on
        groups[title].add_argument(option.flag, type=parse, default=None, choices=choices,
                                   metavar=metavar, help=help_text, **bare)


def _compile_default(argument):
    """The default of a `GenerativeModel.compile` argument (the command does not restate it)."""
    import keras

    from keras_gen.models.base import GenerativeModel

    for compile_ in (GenerativeModel.compile, keras.Model.compile):
        parameters = inspect.signature(compile_).parameters
        if argument in parameters:
            return parameters[argument].default
    raise KeyError(argument)


def _jit(value):
    return {"auto": "auto", "on": True, "off": False}[value]


def _saved_model_command(sub, name, help, func, preset=None):
    """A sub-command of a model that keras-gen saved (--model), or of a preset where `preset`
    (the help of --preset) is given, run by `func`."""
    command = sub.add_parser(name, help=help)
    command.add_argument("--model", required=preset is None, default=None,
                         help="a .keras file written by keras-gen")
    if preset is not None:
        command.add_argument("--preset", default=None, help=preset)
    command.set_defaults(func=func)
    return command


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-gen", description=__doc__.split("\n\n")[0],
        epilog="keras-gen train --help lists each family's options and defaults; keras-gen info "
               "lists the families and data sets.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model with model.fit")
    train.add_argument("--model", default=None, metavar="{" + ",".join(families.names()) + "}",
                       help="model family (keras-gen info lists them)")
    train.add_argument("--preset", default=None,
                       help="fine-tune a preset (keras-gen info --presets) instead of training "
                            "--model from scratch: its model, weights and settings")
    train.add_argument("--dataset", required=True, help="data set name (see keras-gen info)")
    train.add_argument("--split", default="train", help="split of --dataset, e.g. train or train[:1000]")
    train.add_argument("--data-dir", default=None, help="TFDS data directory")
    train.add_argument("--epochs", type=int, default=5, help="epochs to train (with --resume: up to this many)")
    train.add_argument("--batch-size", type=int, default=None,
                       help="images per step (global, across replicas; default: the family's own, "
                            + ", ".join(f"{f.name} {f.default_batch_size}" for f in families.all_families())
                            + ")")
    train.add_argument("--lr", type=float, default=None, help="learning rate (all optimisers)")
    train.add_argument("--d-lr", type=float, default=None, help="discriminator learning rate (dcgan, pix2pix)")
    train.add_argument("--g-lr", type=float, default=None, help="generator learning rate (dcgan, pix2pix)")
    train.add_argument("--conditional", action="store_true", help="condition on the class labels")
    train.add_argument("--seed", type=int, default=None, help="seed of the run (default: a fresh one, saved in config.json)")
    train.add_argument("--samples", type=int, default=64, help="images in each sample grid")
    train.add_argument("--eval-samples", type=int, default=1000,
                       help="images for the family's quality metric each epoch (0: none)")
    train.add_argument("--extractor", default=None,
                       help="feature extractor of val_fid: fashion_mnist, inception_v3 or a .keras "
                            "file (default: fashion_mnist for 28x28 grey images, inception_v3 for colour)")
    _add_family_options(train)
    train.add_argument("--jit-compile", type=_jit, default=_compile_default("jit_compile"),
                       choices=["auto", True, False], metavar="{auto,on,off}",
                       help="XLA compilation of the train step (default auto: Keras' own, on for "
                            "GPUs and TPUs, off on CPUs and under several replicas)")
    train.add_argument("--deterministic", action="store_true",
                       help="deterministic ops (tf.config.experimental.enable_op_determinism): "
                            "the same seed gives the same weights on GPUs too, a little slower")
    train.add_argument("--steps-per-execution", type=int, default=_compile_default("steps_per_execution"), help="train steps per call of the compiled function")
    train.add_argument("--dtype-policy", default="float32", choices=DTYPE_POLICIES,
                       help="Keras dtype policy of the model (default float32): mixed_bfloat16 "
                            "trains 1.2-1.9x faster on CPUs with bfloat16 instructions "
                            "(AVX512-BF16, AMX) and TPUs, mixed_float16 on GPUs; variables stay "
                            "float32, and export writes float32 files")
    train.add_argument("--strategy", default="auto",
                       choices=["auto", "default", "one_device", "mirrored", "multi_worker", "tpu"],
                       help="tf.distribute strategy; --batch-size is the global batch")
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--early-stopping", default=None, metavar="METRIC[:PATIENCE]",
                       help="stop when METRIC (e.g. val_fid, d_loss) has not improved for PATIENCE "
                            "epochs (default 0): Keras' EarlyStopping")
    train.add_argument("--reduce-lr-on-plateau", default=None, metavar="METRIC[:PATIENCE]",
                       help="divide the learning rate by 10 when METRIC has not improved for "
                            "PATIENCE epochs (default 2): Keras' ReduceLROnPlateau (a GAN's "
                            "generator optimiser)")
    train.add_argument("--checkpoint-every", type=int, default=200, metavar="STEPS",
                       help="also checkpoint every STEPS steps, for exact resume after a kill "
                       "(0: at each epoch's end only)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint (exactly, even "
                       "after a kill in the middle of an epoch)")
    train.add_argument("--force", action="store_true", help="delete an existing --out first")
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="Keras' fit verbosity")
    train.set_defaults(func=cmd_train)

    sample = _saved_model_command(
        sub, "sample", "generate images from a saved model or a preset", cmd_sample,
        preset="a shipped preset (keras-gen info --presets) or a preset folder, instead of --model")
    sample.add_argument("-n", type=int, default=None,
                        help="images to generate (default 64); with --prompts FILE: per prompt")
    sample.add_argument("--seed", type=int, default=0, help="same seed, same images")
    sample.add_argument("--labels", default=None,
                        help="comma-separated class labels of a conditional model: indices or the "
                             "class names it was trained with, e.g. 7,9 or Sneaker,Bag (one: all; "
                             "fewer than -n: repeated in turn)")
    sample.add_argument("--out", required=True, help=".png (a grid) or .npy (float32 [0, 1])")
    sample.add_argument("--force", action="store_true", help="overwrite --out")
    seen = set()
    for family in families.all_families():  # a sampler's own options of generate (e.g. --steps)
        for option in family.sample_options:
            if option.name not in seen:
                seen.add(option.name)
                sample.add_argument(option.flag, type=option.type, default=None, choices=option.choices,
                                    metavar=option.metavar, help=option.help)

    evaluate = _saved_model_command(sub, "evaluate", "quality metrics of a saved model", cmd_evaluate)
    evaluate.add_argument("--dataset", required=True, help="reference / test data (see keras-gen info)")
    evaluate.add_argument("--split", default=None,
                          help="split of --dataset (default: test where it has one, else train)")
    evaluate.add_argument("--data-dir", default=None, help="TFDS data directory")
    evaluate.add_argument("--metrics", default=None,
                          help="comma-separated: fid,kid,precision,recall (samples) and bpd,elbo,iwae "
                               "(likelihoods); pix2pix: mae,psnr,ssim,fid,class_accuracy; default: the "
                               "family's own")
    evaluate.add_argument("--num-samples", type=int, default=10000,
                          help="generated images for fid/kid (pix2pix: held pairs)")
    evaluate.add_argument("--importance-samples", type=int, default=100, help="k of the IWAE bound")
    evaluate.add_argument("--task", default=None,
                          help="pix2pix: the task deriving held pairs from --dataset (default: the "
                               "model's own; none: --dataset is a paired source)")
    evaluate.add_argument("--extractor", default=None,
                          help="feature extractor: fashion_mnist, inception_v3 or a .keras file")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    evaluate.add_argument("--out", default=None, help="write the results as JSON")
    evaluate.add_argument("--force", action="store_true", help="overwrite --out")

    translate = _saved_model_command(
        sub, "translate", "translate images with a saved pix2pix model or a preset", cmd_translate,
        preset="a shipped preset (e.g. pix2pix_fashion_mnist_edges) or a preset folder, instead "
               "of --model")
    translate.add_argument("--input", required=True, help="an image file, or a folder of images")
    translate.add_argument("--out", required=True,
                           help="a .png file (one input) or a folder (receives NAME.png per input)")
    translate.add_argument("--resize", action="store_true",
                           help="resize inputs to the model's size (default: other sizes are an error)")
    translate.add_argument("--batch-size", type=int, default=64, help="images per network call")
    translate.add_argument("--force", action="store_true", help="overwrite existing outputs")

    info = sub.add_parser("info", help="list data sets and models")
    info.add_argument("--presets", action="store_true",
                      help="list the shipped presets (trained models: keras-gen sample --preset NAME)")
    info.set_defaults(func=cmd_info)

    for entry in metadata.entry_points(group="keras_gen.cli"):
        try:
            entry.load()(sub)
        except Exception as e:  # a broken plug-in must not break the core commands
            print(f"keras-gen: sub-command {entry.name!r} unavailable: {e}", file=sys.stderr)
    return parser


def _given(parser, argv):
    """The destinations of the options typed in `argv` (of the `train` sub-command)."""
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {s: a.dest for a in train._actions for s in a.option_strings}
    return {flags[word.split("=")[0]] for word in argv if word.split("=")[0] in flags}


def main(argv=None):
    parser = build_parser()
    argv_is_the_process = argv is None  # the console script; tests pass argv and get the code
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.command == "train":  # the flags typed, for --resume to say which it ignores
        args.given = _given(parser, argv)
    try:
        code = args.func(args) or 0
    except CommandError as e:
        code = _error(args, e, e.exit_code)
    except (ValueError, OSError) as e:  # the library's input errors, missing files: said plainly
        code = _error(args, e, 2)
    if code and argv_is_the_process:
        # A data-loader or TensorFlow thread may keep an interpreter alive after an error; the
        # command's work is over, so nothing of it can be lost.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _error(args, error, code):
    print(f"keras-gen {args.command}: error: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
