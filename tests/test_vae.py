"""The VAE family: the ELBO against hand computations, the likelihoods against their definitions,
the importance-weighted bound against an exact log-likelihood, conditioning, beta warm-up and
serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from keras_gen import callbacks as kg_callbacks
from keras_gen import data
from keras_gen import losses
from keras_gen.callbacks import KLWarmup
from keras_gen.models.vae import VAE, ConvVAE


def tiny(likelihood="bernoulli", num_classes=None, **kwargs):
    kwargs.setdefault("seed", 0)
    return ConvVAE((8, 8, 1), latent_dim=4, filters=4, likelihood=likelihood,
                   num_classes=num_classes, **kwargs)


def digits(image_range="binary", n=64, batch_size=32, with_labels=False, shuffle=True):
    return data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range=image_range,
                     with_labels=with_labels, seed=0, shuffle=shuffle)


RANGE = {"bernoulli": "binary", "gaussian": "unit", "discretized_logistic": "unit"}


# --------------------------------------------------------------------------------------------
# A dense VAE on 2x2 images whose every number can be recomputed in NumPy.

PIXELS, LATENT = 4, 2


def dense_vae(likelihood, params_per_channel, beta=1.0, seed=0, **kwargs):
    x = keras.Input((2, 2, 1))
    h = keras.layers.Flatten()(x)
    encoder = keras.Model(x, [keras.layers.Dense(LATENT, name="mean")(h),
                              keras.layers.Dense(LATENT, name="logvar")(h)])
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(PIXELS * params_per_channel),
                                keras.layers.Reshape((2, 2, params_per_channel))])
    rng = np.random.default_rng(seed)
    for w in encoder.weights + decoder.weights:
        w.assign(rng.normal(0.0, 0.7, w.shape).astype(np.float32))
    return VAE(encoder, decoder, LATENT, likelihood=likelihood, beta=beta, seed=seed, **kwargs)


def hand_elbo_terms(model, x, noise):
    """(reconstruction, kl) per example in float64 NumPy, from the model's weights."""
    wm, bm, wv, bv = (w.numpy().astype(np.float64) for w in model.encoder.weights)
    wd, bd = (w.numpy().astype(np.float64) for w in model.decoder.weights)
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean, logvar = flat @ wm + bm, flat @ wv + bv
    z = mean + np.exp(0.5 * logvar) * noise
    raw = (z @ wd + bd).reshape(len(x), 2, 2, -1)
    if model.likelihood == "bernoulli":
        p = special.expit(raw)
        log_px = x * np.log(p) + (1 - x) * np.log1p(-p)
    elif model.likelihood == "gaussian" and model.observation_variance is not None:
        log_px = stats.norm.logpdf(x, raw, np.sqrt(model.observation_variance))
    elif model.likelihood == "gaussian":
        log_px = stats.norm.logpdf(x, raw[..., :1], np.exp(0.5 * raw[..., 1:]))
    else:
        log_px = np.log(discretized_logistic_probability(x, raw[..., :1], raw[..., 1:]))
    kl = 0.5 * np.sum(np.exp(logvar) + mean**2 - 1 - logvar, axis=1)
    return -log_px.reshape(len(x), -1).sum(axis=1), kl


def discretized_logistic_probability(x, mean, log_scale):
    """P(x) by the definition: CDF differences over the bin of x, the end bins open."""
    s = np.exp(log_scale)
    h = 0.5 / 255
    upper = np.where(x > 1 - h, 1.0, special.expit((x + h - mean) / s))
    lower = np.where(x < h, 0.0, special.expit((x - h - mean) / s))
    return upper - lower


LIKELIHOOD_CASES = [("bernoulli", 1, {}), ("gaussian", 2, {}),
                    ("gaussian", 1, {"observation_variance": 0.3}), ("discretized_logistic", 2, {})]


