"""Where the VQ-VAE's samples go wrong, and which levers fix them (issue 27): one VQ-VAE stage,
snapshotted at several CPU budgets, then PixelCNN priors on the snapshots' codes, each at its own
CPU budget, all measured on full Fashion-MNIST.

    python benchmarks/vqvae_levers.py --num-embeddings 256 --snapshots 240,360 \\
        --priors 360:240:stream,240:360:default

A prior is `SNAPSHOT:CPU_SECONDS:NAME` (NAME in PRIORS below): trained on the codes of the
VQ-VAE stopped at SNAPSHOT CPU-seconds, for CPU_SECONDS, so SNAPSHOT + CPU_SECONDS is the
whole budget of that pair. CPU-seconds are the process's (`time.process_time()`, all threads):
other load on a shared machine does not change them. The "stream" prior reads the codes as
benchmarks/vqvae_quality.py did (`vq.code_dataset`, encoded batch by batch); the others train
on the codes of the 60k images encoded once (`keras_gen.models.vqvae.fit_prior`), the encoding
counted in their budget.

Measured, per snapshot: reconstruction PSNR and codebook perplexity on the 10,000 test images,
the FID of decoded real codes (10,000 training images through the codes) and of the 10,000 real
training images themselves (the floor), both against the test set with the shipped extractor.
Per prior: bits per code on 10,000 training codes and on the test codes (over- or underfitting),
the FID of `--sweep-samples` samples at each `--temperatures`, of `--samples` samples at 1 and
at the best swept temperature, and for a conditional prior the shipped classifier's accuracy on
its samples. A grid per prior: samples at 1, samples at the best temperature, decoded real codes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

DATA = "idx:/usr/share/datasets/fashion-mnist"

# Prior variants: the PixelCNN's options, and how it reads the codes.
PRIORS = {
    "stream": {"stream": True},  # today's route: the default prior on vq.code_dataset
    "default": {},
    "conditional": {"conditional": True},
    "shallow": {"num_layers": 4},
    "narrow": {"filters": 32},
    "wide": {"filters": 96, "num_layers": 5},
    "lr3": {"learning_rate": 3e-3},
    "batch128": {"batch_size": 128},
}


def _budget(deadline):
    """A callback that stops `fit` when the process's CPU clock reads `deadline`."""
    import keras_gen as kg

    return kg.callbacks.TrainingBudget(cpu_seconds=max(0.0, deadline - time.process_time()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-embeddings", type=int, default=256)
    parser.add_argument("--snapshots", default="360", help="VQ-VAE stage budgets, CPU-seconds")
    parser.add_argument("--priors", default="360:240:stream")
    parser.add_argument("--temperatures", default="1,0.9,0.8,0.7,0.6,0.5,0")
    parser.add_argument("--sweep-samples", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--out", default="runs/vqvae_levers")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import keras

    import keras_gen as kg
    from keras_gen.models.vqvae import fit_prior

    start = time.process_time()
    snapshots = sorted(float(s) for s in args.snapshots.split(","))
    info = kg.data.info(args.data)
    vq = kg.models.VQVAE(info.image_shape, num_embeddings=args.num_embeddings, seed=args.seed)
    vq.compile()
    train = kg.data.load(args.data, split="train", batch_size=64, image_range="unit",
                         seed=args.seed, drop_remainder=True)
    steps = 0
    for budget in snapshots:
        callback = _budget(start + budget)
        vq.fit(train, epochs=100_000, verbose=0, callbacks=[callback])
        steps += callback.steps
        vq.save(out / f"vq_{budget:g}.keras")
        print(json.dumps({"snapshot": budget, "cpu_seconds": time.process_time() - start,
                          "steps": steps}), flush=True)

    # Evaluation (not in any budget)
    def arrays(split, n=None):
        ds = kg.data.load(args.data, split=split, batch_size=1000, image_range="unit",
                          with_labels=True, shuffle=False)
        images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
        images, labels = np.concatenate(images), np.concatenate(labels)
        return (images[:n], labels[:n]) if n else (images, labels)

    test_images, test_labels = arrays("test")
    train_images, train_labels = arrays("train", 10_000)
    reference = kg.metrics.feature_statistics(test_images, "fashion_mnist", verbose=0)
    classifier = keras.models.load_model(kg.metrics.FASHION_MNIST_CLASSIFIER, compile=False)

    def fid(images):
        return kg.metrics.fid(images, reference, num_samples=len(images), verbose=0)

    rows = {"floor_fid_train_vs_test": fid(train_images)}
    print(json.dumps(rows), flush=True)
    for budget in snapshots:
        snap = keras.models.load_model(out / f"vq_{budget:g}.keras")
        codes = snap.encode_codes(test_images, 500)
        mse = float(np.mean((snap.decode_codes(codes, 500) - test_images) ** 2))
        p = np.bincount(codes.ravel(), minlength=snap.num_embeddings) / codes.size
        decoded = snap.decode_codes(snap.encode_codes(train_images, 500), 500)
        row = {"psnr": 10 * math.log10(1 / mse),
               "perplexity": float(np.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))),
               "decoded_real_fid": fid(decoded),
               "decoded_real_fid_2k": fid(decoded[: args.sweep_samples])}
        rows[f"vq_{budget:g}"] = row
        print(f"vq_{budget:g}", json.dumps(row), flush=True)

    temperatures = [float(t) for t in args.temperatures.split(",")]
    for spec in args.priors.split(","):
        snapshot, cpu, name = spec.split(":")
        options = dict(PRIORS[name])
        snap = keras.models.load_model(out / f"vq_{float(snapshot):g}.keras")
        conditional = options.pop("conditional", False)
        if conditional:  # the same autoencoder, its prior conditioned on the class
            config = snap.get_config()
            config["num_classes"] = info.num_classes
            cond = kg.models.VQVAE.from_config(config)
            cond.set_weights(snap.get_weights())
            snap = cond
        stream = options.pop("stream", False)
        began = time.process_time()
        deadline = began + float(cpu)
        callback = _budget(deadline)
        if stream:
            prior = kg.models.PixelCNN(snap.code_shape + (1,), levels=snap.num_embeddings,
                                       seed=args.seed)
            prior.compile()
            prior.fit(snap.code_dataset(train), epochs=100_000, verbose=0, callbacks=[callback])
            snap.set_prior(prior)
        else:
            data = kg.data.load(args.data, split="train", batch_size=1000, image_range="unit",
                                with_labels=conditional, shuffle=False)
            fit_prior(snap, data, callbacks=[callback], seed=args.seed, epochs=100_000, **options)
        row = {"prior_steps": callback.steps, "prior_cpu_seconds": time.process_time() - began,
               "prior_parameters": snap.prior.count_params()}

        def bits(images, labels):
            c = snap.encode_codes(images, 500)[..., None]
            lp = snap.prior.log_prob(c, labels if conditional else None, batch_size=500)
            return float(-np.mean(lp) / (c[0].size * math.log(2)))

        row["bits_per_code_train"] = bits(train_images, train_labels)
        row["bits_per_code_test"] = bits(test_images, test_labels)
        n = args.sweep_samples
        labels = np.arange(n) % 10 if conditional else None
        sweep = {}
        for t in temperatures:
            samples = snap.generate(n, seed=12345, labels=labels, temperature=t, verbose=0)
            sweep[t] = fid(samples)
            if conditional:
                predicted = np.argmax(classifier.predict(samples, batch_size=500, verbose=0), -1)
                row[f"class_accuracy_t{t:g}"] = float(np.mean(predicted == labels))
        row["fid_sweep"] = {f"{t:g}": v for t, v in sweep.items()}
        best = min(sweep, key=sweep.get)
        row["best_temperature"] = best
        big = {}
        labels = np.arange(args.samples) % 10 if conditional else None
        for t in sorted({1.0, best}, reverse=True):
            samples = snap.generate(args.samples, seed=12345, labels=labels, temperature=t, verbose=0)
            big[t] = samples
            row[f"fid_t{t:g}"] = fid(samples)
        grid = np.concatenate([big[1.0][:30], big[best][:30], decoded_real(snap, train_images[:30])])
        kg.callbacks.save_grid(out / f"{spec.replace(':', '_')}.png", grid, 10)
        rows[spec] = row
        print(spec, json.dumps(row), flush=True)
    rows["load"] = os.getloadavg()[0]
    (out / "levers.json").write_text(json.dumps(rows, indent=1))


def decoded_real(vq, images):
    return vq.decode_codes(vq.encode_codes(images))


if __name__ == "__main__":
    main()
