"""Sampling speed of a Gated PixelCNN: fast (cached, Ramachandran et al. 2017) vs naive (a full
forward pass per sub-pixel in one graph) vs a Python per-pixel loop like the keras-io PixelCNN
example (`model.predict` on the whole batch for every sub-pixel), 16 images, one run.

    python benchmarks/pixelcnn_sampling.py            # naive/Python-loop partly extrapolated
    python benchmarks/pixelcnn_sampling.py --full     # everything timed end to end (slow)

Naive and the Python loop cost the same for every sub-pixel (a whole forward pass), so unless
--full is given they are timed on the last `--rows` rows (via `complete`) and scaled to the
whole image by the number of sub-pixels; the table says which. The floor is one forward pass
over the batch: no sampler can beat it by much, since every activation must be computed once.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf

from keras_gen.models.pixelcnn import PixelCNN


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python_loop(model, levels, start_row, seed=0):
    """The keras-io way: for each sub-pixel, predict on the whole batch, sample one value."""
    h, w, c = model.image_shape
    levels = levels.copy()
    tf.random.set_seed(seed)
    for row in range(start_row, h):
        for col in range(w):
            for ch in range(c):
                logits = model.predict(levels, verbose=0)[:, row, col, ch]
                levels[:, row, col, ch] = tf.random.categorical(logits, 1)[:, 0].numpy()
    return levels


def bench(shape, filters, num_layers, n, rows, full, repeats):
    model = PixelCNN(shape, levels=256, filters=filters, num_layers=num_layers, seed=0)
    h, w, c = shape
    zeros = np.zeros((n,) + shape, np.int32)
    forward = tf.function(model.distribution_params)
    forward(zeros)
    model.complete(zeros, known_rows=h, method="naive")  # traces the graphs: warm-up
    model.complete(zeros, known_rows=h, method="fast")
    model.sample(1, seed=0, method="fast")
    floor = timed(lambda: forward(zeros), 5)
    fast = timed(lambda: model.sample(n, seed=0, method="fast"), repeats)
    start_row = 0 if full else h - rows
    scale = h / (h - start_row)
    naive = timed(lambda: model.complete(zeros, known_rows=start_row, seed=0, method="naive"), 1)
    naive *= scale
    model.predict(zeros, verbose=0)
    loop = timed(lambda: python_loop(model, zeros, start_row), 1) * scale
    if full:  # the two methods agree exactly
        same = np.array_equal(
            model.sample(n, seed=0, method="fast"), model.sample(n, seed=0, method="naive")
        )
    else:
        same = None
    how = "timed" if full else f"extrapolated from {h - start_row} rows"
    print(
        f"\n{h}x{w}x{c}, {n} images, levels=256, filters={filters}, layers={num_layers}, "
        f"{model.count_params()} parameters"
    )
    print(f"  {'method':<28}{'seconds':>10}{'vs fast':>10}")
    print(f"  {'fast (cached)':<28}{fast:>10.3f}{1.0:>10.1f}")
    print(f"  {'naive (one graph)':<28}{naive:>10.2f}{naive / fast:>10.1f}   {how}")
    print(f"  {'Python loop (keras-io)':<28}{loop:>10.2f}{loop / fast:>10.1f}   {how}")
    print(f"  {'floor: 1 forward pass':<28}{floor:>10.3f}{floor / fast:>10.3f}")
    print(f"  fast is {naive / fast:.0f}x faster than naive and {fast / floor:.1f}x the floor")
    if same is not None:
        print(f"  fast == naive (same seed): {same}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="time naive and the loop fully")
    parser.add_argument("--rows", type=int, default=2, help="rows timed when not --full")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-n", type=int, default=16)
    args = parser.parse_args()
    bench((28, 28, 1), 32, 5, args.n, args.rows, args.full, args.repeats)
    bench((32, 32, 3), 48, 5, args.n, args.rows, args.full, args.repeats)


if __name__ == "__main__":
    main()
