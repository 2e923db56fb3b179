"""A trained diffusion model's sampling sweep: quality and time against sampling steps and
guidance, and the error of its fp16/int8 LiteRT exports over the whole sampling loop.

    python benchmarks/diffusion_sweep.py --model keras_gen/presets/diffusion_fashion_mnist_conditional
    python benchmarks/diffusion_sweep.py --model run/model.keras --samples 1000 --parts steps,guidance
    python benchmarks/diffusion_sweep.py --model M --parts export --export-samples 64

Tables (printed, and written to <out>/table.md; the numbers to <out>/results.json):
1. `steps`: FID (shipped "fashion_mnist" extractor, --samples samples against the 10,000 test
   images), class accuracy (shipped classifier; conditional models) and time per image against
   sampling steps (--steps, default 4, 8, 16, 32, 64) for DDIM (eta 0) and DPM-Solver++(2M), at
   the model's default guidance; and whether the 16-step FID is within 10% of the 64-step FID.
2. `guidance`: FID and class accuracy for guidance 0, 1, 2, 4 at the model's default sampler
   and steps.
3. `export`: the model's `generate` export (default sampler, steps and guidance, the loop in the
   graph) in float32, float16, dynamic-range and int8 LiteRT against Python's float32
   `generate` for the same noise and labels (--export-samples images): max and mean absolute
   error, PSNR, class accuracy: what the tolerances of export.validate (float16 / dynamic:
   max error 1e-2, int8: PSNR 30 dB, whatever the family) mean for a loop whose error compounds
   over the steps.

Every cell draws the same noise and labels (seed 12345, labels cycling through the classes), so
differences between cells are the sampler's, not the draw's. FIDs of fewer than 10,000 samples
are biased upwards: compare them within a table. Time: wall seconds and this process's CPU
seconds per image of `generate` at its default batch (250), in Python; CPU seconds are the figure
that holds on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = "idx:/usr/share/datasets/fashion-mnist"
STEPS = (4, 8, 16, 32, 64)
SAMPLERS = ("ddim", "dpm++2m")
GUIDANCE = (0.0, 1.0, 2.0, 4.0)
QUANTIZE = (None, "float16", "dynamic", "int8")
SEED = 12345


def load_model(path):
    """A Diffusion from a preset folder (or name) or a `.keras` file."""
    import keras

    import keras_gen as kg

    if str(path).endswith(".keras"):
        return keras.models.load_model(path)
    return kg.models.Diffusion.from_preset(path)


def labels_for(model, n):
    import numpy as np

    return (np.arange(n) % model.num_classes).astype(np.int32) if model.num_classes else None


def timed_samples(model, n, **options):
    """`n` samples of the sweep's seed and labels, and (wall, CPU) seconds per sample, after a
    one-image warm-up (the network is traced once per batch shape and guidance mode)."""
    labels = labels_for(model, n)
    model.generate(1, seed=0, labels=None if labels is None else labels[:1], **options)
    wall, cpu = time.perf_counter(), time.process_time()
    samples = model.generate(n, seed=SEED, labels=labels, **options)
    return samples, (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def sweep(model, n, steps=STEPS, samplers=SAMPLERS, guidance=GUIDANCE):
    """Yields (key, cell settings, samples, labels, wall s/image, CPU s/image) of every cell:
    sampler x steps at the model's guidance, then each guidance at its sampler and steps
    (conditional models only)."""
    labels = labels_for(model, n)
    for sampler in samplers:
        for count in steps:
            samples, wall, cpu = timed_samples(model, n, sampler=sampler, steps=count)
            yield f"{sampler}.{count}", {"sampler": sampler, "steps": count}, samples, labels, wall, cpu
    for w in guidance if model.num_classes else ():
        samples, wall, cpu = timed_samples(model, n, guidance=w)
        yield f"guidance.{w:g}", {"guidance": w}, samples, labels, wall, cpu


class Scorer:
    """FID against the test images' features (extracted once) and class accuracy."""

    def __init__(self, data=DATA):
        import keras

        import keras_gen as kg

        test = kg.data.load(data, split="test", image_range="unit", shuffle=False, batch_size=500)
        self.reference = kg.metrics.feature_statistics(test, "fashion_mnist", verbose=0)
        self.classifier = keras.models.load_model(kg.metrics.FASHION_MNIST_CLASSIFIER, compile=False)

    def __call__(self, samples, labels, fid=True):
        import numpy as np

        import keras_gen as kg

        values = {}
        if fid:
            values["fid"] = kg.metrics.fid(samples, self.reference, "fashion_mnist",
                                           num_samples=len(samples), verbose=0)
        if labels is not None:
            predicted = np.argmax(self.classifier.predict(samples, batch_size=500, verbose=0), axis=-1)
            values["class_accuracy"] = float(np.mean(predicted == labels))
        return values


def percent(values):
    accuracy = values.get("class_accuracy")
    return "-" if accuracy is None else f"{100 * accuracy:.1f} %"


