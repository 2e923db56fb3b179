"""keras_gen.metrics: FID/KID/precision-recall against independent computations, streaming
statistics against in-memory ones, the extractors, the likelihood interface and `Evaluate`."""

import os

import numpy as np
import pytest
import scipy.linalg

import keras

import keras_gen as kg
from keras_gen import metrics as M
from keras_gen.callbacks import Evaluate


def _features(seed, n=400, d=16, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)  # correlated features, full-rank covariance
    return (rng.normal(size=(n, d)) @ mixing) * scale + shift


def _scipy_fid(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * covmean))


def _numpy_mmd2_unbiased(x, y):
    """Direct double sums of the unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3."""
    m, d = x.shape
    k = lambda u, v: (np.einsum("id,jd->ij", u, v) / d + 1.0) ** 3  # noqa: E731
    off = ~np.eye(m, dtype=bool)
    return k(x, x)[off].mean() + k(y, y)[off].mean() - 2.0 * k(x, y).mean()


def _tiny_extractor(image_shape=(8, 8, 1), dim=6):
    inputs = keras.Input(image_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(dim, activation="tanh",
                           kernel_initializer=keras.initializers.RandomNormal(0, 0.5, seed=1))(x)
    return keras.Model(inputs, x, name="tiny_extractor")


def _digits(range_="tanh", n=256):
    return kg.data.load("digits", split=f"train[:{n}]", image_range=range_, batch_size=64,
                        shuffle=False)


# -- FID -------------------------------------------------------------------------------------


def test_fid_of_a_set_against_itself_is_zero():
    a = _features(0, scale=30.0)
    assert abs(M.frechet_distance(a, a)) < 1e-9 * np.trace(np.cov(a, rowvar=False))
    stats = M.FeatureStatistics.from_features(a)
    assert abs(M.frechet_distance(stats, a)) < 1e-9 * np.trace(np.cov(a, rowvar=False))


@pytest.mark.parametrize("shift,scale", [(0.0, 1.0), (0.3, 1.5), (2.0, 0.2)])
def test_fid_matches_scipy_sqrtm(shift, scale):
    a, b = _features(1), _features(2, n=300, shift=shift, scale=scale)
    expected = _scipy_fid(a, b)
    assert M.frechet_distance(a, b) == pytest.approx(expected, rel=1e-4)
    assert M.frechet_distance(b, a) == pytest.approx(expected, rel=1e-4)


def test_fid_is_finite_for_singular_covariances():
    # More dimensions than samples: the covariances are singular, where sqrtm(A @ B) needs
    # eps retries; the eigh form still gives the FID of identical sets, 0 (up to the square
    # roots of round-off-sized eigenvalues).
    a = _features(3, n=10, d=32)
    assert abs(M.frechet_distance(a, a)) < 1e-6 * np.trace(np.cov(a, rowvar=False))
    assert np.isfinite(M.frechet_distance(a, _features(4, n=12, d=32)))


# -- KID -------------------------------------------------------------------------------------


def test_kid_matches_numpy_on_the_whole_set():
    a, b = _features(5, n=200), _features(6, n=200, shift=0.2)
    # One subset of all 200 vectors: a permutation of each set, which leaves MMD^2 unchanged.
    mean, std = M.kernel_distance(a, b, num_subsets=3, subset_size=1000)
    expected = _numpy_mmd2_unbiased(a, b)
    assert mean == pytest.approx(expected, rel=1e-4)
    assert std == pytest.approx(0.0, abs=1e-9 * abs(expected))


def test_kid_subsets_average_their_numpy_values():
    a, b = _features(7, n=300), _features(8, n=250, scale=1.2)
    mean, std = M.kernel_distance(a, b, num_subsets=20, subset_size=50, seed=3)
    rng = np.random.default_rng(3)  # the documented draw: a subset of a, then one of b
    values = []
    for _ in range(20):
        x = a[rng.choice(300, 50, replace=False)]
        y = b[rng.choice(250, 50, replace=False)]
        values.append(_numpy_mmd2_unbiased(x, y))
    assert mean == pytest.approx(np.mean(values), rel=1e-4)
    assert std == pytest.approx(np.std(values), rel=1e-4)


def test_kid_is_unbiased():
    # 400 independent pairs of small sets (m = 20) from one distribution: the mean of the
    # estimates must be within 4 standard errors of 0. The biased (V-statistic) estimate, which
    # keeps the diagonal, is off by O(1/m) and fails the same check, so the test has power.
    rng = np.random.default_rng(0)
    m, d, draws = 20, 8, 400
    unbiased, biased = [], []
    for _ in range(draws):
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased.append(M.kernel_distance(x, y, num_subsets=1, subset_size=m)[0])
        k = lambda u, v: (u @ v.T / d + 1.0) ** 3  # noqa: E731
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    standard_error = np.std(unbiased) / np.sqrt(draws)
    assert abs(np.mean(unbiased)) < 4 * standard_error
    assert np.mean(biased) > 10 * np.std(biased) / np.sqrt(draws)
    # ... and it still tells different distributions apart.
    x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d)) + 1.0
    assert M.kernel_distance(x, y, num_subsets=1, subset_size=m)[0] > 20 * standard_error


