"""VQ-VAE + PixelCNN prior against the VAE and the DCGAN at the same CPU budget on full
Fashion-MNIST, and the time to draw 64 samples against a pixel-level PixelCNN.

    python benchmarks/vqvae_quality.py                         # 600 CPU-seconds per model
    python benchmarks/vqvae_quality.py --cpu-seconds 120 --samples 2000 --variants vqvae

Each variant trains in a fresh process, one at a time, for a budget of process CPU seconds
(`time.process_time()`, all threads; other load on a shared machine does not change it).
"vqvae" is the library's recipe at its defaults, `keras_gen.models.vqvae.fit_within_cpu_seconds`
(the autoencoder, then a prior fitted on its codes encoded once, at the measured split
PRIOR_SHARE unless `--vq-share` is given), sampled at the model's default temperature;
"vqvae-conditional" the same with a class-conditional prior (and its class accuracy);
"vqvae-round3" the same recipe at the defaults before issue 27's lever screen (256 codes,
temperature 0.8, the prior 40 % of the budget);
"vqvae-issue13" the recipe before issue 27 (256 codes, the prior on `vq.code_dataset`, the
VQ-VAE stage 60 % of the budget, temperature 1); "vqvae-loss" is the VQ-VAE stage alone with
codebook_update="loss" (the EMA's alternative), at the issue-13 stage budget; "vae" (ConvVAE)
and "dcgan" (DCGAN) take the whole budget. Every model is built and compiled at its defaults (`compile()`), batch 64 (DCGAN: its own
default batch, 32, as the command uses). Then, with this checkout's code: FID, KID, precision and recall of
`--samples` generated images against the 10,000 test images with the shipped Fashion-MNIST
extractor; for the likelihood models the test set's negative ELBO in bits/dim and the
reconstruction PSNR; for the VQ-VAE the codebook perplexity on the test set and the prior's
bits per code. Last, the time to draw 64 samples (prior + decoder) against a pixel-level PixelCNN
with the prior's filters and layers (28x28x1, 256 levels), both with the fast cached sampler,
median of `--repeats` after a warm-up, in this process.

Data: the Debian package dataset-fashion-mnist (`idx:/usr/share/datasets/fashion-mnist`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = "idx:/usr/share/datasets/fashion-mnist"
VARIANTS = ("vqvae", "vqvae-conditional", "vqvae-round3", "vqvae-issue13", "vqvae-loss", "vae",
            "dcgan")
ISSUE13_VQ_SHARE = 0.6
ISSUE13 = {"num_embeddings": 256, "temperature": 1.0}  # the defaults before issue 27
# The library's recipe as round 3 first left it (temperature 0.8, prior 40 % of the budget,
# 256 codes), before the lever screen moved it to 64 codes, temperature 0.9 and prior 60 %.
ROUND3 = {"num_embeddings": 256, "temperature": 0.8}
ROUND3_PRIOR_SHARE = 0.4


# --------------------------------------------------------------------------------------------
# Worker: one variant in its own process


def _fit(model, data, deadline, keras):
    """Trains until the process's CPU clock (`time.process_time()`) reads `deadline`."""
    import keras_gen as kg

    budget = kg.callbacks.TrainingBudget(cpu_seconds=max(0.0, deadline - time.process_time()))
    model.fit(data, epochs=100_000, verbose=0, callbacks=[budget])
    return budget.steps, {k: float(v) for k, v in budget.logs.items()}


