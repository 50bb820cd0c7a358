#!/usr/bin/env bash
# Device call 2 (carry .device/b), right after call 1 while the machine is warm: assemble
# the Inception weights, benchmark Inception on CUDA, compute the Fashion-MNIST test
# reference and the train-vs-test FID, smoke-test evaluation during training, then start
# the F-MNIST sweep in the background (it outlives this call) and watch it until
# WATCH_S seconds after the call began.
# Env: ITERS (default: sized from call 1's single-process it/s), JOBS (3), SEEDS (0), WATCH_S (540).
set -uo pipefail
T0=$SECONDS
cd "$(dirname "$0")/../.."
REPO=$PWD
source scripts/device/env.sh
cat "$P/weights.part-aa" .device/b/weights.part-ab >"$P/inception.pt"
[ "$(sha1sum "$P/inception.pt" | cut -d' ' -f1)" = "$(cat "$P/weights.sha1")" ] || { echo "weights sha1 mismatch"; exit 1; }
mkdir -p "$P/data/fashion-mnist" "$P/refs" weights
cp .device/b/*-ubyte.gz "$P/data/fashion-mnist/"
ln -sf "$P/inception.pt" weights/pt_inception-2015-12-05.torchscript.pt

stamp "Inception throughput on CUDA (bench/inception.sh)"
[ -n "${SKIP_BENCH:-}" ] || DEVICE=$DEV BIN="$BIN" PY=python3 BATCH=100 BATCHES=20 bash bench/inception.sh 2>&1 | tee "$OUT/bench-inception-cuda.md"

REF=$P/refs/fashion-mnist-test.npz
stamp "Fashion-MNIST test reference (10k) and train (10k) vs test FID/KID"
"$BIN" stats --dataset fashion-mnist --split test ${SMALL:+--n 100} --out "$REF" --device "$DEV" --batch 250 --quiet 2>&1 | tail -3
{ time "$BIN" fid fashion-mnist --split train --n $(pick 100 10000) --reference "$REF" --kid --device "$DEV" --batch 250 --quiet ; } 2>&1 | tee "$OUT/fid-train-vs-test.txt"

stamp "smoke: training with evaluation on CUDA"
if ! "$BIN" train --dataset fashion-mnist --preset paper --iters 20 --eval-every 10 --eval-samples $(pick 50 300) \
     --eval-batch 150 --eval-fid-reference "$REF" --pa-schedule kid --out "$P/smoke" --device "$DEV" --quiet >"$P/smoke.log" 2>&1; then
  tail -20 "$P/smoke.log"; echo "SMOKE FAILED: evaluation during training"; EVAL_OK=0
else
  grep '"kid"' "$P/smoke/metrics.jsonl" | tail -2; EVAL_OK=1
fi

if [ -z "${ITERS:-}" ]; then
  # Measured 2026-11-23 on an H100: 3 concurrent runs each got ~88% of a lone process's
  # it/s (53 vs 60); plan ~1300 s of training over calls 2-4.
  ITERS=$(python3 -c "import json; s=json.load(open('$P/single.json'))['it_per_s']; print(max(20000, min(100000, int(s*0.85*1300)//10000*10000)))")
fi
stamp "sweep experiments/fmnist.toml: iters=$ITERS jobs=${JOBS:-3} seeds=${SEEDS:-0} eval=$EVAL_OK"
SETS=(--set device=$DEV --set eval-batch=250 --set "iters=$ITERS" --set "eval-fid-reference=$REF" --set quiet=true)
[ "$EVAL_OK" = 1 ] || SETS+=(--set eval-every=0 --set pa-schedule=every:10000)
# shellcheck disable=SC2206  # EXTRA_SETS is a list of --set flags, split on spaces.
SETS+=(${EXTRA_SETS:-})
echo "$ITERS" >"$P/iters"
printf "%s\n" "${SETS[@]}" | grep -v "^iters=" >"$P/sets"  # gpu-4-extend.sh reuses them
cd "$P" && setsid nohup "$BIN" sweep "$REPO/experiments/fmnist.toml" --out "$P/runs/fmnist" --jobs "${JOBS:-3}" \
  --seeds "${SEEDS:-0}" "${SETS[@]}" >"$P/sweep.log" 2>&1 </dev/null &
sleep 5; cat "$P/sweep.log"
bash "$REPO/scripts/device/watch.sh" $(( ${WATCH_S:-540} - (SECONDS - T0) ))
