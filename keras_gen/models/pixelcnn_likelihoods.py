"""Per-sub-pixel likelihoods of PixelCNN outputs, in log space.

Pixel levels v in 0..levels-1 are scaled to x = 2 v / (levels - 1) - 1 in [-1, 1].

- "categorical": a softmax over the `levels` values; the network gives `levels` logits.
- "logistic_mixture": the discretised mixture of logistics of PixelCNN++ (Salimans et al.
  2017): 3 K numbers per sub-pixel, [mixture logits (K), means (K), log scales (K)]. Level v
  gets the mass of its bin [x - 1/(levels-1), x + 1/(levels-1)], the edge levels take the tails,
  so the masses sum to 1 exactly. Colour channels are conditioned by the network's channel
  masks instead of PixelCNN++'s linear coefficients.

log(sigmoid(a) - sigmoid(b)) for a > b is computed as
-softplus(-a) - softplus(b) + log(1 - exp(b - a)), which stays finite and accurate where both
CDF values round to 1 or 0 (no pdf fallback needed).
"""

from __future__ import annotations

import math

import tensorflow as tf

LIKELIHOODS = ("categorical", "logistic_mixture")
MIN_LOG_SCALE = -7.0
MAX_LOG_SCALE = 7.0


def num_params(likelihood, levels, num_mixtures):
    """Numbers the network outputs per sub-pixel."""
    return levels if likelihood == "categorical" else 3 * num_mixtures


def _log1mexp(d):
    """log(1 - exp(-d)) for d > 0 (Maechler 2012); both branches stay finite for the gradient."""
    ln2 = math.log(2.0)
    small = tf.math.log(-tf.math.expm1(-tf.minimum(d, ln2)))
    large = tf.math.log1p(-tf.exp(-tf.maximum(d, ln2)))
    return tf.where(d < ln2, small, large)


def _mixture_log_mass(v, params, levels):
    """log P(level v) under the mixture; `v` (float) broadcasts against params[..., :K]."""
    logit_probs, means, log_scales = tf.split(params, 3, axis=-1)
    log_scales = tf.clip_by_value(log_scales, MIN_LOG_SCALE, MAX_LOG_SCALE)
    half_bin = 1.0 / (levels - 1)
    x = v * (2.0 / (levels - 1)) - 1.0
    inv_scale = tf.exp(-log_scales)
    centered = x - means
    plus = inv_scale * (centered + half_bin)
    minus = inv_scale * (centered - half_bin)
    log_cdf_plus = -tf.nn.softplus(-plus)  # log sigmoid(plus): mass of the lowest level
    log_sf_minus = -tf.nn.softplus(minus)  # log(1 - sigmoid(minus)): mass of the highest level
    log_mid = log_cdf_plus + log_sf_minus + _log1mexp(2.0 * half_bin * inv_scale)
    log_mass = tf.where(
        v < 0.5, log_cdf_plus, tf.where(v > levels - 1.5, log_sf_minus, log_mid)
    )
    return tf.reduce_logsumexp(log_mass + tf.nn.log_softmax(logit_probs, axis=-1), axis=-1)


def level_log_probs(params, likelihood, levels):
    """log P(level) for every level: params (..., P) -> (..., levels)."""
    params = tf.cast(params, tf.float32)
    if likelihood == "categorical":
        return tf.nn.log_softmax(params, axis=-1)
    v = tf.range(levels, dtype=tf.float32)[:, None]  # (levels, 1) against K
    return _mixture_log_mass(v, params[..., None, :], levels)


def sampling_scores(params, likelihood, levels):
    """log P(level) up to a constant per sub-pixel, which the Gumbel-max draw ignores:
    the logits themselves for "categorical" (no log-softmax on the sampler's critical path),
    `level_log_probs` for "logistic_mixture"."""
    params = tf.cast(params, tf.float32)
    if likelihood == "categorical":
        return params
    return level_log_probs(params, likelihood, levels)


def log_prob(params, x_levels, likelihood, levels):
    """log P(x) per sub-pixel: params (..., P), integer levels x (...) -> (...)."""
    params = tf.cast(params, tf.float32)
    if likelihood == "categorical":
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(x_levels, tf.int32), logits=params
        )
    v = tf.cast(x_levels, tf.float32)[..., None]
    return _mixture_log_mass(v, params, levels)
