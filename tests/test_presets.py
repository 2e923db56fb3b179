"""Presets (KerasHub's layout): save_to_preset / from_preset round trips, the listings and their
errors, the shipped presets' stored samples, and the command's --preset."""

import json

import numpy as np
import pytest

import keras_gen as kg
from keras_gen import cli
from keras_gen.models import base

from families import build

SHIPPED = sorted(base.shipped_presets())


def tiny_text_gan():
    return kg.models.DCGAN((8, 8, 1), latent_dim=8, filters=4, text=True, max_tokens=16,
                           sequence_length=4, text_dim=8, vocabulary=["red", "blue", "bag", "shoe"],
                           seed=0)


def same_samples(a, b, **options):
    np.testing.assert_array_equal(a.generate(4, seed=3, **options), b.generate(4, seed=3, **options))


@pytest.mark.parametrize("family", [
    "dcgan", "vae",
    # slower to sample (autoregressive, or a sampling loop to trace)
    pytest.param("pixelcnn", marks=pytest.mark.slow), pytest.param("vqvae", marks=pytest.mark.slow),
    pytest.param("diffusion", marks=pytest.mark.slow),
])
def test_save_to_preset_then_from_preset_gives_the_same_samples(family, tmp_path):
    model = build(family)
    model.class_names = [f"class {i}" for i in range(10)]
    model.save_to_preset(tmp_path / "p", metadata={"note": "tiny"})
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == sorted(base.PRESET_FILES)
    loaded = type(model).from_preset(tmp_path / "p")
    assert type(loaded) is type(model) and loaded.class_names == model.class_names
    same_samples(model, loaded, labels=["class 1", 2, "class 3", 4])
    if family == "vqvae":  # the prior is part of the model
        assert loaded.prior is not None and loaded.prior.count_params() == model.prior.count_params()
    metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
    assert metadata["note"] == "tiny" and metadata["class_name"] == type(model).__name__
    assert metadata["keras_gen_version"] == kg.__version__


