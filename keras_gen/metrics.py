"""How good is a generative model? Sample-quality metrics on classifier features (FID, KID,
precision/recall), the likelihood metrics of the families (bits/dim, ELBO, IWAE) and the
metrics of translations against their targets (L1 as MAE, PSNR, SSIM, FID), each behind one call.

    import keras_gen as kg
    real = kg.data.load("fashion_mnist_10k", image_range="unit", shuffle=False)
    scores = kg.metrics.quality_metrics(gan, real, metrics=("fid", "kid"), num_samples=10_000)

Images given to the feature metrics are float32 in [0, 1] (what `generate` returns and what
`data.load(..., image_range="unit")` yields); data sets in [-1, 1] or in pixel levels 0..255 are
taken with `data_range="tanh"` or `data_range="levels"`.

Features are summarised by `FeatureStatistics`, which streams: it keeps a running mean and
covariance (float64) plus a bounded uniform reservoir of feature vectors for KID and
precision/recall, so 50,000 images never sit in memory at once. Everything here needs NumPy
and TensorFlow only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks, families, progress

WEIGHTS_DIR = Path(__file__).parent / "weights"
FASHION_MNIST_CLASSIFIER = WEIGHTS_DIR / "fashion_mnist_classifier.keras"
INCEPTION_V3_NOTOP = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_V3_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_V3_NOTOP
)
DATA_RANGES = ("unit", "tanh", "levels")
QUALITY_METRICS = ("fid", "kid", "precision", "recall")

# --------------------------------------------------------------------------------------------
# Distances between two sets of feature vectors


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets (FID when the features are
    Inception's):  |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)).

    Each argument is an array (n, d) of features or a `FeatureStatistics`. Covariances use
    n - 1 (as `np.cov`). Computed in float64.
    """
    mean_a, cov_a = _moments(features_a, "features_a")
    mean_b, cov_b = _moments(features_b, "features_b")
    if mean_a.shape != mean_b.shape:
        raise ValueError(
            f"features_a and features_b must have the same feature size; got {mean_a.shape[0]} "
            f"and {mean_b.shape[0]}. Use one extractor for both."
        )
    diff = mean_a - mean_b
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * _trace_sqrt_product(cov_a, cov_b)
    return float(value)


def _trace_sqrt_product(cov_a, cov_b):
    """tr((A B)^(1/2)) for symmetric positive semi-definite A, B.

    A B is similar to A^(1/2) B A^(1/2), which is symmetric PSD, so the trace is the sum of the
    square roots of that matrix's eigenvalues. Two `eigh` calls give it without the complex
    round-off and the eps-on-the-diagonal retries a general `sqrtm(A @ B)` needs when the
    covariances are near singular.
    """
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = sqrt_a @ cov_b @ sqrt_a
    eig = np.linalg.eigvalsh((m + m.T) / 2.0)
    return float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))


def kernel_distance(features_a, features_b, num_subsets=100, subset_size=1000, seed=0):
    """Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of the squared
    MMD with the kernel k(x, y) = (x.y / d + 1)^3, averaged over `num_subsets` random subsets
    of `min(subset_size, n_a, n_b)` vectors from each set (drawn without replacement).

    Returns `(mean, std)` over the subsets (std with ddof=0, as the reference implementations).
    Arguments are arrays (n, d) or `FeatureStatistics` (whose reservoir is used). Unbiased: its
    expectation is exactly 0 when both sets come from one distribution, so it can be negative.
    """
    a = _feature_array(features_a, "features_a")
    b = _feature_array(features_b, "features_b")
    _check_same_dim(a, b)
    num_subsets = checks.positive_int("num_subsets", num_subsets)
    subset_size = checks.positive_int("subset_size", subset_size)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(
            f"kernel_distance needs at least 2 feature vectors in each set; got {len(a)} and {len(b)}."
        )
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        values[i] = _mmd2_unbiased(x, y)
    return float(values.mean()), float(values.std())


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(x, y):
    m = len(x)
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    off_diagonal = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
    return off_diagonal / (m * (m - 1)) - 2.0 * k_xy.mean()


def precision_recall(features_real, features_fake, k=3, batch_size=1000):
    """Improved precision and recall (Kynkäänniemi et al. 2019), returned as `(precision, recall)`.

    Each real vector's neighbourhood is the ball reaching its k-th nearest real neighbour; the
    real manifold is the union of those balls. Precision is the fraction of fake vectors inside
    the real manifold, recall the fraction of real vectors inside the fake manifold (built the
    same way from the fakes). Distances are computed in blocks of `batch_size` rows.
    """
    real = _feature_array(features_real, "features_real")
    fake = _feature_array(features_fake, "features_fake")
    _check_same_dim(real, fake)
    k = checks.positive_int("k", k)
    if k >= min(len(real), len(fake)):
        raise ValueError(
            f"k must be smaller than the number of vectors in each set; got k={k} with "
            f"{len(real)} real and {len(fake)} fake vectors."
        )
    radii_real = _kth_neighbour_sq_distance(real, k, batch_size)
    radii_fake = _kth_neighbour_sq_distance(fake, k, batch_size)
    precision = _fraction_inside(fake, real, radii_real, batch_size)
    recall = _fraction_inside(real, fake, radii_fake, batch_size)
    return precision, recall


