"""Runs `keras-gen train` in a subprocess for tests/test_reliability.py, with test-only hooks:

  --delay SECONDS        sleep this long before each batch (so a test can kill mid-epoch)
  --nan-at-batch K       batch K (0-based) of every epoch holds NaN pixels
  --pause-in-write STEP:FLAG
                         while writing the checkpoint of global step STEP, after its file is on
                         disk and before the rename, touch FLAG and sleep (the test kills us then)

Everything after `--` goes to `keras_gen.cli.main(["train", ...])`.
"""

import sys
import time
from pathlib import Path


def main(argv):
    import faulthandler

    # A hung run prints every thread's stack and exits, instead of blocking the test.
    faulthandler.dump_traceback_later(240, exit=True)
    split = argv.index("--")
    hooks, train_args = argv[:split], argv[split + 1 :]
    opts = dict(zip(hooks[::2], hooks[1::2]))

    import numpy as np
    import tensorflow as tf

    from keras_gen import cli, data, training

    real_load = data.load
    delay = float(opts.get("--delay", 0))
    nan_at = int(opts.get("--nan-at-batch", -1))

    def load(*args, **kwargs):
        ds = real_load(*args, **kwargs)
        if delay:
            ds = ds.map(lambda *b: _with_side_effect(b, delay))
        if nan_at >= 0:
            ds = ds.enumerate().map(
                lambda i, b: tf.where(i == nan_at, b * np.float32("nan"), b)
            )
        return ds

    data.load = load

    if "--pause-in-write" in opts:
        step, flag = opts["--pause-in-write"].split(":", 1)
        real_save = training.Checkpointer.save

        def save(self, model, epoch, step_in_epoch, global_step):
            if global_step == int(step):
                def pause(path):
                    if path.name.startswith("ckpt-"):
                        Path(flag).write_text(str(path))
                        time.sleep(600)
                training._before_commit = pause
            try:
                return real_save(self, model, epoch, step_in_epoch, global_step)
            finally:
                training._before_commit = lambda path: None

        training.Checkpointer.save = save
    return cli.main(["train", *train_args])


def _with_side_effect(batch, delay):
    import numpy as np
    import tensorflow as tf

    batch = batch[0] if len(batch) == 1 else batch
    tick = tf.numpy_function(lambda: np.float32(time.sleep(delay) or 0), [], tf.float32)
    with tf.control_dependencies([tick]):
        return tf.nest.map_structure(tf.identity, batch)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
