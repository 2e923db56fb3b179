"""What every family shares: Keras' own config (dtype policy) survives a `.keras` round trip, the
command's defaults are the constructors' own, and every public name is exercised by a test."""

import ast
import collections
import inspect
import types
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


def _identifiers(paths):
    """Every name and attribute name the code of `paths` uses (parsed, so words in strings,
    comments and docstrings do not count)."""
    found = collections.Counter()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name):
                found[node.id] += 1
            elif isinstance(node, ast.Attribute):
                found[node.attr] += 1
            elif isinstance(node, ast.alias):
                found[node.name.split(".")[-1]] += 1
    return found


def _public_names():
    """(module, name) of the public API: the functions and classes defined inside the library's
    modules (keras_gen/, its models and layers, and export/) that no other code of the library
    calls (those exist for users; a helper the library calls is exercised through its caller),
    and every name of the packages' __all__."""
    root = HERE.parent
    library = sorted((root / "keras_gen").rglob("*.py")) + sorted((root / "export").rglob("*.py"))
    used_by_library = _identifiers(library)
    for path in library:
        if path.name == "cli.py" or path.name.startswith("__"):
            continue  # the commands: their tests call them through main()
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
                    and used_by_library[node.name] == 0):
                yield str(path.relative_to(root)), node.name
    import export

    for module in (keras_gen, models, layers, export):
        for name in module.__all__:
            if name != "__version__" and not isinstance(getattr(module, name), types.ModuleType):
                yield module.__name__, name


def test_every_public_name_is_used_by_a_test():
    used = _identifiers(HERE.glob("*.py"))
    names = list(_public_names())
    assert ("keras_gen/metrics.py", "kid") in names  # the listing finds module-level functions
    unused = [f"{module}: {name}" for module, name in names if not used[name]]
    assert not unused, f"public names no test code uses: {unused}"


@pytest.mark.parametrize("family", families.FAMILIES)
def test_a_config_holds_constructor_arguments_only_and_rebuilds_the_model(family):
    model = families.build(family)
    config = model.get_config()
    keras_own = {"name", "trainable", "dtype", "keras_gen_version"}
    parameters = kg_families.constructor_parameters(type(model))
    assert set(config) - keras_own <= set(parameters), set(config) - keras_own - set(parameters)
    assert type(model).from_config(config).get_config() == config
    # every argument a class lists is read back from the attribute of that name
    from keras_gen import configs

    listed = configs.listed_arguments(model)
    assert listed and all(config[k] == v for k, v in listed.items())
    block = layers.GatedPixelCNNBlock(4, first=True, kernel_initializer=keras.initializers.GlorotUniform(3))
    block_config = block.get_config()
    assert block_config["first"] is True and block_config["kernel_initializer"]["config"]["seed"] == 3
    assert issubclass(layers.GatedPixelCNNBlock, configs.ListedConfig)


def test_data_is_checked_in_one_place_with_the_family_hooks(monkeypatch):
    # No family overrides fit or check_data; each says what it checks through the two hooks.
    for family in families.FAMILIES:
        cls = type(families.build(family))
        for klass in cls.__mro__[: cls.__mro__.index(models.GenerativeModel)]:
            assert not {"fit", "check_data", "inspect_data"} & set(vars(klass)), klass
    # fit checks its validation data too, for every family (a GAN here; the VAE did it alone).
    model = families.build("dcgan")
    model.compile()
    train = families.dataset("dcgan")
    unit = data.load("digits", split="train[:32]", batch_size=16, image_range="unit", with_labels=True)
    with pytest.raises(ValueError, match=r"ends in tanh .*values in \[0, 1\]"):
        model.fit(train.take(1), validation_data=unit, epochs=1, verbose=0)
    seen = []
    monkeypatch.setattr(type(model), "check_batch", lambda self, *batch: seen.append(len(batch)))
    model.check_data(train)
    assert seen == [2]  # read once: images and labels of the first batch


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


# -- one description per family ------------------------------------------------------------


@pytest.mark.parametrize("family", families.ALL)
def test_every_family_in_the_registry_keeps_the_contract_of_its_kind(family):
    description = kg_families.get(family)
    model = families.build(family)
    assert kg_families.of(model) is description  # the registry finds a model's own family
    assert isinstance(model, models.GenerativeModel)
    assert isinstance(model, description.model) and model.data_range == description.data_range
    assert model.default_batch_size == description.default_batch_size
    if description.kind == kg_families.SAMPLER:
        assert isinstance(model, models.Sampler) and not hasattr(model, "translate")
        labels = [0, 1, 2] if model.num_classes else None
        images = model.generate(3, seed=1, labels=labels)
        assert images.shape == (3, *model.image_shape) and images.dtype == np.float32
        np.testing.assert_array_equal(model.generate(3, seed=1, labels=labels), images)
    else:
        assert isinstance(model, models.Translator) and not hasattr(model, "generate")
        inputs = np.linspace(0, 1, 2 * 64, dtype=np.float32).reshape(2, 8, 8, 1)
        outputs = model.translate(inputs)  # [0, 1] in, [0, 1] out
        assert outputs.shape == (2, *model.image_shape) and outputs.dtype == np.float32
    assert 0.0 <= float((images if description.kind == "sampler" else outputs).min())
    assert float((images if description.kind == "sampler" else outputs).max()) <= 1.0
    # every option the command shows has help text and is a constructor argument (or the
    # command's own), and its default is the constructor's
    parameters = kg_families.constructor_parameters(description.model)
    for option in description.options:
        assert option.help
        assert not option.constructor or option.name in parameters
    # its export signatures have a builder in export/ (the library only names the key)
    if description.instances is not None:
        from export import signatures

        assert description.signatures in signatures.BUILDERS
        assert signatures.family_of(model) == description.signatures


