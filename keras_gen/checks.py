"""Argument checks the whole library shares.

Each check returns the value in its canonical form or raises `ValueError` with a message that
names the argument, says what was expected and what was given, and (where one exists) what to
do. Modules import this one (`from keras_gen import checks`), never each other's private checks.
"""

from __future__ import annotations

import difflib
import math

import numpy as np


def choice(arg, value, choices):
    """`value` if it is one of `choices`; otherwise an error that suggests the closest one."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{arg} must be one of {', '.join(map(repr, choices))}; got {value!r}.{hint}")
    return value


def positive_int(arg, value):
    """`value` as an int > 0 (bools are refused: `True` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{arg} must be a positive integer; got {value!r}.")
    return int(value)


def non_negative_number(arg, value, hint=""):
    """`value` as a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        value >= 0 and math.isfinite(value)
    ):
        raise ValueError(f"{arg} must be a finite number >= 0{hint}; got {value!r}.")
    return float(value)


def count(n, what="n", unit="the number of images"):
    """A non-negative integer count (0 is allowed: `generate(0)` gives an empty batch)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{what} must be a non-negative integer ({unit}); got {n!r}.")
    return int(n)


def seed(value):
    """A model's or a call's seed: a non-negative int, returned as int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"seed must be a non-negative integer or None; got {value!r}.")
    return int(value)


def seed_or_fresh(value):
    """The seed given, or a fresh one drawn from the OS when it is None (so a model that was
    given no seed still owns one, and `generate(n)` without a seed differs call to call)."""
    if value is None:
        return int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    return seed(value)


def image_shape(value, arg="image_shape"):
    """(height, width, channels) as a tuple of three positive ints."""
    try:
        h, w, c = (int(d) for d in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{arg} must be (height, width, channels), e.g. (28, 28, 1); got {value!r}."
        ) from None
    if h <= 0 or w <= 0 or c <= 0:
        raise ValueError(f"{arg} must be positive; got {tuple(value)}.")
    return h, w, c


def square_image_shape(value, family="DCGAN"):
    """The shapes the convolutional builders take: square, side a multiple of 4 from 8 to 128,
    1 or 3 channels."""
    try:
        h, w, c = (int(d) for d in value)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (height, width, channels); got {value!r}.") from None
    if h != w or h % 4 or not 8 <= h <= 128 or c not in (1, 3):
        raise ValueError(
            f"{family} takes square images whose side is a multiple of 4 from 8 to 128, with 1 or 3 "
            f"channels (e.g. (28, 28, 1), (32, 32, 3), (64, 64, 3)); got {tuple(value)}. "
            "Resize the data (keras_gen.data.load(..., image_size=...) for folders) or bring "
            "your own networks to the family's base class."
        )
    return h, w, c


def labels(values, n, num_classes, class_names=None):
    """Validates `labels` for `generate(n, labels=...)`: int32 array (n,), or None for an
    unconditional model. One label stands for all n images. A label is a class index or, when
    the model knows `class_names` (the names it was trained with), a class name ("Sneaker");
    indices and names may be mixed."""
    if num_classes is None:
        if values is not None:
            raise ValueError(
                "labels were given, but this model is unconditional (num_classes=None). Call "
                "it without labels, or build the model with num_classes."
            )
        return None
    if values is None:
        raise ValueError(
            f"this model is conditional on {num_classes} classes: pass labels, e.g. "
            f"generate({n}, labels=[0] * {n}) or labels=range({n}) % {num_classes}."
        )
    if isinstance(values, np.ndarray) and values.dtype.kind in "UO":
        values = values.tolist()
    if isinstance(values, str) or (
        not isinstance(values, np.ndarray) and _iterable(values)
        and any(isinstance(v, str) for v in values)
    ):
        values = class_indices(values, class_names)
    values = np.asarray(values)
    if values.ndim == 0:
        values = np.full((n,), int(values))
    if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"labels must be {n} integers or class names (one per image), or one for all; got "
            f"{values.dtype} array of shape {values.shape}."
        )
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(
            f"labels must be in 0..{num_classes - 1}; got values in "
            f"{int(values.min())}..{int(values.max())}."
        )
    return values.astype(np.int32)


def _iterable(values):
    try:
        iter(values)
    except TypeError:
        return False
    return True


def class_indices(values, class_names):
    """Class names (and indices, passed through) -> indices: one name, or a sequence mixing names
    and ints. An unknown name, or a name for a model without class names, is an error that lists
    the names there are."""
    if class_names is None:
        raise ValueError(
            f"labels {values!r} are class names, but this model has no class names (it was not "
            "trained through keras-gen with named classes): pass class indices, or set "
            "model.class_names = keras_gen.data.info(SOURCE).class_names."
        )
    index = {name: i for i, name in enumerate(class_names)}
    single = isinstance(values, str)
    out = []
    for value in [values] if single else values:
        if isinstance(value, str):
            if value not in index:
                close = difflib.get_close_matches(value, list(class_names), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"labels: unknown class name {value!r}; the model's classes are "
                    f"{', '.join(map(repr, class_names))} (or their indices "
                    f"0..{len(class_names) - 1}).{hint}"
                )
            value = index[value]
        elif isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"labels must be class indices or class names; got {value!r}.")
        out.append(int(value))
    return out[0] if single else out


def class_names(values, num_classes):
    """`values` as a tuple of `num_classes` distinct strings, or None."""
    if values is None:
        return None
    if isinstance(values, str) or not _iterable(values):
        raise ValueError(f"class_names must be a list of strings, one per class; got {values!r}.")
    names = tuple(values)
    if num_classes is None:
        raise ValueError(
            "class_names were given, but the model is unconditional (num_classes=None); build it "
            "with num_classes=len(class_names)."
        )
    if len(names) != num_classes or not all(isinstance(v, str) for v in names):
        raise ValueError(
            f"class_names must be {num_classes} strings (num_classes={num_classes}); got "
            f"{len(names)}: {names!r}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct; got {names!r}.")
    return names


def odd_kernel(kernel_size, arg="kernel_size"):
    """An odd kernel size (int or pair) as (kh, kw): masked convolutions need a centre tap."""
    if isinstance(kernel_size, (int, np.integer)) and not isinstance(kernel_size, bool):
        kernel_size = (int(kernel_size), int(kernel_size))
    try:
        kh, kw = (int(k) for k in kernel_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"{arg} must be an odd integer or a pair of odd integers, e.g. 3 or (1, 5); "
            f"got {kernel_size!r}."
        ) from None
    if kh <= 0 or kw <= 0 or kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(
            f"{arg} must be odd (a masked convolution needs a centre tap), e.g. 3, 5 or 7; got "
            f"{kernel_size!r}. Use the next odd size."
        )
    return kh, kw