def _sq_distances(x, y):
    d = (x * x).sum(1)[:, None] - 2.0 * x @ y.T + (y * y).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _kth_neighbour_sq_distance(x, k, batch_size):
    # Index 0 of each sorted row is the point itself (distance 0), so index k is the k-th
    # neighbour, as in the authors' code.
    out = np.empty(len(x))
    for start in range(0, len(x), batch_size):
        d = _sq_distances(x[start : start + batch_size], x)
        out[start : start + batch_size] = np.partition(d, k, axis=1)[:, k]
    return out


def _fraction_inside(points, centres, sq_radii, batch_size):
    inside = 0
    for start in range(0, len(points), batch_size):
        d = _sq_distances(points[start : start + batch_size], centres)
        inside += int(np.any(d <= sq_radii[None, :], axis=1).sum())
    return inside / len(points)


# --------------------------------------------------------------------------------------------
# Streaming statistics


class FeatureStatistics:
    """Running summary of feature vectors fed batch by batch.

    Keeps the count, mean and covariance (float64, merged per batch with Chan et al.'s
    pairwise update, so there is no cancellation from sums of squares) for FID, and a uniform
    random sample ("reservoir", Algorithm R) of at most `reservoir_size` vectors for KID and
    precision/recall. A reservoir of 10,000 is what KID and precision/recall are usually
    computed on; a uniform subset of a uniform sample is a uniform sample, so KID stays unbiased.
    Memory: d*d float64 for the covariance plus reservoir_size*d float32.
    """

    def __init__(self, reservoir_size=10_000, seed=0):
        if isinstance(reservoir_size, bool) or not isinstance(reservoir_size, (int, np.integer)) \
                or reservoir_size < 0:
            raise ValueError(f"reservoir_size must be a non-negative integer; got {reservoir_size!r}.")
        self.reservoir_size = int(reservoir_size)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.count = 0
        self.mean = None
        self._scatter = None  # sum of outer products of deviations from the mean
        self._reservoir = None

    @classmethod
    def from_features(cls, features, reservoir_size=None, seed=0):
        features = _feature_array(features, "features")
        stats = cls(len(features) if reservoir_size is None else reservoir_size, seed=seed)
        stats.update(features)
        return stats

    def update(self, features):
        """Adds a batch of feature vectors (b, d)."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be a 2-D array (batch, feature_size); got shape {x.shape}.")
        if not len(x):
            return self
        if self.mean is not None and x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"features have size {x.shape[1]}, but earlier batches had {self.mean.shape[0]}."
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("features contain NaN or infinity; check the images and the extractor.")
        n_b = len(x)
        mean_b = x.mean(0)
        centred = x - mean_b
        scatter_b = centred.T @ centred
        if self.mean is None:
            self.mean, self._scatter = mean_b, scatter_b
        else:
            n_a, n = self.count, self.count + n_b
            delta = mean_b - self.mean
            self.mean = self.mean + delta * (n_b / n)
            self._scatter = self._scatter + scatter_b + np.outer(delta, delta) * (n_a * n_b / n)
        self._add_to_reservoir(x)
        self.count += n_b
        return self

    def _add_to_reservoir(self, x):
        if self.reservoir_size == 0:
            return
        if self._reservoir is None:
            self._reservoir = np.empty((self.reservoir_size, x.shape[1]), np.float32)
        seen = self.count
        take = max(0, min(len(x), self.reservoir_size - seen))
        self._reservoir[seen : seen + take] = x[:take]
        if take < len(x):
            # Item number t (0-based) replaces a random slot with probability size / (t + 1).
            t = np.arange(seen + take, seen + len(x))
            slots = self._rng.integers(0, t + 1)
            for i in np.nonzero(slots < self.reservoir_size)[0]:
                self._reservoir[slots[i]] = x[take + i]

    @property
    def covariance(self):
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors; have {self.count}.")
        return self._scatter / (self.count - 1)

    @property
    def features(self):
        """The reservoir: min(count, reservoir_size) feature vectors, a uniform sample."""
        if self._reservoir is None:
            raise ValueError(
                "no feature vectors kept (reservoir_size=0 or nothing added): KID and "
                "precision/recall need the reservoir."
            )
        return self._reservoir[: min(self.count, self.reservoir_size)]

    def save(self, path):
        """Writes the statistics to an .npz file, e.g. to reuse a data set's reference."""
        np.savez(
            path, count=self.count, mean=self.mean, scatter=self._scatter,
            reservoir=self.features if self._reservoir is not None else np.zeros((0, 0), np.float32),
        )

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as f:
            stats = cls(reservoir_size=len(f["reservoir"]))
            stats.count, stats.mean, stats._scatter = int(f["count"]), f["mean"], f["scatter"]
            stats._reservoir = f["reservoir"] if len(f["reservoir"]) else None
        return stats

    def __repr__(self):
        d = None if self.mean is None else self.mean.shape[0]
        return f"FeatureStatistics(count={self.count}, feature_size={d}, reservoir_size={self.reservoir_size})"


