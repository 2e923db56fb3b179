"""Per-image latency of an exported DCGAN generator on this CPU: the Keras call `model(z)`, the
SavedModel signature, and TFLite float32 / float16 / dynamic / int8 (LiteRT interpreter), at
batch 1 and 16, with file sizes, error against Keras and speed ratios against the Keras call.

    python benchmarks/export_latency.py                       # trains a DCGAN on fashion_mnist_10k
    python benchmarks/export_latency.py --model runs/x/model.keras

Without --model it trains DCGAN((28, 28, 1), latent_dim=100, filters=32, seed=0) with the default
compile() on the bundled fashion_mnist_10k for --epochs epochs (saved to --work-dir/model.keras
and reused on the next run).
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
from export.validation import compare, saved_model_runner, tflite_runner  # noqa: E402


def trained_model(work_dir, epochs):
    path = work_dir / "model.keras"
    if path.exists():
        print(f"reusing {path}")
        return keras.models.load_model(path), None
    start = time.perf_counter()
    data = kg.data.load("fashion_mnist_10k", batch_size=64, image_range="tanh", seed=0)
    gan = kg.models.DCGAN((28, 28, 1), latent_dim=100, filters=32, seed=0)
    gan.compile()
    gan.fit(data, epochs=epochs, verbose=2)
    seconds = time.perf_counter() - start
    work_dir.mkdir(parents=True, exist_ok=True)
    gan.save(path)
    return gan, seconds


def median_ms_per_image(call, batch, repeats):
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)) / batch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a saved keras-gen GAN (.keras); default: train one")
    parser.add_argument("--work-dir", default="runs/export_latency")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TFLite interpreter threads")
    parser.add_argument("--calibration", type=int, default=512, help="int8 calibration latent vectors")
    parser.add_argument(
        "--details", action="store_true",
        help="also: int8/float32 with and without the XNNPACK delegate, and dynamic-range "
        "converter variants (error at batch 1 and 64, latency)",
    )
    args = parser.parse_args(argv)

    work_dir = Path(args.work_dir)
    if args.model:
        model, train_seconds = keras.models.load_model(args.model), None
    else:
        model, train_seconds = trained_model(work_dir, args.epochs)
    if not isinstance(model, kg.models.GAN) or model.num_classes is not None:
        parser.error("--model must be an unconditional keras-gen GAN")

    out = work_dir / "exported"
    shutil.rmtree(out, ignore_errors=True)
    saved = export.saved_model(model, out / "saved_model")
    tflite_files = {}
    for quantize in export.QUANTIZE_MODES:
        data = export.prior_samples(model, n=args.calibration, seed=1) if quantize == "int8" else None
        tflite_files[quantize] = export.tflite(saved, out, quantize=quantize, representative_data=data)["generate"]

    # Keras model(z): the call a user makes on the trained model (eager, training=False).
    def keras_call(z):
        images = model(z, training=False)
        return {"images": model.to_unit_range(keras.ops.convert_to_numpy(images))}

    runners = [("keras model(z)", None, keras_call)]
    sm = saved_model_runner(saved, "generate")
    runners.append(("SavedModel generate", sum(p.stat().st_size for p in Path(saved).rglob("*") if p.is_file()), lambda z: sm({"z": z})))
    for quantize, path in tflite_files.items():
        run = tflite_runner(path, "generate", num_threads=args.threads)
        runners.append((f"TFLite {quantize or 'float32'}", path.stat().st_size, lambda z, run=run: run({"z": z})))

    z_all = model.latent_vectors(16, 0)
    reference = keras_call(z_all)["images"]
    rows = []
    for name, size, call in runners:
        latency = {b: median_ms_per_image(lambda: call(z_all[:b]), b, args.repeats) for b in (1, 16)}
        error, psnr = compare(reference, call(z_all)["images"], peak=1.0)
        rows.append((name, size, latency, error, psnr))

    keras_latency = rows[0][2]
    print()
    print(f"DCGAN generator, {model.generator.count_params():,} parameters, image {model.image_shape}, "
          f"TF {tf.__version__}, TFLite threads {args.threads}, CPU cores {os.cpu_count()}, "
          f"median of {args.repeats} calls")
    if train_seconds is not None:
        print(f"training: {args.epochs} epochs on fashion_mnist_10k in {train_seconds:.0f} s")
    header = "| format | file size | ms/image b=1 | speed-up vs Keras b=1 | ms/image b=16 | speed-up vs Keras b=16 | max abs error | PSNR dB |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, size, latency, error, psnr in rows:
        size_text = "-" if size is None else f"{size / 1024:.0f} KiB"
        print(
            f"| {name} | {size_text} | {latency[1]:.3f} | {keras_latency[1] / latency[1]:.1f}x | "
            f"{latency[16]:.3f} | {keras_latency[16] / latency[16]:.1f}x | {error:.1e} | "
            f"{'inf' if np.isinf(psnr) else f'{psnr:.1f}'} |"
        )

    if args.details:
        details(model, saved, tflite_files, args)


def details(model, saved, tflite_files, args):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    z = model.latent_vectors(64, 0)
    reference = model.generate(64, z=z)
    print("\nbatch 1, ms/image, XNNPACK default delegate vs builtin kernels only:")
    for quantize in (None, "int8", "dynamic"):
        times = []
        for resolver in (OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
            interpreter = Interpreter(
                model_path=str(tflite_files[quantize]), num_threads=args.threads,
                experimental_op_resolver_type=resolver,
            )
            runner = interpreter.get_signature_runner("generate")
            times.append(median_ms_per_image(lambda: runner(z=z[:1]), 1, args.repeats))
        print(f"  {quantize or 'float32'}: {times[0]:.2f} with XNNPACK, {times[1]:.2f} without")

    print("\ndynamic-range converter variants: max abs error b=1, b=64; ms/image b=64")
    variants = {
        "default": {},
        "old dynamic-range quantizer": {"experimental_new_dynamic_range_quantizer": False},
        "per-tensor weights": {"_experimental_disable_per_channel": True},
    }
    for name, attributes in variants.items():
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["generate"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        for key, value in attributes.items():
            setattr(converter, key, value)
        path = Path(args.work_dir) / "dynamic_variant.tflite"
        path.write_bytes(converter.convert())
        run = tflite_runner(path, "generate", num_threads=args.threads)
        e1 = compare(reference[:1], run({"z": z[:1]})["images"], peak=1.0)[0]
        e64 = compare(reference, run({"z": z})["images"], peak=1.0)[0]
        ms = median_ms_per_image(lambda: run({"z": z}), 64, max(3, args.repeats // 10))
        print(f"  {name}: {e1:.1e}, {e64:.1e}; {ms:.2f} ms/image")


if __name__ == "__main__":
    main()
