"""Trains a shipped preset on the 60k images of full Fashion-MNIST within a CPU budget, measures it
against the 10k test images with the shipped extractor and classifier, and writes it with
`save_to_preset` (config.json, model.weights.h5, metadata.json with the command, data, steps, CPU
minutes, version and measured numbers, samples.npy for a fixed seed) and its grid
docs/presets/NAME.png.

    python benchmarks/train_presets.py dcgan_fashion_mnist_conditional
    python benchmarks/train_presets.py vae_fashion_mnist --cpu-seconds 20 --eval-samples 500 --out /tmp/p

The budget is process CPU time (all threads; `time.process_time()`), so other jobs on a shared
machine do not shorten a run; 1200 CPU-seconds are 10 minutes of both cores of a 2-core CPU.
Graph tracing counts, evaluation does not. Weights are stored in float16 (half the size; Keras
casts them back to float32 on load); the cost of that is measured: the headline metric of the
float32 model against the float16 one, on `cost_samples` samples each (default 2,000).

Metrics (what `metadata["metrics"]` holds):
  - samplers: FID, KID, precision, recall of `--eval-samples` samples (default 10,000) against
    the 10,000 test images; conditional ones also the class accuracy (the shipped classifier's
    share of samples in the class asked for; labels cycle through the classes);
  - VAE and PixelCNN: test bits/dim besides (the negative ELBO's, an upper bound, for the VAE);
  - pix2pix: MAE, PSNR, SSIM, FID and class kept on the 10,000 test pairs;
  - text: benchmarks/text_quality.py's class and colour accuracy on seen and unseen
    (class, colour) pairs, and FID on luminance.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

DATA = "idx:/usr/share/datasets/fashion-mnist"
CAPTIONS = "fashion_mnist_captions:/usr/share/datasets/fashion-mnist"
SEED = 0
SAMPLE_SEED = 24  # the seed of the samples stored with each preset (tests/test_presets.py)
STORED = 8  # images stored per preset

# name -> what it is (family, conditioning, constructor options besides the family's defaults),
# its default CPU budget, its target (the issue's), the samples it is evaluated on and how many
# the float16 cost is measured on (sampling is the slow part of diffusion and PixelCNN).
PRESETS = {
    "dcgan_fashion_mnist_conditional": dict(
        family="dcgan", conditional=True, cpu_seconds=1200,
        target="FID <= 2.0, class accuracy >= 95 %"),
    "dcgan_fashion_mnist": dict(family="dcgan", cpu_seconds=600, target="FID <= 10"),
    # filters 32, as benchmarks/pix2pix_quality.py measured it: the default 64 is 12.7 MB in
    # float16 (6.3M parameters), over the 6 MB a preset may take, and 4x slower per step.
    "pix2pix_fashion_mnist_edges": dict(
        family="pix2pix", cpu_seconds=600, target="PSNR >= 21 dB, class kept >= 90 %",
        model={"filters": 32}),
    "vae_fashion_mnist": dict(family="vae", cpu_seconds=600, target="test bits/dim and FID reported"),
    # Sampling and the likelihood of 256 levels are slow on a CPU: 1,000 samples, 2,000 test images.
    "pixelcnn_fashion_mnist": dict(family="pixelcnn", cpu_seconds=900, target="test bits/dim <= 3.0",
                                   eval_samples=1000, cost_samples=0, likelihood_examples=2000),
    "text_fashion_mnist_colours": dict(
        family="dcgan", text=True, cpu_seconds=1200,
        target="issue 23's: seen pairs class >= 90 %, colour >= 95 %; unseen pairs class >= 80 %, colour >= 90 % (doubled budget)"),
    # 100 samples took 18 s on the loaded 2-core CPU (16 DPM++ steps with guidance): 2,000 of
    # them (an FID biased upwards against 10,000; compare within a sample count).
    "diffusion_fashion_mnist_conditional": dict(
        family="diffusion", conditional=True, cpu_seconds=1500,
        target="FID <= 2.0, class accuracy >= 95 %", eval_samples=2000, cost_samples=500),
    "vqvae_fashion_mnist": dict(family="vqvae", cpu_seconds=600, target="FID <= 20"),
}


# --------------------------------------------------------------------------------------------
# Training


def build(name, spec, kg):
    """The untrained model of preset `name` (the family's defaults) and the function that loads
    its training data for an epoch."""
    data = CAPTIONS if spec.get("text") else DATA
    info = kg.data.info(data, text=bool(spec.get("text")))
    family = kg.families.get(spec["family"])
    options = {"seed": SEED, **spec.get("model", {})}
    if spec.get("conditional"):
        options.update(num_classes=info.num_classes, class_names=info.class_names)
    if spec.get("text"):
        options["text"] = True
    if spec["family"] == "pix2pix":
        options["task"] = "edges"
    model = family.model(info.image_shape, **options)

    def epoch_data(epoch, batch_size=None):
        from keras_gen.training import epoch_seed

        seed = epoch_seed(SEED, epoch)
        batch_size = batch_size or model.default_batch_size * model.batches_per_step
        if spec["family"] == "pix2pix":
            return kg.data.load_pairs(data, task="edges", split="train", batch_size=batch_size,
                                      seed=seed, drop_remainder=True)
        return kg.data.load(data, split="train", batch_size=batch_size, image_range=model.data_range,
                            with_labels=bool(spec.get("conditional")), text=bool(spec.get("text")),
                            seed=seed, drop_remainder=True)

    return model, epoch_data, data


def fit_within(model, epoch_data, budget):
    """Trains epoch after epoch (a fresh shuffle each) until `budget` (a TrainingBudget) is
    spent."""
    epoch = 0
    while not budget.spent:
        model.fit(epoch_data(epoch), initial_epoch=epoch, epochs=epoch + 1, callbacks=[budget],
                  verbose=0)
        epoch += 1
    return epoch


def train(name, spec, cpu_seconds, kg):
    model, epoch_data, data = build(name, spec, kg)
    model.compile()
    if spec.get("text"):
        model.adapt(epoch_data(0))  # the vocabulary; before the budget starts, as text_quality does
    stats = {"data": data}
    wall = time.time()
    budget = kg.callbacks.TrainingBudget(cpu_seconds=cpu_seconds)
    if spec["family"] == "vqvae":
        # Both stages within the budget, split as the VQ-VAE issue measured (PRIOR_SHARE).
        from keras_gen.models import vqvae

        start = time.process_time()
        stats.update(vqvae.fit_within_cpu_seconds(model, epoch_data, cpu_seconds, seed=SEED))
        steps, used = stats["vq_steps"] + stats["prior_steps"], time.process_time() - start
    else:
        stats["epochs"] = fit_within(model, epoch_data, budget)
        steps, used = budget.steps, budget.used_cpu_seconds
    stats.update(steps=steps, cpu_seconds=used, wall_seconds=time.time() - wall,
                 batch_size=model.default_batch_size * model.batches_per_step,
                 parameters=int(model.count_params()))
    return model, stats


# --------------------------------------------------------------------------------------------
# Evaluation


def sample_labels(model, n):
    return None if model.num_classes is None else (np.arange(n) % model.num_classes).astype(np.int32)


def sampler_metrics(model, n, kg, classifier, reference):
    """FID/KID/precision/recall of n samples against the test images; class accuracy too for a
    conditional model."""
    labels = sample_labels(model, n)
    start = time.time()
    samples = model.generate(n, seed=12345, labels=labels)
    out = {"sampling_seconds": time.time() - start}
    out.update(kg.metrics.quality_metrics(samples, reference, ("fid", "kid", "precision", "recall"),
                                          "fashion_mnist", num_samples=n, verbose=0))
    if labels is not None:
        predicted = np.argmax(classifier.predict(samples, batch_size=500, verbose=0), axis=-1)
        out["class_accuracy"] = float(np.mean(predicted == labels))
    return out


def evaluate(model, spec, n, kg):
    """The preset's metrics (see the module's docstring), as a dict of floats."""
    classifier = kg.metrics._classifier("fashion_mnist")
    if spec.get("text"):
        import text_quality

        # n samples in all: 10 seen and 10 unseen prompts
        args = argparse.Namespace(dataset=CAPTIONS, samples_per_prompt=max(1, n // 20), seed=SEED)
        reference, _ = text_quality.reference_luminance(args, 10 * args.samples_per_prompt)
        return {**text_quality.judge(model, args, classifier, reference),
                "samples_per_prompt": args.samples_per_prompt}
    if spec["family"] == "pix2pix":
        return kg.metrics.translation_metrics(model, test_pairs(kg),
                                              ("mae", "psnr", "ssim", "fid", "class_accuracy"),
                                              num_samples=n)
    out = sampler_metrics(model, n, kg, classifier, test_features(kg))
    if spec["family"] in ("vae", "pixelcnn"):
        out.update(kg.metrics.likelihood_metrics(model, test_levels(model, spec, kg), verbose=0))
    return out


def test_levels(model, spec, kg):
    """The test images in the model's range for bits/dim: the first `likelihood_examples` of
    them (default all 10,000)."""
    data = kg.data.load(DATA, split="test", image_range=model.data_range, shuffle=False,
                        batch_size=500, seed=SEED + 1)
    return data.take(spec.get("likelihood_examples", 10_000) // 500)


@functools.lru_cache(maxsize=None)
def test_features(kg):
    """The extractor's statistics of the 10,000 test images (once per run)."""
    test = kg.data.load(DATA, split="test", image_range="unit", shuffle=False, batch_size=500)
    return kg.metrics.feature_statistics(test, "fashion_mnist", verbose=0)


