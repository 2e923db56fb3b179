"""What to export for each keras-gen family: the named signatures (inputs, outputs, the graph
function and its Keras reference) and the metadata an app needs.

Every signature is deterministic: noise, labels and images are inputs, never drawn inside.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import keras
import tensorflow as tf

import keras_gen
from keras_gen import families
from keras_gen.models.base import float32_copy
from export.tokenize import tokenize, write_tokenizer
from export.xnnpack import xnnpack_friendly

METADATA_VERSION = 1


class ExportError(ValueError):
    """Raised when a model cannot be exported; the message says what to do."""


@dataclasses.dataclass
class Signature:
    """One exported entry point.

    fn: keyword inputs (tensors) -> dict of output tensors; traced into the graph.
    reference: keyword inputs (NumPy) -> dict of NumPy outputs, computed by the Keras model the
      way its users call it; exported outputs are validated against it.
    example_inputs: (n, seed) -> dict of NumPy inputs a user would feed (for validation and, for
      inputs drawn from a known prior, int8 calibration).
    compare: output name -> (transform applied to both sides before comparing, peak value for
      PSNR or None to use the reference's range).
    prior_inputs: True when example_inputs come from the model's own prior (latent vectors,
      labels, uniform noise), so they are valid int8 calibration data; False when the inputs are
      images, which must come from real data.
    exact: the outputs are discrete draws (PixelCNN `sample`): float32 exports must match
      exactly; in quantised exports a tiny change of a probability may flip one draw, and later
      sub-pixels follow it, so their samples are reported but not held to a tolerance (their
      `distribution` signature is).
    """

    name: str
    inputs: dict
    fn: Callable
    reference: Callable
    example_inputs: Callable
    outputs: tuple
    compare: dict
    prior_inputs: bool = True
    exact: bool = False  # discrete outputs (sampled levels): see validation.py

    def tf_function(self):
        names = list(self.inputs)

        def traced(*args):
            return self.fn(**dict(zip(names, args)))

        traced.__name__ = self.name
        return tf.function(traced, input_signature=list(self.inputs.values()), autograph=False)

    def describe(self):
        def spec(s):
            return {"shape": [None if d is None else int(d) for d in s.shape], "dtype": s.dtype.name}

        return {
            "inputs": {k: spec(v) for k, v in self.inputs.items()},
            "outputs": list(self.outputs),
        }


@dataclasses.dataclass
class ExportSpec:
    family: str
    model: keras.Model
    signatures: list
    metadata: dict

    def signature(self, name):
        for s in self.signatures:
            if s.name == name:
                return s
        raise ExportError(
            f"signature must be one of {[s.name for s in self.signatures]}; got {name!r}."
        )


# --------------------------------------------------------------------------------------------
# Signature builders, keyed by the `signatures` of the families' descriptions
# (keras_gen.families): the library names the key, export registers the builder, so the library
# never imports export/.

BUILDERS = {}


def builds(key):
    """Registers a signature builder, model -> (signatures, extra metadata), for the families
    whose description has `signatures=key`."""

    def register(builder):
        BUILDERS[key] = builder
        return builder

    return register


def family_of(model):
    """The export key of a keras-gen model's family (its description's `signatures`)."""
    description = families.of(model)
    if description is not None and description.signatures in BUILDERS:
        return description.signatures
    raise ExportError(
        "model must be a trained keras-gen model (keras_gen.models.GAN/DCGAN, VAE, PixelCNN or "
        "VQVAE); "
        f"got {type(model).__module__}.{type(model).__name__}. Load it with "
        "keras.models.load_model('model.keras') after `import keras_gen`, or build one with "
        "keras_gen.models."
    )


def spec_for(model):
    """The ExportSpec of a keras-gen model (raises ExportError for anything else). A model
    trained under a mixed dtype policy is exported (and validated) as its float32 copy: LiteRT's
    builtin ops take no bfloat16, and the variables are float32 already."""
    family = family_of(model)
    model = float32_copy(model)
    signatures, extra = BUILDERS[family](model)
    metadata = {
        "format_version": METADATA_VERSION,
        "family": family,
        "model_class": type(model).__name__,
        "keras_gen_version": keras_gen.__version__,
        "image_shape": [int(d) for d in model.image_shape],
        "num_classes": model.num_classes,
        **extra,
        "signatures": {s.name: s.describe() for s in signatures},
    }
    return ExportSpec(family, model, signatures, metadata)


def check_finite(variables):
    """Refuses to export weights that hold NaN or infinity (a diverged run)."""
    bad = []
    for v in variables:
        value = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            bad.append(v.name)
    if bad:
        raise ExportError(
            f"the model has non-finite weights (NaN or inf) in {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            + ": training diverged. Export a checkpoint from before the divergence, or retrain "
            "with a lower learning rate."
        )


def _labels(n, num_classes):
    return (np.arange(n) % num_classes).astype(np.int32)


_IMAGE = (None, 1.0)  # images in [0, 1]: compared as they are, PSNR peak 1


# --------------------------------------------------------------------------------------------
# GAN: generate(z[, label]) -> images in [0, 1]


@builds("gan")
def _gan_spec(model):
    # Transposed convolutions in their sub-pixel form, which XNNPACK runs at any batch size.
    network = xnnpack_friendly(model.sampling_generator)
    conditional = model.num_classes is not None
    text = bool(getattr(model, "text", False))
    tanh = model.image_range == "tanh"
    inputs = {"z": tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")}
    if conditional:
        inputs["label"] = tf.TensorSpec([None], tf.int32, name="label")
    if text:  # token ids of export.tokenize (string ops are not LiteRT builtins)
        inputs["tokens"] = tf.TensorSpec([None, model.sequence_length], tf.int32, name="tokens")
        prompts_of = {}  # ids -> the prompt that made them, so Keras reads the strings itself

    def fn(z, label=None, tokens=None):
        condition = label if tokens is None else tokens
        images = network(z if condition is None else [z, condition], training=False)
        images = tf.cast(images, tf.float32)
        if tanh:  # the same mapping as GAN.to_unit_range
            images = (images + 1.0) / 2.0
        return {"images": tf.clip_by_value(images, 0.0, 1.0)}

    def reference(z, label=None, tokens=None):
        if tokens is None:
            return {"images": model.generate(len(z), labels=label, z=z)}
        keys = [tuple(int(i) for i in row) for row in np.asarray(tokens)]
        if all(k in prompts_of for k in keys):  # the same strings through the Keras tokenizer
            return {"images": model.generate(prompts=[prompts_of[k] for k in keys], z=z)}
        return {"images": model.generate(len(z), z=z, conditions=np.asarray(tokens, np.int32))}

    def example_inputs(n, seed):
        out = {"z": model.latent_vectors(n, seed)}
        if conditional:
            out["label"] = _labels(n, model.num_classes)
        if text:
            prompts = _example_prompts(model, n)
            ids = np.asarray(tokenize(prompts, model.vocabulary, model.sequence_length), np.int32)
            prompts_of.update({tuple(int(i) for i in row): p for row, p in zip(ids, prompts)})
            out["tokens"] = ids
        return out

    generate = Signature(
        "generate", inputs, fn, reference, example_inputs, ("images",), {"images": _IMAGE}
    )
    extra = {
        "latent_dim": int(model.latent_dim),
        "latent_distribution": "standard_normal",
        "value_range": [0.0, 1.0],
        "training_image_range": model.image_range,
    }
    if text:
        extra["tokenizer"] = {"file": TOKENIZER_FILE, "sequence_length": int(model.sequence_length),
                              "vocabulary": list(model.vocabulary)}
    return [generate], extra


TOKENIZER_FILE = "tokenizer.json"


def _example_prompts(model, n):
    """n prompts for a text model's validation: the captions `adapt` kept, or the vocabulary's
    words three at a time."""
    prompts = list(model.sample_prompts) or [
        " ".join(model.vocabulary[k : k + 3]) for k in range(0, max(len(model.vocabulary), 1), 3)
    ] or [""]
    return [prompts[i % len(prompts)] for i in range(n)]


def write_tokenizer_beside(metadata, folder):
    """Writes `tokenizer.json` (export.write_tokenizer) into `folder` when the metadata is a text
    model's; returns its path or None."""
    rule = metadata.get("tokenizer")
    if not rule:
        return None
    path = Path(folder) / rule["file"]
    write_tokenizer(path, rule["vocabulary"], rule["sequence_length"])
    return path


