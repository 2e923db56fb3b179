"""TensorFlow's thread settings against the default step's speed (issue 26's "thread settings"
lever): the default DCGAN and ConvVAE `fit` on the bundled Fashion-MNIST images, in a fresh process per
setting (intra/inter-op threads can only be set before TensorFlow starts), settings run in turn
and the whole round repeated, so that the machine's drift falls on every setting alike.

    python benchmarks/thread_settings.py                          # intra/inter 0/0 (TF's default), 1/1, 1/2, 2/1, 2/2
    python benchmarks/thread_settings.py --models dcgan --batch-sizes 64 --rounds 5 --settings 0/0,2/2

Prints ms per step for each round and the median, and each setting's ratio to the default's
median (> 1: faster than the default). Needs an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(model_name, batch, intra, inter, steps):
    """One measurement: ms per step of `fit` over `steps` batches, after a warm-up epoch."""
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    sys.path.insert(0, str(ROOT))
    import keras_gen as kg

    family = kg.models.DCGAN if model_name == "dcgan" else kg.models.ConvVAE
    model = family((28, 28, 1), seed=0)
    model.compile()
    # The bundled images as the model trains on them (its range), held in memory.
    data = kg.data.load("fashion_mnist_10k", model=model, batch_size=batch, shuffle=False,
                        drop_remainder=True).take(steps).cache()
    model.fit(data, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(data, epochs=2, verbose=0)
    return (time.perf_counter() - start) / (2 * steps) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dcgan,vae")
    parser.add_argument("--batch-sizes", default="32,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="batches per epoch")
    parser.add_argument("--settings", default="0/0,1/1,1/2,2/1,2/2",
                        help="intra/inter pairs; 0/0 (TensorFlow's default) is the reference")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(**json.loads(args.child))))
        return
    settings = [tuple(int(v) for v in pair.split("/")) for pair in args.settings.split(",")]
    if (0, 0) not in settings:
        parser.error("--settings must include 0/0, the reference")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    results = {}
    for model_name in args.models.split(","):
        for batch in map(int, args.batch_sizes.split(",")):
            for round_ in range(args.rounds):
                for intra, inter in settings:
                    spec = dict(model_name=model_name, batch=batch, intra=intra, inter=inter,
                                steps=args.steps)
                    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                         capture_output=True, text=True, env=env, check=True)
                    ms = json.loads(out.stdout.strip().splitlines()[-1])
                    results.setdefault((model_name, batch, intra, inter), []).append(ms)
                    print(f"{model_name} batch {batch} round {round_ + 1} intra {intra} inter "
                          f"{inter}: {ms:.1f} ms/step", flush=True)
    print(f"\nload average at the end: {os.getloadavg()}")
    print("| model | batch | intra/inter | ms/step per round | median | default / this |")
    print("|---|---|---|---|---:|---:|")
    for (model_name, batch, intra, inter), times in results.items():
        base = statistics.median(results[(model_name, batch, 0, 0)])
        med = statistics.median(times)
        label = "default" if (intra, inter) == (0, 0) else f"{intra}/{inter}"
        print(f"| {model_name} | {batch} | {label} | {', '.join(f'{t:.1f}' for t in times)} | "
              f"{med:.1f} | {base / med:.2f}x |")


if __name__ == "__main__":
    main()
