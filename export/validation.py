"""`validate(model, exported_path)`: runs the Keras model, the SavedModel and every TFLite file on
the same inputs, at batch 1 and at a larger batch, and fails beyond tolerance.

Tolerances (against the Keras model, outputs in [0, 1] for images and probabilities):
max absolute error 1e-4 for float32 (SavedModel and TFLite), 1e-2 for float16 and dynamic-range
TFLite; PSNR at least 30 dB for int8.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from export import files, gpu
from export.signatures import ExportError, spec_for

FLOAT_TOLERANCE = {None: 1e-4, "float16": 1e-2, "dynamic": 1e-2}
INT8_PSNR_FLOOR = 30.0


class ValidationError(AssertionError):
    """An exported model differs from the Keras model beyond tolerance; `.report` has the rows."""

    def __init__(self, report):
        self.report = report
        failed = [r for r in report.rows if not r.passed]
        super().__init__(
            f"{len(failed)} exported result(s) differ from the Keras model beyond tolerance:\n"
            + report.table()
        )


@dataclasses.dataclass
class Row:
    format: str  # "keras", "saved_model", "tflite", "tflite.float16", ...
    path: str
    signature: str
    batch: int
    max_abs_error: float
    psnr: float  # dB; inf when identical
    limit: str
    passed: bool
    size_bytes: int | None = None
    latency_ms: float | None = None  # per image, at this batch size
    gpu_delegate: dict | None = None  # TFLite: export.gpu's report of this signature


@dataclasses.dataclass
class ValidationReport:
    rows: list

    @property
    def passed(self):
        return all(r.passed for r in self.rows)

    def table(self):
        header = (
            "format", "signature", "batch", "size", "max error", "PSNR dB", "ms/image", "limit",
            "ok", "GPU delegate",
        )
        lines = []
        for r in self.rows:
            lines.append((
                r.format,
                r.signature,
                str(r.batch),
                "-" if r.size_bytes is None else _size(r.size_bytes),
                f"{r.max_abs_error:.2e}",
                "inf" if math.isinf(r.psnr) else f"{r.psnr:.1f}",
                "-" if r.latency_ms is None else f"{r.latency_ms:.3f}",
                r.limit,
                "yes" if r.passed else "NO",
                gpu.summary(r.gpu_delegate),
            ))
        widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(header)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        out += [fmt.format(*l) for l in lines]
        return "\n".join(out)

    def summary(self):
        """One line per file and signature: worst error and PSNR over the batch sizes, latency
        at the larger batch."""
        merged = {}
        for r in self.rows:
            key = (r.format, r.path, r.signature)
            if key not in merged:
                merged[key] = dataclasses.replace(r)
            else:
                m = merged[key]
                m.max_abs_error = max(m.max_abs_error, r.max_abs_error)
                m.psnr = min(m.psnr, r.psnr)
                m.passed = m.passed and r.passed
                if r.latency_ms is not None:
                    m.latency_ms, m.batch = r.latency_ms, r.batch
        batches = sorted({r.batch for r in self.rows})
        return (
            ValidationReport(list(merged.values())).table()
            + f"\n(max error, PSNR: worst over batch sizes {batches}; ms/image at batch "
            f"{max(batches)})"
        )

    def __str__(self):
        return self.table()


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _dir_size(path):
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def compare(reference, output, transform=None, peak=None):
    """(max absolute error, PSNR in dB) of `output` against `reference`."""
    reference = np.asarray(reference)
    output = np.asarray(output)
    if reference.shape != output.shape:
        raise ExportError(
            f"exported output has shape {output.shape}, the Keras model's {reference.shape}."
        )
    if transform is not None:
        reference, output = transform(reference), transform(output)
    reference = reference.astype(np.float64)
    output = output.astype(np.float64)
    error = float(np.max(np.abs(reference - output))) if reference.size else 0.0
    mse = float(np.mean((reference - output) ** 2)) if reference.size else 0.0
    if peak is None:
        peak = float(reference.max() - reference.min()) or 1.0
    psnr = math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)
    if not np.all(np.isfinite(output)):
        error, psnr = math.inf, -math.inf
    return error, psnr


def _judge(quantize, error, psnr, tolerances):
    """Float formats: a max absolute error; int8: a PSNR floor (dB)."""
    overrides = {None if k in ("float32", "none") else k: v for k, v in (tolerances or {}).items()}
    limit = {**FLOAT_TOLERANCE, "int8": INT8_PSNR_FLOOR, **overrides}[quantize]
    if quantize == "int8":
        return f"PSNR>={limit:g}", psnr >= limit
    return f"err<={limit:g}", error <= limit


def _median_ms_per_image(call, batch, repeats):
    start = time.perf_counter()
    call()  # warm-up (and TFLite allocation at this size)
    if time.perf_counter() - start > 1.0:
        repeats = 1  # a slow call (an eager sampling loop): one timed run is enough
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)) / batch


# --------------------------------------------------------------------------------------------
# Runners: inputs dict of NumPy -> outputs dict of NumPy


def saved_model_runner(path, signature):
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures[signature]

    def run(inputs):
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}

    run.loaded = loaded  # keep the object (and its variables) alive
    return run


def tflite_runner(path, signature, num_threads=None):
    """Runs one signature of a .tflite file with `ai_edge_litert`'s signature runner, which
    resizes the inputs to each call's batch size."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=num_threads or os.cpu_count())
    runner = interpreter.get_signature_runner(signature)
    dtypes = {name: d["dtype"] for name, d in runner.get_input_details().items()}

    def run(inputs):
        outputs = runner(**{k: np.asarray(inputs[k], dtypes[k]) for k in dtypes})
        return {k: np.array(v) for k, v in outputs.items()}

    run.interpreter = interpreter  # keep it alive
    return run