def headline(spec):
    """The metric the float16 cost is measured on."""
    if spec.get("text"):
        return "seen_class"
    return {"pix2pix": "psnr", "pixelcnn": "bits_per_dim"}.get(spec["family"], "fid")


def test_pairs(kg):
    return kg.data.load_pairs(DATA, task="edges", split="test", batch_size=500, shuffle=False,
                              seed=SEED + 1, with_labels=True)


# --------------------------------------------------------------------------------------------
# Stored samples and the grid


def stored_inputs(model, spec, kg):
    """What the stored samples are made from: {"labels": ...}, {"prompts": ...} or, for pix2pix,
    {"inputs": test edge images in [0, 1]}."""
    if spec.get("text"):
        from text_quality import prompt_pairs

        seen, unseen = prompt_pairs()
        return {"prompts": [kg.data.caption(c, colour) for c, colour in (seen[:4] + unseen[:4])]}
    if spec["family"] == "pix2pix":
        inputs = next(iter(test_pairs(kg)))[0].numpy()[:STORED]
        return {"inputs": model.to_unit_range(inputs)}
    labels = sample_labels(model, STORED)
    return {"labels": None if labels is None else [model.class_names[i] for i in labels]}


def preset_samples(model, stored):
    """The images `tests/test_presets.py` compares with samples.npy."""
    if "inputs" in stored:
        return model.translate(stored["inputs"])
    if "prompts" in stored:
        return model.generate(prompts=stored["prompts"], seed=SAMPLE_SEED)
    return model.generate(STORED, seed=SAMPLE_SEED, labels=stored["labels"])