# -- precision / recall ----------------------------------------------------------------------


def test_precision_recall_identical_and_disjoint_sets():
    a = _features(9, n=200)
    assert M.precision_recall(a, a, k=3) == (1.0, 1.0)
    assert M.precision_recall(a, a + 100.0, k=3) == (0.0, 0.0)


def test_precision_recall_by_hand():
    # Real points 0, 1, 2, 3 on a line, k=1: each real ball has radius 1, covering [-1, 4].
    # Fakes 0.5 and 10: 0.5 is inside, 10 is not -> precision 1/2. The fake balls have radius
    # 9.5 (each other's distance), so the ball around 0.5 covers every real point -> recall 1.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    assert M.precision_recall(real, fake, k=1) == (0.5, 1.0)
    # Fake points far apart from each other but only one near the data: recall counts the
    # real points within 0.1 of 3.05 (one of four).
    fake = np.array([[3.05], [3.15], [50.0]])
    assert M.precision_recall(real, fake, k=1) == (2 / 3, 1 / 4)


# -- streaming statistics --------------------------------------------------------------------


def test_streaming_statistics_equal_in_memory_ones():
    a = _features(10, n=500) + 1e4  # a large mean: sums of squares would cancel badly
    stats = M.FeatureStatistics(reservoir_size=1000)
    for start, size in zip((0, 7, 8, 108, 400), (7, 1, 100, 292, 100)):
        stats.update(a[start : start + size])
    assert stats.count == 500
    np.testing.assert_allclose(stats.mean, a.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(a, rowvar=False), rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(stats.features, a.astype(np.float32))  # all kept, in order
    assert M.frechet_distance(stats, a - 1e4 + 1e4) == pytest.approx(0.0, abs=1e-6)


def test_reservoir_is_a_uniform_sample():
    # Each of 100 items must be kept with probability 10/100; over 1000 runs that is 100 times,
    # binomial std 9.5. 5 std either side holds for all 100 items (p ~ 6e-5 of failing); a
    # reservoir that favoured early or late items by a third would fail it.
    counts = np.zeros(100)
    items = np.arange(100, dtype=np.float64)[:, None]
    for seed in range(1000):
        stats = M.FeatureStatistics(reservoir_size=10, seed=seed)
        for start in range(0, 100, 7):
            stats.update(items[start : start + 7])
        kept = stats.features[:, 0].astype(int)
        assert len(set(kept)) == 10
        counts[kept] += 1
    assert np.all(np.abs(counts - 100) < 5 * np.sqrt(1000 * 0.1 * 0.9))


def test_feature_statistics_of_a_pipeline_equal_in_memory_ones():
    extractor = _tiny_extractor()
    data = _digits("tanh")
    images = np.concatenate([x for x in data.as_numpy_iterator()])  # in memory, [-1, 1]
    features = extractor.predict((images + 1.0) / 2.0, verbose=0)
    stats = M.feature_statistics(data, extractor, data_range="tanh", batch_size=64)
    np.testing.assert_allclose(stats.mean, features.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.covariance, np.cov(features, rowvar=False), rtol=1e-4, atol=1e-7)
    # num_samples takes the first images, cutting a batch in the middle.
    first = M.feature_statistics(data, extractor, num_samples=100, data_range="tanh")
    assert first.count == 100
    np.testing.assert_allclose(first.mean, features[:100].mean(0), rtol=1e-5, atol=1e-6)
    # Labels are dropped; levels are scaled; the same images give the same statistics.
    levels = kg.data.load("digits", split="train[:256]", image_range="levels", with_labels=True,
                          batch_size=50, shuffle=False)
    same = M.feature_statistics(levels, extractor, data_range="levels")
    np.testing.assert_allclose(same.mean, stats.mean, rtol=1e-5, atol=1e-6)


def test_wrong_data_range_is_a_clear_error():
    with pytest.raises(ValueError, match="data_range='tanh'"):
        M.feature_statistics(_digits("tanh"), _tiny_extractor(), data_range="unit")
    with pytest.raises(ValueError, match="data_range must be one of"):
        M.feature_statistics(_digits("unit"), _tiny_extractor(), data_range="0-1")


class _ReplayModel:
    """A stand-in generator that replays fixed images, batch after batch."""

    image_shape = (8, 8, 1)
    num_classes = None

    def __init__(self, images):
        self.images, self.cursor, self.seeds = images, 0, []

    def generate(self, n, seed=None, labels=None):
        self.seeds.append(seed)
        out = self.images[self.cursor : self.cursor + n]
        self.cursor += n
        return out


def test_fid_from_a_model_and_a_dataset_agree_with_arrays():
    extractor = _tiny_extractor()
    data = _digits("unit")
    images = np.concatenate(list(data.as_numpy_iterator()))
    model = _ReplayModel(images)
    scores = M.quality_metrics(model, data, ("fid", "kid", "precision", "recall"), extractor,
                               num_samples=256, batch_size=100, seed=5)
    assert model.seeds == [5, 6, 7]  # one seed per generated batch
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["precision"] == scores["recall"] == 1.0
    assert scores["num_samples"] == scores["num_reference"] == 256
    other = np.flip(images, axis=2)  # mirrored digits: a different distribution
    expected = M.frechet_distance(extractor.predict(other, verbose=0),
                                  extractor.predict(images, verbose=0))
    assert M.fid(_ReplayModel(other), data, extractor, num_samples=256) == pytest.approx(
        expected, rel=1e-4)
    assert expected > 0.01


# -- extractors ------------------------------------------------------------------------------


def test_shipped_fashion_mnist_classifier_is_the_trained_one():
    extractor = M.feature_extractor("fashion_mnist")
    data = kg.data.load("fashion_mnist_10k", split="train[:1000]", image_range="unit",
                        with_labels=True, shuffle=False, batch_size=500)
    classifier = keras.models.load_model(M.FASHION_MNIST_CLASSIFIER)
    correct = 0
    for images, labels in data.as_numpy_iterator():
        assert extractor.predict_on_batch(images).shape == (len(images), 128)
        correct += int((classifier.predict_on_batch(images).argmax(1) == labels).sum())
    assert correct / 1000 > 0.88  # the 10k bundled images are Fashion-MNIST's test split


def test_inception_v3_without_cached_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="InceptionV3\\(include_top=False\\)") as info:
        M.feature_extractor("inception_v3")
    assert M.INCEPTION_V3_URL in str(info.value)
    assert str(tmp_path / "models") in str(info.value)


