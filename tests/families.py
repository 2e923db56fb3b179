"""Tiny models of every family, and matching data, for the cross-family tests (distribution,
mixed precision); and the checks of training.fit every family's tests share (exact resume after
a kill, the stop on a non-finite loss)."""

import json

import keras
import pytest
import tensorflow as tf

from keras_gen import data, distribute, families

# The registry's families that build from their own constructor (vqvae-prior is a stage of
# vqvae), by kind. Translators train on (input, target) pairs and have no `generate`;
# tests/test_pix2pix.py runs the cross-family training checks (1 vs 2 replicas, mixed precision,
# XLA) on them.
ALL = [f.name for f in families.all_families() if f.build is None]
FAMILIES = [name for name in ALL if families.get(name).kind == families.SAMPLER]
TRANSLATORS = [name for name in ALL if families.get(name).kind == families.TRANSLATOR]


TINY_TEXT = dict(max_tokens=40, sequence_length=8, text_dim=8)


def build(family, **kwargs):
    from keras_gen import models

    if kwargs.get("text"):  # a small vocabulary and encoder; captions instead of labels
        kwargs = {**TINY_TEXT, **kwargs}
    elif family not in TRANSLATORS:
        kwargs.setdefault("num_classes", 10)
    if family == "dcgan":  # DCGAN's own defaults (EMA, batch norm in both networks), tiny widths
        return models.DCGAN((8, 8, 1), latent_dim=8, filters=4, seed=0, **kwargs)
    if family == "pixelcnn":
        return models.PixelCNN((8, 8, 1), levels=256, filters=8, num_layers=2, seed=0, **kwargs)
    if family == "vae":
        return models.ConvVAE((8, 8, 1), latent_dim=4, seed=0, **kwargs)
    if family == "pix2pix":
        return models.Pix2Pix((8, 8, 1), filters=4, seed=0, **kwargs)
    if family == "vqvae":
        # A prior for the generate contract, frozen (the PixelCNN row covers its training), and
        # dead_code_steps=2 restarts codes within the tests' four steps.
        vq = models.VQVAE((8, 8, 1), num_embeddings=16, embedding_dim=4, filters=8, residual_blocks=1,
                          downsamplings=1, dead_code_steps=2, seed=0, **kwargs)
        prior = models.PixelCNN(vq.code_shape + (1,), levels=16, filters=4, num_layers=1,
                                first_kernel_size=3, num_classes=kwargs["num_classes"], seed=0)
        prior.trainable = False
        vq.set_prior(prior)
        return vq
    if family == "diffusion":  # a two-level U-Net, 4 sampling steps
        return models.Diffusion((8, 8, 1), widths=(8, 16), attention=False, steps=4, seed=0, **kwargs)
    # A new family: its constructor's defaults at the tests' image size.
    return families.get(family).model((8, 8, 1), seed=0, **kwargs)


def image_range(family):
    return families.get(family).data_range


def dataset(family, batch_size=16, n=64):
    if family in TRANSLATORS:
        return data.load_pairs("digits", task="superres", scale=2, split=f"train[:{n}]",
                               batch_size=batch_size, shuffle=False, seed=0)
    return data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range=image_range(family),
                     with_labels=True, shuffle=False, seed=0)


# -- one epoch of a tiny model, and two such trainings compared -----------------------------------


# SGD: its update is the gradient times the rate, so a replica whose loss is scaled wrongly (a
# gradient twice too large) moves the weights twice as far. Adam's update hardly depends on the
# gradient's scale, and would hide that. The VAE's loss is summed over the pixels: a smaller rate.
LEARNING_RATES = {"vae": 1e-3}


def sgd(family):
    rate = LEARNING_RATES.get(family, 0.05)
    if family in ("dcgan",) + tuple(TRANSLATORS):
        return dict(d_optimizer=keras.optimizers.SGD(rate), g_optimizer=keras.optimizers.SGD(rate))
    return dict(optimizer=keras.optimizers.SGD(rate))


