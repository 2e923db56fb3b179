"""PixelCNN: causality (no blind spot for the gated variant, the known one for the original),
fast == naive sampling, likelihoods against hand computations, training, save/load, errors."""

import math

import numpy as np
import pytest
import keras
import tensorflow as tf

from keras_gen.models import pixelcnn_likelihoods as lik
from keras_gen.models.pixelcnn import PixelCNN


def tiny(shape=(6, 6, 1), **kwargs):
    config = dict(levels=4, filters=6, num_layers=2, kernel_size=3, first_kernel_size=3, seed=1)
    config.update(kwargs)
    return PixelCNN(shape, **config)


def random_levels(shape, levels, seed=0, n=4):
    return np.random.default_rng(seed).integers(0, levels, (n,) + tuple(shape)).astype(np.int32)


# -- causality ----------------------------------------------------------------------------------


def subpixel_jacobian(model, seed=0):
    """J[o, i] = d(random projection of the parameters at sub-pixel o) / d(input sub-pixel i),
    sub-pixels in raster order with channels R, G, B inside a pixel; one backward pass."""
    h, w, c = model.image_shape
    d = h * w * c
    rng = np.random.default_rng(seed)
    x = tf.constant(np.repeat(rng.uniform(-1, 1, (1, h, w, c)), d, 0), tf.float32)
    projection = tf.constant(rng.normal(size=(model.num_params,)), tf.float32)
    labels = None if model.num_classes is None else tf.zeros((d,), tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        params = model.params_from_scaled(x, labels)  # (d, h, w, c, P)
        per_subpixel = tf.reshape(tf.reduce_sum(params * projection, -1), (d, d))
        picked = tf.reduce_sum(tf.linalg.diag_part(per_subpixel))  # copy o looks at output o
    return np.abs(tape.gradient(picked, x).numpy().reshape(d, d))


def reachable_pixels(first_kernel, kernel, blocks, h, w, i, j):
    """Pixels a stack of masked convolutions (first mask A k0 x k0, then `blocks` mask B
    k x k) can see from (i, j): the Minkowski sum of the masks' supports."""

    def support(k, centre):
        r = k // 2
        return {(dy, dx) for dy in range(-r, 1) for dx in range(-r, r + 1)
                if dy < 0 or dx < 0 or (centre and dx == 0)}

    seen = support(first_kernel, False)
    for _ in range(blocks):
        seen = {(a + c, b + d) for a, b in seen for c, d in support(kernel, True)}
    return {(i + dy, j + dx) for dy, dx in seen if 0 <= i + dy < h and 0 <= j + dx < w}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("variant", ["gated", "original"])
def test_no_output_sees_its_own_or_later_subpixels(variant, channels):
    model = tiny((6, 6, channels), filters=6, num_layers=4, first_kernel_size=5, variant=variant)
    jac = subpixel_jacobian(model)
    # Upper triangle including the diagonal: sub-pixel o must not see sub-pixels o, o+1, ...
    assert np.triu(jac).max() == 0.0
    if variant == "gated":
        # No blind spot: every earlier sub-pixel influences every output.
        d = jac.shape[0]
        assert all(jac[o, :o].min() > 0.0 for o in range(1, d))


@pytest.mark.parametrize("channels", [1, 3])
def test_original_variant_has_the_blind_spot_and_gated_does_not(channels):
    h = w = 6
    kwargs = dict(filters=6, num_layers=4, first_kernel_size=3, kernel_size=3)
    original = tiny((h, w, channels), variant="original", **kwargs)
    gated = tiny((h, w, channels), variant="gated", **kwargs)
    i, j = 4, 1
    seen = reachable_pixels(3, 3, 4, h, w, i, j)
    earlier = {(a, b) for a in range(h) for b in range(w) if (a, b) < (i, j)}
    blind = sorted(earlier - seen)
    assert (3, 4) in blind  # one row up, three to the right: the classic blind spot
    o = (i * w + j) * channels  # the R (or only) channel of pixel (i, j)
    jac_original = subpixel_jacobian(original)[o].reshape(h, w, channels)
    jac_gated = subpixel_jacobian(gated)[o].reshape(h, w, channels)
    for a, b in blind:
        assert jac_original[a, b].max() == 0.0, (a, b)
        assert jac_gated[a, b].min() > 0.0, (a, b)


# -- sampling -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant, channels, num_classes, likelihood",
    [
        ("gated", 1, None, "categorical"),
        ("gated", 3, 3, "logistic_mixture"),
        ("original", 1, 3, "categorical"),
        ("original", 3, None, "logistic_mixture"),
    ],
)
def test_fast_and_naive_sampling_give_the_same_images(variant, channels, num_classes, likelihood):
    model = tiny(
        (5, 5, channels), levels=16, variant=variant, num_classes=num_classes,
        likelihood=likelihood, num_layers=2, first_kernel_size=5,
    )
    labels = None if num_classes is None else [0, 1, 2, 1, 0, 2]
    fast = model.sample(6, seed=7, labels=labels, method="fast", batch_size=4)
    naive = model.sample(6, seed=7, labels=labels, method="naive", batch_size=4)
    np.testing.assert_array_equal(fast, naive)
    assert fast.dtype == np.int32 and fast.min() >= 0 and fast.max() < 16
    assert len(np.unique(fast)) > 4  # actually random, not a constant image
    # Completion: known rows kept; both methods still agree.
    done_fast = model.complete(fast, known_rows=2, seed=3, labels=labels, method="fast")
    done_naive = model.complete(fast, known_rows=2, seed=3, labels=labels, method="naive")
    np.testing.assert_array_equal(done_fast, done_naive)
    np.testing.assert_array_equal(done_fast[:, :2], fast[:, :2])
    assert (done_fast[:, 2:] != fast[:, 2:]).any()


