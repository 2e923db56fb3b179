"""The VAE family: `VAE` trains any encoder and decoder by maximising the evidence lower bound
(ELBO); `ConvVAE` builds a convolutional pair (`keras_gen.networks.conv_encoder`/`conv_decoder`)
for the image sizes DCGAN takes. `keras_gen.callbacks.KLWarmup` anneals the KL weight beta.

Data contract: images in [0, 1] (`keras_gen.data.load(..., image_range="unit")`), binarised
{0, 1} (`image_range="binary"`) for likelihood="bernoulli" when its nats are to be compared with
papers, and 8-bit levels k / 255 (`image_range="unit"`) for likelihood="discretized_logistic".
"""

from __future__ import annotations

import math

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks, progress
from keras_gen import losses as kg_losses
from keras_gen import networks
from keras_gen.families import FILTERS_OPTION, LATENT_DIM_OPTION, FamilyDescription, Option
from keras_gen.models.base import GenerativeModel, Sampler, num_replicas

# Purpose of the posterior noise drawn in a step (see GenerativeModel.step_noise).
_POSTERIOR_PURPOSE = 0
# The encoder's log-variance is clamped so exp() can neither overflow nor make z exactly `mean`.
POSTERIOR_LOGVAR_RANGE = (-20.0, 10.0)
# Decoded images of size batch x samples per call of the IWAE estimator (bounds its memory).
_IWAE_IMAGES_PER_CALL = 4096


class ImageAutoencoder(Sampler, GenerativeModel):
    """What the VAE and the VQ-VAE share: an image likelihood (`kg_losses.ImageLikelihood`), the
    trackers of its loss, the check of the data it models, and a compile() whose loss is the
    model's own."""

    # compile(loss=...) error: what to choose in the constructor instead
    OWN_LOSS = "choose likelihood= and beta= in the constructor and call compile() without loss=."

    def _likelihood_parts(self, likelihood, observation_variance=None):
        self.image_likelihood = kg_losses.ImageLikelihood(likelihood, observation_variance)
        self.add_trackers(loss="loss", reconstruction="reconstruction_loss")

    def compile(self, optimizer=None, **kwargs):
        """Default: Adam(1e-3). The loss is the model's own: choose the likelihood and beta in
        the constructor, not compile(loss=...)."""
        if kwargs.get("loss") is not None:
            raise ValueError(self.OWN_LOSS)
        kwargs.pop("loss", None)
        optimizer = keras.optimizers.get(optimizer or self.default_optimizer())
        super().compile(optimizer=self.loss_scaled(optimizer), **kwargs)

    def check_images(self, images, what):
        self.image_likelihood.check_images(images, what, self.data_range)

    def check_batch(self, images, *rest):
        """Images in the range the likelihood models (`_check_values`)."""
        self._check_values(images)

    def _check_images_arg(self, name, x):
        x = np.asarray(x, np.float32)
        if x.ndim != 4 or x.shape[1:] != self.image_shape:
            raise ValueError(
                f"{name} must be images (n, {', '.join(map(str, self.image_shape))}) in [0, 1]; "
                f"got shape {x.shape}."
            )
        return x


