"""Quick-start screen: `val_fid` against wall-clock time for `keras-gen train` settings.

Each variant runs the command (DCGAN on the bundled Fashion-MNIST 10k images, seed 0, plus the
variant's flags) as its own process, reads `history.json` after every epoch and records the
seconds since launch (start-up and tracing included) with that epoch's `val_fid`; the process is
stopped at --limit seconds. Variants run one after another, never together.

    python benchmarks/quickstart_screen.py                      # the variants of RESULTS.md
    python benchmarks/quickstart_screen.py --variants defaults,conditional --limit 200

Wall-clock numbers need an idle machine; compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

VARIANTS = {
    "defaults": "",
    "batch16": "--batch-size 16",
    "batch8": "--batch-size 8",
    "filters24": "--filters 24",
    "batch16-filters24": "--batch-size 16 --filters 24",
    "batch16-ema0.99": "--batch-size 16 --ema-decay 0.99",
    "batch16-lr3e-4": "--batch-size 16 --lr 3e-4",
    "conditional": "--conditional",
    "conditional-batch16": "--conditional --batch-size 16",
}


def run(name, flags, limit, epochs, root):
    out = os.path.join(root, name)
    shutil.rmtree(out, ignore_errors=True)
    command = ["keras-gen", "train", "--model", "dcgan", "--dataset", "fashion_mnist_10k",
               "--epochs", str(epochs), "--seed", "0", "--out", out, "--verbose", "2"]
    command += flags.split()
    start = time.monotonic()
    with open(out + ".log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        rows = []
        while process.poll() is None and time.monotonic() - start < limit:
            time.sleep(0.5)
            try:
                with open(os.path.join(out, "history.json")) as f:
                    fids = json.load(f).get("val_fid", [])
            except (OSError, ValueError):  # not written yet, or being written
                continue
            if len(fids) > len(rows):
                rows.append((time.monotonic() - start, fids[-1]))
                print(f"{name}: epoch {len(rows)} at {rows[-1][0]:.0f} s, val_fid {fids[-1]:.2f}",
                      flush=True)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--limit", type=float, default=200, help="seconds per variant")
    parser.add_argument("--epochs", type=int, default=30, help="--epochs passed to train")
    parser.add_argument("--out", default=None, help="run folders (default: a temporary one)")
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    root = args.out or tempfile.mkdtemp(prefix="quickstart_screen_")
    os.makedirs(root, exist_ok=True)
    results = {name: run(name, VARIANTS[name], args.limit, args.epochs, root) for name in names}
    print("\n| variant | flags | " + " | ".join(f"epoch {i}" for i in range(1, 11)) + " |")
    print("|---|---|" + "---|" * 10)
    for name, rows in results.items():
        cells = [f"{fid:.1f} ({t:.0f} s)" for t, fid in rows[:10]]
        cells += [""] * (10 - len(cells))
        print(f"| {name} | `{VARIANTS[name] or '(none)'}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
