#!/usr/bin/env bash
# The semi-supervised GAN on MNIST at CPU demo scale: {100, 1000} labels x {SGAN (D = 10
# classes + fake, G by feature matching), the same classifier on the labels alone}; prints
# the test accuracy over training as a markdown table and writes the report (`pagan-train
# report`: accuracy.png and results.md in $OUT/report). Runs that finished are kept.
# Env: BIN (./target/release/pagan-train), ITERS (1500), EVAL_EVERY (500), OUT (runs/ssgan-mnist).
# Extra arguments go to every `pagan-train ssgan` (e.g. --threads 1, --preset paper).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./target/release/pagan-train}
ITERS=${ITERS:-1500}
EVAL_EVERY=${EVAL_EVERY:-500}
OUT=${OUT:-runs/ssgan-mnist}
for labels in 100 1000; do
  for mode in ssgan supervised; do
    out="$OUT/$mode-$labels"
    if [ -f "$out/done" ]; then continue; fi
    rm -rf "$out"
    flags=()
    if [ "$mode" = supervised ]; then flags=(--supervised-only); fi
    "$BIN" ssgan --dataset mnist --labels "$labels" --iters "$ITERS" --eval-every "$EVAL_EVERY" \
      --out "$out" --quiet "${flags[@]}" "$@" > /dev/null
    touch "$out/done"
  done
done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
print("| labels | method | " + " | ".join(["test accuracy at iteration ..."]) + " | final | minutes |")
print("|---|---|---|---|---|")
for labels in (100, 1000):
    for mode, name in (("ssgan", "SGAN (feature matching)"), ("supervised", "classifier on the labels alone")):
        lines = [json.loads(l) for l in open(f"{out}/{mode}-{labels}/metrics.jsonl")]
        curve = ", ".join(f"{l['iter']}: {l['test_accuracy']:.4f}" for l in lines)
        print(f"| {labels} | {name} | {curve} | **{lines[-1]['test_accuracy']:.4f}** | {lines[-1]['seconds'] / 60:.1f} |")
PY
"$BIN" report "$OUT" --out "$OUT/report" --title "Semi-supervised GAN on MNIST, CPU demo scale" > /dev/null
echo "report: $OUT/report/results.md (accuracy.png)"
