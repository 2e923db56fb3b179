"""Adversarial losses, per example, from logits.

Every function returns one value per example so the caller can average over the *global* batch
under `tf.distribute`. They work in log space (softplus), so saturated logits give finite losses
and gradients: log(sigmoid(l)) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l).
"""

import math
import warnings

import numpy as np
import tensorflow as tf

GAN_LOSSES = ("minimax", "non_saturating", "wasserstein_gp", "hinge")


def _flat(logits):
    return tf.reshape(tf.cast(logits, tf.float32), [-1])


def discriminator_loss(kind, real_logits, fake_logits, label_smoothing=0.0):
    """The discriminator's (critic's) loss per example, without any gradient penalty.

    minimax / non_saturating: -log D(x) - log(1 - D(G(z))), with one-sided label smoothing
    (real targets 1 - label_smoothing). wasserstein_gp: D(G(z)) - D(x). hinge:
    relu(1 - D(x)) + relu(1 + D(G(z))).
    """
    real, fake = _flat(real_logits), _flat(fake_logits)
    if kind in ("minimax", "non_saturating"):
        target = 1.0 - label_smoothing
        real_term = target * tf.nn.softplus(-real) + (1.0 - target) * tf.nn.softplus(real)
        return real_term + tf.nn.softplus(fake)
    if kind == "wasserstein_gp":
        return fake - real
    if kind == "hinge":
        return tf.nn.relu(1.0 - real) + tf.nn.relu(1.0 + fake)
    raise ValueError(f"loss must be one of {GAN_LOSSES}; got {kind!r}.")


def generator_loss(kind, fake_logits):
    """The generator's loss per example.

    minimax: log(1 - D(G(z))), exactly the term of the minimax objective the generator
    minimises. non_saturating: -log D(G(z)). wasserstein_gp and hinge: -D(G(z)).
    """
    fake = _flat(fake_logits)
    if kind == "minimax":
        return -tf.nn.softplus(fake)
    if kind == "non_saturating":
        return tf.nn.softplus(-fake)
    if kind in ("wasserstein_gp", "hinge"):
        return -fake
    raise ValueError(f"loss must be one of {GAN_LOSSES}; got {kind!r}.")


def gradient_penalty(critic, real, fake, alpha, labels=None):
    """WGAN-GP penalty (||grad_x D(x_hat)||_2 - 1)^2 per example, x_hat = alpha * real +
    (1 - alpha) * fake with alpha ~ Uniform(0, 1) per example (drawn by the caller).

    The norm is sqrt(sum(g^2) + 1e-12): finite, with a finite gradient, where the critic's
    gradient is exactly zero (plain tf.norm gives NaN there).
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    alpha = tf.reshape(tf.cast(alpha, tf.float32), [-1] + [1] * (len(real.shape) - 1))
    interpolated = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        inputs = interpolated if labels is None else [interpolated, labels]
        logits = critic(inputs, training=True)
    grads = tape.gradient(logits, interpolated)
    grads = tf.reshape(tf.cast(grads, tf.float32), [tf.shape(grads)[0], -1])
    norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=1) + 1e-12)
    return tf.square(norm - 1.0)


def r1_penalty(tape, real_logits, real_images):
    """R1 (Mescheder et al. 2018): ||grad_x D(x)||^2 per example at the real images, from the
    tape that watched `real_images` while the discriminator produced `real_logits` (so D runs
    once on the reals). Call it inside the discriminator's own gradient tape: the penalty is
    differentiated again for D's update. The caller weights it by gamma / 2."""
    # A non-scalar target differentiates its sum: each example's logit depends on its own
    # image only (no batch statistics in the discriminator), so row b is grad_x D(x_b).
    grads = tape.gradient(real_logits, real_images)
    grads = tf.reshape(tf.cast(grads, tf.float32), [tf.shape(grads)[0], -1])
    return tf.reduce_sum(tf.square(grads), axis=1)


# --------------------------------------------------------------------------------------------
# VAE terms: the KL of a diagonal Gaussian posterior and image log-likelihoods.
#
# Each log-probability takes images `x` in [0, 1] (NHWC) and the decoder's parameters, and returns
# log p(x | params) per pixel (`reduce=False`) or summed over the pixels of each example (the
# default, shape (batch,)). All work in log space and stay finite on saturated pixels (0 and 1).