def write_grid(model, spec, path, kg):
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec["family"] == "pix2pix":
        from pix2pix_quality import grid

        pairs = next(iter(kg.data.load_pairs(DATA, task="edges", split="test", batch_size=8,
                                             shuffle=False, seed=SEED + 1, with_labels=True)))
        return grid(model, tuple(p.numpy() for p in pairs), path)
    if spec.get("text"):
        prompts = stored_inputs(model, spec, kg)["prompts"]
        images = model.generate(prompts=[p for p in prompts for _ in range(8)], seed=1)
        return kg.callbacks.save_grid(path, images, 8)
    # conditional: one class per column
    return kg.callbacks.save_grid(path, model.generate(100, seed=1, labels=sample_labels(model, 100)), 10)


def measured(metrics):
    """The card numbers of a preset's metrics, as text."""
    parts = []
    for key, text in (("fid", "FID {:.2f}"), ("class_accuracy", "class acc. {:.1%}"),
                      ("bits_per_dim", "test bits/dim {:.3f}"),
                      ("neg_elbo_bits_per_dim", "test bits/dim <= {:.3f} (ELBO)"),
                      ("psnr", "PSNR {:.2f} dB"), ("seen_class", "seen: class {:.1%}"),
                      ("seen_colour", "colour {:.1%}"), ("unseen_class", "unseen: class {:.1%}"),
                      ("unseen_colour", "colour {:.1%}")):
        if isinstance(metrics.get(key), (int, float)):
            parts.append(text.format(metrics[key]))
    return ", ".join(parts).replace("%", " %")


