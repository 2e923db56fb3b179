"""Where the fast PixelCNN sampler's time goes (issue 26): the cached sampler (`sample_tensor`,
XLA-compiled as `model.sample` runs it) timed with its parts replaced, one at a time and
cumulatively, by trivial stand-ins that keep the loop's data dependencies, against the floor
(one forward pass over the batch) in the same run. Gated PixelCNN, 28x28x1, levels 256,
filters 32, 5 blocks, 16 images (the sampler table's first configuration).

Stages (each removes one more part; the differences are the parts' costs):

  full           model.sample's sampler from given noise
  - draw         the Gumbel-max over the levels replaced by a test on one parameter
  - head         the two 1x1 head layers at each pixel removed
  - pixel blocks the gated blocks' horizontal stacks at each pixel removed (and their
                 pending sums for the pixels to the right)
  - rows         the per-row vertical stacks and window updates removed
  = skeleton     what is left: the two loops, the noise layout, the row assembly

The noise (`uniform_noise`, part of `model.sample(n, seed)`) is timed on its own.

    python benchmarks/pixelcnn_sampler_breakdown.py [--repeats 11]

On a loaded machine compare the CPU-time column (the sampler runs on one core; the floor's
CPU time is both cores' sum).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_gen.models import pixelcnn as pixelcnn_module  # noqa: E402
from keras_gen.models.pixelcnn import PixelCNN  # noqa: E402


def _cheap_draw(params, gumbel, inv_temperature):
    return tf.cast(params[:, 0] * inv_temperature + gumbel[:, 0] > 0.0, tf.int32)


def _no_draw(model):
    model._draw = _cheap_draw


def _no_head(model):
    def head(self, features, channel):
        return features

    pixelcnn_module._Stack.head = head


def _no_blocks(stack_cls):
    def pixel(self, x, j, context, state, channel):
        # the row context at column j still read, and the drawn pixel still fed back
        column = tf.gather(context, j)
        return x[:, :1] + column[:, :1], state

    def pixel_drawn(self, x, before, after):
        return after

    stack_cls.pixel = pixel
    stack_cls.pixel_drawn = pixel_drawn


def _no_rows(stack_cls, width):
    def row_start(self, caches):
        batch = tf.shape(caches[0])[0]
        return tf.zeros(tf.stack([width, batch, 1])), caches

    def row_end(self, caches, x_row, state):
        return caches

    stack_cls.row_start = row_start
    stack_cls.row_end = row_end


STAGES = ("full", "- draw", "- head", "- pixel blocks", "- rows")


def sampler(stage, shape, filters, layers):
    """A fresh model whose sampler has the parts up to `stage` replaced (the class patches are
    undone by the caller)."""
    model = PixelCNN(shape, levels=256, filters=filters, num_layers=layers, seed=0)
    k = STAGES.index(stage)
    if k >= 1:
        _no_draw(model)
    if k >= 2:
        _no_head(model)
    if k >= 3:
        _no_blocks(pixelcnn_module._GatedStack)
    if k >= 4:
        _no_rows(pixelcnn_module._GatedStack, shape[1])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("-n", type=int, default=16)
    args = parser.parse_args()
    shape, filters, layers, n = (28, 28, 1), 32, 5, args.n
    saved = {
        name: getattr(pixelcnn_module._GatedStack, name)
        for name in ("pixel", "pixel_drawn", "row_start", "row_end")
    }
    saved_head = pixelcnn_module._Stack.head
    reference = PixelCNN(shape, levels=256, filters=filters, num_layers=layers, seed=0)
    zeros = np.zeros((n,) + shape, np.int32)
    forward = tf.function(reference.distribution_params)
    forward(zeros)
    uniform = reference.uniform_noise(0, 0, n)
    labels, one = tf.zeros((n,), tf.int32), tf.constant(1.0)
    fns = {"floor: 1 forward pass": lambda: forward(zeros).numpy()}
    fns["noise: uniform_noise"] = lambda: reference.uniform_noise(0, 0, n).numpy()
    fns["model.sample(n, seed)"] = lambda: reference.sample(n, seed=0)
    for stage in STAGES:
        model = sampler(stage, shape, filters, layers)
        fn = model._compiled("fast")
        fn(uniform, labels, one)  # trace and compile with this stage's patches
        for name, method in saved.items():
            setattr(pixelcnn_module._GatedStack, name, method)
        pixelcnn_module._Stack.head = saved_head
        fns[f"sampler {stage}"] = (lambda f: lambda: f(uniform, labels, one).numpy())(fn)
    reference.sample(n, seed=0)
    times = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(args.repeats):  # interleaved, so a load change hits every row alike
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    median = {name: statistics.median(t) for name, t in times.items()}
    median_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    floor = median["floor: 1 forward pass"]
    print(
        f"\n{shape[0]}x{shape[1]}x{shape[2]}, {n} images, levels=256, filters={filters}, "
        f"layers={layers}; medians of {args.repeats} interleaved repeats; "
        f"load average {tuple(round(x, 2) for x in os.getloadavg())}"
    )
    print("| part | wall s | / floor | CPU s | per pixel step (784), CPU |")
    print("|---|---:|---:|---:|---:|")
    pixels = shape[0] * shape[1]

    def row(name, seconds, cpu_seconds):
        print(
            f"| {name} | {seconds:.4f} | {seconds / floor:.2f}x | {cpu_seconds:.4f} | "
            f"{cpu_seconds / pixels * 1e6:.1f} us |"
        )

    for name in ("floor: 1 forward pass", "model.sample(n, seed)", "noise: uniform_noise"):
        row(name, median[name], median_cpu[name])
    row("sampler from noise (full)", median["sampler full"], median_cpu["sampler full"])
    parts = {
        "- draw": "  draw (Gumbel-max over 256 levels)",
        "- head": "  head (2 x 1x1 at the pixel)",
        "- pixel blocks": "  gated blocks at the pixel",
        "- rows": "  rows (vertical stacks, windows)",
    }
    for previous, stage in zip(STAGES, STAGES[1:]):
        row(
            parts[stage],
            median[f"sampler {previous}"] - median[f"sampler {stage}"],
            median_cpu[f"sampler {previous}"] - median_cpu[f"sampler {stage}"],
        )
    row(
        "  skeleton (loops, noise layout, row assembly)",
        median["sampler - rows"], median_cpu["sampler - rows"],
    )


if __name__ == "__main__":
    main()
