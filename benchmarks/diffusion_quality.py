"""Diffusion against DCGAN per CPU minute, and diffusion sampling: steps and guidance against
quality, in one run.

    python benchmarks/diffusion_quality.py                       # the full run, 10 minutes each
    python benchmarks/diffusion_quality.py --minutes 0.2 --samples 200 --sweep-samples 100
    python benchmarks/diffusion_quality.py --variants diffusion-cond --variant-json \
        '{"name": "eps", "family": "diffusion", "conditional": true, "model": {"prediction": "eps"}}'
    python benchmarks/diffusion_quality.py --variants diffusion-cond --variant-json \
        '{"name": "bf16", "family": "diffusion", "conditional": true, "policy": "mixed_bfloat16"}'

Tables (printed, and written to <out>/table.md):
1. Diffusion and DCGAN at their defaults (`Family(shape)` + `compile()`, the family's
   `default_batch_size`), unconditional and conditional, each trained for `--minutes` of wall
   clock on full Fashion-MNIST in a fresh process, one at a time: FID, KID, precision, recall
   (shipped Fashion-MNIST extractor, `--samples` samples against the 10,000 test images), class
   accuracy (shipped classifier), steps and training images per second. As in
   benchmarks/gan_quality.py, the budget counts from the first call of `fit`; sampling is not in it.
2. FID and seconds per image against sampling steps (4, 8, 16, 32, 64) for DDIM (eta 0) and
   DPM-Solver++(2M), on `--sweep-variant` (default: the conditional diffusion model at its
   default guidance), `--sweep-samples` samples each (FIDs of fewer than 10,000 samples are
   biased upwards: compare them within the table, not with table 1).
3. Guidance 0, 1, 2, 4 on the same model at its default sampler and steps: FID and class
   accuracy.

`--reuse` builds the tables from variants an earlier invocation trained into the same --out.
`--cpu-seconds S` counts the budget in the training process's CPU seconds (all its threads)
instead of wall-clock minutes, so that other jobs on a shared machine do not shorten one run more
than another; 1200 is 10 minutes of both cores of this 2-core CPU.

LiteRT against Python time per image: benchmarks/diffusion_sampling.py; the same sweep on a saved
model or preset, with the export's error: benchmarks/diffusion_sweep.py (which this imports).
Data: the Debian package dataset-fashion-mnist (`idx:/usr/share/datasets/fashion-mnist`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from diffusion_sweep import sweep, sweep_tables, timed_samples  # noqa: E402  (the sampling sweep)
DATA = "idx:/usr/share/datasets/fashion-mnist"

VARIANTS = {
    "diffusion": {"family": "diffusion", "conditional": False},
    "diffusion-cond": {"family": "diffusion", "conditional": True},
    "dcgan": {"family": "dcgan", "conditional": False},
    "dcgan-cond": {"family": "dcgan", "conditional": True},
}


# --------------------------------------------------------------------------------------------
# Worker: one training run (and, for the sweep variant, the sampling sweeps) in its own process


def _build(spec, info):
    import keras_gen as kg

    num_classes = info.num_classes if spec["conditional"] else None
    family = {"diffusion": kg.models.Diffusion, "dcgan": kg.models.DCGAN}[spec["family"]]
    return family(info.image_shape, num_classes=num_classes, seed=spec["seed"], **spec.get("model", {}))


def _save_samples(out, name, samples, labels):
    import numpy as np

    np.save(out / f"{name}.samples.npy", samples)
    if labels is not None:
        np.save(out / f"{name}.labels.npy", labels)


def _worker(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    import numpy as np
    import keras

    import keras_gen as kg

    info = kg.data.info(spec["data"])
    # "policy": a Keras dtype policy for the run (e.g. "mixed_bfloat16"; float32 by default)
    keras.mixed_precision.set_global_policy(spec.get("policy", "float32"))
    model = _build(spec, info)
    compile_kwargs = {k: keras.optimizers.get(v) if isinstance(v, dict) else v
                      for k, v in spec.get("compile", {}).items()}
    model.compile(**compile_kwargs)
    batch_size = spec.get("batch_size") or model.default_batch_size
    conditional = model.num_classes is not None
    data = kg.data.load(spec["data"], split="train", batch_size=batch_size,
                        image_range=model.data_range, with_labels=conditional, seed=spec["seed"],
                        drop_remainder=True)

    # The budget in wall-clock seconds, or in this process's CPU seconds (`--cpu-seconds`: all
    # its threads together, so other jobs on the machine do not shorten a run).
    budget = kg.callbacks.TrainingBudget(**{"cpu_seconds" if spec.get("cpu_budget") else "seconds":
                                            spec["seconds"]})
    model.fit(data, epochs=10_000, verbose=0, callbacks=[budget])
    seconds, cpu_seconds = budget.used_seconds, budget.used_cpu_seconds
    out = Path(spec["out"])
    name = spec["name"]
    n = spec["samples"]

    def labels_for(count):
        return (np.arange(count) % model.num_classes).astype(np.int32) if conditional else None

    samples, per_image, _ = timed_samples(model, n)
    _save_samples(out, name, samples, labels_for(n))
    kg.callbacks.save_grid(out / f"{name}.png", model.generate(100, seed=1, labels=labels_for(100)), 10)
    result = {
        "steps": budget.steps, "seconds": seconds, "cpu_seconds": cpu_seconds, "batch_size": batch_size,
        "images_per_second": budget.steps * batch_size / seconds,
        "seconds_per_sample": per_image, "sweeps": {},
    }
    if spec.get("sweep"):
        for key, settings, samples, labels, wall, cpu in sweep(model, spec["sweep_samples"]):
            _save_samples(out, f"{name}.{key}", samples, labels)
            result["sweeps"][f"{name}.{key}"] = {**settings, "seconds_per_image": wall,
                                                 "cpu_seconds_per_image": cpu}
    (out / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))


# --------------------------------------------------------------------------------------------
# Parent: run the workers, then the metrics with this checkout's code


def run_variant(name, spec, args, tmp):
    spec = {"name": name, "data": args.data, "seed": args.seed, "samples": args.samples,
            "sweep_samples": args.sweep_samples,
            "seconds": args.cpu_seconds or args.minutes * 60, "cpu_budget": bool(args.cpu_seconds),
            "out": str(args.out), "sweep": name == args.sweep_variant, **spec}
    spec_path = Path(tmp) / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, __file__, "--worker", str(spec_path)], env=env, check=True, cwd=tmp)
    result = json.loads((args.out / f"{name}.json").read_text())
    result["conditional"] = spec["conditional"]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget")
    parser.add_argument("--cpu-seconds", type=float, default=None,
                        help="budget in process CPU seconds instead of --minutes of wall clock "
                             "(robust to other jobs; 1200 = 10 minutes of both cores)")
    parser.add_argument("--variants", "--families", dest="variants",
                        default="diffusion,diffusion-cond,dcgan,dcgan-cond")
    parser.add_argument("--variant-json", action="append", default=[],
                        help='extra variant, e.g. \'{"name": "x", "family": "diffusion", '
                             '"conditional": true, "model": {"prediction": "eps"}, "compile": {}}\'')
    parser.add_argument("--sweep-variant", default="diffusion-cond",
                        help="the variant whose steps and guidance are swept ('' for none)")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--sweep-samples", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/diffusion_quality")
    parser.add_argument("--reuse", action="store_true",
                        help="take a variant's samples and timings from an earlier run into --out "
                             "instead of training it again (tables from runs made one at a time)")
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker)
    args.out = Path(args.out).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    variants = {name: dict(VARIANTS[name]) for name in args.variants.split(",") if name}
    for text in args.variant_json:
        extra = json.loads(text)
        variants[extra.pop("name")] = extra

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in variants.items():
            saved = args.out / f"{name}.json"
            if args.reuse and saved.exists():  # trained by an earlier invocation into --out
                results[name] = {**json.loads(saved.read_text()), "conditional": spec["conditional"]}
                print(f"reusing {name} from {saved}", flush=True)
                continue
            print(f"training {name} ...", flush=True)
            results[name] = run_variant(name, spec, args, tmp)
            print(f"  {results[name]['steps']} steps in {results[name]['seconds']:.0f} s "
                  f"({results[name]['cpu_seconds']:.0f} CPU-s)", flush=True)

    import keras

    import keras_gen as kg

    from gan_quality import metrics  # FID/KID/precision/recall and class accuracy of saved samples

    test = kg.data.load(args.data, split="test", image_range="unit", shuffle=False, batch_size=500)
    reference = kg.metrics.feature_statistics(test, "fashion_mnist")
    classifier = keras.models.load_model(kg.metrics.FASHION_MNIST_CLASSIFIER, compile=False)

    def percent(values):
        acc = values.get("class_accuracy")
        return "-" if acc is None else f"{100 * acc:.1f} %"

    budget_text = f"{args.cpu_seconds:g} CPU-s" if args.cpu_seconds else f"{args.minutes:g} min"
    lines = [f"budget {budget_text}; {args.samples} samples; {time.strftime('%Y-%m-%d %H:%M')}; "
             f"load {os.getloadavg()[0]:.1f}", "",
             "| variant | FID | KID | precision | recall | class acc. | steps | img/s (train) | s/sample |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = {}
    for name, result in results.items():
        values = rows[name] = metrics(name, result, args, reference, classifier)
        lines.append(
            f"| {name} | {values['fid']:.2f} | {values['kid']:.3f} | {values['precision']:.3f} | "
            f"{values['recall']:.3f} | {percent(values)} | {result['steps']} | "
            f"{result['images_per_second']:.0f} | {result['seconds_per_sample']:.4f} |")
    cells = {}
    for result in results.values():
        for key, settings in result["sweeps"].items():
            cells[key] = {**settings, **metrics(key, result, args, reference, classifier)}
            rows[key] = {k: cells[key][k] for k in cells[key] if k not in settings}
    lines += sweep_tables(cells, f"{args.sweep_variant}, {args.sweep_samples} samples; Python")
    table = "\n".join(lines)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps(
        {"metrics": rows, "runs": results}, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
