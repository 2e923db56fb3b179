"""`tflite(model_or_saved_model, path, quantize=...)`: one `.tflite` file holding every signature
of the model (or one file per signature on request), builtin ops only, with a JSON metadata file
beside each: the model's metadata, each signature's inputs, outputs and GPU-delegate report."""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from export import files, gpu
from export.to_saved_model import read_metadata, write as write_saved_model
from export.signatures import ExportError, spec_for, write_tokenizer_beside

QUANTIZE_MODES = (None, "float16", "dynamic", "int8")

# Converter settings of quantize="dynamic", from `benchmarks/export_latency.py --family gan
# --details` on a trained DCGAN (RESULTS.md): the old dynamic-range quantizer runs 11x faster on
# x86 than the new one (1.17 vs 13.5 ms per image at batch 16) at the same error (3.2e-2 vs
# 4.4e-2 max abs, 50.7 vs 51.5 dB PSNR) and a smaller file, so it is the one used.
DYNAMIC_RANGE_CONVERTER = {"experimental_new_dynamic_range_quantizer": False}


MODEL_FILE = "model"  # the one-file export's name in a folder: model.tflite, model.float16.tflite


def file_name(stem, quantize=None):
    """`model.tflite`, `model.float16.tflite`, `generate.int8.tflite` (separate files), ..."""
    return f"{stem}.tflite" if quantize is None else f"{stem}.{quantize}.tflite"


def _check_quantize(quantize):
    if quantize in ("none", "float32"):
        quantize = None
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"quantize must be one of None, 'float16', 'dynamic', 'int8'; got {quantize!r}."
        )
    return quantize


def _as_input_dict(data, inputs, signature):
    """Normalises one signature's representative data to {input name: array (N, ...)};
    scalar inputs (a temperature, a start row) stay scalars."""
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
        if not spec["shape"]:
            if array.size != 1:
                raise ValueError(
                    f"representative_data for {signature}.{name} must be one value (the input "
                    f"is a scalar); got shape {array.shape}."
                )
            arrays[name] = array.reshape(()).astype(spec["dtype"])
            continue
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


def _examples(arrays):
    n = max(len(v) for v in arrays.values() if v.ndim)
    for i in range(n):
        yield {k: v if v.ndim == 0 else v[i : i + 1] for k, v in arrays.items()}


def _representative_dataset(data):
    """Calibration examples of several signatures, as the converter takes them for a
    multi-signature model: (signature key, inputs) pairs."""

    def gen():
        for signature, arrays in data.items():
            for example in _examples(arrays):
                yield signature, example

    return gen


_TF_OP = re.compile(r"\btf\.([A-Z][A-Za-z0-9_]*)")


def _convert(saved_dir, signatures, quantize, data):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir), signature_keys=list(signatures))
    # Builtin ops only: no Flex (SELECT_TF_OPS), which current runtimes lack.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        for key, value in DYNAMIC_RANGE_CONVERTER.items():
            setattr(converter, key, value)
    elif quantize == "int8":
        # Integer kernels wherever they exist, float where not; inputs and outputs stay float32
        # (and int32 labels), so the app feeds the same tensors as for the float model.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        converter.representative_dataset = _representative_dataset({s: data[s] for s in signatures})
    what = f"signature {signatures[0]!r}" if len(signatures) == 1 else f"signatures {list(signatures)}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as e:  # ConverterError: name the ops that would need Flex
        message = str(e)
        ops = sorted(set(_TF_OP.findall(message)))
        if ops or "not supported by the native TFLite runtime" in message or "Flex" in message:
            raise ExportError(
                f"{what} need(s) TensorFlow ops that TFLite builtins lack: "
                f"{', '.join(ops) or '(see below)'}. Exported files must run on plain LiteRT "
                "runtimes (no Flex delegate): replace those ops in the model with builtin-"
                f"friendly ones.\nConverter said: {message[:1500]}"
            ) from e
        raise ExportError(f"TFLite conversion of {what} failed: {message[:2000]}") from e