def _worker(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    import numpy as np
    import keras

    import keras_gen as kg

    name, out = spec["name"], Path(spec["out"])
    start = time.process_time()
    budget = spec["cpu_seconds"]
    info = kg.data.info(spec["data"])
    result = {"name": name}

    def data(image_range, batch_size=None, labels=False, seed=spec["seed"]):
        return kg.data.load(spec["data"], split="train", batch_size=batch_size or spec["batch_size"],
                            image_range=image_range, seed=seed, drop_remainder=True,
                            with_labels=labels)

    if name in ("vqvae", "vqvae-conditional", "vqvae-round3"):
        from keras_gen.models.vqvae import fit_within_cpu_seconds
        from keras_gen.training import epoch_seed

        conditional = name == "vqvae-conditional"
        round3 = name == "vqvae-round3"
        model = kg.models.VQVAE(info.image_shape, seed=spec["seed"],
                                num_classes=info.num_classes if conditional else None,
                                **(ROUND3 if round3 else {}))
        model.compile()
        prior_share = None if spec["vq_share"] is None else 1 - spec["vq_share"]
        stats = fit_within_cpu_seconds(
            model, lambda epoch: data(model.data_range, labels=conditional,
                                      seed=epoch_seed(spec["seed"], epoch)),
            budget, prior_share=ROUND3_PRIOR_SHARE if round3 else prior_share, seed=spec["seed"])
        result.update(stats)
        result["prior_parameters"] = model.prior.count_params()
    elif name.startswith("vqvae"):
        options = {"codebook_update": "loss"} if name == "vqvae-loss" else {}
        model = kg.models.VQVAE(info.image_shape, seed=spec["seed"], **ISSUE13, **options)
        model.compile()
        stage = start + budget * ISSUE13_VQ_SHARE
        result["vq_steps"], result["vq_logs"] = _fit(model, data(model.data_range), stage, keras)
        result["vq_cpu_seconds"] = time.process_time() - start
        if name == "vqvae-issue13":
            prior = kg.models.PixelCNN(model.code_shape + (1,), levels=model.num_embeddings,
                                       seed=spec["seed"])
            prior.compile()
            codes = model.code_dataset(data(model.data_range))
            result["prior_steps"], result["prior_logs"] = _fit(prior, codes, start + budget, keras)
            model.set_prior(prior)
            result["prior_parameters"] = prior.count_params()
    elif name == "vae":
        model = kg.models.ConvVAE(info.image_shape, seed=spec["seed"])
        model.compile()
        result["steps"], result["logs"] = _fit(model, data(model.data_range), start + budget, keras)
    else:
        model = kg.models.DCGAN(info.image_shape, seed=spec["seed"])
        model.compile()
        result["steps"], result["logs"] = _fit(
            model, data(model.data_range, model.default_batch_size), start + budget, keras)
    result["cpu_seconds"] = time.process_time() - start
    result["parameters"] = model.count_params()
    model.save(out / f"{name}.keras")
    if name != "vqvae-loss":
        labels = None if model.num_classes is None else np.arange(spec["samples"]) % model.num_classes
        np.save(out / f"{name}.samples.npy", model.generate(spec["samples"], seed=12345, labels=labels))
        grid_labels = None if labels is None else np.arange(100) // 10
        kg.callbacks.save_grid(out / f"{name}.png", model.generate(100, seed=1, labels=grid_labels), 10)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))


# --------------------------------------------------------------------------------------------
# Parent


def run_variant(name, args, tmp):
    spec = {"name": name, "data": args.data, "seed": args.seed, "samples": args.samples,
            "cpu_seconds": args.cpu_seconds, "vq_share": args.vq_share, "batch_size": 64,
            "out": str(args.out)}
    if name == "vqvae-loss":
        spec["cpu_seconds"] = args.cpu_seconds * ISSUE13_VQ_SHARE
    spec_path = Path(tmp) / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    started = time.time()
    subprocess.run([sys.executable, __file__, "--worker", str(spec_path)], env=env, check=True, cwd=tmp)
    result = json.loads((Path(args.out) / f"{name}.json").read_text())
    result["wall_seconds"] = time.time() - started
    return result


def likelihood_metrics(name, model, test_images, test_labels):
    """Test negative ELBO (bits/dim), reconstruction PSNR, and for the VQ-VAE the codebook's
    perplexity on the test set and the prior's bits per code."""
    import numpy as np

    if name.startswith("vqvae"):
        labels = test_labels if model.num_classes else None
        values = model.evaluate_elbo(test_images, labels=labels, batch_size=500)
        values["temperature"] = model.temperature
        codes = model.encode_codes(test_images, batch_size=500)
        p = np.bincount(codes.ravel(), minlength=model.num_embeddings) / codes.size
        values["perplexity"] = float(np.exp(-np.sum(p[p > 0] * np.log(p[p > 0]))))
        values["codes_used"] = int(np.count_nonzero(p))
        return values
    if name == "vae":
        values = model.evaluate_elbo(test_images, batch_size=500)
        mse = float(np.mean((model.reconstruct(test_images, batch_size=500) - test_images) ** 2))
        values["psnr"] = 10 * math.log10(1 / mse)
        return values
    return {}