@pytest.mark.parametrize("likelihood, params, kwargs", LIKELIHOOD_CASES)
def test_elbo_terms_equal_a_hand_computation(likelihood, params, kwargs):
    model = dense_vae(likelihood, params, **kwargs)
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 256, (5, 2, 2, 1))
    levels[0] = [[[0], [255]], [[0], [255]]]  # saturated pixels
    x = (levels > 127).astype(np.float32) if likelihood == "bernoulli" else (levels / 255).astype(np.float32)
    noise = rng.standard_normal((5, LATENT)).astype(np.float32)
    reconstruction, kl = model.elbo_terms(x, None, noise)
    want_rec, want_kl = hand_elbo_terms(model, x, noise)
    np.testing.assert_allclose(reconstruction.numpy(), want_rec, rtol=2e-5, atol=2e-4)
    np.testing.assert_allclose(kl.numpy(), want_kl, rtol=2e-5, atol=1e-5)


def test_train_and_test_steps_track_the_beta_weighted_bound_with_their_noise():
    model = dense_vae("bernoulli", 1, beta=0.5)
    # SGD(0): the weights stay, to compare with the hand values; no XLA, whose random ops draw
    # other noise than the TF kernels the hand computation uses.
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    x = (np.random.default_rng(2).uniform(size=(8, 2, 2, 1)) > 0.5).astype(np.float32)
    history = model.fit(x, batch_size=8, epochs=1, verbose=0, validation_data=(x,), shuffle=False)
    # The train step draws its noise from (seed, step 0); the test step from the fixed key -1.
    for prefix, step in (("", 0), ("val_", -1)):
        noise = model.step_noise(tf.constant(step, tf.int64), 0, 8, (LATENT,)).numpy()
        rec, kl = hand_elbo_terms(model, x, noise)
        logs = {k: v[-1] for k, v in history.history.items()}
        np.testing.assert_allclose(logs[prefix + "reconstruction_loss"], rec.mean(), rtol=1e-5)
        np.testing.assert_allclose(logs[prefix + "kl_loss"], kl.mean(), rtol=1e-5)
        np.testing.assert_allclose(logs[prefix + "loss"], (rec + 0.5 * kl).mean(), rtol=1e-5)


def test_train_step_gradient_is_the_gradient_of_the_mean_loss():
    model = dense_vae("gaussian", 2)
    model.compile(optimizer=keras.optimizers.SGD(1.0), jit_compile=False)  # TF kernels' noise
    x = np.random.default_rng(3).uniform(size=(6, 2, 2, 1)).astype(np.float32)
    noise = model.step_noise(tf.constant(0, tf.int64), 0, 6, (LATENT,))
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        rec, kl = model.elbo_terms(x, None, noise)
        loss = tf.reduce_mean(rec + kl)
    grads = tape.gradient(loss, model.trainable_variables)
    model.fit(x, batch_size=6, epochs=1, verbose=0, shuffle=False)
    for b, g, v in zip(before, grads, model.trainable_variables):
        np.testing.assert_allclose(v.numpy(), b - g.numpy(), rtol=1e-4, atol=1e-5)


def test_closed_form_kl_equals_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mean = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    logvar = np.array([[-1.0, 0.5, 0.0], [0.0, 0.0, 0.0]])
    z = mean + np.exp(0.5 * logvar) * rng.standard_normal((200_000,) + mean.shape)
    log_ratio = (stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)) - stats.norm.logpdf(z)).sum(-1)
    estimate = log_ratio.mean(0)
    standard_error = log_ratio.std(0) / np.sqrt(len(z))
    closed = losses.gaussian_kl(mean.astype(np.float32), logvar.astype(np.float32)).numpy()
    # A Monte Carlo mean is within 5 standard errors with probability 1 - 6e-7; the second row
    # (q = p) has KL exactly 0 and a log-ratio that is exactly 0 for every sample.
    assert np.all(np.abs(closed - estimate) <= 5 * standard_error + 1e-6), (closed, estimate)
    assert closed[1] == 0.0 and closed[0] > 1.0


# --------------------------------------------------------------------------------------------
# Likelihoods: normalised, equal to their definitions, finite where pixels saturate.