# --------------------------------------------------------------------------------------------
# VAE: decode(z[, label]) -> images in [0, 1]; encode(images[, label]) -> mean, logvar


@builds("vae")
def _vae_spec(model):
    conditional = model.num_classes is not None
    z_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
    image_spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
    label_spec = tf.TensorSpec([None], tf.int32, name="label")

    def decode_fn(z, label=None):
        return {"images": tf.cast(model.decode(z, labels=label), tf.float32)}

    def encode_fn(images, label=None):
        mean, logvar = model.encode(images, labels=label)
        return {"mean": tf.cast(mean, tf.float32), "logvar": tf.cast(logvar, tf.float32)}

    def numpy_dict(d):
        return {k: keras.ops.convert_to_numpy(v) for k, v in d.items()}

    def decode_ref(z, label=None):
        return numpy_dict(decode_fn(tf.constant(z), None if label is None else tf.constant(label)))

    def encode_ref(images, label=None):
        return numpy_dict(
            encode_fn(tf.constant(images), None if label is None else tf.constant(label))
        )

    def decode_inputs(n, seed):
        out = {"z": model.latent_vectors(n, seed)}
        if conditional:
            out["label"] = _labels(n, model.num_classes)
        return out

    def encode_inputs(n, seed):
        # Images the model itself decodes: in range and shaped like the data it was trained on.
        z = decode_inputs(n, seed)
        out = {"images": decode_ref(**z)["images"]}
        if conditional:
            out["label"] = z["label"]
        return out

    decode_inputs_spec = {"z": z_spec, **({"label": label_spec} if conditional else {})}
    encode_inputs_spec = {"images": image_spec, **({"label": label_spec} if conditional else {})}
    signatures = [
        Signature(
            "decode", decode_inputs_spec, decode_fn, decode_ref, decode_inputs, ("images",),
            {"images": _IMAGE},
        ),
        Signature(
            "encode", encode_inputs_spec, encode_fn, encode_ref, encode_inputs,
            ("mean", "logvar"), {"mean": (None, None), "logvar": (None, None)},
            prior_inputs=False,
        ),
    ]
    extra = {
        "latent_dim": int(model.latent_dim),
        "latent_distribution": "standard_normal",
        "value_range": [0.0, 1.0],
        "likelihood": getattr(model, "likelihood", None),
    }
    return signatures, extra


