"""Adversarial losses equal their formulas; the gradient penalty equals a hand computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import losses

REAL = np.array([2.0, -1.0, 0.3, 40.0, -40.0], np.float32)
FAKE = np.array([-0.5, 1.5, 0.0, -40.0, 40.0], np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x.astype(np.float64))


def test_minimax_discriminator_is_the_negated_value_function():
    # D maximises E[log D(x)] + E[log(1 - D(G(z)))], i.e. minimises its negation.
    expected = -(log_sigmoid(REAL) + log_sigmoid(-FAKE))
    got = losses.discriminator_loss("minimax", REAL, FAKE).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Cross-check on unsaturated logits with the plain formula.
    plain = -(np.log(sigmoid(REAL[:3])) + np.log(1 - sigmoid(FAKE[:3])))
    np.testing.assert_allclose(got[:3], plain, rtol=1e-5)


def test_minimax_generator_minimises_log_one_minus_d():
    expected = np.log(1 - sigmoid(FAKE[:3]))
    np.testing.assert_allclose(losses.generator_loss("minimax", FAKE).numpy()[:3], expected, rtol=1e-5)
    assert np.all(np.isfinite(losses.generator_loss("minimax", FAKE).numpy()))


def test_non_saturating_generator():
    expected = -log_sigmoid(FAKE)
    np.testing.assert_allclose(losses.generator_loss("non_saturating", FAKE).numpy(), expected, rtol=1e-6)


def test_label_smoothing_uses_soft_real_targets():
    s = 0.1
    t = 1 - s
    expected = -(t * log_sigmoid(REAL) + (1 - t) * log_sigmoid(-REAL)) - log_sigmoid(-FAKE)
    got = losses.discriminator_loss("non_saturating", REAL, FAKE, label_smoothing=s).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_wasserstein_and_hinge():
    np.testing.assert_allclose(losses.discriminator_loss("wasserstein_gp", REAL, FAKE).numpy(), FAKE - REAL)
    np.testing.assert_allclose(losses.generator_loss("wasserstein_gp", FAKE).numpy(), -FAKE)
    hinge = np.maximum(0, 1 - REAL) + np.maximum(0, 1 + FAKE)
    np.testing.assert_allclose(losses.discriminator_loss("hinge", REAL, FAKE).numpy(), hinge)
    np.testing.assert_allclose(losses.generator_loss("hinge", FAKE).numpy(), -FAKE)


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.generator_loss("wgan", FAKE)


def quadratic_critic(w, c):
    """D(x) = sum(w * x) + c * sum(x^2): gradient w + 2 c x, known in closed form."""
    inputs = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(inputs)
    linear = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(w))(flat)
    square = keras.layers.Lambda(lambda t: c * keras.ops.sum(t * t, axis=1, keepdims=True))(flat)
    return keras.Model(inputs, keras.layers.Add()([linear, square]))


def test_gradient_penalty_equals_hand_computation():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 1)).astype(np.float32)
    c = 0.7
    real = rng.normal(size=(3, 2, 2, 1)).astype(np.float32)
    fake = rng.normal(size=(3, 2, 2, 1)).astype(np.float32)
    alpha = np.array([0.0, 0.25, 0.9], np.float32)
    critic = quadratic_critic(w, c)
    got = losses.gradient_penalty(critic, real, fake, alpha).numpy()
    x_hat = (alpha[:, None] * real.reshape(3, 4) + (1 - alpha[:, None]) * fake.reshape(3, 4))
    grad = w[:, 0][None, :] + 2 * c * x_hat
    expected = (np.linalg.norm(grad, axis=1) - 1.0) ** 2
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gradient_penalty_is_finite_where_the_critic_gradient_is_zero():
    critic = quadratic_critic(np.zeros((4, 1), np.float32), 0.0)
    real = tf.Variable(np.ones((2, 2, 2, 1), np.float32))
    with tf.GradientTape() as tape:
        gp = losses.gradient_penalty(critic, real, tf.zeros_like(real), tf.constant([0.5, 0.5]))
    grads = tape.gradient(gp, critic.trainable_variables)
    np.testing.assert_allclose(gp.numpy(), [1.0, 1.0], atol=1e-5)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
