"""The VQ-VAE family: training terms equal their formulas, codes round-trip through `.keras`
files, the prior's samples are valid codes and `generate` is exactly "sample codes, decode",
the prior trained inside the VQ-VAE (the command's route) equals `prior.fit(code_dataset)`,
and the command trains, samples, evaluates and exports both stages."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gen as kg
from keras_gen import cli
from keras_gen.models import VQVAE, PixelCNN

SMALL = dict(num_embeddings=16, embedding_dim=4, filters=8, residual_blocks=1, downsamplings=1)


def digits(n=128, batch_size=32, labels=True):
    return kg.data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range="unit",
                        with_labels=labels, shuffle=False, seed=0)


def tiny_prior(vq, **kwargs):
    return PixelCNN(vq.code_shape + (1,), levels=vq.num_embeddings, filters=8, num_layers=2,
                    first_kernel_size=3, num_classes=vq.num_classes, seed=0, **kwargs)


@pytest.fixture(scope="module")
def trained():
    """A conditional VQ-VAE on 8x8 digits (4x4 codes) and a prior fitted on its codes."""
    vq = VQVAE((8, 8, 1), num_classes=10, dead_code_steps=5, seed=0, **SMALL)
    vq.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vq.fit(digits(256), epochs=3, verbose=0)
    prior = tiny_prior(vq)
    prior.compile(optimizer=keras.optimizers.Adam(3e-3))
    prior.fit(vq.code_dataset(digits(256)), epochs=2, verbose=0)
    return vq, prior, history.history


def test_training_lowers_the_loss_and_uses_the_codebook(trained):
    vq, _, history = trained
    assert history["reconstruction_loss"][-1] < history["reconstruction_loss"][0]
    assert history["perplexity"][-1] > 4  # of 16 codes: restarts keep the codebook in use
    assert set(history) == {"loss", "reconstruction_loss", "commitment_loss", "perplexity"}


def test_terms_equal_their_formulas(trained):
    vq = trained[0]
    images, labels = next(iter(digits(8, batch_size=8)))
    terms = vq.terms(images, labels)
    vectors = vq.encoder(images).numpy()
    codebook = vq.quantizer.embeddings.numpy()
    codes = np.argmin(((vectors[..., None, :] - codebook) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(terms["codes"].numpy(), codes)
    distance = ((vectors - codebook[codes]) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(terms["commitment"].numpy(), distance, rtol=1e-5)
    raw = vq.decoder(codebook[codes]).numpy()
    expected = -kg.losses.discretized_logistic_log_prob(images, raw[..., :1], raw[..., 1:]).numpy()
    np.testing.assert_allclose(terms["reconstruction"].numpy(), expected, rtol=1e-5)
    loss = vq._loss_per_image(terms).numpy()
    np.testing.assert_allclose(loss, expected + 0.25 * distance, rtol=1e-5)


def test_decoder_gradient_reaches_the_encoder_unchanged(trained):
    vq = trained[0]
    images = next(iter(digits(4, batch_size=4)))[0]
    with tf.GradientTape(persistent=True) as tape:
        vectors = vq.encoder(images)
        quantized = vq.quantizer(vectors)
        tape.watch(quantized)
        likelihood = vq.image_likelihood  # moved: the likelihood object VAE and VQ-VAE share
        reconstruction = tf.reduce_sum(-likelihood.log_prob(images, likelihood.split(vq.decoder(quantized))))
    at_decoder = tape.gradient(reconstruction, quantized).numpy()
    assert np.any(at_decoder)
    np.testing.assert_array_equal(tape.gradient(reconstruction, vectors).numpy(), at_decoder)


def test_codes_api(trained):
    vq = trained[0]
    batch = next(iter(digits(32)))
    images = batch[0].numpy()
    codes = vq.encode_codes(images, batch_size=7)
    assert codes.dtype == np.int32 and codes.shape == (32, 4, 4) and vq.code_shape == (4, 4)
    assert codes.min() >= 0 and codes.max() < vq.num_embeddings == 16
    decoded = vq.decode_codes(codes)
    assert decoded.dtype == np.float32 and decoded.shape == images.shape
    assert decoded.min() >= 0 and decoded.max() <= 1
    np.testing.assert_array_equal(vq.decode_codes(codes[..., None]), decoded)
    np.testing.assert_array_equal(vq.reconstruct(images), decoded)
    np.testing.assert_allclose(vq(images).numpy(), decoded, atol=1e-6)
    # code_dataset: the same codes, as (batch, h, w, 1) int32 with the labels
    first = next(iter(vq.code_dataset(digits(32))))
    assert first[0].dtype == tf.int32 and tuple(first[0].shape) == (32, 4, 4, 1)
    np.testing.assert_array_equal(first[0].numpy()[..., 0], codes)
    np.testing.assert_array_equal(first[1].numpy(), batch[1].numpy())
    with pytest.raises(ValueError, match=r"codes must be in 0..15"):
        vq.decode_codes(np.full((1, 4, 4), 16))
    with pytest.raises(ValueError, match=r"codes must be integers of shape \(n, 4, 4\)"):
        vq.decode_codes(np.zeros((1, 3, 3), np.int32))
    with pytest.raises(ValueError, match=r"images must be images \(n, 8, 8, 1\)"):
        vq.encode_codes(np.zeros((2, 28, 28, 1)))


def test_generate_needs_a_prior_and_says_how_to_train_one():
    vq = VQVAE((8, 8, 1), seed=0, **SMALL)
    with pytest.raises(ValueError, match=r"no prior .*PixelCNN\(\(4, 4, 1\), levels=16\).*vqvae-prior"):
        vq.generate(2, seed=0)
    with pytest.raises(ValueError, match=r"levels=8 \(want 16\)"):
        vq.set_prior(PixelCNN((4, 4, 1), levels=8, filters=4, num_layers=1, seed=0))
    with pytest.raises(ValueError, match="want 'categorical'"):
        vq.set_prior(PixelCNN((4, 4, 1), levels=16, filters=4, num_layers=1,
                              likelihood="logistic_mixture", seed=0))
    with pytest.raises(ValueError, match=r"num_classes=10 \(want None\)"):
        vq.set_prior(PixelCNN((4, 4, 1), levels=16, filters=4, num_layers=1, num_classes=10, seed=0))


def test_prior_samples_are_codes_and_generate_decodes_them(trained):
    vq, prior, _ = trained
    vq.set_prior(prior)
    labels = np.array([0, 3, 3, 9, 1])
    codes = prior.sample(5, seed=7, labels=labels, temperature=vq.temperature)
    assert codes.dtype == np.int32 and codes.shape == (5, 4, 4, 1)
    assert codes.min() >= 0 and codes.max() < vq.num_embeddings
    images = vq.generate(5, seed=7, labels=labels)
    assert images.dtype == np.float32 and images.shape == (5, 8, 8, 1)
    np.testing.assert_array_equal(images, vq.decode_codes(codes))
    np.testing.assert_array_equal(vq.generate(5, seed=7, labels=labels, method="naive"), images)
    np.testing.assert_array_equal(vq.generate(2, seed=7, labels=labels[:2], batch_size=1), images[:2])
    assert not np.array_equal(vq.generate(5, seed=8, labels=labels), images)


def test_temperature_changes_samples_and_zero_is_the_argmax(trained):
    vq, prior, _ = trained
    vq.set_prior(prior)
    labels = np.arange(8) % 10
    at_one = vq.generate(8, seed=7, labels=labels, temperature=1.0)
    cold = vq.generate(8, seed=7, labels=labels, temperature=0.3)
    assert not np.array_equal(at_one, cold)
    # The model's own temperature is the default of generate, and survives get_config.
    before = vq.temperature
    vq.temperature = 0.3
    np.testing.assert_array_equal(vq.generate(8, seed=7, labels=labels), cold)
    assert VQVAE.from_config(vq.get_config()).temperature == 0.3
    vq.temperature = before
    # Temperature 0: every code is the most likely one given the codes before it (fed back
    # through the prior's full network), whatever the seed.
    codes = prior.sample(8, seed=7, labels=labels, temperature=0)
    logits = prior.distribution_params(codes, labels).numpy()[..., 0, :]
    np.testing.assert_array_equal(codes[..., 0], np.argmax(logits, axis=-1))
    np.testing.assert_array_equal(prior.sample(8, seed=99, labels=labels, temperature=0), codes)
    np.testing.assert_array_equal(vq.generate(8, seed=3, labels=labels, temperature=0),
                                  vq.decode_codes(codes))
    with pytest.raises(ValueError, match="temperature must be a number >= 0"):
        vq.generate(2, labels=labels[:2], temperature=-1)
    with pytest.raises(ValueError, match="temperature must be a number >= 0"):
        VQVAE((8, 8, 1), temperature="warm", **SMALL)


def test_files_without_a_temperature_sample_at_one(trained):
    """.keras files written before the temperature was an argument keep their samples."""
    vq = trained[0]
    config = vq.get_config()
    del config["temperature"]
    assert VQVAE.from_config(config).temperature == 1.0


def test_conditional_prior_respects_its_labels():
    """A class-conditional prior trained on codes that are the class everywhere draws, for each
    label, that class's codes: all of them at temperature 0, nearly all at 1."""
    vq = VQVAE((8, 8, 1), num_classes=4, seed=0, **{**SMALL, "num_embeddings": 4})
    labels = np.arange(256) % 4
    codes = np.broadcast_to(labels[:, None, None, None], (256, 4, 4, 1)).astype(np.int32)
    prior = tiny_prior(vq)
    prior.compile(optimizer=keras.optimizers.Adam(2e-2))
    prior.fit(codes, labels, batch_size=64, epochs=15, verbose=0)
    vq.set_prior(prior)
    asked = np.array([0, 1, 2, 3, 3, 2, 1, 0])
    expected = vq.decode_codes(np.broadcast_to(asked[:, None, None], (8, 4, 4)).astype(np.int32))
    np.testing.assert_array_equal(vq.generate(8, seed=0, labels=asked, temperature=0), expected)
    drawn = prior.sample(64, seed=1, labels=np.arange(64) % 4)[..., 0]
    assert np.mean(drawn == (np.arange(64) % 4)[:, None, None]) > 0.9