# --------------------------------------------------------------------------------------------


def find_artifacts(exported_path):
    """[(format, quantize, path, signatures or None)] under `exported_path`: a SavedModel folder,
    a .tflite file, a folder holding them (as `python -m export` writes), or a list of these."""
    if isinstance(exported_path, (list, tuple)):
        return [a for p in exported_path for a in find_artifacts(p)]
    path = Path(exported_path)
    if not path.exists():
        raise FileNotFoundError(f"exported_path {str(path)!r} does not exist.")
    found = []
    if path.is_file():
        tflite_files = [path] if path.suffix == ".tflite" else []
        saved = []
    elif (path / "saved_model.pb").exists():
        tflite_files, saved = [], [path]
    else:
        saved = sorted(p.parent for p in path.rglob("saved_model.pb"))
        tflite_files = sorted(path.rglob("*.tflite"))
    for s in saved:
        found.append(("saved_model", None, s, None))
    for f in tflite_files:
        meta_file = files.json_path(f)
        if not meta_file.exists():
            raise ExportError(
                f"{str(f)!r} has no metadata file {meta_file.name} beside it; export it with "
                "export.tflite, which writes both."
            )
        meta = files.read_json(meta_file)
        quantize = meta.get("quantize")
        found.append(("tflite" if quantize is None else f"tflite.{quantize}", quantize, f, list(meta["signatures"])))
    if not found:
        raise ExportError(
            f"exported_path {str(path)!r} holds no SavedModel (saved_model.pb) and no .tflite file."
        )
    return found


def _load_model(model):
    if isinstance(model, (str, Path)):
        import keras_gen  # noqa: F401  (registers the classes)

        return keras.models.load_model(str(model))
    return model


