"""The diffusion family: the training loss against its formula on the step's own noise, the
samplers against their formulas and against the exact ODE solution of a toy model with a known
score, replica-exact training, exact resume after a kill and the stop on a NaN loss under
training.fit, guidance, the `.keras` round trip, errors, and the exported loop in LiteRT."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import families
from keras_gen import data, training
from keras_gen import diffusion_samplers as samplers
from keras_gen.models import Diffusion

TINY = dict(widths=(4, 8), seed=0)


def tiny(num_classes=10, **kwargs):
    return Diffusion((8, 8, 1), num_classes=num_classes, **{**TINY, **kwargs})


def digits(n=32, batch_size=16):
    return data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range="tanh",
                     with_labels=True, shuffle=False, seed=0)


def perturb(model, scale=0.1):
    """Random weights everywhere (the zero-initialised output layer would hide the network)."""
    rng = np.random.default_rng(1)
    model.network.set_weights([w + rng.normal(0, scale, w.shape).astype(w.dtype)
                               for w in model.network.get_weights()])


# -- training ---------------------------------------------------------------------------------


def test_training_loss_equals_hand_computation_on_the_steps_noise():
    model = tiny(label_dropout=0.5)
    perturb(model)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    images, labels = next(iter(digits(16)))
    images, labels = images.numpy(), labels.numpy().astype(np.int32)
    t, x_t, v, drop = families.diffusion_step_zero(model, images, 0.5)
    assert 0 < drop.sum() < 16
    used_labels = np.where(drop, 10, labels)
    prediction = model.network([x_t, t, used_labels]).numpy()
    expected = np.mean((prediction - v) ** 2)
    logs = model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    np.testing.assert_allclose(logs["loss"][0], expected, rtol=1e-5)


def test_eps_prediction_regresses_the_noise():
    model = tiny(num_classes=None, prediction="eps")
    images = next(iter(digits(16)))[0]
    eps = model.step_noise(tf.constant(0, tf.int64), 1, 16, (8, 8, 1))
    np.testing.assert_array_equal(model.target(images, eps, tf.fill([16], 0.5)), eps)


def test_ema_is_warmed_up():
    model = tiny()
    perturb(model)
    model.ema_network.set_weights(model.network.get_weights())
    before = model.network.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    images, labels = next(iter(digits(16)))
    model.fit(images.numpy(), labels.numpy(), batch_size=16, epochs=1, verbose=0)
    decay = (1 + 1) / (10 + 1)  # after the first update the step counter reads 1
    after = model.network.get_weights()
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(after, before))
    for ema, b, a in zip(model.ema_network.get_weights(), before, after):
        np.testing.assert_allclose(ema, decay * b + (1 - decay) * a, atol=1e-6)


def train(strategy, optimizer=None):
    with strategy.scope():  # the optimiser too: its step counter must be a mirrored variable
        model = tiny()
        model.compile(optimizer=optimizer and keras.optimizers.get(optimizer), jit_compile=False)
    history = model.fit(digits(64), epochs=1, verbose=0)
    return model, history.history["loss"][-1]


@pytest.mark.parametrize("optimizer", [
    {"class_name": "SGD", "config": {"learning_rate": 0.1}},
    pytest.param(None, marks=pytest.mark.slow),  # two more traced distributed steps: ~1 min
])
def test_two_replicas_equal_one(optimizer):
    """SGD exposes a loss scaled by the local instead of the global batch (Adam normalises a
    factor of 2 away); the defaults cover Adam and the EMA."""
    one, loss_one = train(tf.distribute.get_strategy(), optimizer)
    two, loss_two = train(families.two_replicas(), optimizer)
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(loss_one, loss_two, rtol=1e-5)


def epoch_data(epoch):
    """Epoch `epoch` of 96 digits and labels, shuffled by the epoch's own seed (training.fit)."""
    return data.load("digits", split="train[:96]", batch_size=16, image_range="tanh", with_labels=True,
                     seed=training.epoch_seed(5, epoch))


def compiled():
    model = tiny(ema_decay=0.9)  # an EMA that still moves at step 12
    model.compile()
    return model


@pytest.mark.slow  # three models each trace a train step: ~35 CPU-seconds
def test_fit_killed_then_resumed_equals_uninterrupted(tmp_path):
    """The live and EMA networks, Adam's moments and its step counter (the key of the times,
    noise and label drops of every step) all come back from the checkpoint."""
    resumed, history = families.assert_resume_is_exact(compiled, epoch_data, tmp_path)
    assert len(history["loss"]) == 1 and int(resumed.optimizer.iterations) == 12
    assert any(np.abs(a - b).max() > 1e-4  # the EMA is a state of its own, not the live weights
               for a, b in zip(resumed.ema_network.get_weights(), resumed.network.get_weights()))