# --------------------------------------------------------------------------------------------
# PixelCNN: distribution(images[, label]) -> per-sub-pixel parameters;
# sample(uniform[, label], temperature) and complete(images, start_row, uniform[, label],
# temperature) -> levels: PixelCNN.sample_tensor, the cached sampler, as one graph


@builds("pixelcnn")
def _pixelcnn_spec(model):
    from keras_gen.models import pixelcnn_likelihoods as lik

    conditional = model.num_classes is not None
    h, w, c = model.image_shape
    levels = int(model.levels)
    likelihood = model.likelihood
    params_name = "logits" if likelihood == "categorical" else "mixture_params"
    label = {"label": tf.TensorSpec([None], tf.int32, name="label")} if conditional else {}
    images_spec = tf.TensorSpec([None, h, w, c], tf.int32, name="images")
    uniform_spec = tf.TensorSpec([None, h, w, c, levels], tf.float32, name="uniform")
    temperature_spec = tf.TensorSpec([], tf.float32, name="temperature")
    start_row_spec = tf.TensorSpec([], tf.int32, name="start_row")

    def distribution_fn(images, label=None):
        return {params_name: tf.cast(model.distribution_params(images, labels=label), tf.float32)}

    def sample_fn(uniform, temperature, label=None):
        return {"images": model.sample_tensor(uniform, label, temperature)}

    def complete_fn(images, start_row, uniform, temperature, label=None):
        return {"images": model.sample_tensor(uniform, label, temperature, images, start_row)}

    def distribution_ref(images, label=None):
        params = model.distribution_params(
            tf.constant(images), labels=None if label is None else tf.constant(label)
        )
        return {params_name: keras.ops.convert_to_numpy(params).astype(np.float32)}

    def sample_ref(uniform, temperature, label=None):
        return {"images": model.sample_from_noise(uniform, label, float(temperature))}

    def complete_ref(images, start_row, uniform, temperature, label=None):
        return {"images": model.sample_from_noise(
            uniform, label, float(temperature), images, int(start_row)
        )}

    def level_probabilities(params):
        # Logits are defined up to a constant and mixture parameters are not unique: compare
        # the probabilities of the levels, which is what sampling uses.
        return np.exp(lik.level_log_probs(tf.constant(params), likelihood, levels).numpy())

    def distribution_inputs(n, seed):
        rng = np.random.default_rng(seed)
        out = {"images": rng.integers(0, levels, (n, h, w, c)).astype(np.int32)}
        if conditional:
            out["label"] = _labels(n, model.num_classes)
        return out

    def sample_inputs(n, seed):
        out = {"uniform": model.uniform_noise(seed, 0, n).numpy()}
        if conditional:
            out["label"] = _labels(n, model.num_classes)
        out["temperature"] = np.float32(1.0)
        return out

    def complete_inputs(n, seed):
        return {
            "images": distribution_inputs(n, seed)["images"],
            "start_row": np.int32(h // 2),
            **sample_inputs(n, seed),
        }

    as_unit = {"images": (lambda x: x.astype(np.float32) / (levels - 1), 1.0)}
    signatures = [
        Signature(
            "distribution", {"images": images_spec, **label}, distribution_fn, distribution_ref,
            distribution_inputs, (params_name,), {params_name: (level_probabilities, 1.0)},
            prior_inputs=False,
        ),
        Signature(
            "sample", {"uniform": uniform_spec, **label, "temperature": temperature_spec},
            sample_fn, sample_ref, sample_inputs, ("images",), as_unit, exact=True,
        ),
        Signature(
            "complete",
            {
                "images": images_spec, "start_row": start_row_spec, "uniform": uniform_spec,
                **label, "temperature": temperature_spec,
            },
            complete_fn, complete_ref, complete_inputs, ("images",), as_unit,
            prior_inputs=False, exact=True,
        ),
    ]
    extra = {
        "levels": levels,
        "value_range": [0, levels - 1],
        "likelihood": likelihood,
        "variant": getattr(model, "variant", None),
        "sampling": (
            "sample(uniform, temperature): uniform noise in (0, 1), shape (batch, H, W, C, "
            "levels); each sub-pixel, in raster order (row, column, then channel), takes the "
            "level maximising log p(level) - temperature * log(-log(uniform)) (Gumbel-max: the "
            "maximiser of log p(level) / temperature - log(-log(uniform)); temperature 0 is the "
            "most likely level), as PixelCNN.sample does. complete(images, start_row, ...): rows from start_row on are "
            "sampled, the rows above are kept."
        ),
    }
    return signatures, extra


# --------------------------------------------------------------------------------------------
# Pix2Pix: translate(images in [0, 1]) -> images in [0, 1]


@builds("pix2pix")
def _pix2pix_spec(model):
    """One signature, `translate`: images in [0, 1] in, images in [0, 1] out, whatever range the
    model trained in (an app feeds pixels / 255, as to every other exported model); the graph
    maps them to the model's range and back."""
    network = xnnpack_friendly(model.generator)  # see export/xnnpack.py
    tanh = model.image_range == "tanh"
    inputs = {"images": tf.TensorSpec([None, *model.input_image_shape], tf.float32, name="images")}

    def fn(images):
        x = images * 2.0 - 1.0 if tanh else images
        out = tf.cast(network(x, training=False), tf.float32)
        if tanh:  # the same mapping as Pix2Pix.to_unit_range
            out = (out + 1.0) / 2.0
        return {"images": tf.clip_by_value(out, 0.0, 1.0)}

    def reference(images):
        return {"images": model.translate(images)}

    def example_inputs(n, seed):
        # Uniform noise of the input's shape, to check that the graph computes what the model
        # does; int8 calibration (and a validation on the images a model is for) needs real
        # inputs: tflite's representative_data, validate's inputs.
        rng = np.random.default_rng(seed)
        return {"images": rng.uniform(0.0, 1.0, (n, *model.input_image_shape)).astype(np.float32)}

    translate = Signature(
        "translate", inputs, fn, reference, example_inputs, ("images",), {"images": _IMAGE},
        prior_inputs=False,
    )
    extra = {
        "input_shape": [int(d) for d in model.input_image_shape],
        "input_range": [0.0, 1.0],
        "value_range": [0.0, 1.0],
        "training_image_range": model.image_range,
        "task": model.task,
    }
    return [translate], extra


# --------------------------------------------------------------------------------------------
# VQ-VAE: decode(codes) -> images; encode(images) -> codes; generate(uniform[, label]) -> images
# (the prior's sampler, then the decoder), the last only once a prior is attached


@builds("vqvae")
def _vqvae_spec(model):
    h, w = model.code_shape
    k = int(model.num_embeddings)
    prior = model.prior
    conditional = model.num_classes is not None
    label = {"label": tf.TensorSpec([None], tf.int32, name="label")} if conditional else {}

    def decode_fn(codes):
        return {"images": tf.cast(model.decode_codes_tensor(codes), tf.float32)}

    def encode_fn(images):
        return {"codes": model.encode_codes_tensor(images)}

    def generate_fn(uniform, label=None):
        codes = prior.sample_tensor(uniform, label, model.temperature)[..., 0]
        return {"images": tf.cast(model.decode_codes_tensor(codes), tf.float32)}

    def decode_inputs(n, seed):
        return {"codes": np.random.default_rng(seed).integers(0, k, (n, h, w)).astype(np.int32)}

    def encode_inputs(n, seed):
        # Images the model itself decodes: in range and shaped like its training data.
        return {"images": model.decode_codes(decode_inputs(n, seed)["codes"])}

    def generate_inputs(n, seed):
        out = {"uniform": prior.uniform_noise(seed, 0, n).numpy()}
        if conditional:
            out["label"] = _labels(n, model.num_classes)
        return out

    def generate_ref(uniform, label=None):
        gumbel = -tf.math.log(-tf.math.log(tf.constant(uniform, tf.float32)))  # as sample_tensor
        return {"images": model.generate(len(uniform), labels=label, z=gumbel.numpy())}

    signatures = [
        Signature(
            "decode", {"codes": tf.TensorSpec([None, h, w], tf.int32, name="codes")}, decode_fn,
            lambda codes: {"images": model.decode_codes(codes)}, decode_inputs, ("images",),
            {"images": _IMAGE},
        ),
        Signature(
            "encode",
            {"images": tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")},
            encode_fn, lambda images: {"codes": model.encode_codes(images)}, encode_inputs,
            ("codes",), {"codes": (lambda x: x.astype(np.float32), float(k - 1))},
            prior_inputs=False, exact=True,
        ),
    ]
    if prior is not None:
        signatures.append(Signature(
            "generate",
            {"uniform": tf.TensorSpec([None, h, w, 1, k], tf.float32, name="uniform"), **label},
            generate_fn, generate_ref, generate_inputs, ("images",), {"images": _IMAGE},
            exact=True,
        ))
    extra = {
        "num_embeddings": k,
        "code_shape": [h, w],
        "value_range": [0.0, 1.0],
        "likelihood": model.likelihood,
        "sampling": (
            "generate(uniform): uniform noise in (0, 1), shape (batch, h, w, 1, num_embeddings); "
            "the prior draws each code in raster order as the one maximising log p(code) - "
            f"{model.temperature:g} * log(-log(uniform)) (Gumbel-max at the model's temperature, "
            f"{model.temperature:g}), then the decoder maps the codes to images."
            if prior is not None else
            "no prior attached: decode(codes) only (train one with keras-gen train --model "
            "vqvae-prior)"
        ),
    }
    return signatures, extra


# Families whose builders live in a module of their own register when it is imported.
from export import diffusion as _diffusion  # noqa: E402,F401