def _table(heading, columns, cells):
    """Markdown lines: a table of `cells` with the settings `columns` ((name, cell -> text)), then
    FID, class accuracy and the times."""
    names = [name for name, _ in columns] + ["FID", "class acc.", "s/image", "CPU-s/image"]
    lines = ["", heading, "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for c in cells:
        values = [text(c) for _, text in columns] + [
            f"{c['fid']:.2f}", percent(c), f"{c['seconds_per_image']:.4f}",
            f"{c.get('cpu_seconds_per_image', float('nan')):.4f}"]
        lines.append("| " + " | ".join(values) + " |")
    return lines


def sweep_tables(cells, title):
    """Markdown lines of the steps and guidance tables from {key: cell} (settings, metrics and
    times), and whether each sampler's 16-step FID is within 10% of its 64-step FID."""
    steps = [c for c in cells.values() if "steps" in c]
    guided = [c for c in cells.values() if "guidance" in c]
    lines = []
    if steps:
        lines += _table(f"Sampling steps ({title}):",
                        [("sampler", lambda c: c["sampler"]), ("steps", lambda c: str(c["steps"]))], steps)
        for sampler in dict.fromkeys(c["sampler"] for c in steps):
            fid = {c["steps"]: c["fid"] for c in steps if c["sampler"] == sampler}
            if 16 in fid and 64 in fid:
                ratio = fid[16] / fid[64]
                lines.append(f"\n{sampler}: FID at 16 steps / at 64 steps = {ratio:.3f} "
                             f"({'within' if ratio <= 1.1 else 'not within'} 10 %)")
    if guided:
        lines += _table(f"Guidance ({title}, the model's sampler and steps):",
                        [("guidance", lambda c: f"{c['guidance']:g}")], guided)
    return lines


def export_errors(model, n, scorer, quantize=QUANTIZE):
    """{mode: errors} of the `generate` export in each quantisation mode against Python's
    float32 `generate` on the same n noise images and labels, at the model's guidance."""
    import numpy as np

    import export
    from export.validation import compare, tflite_runner

    noise = model.latent_vectors(n, SEED)
    labels = labels_for(model, n)
    reference = model.generate(n, labels=labels, z=noise)
    feed = {"noise": noise}
    if labels is not None:
        feed.update(label=labels, guidance=np.float32(model.guidance))
    results = {"python": scorer(reference, labels, fid=False)}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in quantize:
            start = time.perf_counter()
            data = export.prior_samples(model, n=32) if mode == "int8" else None
            path = export.tflite(model, Path(tmp) / str(mode), quantize=mode,
                                 representative_data=data)["generate"]
            convert = time.perf_counter() - start
            images = tflite_runner(path, "generate")(feed)["images"]
            max_error, psnr = compare(reference, images, peak=1.0)
            results[mode or "float32"] = {
                "max_abs_error": max_error, "mean_abs_error": float(np.abs(images - reference).mean()),
                "psnr": psnr, "convert_seconds": convert, **scorer(images, labels, fid=False)}
            print(f"  export {mode or 'float32'}: {results[mode or 'float32']}", flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a preset folder or name, or a .keras file")
    parser.add_argument("--samples", type=int, default=1000, help="samples per steps/guidance cell")
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--guidance", default=",".join(f"{w:g}" for w in GUIDANCE))
    parser.add_argument("--parts", default="steps,guidance,export")
    parser.add_argument("--export-samples", type=int, default=64)
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--out", default="runs/diffusion_sweep")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    scorer = Scorer(args.data)
    steps = [int(s) for s in args.steps.split(",")] if "steps" in parts else []
    guidance = [float(w) for w in args.guidance.split(",")] if "guidance" in parts else []
    header = (f"{args.model}; {args.samples} samples per cell; {model.sampler}, {model.steps} steps, "
              f"guidance {model.guidance:g} by default; {time.strftime('%Y-%m-%d %H:%M')}; "
              f"load {os.getloadavg()[0]:.1f}")
    print(header, flush=True)
    cells = {}
    for key, settings, samples, labels, wall, cpu in sweep(
            model, args.samples, steps, args.samplers.split(",") if steps else (), guidance):
        cells[key] = {**settings, "seconds_per_image": wall, "cpu_seconds_per_image": cpu,
                      **scorer(samples, labels)}
        print(f"  {key}: {cells[key]}", flush=True)
    lines = [header] + sweep_tables(cells, f"{args.samples} samples, Python")
    errors = export_errors(model, args.export_samples, scorer) if "export" in parts else {}
    if errors:
        lines += ["", f"Export of generate ({model.sampler}, {model.steps} steps, guidance "
                  f"{model.guidance:g}) against Python float32, {args.export_samples} images:", "",
                  "| LiteRT | max abs error | mean abs error | PSNR (dB) | class acc. |", "|---|---|---|---|---|"]
        lines.append(f"| (Python float32) | 0 | 0 | inf | {percent(errors['python'])} |")
        lines += [f"| {mode} | {e['max_abs_error']:.2e} | {e['mean_abs_error']:.2e} | {e['psnr']:.1f} | "
                  f"{percent(e)} |" for mode, e in errors.items() if mode != "python"]
    table = "\n".join(lines)
    print(table)
    (out / "table.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({"cells": cells, "export": errors}, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
