#!/usr/bin/env bash
# Device call 3 (carry .device/c): watch the sweep until it ends or until DEADLINE_S seconds into this call,
# then export each run's generator to ONNX and return metrics, grids and models via $OUT.
set -uo pipefail
T0=$SECONDS
cd "$(dirname "$0")/../.."
REPO=$PWD
source scripts/device/env.sh
# `export` checks the ONNX graph in ONNX Runtime (CPU): its library comes in .device/c.
gunzip -c .device/c/libonnxruntime.so.1.31.1.gz >"$P/libonnxruntime.so.1.31.1"
export ORT_DYLIB_PATH=$P/libonnxruntime.so.1.31.1
bash scripts/device/watch.sh $(( ${DEADLINE_S:-480} - (SECONDS - T0) ))
pkill -INT -f "$BIN (sweep|train)" 2>/dev/null; sleep 3
cat "$P/sweep.log" | tail -20 >"$OUT/sweep.log"
cd "$P/runs" || exit 1
for r in fmnist/*/; do
  r=${r%/}; n=$(basename "$r")
  "$BIN" export "$r" --out "$P/models/$n" >"$P/export-$n.log" 2>&1 || tail -3 "$P/export-$n.log"
done
# Grids every 10k iterations plus the latest, the metrics and logs; checkpoints stay behind.
tar czf "$OUT/runs.tgz" --exclude='checkpoints/*.safetensors' --exclude='samples' fmnist
shopt -s nullglob
tar czf "$OUT/samples.tgz" fmnist/*/samples/*0000.png fmnist/*/samples/latest.png
cd "$P/models" 2>/dev/null && for n in *; do tar czf "$OUT/model-$n.tgz" "$n"; done
ls -la "$OUT"
