"""Adversarial losses, per example, from logits.

Every function returns one value per example so the caller can average over the *global* batch
under `tf.distribute`. They work in log space (softplus), so saturated logits give finite losses
and gradients: log(sigmoid(l)) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l).
"""

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