def train(family, strategy, optimizers="sgd", before=None, compile_kwargs=None, **kwargs):
    """One epoch of `family` under `strategy` (4 steps of 16): (model, its last logs), the
    initial weights kept as `model.initial_weights`. `before(model)` may change the model first;
    `compile_kwargs` go to `compile`."""
    with strategy.scope():
        model = build(family, **kwargs)
        # The same step on 1 and 2 replicas: "auto" turns XLA on for one device (a GPU, or a
        # family measured faster with it on a CPU) and off for several, and XLA's random ops
        # draw other noise.
        model.compile(jit_compile=False, **(sgd(family) if optimizers == "sgd" else {}),
                      **(compile_kwargs or {}))
    if before is not None:
        before(model)
    model.initial_weights = [w.copy() for w in model.get_weights()]
    history = model.fit(dataset(family), epochs=1, verbose=0)
    return model, {k: v[-1] for k, v in history.history.items()}


def assert_same_training(one, logs_one, two, logs_two, atol=1e-5):
    """Same weights and logs; and the training moved the weights far more than `atol`, so a
    replica scaling off by a factor would show."""
    import numpy as np

    moved = max(float(np.abs(w - w0).max()) for w, w0 in zip(one.get_weights(), one.initial_weights))
    assert moved > 100 * atol, f"the weights moved by {moved} only: raise its rate in LEARNING_RATES"
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=atol)
    assert logs_one.keys() == logs_two.keys()
    for key in logs_one:
        np.testing.assert_allclose(logs_one[key], logs_two[key], rtol=1e-5, atol=1e-6)


def two_replicas():
    """MirroredStrategy over two logical CPU devices (tests/conftest.py makes them, also on a
    GPU host, where "mirrored" alone would take the GPUs); skips, saying why, where there are
    not two."""
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) < 2:
        pytest.skip("needs two logical CPU devices (tests/conftest.py configures them before "
                    "TensorFlow initialises; something initialised it first)")
    strategy = distribute.get_strategy("mirrored", devices=cpus[:2])
    assert strategy.num_replicas_in_sync == 2
    return strategy


def captioned_npz(path, captions, n=32, image_shape=(8, 8, 3)):
    """`n` random uint8 images with `captions` in turn, written as an npz captioned source (x,
    text) at `path`; returns the path."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(n, *image_shape)) * 255).astype(np.uint8)
    np.savez(path, x=x, text=np.array([captions[i % len(captions)] for i in range(n)]))
    return path


def assert_two_replicas_train_like_one(build_compiled, data, atol=1e-5):
    """Builds and compiles a model with `build_compiled()` in one replica's scope and in two's
    (`two_replicas()`), trains each for one epoch of `data()`, and asserts that the weights moved
    by more than 1e-3 (far above the tolerance, so a wrong replica scaling shows) and agree to
    `atol`."""
    import numpy as np

    def run(strategy):
        with strategy.scope():
            model = build_compiled()
        initial = [w.copy() for w in model.get_weights()]
        model.fit(data(), epochs=1, verbose=0)
        return model, initial

    one, initial = run(tf.distribute.get_strategy())
    two, _ = run(two_replicas())
    moved = max(float(np.abs(w - w0).max()) for w, w0 in zip(one.get_weights(), initial))
    assert moved > 1e-3
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=atol)


def diffusion_step_zero(model, images, label_dropout):
    """What a Diffusion's first training step draws and regresses, computed by hand from its step
    noise (purpose 0 the times, 1 the noise, 2 the condition drop) and the cosine schedule:
    (t, x_t, the v target, which conditions are dropped)."""
    import numpy as np

    batch = len(images)
    step = tf.constant(0, tf.int64)
    u = model.step_noise(step, 0, batch, (), "uniform").numpy()
    eps = model.step_noise(step, 1, batch, images.shape[1:]).numpy()
    drop = model.step_noise(step, 2, batch, (), "uniform").numpy() < label_dropout
    t = 1e-3 + (1 - 2e-3) * u
    alpha, sigma = np.cos(np.pi * t / 2)[:, None, None, None], np.sin(np.pi * t / 2)[:, None, None, None]
    return t.astype(np.float32), alpha * images + sigma * eps, alpha * eps - sigma * images, drop


# -- resume and divergence under keras_gen.training.fit ------------------------------------------


class KillAt(keras.callbacks.Callback):
    """A kill inside `fit`: raises KeyboardInterrupt at the end of the `at`-th batch it sees,
    before training.fit's own callback (listed last) could checkpoint that step."""

    def __init__(self, at):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            raise KeyboardInterrupt


