"""Size, error against Keras and per-image latency of an exported model in every format: the
SavedModel and one `.tflite` file per mode (float32, float16, dynamic, int8), each holding all
of the family's signatures, run in the LiteRT interpreter, at batch 1 and 16; with the GPU
delegate column of `export.validate`.

    python benchmarks/export_latency.py --family gan       # DCGAN, 3 epochs on fashion_mnist_10k
    python benchmarks/export_latency.py --family vae       # ConvVAE, 3 epochs
    python benchmarks/export_latency.py --family pixelcnn  # Gated PixelCNN, binarised, 300 steps
    python benchmarks/export_latency.py --family gan --model runs/x/model.keras --details

The model is trained (default compile()) on the bundled fashion_mnist_10k and saved to
--work-dir/<family>/model.keras, then reused. --details adds the dynamic-range converter
variants (max abs error, PSNR and latency per signature), which decided `quantize="dynamic"`
(see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import export  # noqa: E402
import keras_gen as kg  # noqa: E402
from export.signatures import spec_for  # noqa: E402
from export import gpu  # noqa: E402
from export.validation import compare, tflite_runner  # noqa: E402

DATA = "fashion_mnist_10k"


def build(family):
    if family == "gan":
        return kg.models.DCGAN((28, 28, 1), latent_dim=100, filters=32, seed=0), "tanh"
    if family == "vae":
        return kg.models.ConvVAE((28, 28, 1), seed=0), "unit"
    return kg.models.PixelCNN((28, 28, 1), levels=2, filters=32, num_layers=5, seed=0), "binary"


def trained_model(family, work_dir, epochs, steps):
    path = work_dir / "model.keras"
    if path.exists():
        print(f"reusing {path}")
        return keras.models.load_model(path), None
    model, image_range = build(family)
    data = kg.data.load(DATA, batch_size=64, image_range=image_range, seed=0)
    if family == "pixelcnn":
        data = data.repeat().take(steps)
        epochs = 1
    model.compile()
    start = time.process_time()
    model.fit(data, epochs=epochs, verbose=2)
    cpu_seconds = time.process_time() - start
    work_dir.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model, cpu_seconds


def calibration_data(model, n):
    """int8 calibration: the prior's own inputs, real images for signatures that take images."""
    spec = spec_for(model)
    data = export.prior_samples(model, n=n, seed=1)
    for sig in spec.signatures:
        if sig.prior_inputs:
            continue
        image_range = "levels" if sig.inputs["images"].dtype.is_integer else "unit"
        if getattr(model, "levels", None) == 2:
            image_range = "binary"
        images = next(iter(kg.data.load(DATA, batch_size=n, image_range=image_range, seed=1)))
        inputs = sig.example_inputs(n, 1)
        inputs["images"] = images.numpy().astype(inputs["images"].dtype)
        data[sig.name] = inputs
    return data


DYNAMIC_VARIANTS = {
    "default (new quantizer, per-channel)": {},
    "old dynamic-range quantizer": {"experimental_new_dynamic_range_quantizer": False},
    "per-tensor weights": {"_experimental_disable_per_channel": True},
}


