#!/usr/bin/env bash
# Prints the sweep's progress every 15 s for $1 seconds or until the sweep ends, then
# snapshots the run metrics into $OUT (so a lost machine still leaves the curves).
set -uo pipefail
source "$(dirname "$0")/env.sh"
END=$((SECONDS + ${1:-300}))
while [ $SECONDS -lt $END ] && pgrep -f "pagan-train sweep" >/dev/null; do
  sleep 15
  line="$(date -u +%H:%M:%S) $(python3 "$(dirname "$0")/progress.py" "$P/runs/fmnist")"
  echo "$line | gpu $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | tr -d '\n')"
done
tail -5 "$P/sweep.log"
cd "$P/runs" 2>/dev/null && tar czf "$OUT/metrics-snapshot.tgz" --exclude=checkpoints --exclude=samples fmnist 2>/dev/null
true