# --------------------------------------------------------------------------------------------
# Feature extractors


def feature_classifier(image_shape=(28, 28, 1), num_classes=10, feature_dim=128):
    """The small CNN behind the "fashion_mnist" extractor: images in [0, 1] -> logits, with the
    penultimate layer named "features" (`feature_dim` ReLU units) used for FID/KID.

    About 130k parameters (0.5 MB of float32): small enough to ship with the package. Trained by
    scripts/train_feature_classifier.py.
    """
    inputs = keras.Input(image_shape, name="images")
    x = inputs
    for i, filters in enumerate((32, 64, 64)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.3, name="dropout0")(x)
    features = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.3, name="dropout1")(features)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="feature_classifier")


_EXTRACTOR_CACHE = {}


def feature_extractor(name="fashion_mnist", weights="imagenet"):
    """A Keras model from images in [0, 1] (batch, H, W, C) to feature vectors (batch, d).

    name:
      - "fashion_mnist": the shipped classifier for 28x28 grey images (128 features; see
        benchmarks/RESULTS.md for its test accuracy). Scores from it compare models with each
        other on Fashion-MNIST-like data; they are not Inception FIDs.
      - "inception_v3": keras.applications.InceptionV3 pool features (2048), images resized to
        299x299 (grey images are repeated to RGB). `weights="imagenet"` reads the Keras cache
        (~/.keras/models or $KERAS_HOME/models) and never downloads; `weights=None` gives random
        weights (tests), or pass a path to the no-top .h5 file. Keras's ImageNet weights are not
        the TF-Hub "FID Inception" weights, so numbers are not comparable with published FIDs.
      - a path to a classifier saved by scripts/train_feature_classifier.py (.keras): its
        "features" layer (e.g. a classifier trained on MNIST).
      - a Keras model: returned unchanged (it must map [0, 1] images to (batch, d)).
    """
    if isinstance(name, keras.Model):
        return name
    if name == "fashion_mnist":
        return _classifier_features(FASHION_MNIST_CLASSIFIER)
    if name == "inception_v3":
        return _inception_v3(weights)
    if isinstance(name, (str, os.PathLike)) and str(name).endswith(".keras"):
        return _classifier_features(Path(name))
    raise ValueError(
        f"extractor must be 'fashion_mnist', 'inception_v3', a path to a classifier .keras file "
        f"from scripts/train_feature_classifier.py, or a Keras model; got {name!r}."
    )


def extractor_unavailable(name):
    """Why `feature_extractor(name)` cannot be built here (its weights file is missing, e.g. the
    InceptionV3 weights offline), as one line; None when it can (it is then built and cached)."""
    try:
        feature_extractor(name)
    except OSError as e:
        return str(e)
    return None


def _classifier_features(path):
    path = Path(path)
    key = ("classifier", str(path.resolve()))
    if key not in _EXTRACTOR_CACHE:
        if not path.is_file():
            raise FileNotFoundError(
                f"classifier file {str(path)!r} does not exist. Train one with "
                "`python scripts/train_feature_classifier.py --dataset DATA --out FILE.keras`."
            )
        classifier = keras.models.load_model(path, compile=False)
        try:
            features = classifier.get_layer("features").output
        except ValueError:
            features = classifier.layers[-2].output
        _EXTRACTOR_CACHE[key] = keras.Model(classifier.inputs, features, name=path.stem + "_features")
    return _EXTRACTOR_CACHE[key]


