"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GAN discriminators.

The same random transformation family is applied to real and generated images before the
discriminator sees them, and it is differentiable in the images, so the generator learns through
it; the discriminator then cannot memorise a small training set. Every random number comes from
the caller (`uniform`, one row per image), so a GAN draws it from its replica-exact step noise.

Images are NHWC in the generator's range; "translation" and "cutout" fill with zeros (mid-grey
for images in [-1, 1]), as the reference implementation does.
"""

from __future__ import annotations

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")
# Uniform numbers per image each policy consumes.
NOISE_SIZES = {"color": 3, "translation": 2, "cutout": 2}
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy):
    """"color,translation,cutout" (or a list, or None/"" for none) -> a tuple in canonical order."""
    if policy in (None, "", (), []):
        return ()
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(
            f"diffaugment must be a comma-separated subset of {', '.join(POLICIES)} (or None); "
            f"got {policy!r} (unknown: {unknown})."
        )
    return tuple(p for p in POLICIES if p in names)


def noise_size(policy):
    """How many uniform numbers per image `diff_augment` needs for `policy`."""
    return sum(NOISE_SIZES[p] for p in parse_policy(policy))


def diff_augment(images, uniform, policy):
    """Augments `images` (B, H, W, C) with `uniform` noise (B, noise_size(policy)) in [0, 1)."""
    policy = parse_policy(policy)
    images = tf.convert_to_tensor(images)
    uniform = tf.cast(uniform, images.dtype)
    column = 0
    for name in policy:
        u = uniform[:, column : column + NOISE_SIZES[name]]
        column += NOISE_SIZES[name]
        images = {"color": _color, "translation": _translation, "cutout": _cutout}[name](images, u)
    return images


def _per_image(u):
    return u[:, None, None, None]


def _color(x, u):
    """Brightness (+[-0.5, 0.5]), saturation (x[0, 2] around the grey, colour images only) and
    contrast (x[0.5, 1.5] around the image mean)."""
    x = x + (_per_image(u[:, 0]) - 0.5)
    if x.shape[-1] == 3:
        grey = tf.reduce_mean(x, axis=-1, keepdims=True)
        x = (x - grey) * (2.0 * _per_image(u[:, 1])) + grey
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * (_per_image(u[:, 2]) + 0.5) + mean


def _shift_matrices(shift, size, dtype):
    """(B, size, size) one-hot matrices M with M[b, i, j] = 1 where j = i - shift[b]: M @ x moves
    x by shift[b] along that axis, filling with zeros."""
    i = tf.range(size)[None, :, None]
    j = tf.range(size)[None, None, :]
    return tf.cast(tf.equal(j, i - shift[:, None, None]), dtype)


def _translation(x, u):
    """Shifts each image by up to TRANSLATION_RATIO of its size in both directions (integer
    pixels), zero fill. Written as two batched matrix products, so it is differentiable and
    compiles with XLA."""
    h, w = x.shape[1], x.shape[2]
    limit_h, limit_w = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    shift_h = tf.cast(tf.floor(u[:, 0] * (2 * limit_h + 1)), tf.int32) - limit_h
    shift_w = tf.cast(tf.floor(u[:, 1] * (2 * limit_w + 1)), tf.int32) - limit_w
    rows = _shift_matrices(tf.minimum(shift_h, limit_h), h, x.dtype)
    cols = _shift_matrices(tf.minimum(shift_w, limit_w), w, x.dtype)
    x = tf.einsum("bij,bjwc->biwc", rows, x)
    return tf.einsum("bij,bhjc->bhic", cols, x)


def _cutout(x, u):
    """Zeroes a square of CUTOUT_RATIO of the image size at a random position (clipped by the
    border), as the reference implementation does."""
    h, w = x.shape[1], x.shape[2]
    size_h, size_w = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = tf.floor(u[:, 0] * (h + 1 - size_h % 2)) - size_h // 2
    left = tf.floor(u[:, 1] * (w + 1 - size_w % 2)) - size_w // 2
    rows = tf.range(h, dtype=u.dtype)[None, :] - top[:, None]
    cols = tf.range(w, dtype=u.dtype)[None, :] - left[:, None]
    inside_h = (rows >= 0) & (rows < size_h)
    inside_w = (cols >= 0) & (cols < size_w)
    hole = tf.logical_and(inside_h[:, :, None], inside_w[:, None, :])
    return x * tf.cast(tf.logical_not(hole), x.dtype)[..., None]
