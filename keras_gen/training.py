"""`fit` that survives being killed: exact mid-epoch resume, atomic checkpoints, and a clean stop
when the loss goes NaN or Inf.

A checkpoint holds everything the next step depends on: the model's weights and both GAN
optimisers' states (`model.save_weights` walks the whole object tree: generator, discriminator,
EMA generator, `optimizer` and `d_optimizer`), the states of seeded layers such as Dropout (which
`save_weights` leaves out), and the position in the data (epoch, batches done in that epoch).
Noise inside a train step is keyed by (model seed, `optimizer.iterations`), so restoring the
optimiser restores the noise stream. The data of epoch `e` is built by `data(e)`, a function of the
epoch alone (see `epoch_loader`), and a resumed epoch skips the batches already trained on, so a
resumed run repeats the uninterrupted one batch for batch.

Writes are atomic: the weights go to a temporary file that is flushed to disk and renamed, and only
then does the small pointer file `checkpoint.json` (written the same way) name it. A kill at any
moment leaves the previous checkpoint complete and named.
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks

POINTER = "checkpoint.json"
FORMAT = 1


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf. The last good checkpoint is kept; nothing was saved after it."""

    def __init__(self, message, step, loss_name, value, checkpoint):
        super().__init__(message)
        self.step, self.loss_name, self.value, self.checkpoint = step, loss_name, value, checkpoint


def epoch_seed(seed, epoch):
    """The shuffle seed of epoch `epoch`: a function of (seed, epoch) only, so a fresh pipeline
    built after a restart shuffles epoch `epoch` exactly as the first run did."""
    return int((int(seed) * 1_000_003 + 7919 * int(epoch)) % (2**31 - 1))


def epoch_loader(name, seed, **load_kwargs):
    """`data` for `fit`: epoch -> `keras_gen.data.load(name, seed=epoch_seed(seed, epoch), ...)`."""
    from keras_gen import data as kg_data

    return lambda epoch: kg_data.load(name, seed=epoch_seed(seed, epoch), **load_kwargs)


# --------------------------------------------------------------------------------------------
# Checkpoints


