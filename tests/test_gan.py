"""The GAN family: the minimax game in train_step, generation contract, conditioning, EMA,
reproducibility and serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import data
from keras_gen.models import DCGAN, GAN


def tiny(num_classes=None, **kwargs):
    kwargs.setdefault("seed", 0)
    return DCGAN((8, 8, 1), latent_dim=8, filters=4, num_classes=num_classes, **kwargs)


def digits(batch_size=32, with_labels=False, image_range="tanh", n=64):
    return data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range=image_range,
                     with_labels=with_labels, seed=0)


def values(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_each_phase_updates_only_its_own_network():
    model = tiny()
    model.compile()
    real = next(iter(digits()))
    g, d = model.generator.trainable_variables, model.discriminator.trainable_variables
    g0, d0 = values(g), values(d)
    step = model.optimizer.iterations
    model._discriminator_phase(real, None, step, 0, train=True)
    assert all(changed(d0, d)) and not any(changed(g0, g))
    g1, d1 = values(g), values(d)
    model._generator_phase(None, tf.shape(real)[0], step, train=True)
    assert all(changed(g1, g)) and not any(changed(d1, d))


def test_train_step_changes_both_networks_and_counts_steps():
    model = tiny(discriminator_steps=2)
    model.compile()
    g0, d0 = values(model.generator.trainable_variables), values(model.discriminator.trainable_variables)
    model.fit(digits(), epochs=1, verbose=0)
    assert all(changed(g0, model.generator.trainable_variables))
    assert all(changed(d0, model.discriminator.trainable_variables))
    assert int(model.optimizer.iterations) == 2  # generator updates: one per batch
    # each optimiser holds state for its own network only (Adam: 2 slots per variable)
    assert len(model.optimizer.variables) == 2 + 2 * len(model.generator.trainable_variables)
    assert len(model.d_optimizer.variables) == 2 + 2 * len(model.discriminator.trainable_variables)
    assert int(model.d_optimizer.iterations) == 4  # discriminator_steps per batch


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "wasserstein_gp", "hinge"])
def test_every_loss_trains_with_finite_logs(loss):
    model = tiny(loss=loss)
    model.compile()
    history = model.fit(digits(), epochs=1, verbose=0, validation_data=digits())
    logs = {k: v[-1] for k, v in history.history.items()}
    assert {"d_loss", "g_loss", "val_d_loss", "val_g_loss"} <= set(logs)
    assert ("gradient_penalty" in logs) == (loss == "wasserstein_gp")
    assert all(np.isfinite(v) for v in logs.values())


def test_same_seed_same_weights_and_different_seed_differs():
    def run(seed):
        model = tiny(seed=seed)
        model.compile()
        model.fit(digits(), epochs=1, verbose=0)
        return model.generator.get_weights()

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_generate_contract():
    model = tiny()
    images = model.generate(5, seed=3)
    assert images.shape == (5, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, model.generate(5, seed=3))
    assert not np.array_equal(images, model.generate(5, seed=4))
    # generate maps the tanh range to [0, 1] exactly: (G(z) + 1) / 2.
    z = model.latent_vectors(5, 3)
    np.testing.assert_allclose(images, (model.generator(z).numpy() + 1) / 2, atol=1e-6)
    assert model.generate(0).shape == (0, 8, 8, 1)


def test_conditional_samples_change_with_the_label():
    model = tiny(num_classes=10)
    model.compile()
    model.fit(digits(with_labels=True), epochs=1, verbose=0)
    a = model.generate(4, seed=0, labels=[0, 0, 0, 0])
    b = model.generate(4, seed=0, labels=[2, 2, 2, 2])
    # DCGAN's N(0, 0.02) initialisation keeps a young generator's outputs near 0.5, so the
    # effect is small, but far above float32 rounding (6e-8 at 0.5).
    assert np.abs(a - b).max() > 1e-6
    np.testing.assert_array_equal(a, model.generate(4, seed=0, labels=0))


def test_ema_follows_the_formula():
    model = tiny(ema_decay=0.9)
    model.compile()
    ema, live = model.ema_generator, model.generator
    # The EMA network is not trainable (its trainable_variables are empty): pair the real weights,
    # of which the live generator's trainable ones are averaged.
    pairs = [(e, w) for e, w in zip(ema.weights, live.weights) if w.trainable]
    assert len(pairs) == len(live.trainable_weights) > 0
    np.testing.assert_array_equal(pairs[0][0].numpy(), pairs[0][1].numpy())  # starts as a copy
    for t in (1, 2):  # one step each; the warm-up decay min(0.9, (1 + t) / (10 + t)) at step t
        before = values(e for e, _ in pairs)
        model.fit(digits(n=32), epochs=1, verbose=0)
        assert int(model.optimizer.iterations) == t
        decay = min(0.9, (1 + t) / (10 + t))
        for (ema_w, w), w0 in zip(pairs, before):
            np.testing.assert_allclose(ema_w.numpy(), decay * w0 + (1 - decay) * w.numpy(), rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(e.numpy(), w.numpy()) for e, w in pairs)  # an average, not a copy
    # generate uses the averaged weights
    z = model.latent_vectors(3, 0)
    np.testing.assert_allclose(model.generate(3, seed=0), (model.ema_generator(z).numpy() + 1) / 2, atol=1e-6)


@pytest.mark.parametrize("num_classes, ema", [(None, None), (3, 0.99)])
def test_save_and_load_round_trip(tmp_path, num_classes, ema):
    model = tiny(num_classes=num_classes and 10, ema_decay=ema, loss="hinge", spectral_norm=True)
    model.compile()
    model.fit(digits(with_labels=bool(num_classes)), epochs=1, verbose=0)
    labels = None if num_classes is None else [0, 1, 2, 1]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # safe_mode=True
    assert type(loaded) is DCGAN and loaded.loss_kind == "hinge" and loaded.seed == model.seed
    np.testing.assert_array_equal(loaded.generate(4, seed=7, labels=labels), model.generate(4, seed=7, labels=labels))
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
    for a, b in zip(loaded.d_optimizer.variables, model.d_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Training goes on after loading.
    loaded.fit(digits(with_labels=bool(num_classes)), epochs=1, verbose=0)


def test_gan_with_user_networks_round_trips(tmp_path):
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="sigmoid"),
                                  keras.layers.Reshape((4, 4, 1))])
    discriminator = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model = GAN(generator, discriminator, latent_dim=4, image_range="unit", seed=1)
    model.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.01))
    x = np.random.default_rng(0).uniform(size=(16, 4, 4, 1)).astype(np.float32)
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    np.testing.assert_array_equal(loaded.generate(3, seed=0), model.generate(3, seed=0))
    # image_range="unit": generate returns the generator's output unchanged.
    np.testing.assert_allclose(model.generate(3, seed=0), generator(model.latent_vectors(3, 0)).numpy(), atol=1e-6)
    assert isinstance(loaded.g_optimizer, keras.optimizers.SGD)


def test_bad_inputs_give_clear_errors():
    model = tiny()
    model.compile()
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 8, 8, 1\).*\(batch, 28, 28, 1\)"):
        model.fit(data.load("fashion_mnist_10k", split="train[:8]"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="unconditional"):
        model.generate(2, labels=[0, 1])
    with pytest.raises(ValueError, match="non-negative integer"):
        model.generate(-1)
    conditional = tiny(num_classes=3)
    with pytest.raises(ValueError, match="pass labels"):
        conditional.generate(2)
    with pytest.raises(ValueError, match=r"labels must be in 0..2"):
        conditional.generate(2, labels=[0, 3])
    with pytest.raises(ValueError, match="needs \\(images, labels\\) batches"):
        conditional.fit(digits(), epochs=1, verbose=0)
    conditional.compile()
    with pytest.raises(ValueError, match=r"label in the data is outside 0..2 \(the model has num_classes=3\)"):
        conditional.fit(digits(with_labels=True), epochs=1, verbose=0)
    xla = tiny(num_classes=3)
    xla.compile(jit_compile=True)  # checked in the input pipeline, outside the compiled step
    assert xla.jit_compile is True  # Keras turns XLA off silently for a model it cannot compile
    with pytest.raises(ValueError, match=r"Labels in the batch: 0..9"):
        xla.fit(digits(with_labels=True), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="multiple of 4 from 8 to 128"):
        DCGAN((30, 30, 1))
    with pytest.raises(ValueError, match="loss must be one of"):
        tiny(loss="wgan")
    with pytest.raises(ValueError, match="d_optimizer= and g_optimizer="):
        model.compile(optimizer="adam")
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16), keras.layers.Reshape((4, 4, 1))])
    discriminator = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="latent_dim=5"):
        GAN(generator, discriminator, latent_dim=5)
    with pytest.raises(ValueError, match="one logit per image"):
        GAN(generator, keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)]), 4)


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_sizes(shape):
    model = DCGAN(shape, latent_dim=4, filters=2, seed=0)
    assert model.generate(2, seed=0).shape == (2,) + shape
    assert model.discriminator(model.generator(model.latent_vectors(2, 0))).shape == (2, 1)