def test_bernoulli_probabilities_sum_to_one_and_saturate_finitely():
    logits = tf.constant([[-100.0, -3.0, 0.0, 2.5, 100.0]])
    p0 = losses.bernoulli_log_prob(tf.zeros_like(logits), logits, reduce=False)
    p1 = losses.bernoulli_log_prob(tf.ones_like(logits), logits, reduce=False)
    np.testing.assert_allclose(np.exp(p0) + np.exp(p1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p1.numpy()[0, 1:4], np.log(special.expit([-3.0, 0.0, 2.5])), rtol=1e-6)
    assert np.all(np.isfinite(p0)) and np.all(np.isfinite(p1))
    assert p0.numpy()[0, -1] == pytest.approx(-100.0) and p1.numpy()[0, 0] == pytest.approx(-100.0)


LOGISTIC_PARAMS = [(0.5, -3.0), (0.0, -8.0), (1.0, -8.0), (-3.0, 0.0), (4.0, 1.0), (0.3, 5.0), (0.25, -20.0)]


@pytest.mark.parametrize("mean, log_scale", LOGISTIC_PARAMS)
def test_discretized_logistic_sums_to_one_over_256_levels(mean, log_scale):
    x = tf.constant((np.arange(256) / 255).reshape(1, 256, 1, 1), tf.float32)
    lp = losses.discretized_logistic_log_prob(
        x, tf.fill(x.shape, mean), tf.fill(x.shape, log_scale), reduce=False).numpy().ravel()
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(np.exp(lp.astype(np.float64)).sum(), 1.0, atol=2e-5)
    clamped = max(log_scale, losses.LOGISTIC_MIN_LOG_SCALE)
    want = discretized_logistic_probability(np.arange(256) / 255, mean, clamped)
    # Where the definition's float64 difference is meaningful, the log-space form agrees.
    ok = want > 1e-12
    np.testing.assert_allclose(lp[ok], np.log(want[ok]), rtol=1e-4, atol=1e-4)


def test_gaussian_is_the_normal_density_and_integrates_to_one():
    x = np.linspace(-3.0, 4.0, 70_001)
    mean, logvar = 0.4, np.log(0.2**2)
    lp = losses.gaussian_log_prob(tf.constant(x.reshape(1, -1, 1, 1), tf.float32),
                                  tf.constant(mean), tf.constant(logvar), reduce=False).numpy().ravel()
    np.testing.assert_allclose(lp, stats.norm.logpdf(x, mean, 0.2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.trapezoid(np.exp(lp), x), 1.0, atol=1e-5)
    # A collapsing learned variance is clamped, so the density on a pixel level stays bounded.
    tiny_var = losses.gaussian_log_prob(tf.constant([[0.5]]), tf.constant([[0.5]]), tf.constant([[-50.0]]),
                                        reduce=False)
    np.testing.assert_allclose(tiny_var.numpy(), stats.norm.logpdf(0.5, 0.5, np.exp(-5.0)), rtol=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "discretized_logistic"])
def test_no_nan_values_or_gradients_on_saturated_pixels(likelihood):
    x = tf.constant([0.0, 1.0, 0.0, 1.0, 0.0, 1.0], shape=(1, 6, 1, 1))
    loc = tf.Variable(tf.constant([-200.0, 200.0, 200.0, -200.0, 0.0, 1.0], shape=(1, 6, 1, 1)))
    scale = tf.Variable(tf.constant([-60.0, -60.0, 60.0, 60.0, -60.0, 60.0], shape=(1, 6, 1, 1)))
    with tf.GradientTape() as tape:
        if likelihood == "bernoulli":
            lp = losses.bernoulli_log_prob(x, loc)
        elif likelihood == "gaussian":
            lp = losses.gaussian_log_prob(x, loc, scale)
        else:
            lp = losses.discretized_logistic_log_prob(x, loc, scale)
    grads = tape.gradient(lp, [loc, scale])
    assert np.all(np.isfinite(lp.numpy()))
    assert all(g is None or np.all(np.isfinite(g.numpy())) for g in grads)


# --------------------------------------------------------------------------------------------
# The importance-weighted bound, against a model whose log-likelihood is known exactly: a linear
# Gaussian decoder x = W z + b + N(0, s2 I), for which p(x) = N(b, W W^T + s2 I) and, with W's
# columns orthogonal, the true posterior is a diagonal Gaussian an encoder can represent.

S2 = 0.05
W = np.array([[0.3, 0.2], [-0.3, 0.2], [0.3, -0.2], [-0.3, -0.2]])  # orthogonal columns
B = np.array([0.5, 0.4, 0.6, 0.5])


def linear_gaussian_vae(posterior_error=0.0):
    post_var = 1.0 / (1.0 + (W**2).sum(0) / S2)
    kernel = W * post_var / S2  # mean = Sigma W^T (x - b) / s2
    x = keras.Input((2, 2, 1))
    h = keras.layers.Flatten()(x)
    mean_layer, logvar_layer = keras.layers.Dense(LATENT, name="mean"), keras.layers.Dense(LATENT, name="logvar")
    encoder = keras.Model(x, [mean_layer(h), logvar_layer(h)])
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(PIXELS), keras.layers.Reshape((2, 2, 1))])
    mean_layer.set_weights([kernel * (1 + posterior_error), -(B @ kernel) + posterior_error])
    logvar_layer.set_weights([np.zeros((PIXELS, LATENT)), np.log(post_var) - 2 * posterior_error])
    decoder.set_weights([W.T, B])
    return VAE(encoder, decoder, LATENT, likelihood="gaussian", observation_variance=S2, seed=0)


