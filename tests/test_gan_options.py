"""The GAN options behind the defaults: each changes the step as its formula says (R1, DiffAugment,
EMA with warm-up and its own batch-norm statistics, strided critic batches), the reported losses
equal a hand computation on the step's own noise, and data in the wrong range is caught."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gen as kg
from keras_gen import augment, data
from keras_gen.models import DCGAN, GAN
from keras_gen.models import gan as gan_module


def digits(batch_size=16, n=32, image_range="tanh", with_labels=False):
    return data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range=image_range,
                     with_labels=with_labels, shuffle=False, seed=0)


def first_batch(**kwargs):
    return next(iter(digits(**kwargs)))


# -- R1 -----------------------------------------------------------------------------------------


class Quadratic(keras.layers.Layer):
    """D(x) = sum(a * x^2): grad_x D = 2 a x, so ||grad||^2 = sum(4 a^2 x^2)."""

    def build(self, input_shape):
        self.a = self.add_weight(shape=input_shape[1:], initializer=keras.initializers.Constant(0.3))

    def call(self, x):
        return tf.reduce_sum(self.a * tf.square(x), axis=[1, 2, 3])[:, None]


def tiny_generator():
    dense = keras.layers.Dense(64, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(1))
    return keras.Sequential([keras.Input((4,)), dense, keras.layers.Reshape((8, 8, 1))])


def quadratic_gan(**kwargs):
    generator = tiny_generator()
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), Quadratic()])
    return GAN(generator, discriminator, latent_dim=4, seed=0, **kwargs)


def test_r1_penalty_equals_a_hand_computation():
    gamma = 3.0
    model = quadratic_gan(r1_weight=gamma, loss="hinge")
    model.compile()
    real = first_batch().numpy()
    a = model.discriminator.layers[-1].a.numpy()
    step = tf.constant(0, tf.int64)
    model._discriminator_phase(tf.constant(real), None, step, 0, train=False)
    r1 = np.sum(4 * a**2 * real**2, axis=(1, 2, 3))
    np.testing.assert_allclose(model.r1_tracker.result().numpy(), r1.mean(), rtol=1e-5)
    # d_loss = hinge terms + gamma / 2 * R1, per example, on the step's own fakes
    z = model._noise(step, 0, gan_module._Z, len(real), (4,)).numpy()
    fake = model.generator(z).numpy()
    d = lambda x: np.sum(a * x**2, axis=(1, 2, 3))  # noqa: E731
    expected = np.maximum(0, 1 - d(real)) + np.maximum(0, 1 + d(fake)) + 0.5 * gamma * r1
    np.testing.assert_allclose(model.d_loss_tracker.result().numpy(), expected.mean(), rtol=1e-5)
    # The penalty takes part in D's update: without R1 the step differs.
    trained = {}
    for weight in (0.0, gamma):
        m = quadratic_gan(r1_weight=weight, loss="hinge")
        m.compile(d_optimizer=keras.optimizers.SGD(0.01), g_optimizer=keras.optimizers.SGD(0.01))
        m._discriminator_phase(tf.constant(real), None, step, 0, train=True)
        trained[weight] = m.discriminator.layers[-1].a.numpy()
    # d/da of gamma/2 * mean_b sum(4 a^2 x^2) = gamma * 4 a mean_b x^2
    np.testing.assert_allclose(trained[0.0] - trained[gamma], 0.01 * gamma * 4 * a * np.mean(real**2, 0),
                               rtol=1e-4, atol=1e-7)


# -- DiffAugment ------------------------------------------------------------------------------


def test_translation_moves_pixels_and_fills_with_zeros():
    x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1) + 1
    # limit = round(8 * 0.125) = 1; u -> shift floor(u * 3) - 1: u=0.9 -> +1, u=0.1 -> -1
    u = np.array([[0.9, 0.1], [0.5, 0.5]], np.float32)
    out = augment.diff_augment(x, u, "translation").numpy()
    expected = np.zeros_like(x)
    expected[0, 1:, :-1] = x[0, :-1, 1:]  # down one row, left one column
    expected[1] = x[1]  # shift 0
    np.testing.assert_array_equal(out, expected)


def test_cutout_zeroes_a_square_and_color_follows_its_formula():
    x = np.ones((1, 8, 8, 1), np.float32)
    out = augment.diff_augment(x, np.array([[0.5, 0.5]], np.float32), "cutout").numpy()
    assert out.sum() == 64 - 16 and set(np.unique(out)) == {0.0, 1.0}  # a 4x4 hole inside
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
    u = rng.uniform(size=(2, 3)).astype(np.float32)
    bright = x + (u[:, 0] - 0.5)[:, None, None, None]
    mean = bright.mean(axis=(1, 2, 3), keepdims=True)
    expected = (bright - mean) * (u[:, 2] + 0.5)[:, None, None, None] + mean
    np.testing.assert_allclose(augment.diff_augment(x, u, "color").numpy(), expected, atol=1e-6)


def test_diffaugment_is_differentiable_in_the_images():
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32))
    u = tf.constant(np.random.default_rng(1).uniform(size=(2, augment.noise_size("color,translation,cutout"))),
                    tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = augment.diff_augment(x, u, "color,translation,cutout")
    grad = tape.gradient(out, x)
    assert grad is not None and np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).sum() > 0
    with pytest.raises(ValueError, match="diffaugment must be a comma-separated subset"):
        augment.parse_policy("colour")


class Recorder(keras.layers.Layer):
    """A discriminator that remembers what it was shown (eager runs only)."""

    seen = []

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones")

    def call(self, x):
        Recorder.seen.append(np.asarray(x))
        return self.scale * tf.reduce_mean(x, axis=[1, 2, 3])[:, None]


def test_diffaugment_is_applied_to_real_and_fake_alike():
    generator = tiny_generator()
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), Recorder()])
    policy = "translation,cutout"
    model = GAN(generator, discriminator, 4, diffaugment=policy, seed=0)
    model.compile()
    real = tf.constant(first_batch().numpy())
    step = tf.constant(5, tf.int64)
    Recorder.seen.clear()
    model._discriminator_phase(real, None, step, 0, train=False)
    seen_real, seen_fake = Recorder.seen
    noise = lambda offset: model._noise(step, 0, offset, 16, (4,), "uniform")  # noqa: E731
    np.testing.assert_array_equal(seen_real, augment.diff_augment(real, noise(gan_module._AUGMENT_REAL), policy))
    fake = generator(model._noise(step, 0, gan_module._Z, 16, (4,)))
    np.testing.assert_allclose(seen_fake, augment.diff_augment(fake, noise(gan_module._AUGMENT_FAKE), policy),
                               atol=1e-6)
    assert not np.array_equal(seen_real, real.numpy())  # augmented, not the raw images


def test_color_on_three_channels_scales_saturation_around_the_grey():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    u = np.array([[0.3, 0.9, 0.2], [0.7, 0.1, 0.8]], np.float32)  # saturation x1.8 and x0.2
    per_image = lambda v: v[:, None, None, None]  # noqa: E731
    bright = x + per_image(u[:, 0] - 0.5)
    grey = bright.mean(axis=-1, keepdims=True)
    saturated = (bright - grey) * per_image(2 * u[:, 1]) + grey
    mean = saturated.mean(axis=(1, 2, 3), keepdims=True)
    expected = (saturated - mean) * per_image(u[:, 2] + 0.5) + mean
    np.testing.assert_allclose(augment.diff_augment(x, u, "color").numpy(), expected, atol=1e-5)


def test_diffaugment_is_applied_in_the_generator_step_on_colour_images():
    dense = keras.layers.Dense(8 * 8 * 3, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(1))
    generator = keras.Sequential([keras.Input((4,)), dense, keras.layers.Reshape((8, 8, 3))])
    discriminator = keras.Sequential([keras.Input((8, 8, 3)), Recorder()])
    policy = "color,translation,cutout"
    model = GAN(generator, discriminator, 4, diffaugment=policy, seed=0)
    model.compile()
    step = tf.constant(5, tf.int64)
    Recorder.seen.clear()
    model._generator_phase(None, 16, step, train=False)
    (seen_fake,) = Recorder.seen
    phase = gan_module._GENERATOR_PHASE
    fake = generator(model._noise(step, phase, gan_module._Z, 16, (4,))).numpy()
    uniform = model._noise(step, phase, gan_module._AUGMENT_FAKE, 16, (augment.noise_size(policy),), "uniform")
    np.testing.assert_allclose(seen_fake, augment.diff_augment(fake, uniform, policy), atol=1e-6)
    assert not np.allclose(seen_fake, fake, atol=1e-3)  # augmented, not the raw fakes


# -- EMA ----------------------------------------------------------------------------------------


def test_ema_warms_up_and_keeps_batch_norm_statistics_of_its_own():
    model = DCGAN((8, 8, 1), latent_dim=8, filters=4, ema_decay=0.9, seed=0)
    model.compile()
    ema, live = model.ema_generator, model.generator
    before = [w.numpy().copy() for w in ema.weights]
    model.fit(digits(n=16), epochs=1, verbose=0)  # one step
    decay = min(0.9, (1 + 1) / (10 + 1))  # warm-up at step t = 1
    for ema_w, w, b in zip(ema.weights, live.weights, before):
        if w.trainable:
            np.testing.assert_allclose(ema_w.numpy(), decay * b + (1 - decay) * w.numpy(), rtol=1e-5, atol=1e-7)
    # BN statistics: those of the averaged generator run on the step's latent vectors, not a
    # copy of the live generator's.
    copy = keras.models.clone_model(ema)
    copy.set_weights([e.numpy() if w.trainable else b for e, w, b in zip(ema.weights, live.weights, before)])
    for layer in copy._flatten_layers(include_self=False):
        layer.trainable = True
    z = model._noise(tf.constant(0, tf.int64), gan_module._GENERATOR_PHASE, gan_module._Z, 16, (8,))
    copy(z, training=True)
    for e, c, w in zip(ema.weights, copy.weights, live.weights):
        if not w.trainable:
            np.testing.assert_allclose(e.numpy(), c.numpy(), rtol=1e-5, atol=1e-6)
    moving = [(e.numpy(), w.numpy()) for e, w in zip(ema.weights, live.weights) if not w.trainable]
    assert any(not np.allclose(e, w) for e, w in moving)
    np.testing.assert_allclose(model.generate(2, seed=3), (ema(model.latent_vectors(2, 3)).numpy() + 1) / 2, atol=1e-6)


def test_the_ema_statistics_pass_runs_every_k_steps_and_leaves_training_unchanged():
    """ema_statistics_every=k: the EMA generator's batch-norm statistics move on steps 1, k + 1,
    ..., with momentum m^k; the generator, the discriminator and the averaged weights train
    exactly as with a pass every step."""
    def run(every):
        model = DCGAN((8, 8, 1), latent_dim=8, filters=4, ema_decay=0.9, ema_statistics_every=every, seed=0)
        model.compile()
        moving = [w for w in model.ema_generator.weights if "moving" in w.path]
        assert moving
        moved = []
        for step in range(1, 6):  # one step per fit
            before = [w.numpy().copy() for w in moving]
            model.fit(digits(n=16), epochs=1, verbose=0)
            if any(not np.array_equal(b, w.numpy()) for b, w in zip(before, moving)):
                moved.append(step)
        return model, moved

    every_step, moved_1 = run(1)
    sparse, moved_3 = run(3)
    assert moved_1 == [1, 2, 3, 4, 5]
    assert moved_3 == [1, 4]
    norms = [layer for layer in sparse.ema_generator._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.BatchNormalization)]
    live = [layer for layer in sparse.generator._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(abs(e.momentum - w.momentum ** 3) < 1e-12 for e, w in zip(norms, live))
    for network in ("generator", "discriminator"):
        for a, b in zip(getattr(every_step, network).weights, getattr(sparse, network).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(every_step.ema_generator.weights, sparse.ema_generator.weights):
        if "moving" not in a.path:
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert DCGAN.from_config(sparse.get_config()).ema_statistics_every == 3
    with pytest.raises(ValueError, match="ema_statistics_every"):
        DCGAN((8, 8, 1), latent_dim=8, filters=4, ema_statistics_every=0)


# -- the reported losses --------------------------------------------------------------------------


def test_reported_losses_equal_a_hand_computation_on_the_steps_own_noise():
    model = DCGAN((8, 8, 1), latent_dim=8, filters=4, loss="non_saturating", dropout=0.0,
                  ema_decay=None, diffaugment=None, seed=0)
    model.compile()
    real = first_batch().numpy()
    g0 = [w.numpy().copy() for w in model.generator.weights]
    model.train_step(tf.constant(real))  # eager: the step as fit runs it
    d_loss, g_loss = model.d_loss_tracker.result().numpy(), model.g_loss_tracker.result().numpy()
    generator = keras.models.clone_model(model.generator)
    generator.set_weights(g0)
    step = tf.constant(0, tf.int64)
    softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
    # The discriminator phase ran the old D; rebuild it from the update it made.
    z_d = model._noise(step, 0, gan_module._Z, 16, (8,))
    z_g = model._noise(step, gan_module._GENERATOR_PHASE, gan_module._Z, 16, (8,))
    # g_loss is computed with the updated D (the model's D now) and the old G.
    fake_g = generator(z_g, training=True)
    expected_g = softplus(-model.discriminator(fake_g, training=True).numpy().ravel()).mean()
    np.testing.assert_allclose(g_loss, expected_g, rtol=1e-5)
    # d_loss with the old D: undo D's single Adam step is not exact, so recompute it on a copy
    # trained from the same start.
    fresh = DCGAN((8, 8, 1), latent_dim=8, filters=4, loss="non_saturating", dropout=0.0, seed=0)
    real_logits = fresh.discriminator(real, training=True).numpy().ravel()
    fake_logits = fresh.discriminator(generator(z_d, training=True), training=True).numpy().ravel()
    expected_d = (softplus(-real_logits) + softplus(fake_logits)).mean()
    np.testing.assert_allclose(d_loss, expected_d, rtol=1e-5)


# -- critic steps, WGAN-GP, ranges ----------------------------------------------------------------


def test_each_critic_step_sees_its_own_strided_part_of_the_batch():
    generator = tiny_generator()
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), Recorder()])
    model = GAN(generator, discriminator, 4, loss="wasserstein_gp", discriminator_steps=2,
                gradient_penalty_weight=0.0, seed=0)
    model.compile()
    real = first_batch().numpy()
    Recorder.seen.clear()
    model.train_step(tf.constant(real))
    real_seen = [Recorder.seen[0], Recorder.seen[3]]  # per critic step: real, fake, interpolates
    np.testing.assert_array_equal(real_seen[0], real[0::2])
    np.testing.assert_array_equal(real_seen[1], real[1::2])


def test_wgan_gp_follows_its_paper():
    model = DCGAN((8, 8, 1), latent_dim=8, filters=4, loss="wasserstein_gp", dropout=0.0, seed=0)
    assert model.discriminator_steps == 5
    assert model.gradient_penalty_weight == 10.0  # lambda
    model.compile()  # Adam(1e-4, beta_1=0, beta_2=0.9) for the critic and the generator alike
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert isinstance(optimizer, keras.optimizers.Adam)
        assert float(optimizer.learning_rate) == pytest.approx(1e-4)
        assert (float(optimizer.beta_1), float(optimizer.beta_2)) == (0.0, pytest.approx(0.9))
    with pytest.raises(ValueError, match="WGAN-GP critic has neither dropout"):
        DCGAN((8, 8, 1), latent_dim=8, filters=4, loss="wasserstein_gp", dropout=0.3)
    with pytest.raises(ValueError, match="discriminator_steps must be at most 7"):
        DCGAN((8, 8, 1), latent_dim=8, filters=4, discriminator_steps=8)


def test_data_in_the_wrong_range_is_caught_before_training():
    model = DCGAN((8, 8, 1), latent_dim=8, filters=4, seed=0)
    model.compile()
    with pytest.raises(ValueError, match=r"generator ends in tanh.*\[-1, 1\].*\[0, 1\].*image_range='tanh'"):
        model.fit(digits(image_range="unit"), epochs=1, verbose=0)
    unit = DCGAN((8, 8, 1), latent_dim=8, filters=4, image_range="unit", seed=0)
    unit.compile()
    with pytest.raises(ValueError, match=r"image_range='unit'.*\[0, 1\].*\[-1"):
        unit.fit(digits(image_range="tanh"), epochs=1, verbose=0)
    unit.fit(digits(image_range="unit"), epochs=1, verbose=0)  # the right range trains


def test_replica_exact_dropout_scales_kept_units_and_is_identity_at_inference():
    # (1 vs 2 replicas with it inside a DCGAN: tests/test_distribute.py)
    layer = kg.layers.ReplicaExactDropout(0.25, seed=3)
    x = np.ones((64, 32), np.float32)
    y = layer(x, training=True).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.03
    assert not np.array_equal(layer(x, training=True).numpy(), y)  # a fresh mask each call
    np.testing.assert_array_equal(layer(x, training=False), x)
    again = kg.layers.ReplicaExactDropout.from_config(layer.get_config())
    np.testing.assert_array_equal(again(x, training=True), y)  # same seed, same first mask
    with pytest.raises(ValueError, match="rate"):
        kg.layers.ReplicaExactDropout(1.0)
