"""`saved_model(model, path)`: a SavedModel with one named signature per entry point.

The SavedModel holds only the variables the signatures use (e.g. the generator, not the
discriminator) and the metadata twice: as `assets/keras_gen_metadata.json` (readable without
TensorFlow) and as `loaded.metadata()` (a JSON string).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import tensorflow as tf

from export import files
from export.signatures import ExportError, check_finite, spec_for, write_tokenizer_beside

METADATA_ASSET = "keras_gen_metadata.json"


def _build_module(spec):
    functions = {s.name: s.tf_function() for s in spec.signatures}
    concrete = {name: fn.get_concrete_function() for name, fn in functions.items()}
    used = []
    seen = set()
    for cf in concrete.values():
        for v in cf.variables:
            if id(v) not in seen:
                seen.add(id(v))
                used.append(v)
    check_finite(used)

    root = tf.Module()
    root.keras_gen_variables = used  # tracked, so the captured weights are saved
    for name, fn in functions.items():
        setattr(root, name, fn)
    text = json.dumps(spec.metadata, indent=2)
    root.metadata = tf.function(lambda: tf.constant(text), input_signature=[])
    first = spec.signatures[0].name
    signatures = {"serving_default": concrete[first], **concrete}
    return root, signatures, text


def write(spec, path):
    """Writes the SavedModel of an ExportSpec to `path` (which must be free)."""
    root, signatures, text = _build_module(spec)
    with tempfile.TemporaryDirectory() as tmp:
        asset_file = Path(tmp) / METADATA_ASSET
        asset_file.write_text(text + "\n", encoding="utf-8")
        root.metadata_file = tf.saved_model.Asset(str(asset_file))
        with files.atomic_dir(path) as out:
            tf.saved_model.save(root, str(out), signatures=signatures)
            write_tokenizer_beside(spec.metadata, out)
    return Path(path)


def saved_model(model, path, overwrite=False):
    """Exports a keras-gen model as a SavedModel at `path` (a folder).

    Signatures (batch size None; the first is also `serving_default`):
      GAN: `generate(z[, label])` -> {"images": float32 in [0, 1]}.
      VAE: `decode(z[, label])` -> {"images"}; `encode(images[, label])` -> {"mean", "logvar"}.
      PixelCNN: `distribution(images[, label])` -> {"logits"} (per sub-pixel, over levels);
        `sample(noise[, label])` -> {"images"} (int32 levels) from uniform noise.

    Returns the path. Refuses an existing non-empty path unless `overwrite=True`.
    """
    files.check_writable(path, overwrite, "SavedModel")
    return write(spec_for(model), path)


def read_metadata(path):
    """The metadata of a SavedModel written by `saved_model` (no TensorFlow needed)."""
    asset = Path(path) / "assets" / METADATA_ASSET
    if not asset.exists():
        raise ExportError(
            f"{str(path)!r} is not a SavedModel written by export.saved_model (no "
            f"assets/{METADATA_ASSET}). Export the keras-gen model with export.saved_model first."
        )
    return files.read_json(asset)