@pytest.mark.parametrize("num_layers, kernel_size", [(1, 3), (3, 5)])
def test_fast_sampler_with_one_block_or_wider_kernels_matches_naive(num_layers, kernel_size):
    """The XLA sampler batches the pending sums of blocks 1.. (none with one block; two pixels
    ahead with 5-wide kernels); its images equal the naive sampler's and the plain graph's
    (`sample_tensor` called eagerly, one product per block)."""
    model = tiny(
        (5, 6, 1), levels=16, num_layers=num_layers, kernel_size=kernel_size, first_kernel_size=5
    )
    for v in model.trainable_variables:  # sharp conditionals: a wrong pending sum changes draws
        v.assign(v * 4.0)
    fast = model.sample(3, seed=2)
    np.testing.assert_array_equal(fast, model.sample(3, seed=2, method="naive"))
    graph = model.sample_tensor(model.uniform_noise(2, 0, 3)).numpy()
    np.testing.assert_array_equal(graph, fast)
    assert len(np.unique(fast)) > 4


@pytest.mark.parametrize("variant, channels", [("gated", 3), ("original", 1)])
def test_every_draw_is_the_gumbel_max_of_the_full_network(variant, channels):
    """The cached sampler's images, fed back through one full forward pass, are the
    Gumbel-max draws of every conditional they define: each cache holds exactly what the full
    network computes. The weights are scaled up so the conditionals are sharp and any stale or
    missing cache entry changes draws."""
    model = tiny(
        (5, 5, channels), levels=8, variant=variant, first_kernel_size=5, num_classes=2,
        filters=6, likelihood="logistic_mixture" if variant == "gated" else "categorical",
    )
    for v in model.trainable_variables:
        v.assign(v * 3.0)
    labels = np.array([0, 1, 1], np.int32)
    uniform = model.uniform_noise(3, 0, 3).numpy()
    images = model.sample_from_noise(uniform, labels, temperature=0.8)
    params = model.distribution_params(images, labels)
    scores = lik.level_log_probs(params, model.likelihood, 8).numpy() / 0.8
    scores -= np.log(-np.log(uniform))
    np.testing.assert_array_equal(np.argmax(scores, axis=-1), images)
    assert len(np.unique(images)) > 3