def test_fit_prior_and_the_cpu_budget_of_both_stages():
    """fit_prior learns the codes of the data it is given (with their labels); the CPU-budget
    route gives the autoencoder at least its share before the prior starts, and a sampler."""
    from keras_gen.models.vqvae import fit_prior, fit_within_cpu_seconds

    vq = VQVAE((8, 8, 1), num_classes=10, seed=0, **SMALL)
    vq.compile()
    stats = fit_within_cpu_seconds(vq, lambda epoch: digits(128), 6, prior_share=0.5, seed=0,
                                   filters=8, num_layers=2, first_kernel_size=3)
    assert stats["vq_steps"] > 0 and stats["prior_steps"] > 0
    assert stats["vq_cpu_seconds"] >= 3
    assert vq.prior.num_classes == 10 and vq.generate(3, seed=0, labels=[1, 2, 3]).shape == (3, 8, 8, 1)
    with pytest.raises(ValueError, match="pass \\(images, labels\\) batches"):
        fit_prior(vq, digits(32, labels=False))


def test_keras_round_trip_keeps_codes_images_and_the_prior(trained, tmp_path):
    vq, prior, _ = trained
    images = next(iter(digits(16)))[0].numpy()
    codes = vq.encode_codes(images)
    vq.save(tmp_path / "no_prior.keras")  # (the fixture's model may have a prior by now)
    vq.set_prior(prior)
    labels = np.arange(6) % 10
    expected = vq.generate(6, seed=3, labels=labels)
    vq.save(tmp_path / "vq.keras")
    loaded = keras.models.load_model(tmp_path / "vq.keras", safe_mode=True)
    assert isinstance(loaded, VQVAE) and isinstance(loaded.prior, PixelCNN)
    np.testing.assert_array_equal(loaded.encode_codes(images), codes)
    np.testing.assert_array_equal(loaded.decode_codes(codes), vq.decode_codes(codes))
    np.testing.assert_array_equal(loaded.generate(6, seed=3, labels=labels), expected)
    np.testing.assert_array_equal(loaded.quantizer.embeddings.numpy(), vq.quantizer.embeddings.numpy())
    np.testing.assert_array_equal(loaded.quantizer.steps_unused.numpy(), vq.quantizer.steps_unused.numpy())