def test_nan_data_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    families.assert_stops_on_non_finite_loss(compiled(), epoch_data, tmp_path)


def test_data_range_is_checked():
    model = tiny()
    model.compile()
    unit = data.load("digits", split="train[:16]", batch_size=16, image_range="unit", with_labels=True)
    with pytest.raises(ValueError, match="image_range='tanh'"):
        model.fit(unit, epochs=1, verbose=0)


# -- samplers ---------------------------------------------------------------------------------

MU, SCALE = 0.3, 0.5  # toy data: every value ~ N(MU, SCALE^2), independently


def gaussian_denoiser(x, t):
    """The exact E[x0 | x_t] and eps of the toy data."""
    alpha, sigma = samplers.alpha_sigma(samplers.clip_time(t))
    x0 = MU + alpha * SCALE**2 / (alpha**2 * SCALE**2 + sigma**2) * (x - alpha * MU)
    return x0, (x - alpha * x0) / sigma


def exact_ode_solution(x):
    """The probability-flow ODE from T_MAX to 0 keeps (x_t - alpha_t MU) / std_t fixed."""
    alpha, sigma = samplers.alpha_sigma(samplers.T_MAX)
    return MU + SCALE * (x - alpha * MU) / math.sqrt(alpha**2 * SCALE**2 + sigma**2)


def test_one_ddim_step_equals_its_formula():
    rng = np.random.default_rng(0)
    x, x0, eps, z = (rng.standard_normal((4, 3)).astype(np.float64) for _ in range(4))
    t, s, eta = 0.7, 0.4, 0.6
    abar_t, abar_s = math.cos(math.pi * t / 2) ** 2, math.cos(math.pi * s / 2) ** 2
    # Song et al. 2021, eq. 12 and 16, in their alpha-bar notation.
    sigma = eta * math.sqrt((1 - abar_s) / (1 - abar_t)) * math.sqrt(1 - abar_t / abar_s)
    expected = math.sqrt(abar_s) * x0 + math.sqrt(1 - abar_s - sigma**2) * eps + sigma * z
    np.testing.assert_allclose(samplers.ddim_step(x, x0, eps, t, s, eta, z), expected, rtol=1e-12)
    np.testing.assert_allclose(samplers.ddim_step(x, x0, eps, t, s),
                               math.sqrt(abar_s) * x0 + math.sqrt(1 - abar_s) * eps, rtol=1e-12)


def test_ddim_with_eta_one_is_ddpm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64,))
    noise = rng.standard_normal((12, 64))
    np.testing.assert_allclose(samplers.ddim(gaussian_denoiser, x, 12, eta=1.0, noise=noise),
                               samplers.ddpm(gaussian_denoiser, x, 12, noise), atol=1e-10)
    assert np.abs(samplers.ddim(gaussian_denoiser, x, 12) - samplers.ddpm(gaussian_denoiser, x, 12, noise)).max() > 0.1


def test_ddpm_draws_the_data_distribution():
    rng = np.random.default_rng(0)
    x = samplers.ddpm(gaussian_denoiser, rng.standard_normal(20000), 200, rng.standard_normal((200, 20000)))
    assert abs(x.mean() - MU) < 0.02 and abs(x.std() - SCALE) < 0.02


def test_multistep_solver_converges_to_the_ode_solution_faster_than_ddim():
    x = np.random.default_rng(0).standard_normal(256)
    exact = exact_ode_solution(x)
    np.testing.assert_allclose(samplers.ddim(gaussian_denoiser, x, 1000), exact, atol=5e-3)

    def error(sampler, steps):
        return np.abs(samplers.sample(sampler, gaussian_denoiser, x, steps) - exact).max()

    counts = (8, 32, 64, 128, 256)  # (16 lands on a cancellation of the errors: 4e-3)
    dpm = [error("dpm++2m", n) for n in counts]
    ddim = [error("ddim", n) for n in counts]
    assert all(a > b for a, b in zip(dpm, dpm[1:])), dpm
    assert all(a < b / 2 for a, b in zip(dpm, ddim)), (dpm, ddim)
    # Second order: the error / 4 per doubling of the steps, asymptotically (DDIM: / 2).
    assert dpm[-2] / dpm[-1] > 2.8 and ddim[-2] / ddim[-1] < 2.2, (dpm, ddim)


# -- generate ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    model = tiny()
    model.compile()
    model.fit(digits(32), epochs=2, verbose=0)
    # A few steps leave the output layer near its zero start: random weights make every input
    # (the label above all) count.
    perturb(model, 0.3)
    model.ema_network.set_weights(model.network.get_weights())
    return model