def exact_log_likelihood(x):
    cov = W @ W.T + S2 * np.eye(PIXELS)
    return stats.multivariate_normal(B, cov).logpdf(x.reshape(len(x), -1).astype(np.float64))


def test_iwae_with_the_true_posterior_is_the_exact_log_likelihood_for_every_k():
    x = np.random.default_rng(4).uniform(0.2, 0.8, (64, 2, 2, 1)).astype(np.float32)
    model = linear_gaussian_vae()
    exact = -exact_log_likelihood(x).mean()
    for k in (1, 7):
        np.testing.assert_allclose(model.log_likelihood(x, num_samples=k)["nats_per_image"], exact,
                                   rtol=1e-5, atol=1e-4)
    # The ELBO is exact too in expectation (q = p(z | x)); one sample per image is noisy.
    assert model.evaluate_elbo(x)["nats_per_image"] == pytest.approx(exact, abs=0.2)


def test_iwae_is_above_the_elbo_increases_with_k_and_approaches_the_log_likelihood():
    x = np.random.default_rng(5).uniform(0.2, 0.8, (256, 2, 2, 1)).astype(np.float32)
    model = linear_gaussian_vae(posterior_error=0.3)  # a poor posterior: large gaps
    exact = -exact_log_likelihood(x).mean()
    elbo = model.evaluate_elbo(x, batch_size=64)
    nll = [model.log_likelihood(x, num_samples=k, batch_size=64)["nats_per_image"] for k in (1, 10, 100, 1000)]
    # Measured (nats per image, seeds 0 and 1): exact 0.194, ELBO 0.95, IWAE-k 1.0, 0.49, 0.30,
    # 0.23 for k = 1, 10, 100, 1000; seeds move a value by at most 0.03, far less than the gaps.
    assert elbo["nats_per_image"] > nll[1] + 0.3
    assert elbo["nats_per_image"] == pytest.approx(nll[0], abs=0.15)  # equal in expectation
    assert nll[0] > nll[1] > nll[2] > nll[3] >= exact - 0.01
    assert nll[3] == pytest.approx(exact, abs=0.08)
    assert elbo["nats_per_image"] == pytest.approx(elbo["reconstruction"] + elbo["kl"])
    assert elbo["bits_per_dim"] == pytest.approx(
        (elbo["nats_per_image"] + 4 * np.log(255)) / (4 * np.log(2)))