@keras.saving.register_keras_serializable(package="keras_gen")
class VAE(ImageAutoencoder):
    # The image shape of a subclass that builds its networks itself (build_networks).
    network_image_shape = None

    """A variational autoencoder trained with `model.fit`.

    Each step minimises, per image, -E_q[log p(x | z)] + beta * KL(q(z | x) || N(0, I)) with a
    diagonal Gaussian q, one reparameterised sample, the KL in closed form and the reconstruction
    term summed over pixels (with beta = 1, the negative ELBO in nats).

    Args:
      encoder: images `(batch, H, W, C)` in [0, 1] (as `[images, labels]` when conditional) to
        two tensors `[mean, logvar]`, each `(batch, latent_dim)`.
      decoder: latent vectors `(batch, latent_dim)` (`[z, labels]` when conditional) to the
        likelihood's raw parameters `(batch, H, W, P * C)`: P = 1 for "bernoulli" (logits) and
        for "gaussian" with a fixed `observation_variance` (means), P = 2 for "gaussian" with a
        learned variance (means, then log-variances) and "discretized_logistic" (means, then
        log-scales), each block of C channels.
      latent_dim: size of the latent vectors.
      likelihood: "bernoulli", "gaussian" or "discretized_logistic" (see the module docstring
        for the data each expects).
      beta: weight of the KL term (beta-VAE); a `KLWarmup` callback can anneal it from 0.
      observation_variance: for "gaussian", a fixed variance of every pixel (e.g. 0.01), or None
        to let the decoder predict it.
      num_classes: number of classes for a conditional VAE (both networks take the label).
      seed: seed of the training noise; two runs with the same seed and data end alike.
    """

    OWN_LOSS = ("a VAE trains on its own loss, the negative ELBO: choose the likelihood and beta "
                "in the constructor (VAE(..., likelihood='bernoulli', beta=1.0)) and call "
                "compile() without loss=.")

    network_args = ("encoder", "decoder")

    def __init__(
        self,
        encoder,
        decoder,
        latent_dim,
        likelihood="bernoulli",
        beta=1.0,
        observation_variance=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        checks.choice("likelihood", likelihood, kg_losses.IMAGE_LIKELIHOODS)
        latent_dim = checks.positive_int("latent_dim", latent_dim)
        beta = check_beta(beta)
        if observation_variance is not None:
            if likelihood != "gaussian":
                raise ValueError(
                    "observation_variance is a setting of likelihood='gaussian'; got "
                    f"likelihood={likelihood!r}. Leave observation_variance=None."
                )
            if not isinstance(observation_variance, (int, float)) or not observation_variance > 0:
                raise ValueError(
                    "observation_variance must be a positive number (e.g. 0.01) or None for a "
                    f"learned variance; got {observation_variance!r}."
                )
            observation_variance = float(observation_variance)
        if num_classes is not None:
            num_classes = checks.positive_int("num_classes", num_classes)
        params_per_channel = kg_losses.ImageLikelihood(likelihood, observation_variance).params_per_channel
        # encoder=None: a named network choice (ConvVAE) builds both once the settings are in place
        if encoder is None and self.network_image_shape is None:
            raise ValueError(
                "encoder and decoder must be Keras models (or use a VAE with named networks, "
                "keras_gen.models.ConvVAE(image_shape, ...)); got None."
            )
        image_shape = self.network_image_shape if encoder is None else _decoder_image_shape(
            decoder, latent_dim, num_classes, params_per_channel, likelihood
        )
        super().__init__(image_shape, num_classes=num_classes, seed=seed, **kwargs)
        self.latent_dim = latent_dim
        if encoder is None:
            with self.policy_scope():
                encoder, decoder = self.build_networks(params_per_channel)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.observation_variance = observation_variance
        self.params_per_channel = params_per_channel
        # The target beta (the config) and the beta in use, a variable so that a callback can
        # change it while the compiled step runs.
        self.target_beta = beta
        self.beta_variable = keras.Variable(beta, trainable=False, dtype="float32", name="beta")
        self._check_encoder()

        self._likelihood_parts(likelihood, observation_variance)
        self.add_trackers(kl="kl_loss")
        self.built = True

    # -- set-up -------------------------------------------------------------------------------

    @property
    def beta(self):
        """The KL weight in use now (a float); assign to change it, also during training."""
        return float(keras.ops.convert_to_numpy(self.beta_variable))

    @beta.setter
    def beta(self, value):
        self.beta_variable.assign(check_beta(value))

    def _check_encoder(self):
        outputs = self.probe_network(
            self.encoder, tf.zeros((2,) + self.image_shape, tf.float32),
            f"the encoder cannot take images of shape {self.image_shape} (the decoder's output "
            "shape)", "images")
        shapes = (
            [tuple(t.shape) for t in outputs] if isinstance(outputs, (list, tuple)) else None
        )
        if shapes != [(2, self.latent_dim)] * 2:
            got = shapes if shapes is not None else f"one tensor of shape {tuple(outputs.shape)}"
            raise ValueError(
                "the encoder must return two tensors [mean, logvar], each (batch, latent_dim="
                f"{self.latent_dim}); for a batch of 2 it returned {got}."
            )

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    # -- the networks -------------------------------------------------------------------------

    def _inputs(self, tensor, labels):
        return tensor if labels is None else [tensor, labels]

    def _labels(self, labels):
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(
                    "labels were given, but this VAE is unconditional (num_classes=None)."
                )
            return None
        if labels is None:
            raise ValueError(
                f"this VAE is conditional on {self.num_classes} classes: pass labels, one int "
                "per image."
            )
        return tf.cast(labels, tf.int32)

    def _posterior(self, images, labels, training=False):
        mean, logvar = self.encoder(self._inputs(images, labels), training=training)
        mean = tf.cast(mean, tf.float32)
        logvar = tf.clip_by_value(tf.cast(logvar, tf.float32), *POSTERIOR_LOGVAR_RANGE)
        return mean, logvar

    def encode(self, x, labels=None):
        """The posterior q(z | x): `(mean, logvar)`, each `(batch, latent_dim)` float32 tensors.
        Works on tensors inside `tf.function` (no NumPy, no random ops)."""
        x = tf.cast(x, tf.float32)
        return self._posterior(x, self._labels(labels))

    def decoder_params(self, z, labels=None):
        """The likelihood's raw parameters for latent vectors `z`, as a dict of float32 tensors
        `(batch, H, W, C)`: {"logits"} (bernoulli), {"mean", "logvar"} (gaussian; only "mean"
        with a fixed observation_variance) or {"mean", "log_scale"} (discretized_logistic)."""
        z = tf.cast(z, tf.float32)
        raw = self.decoder(self._inputs(z, self._labels(labels)), training=False)
        return self.image_likelihood.split(raw)

    def decode(self, z, labels=None):
        """Images in [0, 1] for latent vectors `z`: the likelihood's mean (bernoulli) or its
        location clipped to [0, 1] (gaussian, discretized_logistic). A float32 tensor; works
        inside `tf.function`."""
        return self.image_likelihood.mean(self.decoder_params(z, labels))

    def call(self, inputs, training=False):
        """Reconstructs images through the posterior mean: `model(x)` or `model([x, labels])`."""
        images, labels = self._unpack(inputs) if isinstance(inputs, (list, tuple)) else (inputs, None)
        images = tf.cast(images, tf.float32)
        labels = self._labels(labels)
        mean, _ = self._posterior(images, labels, training=training)
        raw = self.decoder(self._inputs(mean, labels), training=training)
        return self.image_likelihood.mean(self.image_likelihood.split(raw))

    # -- the ELBO -----------------------------------------------------------------------------

    def elbo_terms(self, images, labels, noise, training=False):
        """(reconstruction, kl) per example, in nats, for posterior noise `noise`
        `(batch, latent_dim)`: reconstruction = -log p(x | z) at z = mean + exp(logvar / 2) *
        noise, kl = KL(q(z | x) || N(0, I)) in closed form. The ELBO is -(reconstruction + kl)."""
        images = tf.cast(images, tf.float32)
        mean, logvar = self._posterior(images, labels, training=training)
        z = _reparameterize(mean, logvar, tf.cast(noise, tf.float32))
        raw = self.decoder(self._inputs(z, labels), training=training)
        reconstruction = -self.image_likelihood.log_prob(images, self.image_likelihood.split(raw))
        return reconstruction, kg_losses.gaussian_kl(mean, logvar)

    def train_step(self, data):
        images, labels = self._unpack(data)
        images = tf.cast(images, tf.float32)
        batch = tf.shape(images)[0]
        noise = self.step_noise(
            self.optimizer.iterations, _POSTERIOR_PURPOSE, batch, (self.latent_dim,)
        )
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            reconstruction, kl = self.elbo_terms(images, labels, noise, training=True)
            per_example = reconstruction + self.beta_variable * kl
            loss = tf.reduce_sum(per_example) / self.global_batch_size(batch)
            if self.losses:  # weight regularisers of the user's networks
                loss = loss + tf.add_n(self.losses) / num_replicas()
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        self.apply_gradients(self.optimizer, grads, variables)
        return self._update_trackers(per_example, reconstruction, kl)

    def test_step(self, data):
        images, labels = self._unpack(data)
        images = tf.cast(images, tf.float32)
        # A fixed step key: validation noise is the same at every evaluation.
        noise = self.step_noise(
            tf.constant(-1, tf.int64), _POSTERIOR_PURPOSE, tf.shape(images)[0], (self.latent_dim,)
        )
        reconstruction, kl = self.elbo_terms(images, labels, noise, training=False)
        return self._update_trackers(reconstruction + self.beta_variable * kl, reconstruction, kl)

    def _update_trackers(self, per_example, reconstruction, kl):
        self.loss_tracker.update_state(per_example)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return self.metrics_logs()

    # -- data checks --------------------------------------------------------------------------

    def _check_values(self, images):
        self.check_images(images, "a VAE")

    # -- sampling and reconstruction ----------------------------------------------------------

    @property
    def data_range(self):
        return "binary" if self.likelihood == "bernoulli" else "unit"

    def images_from_noise(self, noise, labels=None):
        """Decoded from z ~ N(0, I): the likelihood's mean (see `decode`)."""
        return self.decode(tf.constant(noise), None if labels is None else tf.constant(labels))

    def reconstruct(self, x, labels=None, batch_size=256):
        """Images decoded from the posterior mean of `x` (n, H, W, C): float32 NumPy in [0, 1]."""
        x = self._check_images_arg("x", x)
        labels = self.label_indices(labels, len(x))

        def run(xb, yb):
            mean, _ = self.encode(xb, yb)
            return self.decode(mean, yb)

        return self._batched(run, x, labels, len(x), batch_size)

    def interpolate(self, x_a, x_b, steps=8, labels=None):
        """Decodes `steps` points on the line between the posterior means of `x_a` and `x_b`.

        One image each (H, W, C) gives (steps, H, W, C); batches of n give (n, steps, H, W, C).
        For a conditional VAE, `labels` (one int, or one per pair) conditions both ends.
        """
        steps = checks.positive_int("steps", steps)
        single = np.ndim(x_a) == 3
        x_a = self._check_images_arg("x_a", x_a[None] if single else x_a)
        x_b = self._check_images_arg("x_b", x_b[None] if single else x_b)
        if x_a.shape != x_b.shape:
            raise ValueError(
                f"x_a and x_b must have the same shape; got {x_a.shape} and {x_b.shape}."
            )
        n = len(x_a)
        labels = self.label_indices(labels, n)
        y = None if labels is None else tf.constant(labels)
        mean_a = keras.ops.convert_to_numpy(self.encode(x_a, y)[0])
        mean_b = keras.ops.convert_to_numpy(self.encode(x_b, y)[0])
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]
        z = ((1.0 - t) * mean_a[:, None] + t * mean_b[:, None]).reshape(n * steps, -1)
        y_all = None if labels is None else np.repeat(labels, steps)
        out = self.generate(n * steps, labels=y_all, z=z)
        out = out.reshape((n, steps) + self.image_shape)
        return out[0] if single else out

    def _batched(self, fn, inputs, labels, n, batch_size):
        out = np.zeros((n,) + self.image_shape, np.float32)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            yb = None if labels is None else tf.constant(labels[start:stop])
            out[start:stop] = keras.ops.convert_to_numpy(fn(tf.constant(inputs[start:stop]), yb))
        return np.clip(out, 0.0, 1.0)

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate_elbo(self, data, labels=None, batch_size=256, seed=0, verbose="auto"):
        """The ELBO on `data` (a dataset of images or (images, labels), or a NumPy array with
        `labels`), one posterior sample per image with the KL in closed form (beta is ignored:
        this is the true bound). Returns a dict: `nats_per_image` (-ELBO, an upper bound on the
        negative log-likelihood), `bits_per_dim`, `reconstruction` and `kl` (nats per image),
        `num_examples`. The noise of batch i is the first sample `log_likelihood` uses for it
        with the same seed and batching. verbose: a progress bar per batch, as in Keras' `predict`."""
        reconstruction, kl = [], []
        batches = self._eval_batches(data, labels, batch_size)
        total = progress.num_batches(data, batch_size)
        for i, (images, y) in enumerate(progress.tracked(batches, total, verbose)):
            noise = self._eval_noise(seed, i, 1, tf.shape(images)[0])[0]
            rec, k = self._elbo_batch(images, y, noise)
            reconstruction.append(rec.numpy())
            kl.append(k.numpy())
        reconstruction = np.concatenate(reconstruction).astype(np.float64)
        kl = np.concatenate(kl).astype(np.float64)
        nats = float(np.mean(reconstruction + kl))
        return {
            "nats_per_image": nats,
            "bits_per_dim": self._bits_per_dim(nats),
            "reconstruction": float(np.mean(reconstruction)),
            "kl": float(np.mean(kl)),
            "num_examples": int(len(kl)),
        }

    def log_likelihood(self, data, labels=None, num_samples=100, batch_size=256, seed=0,
                       verbose="auto"):
        """The importance-weighted bound (IWAE, Burda et al. 2016) with `num_samples` posterior
        samples per image: log p(x) >= E[log (1/k) sum_j p(x, z_j) / q(z_j | x)]. It is at least
        the ELBO in expectation and tightens as k grows; k = 1 is the ELBO with a Monte Carlo
        KL. Returns a dict: `nats_per_image` (the negative bound), `bits_per_dim`,
        `num_samples`, `num_examples`. verbose: a progress bar per batch, as in Keras' `predict`."""
        num_samples = checks.positive_int("num_samples", num_samples)
        bounds = []
        batches = self._eval_batches(data, labels, batch_size)
        total = progress.num_batches(data, batch_size)
        for i, (images, y) in enumerate(progress.tracked(batches, total, verbose)):
            batch = int(images.shape[0])
            noise = self._eval_noise(seed, i, num_samples, batch)
            mean, logvar = self._posterior_batch(images, y)
            chunk = max(1, _IWAE_IMAGES_PER_CALL // batch)
            log_weights = [
                self._log_weights_batch(images, y, mean, logvar, noise[j : j + chunk])
                for j in range(0, num_samples, chunk)
            ]
            log_weights = tf.concat(log_weights, axis=0)  # (num_samples, batch)
            bound = tf.reduce_logsumexp(log_weights, axis=0) - math.log(num_samples)
            bounds.append(bound.numpy())
        nats = float(-np.mean(np.concatenate(bounds).astype(np.float64)))
        return {
            "nats_per_image": nats,
            "bits_per_dim": self._bits_per_dim(nats),
            "num_samples": num_samples,
            "num_examples": int(sum(len(b) for b in bounds)),
        }

    def _bits_per_dim(self, nats):
        """Nats per image to bits per pixel value. For "gaussian" (a density on [0, 1]) the
        density is first rescaled to pixel units [0, 255]; it is comparable with discrete
        likelihoods only on dequantised data."""
        if self.likelihood == "gaussian":
            nats = nats + self.num_dims * math.log(255.0)
        return nats / (self.num_dims * math.log(2.0))

    def _eval_noise(self, seed, batch_index, num_samples, batch):
        seed = tf.constant([checks.seed(seed), batch_index], tf.int64)
        return tf.random.stateless_normal((num_samples, batch, self.latent_dim), seed=seed)

    @tf.function(reduce_retracing=True)
    def _elbo_batch(self, images, labels, noise):
        return self.elbo_terms(images, labels, noise, training=False)

    @tf.function(reduce_retracing=True)
    def _posterior_batch(self, images, labels):
        return self._posterior(images, labels)

    @tf.function(reduce_retracing=True)
    def _log_weights_batch(self, images, labels, mean, logvar, noise):
        """log p(x, z_j) - log q(z_j | x) for noise (samples, batch, latent_dim)."""
        samples, batch = tf.shape(noise)[0], tf.shape(noise)[1]
        z = _reparameterize(mean[None], logvar[None], noise)
        flat_z = tf.reshape(z, (-1, self.latent_dim))
        repeated = tf.reshape(
            tf.tile(images[None], [samples] + [1] * len(images.shape)),
            (-1,) + self.image_shape,
        )
        flat_labels = None if labels is None else tf.reshape(tf.tile(labels[None], [samples, 1]), [-1])
        raw = self.decoder(self._inputs(flat_z, flat_labels), training=False)
        log_px = tf.reshape(self.image_likelihood.log_prob(repeated, self.image_likelihood.split(raw)), (samples, batch))
        zeros = tf.zeros_like(z)
        log_pz = kg_losses.diagonal_gaussian_log_prob(z, zeros, zeros)
        log_qz = kg_losses.diagonal_gaussian_log_prob(z, mean[None], logvar[None])
        return log_px + log_pz - log_qz

    def _eval_batches(self, data, labels, batch_size):
        """(images, labels or None) float32/int32 tensors per batch, with the data checked."""
        if isinstance(data, tf.data.Dataset):
            self.check_data(data)
            for batch in data:
                images, y = self._unpack(batch)
                self._check_values(images.numpy())
                yield tf.cast(images, tf.float32), None if y is None else tf.cast(y, tf.int32)
            return
        x = np.asarray(data)
        self.check_data(x)
        x = x.astype(np.float32)
        labels = self.label_indices(labels, len(x))
        for start in range(0, len(x), batch_size):
            yb = None if labels is None else tf.constant(labels[start : start + batch_size])
            yield tf.constant(x[start : start + batch_size]), yb

    # -- serialisation ------------------------------------------------------------------------

    config_args = ("latent_dim", "likelihood", "observation_variance")

    def get_config(self):
        return {**super().get_config(), "beta": self.target_beta}



@keras.saving.register_keras_serializable(package="keras_gen")
class ConvVAE(VAE):
    """A VAE with convolutional networks for square images whose side is a multiple of 4 from 8
    to 128, with 1 or 3 channels (the sizes DCGAN takes).

    Encoder: inputs rescaled to [-1, 1], a 3x3 convolution, then strided 4x4 convolutions (SiLU)
    halving the side down to 7, 4 or 3 pixels, and two dense heads, mean and log-variance.
    Decoder: the mirror image with transposed convolutions, ending in a 3x3 convolution to the
    likelihood's parameters. No batch normalisation, so the ELBO of an image does not depend on
    the rest of its batch. Conditional models add a label embedding to the encoder's features
    and to the decoder's input. The model's seed also fixes the initial weights.

    Its default likelihood is "discretized_logistic", the model of 8-bit images in [0, 1]
    (`VAE`'s own default, "bernoulli", suits binarised data).
    """

    def __init__(
        self,
        image_shape,
        latent_dim=32,
        num_classes=None,
        likelihood="discretized_logistic",
        filters=32,
        **kwargs,
    ):
        self.size_named_networks(image_shape, filters)
        # VAE checks its own arguments, then calls build_networks with them in place.
        super().__init__(
            None, None, latent_dim, likelihood=likelihood, num_classes=num_classes, **kwargs)

    def build_networks(self, params_per_channel):
        """The convolutional encoder and decoder for this VAE's settings, seeded by the model's
        seed."""
        encoder = networks.conv_encoder(self.image_shape, self.latent_dim, self.num_classes, self.filters,
                                        seed=self.seed)
        decoder = networks.conv_decoder(self.image_shape, self.latent_dim, self.num_classes, self.filters,
                                        params_per_channel, seed=self.seed)
        return encoder, decoder

    network_args = ()  # built from image_shape and filters
    config_args = ("image_shape", "filters")



# --------------------------------------------------------------------------------------------
# Helpers


def check_beta(beta):
    """The KL weight: a finite number >= 0 (1.0 gives the ELBO)."""
    return checks.non_negative_number("beta", beta, " (1.0 is the ELBO)")


def _reparameterize(mean, logvar, noise):
    """z = mean + exp(logvar / 2) * noise with noise ~ N(0, I) drawn by the caller, so gradients
    reach the encoder through a sample (Kingma & Welling 2014)."""
    return mean + tf.exp(0.5 * logvar) * noise


def _decoder_image_shape(decoder, latent_dim, num_classes, params_per_channel, likelihood):
    """The image shape, from the decoder's output on two latent vectors."""
    z = tf.zeros((2, latent_dim), tf.float32)
    y = tf.zeros((2,), tf.int32)
    try:
        raw = decoder(z if num_classes is None else [z, y], training=False)
    except Exception as e:
        raise ValueError(
            f"the decoder cannot take latent vectors of size latent_dim={latent_dim}"
            + (" with labels [z, labels]" if num_classes else "")
            + f": {str(e)[:500]}"
        ) from e
    shape = tuple(getattr(raw, "shape", ()))
    if len(shape) != 4 or shape[-1] % params_per_channel:
        raise ValueError(
            f"the decoder must return likelihood parameters (batch, H, W, {params_per_channel} * "
            f"channels) for likelihood={likelihood!r}; got shape {shape}."
        )
    return (shape[1], shape[2], shape[3] // params_per_channel)


def reconstruction_callbacks(args, model, out, load):
    """The training callbacks of the autoencoders (VAE, VQ-VAE): reconstructions of held
    images each epoch; the VAE's --kl-warmup-epochs."""
    from keras_gen import callbacks as kg_callbacks

    extra = [kg_callbacks.Reconstructions(load(batch_size=16, shuffle=False, seed=args.seed),
                                          log_dir=str(out / "logs"), png_dir=str(out / "samples"), n=16)]
    if args.kl_warmup_epochs:
        extra.append(kg_callbacks.KLWarmup(epochs=args.kl_warmup_epochs))
    return extra


LIKELIHOOD_OPTION = Option(
    "likelihood", "p(x|z) of the images", choices=kg_losses.IMAGE_LIKELIHOODS)

FAMILY = FamilyDescription(
    name="vae",
    model=ConvVAE,
    instances=VAE,
    data_range="unit",
    metrics=("neg_elbo",),
    likelihood="elbo_iwae",
    options=(
        LATENT_DIM_OPTION,
        FILTERS_OPTION,
        LIKELIHOOD_OPTION,
        Option("beta", "weight of the KL term", float),
        Option("kl_warmup_epochs", "anneal beta from 0 over this many epochs (keras-gen's "
               "KLWarmup callback)", int, constructor=False),
    ),
    callbacks=reconstruction_callbacks,
    signatures="vae",
)
