"""The pix2pix family: U-Net shapes for several sizes, the PatchGAN's receptive field, the losses
on fixed tensors, training that learns, `.keras` round trip, 1 vs 2 replicas, the translation
metrics and callback, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import families
from keras_gen import callbacks, data, metrics, networks
from keras_gen import families as kg_families
from keras_gen.models import Pix2Pix


def tiny(**kwargs):
    kwargs.setdefault("filters", 4)
    return Pix2Pix((8, 8, 1), seed=0, **kwargs)


def digit_pairs(task="superres", n=64, batch_size=16, **kwargs):
    if task == "superres":
        kwargs.setdefault("scale", 2)
    return data.load_pairs("digits", task=task, split=f"train[:{n}]", batch_size=batch_size,
                           shuffle=False, seed=0, **kwargs)


# -- networks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,channels", [
    ((8, 8, 1), 1), ((28, 28, 1), 3), ((32, 32, 3), 3), ((20, 36, 3), 1), ((256, 256, 3), 3),
])
@pytest.mark.parametrize("upsampling", ["transpose", "resize"])
def test_unet_output_has_the_input_size_for_odd_and_large_sides(shape, channels, upsampling):
    generator = networks.unet_generator(shape, channels, filters=2, upsampling=upsampling, seed=0)
    assert generator.output_shape == (None, *shape[:2], channels)
    if shape[0] <= 32:
        out = generator(np.zeros((2, *shape), np.float32))
        assert out.shape == (2, *shape[:2], channels)
        assert np.all(np.abs(out) <= 1.0)  # tanh
    transposed = any(isinstance(l, keras.layers.Conv2DTranspose) for l in generator.layers)
    assert transposed == (upsampling == "transpose")


def test_unet_depth_reaches_two_pixels():
    assert [networks.unet_depth(s, s) for s in (8, 28, 32, 64, 256, 1024)] == [2, 4, 4, 5, 7, 8]
    with pytest.raises(ValueError, match="depth must be from 1 to 8 with 2\\*\\*depth <= the smaller image side \\(8\\)"):
        networks.unet_generator((8, 8, 1), 1, depth=4)


def test_unet_padding_is_cropped_so_every_output_pixel_follows_its_input():
    # 28 is padded to 32 and cropped back: the output's corner still depends on the input.
    generator = networks.unet_generator((28, 28, 1), 1, filters=2, seed=0)
    x = tf.Variable(np.random.default_rng(0).normal(size=(1, 28, 28, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        corner = generator(x, training=False)[0, 0, 0, 0]
    grad = tape.gradient(corner, x).numpy()[0, :, :, 0]
    assert grad[0, 0] != 0.0


@pytest.mark.parametrize("num_layers,side", [(1, 48), (2, 64)])
def test_patchgan_receptive_field_is_the_support_of_one_logit(num_layers, side):
    field = networks.patchgan_receptive_field(num_layers)
    discriminator = networks.patchgan_discriminator(
        (side, side, 1), (side, side, 2), filters=2, num_layers=num_layers, seed=0)
    target = tf.Variable(np.random.default_rng(1).normal(size=(1, side, side, 2)).astype(np.float32))
    source = tf.constant(np.random.default_rng(2).normal(size=(1, side, side, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        logits = discriminator([source, target], training=False)
        centre = logits.shape[1] // 2
        logit = logits[0, centre, centre, 0]
    grad = np.abs(tape.gradient(logit, target).numpy()[0]).sum(axis=-1)
    rows, cols = np.nonzero(grad.sum(axis=1)), np.nonzero(grad.sum(axis=0))
    assert rows[0].max() - rows[0].min() + 1 == field
    assert cols[0].max() - cols[0].min() + 1 == field
    assert logits.shape[1:] == (side // 2**num_layers, side // 2**num_layers, 1)


def test_patchgan_sizes_follow_the_paper():
    assert [networks.patchgan_receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    assert [networks.patchgan_layers(s, s) for s in (8, 28, 64, 128, 256, 512)] == [1, 1, 1, 2, 3, 3]
    assert Pix2Pix((256, 256, 3), filters=1, seed=0).receptive_field == 70  # pix2pix's 70x70


# -- the objective -------------------------------------------------------------------------------


def test_losses_equal_their_formulas_on_fixed_tensors():
    model = tiny(l1_weight=7.0)
    rng = np.random.default_rng(3)
    fake_logits = tf.constant(rng.normal(size=(2, 4, 4, 1)), tf.float32)
    real_logits = tf.constant(rng.normal(size=(2, 4, 4, 1)), tf.float32)
    targets = tf.constant(rng.uniform(-1, 1, (2, 8, 8, 1)), tf.float32)
    outputs = tf.constant(rng.uniform(-1, 1, (2, 8, 8, 1)), tf.float32)
    total, adversarial, l1 = (t.numpy() for t in model.generator_loss(fake_logits, targets, outputs))
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    f, r = fake_logits.numpy().reshape(2, -1), real_logits.numpy().reshape(2, -1)
    np.testing.assert_allclose(adversarial, softplus(-f).mean(axis=1), rtol=1e-5)  # -log D(x, G(x))
    np.testing.assert_allclose(l1, np.abs(targets.numpy() - outputs.numpy()).reshape(2, -1).mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(total, adversarial + 7.0 * l1, rtol=1e-6)
    d_loss = model.discriminator_loss(real_logits, fake_logits).numpy()
    np.testing.assert_allclose(d_loss, 0.5 * (softplus(-r) + softplus(f)).mean(axis=1), rtol=1e-5)
    hinge = tiny(loss="hinge").generator_loss(fake_logits, targets, outputs)[1].numpy()
    np.testing.assert_allclose(hinge, -f.mean(axis=1), rtol=1e-5)


def test_a_step_logs_g_loss_as_adversarial_plus_weighted_l1_and_updates_both_networks():
    model = tiny(l1_weight=50.0)
    model.compile()
    before_g = [w.numpy().copy() for w in model.generator.trainable_weights]
    before_d = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    logs = model.fit(digit_pairs(n=16), epochs=1, verbose=0).history
    assert set(logs) == {"d_loss", "g_loss", "g_adversarial", "l1"}
    np.testing.assert_allclose(logs["g_loss"][0], logs["g_adversarial"][0] + 50.0 * logs["l1"][0], rtol=1e-5)
    assert int(model.optimizer.iterations) == int(model.d_optimizer.iterations) == 1
    for before, network in ((before_g, model.generator), (before_d, model.discriminator)):
        assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, network.trainable_weights))


@pytest.mark.slow
def test_training_learns_the_translation():
    model = tiny(filters=8)
    model.compile(g_optimizer=keras.optimizers.Adam(3e-3, beta_1=0.5),
                  d_optimizer=keras.optimizers.Adam(3e-3, beta_1=0.5))
    pairs = digit_pairs(n=256, batch_size=32)
    before = metrics.translation_metrics(model, pairs, ["mae"])["mae"]
    model.fit(pairs, epochs=4, verbose=0)
    after = metrics.translation_metrics(model, pairs, ["mae"])["mae"]
    assert after < 0.65 * before, (before, after)
    validation = model.evaluate(digit_pairs(n=64), return_dict=True, verbose=0)
    assert set(validation) == {"d_loss", "g_loss", "g_adversarial", "l1"}


# -- saving, distribution, precision ---------------------------------------------------------


def test_keras_round_trip_gives_identical_translations_and_optimiser_state(tmp_path):
    model = tiny(upsampling="resize", task="superres", l1_weight=30.0)
    model.compile()
    pairs = digit_pairs(n=32)
    model.fit(pairs, epochs=1, verbose=0)
    inputs = model.to_unit_range(next(iter(pairs))[0])  # translate takes [0, 1]
    model.save(tmp_path / "p.keras")
    loaded = keras.models.load_model(tmp_path / "p.keras", safe_mode=True)
    assert isinstance(loaded, Pix2Pix)
    np.testing.assert_array_equal(loaded.translate(inputs), model.translate(inputs))
    assert (loaded.upsampling, loaded.task, loaded.l1_weight) == ("resize", "superres", 30.0)
    assert int(loaded.d_optimizer.iterations) == int(loaded.optimizer.iterations) == 2
    for a, b in zip(loaded.d_optimizer.variables, model.d_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # No training inputs are kept as weights (int8 calibration data is an argument of export).
    assert not any("example_input" in w.path for w in loaded.weights)


def train_tiny(strategy, **compile_options):
    with strategy.scope():
        model = families.build("pix2pix")
        model.compile(**compile_options)
    history = model.fit(families.dataset("pix2pix"), epochs=1, verbose=0)
    return model, {k: v[-1] for k, v in history.history.items()}


@pytest.mark.slow
def test_two_replicas_train_exactly_as_one():
    # SGD, whose step is proportional to the gradient: a replica's loss scaled wrongly shows (Adam
    # would nearly hide it). Two logical CPUs, also on a GPU host ("mirrored" takes the GPUs).
    sgd = lambda: dict(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05))  # noqa: E731
    strategy = families.two_replicas()
    assert strategy.num_replicas_in_sync == 2
    initial = families.build("pix2pix").get_weights()
    one, logs_one = train_tiny(tf.distribute.get_strategy(), **sgd())
    two, logs_two = train_tiny(strategy, **sgd())
    assert two.distribute_strategy.num_replicas_in_sync == 2
    moved = max(float(np.abs(w - w0).max()) for w, w0 in zip(one.get_weights(), initial))
    assert moved > 1e-3  # far above the tolerance, so a factor on the gradient would show
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for key in logs_one:
        np.testing.assert_allclose(logs_one[key], logs_two[key], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_float16"])  # loss scaling of both optimisers
def test_mixed_precision_trains_and_survives_a_round_trip(policy, tmp_path):
    keras.config.set_dtype_policy(policy)
    try:
        model, logs = train_tiny(tf.distribute.get_strategy())
    finally:
        keras.config.set_dtype_policy("float32")
    assert all(np.isfinite(v) for v in logs.values())
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    inputs = model.to_unit_range(next(iter(families.dataset("pix2pix")))[0])
    out = model.translate(inputs)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.dtype_policy.name == policy
    np.testing.assert_array_equal(loaded.translate(inputs), out)


# -- metrics and the callback --------------------------------------------------------------------


def numpy_ssim(a, b, window=11, sigma=1.5):
    """SSIM of two (H, W) images in [0, 1]: Gaussian-weighted means, variances and covariance over
    every valid window, (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))."""
    c1, c2 = 0.01**2, 0.03**2
    g = np.exp(-((np.arange(window) - (window - 1) / 2) ** 2) / (2 * sigma**2))
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    values = []
    for i in range(a.shape[0] - window + 1):
        for j in range(a.shape[1] - window + 1):
            pa, pb = a[i : i + window, j : j + window], b[i : i + window, j : j + window]
            ma, mb = (kernel * pa).sum(), (kernel * pb).sum()
            va, vb = (kernel * pa * pa).sum() - ma**2, (kernel * pb * pb).sum() - mb**2
            cov = (kernel * pa * pb).sum() - ma * mb
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_and_psnr_equal_numpy_references():
    rng = np.random.default_rng(5)
    clean = rng.random((3, 16, 14, 1))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    ours = metrics.ssim(noisy, clean)
    for k in range(3):
        assert ours[k] == pytest.approx(numpy_ssim(noisy[k, ..., 0], clean[k, ..., 0]), abs=1e-4)
    np.testing.assert_allclose(metrics.ssim(clean, clean), 1.0, atol=1e-6)
    mse = ((noisy - clean) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(metrics.psnr(noisy, clean), 10 * np.log10(1 / mse))
    assert metrics.psnr(clean, clean)[0] == np.inf
    with pytest.raises(ValueError, match="one shape"):
        metrics.ssim(clean, clean[:, :8])


def test_translation_metrics_of_the_identity_and_of_a_fixed_error():
    images = np.random.default_rng(6).random((20, 28, 28, 1)).astype(np.float32)
    pairs = tf.data.Dataset.from_tensor_slices((images, images, np.arange(20) % 10)).batch(8)
    exact = metrics.translation_metrics(lambda x: x, pairs, ["mae", "psnr", "ssim", "fid"], data_range="unit")
    assert exact["mae"] == 0 and exact["psnr"] == np.inf and exact["num_pairs"] == 20
    assert exact["ssim"] == pytest.approx(1.0) and abs(exact["fid"]) < 1e-3
    shifted = metrics.translation_metrics(lambda x: np.clip(x + 0.1, 0, 1), pairs, ["mae"],
                                          data_range="unit", num_samples=10)
    expected = np.abs(np.clip(images[:10] + 0.1, 0, 1) - images[:10]).mean()
    assert shifted["mae"] == pytest.approx(expected, rel=1e-5) and shifted["num_pairs"] == 10
    # class_accuracy with the shipped classifier: real test images are mostly recognised.
    real = data.load_pairs("fashion_mnist_10k", task="inpaint", split="train[:200]", batch_size=100,
                           with_labels=True, shuffle=False, image_range="unit")
    accuracy = metrics.translation_metrics(lambda x: x, real.map(lambda x, y, l: (y, y, l)),
                                           ["class_accuracy"], data_range="unit")["class_accuracy"]
    assert accuracy > 0.85
    with pytest.raises(ValueError, match="class_accuracy needs labelled pairs"):
        metrics.translation_metrics(lambda x: x, pairs.map(lambda x, y, l: (x, y)), ["class_accuracy"],
                                    data_range="unit")


@pytest.mark.slow
def test_evaluate_callback_logs_translation_metrics_and_triplets_show_input_output_target(tmp_path):
    model = tiny()
    model.compile()
    pairs = digit_pairs(n=16, batch_size=8)
    evaluate = callbacks.Evaluate(pairs, metrics=["mae", "psnr", "ssim"], num_samples=16,
                                  log_dir=str(tmp_path / "logs"))
    triplets = callbacks.Translations(pairs, log_dir=str(tmp_path / "logs"), png_dir=str(tmp_path / "png"), n=4)
    history = model.fit(pairs, epochs=1, verbose=0, callbacks=[evaluate, triplets]).history
    assert {"val_mae", "val_psnr", "val_ssim"} <= set(history)
    assert history["val_mae"][0] == pytest.approx(metrics.translation_metrics(model, pairs, ["mae"])["mae"], rel=1e-5)
    grid = triplets.grid_images()
    inputs, targets = (t.numpy()[:4] for t in next(iter(pairs)))
    np.testing.assert_allclose(grid[0::3], (inputs + 1) / 2, atol=1e-6)
    np.testing.assert_allclose(grid[1::3], model.translate((inputs + 1) / 2), atol=1e-6)
    np.testing.assert_allclose(grid[2::3], (targets + 1) / 2, atol=1e-6)
    assert (tmp_path / "png" / "translations_001.png").exists()
    events = list((tmp_path / "logs" / "images").glob("events.out.tfevents.*"))
    tags = {v.tag for e in events for r in tf.compat.v1.train.summary_iterator(str(e)) for v in r.summary.value}
    assert "translations" in tags


# -- bad input -----------------------------------------------------------------------------------


def test_bad_inputs_give_clear_errors():
    model = tiny()
    model.compile()
    with pytest.raises(ValueError, match="trains on \\(input, target\\) pairs.*load_pairs"):
        model.fit(data.load("digits", image_range="tanh"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="expects inputs of shape \\(batch, 8, 8, 1\\); the data gives \\(batch, 28, 28, 1\\)"):
        model.fit(data.load_pairs("fashion_mnist_10k", task="edges"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="inputs span \\[0, .*but this model works in image_range='tanh'"):
        model.fit(digit_pairs(image_range="unit"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="translate takes inputs of shape \\(n, 8, 8, 1\\)"):
        model.translate(np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="translate's inputs span \\[2, 2\\]"):
        model.translate(np.full((2, 8, 8, 1), 2.0))
    assert model.translate(np.zeros((8, 8, 1))).shape == (8, 8, 1)  # one image
    # a translator: no generate (the command says to use translate, tests/test_pix2pix_cli.py)
    assert kg_families.kind_of(model) == kg_families.TRANSLATOR and not hasattr(model, "generate")
    with pytest.raises(ValueError, match="output_shape must have the input's height and width"):
        Pix2Pix((8, 8, 1), output_shape=(16, 16, 3))
    with pytest.raises((TypeError, ValueError), match="num_classes"):  # not class-conditional
        Pix2Pix((8, 8, 1), num_classes=10)
    with pytest.raises(ValueError, match="upsampling must be one of .*Did you mean 'resize'"):
        Pix2Pix((8, 8, 1), upsampling="resise")
    with pytest.raises(ValueError, match="pass d_optimizer= and g_optimizer="):
        model.compile(optimizer="adam")


# -- the API every family shares: image_shape first, [0, 1] in and out ----------------------------


def test_translate_takes_unit_images_whatever_the_range_the_model_trains_in():
    for image_range in ("tanh", "unit"):
        model = tiny(image_range=image_range)
        unit = np.linspace(0, 1, 2 * 64, dtype=np.float32).reshape(2, 8, 8, 1)
        network_input = unit * 2 - 1 if image_range == "tanh" else unit
        expected = model.to_unit_range(model.generator(network_input, training=False))
        np.testing.assert_allclose(model.translate(unit), expected, atol=1e-6)
        with pytest.raises(ValueError, match=r"translate's inputs span \[-1, .*takes images in \[0, 1\]"):
            model.translate(unit * 2 - 1)


def test_input_shape_is_a_deprecated_alias_of_image_shape(tmp_path):
    with pytest.warns(DeprecationWarning, match="pass image_shape"):
        old = Pix2Pix(input_shape=(8, 8, 1), output_shape=(8, 8, 3), filters=4, seed=0)
    new = Pix2Pix(image_shape=(8, 8, 1), output_shape=(8, 8, 3), filters=4, seed=0)
    assert old.input_image_shape == new.input_image_shape == (8, 8, 1)
    assert old.get_config() == new.get_config() and "input_shape" not in new.get_config()
    for a, b in zip(old.get_weights(), new.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="pass image_shape only"):
        Pix2Pix((8, 8, 1), input_shape=(8, 8, 1))
    # A config of keras-gen 0.x, with input_shape, builds the same model without a warning.
    config = {**new.get_config(), "input_shape": [8, 8, 1]}
    del config["image_shape"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        again = Pix2Pix.from_config(config)
    assert again.get_config() == new.get_config()
