"""Cost of keras-gen's exact-resume checkpoints (keras_gen.training): the time to write and to
restore one checkpoint of the default DCGAN on 28x28x1 (with EMA), against the time of one
training step, so the overhead of `--checkpoint-every N` is save_time / (N * step_time).

    python benchmarks/checkpoint_cost.py
"""

import os
import tempfile
import time

import numpy as np

import keras_gen as kg
from keras_gen import training


def main(repeats=7, batch_size=64):
    model = kg.models.DCGAN((28, 28, 1), seed=0, ema_decay=0.999)
    model.compile()
    data = kg.data.load("fashion_mnist_10k", split="train[:1024]", batch_size=batch_size,
                        image_range="tanh", seed=0, drop_remainder=True)
    model.fit(data.take(2), epochs=1, verbose=0)  # warm-up (tracing, XLA)
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    step = (time.perf_counter() - start) / (1024 // batch_size)
    checkpointer = training.Checkpointer(tempfile.mkdtemp())
    saves = []
    for i in range(repeats):
        start = time.perf_counter()
        checkpointer.save(model, 0, i, i + 1)
        saves.append(time.perf_counter() - start)
    start = time.perf_counter()
    checkpointer.restore(model)
    restore = time.perf_counter() - start
    size = os.path.getsize(checkpointer.directory / checkpointer.latest()["weights"])
    save = float(np.median(saves[1:]))
    print(f"DCGAN 28x28x1 (filters 64, EMA), batch {batch_size}: checkpoint {size / 1e6:.1f} MB")
    print(f"  one train step      {step * 1000:7.0f} ms")
    print(f"  one checkpoint save {save * 1000:7.0f} ms (median of {repeats - 1})")
    print(f"  one restore         {restore * 1000:7.0f} ms")
    for every in (50, 200, 1000):
        print(f"  overhead of --checkpoint-every {every:4d}: {100 * save / (every * step):5.1f} %")


if __name__ == "__main__":
    main()