def sampling_times(vq, repeats):
    """Seconds to draw 64 images: the VQ-VAE (prior over codes, then the decoder) and a
    pixel-level PixelCNN of the prior's size, fast sampler, median after a warm-up."""
    import numpy as np

    import keras_gen as kg

    prior = vq.prior
    pixel = kg.models.PixelCNN(vq.image_shape, levels=256, filters=prior.filters,
                               num_layers=prior.num_layers, kernel_size=prior.kernel_size,
                               first_kernel_size=prior.first_kernel_size, seed=0)

    draws = {"vqvae_64": lambda seed: vq.generate(64, seed=seed),
             "pixelcnn_64": lambda seed: pixel.sample(64, seed=seed)}
    times = {name: [] for name in draws}
    for seed in range(repeats + 1):  # seed 0: the warm-up (tracing); interleaved, so both see
        for name, draw in draws.items():  # the same load
            start = time.perf_counter()
            draw(seed)
            if seed:
                times[name].append(time.perf_counter() - start)
    out = {name: float(np.median(t)) for name, t in times.items()}
    return {**out, "ratio": out["pixelcnn_64"] / out["vqvae_64"],
            "pixelcnn_parameters": pixel.count_params()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cpu-seconds", type=float, default=600.0, help="training budget per model")
    parser.add_argument("--vq-share", type=float, default=None,
                        help="the VQ-VAE stage's share of it (default: the library's measured split)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of 64 samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/vqvae_quality")
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker)
    args.out = Path(args.out).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: unknown {sorted(unknown)}; choose from {', '.join(VARIANTS)}")

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in variants:
            print(f"training {name} ...", flush=True)
            runs[name] = run_variant(name, args, tmp)
            print(f"  {json.dumps(runs[name])}", flush=True)

    import numpy as np
    import keras

    import keras_gen as kg

    test_ds = kg.data.load(args.data, split="test", image_range="unit", shuffle=False, batch_size=500,
                           with_labels=True)
    test_images = np.concatenate([x.numpy() for x, _ in test_ds])
    test_labels = np.concatenate([y.numpy() for _, y in test_ds])
    reference = kg.metrics.feature_statistics(test_images, "fashion_mnist")
    classifier = keras.models.load_model(kg.metrics.FASHION_MNIST_CLASSIFIER, compile=False)
    rows = {}
    for name in variants:
        model = keras.models.load_model(args.out / f"{name}.keras")
        values = likelihood_metrics(name, model, test_images, test_labels)
        if name != "vqvae-loss":
            samples = np.load(args.out / f"{name}.samples.npy")
            values.update(kg.metrics.quality_metrics(samples, reference, ("fid", "kid", "precision", "recall"),
                                                     "fashion_mnist", num_samples=len(samples)))
            if model.num_classes:
                predicted = np.argmax(classifier.predict(samples, batch_size=500, verbose=0), -1)
                values["class_accuracy"] = float(np.mean(predicted == np.arange(len(samples)) % 10))
        if name == "vqvae":
            values["sampling"] = sampling_times(model, args.repeats)
        rows[name] = values
        print(name, json.dumps(values), flush=True)

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    lines = [
        f"budget {args.cpu_seconds:g} CPU-seconds per model (VQ-VAE stage: "
        f"{'the library split' if args.vq_share is None else args.vq_share}, issue 13's "
        f"{ISSUE13_VQ_SHARE:g}); "
        f"{args.samples} samples; {time.strftime('%Y-%m-%d %H:%M')}; load {os.getloadavg()[0]:.1f}",
        "",
        "| model | FID | KID | precision | recall | class acc. | test -ELBO bits/dim | PSNR dB | perplexity | prior bits/code | temperature | steps | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {"vqvae": "VQ-VAE + prior (defaults)", "vqvae-conditional": "VQ-VAE + class-conditional prior (defaults)",
              "vqvae-round3": "VQ-VAE + prior (the defaults before issue 27's screen)",
              "vqvae-issue13": "VQ-VAE + prior (issue 13's recipe)",
              "vqvae-loss": "VQ-VAE stage, codebook by loss", "vae": "ConvVAE", "dcgan": "DCGAN"}
    for name in variants:
        v, r = rows[name], runs[name]
        steps = (f"{r['vq_steps']} + {r.get('prior_steps', 0)}" if name.startswith("vqvae")
                 else str(r["steps"]))
        params = f"{r['parameters']:,}"
        if r.get("prior_parameters"):
            params = f"{r['parameters'] - r['prior_parameters']:,} + {r['prior_parameters']:,}"
        lines.append(
            f"| {labels[name]} | {fmt(v.get('fid'), '.2f')} | "
            f"{fmt(v.get('kid'), '.3f')} | "
            f"{fmt(v.get('precision'), '.3f')} | {fmt(v.get('recall'), '.3f')} | "
            f"{fmt(v.get('class_accuracy'), '.3f')} | "
            f"{fmt(v.get('bits_per_dim'), '.3f')} | {fmt(v.get('psnr'), '.2f')} | "
            f"{fmt(v.get('perplexity'), '.1f')} | {fmt(v.get('prior_bits_per_code'), '.3f')} | "
            f"{fmt(v.get('temperature'), 'g')} | {steps} | {params} |"
        )
    if "vqvae" in rows:
        s = rows["vqvae"]["sampling"]
        lines += ["", f"64 samples, fast sampler, median of {args.repeats}: VQ-VAE (7x7 codes + decoder) "
                      f"{s['vqvae_64']:.2f} s, pixel-level PixelCNN (28x28x1, 256 levels, same filters and "
                      f"layers) {s['pixelcnn_64']:.2f} s: {s['ratio']:.1f}x faster"]
    table = "\n".join(lines)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps({"runs": runs, "metrics": rows}, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
