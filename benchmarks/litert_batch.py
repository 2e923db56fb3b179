"""Per-image time of an exported generator at batch 1, 16 and 64: the SavedModel signature
against the `.tflite` file `export` writes (transposed convolutions in their sub-pixel form,
export/xnnpack.py) and against the file written without that rewrite (TRANSPOSE_CONV, the
reference), in the LiteRT interpreter with the default and explicit thread counts.

    python benchmarks/litert_batch.py                   # default DCGAN 28x28x1 and Pix2Pix 28x28
    python benchmarks/litert_batch.py --repeats 30 --threads 1,2

Weights do not change the time, so the models are untrained. Medians of --repeats calls after a
warm-up, interleaved; the ratio column is LiteRT / SavedModel per image in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import export  # noqa: E402
import keras_gen as kg  # noqa: E402
from export import signatures  # noqa: E402
from export.validation import tflite_runner  # noqa: E402


def models():
    return {
        "dcgan": kg.models.DCGAN((28, 28, 1), seed=0),
        "pix2pix": kg.models.Pix2Pix((28, 28, 1), seed=0),
    }


def inputs_for(spec, batch):
    signature = spec.signatures[0]
    if spec.family == "pix2pix":
        shape = (batch, *spec.model.input_image_shape)
        return signature.name, {"images": np.random.default_rng(0).uniform(size=shape).astype(np.float32)}
    return signature.name, signature.example_inputs(batch, 0)


def median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="1,16,64")
    parser.add_argument("--threads", default="1,2", help="LiteRT num_threads values (validate uses os.cpu_count())")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    threads = [None if t == "default" else int(t) for t in args.threads.split(",")]
    work = Path(tempfile.mkdtemp())
    print(f"TF {tf.__version__}, {os.cpu_count()} CPUs; ms per image, median of {args.repeats}")
    print("| model | batch | SavedModel | LiteRT threads | LiteRT (TRANSPOSE_CONV) | ratio | "
          "LiteRT (sub-pixel, shipped) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model in models().items():
        spec = signatures.spec_for(model)
        export.saved_model(model, work / name / "saved_model")
        export.tflite(model, work / name / "subpixel.tflite")
        with mock.patch.object(signatures, "xnnpack_friendly", lambda network: network):
            export.tflite(model, work / name / "transpose.tflite")
        loaded = tf.saved_model.load(str(work / name / "saved_model"))
        for batch in batches:
            signature, feed = inputs_for(spec, batch)
            function = loaded.signatures[signature]
            tensors = {k: tf.constant(v) for k, v in feed.items()}
            saved = median_seconds(lambda: function(**tensors), args.repeats) / batch
            for count in threads:
                old = tflite_runner(work / name / "transpose.tflite", signature, count)
                new = tflite_runner(work / name / "subpixel.tflite", signature, count)
                t_old = median_seconds(lambda: old(feed), args.repeats) / batch
                t_new = median_seconds(lambda: new(feed), args.repeats) / batch
                print(f"| {name} | {batch} | {1e3 * saved:.3f} | {count or 'default'} | "
                      f"{1e3 * t_old:.3f} | {t_old / saved:.2f}x | {1e3 * t_new:.3f} | "
                      f"{t_new / saved:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