def details(model, saved, work_dir, threads, repeats):
    """The dynamic-range converter variants: error against Keras at batch 1 and 16 and latency
    per image at batch 16, per signature."""
    spec = spec_for(model)
    print("\ndynamic-range converter variants (max abs error b=1 / b=16, PSNR b=16, ms/image b=16):")
    for name, attributes in DYNAMIC_VARIANTS.items():
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[s.name for s in spec.signatures])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        for key, value in attributes.items():
            setattr(converter, key, value)
        path = work_dir / "dynamic_variant.tflite"
        path.write_bytes(converter.convert())
        for sig in spec.signatures:
            run = tflite_runner(path, sig.name, threads)
            inputs = sig.example_inputs(16, 0)
            reference = sig.reference(**inputs)
            small = {k: v[:1] if np.ndim(v) else v for k, v in inputs.items()}
            reference_small = sig.reference(**small)
            out, out_small = run(inputs), run(small)
            errors, psnrs, errors_small = [], [], []
            for output in sig.outputs:
                transform, peak = sig.compare[output]
                e, p = compare(reference[output], out[output], transform, peak)
                errors.append(e)
                psnrs.append(p)
                errors_small.append(compare(reference_small[output], out_small[output], transform, peak)[0])
            run(inputs)
            start = time.perf_counter()
            for _ in range(repeats):
                run(inputs)
            ms = 1000 * (time.perf_counter() - start) / repeats / 16
            print(
                f"  {name}, {sig.name}: {max(errors_small):.1e} / {max(errors):.1e}, "
                f"{min(psnrs):.1f} dB, {ms:.2f} ms/image, {path.stat().st_size / 1024:.0f} KiB"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=("gan", "vae", "pixelcnn"), default="gan")
    parser.add_argument("--model", help="a saved keras-gen model (.keras) of that family; default: train one")
    parser.add_argument("--work-dir", default="runs/export_latency")
    parser.add_argument("--epochs", type=int, default=3, help="GAN/VAE training epochs")
    parser.add_argument("--steps", type=int, default=300, help="PixelCNN training steps")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TFLite interpreter threads")
    parser.add_argument("--calibration", type=int, default=256, help="int8 calibration examples")
    parser.add_argument("--details", action="store_true", help="also the dynamic-range converter variants")
    args = parser.parse_args(argv)

    work_dir = Path(args.work_dir) / args.family
    if args.model:
        model, cpu_seconds = keras.models.load_model(args.model), None
    else:
        model, cpu_seconds = trained_model(args.family, work_dir, args.epochs, args.steps)
    out = work_dir / "exported"
    shutil.rmtree(out, ignore_errors=True)
    saved = export.saved_model(model, out / "saved_model")
    n_calibration = min(args.calibration, 64) if args.family == "pixelcnn" else args.calibration
    data = calibration_data(model, n_calibration)
    for quantize in export.QUANTIZE_MODES:
        export.tflite(saved, out, quantize=quantize, representative_data=data if quantize == "int8" else None)

    report = export.validate(
        model, out, n=16, repeats=args.repeats, num_threads=args.threads, raise_on_failure=False,
    )
    print()
    print(
        f"{type(model).__name__}, {model.count_params():,} parameters, image {model.image_shape}, "
        f"TF {tf.__version__}, LiteRT threads {args.threads}, median of {args.repeats} calls"
        + ("" if cpu_seconds is None else f"; trained in {cpu_seconds:.0f} process CPU seconds")
    )
    keras_ms = {r.signature: r.latency_ms for r in report.rows if r.format == "keras"}
    print("| format | signature | file size | max abs error | PSNR dB | ms/image b=16 | vs Keras | limit | ok | GPU delegate |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|---|")
    merged = {}
    for r in report.rows:
        key = (r.format, r.signature)
        m = merged.setdefault(key, dict(error=0.0, psnr=np.inf, ok=True, row=r))
        m["error"] = max(m["error"], r.max_abs_error)
        m["psnr"] = min(m["psnr"], r.psnr)
        m["ok"] = m["ok"] and r.passed
        if r.latency_ms is not None:
            m["row"] = r
    for (fmt, signature), m in merged.items():
        r = m["row"]
        size = "-" if r.size_bytes is None else f"{r.size_bytes / 1024:.0f} KiB"
        psnr = "inf" if np.isinf(m["psnr"]) else f"{m['psnr']:.1f}"
        speed = keras_ms[signature] / r.latency_ms if r.latency_ms else float("nan")
        print(
            f"| {fmt} | {signature} | {size} | {m['error']:.1e} | {psnr} | {r.latency_ms:.3f} | "
            f"{speed:.1f}x | {r.limit} | {'yes' if m['ok'] else 'NO'} | "
            f"{gpu.summary(r.gpu_delegate) if fmt != 'keras' else '-'} |"
        )
    print("(max abs error and PSNR: worst of batch 1 and 16; Keras: the model's own call)")
    if args.details:
        details(model, saved, work_dir, args.threads, max(3, args.repeats // 4))


if __name__ == "__main__":
    main()
