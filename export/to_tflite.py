"""`tflite(model_or_saved_model, path, quantize=...)`: one `.tflite` file per signature, builtin
ops only, with a JSON metadata file beside each."""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from export import files
from export.to_saved_model import read_metadata, write as write_saved_model
from export.signatures import ExportError, spec_for

QUANTIZE_MODES = (None, "float16", "dynamic", "int8")


def file_name(signature, quantize=None):
    """`generate.tflite`, `generate.float16.tflite`, ..."""
    return f"{signature}.tflite" if quantize is None else f"{signature}.{quantize}.tflite"


def _check_quantize(quantize):
    if quantize in ("none", "float32"):
        quantize = None
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"quantize must be one of None, 'float16', 'dynamic', 'int8'; got {quantize!r}."
        )
    return quantize


def _as_input_dict(data, inputs, signature):
    """Normalises one signature's representative data to {input name: array (N, ...)}."""
    names = list(inputs)
    if isinstance(data, dict):
        missing = [k for k in names if k not in data]
        if missing:
            raise ValueError(
                f"representative_data for signature {signature!r} lacks inputs {missing}; it "
                f"takes {names}."
            )
        arrays = {k: np.asarray(data[k]) for k in names}
    else:
        if isinstance(data, np.ndarray) or not isinstance(data, (tuple, list)):
            data = (data,)
        if len(data) != len(names):
            raise ValueError(
                f"representative_data for signature {signature!r} must give its inputs "
                f"{names} (a tuple in that order or a dict); got {len(data)} array(s)."
            )
        arrays = {k: np.asarray(v) for k, v in zip(names, data)}
    sizes = set()
    for name, array in arrays.items():
        spec = inputs[name]
        want = tuple(spec["shape"][1:])
        if tuple(array.shape[1:]) != want:
            raise ValueError(
                f"representative_data for {signature}.{name} must have shape (N, "
                f"{', '.join(map(str, want))}); got {array.shape}."
            )
        arrays[name] = array.astype(spec["dtype"])
        sizes.add(len(array))
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            f"representative_data for signature {signature!r}: every input needs the same, "
            f"non-zero number of examples; got sizes {sorted(sizes)}."
        )
    return arrays


def _representative_dataset(arrays):
    n = len(next(iter(arrays.values())))

    def gen():
        for i in range(n):
            yield {k: v[i : i + 1] for k, v in arrays.items()}

    return gen


_TF_OP = re.compile(r"\btf\.([A-Z][A-Za-z0-9_]*)")


def _convert(saved_dir, signature, quantize, arrays):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir), signature_keys=[signature])
    # Builtin ops only: no Flex (SELECT_TF_OPS), which current runtimes lack.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        # Integer kernels wherever they exist, float where not; inputs and outputs stay float32
        # (and int32 labels), so the app feeds the same tensors as for the float model.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        converter.representative_dataset = _representative_dataset(arrays)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as e:  # ConverterError: name the ops that would need Flex
        message = str(e)
        ops = sorted(set(_TF_OP.findall(message)))
        if ops or "not supported by the native TFLite runtime" in message or "Flex" in message:
            raise ExportError(
                f"signature {signature!r} needs TensorFlow ops that TFLite builtins lack: "
                f"{', '.join(ops) or '(see below)'}. Exported files must run on plain LiteRT "
                "runtimes (no Flex delegate): replace those ops in the model with builtin-"
                f"friendly ones.\nConverter said: {message[:1500]}"
            ) from e
        raise ExportError(f"TFLite conversion of signature {signature!r} failed: {message[:2000]}") from e


