"""What every family shares: Keras' own config (dtype policy) survives a `.keras` round trip, the
command's defaults are the constructors' own, and every public name is exercised by a test."""

import inspect
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_gen
from keras_gen import checks, cli, data, layers, models
from keras_gen import families as kg_families

import families

HERE = Path(__file__).parent


@pytest.mark.parametrize("family", families.FAMILIES)
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_dtype_policy_survives_a_keras_round_trip(family, policy, tmp_path):
    keras.config.set_dtype_policy(policy)
    try:
        model = families.build(family)
        labels = np.arange(2) % 10
        expected = model.generate(2, seed=0, labels=labels)
        model.save(tmp_path / "m.keras")
    finally:
        keras.config.set_dtype_policy("float32")
    # Loaded in a process whose global policy is float32: the file's policy must win, for the
    # model and for the layers it builds itself.
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert model.dtype_policy.name == policy
    assert loaded.dtype_policy.name == policy
    assert loaded.name == model.name
    inner = [layer for layer in loaded._flatten_layers(include_self=False) if layer.weights]
    assert inner and {layer.dtype_policy.name for layer in inner} <= {policy, "float32"}
    assert any(layer.dtype_policy.name == policy for layer in inner)
    np.testing.assert_array_equal(loaded.generate(2, seed=0, labels=labels), expected)


def test_trainable_flag_survives_a_round_trip(tmp_path):
    model = families.build("vae")
    model.trainable = False
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").trainable is False


def _train_args(family, *flags):
    parser = cli.build_parser()
    argv = ["train", "--model", family, "--dataset", "digits", "--out", "unused", *flags]
    args = parser.parse_args(argv)
    args.given = cli._given(parser, argv)
    return args


# Families built from another run (vqvae-prior) are checked by their own tests.
@pytest.mark.parametrize("family", families.ALL)
def test_command_defaults_are_the_constructors_defaults(family):
    description = kg_families.get(family)
    translator = description.kind == kg_families.TRANSLATOR
    args = _train_args(family, "--seed", "3", *(["--task", "superres"] if translator else []))
    info = cli.data_info(args)
    built = cli.build_model(args, info)
    shape = info.input_shape if translator else info.image_shape
    extra = {"output_shape": info.target_shape, "task": "superres"} if translator else {}
    direct = description.model(shape, seed=3, **extra)
    mine, theirs = built.get_config(), direct.get_config()
    mine.pop("name"), theirs.pop("name")
    assert mine == theirs
    # Every option flag defaults to "not given", so the constructor decides.
    for option in description.options:
        assert getattr(args, option.name) is None or option.name in args.given
    # compile(): the command's optimisers are the model's own defaults.
    cli.compile_model(built, args)
    direct.compile()
    for argument in description.optimizers:
        ours = built.optimizer if argument in ("optimizer", "g_optimizer") else getattr(built, argument)
        theirs = direct.optimizer if argument in ("optimizer", "g_optimizer") else getattr(direct, argument)
        a, b = ours.get_config(), theirs.get_config()
        a.pop("name"), b.pop("name")
        assert a == b


def test_command_flags_reach_the_constructor_and_the_optimiser():
    args = _train_args("dcgan", "--latent-dim", "7", "--filters", "3", "--d-lr", "0.01", "--lr", "0.02")
    model = cli.build_model(args, data.info("digits"))
    assert (model.latent_dim, model.filters) == (7, 3)
    cli.compile_model(model, args)
    assert float(model.d_optimizer.learning_rate) == pytest.approx(0.01)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    default = model.default_optimizer("d_optimizer").get_config()
    assert model.d_optimizer.get_config()["beta_1"] == default["beta_1"]


def test_family_defaults_follow_a_changed_constructor(monkeypatch):
    # If a constructor's default changes, the command follows it (no restated default).
    original = models.ConvVAE.__init__
    signature = inspect.signature(original)

    def patched(self, *args, **kwargs):
        if len(args) < 2:
            kwargs.setdefault("latent_dim", 5)
        original(self, *args, **kwargs)

    patched.__signature__ = signature.replace(parameters=[
        p.replace(default=5) if p.name == "latent_dim" else p for p in signature.parameters.values()
    ])
    monkeypatch.setattr(models.ConvVAE, "__init__", patched)
    assert cli.family_defaults("vae")["latent_dim"] == 5
    model = cli.build_model(_train_args("vae"), data.info("digits"))
    assert model.latent_dim == 5


def _public_names():
    for module in (keras_gen, models, layers):
        for name in module.__all__:
            yield module.__name__, name


def test_every_public_name_is_used_by_a_test():
    sources = "\n".join(p.read_text() for p in HERE.glob("*.py"))
    unused = [
        f"{module}.{name}" for module, name in _public_names()
        if name != "__version__" and not re.search(rf"\b{re.escape(name)}\b", sources)
    ]
    assert not unused, f"public names no test uses: {unused}"


def test_every_family_is_a_generative_model_with_the_shared_contract():
    for family in families.FAMILIES:
        model = families.build(family)
        assert isinstance(model, models.GenerativeModel)
        assert model.data_range == families.image_range(family)
        assert model.num_dims == 8 * 8 * 1
        images = model.generate(3, seed=1, labels=[0, 1, 2])
        assert images.shape == (3, 8, 8, 1) and images.dtype == np.float32
        assert 0.0 <= images.min() and images.max() <= 1.0
        # image k does not depend on n or the batch size (to float rounding: oneDNN picks its
        # convolution kernels by batch size, so the VQ-VAE's decoder may differ in the last bit)
        np.testing.assert_allclose(model.generate(2, seed=1, labels=[0, 1], batch_size=1), images[:2],
                                   rtol=0, atol=1e-6)


def test_shared_checks_name_the_argument_and_suggest():
    with pytest.raises(ValueError, match="loss must be one of .*Did you mean 'hinge'"):
        checks.choice("loss", "hing", ("hinge", "minimax"))
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got True"):
        checks.positive_int("batch_size", True)
    assert checks.positive_int("batch_size", np.int64(3)) == 3
    with pytest.raises(ValueError, match="labels must be in 0..2; got values in 0..3"):
        checks.labels([0, 3], 2, 3)
    np.testing.assert_array_equal(checks.labels(2, 3, 3), [2, 2, 2])
    with pytest.raises(ValueError, match="multiple of 4 from 8 to 128"):
        checks.square_image_shape((30, 30, 1))
    assert checks.seed_or_fresh(None) != checks.seed_or_fresh(None)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        checks.odd_kernel(4)
