"""VectorQuantizer: nearest codes equal a NumPy brute force, the straight-through gradient, the
codebook and commitment losses and the EMA update equal their formulas, dead codes restart from
the batch's encoder outputs, and 2 replicas update the codebook as 1 does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import distribute
from keras_gen.layers import VectorQuantizer
from keras_gen.layers.quantizer import straight_through


def quantizer(num_embeddings=4, embedding_dim=2, codebook=None, **kwargs):
    layer = VectorQuantizer(num_embeddings, embedding_dim, **kwargs)
    layer.build((None, embedding_dim))
    if codebook is not None:
        layer.embeddings.assign(np.asarray(codebook, np.float32))
        if layer.codebook_update == "ema":
            layer.ema_embedding_sum.assign(np.asarray(codebook, np.float32))
    return layer


def test_nearest_code_equals_numpy_brute_force():
    rng = np.random.default_rng(0)
    layer = quantizer(37, 5, codebook=rng.normal(size=(37, 5)))
    x = rng.normal(size=(3, 6, 7, 5)).astype(np.float32)
    codebook = layer.embeddings.numpy()
    brute = np.argmin(((x[..., None, :] - codebook) ** 2).sum(-1), axis=-1)
    codes = layer.nearest(x).numpy()
    assert codes.dtype == np.int32 and codes.shape == (3, 6, 7)
    np.testing.assert_array_equal(codes, brute)
    np.testing.assert_array_equal(layer.lookup(codes).numpy(), codebook[brute])
    flat = x.reshape(-1, 5)
    np.testing.assert_allclose(layer.distances(flat).numpy(), ((flat[:, None] - codebook) ** 2).sum(-1),
                               rtol=1e-5, atol=1e-5)


def test_straight_through_passes_the_gradient_unchanged():
    rng = np.random.default_rng(1)
    layer = quantizer(8, 3, codebook=rng.normal(size=(8, 3)))
    z = tf.constant(rng.normal(size=(2, 4, 4, 3)), tf.float32)
    weights = tf.constant(rng.normal(size=(2, 4, 4, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = layer(z)
        loss = tf.reduce_sum(weights * out ** 2)
    # Forward: the codes' vectors (z + (e - z): up to rounding); backward: d loss / d z is
    # d loss / d out at out, as if the layer were the identity.
    np.testing.assert_allclose(out.numpy(), layer.lookup(layer.nearest(z)).numpy(), atol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), (2 * weights * out).numpy(), rtol=1e-6)
    np.testing.assert_allclose(straight_through(z, out).numpy(), out.numpy(), atol=1e-6)


def test_codebook_and_commitment_losses_equal_their_formulas():
    z = tf.constant([[[0.0, 1.0], [2.0, -1.0]], [[1.0, 1.0], [0.5, 0.5]]])  # 2 examples, 2 vectors
    e = tf.constant([[[1.0, 1.0], [2.0, 0.0]], [[0.0, 0.0], [0.5, 0.5]]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([z, e])
        codebook, commitment = VectorQuantizer.vq_losses(z, e)
    expected = np.array([1.0 + 1.0, 2.0 + 0.0])  # sum of squared distances per example
    np.testing.assert_allclose(codebook.numpy(), expected)
    np.testing.assert_allclose(commitment.numpy(), expected)
    # The codebook term moves only the codes, the commitment term only the encoder.
    np.testing.assert_allclose(tape.gradient(codebook, e).numpy(), 2 * (e - z).numpy())
    assert tape.gradient(codebook, z) is None or not np.any(tape.gradient(codebook, z).numpy())
    np.testing.assert_allclose(tape.gradient(commitment, z).numpy(), 2 * (z - e).numpy())
    assert tape.gradient(commitment, e) is None or not np.any(tape.gradient(commitment, e).numpy())


def test_perplexity():
    np.testing.assert_allclose(VectorQuantizer.perplexity(tf.constant([5.0, 5.0, 5.0, 5.0])), 4.0, rtol=1e-6)
    np.testing.assert_allclose(VectorQuantizer.perplexity(tf.constant([7.0, 0.0, 0.0])), 1.0)
    p = np.array([0.5, 0.25, 0.25])
    np.testing.assert_allclose(VectorQuantizer.perplexity(tf.constant(p * 8)), np.exp(-(p * np.log(p)).sum()),
                               rtol=1e-6)


def test_ema_update_equals_a_hand_computation():
    codebook = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0], [5.0, 5.0]], np.float32)
    layer = quantizer(4, 2, codebook=codebook, decay=0.9, epsilon=1e-3, dead_code_steps=None)
    x = np.array([[0.1, 0.0], [0.9, 1.2], [1.1, 0.8], [-0.8, 2.2], [0.0, -0.2]], np.float32)
    codes = layer.nearest(x)
    np.testing.assert_array_equal(codes.numpy(), [0, 1, 1, 2, 0])
    counts = layer.code_counts(codes)
    np.testing.assert_array_equal(counts.numpy(), [2, 2, 1, 0])
    layer.update(x, codes, counts)
    # By hand (van den Oord et al. 2017, appendix A.1; Laplace smoothing as in Sonnet). Each
    # code starts with cluster size 1 and sum = its vector.
    n = np.array([2, 2, 1, 0], np.float64)
    sums = np.array([x[[0, 4]].sum(0), x[[1, 2]].sum(0), x[3], [0, 0]], np.float64)
    size = 0.9 * 1.0 + 0.1 * n
    total = 0.9 * codebook + 0.1 * sums
    smoothed = (size + 1e-3) / (size.sum() + 4 * 1e-3) * size.sum()
    np.testing.assert_allclose(layer.ema_cluster_size.numpy(), size, rtol=1e-6)
    np.testing.assert_allclose(layer.ema_embedding_sum.numpy(), total, rtol=1e-6)
    np.testing.assert_allclose(layer.embeddings.numpy(), total / smoothed[:, None], rtol=1e-5)


def test_loss_mode_has_a_trainable_codebook_and_no_ema():
    layer = quantizer(4, 2, codebook_update="loss")
    assert layer.embeddings.trainable and not hasattr(layer, "ema_cluster_size")
    assert quantizer(4, 2).embeddings.trainable is False


def test_a_dead_code_is_restarted_from_the_batch():
    codebook = np.array([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [-50.0, 50.0]], np.float32)
    layer = quantizer(4, 2, codebook=codebook, codebook_update="loss", dead_code_steps=3)
    x = np.array([[0.1, 0.0], [0.9, 1.2], [1.1, 0.8], [0.0, -0.2]], np.float32)
    codes = layer.nearest(x)  # codes 2 and 3 are unused
    counts = layer.code_counts(codes)
    scores = np.random.default_rng(0).uniform(size=(4, 4)).astype(np.float32)
    # The count starts at dead_code_steps - 1 = 2: the first batch restarts the unused codes.
    layer.update(x, codes, counts, scores)
    expected = codebook.copy()
    expected[2:] = x[np.argmax(scores, axis=0)[2:]]  # the vector with the highest score
    np.testing.assert_array_equal(layer.embeddings.numpy(), expected)
    np.testing.assert_array_equal(layer.steps_unused.numpy(), [0, 0, 0, 0])
    # Unused again: restarted only after 3 more steps.
    far = np.full((4, 2), 1000.0, np.float32)  # codes of x (0, 1) stay used, 2 and 3 not
    for step in range(3):
        layer.embeddings.assign(np.concatenate([codebook[:2], far[:2]]))
        layer.update(x, codes, counts, scores)
        restarted = not np.allclose(layer.embeddings.numpy()[2:], far[:2])
        assert restarted == (step == 2)
    assert np.all(np.isin(layer.embeddings.numpy()[2:], x))


def test_ema_restart_resets_the_moving_averages():
    codebook = np.array([[0.0, 0.0], [9.0, 9.0]], np.float32)
    layer = quantizer(2, 2, codebook=codebook, dead_code_steps=1)
    x = np.array([[0.1, 0.2], [0.3, 0.1]], np.float32)
    codes = layer.nearest(x)
    layer.update(x, codes, layer.code_counts(codes), np.array([[0.0, 0.1], [0.0, 0.9]], np.float32))
    np.testing.assert_array_equal(layer.embeddings.numpy()[1], x[1])
    np.testing.assert_array_equal(layer.ema_embedding_sum.numpy()[1], x[1])
    assert layer.ema_cluster_size.numpy()[1] == 1.0


def test_two_replicas_update_the_codebook_as_one():
    """EMA statistics and restart candidates are taken over the global batch."""
    rng = np.random.default_rng(3)
    codebook = rng.normal(size=(6, 3)).astype(np.float32)
    codebook[4:] += 40.0  # two dead codes
    x = rng.normal(size=(8, 3)).astype(np.float32)
    scores = rng.uniform(size=(8, 6)).astype(np.float32)

    def run(strategy):
        with strategy.scope():
            layer = quantizer(6, 3, codebook=codebook, dead_code_steps=1)
        replicas = strategy.num_replicas_in_sync
        per = len(x) // replicas

        def values(ctx):
            i = ctx.replica_id_in_sync_group
            return x[i * per : (i + 1) * per], scores[i * per : (i + 1) * per]

        inputs = strategy.experimental_distribute_values_from_function(values)

        @tf.function
        def step(inputs):
            def fn(pair):
                xs, ss = pair
                codes = layer.nearest(xs)
                layer.update(xs, codes, layer.code_counts(codes), ss)
                return layer.perplexity(layer.code_counts(codes))
            return strategy.run(fn, args=(inputs,))

        step(inputs)
        return [v.numpy() for v in layer.weights]

    one = run(tf.distribute.get_strategy())
    two = run(distribute.get_strategy("mirrored"))
    assert distribute.get_strategy("mirrored").num_replicas_in_sync == 2
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert np.all(np.isin(two[0][4:], x))  # the dead codes were restarted from the batch


def test_config_round_trip_and_bad_arguments():
    layer = VectorQuantizer(16, 4, codebook_update="loss", decay=0.9, dead_code_steps=None)
    clone = VectorQuantizer.from_config(layer.get_config())
    assert (clone.num_embeddings, clone.embedding_dim, clone.codebook_update, clone.decay,
            clone.dead_code_steps) == (16, 4, "loss", 0.9, None)
    with pytest.raises(ValueError, match="codebook_update must be one of 'ema', 'loss'; got 'em'"):
        VectorQuantizer(16, 4, codebook_update="em")
    with pytest.raises(ValueError, match=r"decay must be a number in \[0, 1\)"):
        VectorQuantizer(16, 4, decay=1.0)
    with pytest.raises(ValueError, match="num_embeddings must be a positive integer"):
        VectorQuantizer(0, 4)
    with pytest.raises(ValueError, match="takes vectors of size 4 on the last axis"):
        VectorQuantizer(16, 4)(keras.ops.zeros((2, 3)))
