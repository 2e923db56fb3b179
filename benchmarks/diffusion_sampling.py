"""Time per image of the diffusion sampling loop: `Diffusion.generate` in Python (an eager loop
around the traced network) against the exported `generate` signature (the whole loop in one
graph) in LiteRT, at batch 1 and 16, in one process.

    python benchmarks/diffusion_sampling.py                       # default model, default steps
    python benchmarks/diffusion_sampling.py --steps 8 --guidance 0 --ops
    python benchmarks/diffusion_sampling.py --steps 4,8,16,32,64 --sampler ddim,dpm++2m --no-reference

The model is `Diffusion((28, 28, 1), num_classes=10, seed=0)` at its defaults, untrained (the
weights do not change the time; the zero-initialised output layer is given random values so no
layer sees only zeros). Two exports of it: the shipped one (group norms, upsampling and
attention in their constant-shape stand-ins, export/xnnpack.py) and, as the reference, the same
loop over the Keras layers as they are. Python and LiteRT get the same noise, labels and
guidance; LiteRT runs with the default interpreter settings (XNNPACK on, threads = cores), as
export.validate does. Medians of --repeats calls after a warm-up, Python then each file at each
batch; the ratios are LiteRT / Python per image in the same run. Each file's XNNPACK partitions
(the pieces of the graph the delegate took; the ops between them ran on the builtin kernels)
are printed; `--ops` adds the op histogram.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import export  # noqa: E402
import export.diffusion  # noqa: E402
import keras_gen as kg  # noqa: E402
from export import signatures  # noqa: E402
from export.diffusion import diffusion_spec  # noqa: E402
from export.validation import tflite_runner  # noqa: E402
from litert_batch import median_seconds  # noqa: E402


def untrained_model(**options):
    model = kg.models.Diffusion((28, 28, 1), num_classes=10, seed=0, **options)
    rng = np.random.default_rng(0)
    model.ema_network.set_weights([w if w.any() else rng.normal(0, 0.02, w.shape).astype(w.dtype)
                                   for w in model.ema_network.get_weights()])
    return model


def op_counts(path):
    """The ops of the file's first subgraph, as a Counter, with one "DELEGATE" per piece of the
    graph the XNNPACK delegate took (the ops between them run on the builtin kernels)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return collections.Counter(op["op_name"] for op in interpreter._get_ops_details())


def export_files(model, work, steps, sampler, reference, show_ops):
    """{"shipped": path, "keras": path (with reference)}: the model's `generate` loop of `steps`
    steps of `sampler`, exported with the XNNPACK stand-ins (shipped) and over Keras' layers."""
    signatures.BUILDERS["diffusion"] = lambda m: diffusion_spec(m, steps=steps, sampler=sampler)
    files = {}
    for name, rewrite in (("shipped", None), ("keras", lambda network: network))[:2 if reference else 1]:
        start, cpu = time.perf_counter(), time.process_time()
        patch = mock.patch.object(export.diffusion, "xnnpack_friendly", rewrite) if rewrite else nullcontext()
        with patch:
            files[name] = export.tflite(model, work / f"{name}_{sampler}_{steps}")["generate"]
        ops = op_counts(files[name])
        partitions = ops.pop("DELEGATE", 0)  # one node per graph piece XNNPACK took
        print(f"{name}, {sampler}, {steps} steps: export {time.perf_counter() - start:.0f} s "
              f"({time.process_time() - cpu:.0f} CPU-s), {files[name].stat().st_size / 2**20:.1f} MiB, "
              f"XNNPACK partitions {partitions}" + (f"; ops {dict(ops.most_common())}" if show_ops else ""),
              flush=True)
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--steps", default=None,
                        help="comma-separated sampling steps (default: the model's own, 16)")
    parser.add_argument("--sampler", default=None,
                        help="comma-separated samplers (default: the model's own, dpm++2m)")
    parser.add_argument("--guidance", type=float, default=None, help="default: the model's own (2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-reference", action="store_true",
                        help="time only the shipped export, not the loop over Keras' layers as well")
    parser.add_argument("--ops", action="store_true", help="print the exported graph's ops")
    args = parser.parse_args()
    model = untrained_model()
    samplers = args.sampler.split(",") if args.sampler else [None]
    step_counts = [int(n) for n in args.steps.split(",")] if args.steps else [None]
    reference = not args.no_reference
    work = Path(tempfile.mkdtemp())
    header = ("| sampler | steps | batch | Python generate | LiteRT (shipped export) | / Python |"
              + (" LiteRT (Keras layers as they are) | / Python |" if reference else "")
              + " max abs error (shipped) |")
    rows = []
    for sampler_name in samplers:
        for step_count in step_counts:
            steps, guidance, sampler, _ = model.sampling_options(step_count, args.guidance, sampler_name)
            files = export_files(model, work, steps, sampler, reference, args.ops)
            lite = {name: tflite_runner(path, "generate") for name, path in files.items()}
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                noise = model.latent_vectors(batch, 1)
                labels = (np.arange(batch) % 10).astype(np.int32)
                feed = {"noise": noise, "label": labels, "guidance": np.float32(guidance)}
                options = dict(labels=labels, z=noise, steps=steps, sampler=sampler, guidance=guidance)
                python_s = median_seconds(lambda: model.generate(batch, **options), args.repeats) / batch
                times = {name: median_seconds(lambda: run(feed), args.repeats) / batch
                         for name, run in lite.items()}
                error = np.abs(lite["shipped"](feed)["images"] - model.generate(batch, **options)).max()
                row = (f"| {sampler} | {steps} | {batch} | {1e3 * python_s:.1f} | {1e3 * times['shipped']:.1f} | "
                       f"{times['shipped'] / python_s:.2f}x |")
                if reference:
                    row += f" {1e3 * times['keras']:.1f} | {times['keras'] / python_s:.2f}x |"
                rows.append(row + f" {error:.1e} |")
                print(row + f" {error:.1e} |", flush=True)
            for path in files.values():
                path.unlink()
    print(f"\n{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; guidance {guidance:g} "
          f"({'2 network calls per step, batched' if guidance not in (0, 1) else '1 network call per step'}); "
          f"ms per image, median of {args.repeats}\n")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
