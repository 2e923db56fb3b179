#!/usr/bin/env bash
# Screenshots of TensorBoard's scalars (time series) and images pages for a run, with headless
# Chromium (apt-get install chromium): scripts/tensorboard_screenshot.sh runs/x/logs docs/
set -euo pipefail
logdir=${1:?usage: $0 LOGDIR OUTDIR}
outdir=${2:?usage: $0 LOGDIR OUTDIR}
port=${PORT:-6006}
tensorboard --logdir "$logdir" --port "$port" --host 127.0.0.1 >/dev/null 2>&1 &
tb=$!
trap 'kill $tb' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 1; done
flags="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --hide-scrollbars --window-size=1400,900
       --virtual-time-budget=15000 --user-data-dir=$(mktemp -d)"
chromium $flags --screenshot="$outdir/tensorboard_scalars.png" "http://127.0.0.1:$port/#timeseries"
chromium $flags --screenshot="$outdir/tensorboard_images.png" "http://127.0.0.1:$port/#images"