def test_sampling_draws_from_the_model_conditionals():
    """Sub-pixel 0 has a fixed distribution (it sees nothing): the empirical frequencies of the
    first sub-pixel over many samples match softmax of the model's logits there."""
    model = tiny((2, 2, 1), levels=4, num_layers=1)
    # Sub-pixel 0 sees only zero padding: its logits are the head's bias; make them distinct.
    model.head_out.bias.assign([1.0, -0.5, 0.3, -1.0])
    samples = model.sample(2000, seed=0, batch_size=2000)[:, 0, 0, 0]
    logits = model.distribution_params(np.zeros((1, 2, 2, 1), np.int32))[0, 0, 0, 0].numpy()
    p = np.exp(logits - logits.max())
    p /= p.sum()
    freq = np.bincount(samples, minlength=4) / len(samples)
    np.testing.assert_allclose(freq, p, atol=0.04)
    # A near-zero temperature picks the mode.
    cold = model.sample(20, seed=1, temperature=1e-4)[:, 0, 0, 0]
    assert (cold == np.argmax(logits)).all()
    # Temperature 0 is the argmax itself: the noise no longer matters.
    zero = model.sample(20, seed=1, temperature=0)[:, 0, 0, 0]
    assert (zero == np.argmax(logits)).all()


def test_generate_contract_and_seeds():
    model = tiny(levels=4)
    a = model.generate(3, seed=5)
    b = model.generate(3, seed=5)
    c = model.generate(3, seed=6)
    assert a.dtype == np.float32 and a.shape == (3, 6, 6, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a * 3, np.round(a * 3), atol=1e-6)  # levels / (levels - 1)
    assert 0.0 <= a.min() and a.max() <= 1.0
    # An image depends on its seed and index, not on n or the batch size.
    np.testing.assert_array_equal(model.sample(5, seed=5, batch_size=2)[:3], model.sample(3, seed=5))


def test_code_grids_with_1024_levels_train_and_sample():
    """A VQ-VAE prior: integer code grids (batch, h, w, 1) with K = 1024 codes, from NumPy or
    a tf.data pipeline of int32 codes and labels."""
    codes = np.random.default_rng(0).integers(0, 1024, (8, 4, 4, 1)).astype(np.int32)
    model = tiny((4, 4, 1), levels=1024, filters=4, num_layers=1, num_classes=2)
    model.compile()
    labels = np.arange(8, dtype=np.int32) % 2
    history = model.fit(codes, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.fit(tf.data.Dataset.from_tensor_slices((codes, labels)).batch(4), epochs=1, verbose=0)
    sample = model.sample(3, seed=0, labels=[0, 1, 1])
    assert sample.dtype == np.int32 and sample.shape == (3, 4, 4, 1)
    assert sample.min() >= 0 and sample.max() < 1024 and len(np.unique(sample)) > 8
    with pytest.raises(ValueError, match="levels=1024.*0..1023"):
        model.fit(codes + 1024, labels, verbose=0)


# -- likelihoods --------------------------------------------------------------------------------


def test_bits_per_dim_equals_hand_computation_from_logits():
    model = tiny(levels=4)
    x = random_levels((6, 6, 1), 4, seed=3, n=5)
    logits = model.distribution_params(x).numpy().astype(np.float64)  # (5, 6, 6, 1, 4)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_subpixel = np.take_along_axis(log_softmax, x[..., None], -1)[..., 0]
    log_prob = per_subpixel.sum((1, 2, 3))
    bpd = -log_prob.sum() / (5 * 36 * math.log(2))
    np.testing.assert_allclose(model.log_prob(x), log_prob, rtol=1e-5)
    np.testing.assert_allclose(model.bits_per_dim(x), bpd, rtol=1e-5)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2)
    np.testing.assert_allclose(model.bits_per_dim(ds), bpd, rtol=1e-5)
    model.compile()
    logs = model.evaluate(x, batch_size=5, return_dict=True, verbose=0)
    np.testing.assert_allclose(logs["bits_per_dim"], bpd, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], -log_prob.mean(), rtol=1e-5)