@pytest.mark.skipif(not os.environ.get("KERAS_GEN_SLOW_TESTS"),
                    reason="builds InceptionV3 (~20 s, ~70 s on a loaded 2-core machine); "
                           "set KERAS_GEN_SLOW_TESTS=1")
def test_inception_v3_random_weights_takes_grey_images_of_any_size():
    extractor = M.feature_extractor("inception_v3", weights=None)
    features = M._extract(extractor, np.random.default_rng(0).random((2, 28, 28, 1), np.float32))
    assert features.shape == (2, 2048) and np.all(np.isfinite(features))


def test_bad_extractor_and_shape_errors(tmp_path):
    with pytest.raises(ValueError, match="extractor must be"):
        M.feature_extractor("inception")
    with pytest.raises(FileNotFoundError, match="train_feature_classifier"):
        M.feature_extractor(str(tmp_path / "missing.keras"))
    with pytest.raises(ValueError, match="takes images of shape \\(28, 28, 1\\)"):
        M.feature_statistics(_digits("unit"), "fashion_mnist")
    with pytest.raises(ValueError, match="no default feature extractor"):
        M.default_extractor((8, 8, 1))


# -- likelihoods -----------------------------------------------------------------------------


class _PixelCNNLike:
    """The return value of keras_gen.models.PixelCNN.log_likelihood (an exact likelihood)."""

    def log_likelihood(self, dataset):
        return {"nats_per_image": 1800.0, "bits_per_dim": np.float32(3.25), "num_examples": 10}


class _VAELike:
    """The return values of keras_gen.models.VAE's evaluation methods."""

    def evaluate_elbo(self, dataset):
        return {"nats_per_image": 240.0, "bits_per_dim": 0.44, "reconstruction": 200.0,
                "kl": 40.0, "num_examples": 10}

    def log_likelihood(self, dataset, num_samples=100):
        self.k = num_samples
        return {"nats_per_image": 230.0, "bits_per_dim": 0.42, "num_samples": num_samples,
                "num_examples": 10}


