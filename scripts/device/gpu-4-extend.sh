#!/usr/bin/env bash
# Optional device call(s) after gpu-3 while the machine is still warm (no carry needed
# beyond .device/c): extend the sweep's runs to ITERS iterations (bit-exact resume from
# their latest checkpoints) for at most TIME_S seconds, then collect as gpu-3 does.
# Usage: ITERS=50000 TIME_S=470 bash scripts/device/gpu-4-extend.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
source scripts/device/env.sh
[ -f "$P/sets" ] || { echo "no $P/sets: run gpu-2-train.sh on this machine first"; exit 1; }
SETS=()
while read -r kv; do [ "$kv" = --set ] || SETS+=(--set "$kv"); done <"$P/sets"
(cd "$P" && timeout "${TIME_S:-470}" "$BIN" sweep "$REPO/experiments/fmnist.toml" --out "$P/runs/fmnist" \
  --jobs "${JOBS:-3}" --seeds "${SEEDS:-0}" "${SETS[@]}" --set "iters=${ITERS:?set ITERS}" >"$P/sweep.log" 2>&1)
python3 scripts/device/progress.py "$P/runs/fmnist"
DEADLINE_S=5 bash scripts/device/gpu-3-collect.sh