def inception_v3_weights_path():
    """Where `feature_extractor("inception_v3")` reads the ImageNet weights: the Keras cache
    ($KERAS_HOME/models or ~/.keras/models), which keras-gen never fills itself."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models" / INCEPTION_V3_NOTOP


def _inception_v3(weights):
    if weights == "imagenet":
        path = inception_v3_weights_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"the InceptionV3 weights are not in the Keras cache ({path}), and keras-gen does "
                "not download at run time. On a machine with internet run `python -c \"import "
                "keras; keras.applications.InceptionV3(include_top=False)\"` (it fills the "
                f"cache), or download {INCEPTION_V3_URL} into {path.parent}/. Offline, use "
                "extractor='fashion_mnist' for 28x28 grey images or pass your own Keras model."
            )
        weights = str(path)
    key = ("inception_v3", weights)
    if key not in _EXTRACTOR_CACHE:
        inputs = keras.Input((None, None, 3), name="images")
        x = keras.layers.Resizing(299, 299, interpolation="bilinear", name="resize")(inputs)
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_inception_range")(x)
        base = keras.applications.InceptionV3(
            include_top=False, weights=weights, input_shape=(299, 299, 3), pooling="avg"
        )
        _EXTRACTOR_CACHE[key] = keras.Model(inputs, base(x), name="inception_v3_features")
    return _EXTRACTOR_CACHE[key]


# --------------------------------------------------------------------------------------------
# From models and data sets to statistics


def feature_statistics(
    source,
    extractor="fashion_mnist",
    num_samples=None,
    batch_size=250,
    data_range="unit",
    seed=0,
    reservoir_size=10_000,
    verbose="auto",
):
    """Streams images from `source` through `extractor` into a `FeatureStatistics`.

    source: a model with `generate(n, seed=...)` (images in [0, 1]; conditional models get
      labels cycling through the classes; needs `num_samples`), a `tf.data.Dataset` of images or
      (images, labels) batches, a NumPy array (n, H, W, C), or a `FeatureStatistics` (returned
      as it is).
    num_samples: images to use; None takes the whole data set.
    data_range: range of a data set's / array's images: "unit" ([0, 1], default), "tanh"
      ([-1, 1]) or "levels" (0..255).
    seed: the generation seed (batch i uses seed + i) and the reservoir's seed.
    verbose: a progress bar per batch, as in Keras' `predict` ("auto": when there are several).
    """
    if isinstance(source, FeatureStatistics):
        return source
    if data_range not in DATA_RANGES:
        raise ValueError(f"data_range must be one of {DATA_RANGES}; got {data_range!r}.")
    if num_samples is not None:
        num_samples = checks.positive_int("num_samples", num_samples)
    batch_size = checks.positive_int("batch_size", batch_size)
    extractor = feature_extractor(extractor)
    stats = FeatureStatistics(reservoir_size=reservoir_size, seed=seed)
    batches = _image_batches(source, num_samples, batch_size, data_range, seed)
    for images in progress.tracked(batches, _num_image_batches(source, num_samples, batch_size), verbose):
        stats.update(_extract(extractor, images))
    if stats.count < 2:
        raise ValueError(f"the source gave {stats.count} images; the statistics need at least 2.")
    return stats


def _num_image_batches(source, num_samples, batch_size):
    """The batches `_image_batches` yields, for the progress bar (None: unknown)."""
    if callable(getattr(source, "generate", None)):
        return None if num_samples is None else -(-num_samples // batch_size)
    if isinstance(source, tf.data.Dataset):
        return progress.num_batches(source) if num_samples is None else None
    if isinstance(source, np.ndarray):
        return progress.num_batches(source, batch_size, num_samples)
    return None


def _image_batches(source, num_samples, batch_size, data_range, seed):
    if callable(getattr(source, "generate", None)):  # the documented protocol of a source
        if num_samples is None:
            raise ValueError("num_samples is required when the source is a model (how many to generate).")
        num_classes = getattr(source, "num_classes", None)
        quiet = progress.verbose_argument(source.generate, 0)  # one bar, over the batches here
        for i, start in enumerate(range(0, num_samples, batch_size)):
            n = min(batch_size, num_samples - start)
            labels = None if num_classes is None else (start + np.arange(n)) % num_classes
            yield np.asarray(source.generate(n, seed=seed + i, labels=labels, **quiet), np.float32)
        return
    if isinstance(source, np.ndarray):
        batches = (source[i : i + batch_size] for i in range(0, len(source), batch_size))
    elif isinstance(source, tf.data.Dataset):
        batches = _dataset_batches(source)
    else:
        raise TypeError(
            "source must be a keras_gen model (anything with generate(n, seed)), a tf.data.Dataset "
            f"of images, a NumPy array (n, H, W, C) or a FeatureStatistics; got {type(source).__name__}."
        )
    seen = 0
    for images in batches:
        images = _to_unit(np.asarray(images), data_range, first=seen == 0)
        if num_samples is not None:
            images = images[: num_samples - seen]
        seen += len(images)
        yield images
        if num_samples is not None and seen >= num_samples:
            return


def _dataset_batches(ds):
    spec = ds.element_spec
    image_spec = spec[0] if isinstance(spec, (tuple, list)) else spec
    if image_spec.shape.rank == 3:  # unbatched images
        ds = ds.batch(250)
    elif image_spec.shape.rank != 4:
        raise ValueError(
            f"the data set must yield images (batch, H, W, C) or (images, labels); its images "
            f"have shape {image_spec.shape}."
        )
    for element in ds.as_numpy_iterator():
        yield element[0] if isinstance(element, (tuple, list)) else element


def _to_unit(images, data_range, first):
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, H, W, C); got shape {images.shape}.")
    images = images.astype(np.float32)
    if data_range == "tanh":
        images = (images + 1.0) / 2.0
    elif data_range == "levels":
        images = images / 255.0
    if first and len(images):
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            hint = {
                "unit": "values below 0 suggest data_range='tanh'; above 1, data_range='levels'",
                "tanh": "are they in [0, 1] (data_range='unit') or 0..255 (data_range='levels')?",
                "levels": "are they in [0, 1] (data_range='unit') or [-1, 1] (data_range='tanh')?",
            }[data_range]
            raise ValueError(
                f"images given with data_range={data_range!r} are not in that range: after "
                f"conversion they span [{lo:.3g}, {hi:.3g}] instead of [0, 1]; {hint}."
            )
    return images


def _extract(extractor, images):
    expected = extractor.inputs[0].shape if extractor.inputs else None
    if expected is not None and expected[-1] == 3 and images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if expected is not None and any(
        e is not None and e != g for e, g in zip(expected[1:], images.shape[1:])
    ):
        raise ValueError(
            f"the extractor {extractor.name!r} takes images of shape {tuple(expected[1:])}; got "
            f"{images.shape[1:]}. Use an extractor for this image size (e.g. "
            "'fashion_mnist' for 28x28x1, 'inception_v3' for any RGB size, or your own model)."
        )
    features = np.asarray(extractor.predict_on_batch(images))
    return features.reshape(len(images), -1)


# --------------------------------------------------------------------------------------------
# One call per question


def fid(samples, reference, extractor="fashion_mnist", num_samples=10_000, **kwargs):
    """FID between `samples` (usually a model) and `reference` (usually real data); each may be
    anything `feature_statistics` takes. kwargs go to `feature_statistics`."""
    a = feature_statistics(samples, extractor, num_samples, **kwargs)
    b = feature_statistics(reference, extractor, num_samples, **kwargs)
    return frechet_distance(a, b)


def kid(samples, reference, extractor="fashion_mnist", num_samples=10_000, num_subsets=100,
        subset_size=1000, **kwargs):
    """KID `(mean, std)` between `samples` and `reference` (see `fid`)."""
    a = feature_statistics(samples, extractor, num_samples, **kwargs)
    b = feature_statistics(reference, extractor, num_samples, **kwargs)
    return kernel_distance(a, b, num_subsets, subset_size, seed=kwargs.get("seed", 0))


def quality_metrics(
    samples,
    reference,
    metrics=("fid", "kid"),
    extractor="fashion_mnist",
    num_samples=10_000,
    batch_size=250,
    data_range="unit",
    seed=0,
    k=3,
    num_subsets=100,
    subset_size=1000,
    verbose="auto",
):
    """Feature metrics of `samples` against `reference`, extracting features once.

    Returns a dict with the requested keys among "fid", "kid" (+ "kid_std"), "precision",
    "recall", plus "num_samples" and "num_reference" (images actually used).
    """
    metrics = _check_metrics(metrics, QUALITY_METRICS)
    common = dict(extractor=extractor, num_samples=num_samples, batch_size=batch_size,
                  data_range=data_range, seed=seed, verbose=verbose)
    a = feature_statistics(samples, **common)
    b = feature_statistics(reference, **common)
    out = {}
    if "fid" in metrics:
        out["fid"] = frechet_distance(a, b)
    if "kid" in metrics:
        out["kid"], out["kid_std"] = kernel_distance(a, b, num_subsets, subset_size, seed=seed)
    if "precision" in metrics or "recall" in metrics:
        precision, recall = precision_recall(b, a, k=k)
        if "precision" in metrics:
            out["precision"] = precision
        if "recall" in metrics:
            out["recall"] = recall
    out["num_samples"], out["num_reference"] = a.count, b.count
    return out


# --------------------------------------------------------------------------------------------
# Likelihoods: one interface over the families


def likelihood_metrics(model, dataset, num_importance_samples=None, verbose="auto"):
    """The family's likelihood metrics on `dataset` (in the range the model trains on: levels
    for PixelCNN, the VAE's own image range), as a dict of floats, lower is better for every key:

      - PixelCNN (`model.log_likelihood(dataset)`, exact): "bits_per_dim".
      - VAE (`model.evaluate_elbo(dataset)`, `model.log_likelihood(dataset, num_samples=k)`):
        "neg_elbo" (nats per image) and "neg_elbo_bits_per_dim"; with `num_importance_samples`
        also "neg_iwae" and "neg_iwae_bits_per_dim" (the tighter importance-weighted bound).

    Duck-typed: any model with these methods works. The VAE methods return dicts with
    "nats_per_image" (the negative bound) and "bits_per_dim". verbose: progress bars per
    batch, as in Keras' `predict`.
    """
    likelihood = likelihood_kind(model)
    if likelihood in ("elbo", "elbo_iwae"):  # bounds (VAE, VQ-VAE)
        out = _bound("neg_elbo", model.evaluate_elbo(
            dataset, **progress.verbose_argument(model.evaluate_elbo, verbose)))
        if num_importance_samples is not None and likelihood == "elbo_iwae":
            k = checks.positive_int("num_importance_samples", num_importance_samples)
            out.update(_bound("neg_iwae", model.log_likelihood(
                dataset, num_samples=k, **progress.verbose_argument(model.log_likelihood, verbose))))
        return out
    if likelihood == "exact":  # PixelCNN
        value = _bound("nll", model.log_likelihood(
            dataset, **progress.verbose_argument(model.log_likelihood, verbose)))
        return {"bits_per_dim": value["nll_bits_per_dim"]}
    raise TypeError(
        f"{type(model).__name__} has no likelihood: likelihood_metrics needs log_likelihood(dataset) "
        "(PixelCNN) or evaluate_elbo(dataset) (VAE). For GANs use quality_metrics (FID/KID)."
    )


def likelihood_kind(model):
    """How `model`'s likelihood is evaluated: "exact" (log_likelihood), "elbo" (evaluate_elbo),
    "elbo_iwae" (both bounds) or None. A keras-gen model's family description says it; for a
    user's own object, the methods it offers (the protocol documented in likelihood_metrics)."""
    description = families.of(model)
    if description is not None:
        return description.likelihood
    offers = {name for name in ("evaluate_elbo", "log_likelihood") if callable(getattr(model, name, None))}
    if "evaluate_elbo" in offers:
        return "elbo_iwae" if "log_likelihood" in offers else "elbo"
    return "exact" if offers else None