def test_the_registry_replaces_the_family_tables():
    assert set(families.ALL) | {"vqvae-prior"} == set(kg_families.names())
    assert not hasattr(cli, "FAMILIES")
    from export import signatures

    assert not hasattr(signatures, "FAMILIES")
    assert kg_families.of(object()) is None and kg_families.kind_of(np.zeros(3)) is None
    with pytest.raises(ValueError, match="model family must be one of .*got 'gan9'"):
        kg_families.get("gan9")
    # a family of the user's own networks is the family of its base class
    assert kg_families.of(families.build("dcgan")).name == "dcgan"


def test_compile_defaults_of_the_command_are_compile_s_own():
    args = _train_args("vae")
    compile_ = inspect.signature(models.GenerativeModel.compile).parameters
    assert args.jit_compile == compile_["jit_compile"].default == "auto"
    assert args.deterministic is compile_["deterministic"].default is False
    keras_compile = inspect.signature(keras.Model.compile).parameters
    assert args.steps_per_execution == keras_compile["steps_per_execution"].default
    model = cli.build_model(args, data.info("digits"))
    cli.compile_model(model, args)
    direct = families.build("vae")
    direct.compile()
    # Keras' own "auto": off on this CPU-only machine, for the command and for compile()
    assert model.jit_compile is direct.jit_compile is False


def test_a_flag_of_another_family_is_an_error_naming_its_families(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "dcgan", "--dataset", "digits", "--out", str(out)]
    assert cli.main(argv + ["--levels", "2"]) == 2
    assert "--levels applies to --model pixelcnn, not dcgan" in capsys.readouterr().err
    assert cli.main(argv + ["--beta", "2"]) == 2
    assert "--beta applies to --model vae, vqvae, not dcgan" in capsys.readouterr().err
    vq = ["train", "--model", "vqvae", "--dataset", "digits", "--out", str(out)]
    assert cli.main(vq + ["--kl-warmup-epochs", "2"]) == 2
    assert "--kl-warmup-epochs applies to --model vae, not vqvae" in capsys.readouterr().err
    assert not out.exists()  # failed before config.json was written


def test_ema_decay_none_turns_the_ema_off():
    assert cli.family_defaults("dcgan")["ema_decay"] == 0.999
    on = cli.build_model(_train_args("dcgan", "--filters", "4"), data.info("digits"))
    off = cli.build_model(_train_args("dcgan", "--filters", "4", "--ema-decay", "none"), data.info("digits"))
    assert on.ema_decay == 0.999 and off.ema_decay is None
    assert cli.build_model(_train_args("dcgan", "--filters", "4", "--ema-decay", "0.9"),
                           data.info("digits")).ema_decay == 0.9


def test_help_shows_every_flag_with_help_choices_and_family_defaults(capsys):
    parser = cli.build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        assert action.help, action.option_strings
    text = train.format_help()
    assert "options of vae, vqvae" in text and "--beta" in text
    assert "vae 1.0, vqvae 0.25" in text  # each family's constructor default
    assert "{transpose,resize}" in text


def test_resume_says_which_typed_flags_it_ignores(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--model", "vae", "--dataset", "digits", "--split", "train[:32]", "--batch-size", "16",
            "--latent-dim", "2", "--filters", "4", "--eval-samples", "0", "--samples", "4",
            "--out", str(out), "--verbose", "0", "--seed", "1"]
    assert cli.main(base + ["--epochs", "1"]) == 0
    capsys.readouterr()
    assert cli.main(base + ["--epochs", "2", "--resume", "--latent-dim", "3", "--beta", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "ignores --latent-dim, --beta" in err or "ignores --beta, --latent-dim" in err
    assert "--filters" not in err.split("ignores")[1]  # typed, but the run's own value
    assert keras.models.load_model(out / "model.keras").latent_dim == 2


# -- files saved by keras-gen 0.1 (the release before the registry) still load -------------------


@pytest.mark.parametrize("name", ["dcgan_0x", "convvae_0x", "pix2pix_0x"])
def test_keras_files_of_the_previous_release_load_and_give_the_same_images(name):
    loaded = keras.models.load_model(HERE / "data" / f"{name}.keras")
    expected = np.load(HERE / "data" / f"{name}.npy")
    assert type(loaded).__name__ == {"dcgan_0x": "DCGAN", "convvae_0x": "ConvVAE",
                                     "pix2pix_0x": "Pix2Pix"}[name]
    if kg_families.kind_of(loaded) == kg_families.TRANSLATOR:
        x = np.linspace(-1, 1, 2 * 64).reshape(2, 8, 8, 1).astype("float32")
        # The network reloads exactly (its stored training inputs are ignored); translate now
        # takes [0, 1], which maps back to x up to float32 rounding.
        np.testing.assert_array_equal(loaded.to_unit_range(loaded.generator(x, training=False)), expected)
        np.testing.assert_allclose(loaded.translate((x + 1) / 2), expected, atol=1e-5)
        assert not any("example_input" in w.path for w in loaded.weights)
    else:
        np.testing.assert_array_equal(loaded.generate(2, seed=1), expected)
