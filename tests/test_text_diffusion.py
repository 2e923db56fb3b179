"""Diffusion(text=True): the caption-dropout loss on the step's own noise, guidance over the
caption, prompts, the owned vocabulary through `.keras`, replica-exact training, the errors, LiteRT
parity from the same strings, and the command's --text / --prompt."""

import json

import keras
import numpy as np
import pytest

from keras_gen import cli, data
from keras_gen.layers.diffusion import CaptionCrossAttention
from keras_gen.models import Diffusion
from keras_gen.text import TextEncoder
import families

CAPTIONS = [data.caption(c, k, t) for c, k, t in
            [(7, 0, 0), (8, 2, 1), (4, 1, 2), (3, 7, 3), (0, 3, 4), (9, 6, 0), (5, 5, 2), (1, 4, 1)]]
TINY = dict(widths=(4, 8), attention=False, steps=2, max_tokens=40, sequence_length=8, text_dim=8,
            seed=0)
PROMPTS = ["a red sneaker", "a blue bag"]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """32 random 8x8 RGB images with their captions, as an npz captioned source."""
    return families.captioned_npz(tmp_path_factory.mktemp("data") / "captions.npz", CAPTIONS)


def load(npz, batch_size=16):
    return data.load(f"npz:{npz}", text=True, batch_size=batch_size, image_range="tanh",
                     shuffle=False)


def tiny(npz, **kwargs):
    return Diffusion((8, 8, 3), text=True, **{**TINY, **kwargs}).adapt(load(npz))


def perturb(model, scale=0.3):
    """Random weights everywhere (the zero-initialised output, FiLM and attention-out layers
    would hide the caption), the EMA network equal to the live one."""
    rng = np.random.default_rng(1)
    model.network.set_weights([w + rng.normal(0, scale, w.shape).astype(w.dtype)
                               for w in model.network.get_weights()])
    model.ema_network.set_weights(model.network.get_weights())
    return model


@pytest.mark.parametrize("conditioning", ["pooled", "cross_attention"])
def test_caption_dropout_loss_equals_hand_computation_on_the_steps_noise(npz, conditioning):
    model = perturb(tiny(npz, label_dropout=0.5, text_conditioning=conditioning), 0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    images, captions = next(iter(load(npz)))
    images, ids = images.numpy(), model.tokenizer(captions).numpy()
    t, x_t, v, drop = families.diffusion_step_zero(model, images, 0.5)
    assert 0 < drop.sum() < 16
    used = np.where(drop[:, None], 0, ids)  # a dropped caption is all padding
    assert (used[~drop] != 0).any(axis=1).all() and not used[drop].any()
    prediction = model.network([x_t, t, used]).numpy()
    expected = np.mean((prediction - v) ** 2)
    logs = model.fit(load(npz).take(1), epochs=1, verbose=0).history
    np.testing.assert_allclose(logs["loss"][0], expected, rtol=1e-5)
    # and the empty caption is not the captions: the hand computation saw the drop
    kept = model.network([x_t, t, ids]).numpy()
    assert abs(np.mean((kept - v) ** 2) - expected) > 1e-6


@pytest.fixture(scope="module")
def guided(npz):
    return perturb(tiny(npz, text_conditioning="cross_attention"))


def test_guidance_zero_ignores_the_prompt_and_prompts_decide_the_images(guided):
    model = guided
    a = model.generate(prompts=PROMPTS, seed=1, guidance=0)
    np.testing.assert_array_equal(a, model.generate(prompts=model.sample_prompts[2:4],
                                                    seed=1, guidance=0))
    b = model.generate(prompts=PROMPTS, seed=1)
    assert b.dtype == np.float32 and b.shape == (2, 8, 8, 3) and 0 <= b.min() <= b.max() <= 1
    np.testing.assert_array_equal(model.generate(prompts=PROMPTS, seed=1), b)
    assert np.abs(a - b).max() > 1e-4  # guidance 2 reads the prompt
    c = model.generate(prompts=["a blue bag", "a blue bag"], seed=1)
    assert np.abs(b[0] - c[0]).max() > 1e-4  # same noise, another caption
    np.testing.assert_allclose(b[1], c[1], atol=1e-6)  # image k's noise is its own
    with pytest.warns(UserWarning, match="'zebra'"):
        model.generate(prompts=["a zebra sneaker"], seed=1)
    np.testing.assert_array_equal(model.generate(2, seed=1), model.generate(prompts=model.sample_prompts[:2], seed=1))


def test_the_empty_caption_adds_nothing_through_cross_attention(guided):
    """The empty caption's cross-attention output is exactly zero (all keys are padding)."""
    layer = next(la for la in guided.ema_network.layers if isinstance(la, CaptionCrossAttention))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 4, 8)).astype(np.float32)
    states = rng.standard_normal((2, 8, 8)).astype(np.float32)
    ids = np.zeros((2, 8), np.int32)
    np.testing.assert_array_equal(layer([x, states, ids]), x)
    ids[:, 0] = 5
    assert np.abs(layer([x, states, ids]) - x).max() > 1e-4