def test_a_text_preset_keeps_its_vocabulary_and_the_ema_generator(tmp_path):
    model = tiny_text_gan()
    model.compile()
    # Weights the constructor did not make: a reloaded model must carry these, not fresh ones.
    model.ema_generator.set_weights([w + 0.01 for w in model.ema_generator.get_weights()])
    model.save_to_preset(tmp_path / "p")
    loaded = kg.models.DCGAN.from_preset(tmp_path / "p")
    assert loaded.tokenizer.vocabulary == model.tokenizer.vocabulary
    for a, b in zip(loaded.ema_generator.get_weights(), model.ema_generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    prompts = ["red bag", "blue shoe"]
    np.testing.assert_array_equal(loaded.generate(prompts=prompts, seed=1),
                                  model.generate(prompts=prompts, seed=1))


def test_a_preset_holds_the_model_without_its_optimiser_states(tmp_path):
    import h5py

    model = build("dcgan")
    model.compile()
    model.save_to_preset(tmp_path / "p")
    with h5py.File(tmp_path / "p" / "model.weights.h5") as f:
        assert not {"optimizer", "d_optimizer", "g_optimizer"} & set(f)
        assert {"generator", "discriminator", "ema_generator"} <= set(f)
    assert "compile_config" not in json.loads((tmp_path / "p" / "config.json").read_text())


def test_a_gan_preset_stores_the_ema_generator_once_for_both_generators(tmp_path):
    model = build("dcgan")
    model.generator.set_weights([w + 0.05 for w in model.generator.get_weights()])
    model.save_to_preset(tmp_path / "p")
    loaded = kg.models.DCGAN.from_preset(tmp_path / "p")
    for a, b in zip(loaded.generator.get_weights(), model.ema_generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded.discriminator.get_weights(), model.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)
    same_samples(model, loaded, labels=[1, 2, 3, 4])
    full = tmp_path / "full.weights.h5"
    model.save_weights(str(full))
    generator_bytes = 4 * model.generator.count_params()
    assert (tmp_path / "p" / "model.weights.h5").stat().st_size < full.stat().st_size - generator_bytes


def test_float16_weights_are_half_the_size_and_load_as_the_rounded_float32(tmp_path):
    import h5py

    model = build("dcgan")
    model.save_to_preset(tmp_path / "32")
    model.save_to_preset(tmp_path / "16", weights_dtype="float16")

    def arrays(name):
        found = {}
        with h5py.File(tmp_path / name / "model.weights.h5") as f:
            f.visititems(lambda key, item: found.update({key: (item.dtype, item.nbytes)})
                         if isinstance(item, h5py.Dataset) else None)
        return found

    full, half = arrays("32"), arrays("16")
    assert full.keys() == half.keys()
    for key, (dtype, nbytes) in full.items():
        if dtype == np.float32:
            assert half[key] == (np.float16, nbytes // 2)
        else:  # integer state (counters) is kept as it is
            assert half[key] == (dtype, nbytes)
    loaded = kg.models.DCGAN.from_preset(tmp_path / "16")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b.astype(np.float16).astype(b.dtype))
    with pytest.raises(ValueError, match="weights_dtype"):
        model.save_to_preset(tmp_path / "x", weights_dtype="int8")


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """A presets folder with two tiny presets, in place of the package's."""
    folder = tmp_path / "presets"
    build("dcgan").save_to_preset(folder / "dcgan_tiny_digits", metadata={"metrics": {"fid": 1.0}})
    build("vae").save_to_preset(folder / "vae_tiny_digits")
    monkeypatch.setattr(base, "PRESETS_DIR", folder)
    return folder


def test_unknown_name_lists_the_shipped_names_nearest_first(fake_shipped):
    with pytest.raises(ValueError, match="unknown preset 'vae_tiny_digit'") as e:
        kg.models.VAE.from_preset("vae_tiny_digit")
    assert "nearest first: vae_tiny_digits, dcgan_tiny_digits." in str(e.value)
    with pytest.raises(ValueError) as e:
        kg.models.DCGAN.from_preset("dcgan_tiny")
    assert "nearest first: dcgan_tiny_digits, vae_tiny_digits." in str(e.value)


def test_a_preset_of_another_family_names_the_class_to_load_it_with(fake_shipped):
    with pytest.raises(ValueError, match=r"is a DCGAN preset, not a ConvVAE one: load it with "
                                         r"keras_gen.models.DCGAN.from_preset\('dcgan_tiny_digits'\)"):
        kg.models.ConvVAE.from_preset("dcgan_tiny_digits")
    # A base class loads its subclasses' presets, as in KerasHub.
    assert isinstance(kg.models.GenerativeModel.from_preset("vae_tiny_digits"), kg.models.ConvVAE)


def test_presets_lists_each_family_s_and_all(fake_shipped):
    assert list(kg.models.DCGAN.presets) == ["dcgan_tiny_digits"]
    assert kg.models.DCGAN.presets["dcgan_tiny_digits"]["metrics"] == {"fid": 1.0}
    assert list(kg.models.VAE.presets) == ["vae_tiny_digits"]  # ConvVAE is a VAE
    assert kg.models.PixelCNN.presets == {}
    assert list(kg.models.presets()) == ["dcgan_tiny_digits", "vae_tiny_digits"]


def test_a_folder_that_is_not_a_preset_says_what_is_missing(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="lacks model.weights.h5, metadata.json"):
        kg.models.DCGAN.from_preset(tmp_path)


# -- the shipped presets ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_preset_gives_its_stored_samples(name):
    folder = base.PRESETS_DIR / name
    metadata = json.loads((folder / "metadata.json").read_text())
    stored = metadata["samples"]
    model = kg.models.GenerativeModel.from_preset(name)
    if "inputs_file" in stored:
        samples = model.translate(np.load(folder / stored["inputs_file"]))
    elif "prompts" in stored:
        samples = model.generate(prompts=stored["prompts"], seed=stored["seed"])
    else:
        labels = stored.get("labels")
        samples = model.generate(len(np.load(folder / stored["file"])), seed=stored["seed"],
                                 labels=labels)
    np.testing.assert_allclose(samples, np.load(folder / stored["file"]), atol=1e-5)
    # what the card promises
    for key in ("command", "steps", "cpu_minutes", "metrics", "training_data", "keras_gen_version"):
        assert key in metadata
    assert (folder / "model.weights.h5").stat().st_size < 6e6


def test_the_shipped_presets_fit_the_wheel_budget():
    total = sum(p.stat().st_size for name in SHIPPED for p in (base.PRESETS_DIR / name).iterdir())
    assert total < 25e6


# -- the command ------------------------------------------------------------------------------


def test_sample_takes_model_or_preset_not_both(tmp_path, fake_shipped, capsys):
    out = tmp_path / "g.npy"
    assert cli.main(["sample", "--model", "x.keras", "--preset", "dcgan_tiny_digits", "--out", str(out)]) == 2
    assert "give --model (a .keras file) or --preset" in capsys.readouterr().err
    assert cli.main(["sample", "--out", str(out)]) == 2
    assert cli.main(["sample", "--preset", "dcgn_tiny_digits", "--out", str(out)]) == 2
    assert "nearest first: dcgan_tiny_digits" in capsys.readouterr().err


def test_sample_from_a_preset_by_class_name(tmp_path):
    model = build("dcgan")
    model.class_names = [f"c{i}" for i in range(10)]
    model.save_to_preset(tmp_path / "p")
    assert cli.main(["sample", "--preset", str(tmp_path / "p"), "-n", "3", "--labels", "c7,c1,2",
                     "--seed", "5", "--out", str(tmp_path / "s.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), model.generate(3, seed=5, labels=[7, 1, 2]))
    # a few names for more images: repeated in turn (--labels Sneaker,Bag -n 64)
    assert cli.main(["sample", "--preset", str(tmp_path / "p"), "-n", "4", "--labels", "c7,c1",
                     "--seed", "5", "--out", str(tmp_path / "r.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), model.generate(4, seed=5, labels=[7, 1, 7, 1]))
    assert cli.main(["sample", "--preset", str(tmp_path / "p"), "-n", "3", "--labels", "c7,c1",
                     "--out", str(tmp_path / "bad.npy")]) == 2


def test_info_presets_lists_them_with_their_numbers(fake_shipped, capsys):
    assert cli.main(["info", "--presets"]) == 0
    out = capsys.readouterr().out
    assert "dcgan_tiny_digits" in out and "fid 1" in out and "vae_tiny_digits" in out


def test_fine_tuning_from_a_preset_starts_from_its_weights(tmp_path, monkeypatch):
    from keras_gen import training

    model = build("dcgan")
    model.class_names = [str(i) for i in range(10)]
    model.generator.set_weights([w + 0.05 for w in model.generator.get_weights()])
    model.save_to_preset(tmp_path / "p")
    seen = {}
    fit = training.fit

    def recording_fit(trained, *args, **kwargs):
        seen["weights"] = [w.copy() for w in trained.get_weights()]
        seen["class_names"] = trained.class_names
        return fit(trained, *args, **kwargs)

    monkeypatch.setattr(training, "fit", recording_fit)
    code = cli.main(["train", "--preset", str(tmp_path / "p"), "--dataset", "digits", "--split", "train[:32]",
                     "--epochs", "1", "--batch-size", "16", "--eval-samples", "0",
                     "--samples", "4", "--out", str(tmp_path / "run")])
    assert code == 0
    preset = kg.models.DCGAN.from_preset(tmp_path / "p")
    for a, b in zip(seen["weights"], preset.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert seen["class_names"] == model.class_names
    assert (tmp_path / "run" / "model.keras").is_file()


def test_fine_tuning_a_preset_refuses_model_flags(tmp_path, fake_shipped, capsys):
    args = ["train", "--preset", "dcgan_tiny_digits", "--dataset", "digits", "--out", str(tmp_path / "r")]
    assert cli.main(args + ["--latent-dim", "4"]) == 2
    assert "fixes the model, so --latent-dim cannot change it" in capsys.readouterr().err
    assert cli.main(args + ["--model", "dcgan"]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.slow  # TFLite conversion and validation
@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("dcgan")][:1])
def test_export_a_shipped_preset_validates(name, tmp_path, capsys):
    assert cli.main(["export", "--preset", name, "--out", str(tmp_path / "e"), "--formats", "tflite",
                     "--validate-n", "4"]) == 0
    assert list((tmp_path / "e").glob("*.tflite"))


def test_export_takes_model_or_preset_not_both(tmp_path, fake_shipped, capsys):
    from export import cli as export_cli

    assert export_cli.main(["--out", str(tmp_path / "e")]) == 2
    assert "give --model (a .keras file) or --preset" in capsys.readouterr().err
    assert export_cli.main(["--preset", "dcgan_tiny_digitz", "--out", str(tmp_path / "e")]) == 2
    assert "nearest first: dcgan_tiny_digits" in capsys.readouterr().err