def _bound(name, value):
    """{"nats_per_image": -bound, "bits_per_dim": ...} (a family's evaluation) -> loss-like keys."""
    if not isinstance(value, dict) or "nats_per_image" not in value:
        raise TypeError(
            f"the model's {name} evaluation must be a dict with 'nats_per_image' (the negative "
            f"bound) and 'bits_per_dim', as keras_gen's VAE and PixelCNN return; got {value!r}."
        )
    out = {name: _as_float(value["nats_per_image"], f"{name} nats_per_image")}
    if "bits_per_dim" in value:
        out[f"{name}_bits_per_dim"] = _as_float(value["bits_per_dim"], f"{name} bits_per_dim")
    return out


# --------------------------------------------------------------------------------------------
# Everything at once (what `keras-gen evaluate` calls)


def evaluate_model(
    model,
    dataset,
    metrics=None,
    extractor=None,
    num_samples=10_000,
    batch_size=250,
    data_range="unit",
    num_importance_samples=None,
    seed=0,
    verbose="auto",
):
    """All requested metrics of `model` against `dataset` in one dict.

    metrics: names among "fid", "kid", "precision", "recall" (feature metrics, images of
      `dataset` in `data_range`), "bpd"/"bits_per_dim" (PixelCNN), "elbo", "iwae" (VAE;
      `dataset` in the model's own training range). None picks `default_metrics(model)`.
    extractor: None picks `default_extractor(model.image_shape)`.
    verbose: progress bars, as in Keras' `predict` ("auto": for work of several batches; 0: none).
    """
    metrics = default_metrics(model) if metrics is None else metrics
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    if families.kind_of(model) == families.TRANSLATOR:  # `dataset` holds pairs
        return translation_metrics(model, dataset, metrics, extractor, num_samples=num_samples)
    aliases = {"bpd": "bits_per_dim", "elbo": "neg_elbo", "iwae": "neg_iwae",
               "nll": "bits_per_dim"}
    known = QUALITY_METRICS + ("bits_per_dim", "neg_elbo", "neg_iwae")
    metrics = _check_metrics([aliases.get(m, m) for m in metrics], known)
    out = {}
    wanted_quality = [m for m in metrics if m in QUALITY_METRICS]
    if wanted_quality:
        if extractor is None:
            extractor = default_extractor(getattr(model, "image_shape", None))
        out.update(quality_metrics(model, dataset, wanted_quality, extractor, num_samples,
                                   batch_size, data_range, seed, verbose=verbose))
    wanted_likelihood = [m for m in metrics if m not in QUALITY_METRICS]
    if wanted_likelihood:
        if "neg_iwae" in wanted_likelihood and num_importance_samples is None:
            num_importance_samples = 100
        values = likelihood_metrics(
            model, dataset,
            num_importance_samples if "neg_iwae" in wanted_likelihood else None, verbose=verbose,
        )
        missing = [m for m in wanted_likelihood if m not in values]
        if missing:
            raise ValueError(
                f"{type(model).__name__} does not provide {missing}; it provides "
                f"{sorted(values)}. bits/dim comes from PixelCNN, elbo/iwae from VAEs."
            )
        out.update(values)
    return out