def test_evaluate_elbo(trained):
    vq, prior, _ = trained
    data = digits(64, labels=True)
    images = np.concatenate([b[0].numpy() for b in data])
    labels = np.concatenate([b[1].numpy() for b in data])
    vq.prior = None  # stage 1: the uniform prior over codes
    uniform = vq.evaluate_elbo(data)
    assert uniform["prior_nats"] == pytest.approx(16 * math.log(16), rel=1e-6)
    assert uniform["prior_bits_per_code"] == pytest.approx(4.0, rel=1e-6)
    mse = np.mean((vq.reconstruct(images) - images) ** 2)
    assert uniform["mse"] == pytest.approx(mse, rel=1e-5)
    assert uniform["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-5)
    vq.set_prior(prior)
    result = vq.evaluate_elbo(images, labels=labels, batch_size=25)
    codes = vq.encode_codes(images)[..., None]
    np.testing.assert_allclose(result["prior_nats"], -np.mean(prior.log_prob(codes, labels)), rtol=1e-5)
    assert result["nats_per_image"] == pytest.approx(result["reconstruction"] + result["prior_nats"], rel=1e-6)
    assert result["bits_per_dim"] == pytest.approx(result["nats_per_image"] / (64 * math.log(2)), rel=1e-6)
    assert result["reconstruction"] == pytest.approx(uniform["reconstruction"], rel=1e-5)
    assert result["num_examples"] == 64
    # the shared metric interface sees a bound, as for the VAE
    assert kg.metrics.default_metrics(vq) == ("neg_elbo",)


@pytest.mark.slow
def test_prior_trained_in_the_vqvae_equals_prior_fit_on_the_code_dataset(trained):
    """The command's route (one model, autoencoder frozen) and the library's route agree."""
    vq = trained[0]
    data = digits(64, batch_size=16)
    prior_a = tiny_prior(vq)
    prior_a.compile(optimizer=keras.optimizers.Adam(1e-2))
    prior_a.fit(vq.code_dataset(data), epochs=1, verbose=0)

    config = vq.get_config()
    config.pop("prior", None)
    inside = VQVAE.from_config(config)
    parts = ("encoder", "quantizer", "decoder")
    for part in parts:
        getattr(inside, part).set_weights(getattr(vq, part).get_weights())
    inside.set_prior(tiny_prior(vq))
    inside.autoencoder_trainable = False
    inside.compile(optimizer=keras.optimizers.Adam(1e-2))
    assert {v.path for v in inside.trainable_variables} == {v.path for v in inside.prior.trainable_variables}
    history = inside.fit(data, epochs=1, verbose=0).history
    for a, b in zip(prior_a.get_weights(), inside.prior.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the autoencoder and its codebook (EMA, restarts) did not move
    for part in parts:
        for a, b in zip(getattr(vq, part).get_weights(), getattr(inside, part).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert "prior_loss" in history
    np.testing.assert_allclose(
        history["loss"][-1],
        history["reconstruction_loss"][-1] + 0.25 * history["commitment_loss"][-1] + history["prior_loss"][-1],
        rtol=1e-4,
    )
    assert VQVAE.from_config(inside.get_config()).autoencoder_trainable is False


@pytest.mark.slow
def test_loss_codebook_update_trains_the_codebook_by_gradient():
    vq = VQVAE((8, 8, 1), codebook_update="loss", dead_code_steps=None, seed=0, **SMALL)
    vq.compile()
    codebook = vq.quantizer.embeddings.numpy().copy()
    assert any(v is vq.quantizer.embeddings for v in vq.trainable_variables)
    vq.fit(digits(32, labels=False), epochs=1, verbose=0)
    assert not np.array_equal(vq.quantizer.embeddings.numpy(), codebook)


def test_bad_inputs():
    with pytest.raises(ValueError, match="height and width must be multiples of 4"):
        VQVAE((30, 30, 1))
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VQVAE((8, 8, 1), likelihood="gauss", **SMALL)
    vq = VQVAE((8, 8, 1), seed=0, **SMALL)
    vq.compile()
    tanh = kg.data.load("digits", split="train[:32]", batch_size=16, image_range="tanh")
    with pytest.raises(ValueError, match=r"takes images in \[0, 1\].*image_range='unit'"):
        vq.fit(tanh, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="compile\\(\\) without loss="):
        vq.compile(loss="mse")
    with pytest.raises(ValueError, match="code_dataset takes a tf.data.Dataset"):
        vq.code_dataset(np.zeros((2, 8, 8, 1)))


# --------------------------------------------------------------------------------------------
# The command


def _train(*flags):
    return cli.main(["train", "--dataset", "digits", "--split", "train[:128]", "--epochs", "1",
                     "--batch-size", "32", "--eval-samples", "64", "--seed", "0", "--verbose", "0",
                     *flags])


def test_command_defaults_of_the_prior_stage_are_the_constructors(tmp_path):
    VQVAE((8, 8, 1), seed=0).save(tmp_path / "vq.keras")
    args = cli.build_parser().parse_args(
        ["train", "--model", "vqvae-prior", "--vqvae", str(tmp_path / "vq.keras"), "--dataset",
         "digits", "--out", "unused", "--seed", "3"])
    built = cli.build_model(args, kg.data.info("digits"))
    direct = PixelCNN(built.code_shape + (1,), levels=built.num_embeddings, seed=3)
    mine, theirs = built.prior.get_config(), direct.get_config()
    mine.pop("name"), theirs.pop("name")
    assert mine == theirs and built.autoencoder_trainable is False
    without = cli.build_parser().parse_args(
        ["train", "--model", "vqvae-prior", "--dataset", "digits", "--out", "unused"])
    with pytest.raises(cli.CommandError, match="pass --vqvae runs/vq/model.keras"):
        cli.build_model(without, kg.data.info("digits"))


@pytest.mark.slow
def test_one_command_trains_both_stages_into_a_model_that_generates(tmp_path, monkeypatch):
    """--with-prior: the VQ-VAE's run, then its prior's, for the measured split of epochs."""
    from keras_gen.models import vqvae

    monkeypatch.setattr(vqvae, "PRIOR_EPOCHS_PER_EPOCH", 2.0)
    out = tmp_path / "run"
    assert _train("--model", "vqvae", "--with-prior", "--filters", "8", "--num-embeddings", "16",
                  "--embedding-dim", "4", "--eval-samples", "0", "--out", str(out)) == 0
    first = json.loads((out / "autoencoder" / "history.json").read_text())
    second = json.loads((out / "prior" / "history.json").read_text())
    assert len(first["loss"]) == 1 and len(second["prior_loss"]) == 2
    model = keras.models.load_model(out / "prior" / "model.keras")
    assert model.prior is not None and model.filters == 8 and model.num_embeddings == 16
    assert cli.main(["sample", "--model", str(out / "prior" / "model.keras"), "-n", "4",
                     "--out", str(tmp_path / "s.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), model.generate(4, seed=0))
    # the folder is a run of its own: a second start refuses it, --resume has nothing to do
    assert _train("--model", "vqvae", "--with-prior", "--out", str(out)) == 2
    assert _train("--model", "vqvae", "--with-prior", "--eval-samples", "0", "--resume",
                  "--out", str(out)) == 0
    assert _train("--model", "dcgan", "--with-prior", "--out", str(tmp_path / "x")) == 2


@pytest.mark.slow
def test_command_trains_both_stages_then_samples_evaluates_and_exports(tmp_path, capsys):
    vq_dir, prior_dir = tmp_path / "vq", tmp_path / "prior"
    small = ["--filters", "8", "--num-embeddings", "16", "--embedding-dim", "4"]
    assert _train("--model", "vqvae", *small, "--out", str(vq_dir)) == 0
    assert (vq_dir / "samples" / "reconstructions_001.png").exists()
    assert not (vq_dir / "samples" / "epoch_001.png").exists()  # no prior, no samples yet
    assert cli.main(["sample", "--model", str(vq_dir / "model.keras"), "--out", str(tmp_path / "x.png")]) == 2
    assert "vqvae-prior" in capsys.readouterr().err
    # a conditional prior needs a conditional VQ-VAE: a clear error
    assert _train("--model", "vqvae-prior", "--vqvae", str(vq_dir / "model.keras"), "--conditional",
                  "--out", str(tmp_path / "bad")) == 2
    assert "train the VQ-VAE with --conditional" in capsys.readouterr().err
    assert _train("--model", "vqvae-prior", "--vqvae", str(vq_dir / "model.keras"), "--filters", "8",
                  "--num-layers", "2", "--out", str(prior_dir)) == 0
    assert (prior_dir / "samples" / "epoch_001.png").exists()
    history = json.loads((prior_dir / "history.json").read_text())
    assert "prior_loss" in history and "val_neg_elbo" in history
    model = prior_dir / "model.keras"
    assert cli.main(["sample", "--model", str(model), "-n", "4", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    loaded = keras.models.load_model(model)
    np.testing.assert_array_equal(samples, loaded.generate(4, seed=0))
    assert cli.main(["evaluate", "--model", str(model), "--dataset", "digits", "--split", "train[:64]",
                     "--out", str(tmp_path / "e.json")]) == 0
    assert "neg_elbo" in json.loads((tmp_path / "e.json").read_text())["results"]
    # export: decode and generate (the prior's sampler inside), validated against Keras
    import export

    export.saved_model(loaded, tmp_path / "exported" / "saved_model")
    export.tflite(tmp_path / "exported" / "saved_model", tmp_path / "exported")
    report = export.validate(loaded, tmp_path / "exported", n=3, repeats=1)
    rows = {(r.format, r.signature) for r in report.rows}
    assert {("saved_model", "decode"), ("saved_model", "generate"), ("tflite", "decode"),
            ("tflite", "generate"), ("tflite", "encode")} <= rows
    assert all(r.max_abs_error <= 1e-4 for r in report.rows if r.signature == "generate")
