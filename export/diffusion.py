"""What to export for the diffusion family: `generate(noise[, label, guidance])`, the whole
sampling loop (`Diffusion.sample_tensor`: the EMA network, guidance and a deterministic sampler,
unrolled over a number of steps fixed at export) in one graph of builtin ops.

Registered under the family description's key "diffusion" (export/signatures.py imports this
module).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from export.signatures import (TOKENIZER_FILE, ExportError, Signature, _IMAGE, _example_prompts,
                               _labels, builds)
from export.tokenize import tokenize
from export.xnnpack import xnnpack_friendly

# Samplers that run from the starting noise alone (no random draws inside the graph).
DETERMINISTIC_SAMPLERS = ("dpm++2m", "ddim")


@builds("diffusion")
def diffusion_spec(model, steps=None, sampler=None):
    """(signatures, metadata) of a `keras_gen.models.Diffusion`. steps, sampler: the loop baked
    into the graph (default: the model's own `steps` and `sampler`; "ddpm" models export with
    "dpm++2m", as an exported graph draws no noise)."""
    sampler = sampler or (model.sampler if model.sampler in DETERMINISTIC_SAMPLERS else "dpm++2m")
    if sampler not in DETERMINISTIC_SAMPLERS:
        raise ExportError(
            f"sampler must be one of {DETERMINISTIC_SAMPLERS} for export (an exported graph holds "
            f"no random ops, and {sampler!r} draws noise at every step); got {sampler!r}."
        )
    steps, _, _, _ = model.sampling_options(steps, None, sampler, 0.0)
    text = model.text
    conditional = model.conditional
    inputs = {"noise": tf.TensorSpec([None, *model.image_shape], tf.float32, name="noise")}
    if text:  # token ids of export.tokenize (string ops are not LiteRT builtins)
        inputs["tokens"] = tf.TensorSpec([None, model.sequence_length], tf.int32, name="tokens")
        prompts_of = {}  # ids -> the prompt that made them, so Keras reads the strings itself
    elif conditional:
        inputs["label"] = tf.TensorSpec([None], tf.int32, name="label")
    if conditional:
        inputs["guidance"] = tf.TensorSpec([], tf.float32, name="guidance")

    # Group norms, upsampling and attention in constant-shape form, so LiteRT's XNNPACK delegate
    # takes the network whole (export/xnnpack.py).
    network = xnnpack_friendly(model.ema_network)

    def fn(noise, label=None, guidance=None, tokens=None):
        images = model.sample_tensor(noise, label if tokens is None else tokens, guidance, steps,
                                     sampler, network=network)
        return {"images": tf.cast(images, tf.float32)}

    def reference(noise, label=None, guidance=None, tokens=None):
        options = dict(z=noise, steps=steps, sampler=sampler,
                       guidance=None if guidance is None else float(guidance))
        if tokens is None:
            return {"images": model.generate(len(noise), labels=label, **options)}
        keys = [tuple(int(i) for i in row) for row in np.asarray(tokens)]
        if all(k in prompts_of for k in keys):  # the same strings through the Keras tokenizer
            return {"images": model.generate(prompts=[prompts_of[k] for k in keys], **options)}
        return {"images": np.asarray(model.images_from_noise(
            noise, np.asarray(tokens, np.int32), steps, options["guidance"], sampler))}

    def example_inputs(n, seed):
        out = {"noise": model.latent_vectors(n, seed)}
        if text:
            prompts = _example_prompts(model, n)
            ids = np.asarray(tokenize(prompts, model.vocabulary, model.sequence_length), np.int32)
            prompts_of.update({tuple(int(i) for i in row): p for row, p in zip(ids, prompts)})
            out["tokens"] = ids
        elif conditional:
            out["label"] = _labels(n, model.num_classes)
        if conditional:
            out["guidance"] = np.float32(model.guidance)
        return out

    generate = Signature(
        "generate", inputs, fn, reference, example_inputs, ("images",), {"images": _IMAGE}
    )
    condition = "tokens" if text else "label"
    extra = {
        "noise_shape": [int(d) for d in model.image_shape],
        "noise_distribution": "standard_normal",
        "value_range": [0.0, 1.0],
        "training_image_range": "tanh",
        "sampler": sampler,
        "steps": steps,
        "prediction": model.prediction,
        "sampling": (
            f"generate(noise{f', {condition}, guidance' if conditional else ''}): noise N(0, 1) of "
            f"the image's shape; {steps} steps of {sampler} inside the graph"
            + (f", guidance w: prediction = uncond + w (cond - uncond), 0 ignores the {condition}"
               if conditional else "")
            + (f"; tokens: int32 ids of {TOKENIZER_FILE}'s rule (export.tokenize)" if text else "")
            + "; images in [0, 1]."
        ),
    }
    if text:
        extra["tokenizer"] = {"file": TOKENIZER_FILE, "sequence_length": int(model.sequence_length),
                              "vocabulary": list(model.vocabulary)}
    return [generate], extra