def test_guidance_zero_ignores_the_labels_and_equal_seeds_give_equal_images(trained):
    a = trained.generate(4, seed=3, labels=[0, 1, 2, 3], steps=3, guidance=0)
    b = trained.generate(4, seed=3, labels=[9, 8, 7, 6], steps=3, guidance=0)
    np.testing.assert_array_equal(a, b)
    guided = trained.generate(4, seed=3, labels=[0, 1, 2, 3], steps=3, guidance=2.0)
    np.testing.assert_array_equal(guided, trained.generate(4, seed=3, labels=[0, 1, 2, 3], steps=3, guidance=2.0))
    assert np.abs(guided - a).max() > 1e-4
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1


def test_batched_guidance_equals_the_single_calls(trained):
    """A tensor guidance runs cond and uncond in one call; at w = 0 and 1 it must equal the
    one-call paths a Python number takes."""
    noise = trained.latent_vectors(3, 0)
    labels = tf.constant([1, 2, 3])
    for w in (0.0, 1.0):
        batched = trained.sample_tensor(noise, labels, tf.constant(w), steps=2)
        np.testing.assert_allclose(batched, trained.sample_tensor(noise, labels, w, steps=2), atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_stochastic_images_do_not_depend_on_the_batch(trained, sampler):
    eta = 1.0 if sampler == "ddim" else 0.0
    kwargs = dict(seed=5, labels=1, steps=2, sampler=sampler, eta=eta)
    whole = trained.generate(4, **kwargs)
    # Equal up to the float rounding of other batch sizes.
    np.testing.assert_allclose(whole, trained.generate(4, batch_size=3, **kwargs), atol=1e-5)
    np.testing.assert_allclose(whole[:2], trained.generate(2, **kwargs), atol=1e-5)
    assert np.abs(whole - trained.generate(4, **{**kwargs, "seed": 6})).max() > 1e-2


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_keras_round_trip(policy, tmp_path):
    keras.config.set_dtype_policy(policy)
    try:
        model = tiny()
        perturb(model)  # every weight counts (the untrained output layer is zero)
        model.ema_network.set_weights(model.network.get_weights())
        expected = model.generate(2, seed=0, labels=[3, 4], steps=2)
        model.save(tmp_path / "m.keras")
    finally:
        keras.config.set_dtype_policy("float32")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.dtype_policy.name == policy and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.generate(2, seed=0, labels=[3, 4], steps=2), expected)


def test_bad_arguments_say_what_to_do(trained):
    for kwargs, match in [
        (dict(steps=0), "steps must be a positive integer"),
        (dict(guidance=-1.0), "guidance must be a number >= 0"),
        (dict(sampler="euler"), "sampler must be one of 'dpm\\+\\+2m', 'ddim', 'ddpm'"),
        (dict(eta=0.5), "eta is DDIM's option"),
        (dict(sampler="ddim", eta=2.0), "eta must be a number in \\[0, 1\\]"),
        (dict(labels=10), "labels must be in 0..9"),
    ]:
        with pytest.raises(ValueError, match=match):
            trained.generate(2, **{"labels": 0, **kwargs})
    with pytest.raises(ValueError, match="multiples of 4"):
        Diffusion((10, 10, 1), widths=(4, 8, 16))
    with pytest.raises(ValueError, match="label_dropout must be in"):
        tiny(label_dropout=1.0)


# -- export -----------------------------------------------------------------------------------


@pytest.mark.slow  # converts a traced sampling loop: the slow tier
def test_exported_loop_in_litert_equals_python(trained, tmp_path, monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    import export
    from export import signatures
    from export.diffusion import diffusion_spec

    monkeypatch.setitem(signatures.BUILDERS, "diffusion", lambda m: diffusion_spec(m, steps=4))
    written = export.tflite(trained, tmp_path)
    saved = export.saved_model(trained, tmp_path / "saved_model")
    interpreter = Interpreter(model_path=str(written["generate"]))
    # One file holding every signature of the family's export.
    assert set(written.values()) == {tmp_path / "model.tflite"}
    assert set(interpreter.get_signature_list()) == {s.name for s in signatures.spec_for(trained).signatures}
    runner = interpreter.get_signature_runner("generate")
    loaded = tf.saved_model.load(str(saved)).signatures["generate"]
    noise = trained.latent_vectors(5, 1)
    labels = np.array([0, 1, 2, 3, 4], np.int32)
    for w in (0.0, 2.0):
        expected = trained.generate(5, labels=labels, z=noise, steps=4, guidance=w)
        out = runner(noise=noise, label=labels, guidance=np.float32(w))["images"]
        np.testing.assert_allclose(out, expected, atol=1e-3)
        out = loaded(noise=tf.constant(noise), label=tf.constant(labels), guidance=tf.constant(w))["images"]
        np.testing.assert_allclose(out, expected, atol=1e-3)
    report = export.validate(trained, tmp_path)
    assert report.passed and {row.format for row in report.rows} == {"keras", "saved_model", "tflite"}