def table():
    """The shipped presets as a Markdown table, from their metadata."""
    from keras_gen.models import base

    lines = ["| preset | model | target | measured | steps | CPU min | weights | float16 cost | made by | grid |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, meta in base.shipped_presets().items():
        cost = meta.get("float16_cost", {})
        size = (base.PRESETS_DIR / name / "model.weights.h5").stat().st_size / 1e6
        cost_text = (f"{cost['metric']} {cost['float32']:.4g} -> {cost['float16']:.4g}"
                     if "float32" in cost else "-")
        lines.append(f"| `{name}` | {meta['class_name']} | {meta.get('target', '-')} | "
                     f"{measured(meta.get('metrics', {}))} | {meta.get('steps')} | "
                     f"{meta.get('cpu_minutes')} | {size:.2f} MB | {cost_text} | "
                     f"`{meta.get('command', '').replace('python benchmarks/', '')}` | "
                     f"[grid](docs/presets/{name}.png) |")
    return "\n".join(lines)


# The files that show the table, with the prefix of their grid links, between these markers.
TABLE_FILES = {ROOT / "README.md": "docs/", ROOT / "benchmarks" / "RESULTS.md": "../docs/"}
TABLE_MARKERS = ("<!-- presets table -->\n", "<!-- end presets table -->")


def write_table(text):
    """Replaces the presets table between the markers of README.md and RESULTS.md."""
    begin, end = TABLE_MARKERS
    for path, prefix in TABLE_FILES.items():
        page = path.read_text()
        a, b = page.index(begin) + len(begin), page.index(end)
        path.write_text(page[:a] + text.replace("](docs/", f"]({prefix}") + "\n" + page[b:])
        print(f"wrote the table into {path.relative_to(ROOT)}")


# --------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", choices=sorted(PRESETS))
    parser.add_argument("--table", action="store_true",
                        help="print the table of the shipped presets (RESULTS.md, README) and exit")
    parser.add_argument("--write", action="store_true",
                        help="with --table: write it between the markers of README.md and RESULTS.md")
    parser.add_argument("--cpu-seconds", type=float, default=None,
                        help="training budget in process CPU seconds (default: the preset's)")
    parser.add_argument("--eval-samples", type=int, default=None,
                        help="samples for FID etc. (default 10,000, fewer for slow samplers)")
    parser.add_argument("--out", default=str(ROOT / "keras_gen" / "presets"),
                        help="the preset is written to OUT/NAME (default: the package's presets)")
    parser.add_argument("--grid-dir", default=None, help="default: docs/presets (or OUT with --out)")
    args = parser.parse_args(argv)
    if args.table:
        return write_table(table()) if args.write else print(table())
    if args.name is None:
        parser.error("give the NAME of a preset to train (or --table)")
    spec = PRESETS[args.name]
    cpu_seconds = args.cpu_seconds or spec["cpu_seconds"]
    n = args.eval_samples or spec.get("eval_samples", 10_000)
    out = Path(args.out) / args.name
    default_out = Path(args.out).resolve() == (ROOT / "keras_gen" / "presets").resolve()
    grid_dir = Path(args.grid_dir or (ROOT / "docs" / "presets" if default_out else args.out))

    global np
    import numpy as np

    import keras_gen as kg

    load_start = os.getloadavg()[0]
    print(f"training {args.name} for {cpu_seconds:g} CPU-s ...", flush=True)
    model, stats = train(args.name, spec, cpu_seconds, kg)
    print(json.dumps(stats), flush=True)

    # The preset as shipped (float16 weights), reloaded: what users and the tests get.
    float32_dir = Path(str(out) + ".float32")
    model.save_to_preset(float32_dir)
    model.save_to_preset(out, weights_dtype="float16")
    shipped = type(model).from_preset(out)
    eval_start = time.time()
    metrics = evaluate(shipped, spec, n, kg)
    metrics["eval_seconds"] = time.time() - eval_start
    print(json.dumps(metrics), flush=True)
    key = headline(spec)
    cost_n = min(n, spec.get("cost_samples", 2000))
    if cost_n and key in metrics:
        float32 = evaluate(type(model).from_preset(float32_dir), spec, cost_n, kg)
        same = metrics if cost_n == n else evaluate(shipped, spec, cost_n, kg)
        float16_cost = {"metric": key, "samples": cost_n, "float32": float32[key], "float16": same[key]}
    else:  # bits/dim needs no samples: the float32 model on the same test images
        float32 = kg.metrics.likelihood_metrics(
            type(model).from_preset(float32_dir), test_levels(model, spec, kg), verbose=0)
        float16_cost = {"metric": key, "float32": float32[key], "float16": metrics[key]}
    print("float16 cost:", json.dumps(float16_cost), flush=True)

    stored = stored_inputs(shipped, spec, kg)
    samples = preset_samples(shipped, stored)
    command = "python benchmarks/train_presets.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    metadata = {
        "description": f"{type(model).__name__} trained on full Fashion-MNIST (60,000 training images"
                       f"{', captioned and tinted' if spec.get('text') else ''}"
                       f"{', edges -> item pairs' if spec['family'] == 'pix2pix' else ''})",
        "dataset": stats["data"],  # a keras_gen.data source (export's int8 calibration reads it)
        **({"task": "edges"} if spec["family"] == "pix2pix" else {}),
        "training_data": stats["data"] + " (split 'train', 60,000 images)",
        "command": command,
        "steps": stats["steps"],
        "batch_size": stats["batch_size"],
        "cpu_minutes": round(stats["cpu_seconds"] / 60, 2),
        "wall_minutes": round(stats["wall_seconds"] / 60, 2),
        "training": stats,
        "target": spec["target"],
        "metrics": metrics,
        "evaluation": ("text_quality.judge: samples_per_prompt per (class, colour) prompt, 10 seen "
                       "and 10 unseen prompts" if spec.get("text") else
                       f"the first {n} of the 10,000 test pairs" if spec["family"] == "pix2pix" else
                       f"{n} samples (seed 12345) vs the 10,000 test images, shipped extractor "
                       "and classifier" + (f"; bits/dim on the first "
                                           f"{spec.get('likelihood_examples', 10_000)} test images"
                                           if spec["family"] in ("vae", "pixelcnn") else "")),
        "float16_cost": float16_cost,
        "samples": {"file": "samples.npy", "seed": SAMPLE_SEED,
                    **{k: v for k, v in stored.items() if k != "inputs"},
                    **({"inputs_file": "inputs.npy"} if "inputs" in stored else {})},
        "load_average_at_start": load_start,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    # Rewrite with the final metadata; float16 weights again give the model `shipped` has.
    model.save_to_preset(out, metadata=metadata, weights_dtype="float16")
    np.save(out / "samples.npy", samples)
    if "inputs" in stored:
        np.save(out / "inputs.npy", stored["inputs"])
    check = type(model).from_preset(out)
    np.testing.assert_allclose(preset_samples(check, stored), samples, atol=1e-5)
    write_grid(shipped, spec, grid_dir / f"{args.name}.png", kg)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB; weights "
          f"{(out / 'model.weights.h5').stat().st_size / 1e6:.2f} MB) and "
          f"{grid_dir / (args.name + '.png')}", flush=True)
    import shutil

    shutil.rmtree(float32_dir)


if __name__ == "__main__":
    main()