def builtin_ops(content):
    """The op names of a .tflite model (fails if the runtime would need Flex or custom ops)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    ops = sorted({d["op_name"] for d in interpreter._get_ops_details()})
    custom = [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    if custom:
        raise ExportError(f"the converted model uses non-builtin ops {custom}.")
    return ops


def _representative_for(signature, metadata, representative_data):
    if representative_data is None:
        raise ValueError(
            "quantize='int8' needs representative_data: typical inputs of each signature "
            f"(signature {signature!r} takes {list(metadata['signatures'][signature]['inputs'])}"
            "), e.g. latent vectors for generators, real images for encoders; a few hundred "
            "examples. For inputs drawn from the model's own prior use "
            "export.prior_samples(model, n=256)."
        )
    if isinstance(representative_data, dict) and signature in representative_data:
        representative_data = representative_data[signature]
    elif isinstance(representative_data, dict) and any(
        k in metadata["signatures"] for k in representative_data
    ):
        raise ValueError(
            f"representative_data has no entry for signature {signature!r}; it has "
            f"{sorted(representative_data)}. int8 needs data for every exported signature."
        )
    inputs = metadata["signatures"][signature]["inputs"]
    return _as_input_dict(representative_data, inputs, signature)


def tflite(
    model_or_saved_model,
    path,
    quantize=None,
    representative_data=None,
    signatures=None,
    overwrite=False,
):
    """Converts a keras-gen model (or a SavedModel written by `export.saved_model`) to TFLite.

    Args:
      model_or_saved_model: a keras-gen model, or the path of its exported SavedModel.
      path: a folder that receives one `<signature>[.<quantize>].tflite` per signature, each with
        a `.json` metadata file beside it; or a file name ending in `.tflite` when exactly one
        signature is exported (default: the first, the serving default).
      quantize: None (float32), "float16" (float16 weights), "dynamic" (int8 weights, dynamic
        range activations) or "int8" (integer kernels calibrated on `representative_data`;
        inputs and outputs stay float32).
      representative_data: for int8: per signature (a dict keyed by signature name, or the data
        itself when one signature is exported) the inputs as a tuple in signature order or a
        dict by input name, each an array (N, ...). See `prior_samples`.
      signatures: names of the signatures to convert (default: all).
      overwrite: replace existing files of the same names.

    Returns {signature name: path of its .tflite file}.
    """
    quantize = _check_quantize(quantize)
    path = Path(path)
    if isinstance(model_or_saved_model, (str, Path)):
        spec = None
        metadata = read_metadata(model_or_saved_model)
    else:
        spec = spec_for(model_or_saved_model)
        metadata = spec.metadata
    available = list(metadata["signatures"])
    if signatures is None:
        chosen = available[:1] if path.suffix == ".tflite" else available
    else:
        chosen = [signatures] if isinstance(signatures, str) else list(signatures)
        unknown = [s for s in chosen if s not in available]
        if unknown:
            raise ValueError(f"signatures must be among {available}; got unknown {unknown}.")
    if path.suffix == ".tflite":
        if len(chosen) != 1:
            raise ValueError(
                f"path {str(path)!r} names one .tflite file, but {len(chosen)} signatures "
                f"were asked for ({chosen}); pass a folder, or signatures='<name>'."
            )
        targets = {chosen[0]: path}
    else:
        targets = {s: path / file_name(s, quantize) for s in chosen}
    for target in targets.values():
        for p in (target, files.json_path(target)):
            files.check_writable(p, overwrite, "TFLite")
    # Check every input before the slow conversions.
    data = {
        s: _representative_for(s, metadata, representative_data) if quantize == "int8" else None
        for s in targets
    }
    with tempfile.TemporaryDirectory() as tmp:
        if spec is None:
            saved_dir = Path(model_or_saved_model)
        else:
            saved_dir = write_saved_model(spec, Path(tmp) / "saved_model")
        for signature, target in targets.items():
            content = _convert(saved_dir, signature, quantize, data[signature])
            ops = builtin_ops(content)
            files.write_bytes_atomic(target, content)
            files.write_json(
                files.json_path(target),
                {
                    **{k: v for k, v in metadata.items() if k != "signatures"},
                    "signature": signature,
                    **metadata["signatures"][signature],
                    "quantize": quantize,
                    "calibration_examples": (
                        None if data[signature] is None else len(next(iter(data[signature].values())))
                    ),
                    "tflite_ops": ops,
                },
            )
    return targets


def prior_samples(model, n=256, seed=0):
    """Representative data for the signatures whose inputs come from the model's own prior
    (GAN `generate`, VAE `decode`, PixelCNN `sample`): {signature: {input: array}}. Signatures
    that take images (encoders, `distribution`) need real images instead."""
    spec = spec_for(model)
    return {s.name: s.example_inputs(n, seed) for s in spec.signatures if s.prior_inputs}