def test_iwae_with_one_sample_is_the_elbo_with_its_noise_and_a_sampled_kl():
    model = tiny("discretized_logistic")
    x = next(iter(digits("unit", shuffle=False, batch_size=16)))
    noise = model._eval_noise(3, 0, 1, 16)  # what both estimators draw for batch 0 with seed 3
    rec, kl = model.elbo_terms(x, None, noise[0])
    mean, logvar = model.encode(x)
    z = mean + tf.exp(0.5 * logvar) * noise[0]
    sampled_kl = (stats.norm.logpdf(z, mean, np.exp(0.5 * logvar.numpy())) - stats.norm.logpdf(z)).sum(-1)
    iwae = model.log_likelihood(x.numpy(), num_samples=1, seed=3, batch_size=16)["nats_per_image"]
    elbo = model.evaluate_elbo(x.numpy(), seed=3, batch_size=16)
    np.testing.assert_allclose(elbo["nats_per_image"], np.mean(rec + kl), rtol=1e-6)
    np.testing.assert_allclose(iwae, np.mean(rec.numpy() + sampled_kl), rtol=1e-5)
    assert elbo["bits_per_dim"] == pytest.approx(elbo["nats_per_image"] / (64 * np.log(2)))


# --------------------------------------------------------------------------------------------
# The model: training, contract, conditioning, warm-up, serialisation.


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "discretized_logistic"])
def test_fit_with_validation_data_and_test_step_mirrors_train_step(likelihood):
    model = tiny(likelihood)
    model.compile()
    # Fixed arrays: a "binary" dataset would binarise afresh on every pass.
    val = (np.concatenate(list(digits(RANGE[likelihood], shuffle=False).as_numpy_iterator())),)
    history = model.fit(digits(RANGE[likelihood], n=128), epochs=2, verbose=0, validation_data=val)
    logs = history.history
    assert {"loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss",
            "val_kl_loss"} <= set(logs)
    assert all(np.all(np.isfinite(v)) for v in logs.values())
    assert logs["loss"][1] < logs["loss"][0]
    # The validation numbers are those evaluate() gives: same step, same fixed noise.
    evaluated = model.evaluate(val[0], verbose=0, return_dict=True)
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        assert evaluated[key] == pytest.approx(logs["val_" + key][-1], rel=1e-5)


def test_same_seed_same_run_and_different_seed_differs():
    def run(seed):
        model = tiny(seed=seed)
        model.compile()
        model.fit(digits(n=32), epochs=1, verbose=0)
        return model.get_weights()

    a, b = run(1), run(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # The seed fixes the initial weights too: every kernel differs between seeds.
    kernels = lambda m: [v.numpy() for v in m.trainable_variables if v.numpy().any()]
    assert not any(np.array_equal(x, y) for x, y in zip(kernels(tiny(seed=1)), kernels(tiny(seed=2))))


def test_generate_reconstruct_and_interpolate_contracts():
    model = tiny("discretized_logistic")
    images = model.generate(5, seed=3)
    assert images.shape == (5, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, model.generate(5, seed=3))
    assert not np.array_equal(images, model.generate(5, seed=4))
    z = model.latent_vectors(5, 3)
    np.testing.assert_allclose(images, np.clip(model.decoder_params(z)["mean"].numpy(), 0, 1), atol=1e-6)
    x = next(iter(digits("unit", n=4, batch_size=4))).numpy()
    recon = model.reconstruct(x)
    np.testing.assert_allclose(recon, model.decode(model.encode(x)[0]).numpy(), atol=1e-6)
    np.testing.assert_allclose(recon, model(x).numpy(), atol=1e-6)
    path = model.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(path[0], recon[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], recon[1], atol=1e-5)
    assert model.interpolate(x[:2], x[2:], steps=3).shape == (2, 3, 8, 8, 1)
    bern = tiny("bernoulli")
    np.testing.assert_allclose(bern.generate(2, seed=0),
                               special.expit(bern.decoder_params(bern.latent_vectors(2, 0))["logits"].numpy()),
                               atol=1e-6)


def test_encode_and_decode_trace_with_unknown_batch_and_no_random_ops():
    model = tiny("gaussian", num_classes=3)
    decode = tf.function(model.decode).get_concrete_function(
        tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32))
    encode = tf.function(model.encode).get_concrete_function(
        tf.TensorSpec([None, 8, 8, 1], tf.float32), tf.TensorSpec([None], tf.int32))
    assert decode.outputs[0].shape.as_list() == [None, 8, 8, 1]
    assert [t.shape.as_list() for t in encode.outputs] == [[None, 4], [None, 4]]
    for fn in (decode, encode):
        ops = {op.type for op in fn.graph.get_operations()}
        for f in fn.graph._functions.values():
            ops |= {node.op for node in f.cached_definition.node_def}
        assert not [op for op in ops if "Random" in op], ops


