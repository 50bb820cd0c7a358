#!/usr/bin/env bash
# Device call 1 (carry .device/a): unpack the trainer, keep the first weights part in /tmp,
# smoke-test a CUDA training step, then the GPU training benchmark (bench/train_step.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/env.sh
cp .device/a/weights.part-aa .device/a/weights.sha1 "$P/"
gunzip -c .device/a/pagan-train.gz >"$BIN" && chmod +x "$BIN"
nvidia-smi | tee "$OUT/nvidia-smi.txt"
stamp "smoke: one CUDA training step"
"$BIN" bench --device "$DEV" --image 1x28x28 --preset paper --pa input --batch 64 --iters 5 --warmup 1 --repeats 1 || exit 1
# One process alone, the number gpu-2 sizes the sweep with.
"$BIN" bench --device "$DEV" --image 1x28x28 --preset paper --pa input --batch 64 --iters $(pick 3 300) --warmup 2 --repeats $(pick 1 3) | tee "$P/single.json"
[ -n "${SKIP_BENCH:-}" ] && exit 0
stamp "bench/train_step.sh on CUDA"
DEVICE=$DEV BIN="$BIN" PY=python3 bash bench/train_step.sh 2>&1 | tee "$OUT/bench-train-cuda.md"
stamp done
