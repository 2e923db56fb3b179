"""Cost of one Pix2Pix train step on this CPU: plain graph vs XLA, transposed-convolution vs resize
upsampling, as process CPU milliseconds per step (all threads; other load on the machine does not
change it) and wall milliseconds. The ratio against the plain transposed-convolution step of the
same run is what counts; it is why `keras-gen train --model pix2pix` leaves XLA to Keras ("auto",
off on CPUs).

    python benchmarks/pix2pix_step.py --filters 32 --steps 30
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras_gen as kg  # noqa: E402


def measure(upsampling, jit, data, args):
    model = kg.models.Pix2Pix((28, 28, 1), filters=args.filters, upsampling=upsampling, seed=0)
    model.compile(jit_compile=jit)
    model.fit(data.take(3), epochs=1, verbose=0)  # trace / compile
    cpu, wall = [], []
    for _ in range(args.repeats):
        c, w = time.process_time(), time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        cpu.append((time.process_time() - c) / args.steps)
        wall.append((time.perf_counter() - w) / args.steps)
    return 1000 * float(np.median(cpu)), 1000 * float(np.median(wall))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = kg.data.load_pairs("fashion_mnist_10k", task="edges", batch_size=64, seed=0)
    data = data.take(args.steps).cache()
    for _ in data:  # fill the cache: the steps time the model, not the pipeline
        pass
    rows = [(up, jit, *measure(up, jit, data, args))
            for up in ("transpose", "resize") for jit in (False, True)]
    reference = rows[0][2]
    print(f"Pix2Pix 28x28x1, filters {args.filters}, batch 64, median of {args.repeats} x {args.steps} steps; "
          f"load {os.getloadavg()[0]:.1f}")
    print("| upsampling | XLA | CPU ms/step | wall ms/step | CPU vs plain transpose |\n|---|---|---|---|---|")
    for up, jit, cpu, wall in rows:
        print(f"| {up} | {'on' if jit else 'off'} | {cpu:.0f} | {wall:.0f} | {cpu / reference:.2f}x |")


if __name__ == "__main__":
    main()