def default_metrics(model):
    """The family's headline metric: bits/dim for PixelCNN, negative ELBO for VAEs, L1, PSNR,
    SSIM and FID of the outputs for translators (pix2pix), FID else."""
    description = families.of(model)
    if description is not None:
        return description.metrics
    return {"exact": ("bits_per_dim",), "elbo": ("neg_elbo",), "elbo_iwae": ("neg_elbo",)}.get(
        likelihood_kind(model), ("fid",))


def default_extractor(image_shape):
    """'fashion_mnist' for 28x28 grey images, 'inception_v3' for colour; else an error."""
    shape = tuple(image_shape) if image_shape is not None else None
    if shape == (28, 28, 1):
        return "fashion_mnist"
    if shape is not None and shape[-1] == 3:
        return "inception_v3"
    raise ValueError(
        f"no default feature extractor for images of shape {shape}: pass extractor= (a Keras "
        "model from [0, 1] images to feature vectors, or a classifier .keras file trained with "
        "scripts/train_feature_classifier.py)."
    )


# --------------------------------------------------------------------------------------------
# Argument checks


def _moments(x, arg):
    if isinstance(x, FeatureStatistics):
        return x.mean, x.covariance
    x = _feature_array(x, arg)
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _feature_array(x, arg):
    if isinstance(x, FeatureStatistics):
        return x.features.astype(np.float64)
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(
            f"{arg} must be an array (num_vectors >= 2, feature_size) or a FeatureStatistics; "
            f"got shape {x.shape}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{arg} contains NaN or infinity.")
    return x