@pytest.mark.parametrize("conditioning", ["pooled", "cross_attention"])
def test_vocabulary_and_images_survive_keras_file(npz, tmp_path, conditioning):
    model = perturb(tiny(npz, text_conditioning=conditioning))
    before = model.generate(prompts=PROMPTS, seed=3)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.text and loaded.vocabulary == model.vocabulary and "sneaker" in loaded.vocabulary
    assert loaded.get_config() == model.get_config() and loaded.text_conditioning == conditioning
    np.testing.assert_array_equal(loaded.generate(prompts=PROMPTS, seed=3), before)
    assert any(isinstance(layer, TextEncoder) for layer in loaded.ema_network.layers)


@pytest.mark.parametrize("conditioning", [
    "pooled", pytest.param("cross_attention", marks=pytest.mark.slow),  # ~1 min more on 2 cores
])
def test_two_replicas_train_like_one(npz, conditioning):
    def build_compiled():
        model = tiny(npz, text_conditioning=conditioning, label_dropout=0.3)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        return model

    families.assert_two_replicas_train_like_one(build_compiled, lambda: load(npz))


def test_clear_errors(npz):
    with pytest.raises(ValueError, match="num_classes"):
        Diffusion((8, 8, 3), text=True, num_classes=10, **TINY)
    with pytest.raises(ValueError, match="text_conditioning"):
        Diffusion((8, 8, 3), text=True, text_conditioning="concat", **TINY)
    plain = Diffusion((8, 8, 3), widths=(4, 8), attention=False, seed=0)
    with pytest.raises(ValueError, match="text=True"):
        plain.generate(prompts=["a red sneaker"])
    model = tiny(npz)
    with pytest.raises(ValueError, match="not labels"):
        model.generate(2, labels=[0, 1])
    model.compile()
    images = data.load(f"npz:{npz}", batch_size=16, image_range="tanh")
    with pytest.raises(ValueError, match=r"text=True\)"):
        model.fit(images, epochs=1, verbose=0)
    unit = data.load(f"npz:{npz}", text=True, batch_size=16, image_range="unit")
    with pytest.raises(ValueError, match="image_range='tanh'"):
        model.fit(unit, epochs=1, verbose=0)
    fresh = Diffusion((8, 8, 3), text=True, **TINY)
    fresh.compile()
    with pytest.raises(ValueError, match="adapt"):
        fresh.fit(load(npz), epochs=1, verbose=0)


@pytest.mark.slow  # converts a traced sampling loop: ~70 s on a loaded 2-core machine
def test_litert_matches_keras_from_the_same_strings(guided, tmp_path, monkeypatch):
    import export
    from export import signatures
    from export.diffusion import diffusion_spec
    from export.validation import tflite_runner

    monkeypatch.setitem(signatures.BUILDERS, "diffusion", lambda m: diffusion_spec(m, steps=2))
    model = guided
    written = export.tflite(model, tmp_path)
    rule = export.read_tokenizer(tmp_path / "tokenizer.json")
    assert rule["vocabulary"] == model.vocabulary and rule["sequence_length"] == 8
    prompts = ["A red sneaker!", "a bag in blue", "green coat"]
    ids = np.asarray(export.tokenize(prompts, rule["vocabulary"], rule["sequence_length"]), np.int32)
    np.testing.assert_array_equal(ids, model.tokenizer.encode(prompts))
    noise = model.latent_vectors(3, 5)
    run = tflite_runner(written["generate"], "generate")
    for w in (0.0, 2.0):
        lite = run({"noise": noise, "tokens": ids, "guidance": np.float32(w)})["images"]
        np.testing.assert_allclose(lite, model.generate(prompts=prompts, z=noise, guidance=w), atol=1e-3)
    other = run({"noise": noise, "tokens": ids[::-1].copy(), "guidance": np.float32(2.0)})["images"]
    assert np.abs(other[0] - lite[0]).max() > 1e-4  # the tokens reach the exported loop
    assert export.validate(model, tmp_path, n=4).passed


@pytest.mark.slow  # a run folder, checkpoints, the default U-Net, two samplings: ~100 s loaded
def test_command_trains_with_text_and_samples_prompts(npz, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "diffusion", "--dataset", f"npz:{npz}", "--text",
                     "--attention", "off", "--batch-size", "16", "--samples", "2",
                     "--eval-samples", "0", "--epochs", "1", "--seed", "0", "--verbose", "0",
                     "--out", str(out)]) == 0
    model = keras.models.load_model(out / "model.keras")
    assert model.text and "sneaker" in model.vocabulary
    assert json.loads((out / "config.json").read_text())["args"]["text"] is True
    assert cli.main(["sample", "--model", str(out / "model.keras"), "--prompt", "a red sneaker",
                     "-n", "2", "--steps", "2", "--out", str(tmp_path / "a.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"),
                                  model.generate(prompts=["a red sneaker"] * 2, seed=0, steps=2))
