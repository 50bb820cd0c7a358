#!/usr/bin/env bash
# Training iterations/s: pagan-train (tch) vs the PyTorch eager reference (bench/train_step.py),
# same shapes, batch, PA setting and thread count, side by side in one run.
# Env: DEVICE=cpu|cuda (default cpu), THREADS (default: all cores), ITERS, REPEATS.
set -euo pipefail
source "$(dirname "$0")/trainer_lib.sh"

if [ "$DEVICE" = cpu ]; then
  CASES=${CASES:-"1x28x28:demo:input:20 1x28x28:paper:input:4 3x32x32:paper:feat:4"}
else
  CASES=${CASES:-"1x28x28:paper:input:200 3x32x32:paper:input:200 3x32x32:paper:feat:200"}
fi
REPEATS=${REPEATS:-3}
results=$(mktemp)
mem=$(mktemp)
# Peak GPU memory of a process as nvidia-smi reports it (the same meter for both
# implementations, CUDA context included), sampled every 0.2 s while it runs.
run_measured() {
  "$@" >>"$results" &
  local pid=$! peak=0 v
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$DEVICE" = cuda ]; then
      v=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null \
          | awk -F', ' -v p="$pid" '$1 == p {print $2}')
      [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
    fi
    sleep 0.2
  done
  wait "$pid"
  echo "$peak" >>"$mem"
}
for c in $CASES; do
  IFS=: read -r image preset pa iters <<<"$c"
  args=(--image "$image" --preset "$preset" --pa "$pa" --batch 64 --iters "$iters" --warmup 2 --repeats "$REPEATS" --device "$DEVICE" --threads "$THREADS")
  echo "[bench] $image $preset pa=$pa: pagan-train ..." >&2
  run_measured "$BIN" bench "${args[@]}"
  echo "[bench] $image $preset pa=$pa: PyTorch eager ..." >&2
  run_measured "$PY" -W ignore bench/train_step.py "${args[@]}"
done
"$PY" - "$results" "$mem" "$DEVICE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mem = [int(l) for l in open(sys.argv[2]) if l.strip()]
gpu = sys.argv[3] == "cuda"
print("\n### Training step: pagan-train (tch) vs PyTorch eager, batch 64\n")
head = "| image | preset | PA | device | threads | pagan-train it/s | PyTorch it/s | ratio |"
print(head + (" peak GPU MiB ours / PyTorch |" if gpu else ""))
print("|---|---|---|---|---|---:|---:|---:|" + ("---:|" if gpu else ""))
for i, (ours, ref) in enumerate(zip(rows[0::2], rows[1::2])):
    r = ours["it_per_s"] / ref["it_per_s"]
    line = (f"| {ours['image']} | {ours['preset']} | {ours['pa']} | {ours['device']} | {ours['threads']} | "
            f"{ours['it_per_s']:.2f} | {ref['it_per_s']:.2f} | {r:.2f}x |")
    if gpu:
        line += f" {mem[2 * i]} / {mem[2 * i + 1]} |"
    print(line)
PY
rm -f "$results" "$mem"