def _check_same_dim(a, b):
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"the two feature sets must have the same feature size; got {a.shape[1]} and "
            f"{b.shape[1]}. Use one extractor for both."
        )


def _check_metrics(metrics, known):
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in known]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty list from {known}; got {metrics}.")
    return metrics


def _as_float(value, what):
    try:
        value = float(np.asarray(value))
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number; the model returned {value!r}.") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} is {value}; the model's likelihood is not finite.")
    return value


# --------------------------------------------------------------------------------------------
# Translation (pix2pix): how close are the outputs to the targets, and do they look real?

# "mae" (the L1 distance in [0, 1] units) rather than "l1": Pix2Pix's tracker "l1" is its loss term
# in the model's range, and Keras names its validation value "val_l1".
TRANSLATION_METRICS = ("mae", "psnr", "ssim", "fid", "class_accuracy")


def psnr(images, references, peak=1.0):
    """Peak signal-to-noise ratio per image, in dB: 10 log10(peak^2 / MSE), (n,) float64;
    inf where an image equals its reference. Images (n, H, W, C) in [0, peak]."""
    a, b = _image_pair(images, references)
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak**2 / mse)


def ssim(images, references, peak=1.0):
    """Structural similarity per image (Wang et al. 2004), (n,) float64: `tf.image.ssim`'s
    Gaussian window (11 pixels, sigma 1.5, or the smaller image side), K1 0.01, K2 0.03,
    averaged over the positions and channels."""
    a, b = _image_pair(images, references)
    window = min(11, a.shape[1], a.shape[2])
    return tf.image.ssim(
        tf.constant(a, tf.float32), tf.constant(b, tf.float32), max_val=peak, filter_size=window
    ).numpy().astype(np.float64)


