"""The VQ-VAE's train step with and without XLA, in process CPU seconds per step (what a shared
machine's other load does not change) and wall seconds, on full Fashion-MNIST at the defaults.

    python benchmarks/vqvae_throughput.py --repeats 3 --steps 30

Each variant is built and compiled once and warmed up (tracing, XLA compilation); then the
variants run `--steps` steps in turn, `--repeats` times, interleaved so they see the same load.
The table gives the medians and the ratio to the plain step measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

DATA = "idx:/usr/share/datasets/fashion-mnist"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras_gen as kg

    train = kg.data.load(args.data, split="train", batch_size=args.batch_size, image_range="unit",
                         seed=0, drop_remainder=True).repeat()
    variants = {
        "plain (the default)": dict(jit_compile=False),
        "XLA": dict(jit_compile=True),
        "plain, codebook by loss": dict(jit_compile=False, codebook_update="loss"),
    }
    models = {}
    for name, options in variants.items():
        options = dict(options)
        jit = options.pop("jit_compile")
        model = kg.models.VQVAE(kg.data.info(args.data).image_shape, seed=0, **options)
        model.compile(jit_compile=jit)
        model.fit(train.take(5), epochs=1, verbose=0)  # warm-up: tracing, XLA compilation
        models[name] = model
    cpu = {name: [] for name in variants}
    wall = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, model in models.items():
            c, w = time.process_time(), time.perf_counter()
            model.fit(train.take(args.steps), epochs=1, verbose=0)
            cpu[name].append((time.process_time() - c) / args.steps)
            wall[name].append((time.perf_counter() - w) / args.steps)
    base = np.median(cpu["plain (the default)"])
    print(f"VQ-VAE (28x28x1, defaults), batch {args.batch_size}, {args.steps} steps x {args.repeats} "
          f"repeats; load {os.getloadavg()[0]:.1f}\n")
    print("| step | CPU s/step | wall s/step | CPU vs plain |")
    print("|---|---|---|---|")
    for name in variants:
        c = np.median(cpu[name])
        print(f"| {name} | {c:.3f} | {np.median(wall[name]):.3f} | {c / base:.2f}x |")


if __name__ == "__main__":
    main()
