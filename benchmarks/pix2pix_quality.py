"""pix2pix at a fixed CPU budget on full Fashion-MNIST: edges -> image and inpainting.

Each run trains a `Pix2Pix` on the 60,000 training images (pairs derived in the pipeline by
`keras_gen.data.load_pairs`) until the process has used `--cpu-seconds` of CPU time
(`time.process_time()`, all threads; other load on the machine does not change it), then
measures on the 10,000 test pairs:

  - MAE (the L1 distance in [0, 1] units), PSNR, SSIM of the outputs against the targets;
  - FID of the outputs against the test targets, with the shipped Fashion-MNIST features;
  - class accuracy: the share of outputs the shipped classifier puts in their item's class;

and the same for two trivial baselines: the input copied, and the mean training image of the
item's class (an oracle: it is told the class). Then it exports each model to TFLite in all four
modes (int8 calibrated on 256 training inputs) and reports file size, per-image latency (LiteRT,
one thread, batch 1 and batch 64, the modes interleaved call by call, median of 200 and 20 calls)
and the mean PSNR of the exported outputs against the Keras model's on 1,000 test inputs, with
the task metrics of the exported outputs.

    python benchmarks/pix2pix_quality.py --cpu-seconds 720 --out runs/pix2pix_bench

Runs (task:upsampling): --runs edges:transpose,edges:resize,inpaint:transpose (default).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_gen as kg  # noqa: E402
from keras_gen import training  # noqa: E402

METRICS = ("mae", "psnr", "ssim", "fid", "class_accuracy")


def train(task, upsampling, args):
    model = kg.models.Pix2Pix((28, 28, 1), filters=args.filters, upsampling=upsampling,
                              seed=args.seed, task=task)
    model.compile()
    budget = kg.callbacks.TrainingBudget(cpu_seconds=args.cpu_seconds)
    wall, epoch, logs = time.time(), 0, {}
    while not budget.spent:
        data = kg.data.load_pairs(args.data, task=task, split="train", batch_size=args.batch_size,
                                  seed=training.epoch_seed(args.seed, epoch))
        history = model.fit(data, initial_epoch=epoch, epochs=epoch + 1, callbacks=[budget], verbose=0)
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        epoch += 1
    return model, {
        "steps": budget.steps, "epochs": budget.steps * args.batch_size / 60000,
        "cpu_seconds": budget.used_cpu_seconds, "wall_seconds": time.time() - wall,
        "last_epoch_logs": logs, "generator_parameters": model.generator.count_params(),
    }


def test_pairs(task, args):
    """The 10,000 test pairs as arrays (fixed holes: one pass over a pipeline seeded once)."""
    ds = kg.data.load_pairs(args.data, task=task, split="test", batch_size=1000, shuffle=False,
                            seed=args.seed + 1, with_labels=True)
    parts = [tuple(np.asarray(t) for t in batch) for batch in ds]
    return tuple(np.concatenate(p) for p in zip(*parts))


def as_dataset(inputs, targets, labels):
    return tf.data.Dataset.from_tensor_slices((inputs, targets, labels)).batch(500)


def class_means(args):
    sums, counts = np.zeros((10, 28, 28, 1)), np.zeros(10)
    for images, labels in kg.data.load(args.data, split="train", batch_size=1000, image_range="unit",
                                       with_labels=True, shuffle=False):
        np.add.at(sums, labels.numpy(), images.numpy())
        np.add.at(counts, labels.numpy(), 1)
    return (sums / counts[:, None, None, None]).astype(np.float32)


def quality(translate, pairs):
    return kg.metrics.translation_metrics(translate, as_dataset(*pairs), METRICS, data_range="tanh")


def baselines(pairs, means):
    inputs, targets, labels = pairs
    copy = quality(lambda x: x, pairs)  # a translator takes its inputs in [0, 1]
    # The oracle is told each item's class: its "input" is the label, as an image's first pixel.
    label_images = np.zeros_like(inputs)
    label_images[:, 0, 0, 0] = labels
    # translation_metrics hands it (label + 1) / 2, the tanh "image" in [0, 1]
    oracle = quality(lambda x: means[np.rint(x[:, 0, 0, 0] * 2 - 1).astype(int)],
                     (label_images, targets, labels))
    return {"input copied": copy, "class mean (told the class)": oracle}


def tflite_table(model, name, pairs, args):
    import export
    from export.to_tflite import MODEL_FILE, file_name
    from export.validation import tflite_runner

    out = Path(args.out) / f"{name}_export"
    paths = {q: out / file_name(MODEL_FILE, q) for q in export.QUANTIZE_MODES}  # one file per mode
    if not (args.reuse and all(p.exists() for p in paths.values())):
        shutil.rmtree(out, ignore_errors=True)
        saved = export.saved_model(model, out / "saved_model")
        train = next(iter(kg.data.load_pairs(args.data, task=model.task, split="train",
                                             batch_size=256, seed=args.seed + 2)))
        calibration = {"translate": {"images": model.to_unit_range(train[0].numpy())}}
        for quantize in export.QUANTIZE_MODES:
            export.tflite(saved, out, quantize=quantize, representative_data=calibration)
    inputs, targets, labels = (p[:1000] for p in pairs)
    unit_inputs = model.to_unit_range(inputs)
    keras_out = model.translate(unit_inputs)
    runners = {q: tflite_runner(p, "translate", num_threads=1) for q, p in paths.items()}
    latency = {batch: _latencies(runners, unit_inputs[:batch]) for batch in (1, 64)}
    rows = []
    for quantize, run in runners.items():
        outputs = np.concatenate([run({"images": unit_inputs[i : i + 64]})["images"]
                                  for i in range(0, len(unit_inputs), 64)])
        in_order = iter(np.split(outputs, 2))  # as_dataset's two batches of 500, in order
        task = quality(lambda _: next(in_order), (inputs, targets, labels))
        rows.append({
            "mode": quantize or "float32", "size_bytes": paths[quantize].stat().st_size,
            "ms_per_image_batch1": latency[1][quantize], "ms_per_image_batch64": latency[64][quantize],
            "psnr_vs_keras": float(np.mean(kg.metrics.psnr(outputs, keras_out))),
            **{k: task[k] for k in ("mae", "psnr", "ssim")},
        })
    return rows


def _latencies(runners, images):
    """Median ms per image of each runner, the runners interleaved call by call, so load that
    comes and goes on the machine falls on all of them alike."""
    rounds = 200 if len(images) == 1 else 20
    for run in runners.values():
        run({"images": images})  # warm-up, allocation at this size
    times = {q: [] for q in runners}
    for _ in range(rounds):
        for q, run in runners.items():
            start = time.perf_counter()
            run({"images": images})
            times[q].append(time.perf_counter() - start)
    return {q: 1000.0 * float(np.median(t)) / len(images) for q, t in times.items()}


def grid(model, pairs, path):
    inputs, targets, _ = (p[:8] for p in pairs)
    callback = kg.callbacks.Translations((inputs, targets), png_dir=str(path.parent))
    callback.set_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    kg.callbacks.save_grid(path, callback.grid_images(), columns=12)
    from PIL import Image

    with Image.open(path) as small:  # 3x, nearest neighbour: readable in the README
        small.resize((3 * small.width, 3 * small.height), Image.NEAREST).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="idx:/usr/share/datasets/fashion-mnist")
    parser.add_argument("--runs", default="edges:transpose,edges:resize,inpaint:transpose")
    parser.add_argument("--cpu-seconds", type=float, default=720.0, help="training budget per run")
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/pix2pix_bench")
    parser.add_argument("--grid-dir", default=None, help="write input|output|target grids here")
    parser.add_argument("--reuse", action="store_true",
                        help="evaluate the models (and TFLite files) a previous run left in --out "
                             "instead of training (and converting) again")
    parser.add_argument("--grids-only", action="store_true",
                        help="with --reuse: only write the grids of --grid-dir")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    means = None if args.grids_only else class_means(args)
    results = {"args": vars(args), "load": os.getloadavg(), "runs": {}}
    for run in args.runs.split(","):
        task, upsampling = run.split(":")
        model_path, stats_path = out / f"{task}_{upsampling}.keras", out / f"{task}_{upsampling}.train.json"
        if args.reuse and model_path.exists() and stats_path.exists():
            model, stats = keras.models.load_model(model_path), json.loads(stats_path.read_text())
        else:
            model, stats = train(task, upsampling, args)
            model.save(model_path)
            stats_path.write_text(json.dumps(stats, indent=1))
        pairs = test_pairs(task, args)
        if args.grid_dir:
            grid(model, pairs, Path(args.grid_dir) / f"pix2pix_{task}_{upsampling}.png")
        if args.grids_only:
            continue
        rows = {"pix2pix": quality(model, pairs), **baselines(pairs, means)}
        results["runs"][run] = {"train": stats, "test": rows,
                                "tflite": tflite_table(model, f"{task}_{upsampling}", pairs, args)}
        (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
        print_run(run, results["runs"][run])
    results["load_end"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))


def print_run(run, r):
    t = r["train"]
    print(f"\n### {run}: {t['steps']} steps ({t['epochs']:.2f} epochs) in {t['cpu_seconds']:.0f} CPU-s "
          f"({t['wall_seconds']:.0f} s wall), generator {t['generator_parameters']:,} parameters")
    print("\n| translator | MAE | PSNR dB | SSIM | FID | class accuracy |\n|---|---|---|---|---|---|")
    for name, m in r["test"].items():
        print(f"| {name} | {m['mae']:.4f} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['fid']:.2f} | "
              f"{100 * m['class_accuracy']:.1f} % |")
    print("\n| TFLite | size | ms/image batch 1 | ms/image batch 64 | PSNR vs Keras dB | MAE | PSNR dB | SSIM |"
          "\n|---|---|---|---|---|---|---|---|")
    for row in r["tflite"]:
        print(f"| {row['mode']} | {row['size_bytes'] / 1024:.0f} KiB | {row['ms_per_image_batch1']:.3f} | "
              f"{row['ms_per_image_batch64']:.3f} | {row['psnr_vs_keras']:.1f} | {row['mae']:.4f} | "
              f"{row['psnr']:.2f} | {row['ssim']:.4f} |")


if __name__ == "__main__":
    main()