def validate(
    model,
    exported_path,
    n=64,
    seed=0,
    repeats=5,
    num_threads=None,
    tolerances=None,
    raise_on_failure=True,
    inputs=None,
):
    """Compares every exported file under `exported_path` with the Keras model.

    Runs each signature on the same inputs (latent vectors / noise from `seed`, labels cycling
    through the classes, images decoded by the model or random levels) at batch 1 and batch `n`,
    and reports, per format, signature and batch: max absolute error and PSNR against Keras,
    file size, median latency per image, and for TFLite whether the signature suits the GPU
    delegate (export.gpu; the blocking ops otherwise). Raises ValidationError beyond tolerance (float32
    1e-4, float16 / dynamic 1e-2, int8 PSNR >= 30 dB; `tolerances`, e.g. {"dynamic": 5e-2,
    "int8": 35.0}, overrides them) unless `raise_on_failure=False`. `exported_path` may also be
    a list of such paths. `inputs`: {signature: {input name: array (N >= n, ...)}} to validate
    on instead of the drawn ones, for signatures that take images (e.g. a translator's real
    inputs, the int8 calibration data); the first n are used.

    Returns a ValidationReport (`.rows`, `.passed`, `.table()`).
    """
    model = _load_model(model)
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be at least 2 (batch 1 and a larger batch are checked); got {n}.")
    spec = spec_for(model)
    artifacts = find_artifacts(exported_path)
    rows = []
    cases = {}
    peaks = {}  # PSNR peak per output: its given peak, or the range of the reference at batch n
    for sig in spec.signatures:
        given = (inputs or {}).get(sig.name)
        case = sig.example_inputs(n, seed) if given is None else {
            k: np.asarray(v)[:n] if np.ndim(v) else v for k, v in given.items()}
        small = {k: v[:1] if np.ndim(v) else v for k, v in case.items()}
        cases[sig.name] = {1: (small, sig.reference(**small)), n: (case, sig.reference(**case))}
        peaks[sig.name] = {}
        for name in sig.outputs:
            transform, peak = sig.compare[name]
            if peak is None:
                ref = cases[sig.name][n][1][name]
                ref = transform(ref) if transform is not None else ref
                peak = float(np.max(ref) - np.min(ref)) or 1.0
            peaks[sig.name][name] = peak
        latency = _median_ms_per_image(lambda: sig.reference(**case), n, repeats)
        rows.append(Row("keras", "-", sig.name, n, 0.0, math.inf, "reference", True, None, latency))

    for fmt, quantize, path, signature_names in artifacts:
        if fmt == "saved_model":
            size = _dir_size(path)
            metadata = files.read_json(Path(path) / "assets" / "keras_gen_metadata.json")
        else:
            size = Path(path).stat().st_size
            metadata = files.read_json(files.json_path(path))
        _check_same_model(spec, metadata, path)
        for sig in spec.signatures:
            if signature_names is not None and sig.name not in signature_names:
                continue
            if fmt == "saved_model":
                run = saved_model_runner(path, sig.name)
            else:
                run = tflite_runner(path, sig.name, num_threads)
            for batch, (inputs, reference) in cases[sig.name].items():
                outputs = run(inputs)
                worst_error, worst_psnr = 0.0, math.inf
                for name in sig.outputs:
                    transform, peak = sig.compare[name]
                    error, psnr = compare(reference[name], outputs[name], transform, peaks[sig.name][name])
                    worst_error, worst_psnr = max(worst_error, error), min(worst_psnr, psnr)
                if sig.exact and quantize is not None:
                    # Sampled levels: one flipped draw changes every later sub-pixel, so a
                    # quantised sampler is judged by its `distribution` signature instead.
                    limit, ok = "none (draws)", True
                else:
                    limit, ok = _judge(quantize, worst_error, worst_psnr, tolerances)
                latency = (
                    _median_ms_per_image(lambda: run(inputs), batch, repeats) if batch == n else None
                )
                report = metadata["signatures"].get(sig.name, {}).get("gpu_delegate")
                rows.append(Row(
                    fmt, str(path), sig.name, batch, worst_error, worst_psnr, limit, ok, size,
                    latency, report if fmt != "saved_model" else None,
                ))
    report = ValidationReport(rows)
    if raise_on_failure and not report.passed:
        raise ValidationError(report)
    return report


def _check_same_model(spec, metadata, path):
    mine = spec.metadata
    for key in ("family", "image_shape", "num_classes", "latent_dim", "levels"):
        if metadata.get(key) != mine.get(key):
            raise ExportError(
                f"{str(path)!r} was exported from a different model: its {key} is "
                f"{metadata.get(key)!r}, the model's is {mine.get(key)!r}."
            )
