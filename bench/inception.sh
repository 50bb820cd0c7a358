#!/usr/bin/env bash
# Inception feature throughput: our ONNX graph in ONNX Runtime and our tch module (fed f32
# images through the shared host path, and fed 8-bit images as training-time evaluation
# does; also with channels-first activations, the layout before channels-last became the
# default) vs the TorchScript FID module in PyTorch, same input, batch and threads, side by
# side in one run.
# Env: DEVICE=cpu|cuda (cuda: tch and TorchScript only), THREADS, SIDES, BATCH, BATCHES.
set -euo pipefail
source "$(dirname "$0")/trainer_lib.sh"
SIDES=${SIDES:-"1x28 3x32"}
BATCH=${BATCH:-25}
BATCHES=${BATCHES:-$([ "$DEVICE" = cpu ] && echo 4 || echo 40)}
# TorchScript's profiling executor specialises on its first calls: warm up more on a GPU.
WARMUP=${WARMUP:-$([ "$DEVICE" = cpu ] && echo 1 || echo 3)}
if [ "$DEVICE" = cpu ] && [ ! -f models/inception/inception.onnx ]; then
  "$BIN" export-inception --out models/inception >&2
fi
results=$(mktemp)
for s in $SIDES; do
  IFS=x read -r c side <<<"$s"
  args=(--side "$side" --channels "$c" --batch "$BATCH" --batches "$BATCHES" --warmup "$WARMUP" --threads "$THREADS")
  echo "[bench] inception ${c}x${side}x${side}: TorchScript ..." >&2
  "$PY" -W ignore bench/inception.py "${args[@]}" --device "$DEVICE" \
    --weights "${PAGAN_INCEPTION_WEIGHTS:-weights/pt_inception-2015-12-05.torchscript.pt}" >>"$results"
  echo "[bench] inception ${c}x${side}x${side}: tch ..." >&2
  "$BIN" bench-inception --backend tch --device "$DEVICE" "${args[@]}" >>"$results"
  echo "[bench] inception ${c}x${side}x${side}: tch, 8-bit images (training-time evaluation) ..." >&2
  "$BIN" bench-inception --backend tch-bytes --device "$DEVICE" "${args[@]}" >>"$results"
  # The same with channels-first activations: what the default channels-last layout gains.
  "$BIN" bench-inception --backend tch-bytes --nchw --device "$DEVICE" "${args[@]}" >>"$results"
  if [ "$DEVICE" = cpu ]; then
    echo "[bench] inception ${c}x${side}x${side}: ONNX Runtime ..." >&2
    "$BIN" bench-inception --backend onnx "${args[@]}" >>"$results"
  fi
done
"$PY" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n### Inception features: images/s (ratio vs the TorchScript module in PyTorch)\n")
print("| input | device | threads | implementation | images/s | ratio |")
print("|---|---|---|---|---:|---:|")
ref = None
for r in rows:
    if r["impl"].startswith("TorchScript"):
        ref = r["images_per_s"]
    print(f"| {r['input']} | {r['device']} | {r['threads']} | {r['impl']} | {r['images_per_s']:.2f} | "
          f"{r['images_per_s'] / ref:.2f}x |")
PY
rm -f "$results"