def builtin_ops(content, ops=None):
    """The op names of a .tflite model, every subgraph included (while-loop bodies too); fails
    if the runtime would need Flex or custom ops."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Loading with the builtin resolver only fails for ops plain runtimes lack.
    Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    ops = gpu.analyze(content)[0] if ops is None else ops
    custom = [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    if custom:
        raise ExportError(f"the converted model uses non-builtin ops {custom}.")
    return ops


def _representative_for(signature, metadata, representative_data):
    inputs = metadata["signatures"][signature]["inputs"]
    missing = representative_data is None or (
        isinstance(representative_data, dict) and not representative_data)
    if missing and "images" in inputs:
        raise ValueError(
            f"quantize='int8' needs representative_data for signature {signature!r}, which takes "
            "images: real ones, in [0, 1], of the kind the model is for (a few hundred), e.g. "
            "representative_data=inputs (or {" + repr(signature) + ": {'images': inputs}}) with "
            "the inputs of keras_gen.data.load_pairs(..., image_range='unit') for a translator. "
            "export.prior_samples cannot draw them."
        )
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
    return _as_input_dict(representative_data, inputs, signature)


def tflite(
    model_or_saved_model,
    path,
    quantize=None,
    representative_data=None,
    signatures=None,
    overwrite=False,
    separate_files=False,
):
    """Converts a keras-gen model (or a SavedModel written by `export.saved_model`) to TFLite:
    one `.tflite` file holding every signature, read on the device with
    `Interpreter(model_path=...).get_signature_runner(name)`.

    Args:
      model_or_saved_model: a keras-gen model, or the path of its exported SavedModel.
      path: a file name ending in `.tflite`, or a folder that receives `model[.<quantize>]
        .tflite`; a `.json` metadata file goes beside it (the model's metadata, each
        signature's inputs, outputs and GPU-delegate report, the ops used).
      quantize: None (float32), "float16" (float16 weights), "dynamic" (int8 weights, dynamic
        range activations; see DYNAMIC_RANGE_CONVERTER) or "int8" (integer kernels calibrated
        on `representative_data`; inputs and outputs stay float32).
      representative_data: for int8: per signature (a dict keyed by signature name, or the data
        itself when one signature is exported) the inputs as a tuple in signature order or a
        dict by input name, each an array (N, ...) (scalar inputs: one value). See
        `prior_samples`.
      signatures: names of the signatures to convert (default: all).
      overwrite: replace existing files of the same names.
      separate_files: one `<signature>[.<quantize>].tflite` per signature instead (`path` a
        folder, or a `.tflite` name when one signature is exported).

    Returns {signature name: path of the .tflite file that holds it}.
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
        chosen = available
    else:
        chosen = [signatures] if isinstance(signatures, str) else list(signatures)
        unknown = [s for s in chosen if s not in available]
        if unknown:
            raise ValueError(f"signatures must be among {available}; got unknown {unknown}.")
    if not separate_files:
        groups = {path if path.suffix == ".tflite" else path / file_name(MODEL_FILE, quantize): chosen}
    elif path.suffix == ".tflite":
        if len(chosen) != 1:
            raise ValueError(
                f"separate_files=True writes one file per signature, but path {str(path)!r} "
                f"names one .tflite file and {len(chosen)} signatures were asked for "
                f"({chosen}); pass a folder, or signatures='<name>'."
            )
        groups = {path: chosen}
    else:
        groups = {path / file_name(s, quantize): [s] for s in chosen}
    for target in groups:
        for p in (target, files.json_path(target)):
            files.check_writable(p, overwrite, "TFLite")
    # Check every input before the slow conversions.
    data = {
        s: _representative_for(s, metadata, representative_data) if quantize == "int8" else None
        for s in chosen
    }
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        if spec is None:
            saved_dir = Path(model_or_saved_model)
        else:
            saved_dir = write_saved_model(spec, Path(tmp) / "saved_model")
        for target, names in groups.items():
            content = _convert(saved_dir, names, quantize, data)
            ops, report = gpu.analyze(content)
            builtin_ops(content, ops)
            files.write_bytes_atomic(target, content)
            files.write_json(
                files.json_path(target),
                {
                    **{k: v for k, v in metadata.items() if k != "signatures"},
                    "signatures": {
                        s: {**metadata["signatures"][s], "gpu_delegate": report.get(s)} for s in names
                    },
                    "quantize": quantize,
                    "calibration_examples": (
                        None if quantize != "int8"
                        else {s: _count(data[s]) for s in names}
                    ),
                    "tflite_ops": ops,
                },
            )
            written.update({s: target for s in names})
            write_tokenizer_beside(metadata, target.parent)  # text models: ids need the vocabulary
    return written


def _count(arrays):
    return max(len(v) for v in arrays.values() if v.ndim)


def prior_samples(model, n=256, seed=0):
    """Representative data for the signatures whose inputs come from the model's own prior
    (GAN `generate`, VAE `decode`, PixelCNN `sample`): {signature: {input: array}}. Signatures
    that take images (encoders, `distribution`) need real images instead."""
    spec = spec_for(model)
    return {s.name: s.example_inputs(n, seed) for s in spec.signatures if s.prior_inputs}
