"""GAN quality per CPU minute: train for a fixed wall-clock budget on full Fashion-MNIST, then FID,
KID, precision and recall of 10,000 samples against the 10,000 test images with the shipped
Fashion-MNIST extractor, and (conditional models) the class accuracy of the samples under the
shipped classifier. The floor (the training set against the test set) is in the same table.

    python benchmarks/gan_quality.py                      # old vs new defaults, 10 minutes each
    python benchmarks/gan_quality.py --minutes 3 --variants new,new-cond
    python benchmarks/gan_quality.py --variant-json '{"name": "hinge", "model": {"loss": "hinge"}}'
    python benchmarks/gan_quality.py --variant-json '{"name": "bf16", "policy": "mixed_bfloat16"}'

"old" is the package as it was at commit 552de0f (`git archive` of that commit, imported in the
worker process): `DCGAN(shape)` + `compile()`, batch 64 (the command's default then). "new" is the
package in this checkout: `DCGAN(shape)` + `compile()` with the batch size of `keras-gen train`'s
default (`DCGAN.default_batch_size`). Each variant trains in a fresh process, one at a time so
that they do not share the CPU; the budget counts from the first call of `fit` (graph tracing and XLA compilation included), as a
user's wall clock would. Sampling and metrics are not part of the budget. Data: the Debian package
dataset-fashion-mnist (`idx:/usr/share/datasets/fashion-mnist`).

`--steps N` trains a fixed number of steps instead (for tuning on a busy machine), and
`--cpu-seconds S` for S CPU seconds of the training process (fair when other jobs share the
machine); the table reports steps and images per second either way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = "idx:/usr/share/datasets/fashion-mnist"
OLD_COMMIT = "552de0f"

VARIANTS = {
    "old": {"package": "old", "conditional": False, "batch_size": 64},
    "old-cond": {"package": "old", "conditional": True, "batch_size": 64},
    "new": {"package": "new", "conditional": False},
    "new-cond": {"package": "new", "conditional": True},
}


# --------------------------------------------------------------------------------------------
# Worker: one training run in its own process


def _worker(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    import numpy as np
    import keras

    import keras_gen as kg

    info = kg.data.info(spec["data"])
    num_classes = info.num_classes if spec["conditional"] else None
    # "policy": a Keras dtype policy for the run (e.g. "mixed_bfloat16"; float32 by default)
    keras.mixed_precision.set_global_policy(spec.get("policy", "float32"))
    model = kg.models.DCGAN(info.image_shape, num_classes=num_classes, seed=spec["seed"],
                            **spec.get("model", {}))
    compile_kwargs = {}
    for key, value in spec.get("compile", {}).items():  # {"d_optimizer": {"class_name": ...}}
        compile_kwargs[key] = keras.optimizers.get(value) if isinstance(value, dict) else value
    model.compile(**compile_kwargs)
    image_range = getattr(model, "data_range", None) or model.image_range
    data = kg.data.load(spec["data"], split="train", batch_size=spec["batch_size"],
                        image_range=image_range, with_labels=bool(num_classes), seed=spec["seed"],
                        drop_remainder=True)

    # A fixed number of steps, or else a wall-clock budget, counted from the call of `fit`.
    budget = kg.callbacks.TrainingBudget(**(
        {"steps": spec["steps"]} if spec.get("steps")
        else {"cpu_seconds" if spec.get("cpu_budget") else "seconds": spec["seconds"]}))
    model.fit(data, epochs=10_000, verbose=0, callbacks=[budget])
    seconds, cpu_seconds = budget.used_seconds, budget.used_cpu_seconds
    n = spec["samples"]
    labels = None if num_classes is None else (np.arange(n) % num_classes).astype(np.int32)
    samples = model.generate(n, seed=12345, labels=labels)
    out = Path(spec["out"])
    np.save(out / f"{spec['name']}.samples.npy", samples)
    if labels is not None:
        np.save(out / f"{spec['name']}.labels.npy", labels)
    grid_labels = None if num_classes is None else np.arange(100) % num_classes
    kg.callbacks.save_grid(out / f"{spec['name']}.png", model.generate(100, seed=1, labels=grid_labels), 10)
    result = {
        "steps": budget.steps,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "images_per_second": budget.steps * spec["batch_size"] / seconds,
        "batch_size": spec["batch_size"],
        "last_logs": {k: float(np.asarray(v).reshape(-1)[0]) for k, v in (budget.logs or {}).items()},
        "config": model.get_config(),
    }
    (out / f"{spec['name']}.json").write_text(json.dumps(result, indent=1, default=str))


# --------------------------------------------------------------------------------------------
# Parent: run the workers, then the metrics with this checkout's code


def _old_package(tmp):
    """The keras_gen package of commit OLD_COMMIT, extracted into `tmp`."""
    archive = Path(tmp) / "old.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), OLD_COMMIT, "keras_gen"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(Path(tmp) / "old")
    return Path(tmp) / "old"


def _default_batch_size():
    """The batch `keras-gen train --model dcgan` uses without --batch-size."""
    from keras_gen.models import DCGAN

    return DCGAN.default_batch_size


def run_variant(name, spec, args, tmp):
    spec = {"name": name, "data": args.data, "seed": args.seed, "samples": args.samples,
            "seconds": args.cpu_seconds or args.minutes * 60, "cpu_budget": bool(args.cpu_seconds),
            "steps": args.steps, "out": str(args.out), **spec}
    spec.setdefault("batch_size", _default_batch_size())
    spec_path = Path(tmp) / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    package = spec.get("package", "new")
    env["PYTHONPATH"] = str(_old_package(tmp) if package == "old" else ROOT)
    started = time.time()
    subprocess.run([sys.executable, __file__, "--worker", str(spec_path)], env=env, check=True,
                   cwd=tmp)
    result = json.loads((Path(args.out) / f"{name}.json").read_text())
    result["wall_with_sampling"] = time.time() - started
    result["conditional"] = spec["conditional"]
    result["package"] = package
    return result


def metrics(name, result, args, reference, classifier):
    import numpy as np

    import keras_gen as kg

    samples = np.load(Path(args.out) / f"{name}.samples.npy")
    values = kg.metrics.quality_metrics(samples, reference, ("fid", "kid", "precision", "recall"),
                                        "fashion_mnist", num_samples=len(samples))
    if result["conditional"]:
        labels = np.load(Path(args.out) / f"{name}.labels.npy")
        predicted = np.argmax(classifier.predict(samples, batch_size=500, verbose=0), axis=-1)
        values["class_accuracy"] = float(np.mean(predicted == labels))
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget")
    parser.add_argument("--cpu-seconds", type=float, default=None,
                        help="train for this many CPU seconds of the training process (all its "
                             "threads) instead: fair on a shared machine; 1200 is 10 minutes of "
                             "both cores of a 2-core CPU")
    parser.add_argument("--steps", type=int, default=None, help="train this many steps instead")
    parser.add_argument("--variants", default="old,new,old-cond,new-cond")
    parser.add_argument("--variant-json", action="append", default=[],
                        help='extra variant of the current package, e.g. \'{"name": "x", "model": '
                             '{"loss": "hinge"}, "compile": {}, "batch_size": 64, "conditional": false}\'')
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-floor", action="store_true", help="skip the train-vs-test floor")
    parser.add_argument("--out", default="runs/gan_quality")
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker)
    args.out = Path(args.out).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    variants = {}
    for name in [v for v in args.variants.split(",") if v]:
        variants[name] = dict(VARIANTS[name])
    for text in args.variant_json:
        extra = json.loads(text)
        extra.setdefault("conditional", False)
        variants[extra.pop("name")] = extra

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in variants.items():
            print(f"training {name} ...", flush=True)
            results[name] = run_variant(name, spec, args, tmp)
            print(f"  {results[name]['steps']} steps in {results[name]['seconds']:.0f} s", flush=True)

    import keras

    import keras_gen as kg

    test = kg.data.load(args.data, split="test", image_range="unit", shuffle=False, batch_size=500)
    reference = kg.metrics.feature_statistics(test, "fashion_mnist")
    classifier = keras.models.load_model(kg.metrics.FASHION_MNIST_CLASSIFIER, compile=False)
    rows = []
    if not args.no_floor:
        train = kg.data.load(args.data, split="train", image_range="unit", shuffle=False, batch_size=500)
        floor = kg.metrics.quality_metrics(train, reference, ("fid", "kid", "precision", "recall"),
                                           "fashion_mnist", num_samples=60_000)
        rows.append(("floor: training set (60k) vs test", floor, None))
    for name, result in results.items():
        rows.append((name, metrics(name, result, args, reference, classifier), result))
    budget = (f"{args.steps} steps" if args.steps else f"{args.cpu_seconds:g} CPU-s"
              if args.cpu_seconds else f"{args.minutes:g} min")
    lines = [f"budget {budget}; {time.strftime('%Y-%m-%d %H:%M')}; load {os.getloadavg()[0]:.1f}", "",
             "| variant | FID | KID | precision | recall | class acc. | steps | img/s | batch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, values, result in rows:
        acc = values.get("class_accuracy")
        lines.append(
            f"| {name} | {values['fid']:.2f} | {values['kid']:.3f} | {values['precision']:.3f} | "
            f"{values['recall']:.3f} | {'-' if acc is None else f'{100 * acc:.1f} %'} | "
            f"{'-' if result is None else result['steps']} | "
            f"{'-' if result is None else round(result['images_per_second'])} | "
            f"{'-' if result is None else result['batch_size']} |"
        )
    table = "\n".join(lines)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps(
        {name: {"metrics": values, "run": result} for name, values, result in rows}, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
