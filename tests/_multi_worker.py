"""One worker of the multi-worker test: trains a tiny model of a family for a few steps under
MultiWorkerMirroredStrategy (TF_CONFIG set by the test) or alone, and saves its weights."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
keras.config.disable_traceback_filtering()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import families  # noqa: E402
from keras_gen import distribute  # noqa: E402

family, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
strategy = distribute.get_strategy("multi_worker" if mode == "multi" else "default")
with strategy.scope():
    model = families.build(family)
    model.compile(jit_compile=False)  # as under several workers (XLA draws other noise)
model.fit(families.dataset(family, batch_size=16, n=64), epochs=1, verbose=0)
np.savez(out, *model.get_weights())
