"""The speed options of the training steps against the plain step (issue 26): each leaves the
result equal, to float tolerance, to the step without it (`steps_per_execution`, the GAN's joint
discriminator pass where it is exact), or within a stated band (`mixed_bfloat16`). The EMA
generator's batch-norm pass every k steps has its own test in tests/test_gan_options.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import families
from families import assert_same_training
from keras_gen.models import DCGAN, GAN
from keras_gen.networks import policy_scope

# mixed_bfloat16 keeps 8 bits of mantissa in the forward and backward passes: after one epoch of
# the tiny models (4 SGD steps) the weight updates differ from float32's by at most this
# fraction of their norm (measured: DCGAN 0.0003, Diffusion 0.004, PixelCNN 0.011, VAE 0.046),
# and the logged losses by at most this fraction of their size. The VQ-VAE's band is wider
# (measured 0.22): a rounding difference flips some nearest-code choices, a discrete change.
BFLOAT16_BAND = 0.1
BFLOAT16_BANDS = {"vqvae": 0.4}


def fit(family, compile_kwargs=None, **kwargs):
    """One epoch (4 SGD steps of 16) of `family`'s tiny model on one device: (model, last logs).
    SGD, so that a float round-off difference stays one (Adam's first steps divide by the root
    of the squared gradient, which turns a 1e-9 gradient into a full step)."""
    return families.train(family, tf.distribute.get_strategy(), compile_kwargs=compile_kwargs,
                          **kwargs)


def fit_in_bfloat16(family):
    """`fit` with the mixed_bfloat16 policy global while the model is built and trained."""
    with policy_scope("mixed_bfloat16"):
        return fit(family)


@pytest.mark.parametrize("family", families.FAMILIES)
def test_steps_per_execution_trains_like_one_step_per_call(family):
    """4 steps per compiled call: the same noise (keyed by the step counter, not by the call),
    so the same weights and logs as one step per call."""
    one, logs_one = fit(family)
    four, logs_four = fit(family, {"steps_per_execution": 4})
    assert four.optimizer.iterations.numpy() == one.optimizer.iterations.numpy() == 4
    assert_same_training(one, logs_one, four, logs_four)


@pytest.mark.parametrize("settings", [
    {"discriminator_batch_norm": False},
    {"discriminator_batch_norm": False, "num_classes": None},
    {"r1_weight": 1.0},
    {"loss": "wasserstein_gp"},
])
def test_the_joint_discriminator_pass_trains_like_two_passes(settings):
    """Without batch norm or dropout in the discriminator, one call over [real; fake] is the same
    computation as two calls; "auto" takes it there."""
    joint, logs_joint = fit("dcgan", **settings)
    assert joint.joint_discriminator_pass  # auto
    separate, logs_separate = fit("dcgan", discriminator_pass="separate", **settings)
    assert not separate.joint_discriminator_pass
    assert_same_training(joint, logs_joint, separate, logs_separate)


def with_batch_norm(**kwargs):
    """A DCGAN big enough for the discriminator's batch norm (after its first convolution; the
    tests' 8x8 models have one convolution, so none)."""
    model = DCGAN((16, 16, 1), latent_dim=8, filters=4, seed=0, **kwargs)
    assert any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in model.discriminator._flatten_layers(include_self=False))
    return model


def test_auto_keeps_two_passes_where_one_would_change_the_result():
    assert not with_batch_norm().joint_discriminator_pass  # the default networks
    assert not families.build("dcgan", discriminator_batch_norm=False,
                              dropout=0.3).joint_discriminator_pass
    assert with_batch_norm(discriminator_pass="joint").joint_discriminator_pass
    # Your own networks: two passes unless you say otherwise (they may couple the examples).
    model = families.build("dcgan", num_classes=None, discriminator_batch_norm=False)
    own = GAN(model.generator, model.discriminator, model.latent_dim)
    assert own.joint_discriminator_pass is False
    assert GAN(model.generator, model.discriminator, model.latent_dim,
               discriminator_pass="joint").joint_discriminator_pass
    restored = DCGAN.from_config(families.build("dcgan", discriminator_pass="joint").get_config())
    assert restored.discriminator_pass == "joint" and restored.joint_discriminator_pass
    with pytest.raises(ValueError, match="discriminator_pass must be one of 'auto', 'joint'"):
        families.build("dcgan", discriminator_pass="one")
    with pytest.raises(ValueError, match="dropout=0.0 or discriminator_pass='separate'"):
        families.build("dcgan", discriminator_pass="joint", dropout=0.3)