def test_conditional_samples_change_with_the_label():
    model = tiny(num_classes=10)
    model.compile()
    model.fit(digits(with_labels=True, n=32), epochs=1, verbose=0)
    a = model.generate(4, seed=0, labels=[0, 0, 0, 0])
    b = model.generate(4, seed=0, labels=[2, 2, 2, 2])
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(a, model.generate(4, seed=0, labels=0))
    x, y = next(iter(digits(with_labels=True, batch_size=4)))
    assert np.abs(model.reconstruct(x.numpy(), labels=[0] * 4) - model.reconstruct(x.numpy(), labels=[1] * 4)).max() > 1e-3
    assert model.log_likelihood(digits(with_labels=True), num_samples=2)["num_examples"] == 64


def test_kl_warmup_changes_beta_inside_the_compiled_step():
    model = tiny(beta=2.0)
    model.compile()
    betas = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: betas.append(model.beta))
    one_batch = digits(n=32, batch_size=32)
    history = model.fit(one_batch, epochs=4, verbose=0, callbacks=[KLWarmup(steps=2), record])
    assert betas == [0.0, 1.0, 2.0, 2.0]  # target: the constructor's beta
    h = history.history
    for i, beta in enumerate(betas):  # one batch per epoch: the logs are that step's values
        assert h["loss"][i] == pytest.approx(h["reconstruction_loss"][i] + beta * h["kl_loss"][i], rel=1e-5)
    # With epochs=, beta also grows within an epoch when the steps per epoch are known.
    warmup = KLWarmup(epochs=2, target=1.0)
    warmup.set_model(model)
    warmup.set_params({"steps": 2, "epochs": 3})
    seen = []
    for epoch in range(3):
        warmup.on_epoch_begin(epoch)
        for batch in range(2):
            warmup.on_train_batch_begin(batch)
            seen.append(model.beta)
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize("likelihood, num_classes", [("bernoulli", None), ("discretized_logistic", 10)])
def test_save_and_load_round_trip(tmp_path, likelihood, num_classes):
    model = tiny(likelihood, num_classes=num_classes, beta=0.7)
    model.compile()
    train = digits(RANGE[likelihood], with_labels=bool(num_classes))
    model.fit(train, epochs=1, verbose=0, callbacks=[KLWarmup(steps=4)])
    labels = None if num_classes is None else [0, 1, 2, 1]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # safe_mode=True
    assert type(loaded) is ConvVAE and loaded.likelihood == likelihood and loaded.seed == model.seed
    x = next(iter(digits(RANGE[likelihood], n=4, batch_size=4))).numpy()
    np.testing.assert_array_equal(loaded.reconstruct(x, labels=labels), model.reconstruct(x, labels=labels))
    np.testing.assert_array_equal(loaded.generate(4, seed=7, labels=labels), model.generate(4, seed=7, labels=labels))
    assert loaded.beta == model.beta == pytest.approx(0.7 * 0.25) and loaded.target_beta == 0.7
    assert int(loaded.optimizer.iterations) == 2
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.fit(train, epochs=1, verbose=0)  # training goes on after loading


def test_vae_with_user_networks_round_trips(tmp_path):
    model = dense_vae("gaussian", 1, observation_variance=0.1)
    model.compile()
    x = np.random.default_rng(0).uniform(size=(16, 2, 2, 1)).astype(np.float32)
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "v.keras")
    loaded = keras.models.load_model(tmp_path / "v.keras")
    assert type(loaded) is VAE and loaded.observation_variance == 0.1
    np.testing.assert_array_equal(loaded.reconstruct(x), model.reconstruct(x))
    np.testing.assert_array_equal(loaded.generate(3, seed=0), model.generate(3, seed=0))


