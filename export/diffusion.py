"""What to export for the diffusion family: `generate(noise[, label, guidance])`, the whole
sampling loop (`Diffusion.sample_tensor`: the EMA network, guidance and a deterministic sampler,
unrolled over a number of steps fixed at export) in one graph of builtin ops.

Registered under the family description's key "diffusion" (export/signatures.py imports this
module).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from export.signatures import ExportError, Signature, _IMAGE, _labels, builds

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
    conditional = model.num_classes is not None
    inputs = {"noise": tf.TensorSpec([None, *model.image_shape], tf.float32, name="noise")}
    if conditional:
        inputs["label"] = tf.TensorSpec([None], tf.int32, name="label")
        inputs["guidance"] = tf.TensorSpec([], tf.float32, name="guidance")

    def fn(noise, label=None, guidance=None):
        images = model.sample_tensor(noise, label, guidance, steps, sampler)
        return {"images": tf.cast(images, tf.float32)}

    def reference(noise, label=None, guidance=None):
        return {"images": model.generate(
            len(noise), labels=label, z=noise, steps=steps, sampler=sampler,
            guidance=None if guidance is None else float(guidance),
        )}

    def example_inputs(n, seed):
        out = {"noise": model.latent_vectors(n, seed)}
        if conditional:
            out["label"] = _labels(n, model.num_classes)
            out["guidance"] = np.float32(model.guidance)
        return out

    generate = Signature(
        "generate", inputs, fn, reference, example_inputs, ("images",), {"images": _IMAGE}
    )
    extra = {
        "noise_shape": [int(d) for d in model.image_shape],
        "noise_distribution": "standard_normal",
        "value_range": [0.0, 1.0],
        "training_image_range": "tanh",
        "sampler": sampler,
        "steps": steps,
        "prediction": model.prediction,
        "sampling": (
            f"generate(noise{', label, guidance' if conditional else ''}): noise N(0, 1) of "
            f"the image's shape; {steps} steps of {sampler} inside the graph"
            + (", guidance w: prediction = uncond + w (cond - uncond), 0 ignores the label"
               if conditional else "")
            + "; images in [0, 1]."
        ),
    }
    return [generate], extra
