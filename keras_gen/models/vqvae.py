"""The VQ-VAE family (van den Oord et al. 2017): an encoder maps an image to a small grid of
discrete codes from a learned codebook, a decoder maps the codes back to pixels, and a PixelCNN
over the code grid (the prior) makes it generative: sampling is a short autoregression over,
say, 7x7 codes followed by one decoder pass.

Two stages, each a `fit`:

    vq = kg.models.VQVAE((28, 28, 1), seed=0)
    vq.compile()
    vq.fit(images, epochs=...)                              # stage 1: the autoencoder
    prior = kg.models.PixelCNN(vq.code_shape + (1,), levels=vq.num_embeddings, seed=0)
    prior.compile()
    prior.fit(vq.code_dataset(images), epochs=...)          # stage 2: the prior over codes
    vq.set_prior(prior)
    vq.generate(16, seed=0)                                 # float32 (16, 28, 28, 1) in [0, 1]
    vq.save("vq.keras")                                     # the prior is saved with it

Data contract: as the VAE's, images in [0, 1] (`keras_gen.data.load(..., image_range=
vq.data_range)`): 8-bit levels k / 255 for likelihood="discretized_logistic" (the default, whose
bits/dim compare with the VAE's and PixelCNN's), binarised for "bernoulli".
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks, progress
from keras_gen import losses as kg_losses
from keras_gen import networks
from keras_gen.families import Option
from keras_gen.layers.quantizer import CODEBOOK_UPDATES, VectorQuantizer, straight_through
from keras_gen.models.base import num_replicas
from keras_gen.models.pixelcnn import FAMILY as PIXELCNN_FAMILY
from keras_gen.models.pixelcnn import PRIOR_OPTIONS, PixelCNN
from keras_gen.models.pixelcnn import _check_temperature as check_temperature
from keras_gen.models.vae import FAMILY as VAE_FAMILY
from keras_gen.models.vae import LIKELIHOOD_OPTION, ImageAutoencoder

# Purpose of the dead-code restart noise drawn in a step (see GenerativeModel.step_noise).
_RESTART_PURPOSE = 0


@keras.saving.register_keras_serializable(package="keras_gen")
class VQVAE(ImageAutoencoder):
    """A vector-quantised autoencoder trained with `model.fit`, generative once a prior over its
    codes is attached (`set_prior`).

    Each step minimises, per image, -log p(x | z_q) + beta ||z_e - sg[e]||^2 (plus the codebook
    term ||sg[z_e] - e||^2 with codebook_update="loss"), where z_e is the encoder's grid, e its
    nearest codes and z_q = z_e + sg[e - z_e] (straight-through). With a trainable prior attached
    the prior's negative log-likelihood of the codes is added: the sum is the negative ELBO (the
    posterior is one-hot, so its KL to the prior is -log p(codes)); the codes carry no gradient,
    so the prior term trains only the prior. `keras-gen train --model vqvae-prior` trains the
    prior this way, with the autoencoder frozen, so both stages live in one `.keras` file.

    Args:
      image_shape: (height, width, channels); height and width divisible by 2**downsamplings.
      num_embeddings: K, the codebook size (the prior's `levels`). 64 by default: at a CPU
        budget a prior over 64 codes learns far more per step than over 256 (3.3 against 5.0
        bits per code), and its samples measured better (FID 64.5 against 70.2 at 600
        CPU-seconds, benchmarks/RESULTS.md, issue 27), though the autoencoder reconstructs a
        little worse (20.4 against 21.0 dB).
      embedding_dim: D, the size of each code vector.
      num_classes: labels condition the prior (the codes already describe the image, so the
        autoencoder does not take them); fit on (images, labels) batches.
      likelihood: "discretized_logistic" (8-bit images), "bernoulli" (binarised) or "gaussian".
      beta: the commitment weight.
      codebook_update: "ema" (moving averages, the default: it measured better, see
        benchmarks/RESULTS.md) or "loss".
      decay: the EMA's decay.
      dead_code_steps: codes unused this many consecutive steps are re-seeded from encoder
        outputs of the batch (None: never).
      filters, residual_blocks, downsamplings: the networks' width, residual blocks, and stride-2
        steps (2: 28x28 images -> 7x7 codes).
      prior: a `PixelCNN` over the code grid (or None; see `set_prior`).
      autoencoder_trainable: False freezes the encoder, codebook and decoder, so `fit` trains
        only the prior (the command's prior stage); saved with the model.
      temperature: the prior's sampling temperature `generate` uses by default (1: the prior
        itself; below 1 sharper; 0 the most likely code at each step). 0.9 measured best with
        64 codes on full Fashion-MNIST (FID 65.1 against 68.8 at 1 and 71.6 at 0.8 on 2,000
        samples; with 256 codes 0.8 was best; benchmarks/RESULTS.md, issue 27). Saved with the
        model; the exported `generate` graph uses it too.
      seed: seeds the initial weights and the restart noise.
    """

    OWN_LOSS = ("a VQ-VAE trains on its own loss (reconstruction + beta * commitment): choose "
                "likelihood= and beta= in the constructor and call compile() without loss=.")

    network_args = ("prior",)

    def __init__(
        self,
        image_shape,
        num_embeddings=64,
        embedding_dim=32,
        num_classes=None,
        likelihood="discretized_logistic",
        beta=0.25,
        codebook_update="ema",
        decay=0.99,
        dead_code_steps=10,
        filters=64,
        residual_blocks=2,
        downsamplings=2,
        prior=None,
        autoencoder_trainable=True,
        temperature=0.9,
        seed=None,
        **kwargs,
    ):
        image_shape = checks.image_shape(image_shape)
        checks.choice("likelihood", likelihood, kg_losses.IMAGE_LIKELIHOODS)
        checks.choice("codebook_update", codebook_update, CODEBOOK_UPDATES)
        self.filters = checks.positive_int("filters", filters)
        self.residual_blocks = checks.count(residual_blocks, "residual_blocks", "residual blocks")
        self.downsamplings = checks.positive_int("downsamplings", downsamplings)
        factor = 2**self.downsamplings
        if image_shape[0] % factor or image_shape[1] % factor:
            raise ValueError(
                f"VQVAE(downsamplings={downsamplings}) halves the image {downsamplings} times, so "
                f"height and width must be multiples of {factor}; got image_shape={image_shape}. "
                "Resize the data or choose fewer downsamplings."
            )
        kwargs["seed"] = seed = checks.seed_or_fresh(seed)
        super().__init__(image_shape, num_classes=num_classes, **kwargs)
        self.num_embeddings = checks.positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = checks.positive_int("embedding_dim", embedding_dim)
        self.likelihood = likelihood
        self.beta = checks.non_negative_number("beta", beta, " (0.25 in the paper)")
        self.params_per_channel = 1 if likelihood == "bernoulli" else 2
        with self.policy_scope():
            sizes = dict(filters=self.filters, residual_blocks=self.residual_blocks,
                         downsamplings=self.downsamplings, seed=seed)
            self.encoder = networks.vqvae_encoder(image_shape, self.embedding_dim, **sizes)
            self.decoder = networks.vqvae_decoder(
                image_shape, self.embedding_dim, params_per_channel=self.params_per_channel, **sizes
            )
        # The codebook computes in float32 under any policy: nearest-code search in float16
        # would tie distinct codes.
        self.quantizer = VectorQuantizer(
            self.num_embeddings, self.embedding_dim, codebook_update=codebook_update, decay=decay,
            dead_code_steps=dead_code_steps,
            embeddings_initializer=networks.Initializers(seed, stream=2)(), dtype="float32",
            name="quantizer",
        )
        self.quantizer.build((None,) + self.code_shape + (self.embedding_dim,))
        self.prior = None
        if prior is not None:
            self.set_prior(prior)
        self.autoencoder_trainable = autoencoder_trainable
        self.temperature = temperature

        self._likelihood_parts(likelihood)
        self.add_trackers(commitment="commitment_loss", perplexity="perplexity", prior="prior_loss")
        self.built = True

    # -- the prior ----------------------------------------------------------------------------

    @property
    def code_shape(self):
        """(h, w) of the code grid."""
        return networks.vqvae_code_shape(self.image_shape, self.downsamplings)

    def set_prior(self, prior):
        """Attaches `prior`, a `PixelCNN(vq.code_shape + (1,), levels=vq.num_embeddings,
        num_classes=vq.num_classes, likelihood="categorical")`, trained on `code_dataset`. It is
        saved with the model. `fit` then trains the prior too (or only it, with
        `autoencoder_trainable = False`): compile again first."""
        want = self.code_shape + (1,)
        problems = []
        if not isinstance(prior, PixelCNN):
            raise ValueError(
                f"the prior must be a keras_gen PixelCNN; got {type(prior).__name__}. Build it "
                f"as PixelCNN({want}, levels={self.num_embeddings}) and fit it on "
                "vq.code_dataset(images)."
            )
        if tuple(prior.image_shape) != want:
            problems.append(f"image_shape {tuple(prior.image_shape)} (want {want})")
        if prior.levels != self.num_embeddings:
            problems.append(f"levels={prior.levels} (want {self.num_embeddings})")
        if prior.num_classes != self.num_classes:
            problems.append(f"num_classes={prior.num_classes} (want {self.num_classes})")
        if prior.likelihood != "categorical":
            problems.append(
                f"likelihood={prior.likelihood!r} (want 'categorical': code indices are "
                "unordered, a logistic mixture assumes neighbouring levels are alike)"
            )
        if problems:
            raise ValueError(
                "the prior does not fit this VQ-VAE's codes: " + "; ".join(problems) + ". Build "
                f"it as PixelCNN({want}, levels={self.num_embeddings}, num_classes="
                f"{self.num_classes})."
            )
        self.prior = prior
        # What fit trains has changed; the optimiser was built for the variables before.
        self.compiled = False

    @property
    def autoencoder_trainable(self):
        """Whether `fit` trains the encoder, the codebook and the decoder (False: only the
        prior). Compile again after changing it."""
        return self.encoder.trainable

    @autoencoder_trainable.setter
    def autoencoder_trainable(self, value):
        if not isinstance(value, bool):
            raise ValueError(f"autoencoder_trainable must be True or False; got {value!r}.")
        if value != self.encoder.trainable and self.compiled:
            self.compiled = False  # the optimiser was built for the other set of variables
        for part in (self.encoder, self.quantizer, self.decoder):
            part.trainable = value

    @property
    def temperature(self):
        """The default sampling temperature of `generate` (see the constructor)."""
        return self._temperature

    @temperature.setter
    def temperature(self, value):
        self._temperature = check_temperature(value)

    def _require_prior(self):
        if self.prior is None:
            h, w = self.code_shape
            raise ValueError(
                "this VQ-VAE has no prior over its codes yet, so it cannot generate. Train one: "
                f"prior = kg.models.PixelCNN(({h}, {w}, 1), levels={self.num_embeddings}"
                + (f", num_classes={self.num_classes}" if self.num_classes else "")
                + "); prior.compile(); prior.fit(vq.code_dataset(images)); vq.set_prior(prior). "
                "From the command: keras-gen train --model vqvae-prior --vqvae MODEL.keras ..."
            )
        return self.prior

    # -- training -----------------------------------------------------------------------------

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.reconstruction_tracker, self.commitment_tracker,
                    self.perplexity_tracker]
        return trackers + ([self.prior_tracker] if self.prior is not None else [])

    def terms(self, images, labels=None, training=False):
        """The per-image terms of the loss, as a dict of tensors: "reconstruction" (-log p(x |
        z_q), nats), "codebook" and "commitment" (squared distances of the encoder's vectors to
        their codes, summed per image), "prior" (-log p(codes), nats; only with a prior), and
        "vectors" (z_e) and "codes" for the codebook updates."""
        vectors = self.encoder(images, training=training)
        codes = self.quantizer.nearest(vectors)
        quantized = self.quantizer.lookup(codes)
        raw = self.decoder(straight_through(vectors, quantized), training=training)
        codebook, commitment = self.quantizer.vq_losses(vectors, quantized)
        out = {
            "reconstruction": -self.image_likelihood.log_prob(images, self.image_likelihood.split(raw)),
            "codebook": codebook,
            "commitment": commitment,
            "vectors": vectors,
            "codes": codes,
        }
        if self.prior is not None:
            out["prior"] = self._prior_nll(codes, labels)
        return out

    def _loss_per_image(self, terms):
        loss = terms["reconstruction"] + self.beta * terms["commitment"]
        if self.quantizer.codebook_update == "loss":
            loss = loss + terms["codebook"]
        if "prior" in terms:
            loss = loss + terms["prior"]
        return loss

    def train_step(self, data):
        images, labels = self._unpack(data)
        images = tf.cast(images, tf.float32)
        batch = tf.shape(images)[0]
        scores = None
        if self.quantizer.trainable and self.quantizer.dead_code_steps is not None:
            h, w = self.code_shape
            scores = self.step_noise(
                self.optimizer.iterations, _RESTART_PURPOSE, batch, (h, w, self.num_embeddings),
                "uniform",
            )
            scores = tf.reshape(scores, (-1, self.num_embeddings))
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.terms(images, labels, training=True)
            per_image = self._loss_per_image(terms)
            loss = tf.reduce_sum(per_image) / self.global_batch_size(batch)
            if self.losses:  # weight regularisers
                loss = loss + tf.add_n(self.losses) / num_replicas()
            scaled = self.optimizer.scale_loss(loss)
        self.apply_gradients(self.optimizer, tape.gradient(scaled, variables), variables)
        counts = self.quantizer.code_counts(terms["codes"])
        if self.quantizer.trainable:  # a frozen codebook (the prior stage) stays as it is
            self.quantizer.update(terms["vectors"], terms["codes"], counts, scores)
        return self._update_trackers(per_image, terms, counts)

    def test_step(self, data):
        images, labels = self._unpack(data)
        terms = self.terms(tf.cast(images, tf.float32), labels, training=False)
        counts = self.quantizer.code_counts(terms["codes"])
        return self._update_trackers(self._loss_per_image(terms), terms, counts)

    def _update_trackers(self, per_image, terms, counts):
        self.loss_tracker.update_state(per_image)
        self.reconstruction_tracker.update_state(terms["reconstruction"])
        self.commitment_tracker.update_state(terms["commitment"])
        # Every replica holds the global batch's perplexity; the tracker's cross-replica sum
        # of (value, count) keeps it.
        self.perplexity_tracker.update_state(self.quantizer.perplexity(counts))
        if "prior" in terms:
            self.prior_tracker.update_state(terms["prior"])
        return self.metrics_logs()

    # -- likelihoods --------------------------------------------------------------------------

    def _prior_nll(self, codes, labels):
        """-log p(codes) in nats per image under the prior (categorical over the codes)."""
        logits = self.prior.distribution_params(codes[..., None], labels)[..., 0, :]
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=codes, logits=tf.cast(logits, tf.float32)
        )
        return tf.reduce_sum(nll, axis=[1, 2])

    # -- codes --------------------------------------------------------------------------------

    def encode_codes_tensor(self, images):
        """Images (B, H, W, C) in [0, 1] -> int32 codes (B, h, w). Pure TensorFlow (export,
        `tf.data`)."""
        return self.quantizer.nearest(self.encoder(tf.cast(images, tf.float32), training=False))

    def decode_codes_tensor(self, codes):
        """int codes (B, h, w) -> float32 images (B, H, W, C) in [0, 1]: the likelihood's mean
        (bernoulli) or location clipped to [0, 1]. Pure TensorFlow."""
        raw = self.decoder(self.quantizer.lookup(codes), training=False)
        return self.image_likelihood.mean(self.image_likelihood.split(raw))

    def call(self, images, training=False):
        """Reconstructions through the codes: images in [0, 1] -> images in [0, 1]."""
        if isinstance(images, (list, tuple)):
            images = images[0]
        return self.decode_codes_tensor(self.encode_codes_tensor(images))

    def encode_codes(self, images, batch_size=256):
        """The codes of `images` (n, H, W, C) in [0, 1]: int32 NumPy (n, h, w). Batches of
        `batch_size` bound the (batch * h * w, K) distance matrix."""
        images = self._check_images_arg("images", images)
        return self._batched(self._encode_fn, images, batch_size, np.int32, self.code_shape)

    def decode_codes(self, codes, batch_size=256):
        """Images for int codes (n, h, w) (or (n, h, w, 1)): float32 NumPy (n, H, W, C) in [0, 1]."""
        codes = np.asarray(codes)
        if codes.ndim == 4 and codes.shape[-1] == 1:
            codes = codes[..., 0]
        if codes.ndim != 3 or codes.shape[1:] != self.code_shape or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(
                f"codes must be integers of shape (n, {', '.join(map(str, self.code_shape))}); got "
                f"{codes.dtype} array of shape {codes.shape}."
            )
        if codes.size and (codes.min() < 0 or codes.max() >= self.num_embeddings):
            raise ValueError(
                f"codes must be in 0..{self.num_embeddings - 1} (num_embeddings="
                f"{self.num_embeddings}); got values in {codes.min()}..{codes.max()}."
            )
        out = self._batched(self._decode_fn, codes.astype(np.int32), batch_size, np.float32,
                            self.image_shape)
        return np.clip(out, 0.0, 1.0)

    def reconstruct(self, x, labels=None, batch_size=256):
        """Images decoded from the codes of `x`: float32 NumPy in [0, 1]. (`labels` are accepted
        for the callbacks' sake; the autoencoder does not use them.)"""
        return self.decode_codes(self.encode_codes(x, batch_size), batch_size)

    def code_dataset(self, dataset):
        """`dataset` (batches of images in [0, 1], or (images, labels)) as batches of int32
        codes (batch, h, w, 1) (with the labels), the data of the prior. Encoded as the data
        are read, so the dataset's own shuffling and batching are kept."""
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(
                f"code_dataset takes a tf.data.Dataset of image batches; got {type(dataset).__name__}."
                " For arrays use encode_codes(images)."
            )
        self.check_data(dataset)

        def to_codes(images, *rest):
            codes = self.encode_codes_tensor(images)[..., None]
            return (codes, *rest) if rest else codes

        return dataset.map(to_codes, num_parallel_calls=tf.data.AUTOTUNE)

    @tf.function(reduce_retracing=True)
    def _encode_fn(self, images):
        return self.encode_codes_tensor(images)

    @tf.function(reduce_retracing=True)
    def _decode_fn(self, codes):
        return self.decode_codes_tensor(codes)

    def _batched(self, fn, inputs, batch_size, dtype, shape):
        batch_size = checks.positive_int("batch_size", batch_size)
        out = np.zeros((len(inputs),) + tuple(shape), dtype)
        for start in range(0, len(inputs), batch_size):
            out[start : start + batch_size] = fn(tf.constant(inputs[start : start + batch_size])).numpy()
        return out

    # -- generation ---------------------------------------------------------------------------

    generate_batch_size = 64

    @property
    def noise_shape(self):
        """The prior's noise: Gumbel noise per code position and code."""
        return tuple(self._require_prior().noise_shape)

    def generation_noise(self, seed, start, stop):
        return self._require_prior().generation_noise(seed, start, stop)

    def generate(self, n, seed=None, labels=None, batch_size=None, z=None, method="fast",
                 temperature=None, verbose="auto"):
        """`n` images, float32 (n, H, W, C) in [0, 1]: codes sampled from the prior (the fast
        cached sampler by default), then decoded. Same seed, same images. `temperature`: None
        takes the model's own (`vq.temperature`); < 1 sharpens the prior, 0 takes the most likely
        code at each step (then the seed no longer matters). Needs a prior (`set_prior`)."""
        self._require_prior()
        temperature = self.temperature if temperature is None else check_temperature(temperature)
        return super().generate(n, seed, labels, batch_size, z=z, verbose=verbose, method=method,
                                temperature=temperature)

    def images_from_noise(self, noise, labels=None, method="fast", temperature=None):
        if temperature is None:
            temperature = self.temperature
        levels = self._require_prior().images_from_noise(
            noise, labels, method=method, temperature=temperature
        )
        # The prior returns levels / (levels - 1) as images; back to integer codes.
        codes = np.rint(np.asarray(levels)[..., 0] * (self.num_embeddings - 1)).astype(np.int32)
        return self.decode_codes(codes)

    # -- evaluation ---------------------------------------------------------------------------

    @property
    def data_range(self):
        return "binary" if self.likelihood == "bernoulli" else "unit"

    def evaluate_elbo(self, data, labels=None, batch_size=256, verbose="auto"):
        """The negative ELBO and the reconstruction error on `data` (a dataset of images or
        (images, labels) batches, or a NumPy array with `labels`). The posterior is one-hot, so
        -ELBO = -log p(x | z_q) - log p(codes): the prior's NLL of the codes, or h * w * log K
        without a prior (the uniform prior of stage 1). Returns a dict: `nats_per_image`,
        `bits_per_dim` (comparable with the VAE and PixelCNN for 8-bit data), `reconstruction`
        and `prior_nats` (nats per image), `prior_bits_per_code`, `mse` and `psnr` (dB, of the
        mean squared error of the decoded images in [0, 1]), `num_examples`. verbose: a progress bar
        per batch, as in Keras' `predict`."""
        reconstruction, prior, squared = [], [], []
        batches = self._eval_batches(data, labels, batch_size)
        for images, y in progress.tracked(batches, progress.num_batches(data, batch_size), verbose):
            rec, pri, mse = self._eval_batch(images, y)
            reconstruction.append(rec.numpy())
            prior.append(pri.numpy())
            squared.append(mse.numpy())
        if not reconstruction:
            raise ValueError("evaluate_elbo got no images.")
        reconstruction = np.concatenate(reconstruction).astype(np.float64)
        prior = np.concatenate(prior).astype(np.float64)
        mse = float(np.mean(np.concatenate(squared)))
        nats = float(np.mean(reconstruction + prior))
        if self.likelihood == "gaussian":  # a density on [0, 1] in pixel units, as the VAE's
            nats_bits = nats + self.num_dims * math.log(255.0)
        else:
            nats_bits = nats
        h, w = self.code_shape
        return {
            "nats_per_image": nats,
            "bits_per_dim": nats_bits / (self.num_dims * math.log(2.0)),
            "reconstruction": float(np.mean(reconstruction)),
            "prior_nats": float(np.mean(prior)),
            "prior_bits_per_code": float(np.mean(prior)) / (h * w * math.log(2.0)),
            "mse": mse,
            "psnr": 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf,
            "num_examples": int(len(reconstruction)),
        }

    @tf.function(reduce_retracing=True)
    def _eval_batch(self, images, labels):
        terms = self.terms(images, labels)
        if "prior" in terms:
            prior = terms["prior"]
        else:
            h, w = self.code_shape
            prior = tf.fill(tf.shape(images)[:1], h * w * math.log(self.num_embeddings))
        decoded = self.decode_codes_tensor(terms["codes"])
        mse = tf.reduce_mean(tf.square(decoded - images), axis=[1, 2, 3])
        return terms["reconstruction"], prior, mse

    def _eval_batches(self, data, labels, batch_size):
        if isinstance(data, tf.data.Dataset):
            self.check_data(data)
            for batch in data:
                images, y = self._unpack(batch)
                yield tf.cast(images, tf.float32), None if y is None else tf.cast(y, tf.int32)
            return
        x = self._check_images_arg("data", data)
        self._check_values(x)
        labels = self.label_indices(labels, len(x))
        for start in range(0, len(x), batch_size):
            yb = None if labels is None else tf.constant(labels[start : start + batch_size])
            yield tf.constant(x[start : start + batch_size]), yb

    # -- data checks --------------------------------------------------------------------------

    def _check_values(self, images):
        self.check_images(np.asarray(images, np.float32), "a VQ-VAE")

    # -- serialisation ------------------------------------------------------------------------

    config_args = ("image_shape", "num_embeddings", "embedding_dim", "likelihood", "beta", "filters",
                   "residual_blocks", "downsamplings", "autoencoder_trainable", "temperature")

    @classmethod
    def from_config(cls, config):
        # Files saved before the temperature was an argument sampled at 1: they still do.
        return super().from_config({"temperature": 1.0, **config})

    def get_config(self):
        """The listed arguments, and the quantiser's settings, which it owns."""
        settings = ("codebook_update", "decay", "dead_code_steps")
        return {**super().get_config(), **{key: getattr(self.quantizer, key) for key in settings}}


# The split of a CPU budget between the two stages: the prior's share, and the same split in
# epochs. Issue 13 gave the prior 40 %; issue 27's lever screen (benchmarks/RESULTS.md, "VQ-VAE:
# the prior and its codes") found the prior underfitted and measured 60 % better (FID 80.6 ->
# 70.2 at 256 codes, 600 CPU-seconds). There, at 64 codes, the autoencoder made 1717 steps in
# 240 CPU-seconds and the prior 1712 in 360, both at batch 64: one epoch of the prior per epoch of
# the autoencoder.
PRIOR_SHARE = 0.6
PRIOR_EPOCHS_PER_EPOCH = 1.0


def prior_epochs(epochs):
    """Epochs of the prior after `epochs` of the autoencoder, at the measured split."""
    return max(1, round(checks.positive_int("epochs", epochs) * PRIOR_EPOCHS_PER_EPOCH))


def fit_prior(vq, data, epochs=1, batch_size=64, learning_rate=None, seed=None, callbacks=None,
              verbose=0, **prior_options):
    """Stage 2 in one call: encodes `data` (a dataset of image batches in [0, 1], or (images,
    labels) for a conditional VQ-VAE) once, fits a new PixelCNN prior on the codes (shuffled
    each epoch), attaches it to `vq` and returns it. Encoding once costs one forward pass of the
    encoder over the data, instead of one per epoch as `code_dataset` does. `prior_options` go
    to the PixelCNN (filters=, num_layers=, ...); `learning_rate` to its default Adam."""
    codes, labels = [], []
    for batch in data:
        images, y = (batch[0], batch[1] if len(batch) > 1 else None) \
            if isinstance(batch, (tuple, list)) else (batch, None)
        if vq.num_classes is not None and y is None:
            raise ValueError(
                f"this VQ-VAE is conditional on {vq.num_classes} classes: pass (images, labels) "
                "batches (keras_gen.data.load(..., with_labels=True)) so the prior learns them."
            )
        codes.append(vq._encode_fn(tf.cast(images, tf.float32)).numpy())
        labels.append(None if y is None else np.asarray(y))
    if not codes:
        raise ValueError("fit_prior got no images: pass a dataset of image batches.")
    codes = np.concatenate(codes)[..., None]
    tensors = (codes, np.concatenate(labels).astype(np.int32)) if vq.num_classes else codes
    dataset = (tf.data.Dataset.from_tensor_slices(tensors)
               .shuffle(len(codes), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    prior = PixelCNN(vq.code_shape + (1,), levels=vq.num_embeddings, num_classes=vq.num_classes,
                     seed=seed, **prior_options)
    optimizer = None
    if learning_rate is not None:
        optimizer = type(prior.default_optimizer("optimizer")).from_config(
            {**prior.default_optimizer("optimizer").get_config(), "learning_rate": learning_rate})
    prior.compile(optimizer=optimizer)
    prior.fit(dataset, epochs=epochs, callbacks=callbacks, verbose=verbose)
    vq.set_prior(prior)
    return prior


def fit_within_cpu_seconds(vq, epoch_data, cpu_seconds, prior_share=None, seed=None, verbose=0,
                           **prior_options):
    """Both stages within `cpu_seconds` of this process's CPU time (`time.process_time()`, all
    threads, so other load on the machine does not shorten the run): the compiled `vq`'s
    autoencoder, epoch after epoch, until 1 - `prior_share` of the budget is spent, then
    `fit_prior` on its codes for the rest (the encoding counted). `prior_share`: None takes
    the measured split, PRIOR_SHARE. `epoch_data(epoch)`: a dataset of image batches in [0, 1]
    ((images, labels) for a conditional VQ-VAE), shuffled afresh for each epoch.
    `prior_options` go to `fit_prior`. Returns {"vq_steps", "vq_epochs", "vq_cpu_seconds",
    "prior_steps", "prior_cpu_seconds"}; `vq` then generates."""
    prior_share = PRIOR_SHARE if prior_share is None else prior_share
    if not 0 < prior_share < 1:
        raise ValueError(f"prior_share must be between 0 and 1 (the prior's share of the budget); "
                         f"got {prior_share!r}.")
    cpu_seconds = checks.non_negative_number("cpu_seconds", cpu_seconds)
    from keras_gen.callbacks import TrainingBudget

    budget = TrainingBudget(cpu_seconds=cpu_seconds * (1 - prior_share))
    epoch = 0
    while not budget.spent:
        vq.fit(epoch_data(epoch), initial_epoch=epoch, epochs=epoch + 1, callbacks=[budget],
               verbose=verbose)
        epoch += 1
    stats = {"vq_steps": budget.steps, "vq_epochs": epoch, "vq_cpu_seconds": budget.used_cpu_seconds}
    # The rest of the budget, whatever the autoencoder's last epoch overran; encoding counts.
    budget = TrainingBudget(cpu_seconds=max(0.0, cpu_seconds - stats["vq_cpu_seconds"]))
    fit_prior(vq, epoch_data(epoch), epochs=1_000_000, seed=seed, callbacks=[budget],
              verbose=verbose, **prior_options)
    stats.update(prior_steps=budget.steps, prior_cpu_seconds=budget.used_cpu_seconds)
    return stats


def prior_stage(args, info):
    """The command's vqvae-prior: the VQ-VAE of --vqvae with its autoencoder frozen and a new
    PixelCNN prior over its codes, so one `fit` trains the prior and `model.keras` holds both
    stages."""
    from keras_gen import runs

    if not args.vqvae:
        raise runs.RunError(
            "--model vqvae-prior trains the prior of a trained VQ-VAE: pass --vqvae "
            "runs/vq/model.keras (written by keras-gen train --model vqvae)."
        )
    vq = runs.load_model(args.vqvae, flag="--vqvae")
    if not isinstance(vq, VQVAE):
        raise runs.RunError(f"--vqvae: {args.vqvae} holds a {type(vq).__name__}, not a VQVAE.")
    if tuple(vq.image_shape) != tuple(info.image_shape):
        raise runs.RunError(
            f"--vqvae: the VQ-VAE takes {tuple(vq.image_shape)} images; {args.dataset} has "
            f"{tuple(info.image_shape)}. Train the prior on the VQ-VAE's own data."
        )
    if bool(args.conditional) != (vq.num_classes is not None):
        raise runs.RunError(
            "--conditional: the prior is class-conditional exactly when the VQ-VAE is; "
            + ("pass --conditional." if vq.num_classes else "train the VQ-VAE with --conditional.")
        )
    options = {o.name: getattr(args, o.name) for o in PRIOR_FAMILY.options
               if o.constructor and getattr(args, o.name) is not None}
    vq.set_prior(PixelCNN(vq.code_shape + (1,), levels=vq.num_embeddings,
                          num_classes=vq.num_classes, seed=args.seed, **options))
    vq.autoencoder_trainable = False
    return vq


# Described like the VAE (data, metric, reconstruction callbacks), with its own model and options.
VQVAE_FAMILY = dataclasses.replace(
    VAE_FAMILY, name="vqvae", model=VQVAE, instances=VQVAE, likelihood="elbo", signatures="vqvae",
    options=(
        Option("num_embeddings", "codebook size K", int),
        Option("embedding_dim", "size of each code vector", int),
        LIKELIHOOD_OPTION,
        Option("beta", "commitment weight", float),
        Option("codebook_update", "codebook by moving averages or by its loss",
               choices=CODEBOOK_UPDATES),
        Option("filters", "base width of the networks", int),
        Option("with_prior", "then train the prior over the codes too: the VQ-VAE's run goes to "
               "OUT/autoencoder, the prior's to OUT/prior, whose model.keras generates",
               bool, constructor=False),
        Option("prior_epochs", "epochs of the prior with --with-prior (default: "
               "PRIOR_EPOCHS_PER_EPOCH times --epochs, the budget split measured in "
               "benchmarks/RESULTS.md)", int, constructor=False, metavar="EPOCHS"),
    ),
    sample_grid=False,  # no prior yet
)

# The options are the prior's (a PixelCNN); the model is the VQ-VAE of --vqvae with it.
PRIOR_FAMILY = dataclasses.replace(
    PIXELCNN_FAMILY, name="vqvae-prior", instances=None,  # what it trains is a VQVAE (vqvae)
    data_range="unit", metrics=("neg_elbo",), likelihood=None, signatures=None, build=prior_stage,
    options=(
        *PRIOR_OPTIONS,
        Option("vqvae", "the trained VQ-VAE whose codes the prior learns", constructor=False,
               metavar="MODEL.keras"),
    ),
)

FAMILY = (VQVAE_FAMILY, PRIOR_FAMILY)