IMAGE_LIKELIHOODS = ("bernoulli", "gaussian", "discretized_logistic")

# Clamp of the Gaussian log-variance: below -10 a density on 8-bit data grows without bound as
# the variance collapses onto the pixel levels; above 10 it carries no information.
GAUSSIAN_LOGVAR_RANGE = (-10.0, 10.0)
# Smallest log-scale of the discretised logistic, in [0, 1] units (openai/pixel-cnn clamps at -7
# in [-1, 1] units, i.e. -7 - log 2 here): a bin then already holds all the mass.
LOGISTIC_MIN_LOG_SCALE = -7.0 - 0.6931471805599453
# ... and the largest: beyond it the bin mass underflows float32 (a scale of e^10 spans 22,000
# images' worth of range, so nothing useful is lost).
LOGISTIC_MAX_LOG_SCALE = 10.0


def _sum_per_example(values, reduce):
    if not reduce:
        return values
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def gaussian_kl(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over the latent dimensions:
    0.5 * sum(exp(logvar) + mean^2 - 1 - logvar)."""
    mean = tf.cast(mean, tf.float32)
    logvar = tf.cast(logvar, tf.float32)
    return 0.5 * tf.reduce_sum(tf.exp(logvar) + tf.square(mean) - 1.0 - logvar, axis=-1)


def diagonal_gaussian_log_prob(z, mean, logvar):
    """log N(z; mean, diag(exp(logvar))) summed over the last axis."""
    z, mean, logvar = (tf.cast(t, tf.float32) for t in (z, mean, logvar))
    return -0.5 * tf.reduce_sum(
        _LOG_2PI + logvar + tf.square(z - mean) * tf.exp(-logvar), axis=-1
    )


_LOG_2PI = 1.8378770664093453


def bernoulli_log_prob(x, logits, reduce=True):
    """log Bernoulli(x; sigmoid(logits)) = -(x softplus(-l) + (1 - x) softplus(l)), for x in
    {0, 1} (binarised images). Finite for any logits."""
    x = tf.cast(x, tf.float32)
    logits = tf.cast(logits, tf.float32)
    values = -tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return _sum_per_example(values, reduce)


def gaussian_log_prob(x, mean, logvar, reduce=True):
    """log N(x; mean, exp(logvar)) per pixel, a density. `logvar` (learned, same shape as `mean`,
    or a fixed scalar) is clamped to GAUSSIAN_LOGVAR_RANGE."""
    x = tf.cast(x, tf.float32)
    mean = tf.cast(mean, tf.float32)
    logvar = tf.clip_by_value(tf.cast(logvar, tf.float32), *GAUSSIAN_LOGVAR_RANGE)
    values = -0.5 * (_LOG_2PI + logvar + tf.square(x - mean) * tf.exp(-logvar))
    values = values + tf.zeros_like(x)  # a scalar (fixed) log-variance broadcasts to every pixel
    return _sum_per_example(values, reduce)


def discretized_logistic_log_prob(x, mean, log_scale, num_levels=256, reduce=True):
    """log P(x) for 8-bit images x = k / (num_levels - 1) in [0, 1] under a logistic
    (mean, exp(log_scale)) discretised into num_levels bins (Salimans et al. 2017, PixelCNN++):
    the bin [x - h, x + h] with h = 0.5 / (num_levels - 1), the lowest bin reaching to -inf and
    the highest to +inf, so the probabilities of the levels sum to 1.

    For a middle bin, with a = (x + h - mean) / s and b = (x - h - mean) / s,
    log(sigmoid(a) - sigmoid(b)) = -softplus(-a) - softplus(b) + log(-expm1(b - a)),
    which is finite and exact for any mean and scale (no branch on tiny bins).
    """
    x = tf.cast(x, tf.float32)
    mean = tf.cast(mean, tf.float32)
    log_scale = tf.clip_by_value(
        tf.cast(log_scale, tf.float32), LOGISTIC_MIN_LOG_SCALE, LOGISTIC_MAX_LOG_SCALE
    )
    half_bin = 0.5 / (num_levels - 1)
    inv_scale = tf.exp(-log_scale)
    centered = x - mean
    a = (centered + half_bin) * inv_scale
    b = (centered - half_bin) * inv_scale
    log_cdf_upper = -tf.nn.softplus(-a)  # log sigmoid(a): the lowest level's bin
    log_survival_lower = -tf.nn.softplus(b)  # log(1 - sigmoid(b)): the highest level's bin
    log_mass = log_cdf_upper + log_survival_lower + tf.math.log(
        -tf.math.expm1(-2.0 * half_bin * inv_scale)
    )
    values = tf.where(
        x < half_bin, log_cdf_upper, tf.where(x > 1.0 - half_bin, log_survival_lower, log_mass)
    )
    return _sum_per_example(values, reduce)


class ImageLikelihood:
    """p(x | decoder output) of images in [0, 1], written once for the autoencoders (VAE and
    VQ-VAE): the decoder's raw output split into parameters, the log-probability per image, the
    mean image, and the check that data suit it.

    kind: one of IMAGE_LIKELIHOODS. observation_variance: for "gaussian", a fixed variance of
    every pixel (the decoder then gives means only), or None for a learned one.
    """

    def __init__(self, kind, observation_variance=None):
        if kind not in IMAGE_LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {IMAGE_LIKELIHOODS}; got {kind!r}.")
        self.kind = kind
        self.observation_variance = observation_variance
        self._warned_bernoulli = False

    @property
    def params_per_channel(self):
        """Decoder outputs per image channel: 1 (Bernoulli logits, fixed-variance means) or 2."""
        if self.kind == "bernoulli" or (self.kind == "gaussian" and self.observation_variance is not None):
            return 1
        return 2

    def split(self, raw):
        """Decoder output -> {"logits"} (bernoulli), {"mean"} (gaussian, fixed variance),
        {"mean", "logvar"} (gaussian) or {"mean", "log_scale"} (discretized_logistic)."""
        raw = tf.cast(raw, tf.float32)
        if self.kind == "bernoulli":
            return {"logits": raw}
        if self.params_per_channel == 1:
            return {"mean": raw}
        loc, second = tf.split(raw, 2, axis=-1)
        return {"mean": loc, ("logvar" if self.kind == "gaussian" else "log_scale"): second}

    def log_prob(self, images, params):
        """log p(x | params) per image, summed over pixels."""
        if self.kind == "bernoulli":
            return bernoulli_log_prob(images, params["logits"])
        if self.kind == "gaussian":
            logvar = params.get("logvar")
            if logvar is None:
                logvar = math.log(self.observation_variance)
            return gaussian_log_prob(images, params["mean"], logvar)
        return discretized_logistic_log_prob(images, params["mean"], params["log_scale"])

    def mean(self, params):
        """The image the parameters describe: the Bernoulli mean, or the location clipped to
        [0, 1] (the discretised logistic puts the mass beyond 0 and 1 on the end levels)."""
        if self.kind == "bernoulli":
            return tf.sigmoid(params["logits"])
        return tf.clip_by_value(params["mean"], 0.0, 1.0)

    def check_images(self, images, what, image_range):
        """Fails on data outside the range this likelihood models, with a readable message; warns
        once when Bernoulli nats are not a log-likelihood. `image_range`: the model's
        `data_range`, for the advice."""
        images = np.asarray(images)
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(
                f"{what} takes float images in [0, 1]; got dtype {images.dtype}. Load the data "
                f"with keras_gen.data.load(..., image_range={image_range!r})."
            )
        if images.size == 0:
            return
        lo, hi = float(images.min()), float(images.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{what} takes images in [0, 1]; the data holds values in [{lo:.3g}, {hi:.3g}]. "
                f"Load it with keras_gen.data.load(..., image_range={image_range!r})."
            )
        if self.kind == "discretized_logistic":
            levels = images * 255.0
            if np.max(np.abs(levels - np.round(levels))) > 1e-3:
                raise ValueError(
                    "likelihood='discretized_logistic' models 8-bit images, values k / 255; the "
                    "data holds other values. Load it with image_range='unit' (not dequantised "
                    "or resized), or use likelihood='gaussian'."
                )
        if self.kind == "bernoulli" and not self._warned_bernoulli:
            if np.any((images != 0.0) & (images != 1.0)):
                self._warned_bernoulli = True
                warnings.warn(
                    "likelihood='bernoulli' on images that are not binary: training works (a "
                    "cross-entropy), but its nats are not a log-likelihood. For numbers that "
                    "compare with papers load the data with image_range='binary'.",
                    stacklevel=5,
                )