def test_the_joint_pass_with_batch_norm_trains_and_differs():
    """The option the throughput and quality benchmarks measure on the default networks: it
    trains, and (batch norm now normalising real and fake together) it is another computation."""
    images = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 1)).astype("float32")

    def run(**kwargs):
        model = with_batch_norm(**kwargs)
        model.compile(jit_compile=False, **families.sgd("dcgan"))
        history = model.fit(images, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return model, {k: v[-1] for k, v in history.history.items()}

    joint, logs = run(discriminator_pass="joint")
    separate, _ = run()
    assert all(np.isfinite(v) for v in logs.values())
    assert any(not np.allclose(a, b, atol=1e-4)
               for a, b in zip(joint.discriminator.get_weights(), separate.discriminator.get_weights()))


@pytest.mark.parametrize("family", families.FAMILIES)
def test_mixed_bfloat16_trains_within_a_band_of_float32(family):
    full, logs_full = fit(family)
    half, logs_half = fit_in_bfloat16(family)
    initial = full.initial_weights
    assert half.dtype_policy.compute_dtype == "bfloat16"
    for a, b in zip(initial, half.initial_weights):  # the variables stay float32, seeded alike
        np.testing.assert_array_equal(a, b)
    update_full = np.concatenate([(w - w0).ravel() for w, w0 in zip(full.get_weights(), initial)])
    update_half = np.concatenate([(w - w0).ravel() for w, w0 in zip(half.get_weights(), initial)])
    error = np.linalg.norm(update_half - update_full) / np.linalg.norm(update_full)
    band = BFLOAT16_BANDS.get(family, BFLOAT16_BAND)
    assert error <= band, f"bfloat16 updates differ by {error:.3f} of their norm"
    assert logs_full.keys() == logs_half.keys()
    for key in logs_full:
        scale = max(abs(logs_full[key]), 0.1)
        assert abs(logs_half[key] - logs_full[key]) <= BFLOAT16_BAND * scale, (
            key, logs_full[key], logs_half[key])


@pytest.mark.parametrize("family", ["dcgan", "diffusion"])
def test_a_model_trained_in_bfloat16_exports_to_float32_litert(family, tmp_path):
    """LiteRT's builtin ops take no bfloat16: export writes the float32 copy of the model (its
    variables are float32 already), and the file matches that copy to float32 tolerance."""
    import export
    from keras_gen.models.base import float32_copy

    model, _ = fit_in_bfloat16(family)
    assert model.dtype_policy.name == "mixed_bfloat16"
    copy = float32_copy(model)
    assert {layer.dtype_policy.compute_dtype for layer in copy._flatten_layers()} == {"float32"}
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert float32_copy(copy) is copy  # a float32 model is exported as it is
    paths = export.tflite(model, tmp_path)
    report = export.validate(model, list(dict.fromkeys(paths.values())), n=4, raise_on_failure=False)
    assert report.passed, report.summary()


def test_the_command_trains_under_a_dtype_policy_and_resumes_under_it(tmp_path):
    from keras_gen import cli

    out = tmp_path / "run"
    tiny = ["train", "--model", "vae", "--dataset", "digits", "--split", "train[:64]",
            "--batch-size", "32", "--samples", "4", "--eval-samples", "0", "--seed", "0",
            "--verbose", "0", "--out", str(out)]
    assert cli.main([*tiny, "--epochs", "1", "--dtype-policy", "mixed_bfloat16"]) == 0
    assert keras.models.load_model(out / "model.keras").dtype_policy.name == "mixed_bfloat16"
    assert cli.main([*tiny, "--epochs", "2", "--resume"]) == 0  # the run's own policy
    resumed = keras.models.load_model(out / "model.keras")
    assert resumed.dtype_policy.name == "mixed_bfloat16"
    assert resumed.optimizer.iterations.numpy() == 4
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    with pytest.raises(SystemExit):
        cli.main([*tiny, "--epochs", "1", "--dtype-policy", "bfloat16"])