def _before_commit(path):
    """Called after a checkpoint's weights are on disk, before the rename that publishes them.
    Tests replace it to kill the process in the middle of a write."""


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path, write):
    """Calls `write(tmp_path)`, flushes the file to disk and renames it to `path`, so `path` is
    either the old file or the complete new one. The temporary name keeps the suffix, as Keras
    insists on `.keras` and `.weights.h5`."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(str(tmp))
        _fsync_file(tmp)
        _before_commit(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def _seeded_state_variables(model):
    """Variables that `save_weights` leaves out but the next steps depend on: the states of
    seeded random layers (Dropout(seed=...)), in `model.variables` order."""
    return [v for v in model.variables if "seed_generator_state" in v.path]


class Checkpointer:
    """Atomic checkpoints of a compiled model plus the training position, in one folder."""

    def __init__(self, directory, keep=2):
        from keras_gen import distribute

        self.directory = Path(directory)
        self.keep = keep
        # Under MultiWorkerMirroredStrategy every worker writes (saving may read synchronised
        # variables), but only the chief's files count; the others write to a scratch folder.
        self.write_directory = (
            self.directory if distribute.is_chief() else self.directory / f".worker-{os.getpid()}"
        )

    @property
    def pointer(self):
        return self.directory / POINTER

    def latest(self):
        """The last committed checkpoint's state dict, or None."""
        if not self.pointer.exists():
            return None
        try:
            state = json.loads(self.pointer.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(
                f"the checkpoint pointer {self.pointer} is unreadable ({e}); delete the folder "
                f"{self.directory} to start over."
            ) from e
        if state.get("format") != FORMAT or not (self.directory / state["weights"]).exists():
            raise ValueError(
                f"{self.pointer} names a checkpoint this version of keras-gen cannot use "
                f"({state}); delete the folder {self.directory} to start over."
            )
        return state

    def save(self, model, epoch, step_in_epoch, global_step):
        self.write_directory.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-{global_step:09d}.weights.h5"
        write_atomic(self.write_directory / name, model.save_weights)
        from keras_gen import __version__

        state = {
            "format": FORMAT,
            "weights": name,
            "epoch": int(epoch),
            "step_in_epoch": int(step_in_epoch),
            "global_step": int(global_step),
            "model_class": type(model).__name__,
            "keras_gen_version": __version__,
            "seed_states": [
                np.asarray(v.numpy()).tolist() for v in _seeded_state_variables(model)
            ],
        }
        write_atomic(
            self.write_directory / POINTER, lambda p: Path(p).write_text(json.dumps(state, indent=1))
        )
        self._prune(name)
        return state

    def _prune(self, current):
        files = sorted(self.write_directory.glob("ckpt-*.weights.h5"))
        for old in files[: max(0, len(files) - self.keep)]:
            if old.name != current:
                old.unlink()
        for stale in self.write_directory.glob(".tmp-*"):  # left by a process killed mid-write
            if not stale.name.startswith(f".tmp-{os.getpid()}-"):
                stale.unlink()

    def restore(self, model, state=None):
        state = state or self.latest()
        if state is None:
            return None
        if state["model_class"] != type(model).__name__:
            raise ValueError(
                f"the checkpoint in {self.directory} is of a {state['model_class']}, not a "
                f"{type(model).__name__}; resume with the settings of that run."
            )
        try:
            model.load_weights(self.directory / state["weights"])
        except Exception as e:
            raise ValueError(
                f"cannot restore {self.directory / state['weights']} into this "
                f"{type(model).__name__}: {e}. Resume with the settings the run was started with."
            ) from e
        for v, value in zip(_seeded_state_variables(model), state.get("seed_states", [])):
            v.assign(np.asarray(value, dtype=v.dtype))
        return state


# --------------------------------------------------------------------------------------------
# The loop


def explain_op_error(error, model=None):
    """A readable `ValueError` for a TensorFlow error raised by bad data in the middle of
    training (an image that fails to decode, a label outside the model's classes), or None."""
    from keras_gen.data import DataError

    message = str(error)
    found = re.search(r"DataError: ([^\n]*)", message)
    if found:
        return DataError(found.group(1))
    found = re.search(
        r"(a label in the data is [^\n]*?) Labels in the batch range over:\W*(-?\d+)\W+(-?\d+)",
        message,
    )
    if found:
        return ValueError(
            found.group(1).replace("\\'", "'")
            + f" Labels in the batch: {found.group(2)}..{found.group(3)}."
        )
    found = re.search(r"indices\[\d+\] = (-?\d+) is not in \[0, (\d+)\)", message)
    if found and "label" in message:
        return ValueError(
            f"a label in the data is {found.group(1)}, outside 0..{int(found.group(2)) - 1}: the "
            f"model has num_classes={found.group(2)}. Build the model with the data's number of "
            "classes (keras_gen.data.info(name).num_classes)."
        )
    return None


class _Stop(Exception):
    pass


class _Guard(keras.callbacks.Callback):
    """Counts steps; writes a checkpoint every `checkpoint_every` steps and at the end of every
    epoch; stops at the first non-finite loss before anything is saved after it. Listed last, so
    that its epoch-end checkpoint holds what other callbacks changed (a reduced learning rate)."""

    def __init__(self, checkpointer, checkpoint_every, epoch, skipped, global_step):
        super().__init__()
        self.checkpointer, self.every = checkpointer, checkpoint_every
        self.epoch, self.skipped, self.global_step = epoch, skipped, global_step
        self.step_in_epoch = skipped
        self.diverged = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch:  # a fresh epoch (the resumed one starts after `skipped`)
            self.epoch, self.skipped, self.step_in_epoch = epoch, 0, 0

    def on_train_batch_end(self, batch, logs=None):
        # Keras passes the index of the last step of the execution (steps_per_execution).
        done = self.skipped + int(batch) + 1
        new_steps = done - self.step_in_epoch
        self.step_in_epoch = done
        previous = self.global_step
        self.global_step += new_steps
        for name, value in (logs or {}).items():
            value = float(np.asarray(value).reshape(-1)[0])
            if not math.isfinite(value):
                # Raised, not `stop_training`, so no epoch-end callback sees the NaN model.
                self.diverged = (name, value)
                raise _Stop()
        if self.every and self.global_step // self.every > previous // self.every:
            self.checkpointer.save(self.model, self.epoch, self.step_in_epoch, self.global_step)

    def on_epoch_end(self, epoch, logs=None):
        self.checkpointer.save(self.model, epoch + 1, 0, self.global_step)


def _batches_per_epoch(dataset):
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return sum(1 for _ in dataset)  # unknown (e.g. filtered): count one pass


def _epoch_stream(data, first, last):
    """One dataset holding epochs first..last-1 of `data` back to back, and the batches per
    epoch, so that a single `model.fit(..., steps_per_epoch=...)` sees epoch e's own data in
    epoch e. The per-epoch datasets are built up front but read lazily, one after the other."""
    datasets = [data(epoch) for epoch in range(first, last)]
    stream = datasets[0]
    for dataset in datasets[1:]:
        stream = stream.concatenate(dataset)
    return stream, _batches_per_epoch(datasets[0])


def fit(
    model,
    data,
    epochs,
    checkpoint_dir,
    checkpoint_every=None,
    callbacks=None,
    verbose=0,
    resume=True,
):
    """Trains `model` for `epochs` epochs with checkpoints that survive SIGKILL: one
    `model.fit(initial_epoch=..., epochs=...)`, so every Keras callback (EarlyStopping,
    ReduceLROnPlateau, TensorBoard, your own) works as it does in plain `fit`.

    Args:
      model: a compiled keras-gen model (any compiled `keras.Model` works).
      data: a function `epoch -> tf.data.Dataset` giving that epoch's batches (exact resume; see
        `epoch_loader`), or one `tf.data.Dataset` (a resumed epoch then skips the right number of
        batches, but a dataset that reshuffles starts over at its first order).
      epochs: total number of epochs of the run (a resumed run trains only what is left).
      checkpoint_dir: folder of the checkpoints (created if needed).
      checkpoint_every: also checkpoint every this many steps (None: at each epoch's end only).
      callbacks: Keras callbacks. A run resumed in the middle of an epoch finishes that epoch
        in a `fit` call of its own first (its callbacks see two trainings, as they would see two
        processes anyway); Keras callbacks keep no state across a restart.
      resume: continue from the checkpoint in `checkpoint_dir` if there is one.

    Returns:
      A dict of per-epoch logs of the epochs trained in this call.

    Raises:
      TrainingDiverged: a loss became NaN or Inf; the message names the step and the loss, and
        the last good checkpoint is left as it was.
    """
    epochs = checks.positive_int("epochs", epochs)
    if checkpoint_every is not None:
        checkpoint_every = checks.positive_int("checkpoint_every", checkpoint_every)
    checkpointer = Checkpointer(checkpoint_dir)
    state = checkpointer.restore(model) if resume else None
    epoch, skip, global_step = (0, 0, 0) if state is None else (
        state["epoch"], state["step_in_epoch"], state["global_step"]
    )
    by_epoch = data if callable(data) else (lambda _: data)
    guard = _Guard(checkpointer, checkpoint_every, epoch, skip, global_step)
    callbacks = list(callbacks or []) + [guard]
    history = {}
    if skip and epoch < epochs:  # killed in the middle of an epoch: finish it first
        remainder = by_epoch(epoch)
        if 0 <= int(remainder.cardinality()) <= skip:  # killed after its last batch
            checkpointer.save(model, epoch + 1, 0, global_step)
            guard.epoch, guard.skipped = epoch + 1, 0
        else:
            _run(model, remainder.skip(skip), guard, checkpointer,
                 history, fresh=by_epoch(epoch) if callable(data) else None,
                 initial_epoch=epoch, epochs=epoch + 1, verbose=verbose, callbacks=callbacks)
        epoch += 1
    if epoch < epochs:
        if callable(data):
            stream, steps = _epoch_stream(data, epoch, epochs)
        else:
            stream, steps = data, None  # Keras iterates it anew each epoch
        _run(model, stream, guard, checkpointer, history,
             fresh=data(epoch) if callable(data) else None,
             initial_epoch=epoch, epochs=epochs, steps_per_epoch=steps, verbose=verbose,
             callbacks=callbacks)
    if checkpointer.write_directory != checkpointer.directory:
        shutil.rmtree(checkpointer.write_directory, ignore_errors=True)
    return history


def _run(model, dataset, guard, checkpointer, history, fresh=None, **fit_kwargs):
    """One `model.fit`, turning a NaN stop and bad data into their readable errors. `fresh`: a
    copy of the data's first epoch for `check_data`, so that reading its first batch does not
    start an iteration of the data trained on (a reshuffling dataset would then train on its
    second order, and a resumed run on another one)."""
    result = None
    try:
        if fresh is not None and hasattr(model, "check_data"):
            model.check_data(fresh)
            fit_kwargs["check_first_batch"] = False
        result = model.fit(dataset, **fit_kwargs)
    except _Stop:
        pass
    except (tf.errors.OpError, ValueError) as e:
        # Free the interrupted input pipeline now (the traceback's reference cycles hold it):
        # left to interpreter shutdown, its worker threads can deadlock the exit.
        explained = explain_op_error(e, model) if isinstance(e, tf.errors.OpError) else None
        del e
        gc.collect()
        if explained is None:
            raise
        raise explained from None
    if result is None:
        gc.collect()
    if guard.diverged is not None:
        name, value = guard.diverged
        last = checkpointer.latest()
        kept = (
            f"The last good checkpoint (step {last['global_step']}, epoch {last['epoch'] + 1}) "
            f"is kept in {checkpointer.directory}; nothing was saved after it."
            if last else "No checkpoint had been written yet."
        )
        raise TrainingDiverged(
            f"training diverged: the loss {name!r} became {value} at step {guard.global_step} "
            f"(epoch {guard.epoch + 1}, batch {guard.step_in_epoch}). {kept} Lower the learning "
            "rate(s), or check the data for NaN/Inf values, then resume.",
            step=guard.global_step, loss_name=name, value=value, checkpoint=last,
        )
    for key, values in result.history.items():
        history.setdefault(key, []).extend(float(v) for v in values)