def test_reconstructions_callback_writes_pairs(tmp_path):
    from PIL import Image

    model = tiny()
    model.compile()
    val = digits(n=32, shuffle=False)
    callback = kg_callbacks.Reconstructions(val, log_dir=str(tmp_path / "logs"), png_dir=str(tmp_path), n=4)
    callback.set_model(model)
    callback.on_epoch_end(0)
    grid = np.asarray(Image.open(tmp_path / "reconstructions_001.png"))
    originals = callback.images
    recon = model.reconstruct(originals)
    cell = lambda r, c: grid[1 + r * 9: 9 + r * 9, 1 + c * 9: 9 + c * 9]  # 8x8 images, 1px padding
    np.testing.assert_array_equal(cell(0, 0), np.round(originals[0, ..., 0] * 255))
    np.testing.assert_array_equal(cell(0, 1), np.round(recon[0, ..., 0] * 255))
    np.testing.assert_array_equal(cell(0, 3), np.round(recon[1, ..., 0] * 255))
    assert list((tmp_path / "logs" / "images").iterdir())


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="likelihood must be one of.*Did you mean 'bernoulli'"):
        tiny("bernouli")
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        tiny(beta=-1.0)
    with pytest.raises(ValueError, match="observation_variance is a setting of likelihood='gaussian'"):
        tiny(observation_variance=0.1)
    with pytest.raises(ValueError, match="multiple of 4 from 8 to 128"):
        ConvVAE((30, 30, 1))
    x = keras.Input((2, 2, 1))
    one_output = keras.Model(x, keras.layers.Dense(LATENT)(keras.layers.Flatten()(x)))
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(4), keras.layers.Reshape((2, 2, 1))])
    with pytest.raises(ValueError, match=r"two tensors \[mean, logvar\]"):
        VAE(one_output, decoder, LATENT)
    with pytest.raises(ValueError, match=r"decoder must return likelihood parameters \(batch, H, W, 2 \* channels\)"):
        VAE(one_output, keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(3),
                                          keras.layers.Reshape((1, 1, 3))]), LATENT, likelihood="gaussian")
    with pytest.raises(ValueError, match="latent_dim=3"):
        VAE(one_output, decoder, 3)
    model = tiny("discretized_logistic")
    with pytest.raises(ValueError, match="own loss, the negative ELBO"):
        model.compile(loss="mse")
    model.compile()
    with pytest.raises(ValueError, match=r"images in \[0, 1\].*\[-1, 1\].*image_range='unit'"):
        model.fit(digits("tanh"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="float images in \\[0, 1\\]; got dtype int32"):
        model.fit(digits("levels"), epochs=1, verbose=0)
    noisy = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="8-bit images, values k / 255"):
        model.evaluate_elbo(noisy)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 8, 8, 1\)"):
        model.fit(data.load("fashion_mnist_10k", split="train[:8]"), epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="image_range='binary'"):
        tiny().check_data(noisy)
    conditional = tiny(num_classes=3)
    with pytest.raises(ValueError, match="pass labels"):
        conditional.generate(2)
    with pytest.raises(ValueError, match="conditional on 3 classes"):
        conditional.encode(noisy)
    with pytest.raises(ValueError, match=r"labels must be in 0..2"):
        conditional.reconstruct(noisy[:2], labels=[0, 3])
    with pytest.raises(ValueError, match=r"needs \(images, labels\) batches"):
        conditional.log_likelihood(digits())
    with pytest.raises(ValueError, match="exactly one of epochs= or steps="):
        KLWarmup()
    with pytest.raises(ValueError, match=r"x must be images \(n, 8, 8, 1\)"):
        model.reconstruct(noisy[0])


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_conv_vae_sizes(shape):
    model = ConvVAE(shape, latent_dim=3, filters=2, likelihood="discretized_logistic", seed=0)
    assert model.generate(2, seed=0).shape == (2,) + shape
    assert model.decoder_params(np.zeros((2, 3)))["log_scale"].shape == (2,) + shape
