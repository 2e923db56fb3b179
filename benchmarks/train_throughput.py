"""Training throughput of keras-gen's train steps against straightforward references.

Each family contributes `benchmarks/throughput_<family>.py` with `cases(batch_size)`: a list of
{"name", "images_per_call", "ours", "reference"} where each callable runs one training call on
the same networks and data shape. This runner warms both up, takes the median of several
repeats, and prints images/second and the ratio ours/reference from one run on one machine.

    python benchmarks/train_throughput.py [--families gan,vae,pixelcnn] [--repeats 5]
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


def measure(fn, calls, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="gan,vae,pixelcnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="calls per repeat")
    args = parser.parse_args(argv)

    rows = []
    reference_times = {}  # several variants of ours may share one reference
    for family in args.families.split(","):
        try:
            module = importlib.import_module(f"throughput_{family}")
        except ImportError as e:
            print(f"skipping {family}: {e}")
            continue
        for case in module.cases(args.batch_size):
            ref_name = case.get("reference_name", "reference")
            key = id(case["reference"])
            if key not in reference_times:
                reference_times[key] = measure(case["reference"], args.calls, args.repeats)
            t_ref = reference_times[key]
            t_ours = measure(case["ours"], args.calls, args.repeats)
            ref_images = case.get("reference_images_per_call", case["images_per_call"])
            ips_ref = ref_images / t_ref
            ips_ours = case["images_per_call"] / t_ours
            rows.append((family, case["name"], ref_name, ips_ref, ips_ours, ips_ours / ips_ref))
            print(f"  measured {family}: {case['name']}", flush=True)

    print()
    print(f"| family | ours | reference | reference img/s | ours img/s | ratio |")
    print(f"|---|---|---|---|---|---|")
    for family, name, ref_name, ref, ours, ratio in rows:
        print(f"| {family} | {name} | {ref_name} | {ref:.0f} | {ours:.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