@pytest.mark.parametrize("levels", [2, 16, 256])
def test_logistic_mixture_masses_sum_to_one_and_match_log_prob(levels):
    rng = np.random.default_rng(levels)
    k = 3
    params = np.concatenate(
        [rng.normal(size=(64, k)) * 3, rng.uniform(-1.5, 1.5, (64, k)),
         rng.uniform(-9, 4, (64, k))], axis=-1,
    ).astype(np.float32)
    log_probs = lik.level_log_probs(params, "logistic_mixture", levels).numpy()
    np.testing.assert_allclose(np.exp(log_probs.astype(np.float64)).sum(-1), 1.0, atol=2e-5)
    x = rng.integers(0, levels, (64,))
    direct = lik.log_prob(params, x, "logistic_mixture", levels).numpy()
    np.testing.assert_allclose(direct, log_probs[np.arange(64), x], rtol=1e-5, atol=1e-5)


def test_logistic_mixture_is_stable_at_extremes():
    # Tiny scales far from the data, and data at the edges: finite values and gradients.
    params = tf.constant([[0.0, 5.0, -20.0], [0.0, -0.999, -7.0], [0.0, 0.0, 20.0]])
    x = tf.constant([0, 255, 128])
    with tf.GradientTape() as tape:
        tape.watch(params)
        value = lik.log_prob(params, x, "logistic_mixture", 256)
    grad = tape.gradient(value, params)
    assert np.isfinite(value.numpy()).all() and np.isfinite(grad.numpy()).all()


# -- training -----------------------------------------------------------------------------------


def test_fit_lowers_the_loss_and_equal_seeds_give_equal_runs():
    x = random_levels((6, 6, 1), 4, seed=0, n=32)
    x[:, ::2] = 0  # learnable structure
    runs = []
    for _ in range(2):
        model = tiny(levels=4, seed=11)
        model.compile()
        history = model.fit(x, batch_size=8, epochs=3, verbose=0, shuffle=False)
        runs.append((history.history, model.get_weights()))
    loss = runs[0][0]["loss"]
    assert loss[-1] < loss[0]
    assert set(runs[0][0]) == {"loss", "bits_per_dim"}
    np.testing.assert_allclose(runs[0][0]["bits_per_dim"][0], loss[0] / (36 * math.log(2)), rtol=1e-5)
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_conditional_fit_on_labelled_batches():
    x = random_levels((4, 4, 3), 2, seed=1, n=8)
    y = np.arange(8, dtype=np.int32) % 2
    model = tiny((4, 4, 3), levels=2, num_classes=2, filters=6)
    model.compile()
    ds = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y)).batch(4)
    history = model.fit(ds, epochs=1, verbose=0, validation_data=ds)
    assert np.isfinite(history.history["val_bits_per_dim"][0])
    log_p0 = model.log_prob(x, labels=np.zeros(8, np.int32))
    log_p1 = model.log_prob(x, labels=np.ones(8, np.int32))
    assert not np.allclose(log_p0, log_p1)  # the label changes the distribution