def training_state(model):
    """Every value the next training step reads, as NumPy arrays: the model's variables (EMA
    networks included) and its optimisers' (moments and step counters, the step noise's key)."""
    optimizers = [model.optimizer] + ([model.d_optimizer] if hasattr(model, "d_optimizer") else [])
    return [v.numpy() for v in model.variables] + [v.numpy() for o in optimizers for v in o.variables]


def assert_resume_is_exact(build_compiled, data, folder, epochs=2, checkpoint_every=4, kill_at=10):
    """training.fit of `build_compiled()` on `data` (epoch -> dataset) killed at step `kill_at`
    (`KillAt`), then resumed from its checkpoint by a fresh `build_compiled()`, ends bit for bit
    where an uninterrupted run ends. Returns (the resumed model, the resumed call's history)."""
    import numpy as np

    from keras_gen import training

    def fresh():
        # As in the fresh process a killed run resumes in: Keras numbers its auto-named layers
        # per process, and a Diffusion's training has been seen to differ in the last bit
        # between two equal models built with other counters (TensorFlow's graph rewrites can
        # order float sums by op name).
        keras.backend.clear_session()
        return build_compiled()

    reference = fresh()
    initial = training_state(reference)
    training.fit(reference, data, epochs, folder / "uninterrupted", checkpoint_every=checkpoint_every)
    with pytest.raises(KeyboardInterrupt):
        training.fit(fresh(), data, epochs, folder / "killed", checkpoint_every=checkpoint_every,
                     callbacks=[KillAt(kill_at)])
    pointer = json.loads((folder / "killed" / training.POINTER).read_text())
    # The last checkpoint lies inside an epoch, so the resume has batches to skip.
    assert pointer["global_step"] < kill_at and pointer["step_in_epoch"] > 0, pointer
    resumed = fresh()
    history = training.fit(resumed, data, epochs, folder / "killed", checkpoint_every=checkpoint_every)
    state, expected = training_state(resumed), training_state(reference)
    assert any(not (a == b).all() for a, b in zip(expected, initial))  # it trained
    assert len(state) == len(expected)
    for a, b in zip(state, expected):
        np.testing.assert_array_equal(a, b)
    return resumed, history


def assert_stops_on_non_finite_loss(model, data, folder, value=float("nan"), batch=3, checkpoint_every=2):
    """training.fit on `data` (epoch -> dataset of images or (images, labels)) whose batch `batch`
    (0-based) holds `value` pixels raises TrainingDiverged naming that step, and keeps the last
    checkpoint before it as the only one."""
    from keras_gen import training

    def poison(i, element):
        images, rest = (element[0], element[1:]) if isinstance(element, tuple) else (element, ())
        images = tf.where(i == batch, images * value, images)
        return (images, *rest) if rest else images

    def poisoned(epoch):
        return data(epoch).enumerate().map(poison)

    step = batch + 1
    with pytest.raises(training.TrainingDiverged,
                       match=rf"became (nan|inf) at step {step} \(epoch 1, batch {step}\)") as info:
        training.fit(model, poisoned, 2, folder, checkpoint_every=checkpoint_every)
    last = step - 1 - (step - 1) % checkpoint_every
    assert info.value.step == step and info.value.checkpoint["global_step"] == last
    assert sorted(p.name for p in folder.glob("ckpt-*")) == [f"ckpt-{last:09d}.weights.h5"]
    return info.value
