"""Progress bars for long work outside `fit`: `generate` of many images, sampling, likelihood
bounds and FID/KID over many batches. `verbose` means what it means in Keras' `predict`:
"auto" shows a `keras.utils.Progbar` (here only when there is more than one batch, so quick calls
stay quiet), 1 always shows it, 2 prints one line at the end, 0 is silent."""

from __future__ import annotations

import inspect
import math

import keras
import tensorflow as tf

VERBOSE = ("auto", 0, 1, 2)


def tracked(items, total, verbose="auto", unit_name="batch"):
    """Yields `items`, advancing a progress bar of `total` steps (None: unknown) after each one
    is handled."""
    if verbose not in VERBOSE or isinstance(verbose, bool):
        raise ValueError(f"verbose must be one of {', '.join(map(repr, VERBOSE))}; got {verbose!r}.")
    show = verbose != 0 and (verbose != "auto" or total is None or total > 1)
    bar = keras.utils.Progbar(total, verbose=1 if verbose == "auto" else verbose,
                              unit_name=unit_name) if show else None
    done = 0
    for item in items:
        yield item
        done += 1
        if bar is not None:
            bar.update(done)
    if bar is not None and total is None:
        bar.update(done, finalize=True)


def num_batches(data, batch_size=None, limit=None):
    """Batches a loop over `data` takes: a dataset's cardinality (None when unknown), else
    ceil(len(data) / batch_size); at most ceil(limit / batch_size) when `limit` images are
    taken."""
    if isinstance(data, tf.data.Dataset):
        count = int(data.cardinality())
        return count if count >= 0 else None
    n = len(data) if limit is None else min(len(data), limit)
    return math.ceil(n / batch_size)


def verbose_argument(fn, verbose):
    """{"verbose": verbose} when `fn` takes it (keras-gen's own methods), else {} (a user's
    object with the documented protocol only)."""
    try:
        return {"verbose": verbose} if "verbose" in inspect.signature(fn).parameters else {}
    except (TypeError, ValueError):
        return {}
