"""Training throughput of keras-gen's train steps against straightforward references.

Each family contributes `benchmarks/throughput_<family>.py` with `cases(batch_size)`: a list of
{"name", "images_per_call", "ours", "reference"} where each callable runs one training call on
the same networks and data shape. This runner warms both up, takes the median of several
repeats, and prints images/second and the ratio ours/reference from one run on one machine.
The two are timed in alternation (a repeat of the reference, then one of ours) and the ratio is
the median of the per-repeat ratios, so a change of load on a shared machine moves both.

    python benchmarks/train_throughput.py [--families gan,vae,pixelcnn,diffusion] [--repeats 5]
        [--match TEXT[,TEXT...]]  # only the cases whose name contains one of them
"""

import argparse
import importlib
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so the "2 replicas" rows can run MirroredStrategy on a CPU box.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)


def _timed(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure_pair(ours, reference, calls, repeats, warmup=2):
    """(median seconds per call of ours, of the reference, median of the per-repeat ratios
    reference time / our time), timed in alternation."""
    for _ in range(warmup):
        reference()
        ours()
    ours_times, reference_times = [], []
    for _ in range(repeats):
        reference_times.append(_timed(reference, calls))
        ours_times.append(_timed(ours, calls))
    ratios = [r / o for r, o in zip(reference_times, ours_times)]
    return statistics.median(ours_times), statistics.median(reference_times), statistics.median(ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="gan,vae,pixelcnn,diffusion")
    parser.add_argument("--match", default=None,
                        help="comma-separated: only the cases whose name contains one of them")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="calls per repeat")
    args = parser.parse_args(argv)

    rows = []
    for family in args.families.split(","):
        try:
            module = importlib.import_module(f"throughput_{family}")
        except ImportError as e:
            print(f"skipping {family}: {e}")
            continue
        for case in module.cases(args.batch_size):
            if args.match and not any(text in case["name"] for text in args.match.split(",")):
                continue
            ref_name = case.get("reference_name", "reference")
            t_ours, t_ref, time_ratio = measure_pair(case["ours"], case["reference"], args.calls,
                                                     args.repeats)
            ref_images = case.get("reference_images_per_call", case["images_per_call"])
            # images/second ours / reference, from the paired time ratio
            ratio = time_ratio * case["images_per_call"] / ref_images
            rows.append((family, case["name"], ref_name, ref_images / t_ref,
                         case["images_per_call"] / t_ours, ratio))
            print(f"  measured {family}: {case['name']}: {ratio:.2f}x", flush=True)

    print()
    print(f"process CPU seconds: {time.process_time():.0f}; load average at the end: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("| family | ours | reference | reference img/s | ours img/s | ratio |")
    print("|---|---|---|---|---|---|")
    for family, name, ref_name, ref, ours, ratio in rows:
        print(f"| {family} | {name} | {ref_name} | {ref:.0f} | {ours:.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