@pytest.mark.slow  # trains, saves and samples: the slow tier, still in CI
def test_save_and_load_round_trip(tmp_path):
    model = tiny((5, 5, 3), levels=8, num_classes=3, likelihood="logistic_mixture", filters=6)
    model.compile()
    x = random_levels((5, 5, 3), 8, n=4)
    labels = np.array([0, 1, 2, 0])
    model.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(4), epochs=1, verbose=0)
    path = str(tmp_path / "pixelcnn.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, PixelCNN)
    for attr in ("image_shape", "levels", "num_classes", "likelihood", "variant", "seed"):
        assert getattr(restored, attr) == getattr(model, attr)
    np.testing.assert_array_equal(restored.log_prob(x, labels), model.log_prob(x, labels))
    np.testing.assert_array_equal(
        restored.sample(2, seed=4, labels=[1, 2]), model.sample(2, seed=4, labels=[1, 2])
    )


def test_distribution_params_traces_with_free_batch_and_no_random_ops():
    model = tiny((4, 4, 3), levels=4, num_classes=2, filters=6)
    fn = tf.function(
        model.distribution_params,
        input_signature=[tf.TensorSpec((None, 4, 4, 3), tf.int32), tf.TensorSpec((None,), tf.int32)],
    )
    graph = fn.get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    assert not any("Random" in t for t in ops)
    out = fn(tf.zeros((3, 4, 4, 3), tf.int32), tf.zeros((3,), tf.int32))
    assert out.shape == (3, 4, 4, 3, 4)


# -- errors -------------------------------------------------------------------------------------


def test_data_outside_the_levels_is_a_clear_error():
    model = tiny(levels=2)
    model.compile()
    with pytest.raises(ValueError, match=r"levels=2.*values in 255\.\.255.*image_range='binary'"):
        model.fit(np.full((4, 6, 6, 1), 255, np.int32), verbose=0)
    with pytest.raises(ValueError, match="non-integer"):
        model.fit(np.full((4, 6, 6, 1), 0.5, np.float32), verbose=0)
    with pytest.raises(ValueError, match="levels 0..1"):
        model.log_prob(np.full((1, 6, 6, 1), 3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(variant="gatd"), "Did you mean 'gated'"),
        (dict(likelihood="mixture"), "likelihood must be one of"),
        (dict(kernel_size=4), "odd"),
        (dict(first_kernel_size=2), "odd"),
        (dict(levels=1), "at least 2"),
        (dict(filters=8, shape=(4, 4, 3)), "multiple of the image's 3 channels"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    shape = kwargs.pop("shape", (4, 4, 1))
    with pytest.raises(ValueError, match=match):
        tiny(shape, **kwargs)


def test_bad_sampling_arguments():
    model = tiny(levels=2)
    with pytest.raises(ValueError, match="method must be one of"):
        model.sample(1, method="slow")
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, temperature=-0.5)
    with pytest.raises(ValueError, match="known_rows"):
        model.complete(np.zeros((1, 6, 6, 1), np.int32), known_rows=7)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(1, labels=[0])


def test_loaded_model_keeps_its_optimizer_state(tmp_path):
    import keras

    from keras_gen import data
    from keras_gen.models import PixelCNN

    model = PixelCNN((8, 8, 1), levels=2, filters=8, num_layers=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    model.fit(data.load("digits", split="train[:32]", batch_size=16, image_range="binary", seed=0), epochs=1, verbose=0)
    model.save(tmp_path / "p.keras")
    loaded = keras.models.load_model(tmp_path / "p.keras")
    assert int(loaded.optimizer.iterations) == 2
    assert abs(float(loaded.optimizer.learning_rate) - 3e-4) < 1e-9
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("variant", ["gated", "original"])
def test_sample_tensor_equals_sample_and_complete(variant):
    """The pure-graph sampler (what export and the VQ-VAE prior use) draws the images `sample`
    and `complete` draw for the same noise, also at another temperature."""
    model = PixelCNN((4, 4, 1), levels=4, filters=4, num_layers=2, variant=variant, num_classes=3, seed=0)
    labels = np.array([0, 2], np.int32)
    uniform = model.uniform_noise(5, 0, 2)
    for temperature in (1.0, 0.7):
        expected = model.sample(2, seed=5, labels=labels, temperature=temperature)
        got = model.sample_tensor(uniform, labels, temperature=temperature).numpy()
        np.testing.assert_array_equal(got, expected)
    known = np.full((2, 4, 4, 1), 3, np.int32)
    expected = model.complete(known, known_rows=2, seed=5, labels=labels)
    got = model.sample_tensor(uniform, labels, images=known, start_row=2).numpy()
    np.testing.assert_array_equal(got, expected)
    assert (got[:, :2] == 3).all()