def test_likelihood_metrics_over_the_families():
    assert M.likelihood_metrics(_PixelCNNLike(), None) == {"bits_per_dim": 3.25}
    vae = _VAELike()
    expected = {"neg_elbo": 240.0, "neg_elbo_bits_per_dim": 0.44, "neg_iwae": 230.0,
                "neg_iwae_bits_per_dim": 0.42}
    assert M.likelihood_metrics(vae, None, num_importance_samples=50) == expected
    assert vae.k == 50
    assert M.evaluate_model(vae, None, "elbo,iwae") == expected
    assert vae.k == 100  # the default k when "iwae" is asked for
    with pytest.raises(TypeError, match="has no likelihood"):
        M.likelihood_metrics(_ReplayModel(None), None)
    with pytest.raises(ValueError, match="does not provide"):
        M.evaluate_model(_PixelCNNLike(), None, ["elbo"])


def test_evaluate_callback_picks_the_family_metric():
    for model, key, value in ((_PixelCNNLike(), "val_bits_per_dim", 3.25),
                              (_VAELike(), "val_neg_elbo", 240.0)):
        callback = Evaluate(None, every=2)
        callback.set_model(model)
        logs = {"loss": 1.0}
        callback.on_epoch_end(0, logs)
        assert logs == {"loss": 1.0}  # epoch 1 of every=2: nothing
        callback.on_epoch_end(1, logs)
        assert logs[key] == value


# -- Evaluate in a real fit ------------------------------------------------------------------


def test_evaluate_callback_logs_val_fid_in_fit():
    keras.utils.set_random_seed(0)
    train, val = _digits("tanh", n=128), _digits("tanh", n=256)
    gan = kg.models.DCGAN((8, 8, 1), latent_dim=4, filters=4, seed=0)
    gan.compile()
    extractor = _tiny_extractor()
    evaluate = Evaluate(val, every=1, metrics=("fid", "kid"), num_samples=128, extractor=extractor)
    stop = keras.callbacks.EarlyStopping(monitor="val_fid", mode="min", patience=10)
    history = gan.fit(train, epochs=2, callbacks=[evaluate, stop], verbose=0)
    assert len(history.history["val_fid"]) == 2 and len(history.history["val_kid"]) == 2
    assert stop.best == min(history.history["val_fid"])  # EarlyStopping saw it
    # The last value equals a computation from scratch on the final model.
    direct = M.quality_metrics(gan, val, ("fid",), extractor, num_samples=128, data_range="tanh")
    assert history.history["val_fid"][-1] == pytest.approx(direct["fid"], rel=1e-5)
    assert direct["fid"] > 0


def test_likelihood_metrics_and_evaluate_with_a_real_vae():
    from keras_gen.models import vae as vae_module
    keras.utils.set_random_seed(0)
    data = kg.data.load("digits", split="train[:128]", image_range="unit", batch_size=64,
                        shuffle=False)
    vae = vae_module.ConvVAE((8, 8, 1), latent_dim=2, filters=4, likelihood="bernoulli", seed=0)
    vae.compile()
    evaluate = Evaluate(data, metrics=("neg_elbo",))
    history = vae.fit(data, epochs=1, callbacks=[evaluate], verbose=0).history
    direct = vae.evaluate_elbo(data)
    assert history["val_neg_elbo"] == [pytest.approx(direct["nats_per_image"], rel=1e-6)]
    values = M.likelihood_metrics(vae, data, num_importance_samples=4)
    assert values["neg_elbo"] == pytest.approx(direct["nats_per_image"], rel=1e-6)
    assert values["neg_elbo_bits_per_dim"] == pytest.approx(direct["bits_per_dim"], rel=1e-6)
    assert values["neg_iwae"] <= values["neg_elbo"] + 1.0  # IWAE is tighter (up to MC noise)


def test_kid_is_kernel_distance_of_the_two_sources_features():
    extractor = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten()])
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(40, 4, 4, 1)).astype(np.float32)
    b = np.clip(a + 0.3, 0, 1)
    mean, std = M.kid(a, b, extractor, num_samples=40, num_subsets=5, subset_size=20)
    expected = M.kernel_distance(M.feature_statistics(a, extractor, 40), M.feature_statistics(b, extractor, 40),
                                 num_subsets=5, subset_size=20, seed=0)
    assert (mean, std) == pytest.approx(expected)
    assert mean > 0 and M.kid(a, a, extractor, num_samples=40, num_subsets=5, subset_size=20)[0] < mean


def test_feature_classifier_names_the_features_layer_of_its_size():
    classifier = M.feature_classifier((8, 8, 1), num_classes=3, feature_dim=5)
    assert classifier.output_shape == (None, 3)
    assert classifier.get_layer("features").output.shape[-1] == 5
