#!/usr/bin/env bash
# Training iterations/s: pagan-train (tch) vs the PyTorch eager reference (bench/train_step.py),
# same shapes, batch, PA setting and thread count, side by side in one run.
# Env: DEVICE=cpu|cuda (default cpu), THREADS (default: all cores), ITERS, REPEATS.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cpu}
THREADS=${THREADS:-$(nproc)}
BIN=${BIN:-target/release/pagan-train}
PY=${PY:-.venv/bin/python}
[ -x "$BIN" ] || { echo "missing $BIN: run 'cargo build --release -p pagan-trainer'"; exit 1; }

if [ "$DEVICE" = cpu ]; then
  CASES=${CASES:-"1x28x28:demo:input:20 1x28x28:paper:input:4 3x32x32:paper:feat:4"}
else
  CASES=${CASES:-"1x28x28:paper:input:200 3x32x32:paper:input:200 3x32x32:paper:feat:200"}
fi
REPEATS=${REPEATS:-3}
results=$(mktemp)
for c in $CASES; do
  IFS=: read -r image preset pa iters <<<"$c"
  args=(--image "$image" --preset "$preset" --pa "$pa" --batch 64 --iters "$iters" --warmup 2 --repeats "$REPEATS" --device "$DEVICE" --threads "$THREADS")
  echo "[bench] $image $preset pa=$pa: pagan-train ..." >&2
  "$BIN" bench "${args[@]}" >>"$results"
  echo "[bench] $image $preset pa=$pa: PyTorch eager ..." >&2
  "$PY" -W ignore bench/train_step.py "${args[@]}" >>"$results"
done
"$PY" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n### Training step: pagan-train (tch) vs PyTorch eager, batch 64\n")
print("| image | preset | PA | device | threads | pagan-train it/s | PyTorch it/s | ratio |")
print("|---|---|---|---|---|---:|---:|---:|")
for ours, ref in zip(rows[0::2], rows[1::2]):
    r = ours["it_per_s"] / ref["it_per_s"]
    print(f"| {ours['image']} | {ours['preset']} | {ours['pa']} | {ours['device']} | {ours['threads']} | "
          f"{ours['it_per_s']:.2f} | {ref['it_per_s']:.2f} | {r:.2f}x |")
PY
rm -f "$results"
