"""DCGAN(text=True): the matching-aware discriminator loss, the mismatched captions, the owned
vocabulary through `.keras`, prompts, replica-exact training, LiteRT parity from the same strings,
and the command's --text / --prompt."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gen as kg
from keras_gen import cli, data, families as registry, text
from keras_gen.models import DCGAN, gan as gan_module
import families

CAPTIONS = [data.caption(c, k, t) for c, k, t in
            [(7, 0, 0), (8, 2, 1), (4, 1, 2), (3, 7, 3), (0, 3, 4), (9, 6, 0), (5, 5, 2), (1, 4, 1)]]
TINY = dict(latent_dim=8, filters=4, max_tokens=40, sequence_length=8, text_dim=8, seed=0)


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """32 tinted 8x8 images with their captions, as an npz captioned source."""
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(32, 8, 8, 3)) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "captions.npz"
    np.savez(path, x=x, text=np.array([CAPTIONS[i % len(CAPTIONS)] for i in range(32)]))
    return path


def load(npz, batch_size=16):
    return data.load(f"npz:{npz}", text=True, batch_size=batch_size, image_range="tanh",
                     shuffle=False)


def tiny(npz, **kwargs):
    model = DCGAN((8, 8, 3), text=True, **{**TINY, **kwargs})
    return model.adapt(load(npz))


def test_matching_aware_loss_equals_reed_formula_on_the_steps_noise(npz):
    model = tiny(npz, ema_decay=None, text_discriminator="matching")
    model.compile()
    images, captions = next(iter(load(npz)))
    ids = model.tokenizer(captions)
    batch = int(images.shape[0])
    z = model.step_noise(tf.constant(0, tf.int64), gan_module._Z, batch, (model.latent_dim,))
    fake = model.generator([z, ids], training=True)
    real_logits = model.discriminator([images, ids], training=True)[:, 0]
    fake_logits = model.discriminator([fake, ids], training=True)[:, 0]
    wrong_logits = model.discriminator([images, tf.roll(ids, 1, axis=0)], training=True)[:, 0]
    # Reed et al. 2016: log D(x, t) + (log(1 - D(x, t')) + log(1 - D(G(z, t), t))) / 2
    softplus = tf.nn.softplus
    expected = softplus(-real_logits) + 0.5 * (softplus(fake_logits) + softplus(wrong_logits))
    logs = model.train_step((images, captions))
    np.testing.assert_allclose(float(logs["d_loss"]), float(tf.reduce_mean(expected)), rtol=1e-5)
    # and the projection discriminator plays the plain game
    projection = tiny(npz, ema_decay=None, text_discriminator="projection")
    projection.compile()
    fake = projection.generator([z, ids], training=True)
    real_logits = projection.discriminator([images, ids], training=True)[:, 0]
    fake_logits = projection.discriminator([fake, ids], training=True)[:, 0]
    logs = projection.train_step((images, captions))
    expected = softplus(-real_logits) + softplus(fake_logits)
    np.testing.assert_allclose(float(logs["d_loss"]), float(tf.reduce_mean(expected)), rtol=1e-5)


def test_mismatched_captions_are_the_global_batch_rolled_by_one():
    ids = np.arange(8 * 3, dtype=np.int32).reshape(8, 3)
    np.testing.assert_array_equal(text.mismatched_captions(tf.constant(ids)), np.roll(ids, 1, 0))
    strategy = families.two_replicas()
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(ids))
    rolled = strategy.run(text.mismatched_captions, args=(next(iter(batches)),))
    local = [np.asarray(r) for r in strategy.experimental_local_results(rolled)]
    assert [len(r) for r in local] == [4, 4]
    np.testing.assert_array_equal(np.concatenate(local), np.roll(ids, 1, 0))


def test_vocabulary_and_images_survive_keras_file(npz, tmp_path):
    model = tiny(npz, text_conditioning="concat")
    model.compile()
    model.train_step(next(iter(load(npz))))  # captions tokenized in the step; EMA moves
    prompts = ["a red sneaker", "a blue bag"]
    before = model.generate(prompts=prompts, seed=3)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.text and loaded.vocabulary == model.vocabulary and "sneaker" in loaded.vocabulary
    assert loaded.sample_prompts == model.sample_prompts
    np.testing.assert_array_equal(loaded.generate(prompts=prompts, seed=3), before)
    # the EMA generator (what generate uses) carries its own copy of the text encoder
    assert any(isinstance(layer, text.TextEncoder) for layer in loaded.sampling_generator.layers)
    assert loaded.sampling_generator is loaded.ema_generator


def test_prompts_decide_the_images_and_unknown_words_warn(npz):
    model = tiny(npz)
    a = model.generate(prompts=["a red sneaker", "a blue bag"], seed=1)
    assert a.dtype == np.float32 and a.shape == (2, 8, 8, 3) and 0 <= a.min() <= a.max() <= 1
    np.testing.assert_array_equal(model.generate(prompts=["a red sneaker", "a blue bag"], seed=1), a)
    b = model.generate(prompts=["a blue bag", "a blue bag"], seed=1)
    assert np.abs(a[0] - b[0]).max() > 1e-4  # same noise, another caption
    np.testing.assert_array_equal(a[1], b[1])  # image k's noise does not depend on the others
    with pytest.warns(UserWarning, match="'zebra'"):
        model.generate(prompts=["a zebra sneaker"], seed=1)
    # without prompts: the captions adapt kept, in turn
    np.testing.assert_array_equal(
        model.generate(2, seed=1), model.generate(prompts=model.sample_prompts[:2], seed=1))


def test_clear_errors(npz):
    with pytest.raises(ValueError, match="num_classes"):
        DCGAN((8, 8, 3), text=True, num_classes=10, **TINY)
    plain = DCGAN((8, 8, 3), latent_dim=8, filters=4, seed=0)
    with pytest.raises(ValueError, match="text=True"):
        plain.generate(prompts=["a red sneaker"])
    vae = kg.models.ConvVAE((8, 8, 1), latent_dim=4, seed=0)
    with pytest.raises(ValueError, match="text-conditioned"):
        vae.generate(prompts=["a red sneaker"])
    model = tiny(npz)
    with pytest.raises(ValueError, match="not labels"):
        model.generate(2, labels=[0, 1])
    with pytest.raises(ValueError, match="one image per prompt"):
        model.generate(3, prompts=["a red sneaker"])
    model.compile()
    images = data.load(f"npz:{npz}", batch_size=16, image_range="tanh")
    with pytest.raises(ValueError, match=r"text=True\)"):
        model.fit(images, epochs=1, verbose=0)
    fresh = DCGAN((8, 8, 3), text=True, **TINY)
    fresh.compile()
    with pytest.raises(ValueError, match="adapt"):
        fresh.fit(load(npz), epochs=1, verbose=0)


@pytest.mark.slow  # two fits, one under MirroredStrategy: ~40 s on 2 cores
def test_two_replicas_train_like_one(npz):
    def build_compiled():
        model = tiny(npz)
        model.compile(jit_compile=False, d_optimizer=keras.optimizers.SGD(0.05),
                      g_optimizer=keras.optimizers.SGD(0.05))
        return model

    families.assert_two_replicas_train_like_one(build_compiled, lambda: load(npz))


def test_litert_matches_keras_from_the_same_strings(npz, tmp_path):
    import export
    from export.validation import tflite_runner

    model = tiny(npz, text_conditioning="film")
    written = export.tflite(model, tmp_path)
    rule = export.read_tokenizer(tmp_path / "tokenizer.json")
    assert rule["vocabulary"] == model.vocabulary and rule["sequence_length"] == 8
    prompts = ["A red sneaker!", "a bag in blue", "green coat"]
    ids = np.asarray(export.tokenize(prompts, rule["vocabulary"], rule["sequence_length"]), np.int32)
    np.testing.assert_array_equal(ids, model.tokenizer.encode(prompts))
    z = model.latent_vectors(3, 5)
    run = tflite_runner(written["generate"], "generate")
    lite = run({"z": z, "tokens": ids})["images"]
    np.testing.assert_allclose(lite, model.generate(prompts=prompts, z=z), atol=1e-4)
    other = run({"z": z, "tokens": ids[::-1].copy()})["images"]
    assert np.abs(other[0] - lite[0]).max() > 1e-4  # the tokens reach the exported generator
    report = export.validate(model, tmp_path, n=4)
    assert report.passed


@pytest.mark.slow  # a run folder, TensorBoard, checkpoints and three samplings: ~35 s
def test_command_trains_with_text_and_samples_prompts(npz, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "dcgan", "--dataset", f"npz:{npz}", "--text",
                     "--batch-size", "16", "--filters", "4", "--latent-dim", "8", "--samples", "4",
                     "--eval-samples", "0", "--epochs", "1", "--seed", "0", "--verbose", "0",
                     "--out", str(out)]) == 0
    model = keras.models.load_model(out / "model.keras")
    assert model.text and "sneaker" in model.vocabulary
    assert json.loads((out / "config.json").read_text())["args"]["text"] is True
    assert cli.main(["sample", "--model", str(out / "model.keras"), "--prompt", "a red sneaker",
                     "-n", "3", "--out", str(tmp_path / "a.npy")]) == 0
    a = np.load(tmp_path / "a.npy")
    np.testing.assert_array_equal(a, model.generate(prompts=["a red sneaker"] * 3, seed=0))
    (tmp_path / "p.txt").write_text("a red sneaker\n\na blue bag\n")
    assert cli.main(["sample", "--model", str(out / "model.keras"), "--prompts",
                     str(tmp_path / "p.txt"), "--out", str(tmp_path / "b.npy")]) == 0
    b = np.load(tmp_path / "b.npy")
    np.testing.assert_array_equal(b, model.generate(prompts=["a red sneaker", "a blue bag"], seed=0))
    assert cli.main(["sample", "--model", str(out / "model.keras"), "--prompts",
                     str(tmp_path / "p.txt"), "-n", "2", "--out", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.npy").shape == (4, 8, 8, 3)


def test_text_is_one_option_shared_by_its_families():
    takers = [f for f in registry.all_families() if text.TEXT_OPTION in f.options]
    assert "dcgan" in [f.name for f in takers]
    for f in takers:
        assert any(o is text.TEXT_OPTION for o in f.options)
        assert text.PROMPT_OPTIONS[0] in f.sample_options