def translation_metrics(
    translator,
    pairs,
    metrics=("mae", "psnr", "ssim", "fid"),
    extractor=None,
    classifier="fashion_mnist",
    num_samples=None,
    data_range=None,
):
    """Metrics of a translator's outputs against the targets of held-out pairs, in one pass.

    translator: a model with `translate(inputs in [0, 1]) -> [0, 1] images` (Pix2Pix), or any
      such function (a baseline such as "copy the input").
    pairs: a dataset of `(inputs, targets)` or `(inputs, targets, labels)` batches, as
      `keras_gen.data.load_pairs` yields them (in `data_range`, default: the model's).
    metrics: among "mae" (mean absolute error, the L1 distance, in [0, 1] units), "psnr" (dB) and "ssim" (means over
      images), "fid" (outputs against targets, on `extractor` features; None picks
      `default_extractor` for the targets' shape), "class_accuracy" (the share of outputs that
      `classifier`, by default the shipped Fashion-MNIST classifier, puts in their pair's class;
      needs labelled pairs).
    num_samples: pairs to use (None: all).

    Returns a dict of floats with the metrics asked for and "num_pairs".
    """
    metrics = _check_metrics(metrics, TRANSLATION_METRICS)
    keras_gen_model = families.kind_of(translator) == families.TRANSLATOR
    translate = translator.translate if keras_gen_model else translator
    if not callable(translate):
        raise TypeError(f"translator must have translate(inputs) or be a function; got {translator!r}.")
    data_range = data_range or (translator.data_range if keras_gen_model else None)
    if data_range not in ("tanh", "unit"):
        raise ValueError(
            f"data_range must be 'tanh' or 'unit' (the range of the pairs); got {data_range!r}."
        )
    if num_samples is not None:
        num_samples = checks.positive_int("num_samples", num_samples)
    sums, count = {"mae": 0.0, "psnr": 0.0, "ssim": 0.0, "class_accuracy": 0.0}, 0
    fid = "fid" in metrics
    if fid:
        output_stats, target_stats = FeatureStatistics(0), FeatureStatistics(0)
    if "class_accuracy" in metrics:
        classifier = _classifier(classifier)
    for batch in pairs:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("pairs must yield (inputs, targets) or (inputs, targets, labels) batches.")
        inputs, targets = np.asarray(batch[0]), np.asarray(batch[1])
        if num_samples is not None:
            inputs, targets = inputs[: num_samples - count], targets[: num_samples - count]
        targets = _to_unit(targets, data_range, first=count == 0)
        outputs = np.asarray(translate(_to_unit(inputs, data_range, first=False)), np.float32)
        if outputs.shape != targets.shape:
            raise ValueError(
                f"the translator returned images of shape {outputs.shape[1:]} for targets of "
                f"shape {targets.shape[1:]}."
            )
        sums["mae"] += float(np.abs(outputs - targets).mean(axis=(1, 2, 3)).sum())
        if "psnr" in metrics:
            sums["psnr"] += float(psnr(outputs, targets).sum())
        if "ssim" in metrics:
            sums["ssim"] += float(ssim(outputs, targets).sum())
        if fid:
            if count == 0:  # the default extractor suits the targets' shape
                extractor = feature_extractor(extractor or default_extractor(targets.shape[1:]))
            output_stats.update(_extract(extractor, outputs))
            target_stats.update(_extract(extractor, targets))
        if "class_accuracy" in metrics:
            if len(batch) < 3:
                raise ValueError(
                    "class_accuracy needs labelled pairs: load them with "
                    "load_pairs(..., with_labels=True)."
                )
            labels = np.asarray(batch[2])[: len(outputs)]
            predicted = np.argmax(np.asarray(classifier.predict_on_batch(outputs)), axis=-1)
            sums["class_accuracy"] += float(np.sum(predicted == labels))
        count += len(outputs)
        if num_samples is not None and count >= num_samples:
            break
    if count < (2 if fid else 1):
        raise ValueError(f"the pairs gave {count} examples; the metrics need at least {2 if fid else 1}.")
    out = {name: sums[name] / count for name in metrics if name != "fid"}
    if fid:
        out["fid"] = frechet_distance(output_stats, target_stats)
    out["num_pairs"] = count
    return out


def _classifier(classifier):
    """A Keras model from [0, 1] images to class logits: "fashion_mnist" (shipped), a path to a
    .keras classifier, or a model."""
    if isinstance(classifier, keras.Model):
        return classifier
    path = FASHION_MNIST_CLASSIFIER if classifier == "fashion_mnist" else Path(classifier)
    key = ("logits", str(Path(path).resolve()))
    if key not in _EXTRACTOR_CACHE:
        if not Path(path).is_file():
            raise FileNotFoundError(f"classifier file {str(path)!r} does not exist.")
        _EXTRACTOR_CACHE[key] = keras.models.load_model(path, compile=False)
    return _EXTRACTOR_CACHE[key]


def _image_pair(images, references):
    a, b = np.asarray(images, np.float64), np.asarray(references, np.float64)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(
            f"images and references must be two batches (n, H, W, C) of one shape; got {a.shape} "
            f"and {b.shape}."
        )
    return a, b
