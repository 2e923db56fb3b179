"""Sampling speed of a Gated PixelCNN against the floor (one forward pass over the same batch),
16 images by default, 28x28x1 and 32x32x3, levels=256:

- fast, Python: `model.sample(n, seed)` end to end (noise included): the cached sampler
  `sample_tensor`, XLA-compiled.
- fast, LiteRT: the exported `sample` signature (the same cached sampler, one TFLite graph) in
  the LiteRT interpreter, fed the same noise; its images are checked equal to Python's.
- naive: a full forward pass per sub-pixel in one graph (`method="naive"`).
- exported naive (issue 16's "before"): the exported sampler as it was before the cached one,
  one network pass per sub-pixel with one-hot reads and writes (`naive_export_graph` below), in
  LiteRT.

Per-image times at batch 1 are reported too (what a phone app would run). The naive rows cost
the same for every sub-pixel, so unless --full is given they are timed on the last `--rows`
rows (via completion) and scaled by the number of sub-pixels; the table says which.

    python benchmarks/pixelcnn_sampling.py            # about 10 minutes on 2 loaded cores
    python benchmarks/pixelcnn_sampling.py --full     # naive rows timed end to end (hours)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import export  # noqa: E402
from keras_gen.models import pixelcnn_likelihoods as lik  # noqa: E402
from keras_gen.models.pixelcnn import PixelCNN  # noqa: E402


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive_export_graph(model):
    """The exported sampler before the cached one (kept here to measure it): a full network
    pass per sub-pixel inside one tf.while_loop, the current sub-pixel's parameters and noise
    picked, and its level written, with one-hot masks. Takes (uniform, start_row)."""
    h, w, c = model.image_shape
    steps = h * w * c

    @tf.function(input_signature=[
        tf.TensorSpec([None, h, w, c, model.levels], tf.float32), tf.TensorSpec([], tf.int32),
    ])
    def sample(uniform, start_row):
        batch = tf.shape(uniform)[0]
        gumbel = tf.reshape(-tf.math.log(-tf.math.log(uniform)), (batch, steps, model.levels))
        images = tf.zeros(tf.stack([batch, h, w, c]), tf.int32)

        def body(t, images):
            params = model._network(model.scale(images), None)
            params = tf.reshape(tf.cast(params, tf.float32), (batch, steps, params.shape[-1]))
            pick = tf.reshape(tf.one_hot(t, steps, dtype=tf.float32), (1, steps, 1))
            logp = lik.level_log_probs(tf.reduce_sum(params * pick, axis=1), model.likelihood, model.levels)
            drawn = tf.argmax(logp + tf.reduce_sum(gumbel * pick, axis=1), axis=-1, output_type=tf.int32)
            mask = tf.reshape(tf.one_hot(t, steps, dtype=tf.int32), (1, h, w, c))
            images = images * (1 - mask) + drawn[:, None, None, None] * mask
            return t + 1, tf.ensure_shape(images, [None, h, w, c])

        _, images = tf.while_loop(
            lambda t, _: t < steps, body, (start_row * (w * c), images),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, h, w, c])),
        )
        return {"images": images}

    module = tf.Module()
    # The variables the graph reads, tracked so the SavedModel holds them and the converter
    # freezes them into constants.
    module.weights = list(sample.get_concrete_function().variables)
    module.sample = sample
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={"sample": sample.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["sample"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def litert(path, signature, threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    runner = interpreter.get_signature_runner(signature)
    runner.interpreter = interpreter
    return runner


def litert_content(content, signature, threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    runner = interpreter.get_signature_runner(signature)
    runner.interpreter = interpreter
    return runner


def bench(shape, filters, num_layers, n, rows, full, repeats, threads):
    model = PixelCNN(shape, levels=256, filters=filters, num_layers=num_layers, seed=0)
    h, w, c = shape
    subpixels = h * w * c
    zeros = np.zeros((n,) + shape, np.int32)
    forward = tf.function(model.distribution_params)
    forward(zeros)
    start = time.perf_counter()
    model.sample(n, seed=0)  # traces and compiles (XLA) the sampler for this batch size
    compile_seconds = time.perf_counter() - start
    model.sample(1, seed=0)
    graph = PixelCNN(shape, levels=256, filters=filters, num_layers=num_layers, seed=0)
    graph.jit_sampling = False  # the same sampler as a plain TensorFlow graph
    start = time.perf_counter()
    graph.sample(n, seed=0)
    graph_trace_seconds = time.perf_counter() - start
    graph.sample(1, seed=0)
    model.complete(zeros, known_rows=h, method="naive")
    uniform = model.uniform_noise(0, 0, n).numpy()

    with tempfile.TemporaryDirectory() as tmp:
        export.tflite(model, Path(tmp) / "model.tflite", signatures=["sample"])
        fast_lite = litert(Path(tmp) / "model.tflite", "sample", threads)
    old_lite = litert_content(naive_export_graph(model), "sample", threads)
    one = np.float32(1.0)

    def lite_sample(u):
        return fast_lite(uniform=u, temperature=one)["images"]

    same = np.array_equal(lite_sample(uniform), model.sample(n, seed=0))

    rows_timed = h if full else rows
    start_row = h - rows_timed
    scale = h / rows_timed
    how = "timed" if full else f"from {rows_timed} rows"
    results = [
        ("floor: 1 forward pass", timed(lambda: forward(zeros), 5), None, ""),
        ("fast, Python (XLA)", timed(lambda: model.sample(n, seed=0), repeats),
         timed(lambda: model.sample(1, seed=0), repeats), ""),
        ("fast, Python (graph, no XLA)", timed(lambda: graph.sample(n, seed=0), repeats),
         timed(lambda: graph.sample(1, seed=0), repeats), ""),
        ("fast, LiteRT", timed(lambda: lite_sample(uniform), repeats),
         timed(lambda: lite_sample(uniform[:1]), repeats), ""),
        ("naive, Python (one graph)",
         scale * timed(lambda: model.complete(zeros, known_rows=start_row, seed=0, method="naive"), 1),
         None, how),
        ("exported naive, LiteRT",
         scale * timed(lambda: old_lite(uniform=uniform, start_row=np.int32(start_row)), 1),
         scale * timed(lambda: old_lite(uniform=uniform[:1], start_row=np.int32(start_row)), 1), how),
    ]
    floor = results[0][1]
    print(
        f"\n{h}x{w}x{c}, {n} images, levels=256, filters={filters}, layers={num_layers}, "
        f"{model.count_params():,} parameters, {subpixels} sub-pixels; LiteRT threads {threads}"
    )
    print(f"| method | batch {n}: s | / floor | batch 1: s per image | |")
    print("|---|---:|---:|---:|---|")
    for name, seconds, single, note in results:
        single_text = "-" if single is None else f"{single:.3f}"
        print(f"| {name} | {seconds:.3f} | {seconds / floor:.1f}x | {single_text} | {note} |")
    fast, lite, old = results[1], results[3], results[5]
    print(
        f"fast Python: {fast[1] / floor:.2f}x the floor; LiteRT / Python per image: batch {n} "
        f"{lite[1] / fast[1]:.2f}x, batch 1 {lite[2] / fast[2]:.2f}x; exported fast vs exported "
        f"naive: {old[1] / lite[1]:.0f}x faster (batch {n}), {old[2] / lite[2]:.0f}x (batch 1); "
        f"LiteRT images == model.sample: {same}; first sample() call: {compile_seconds:.1f} s "
        f"with XLA (trace + compile), {graph_trace_seconds:.1f} s without (trace); load average "
        f"{tuple(round(x, 2) for x in os.getloadavg())}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="time the naive rows end to end")
    parser.add_argument("--rows", type=int, default=1, help="rows the naive samplers are timed on")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="LiteRT threads")
    parser.add_argument("-n", type=int, default=16)
    parser.add_argument("--shapes", default="28x28x1,32x32x3")
    args = parser.parse_args()
    configs = {"28x28x1": ((28, 28, 1), 32), "32x32x3": ((32, 32, 3), 48)}
    for name in args.shapes.split(","):
        shape, filters = configs[name]
        bench(shape, filters, 5, args.n, args.rows, args.full, args.repeats, args.threads)


if __name__ == "__main__":
    main()
