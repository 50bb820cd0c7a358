#!/usr/bin/env bash
# Stacked training: K runs in one set of kernels vs one PyTorch eager run and vs K PyTorch
# eager processes at once, aggregate run-iterations/s, side by side in one run.
# On CUDA also the CUDA-graph step, PyTorch's K runs in one CUDA graph (one stream, or one
# stream per run), and peak GPU memory per process (nvidia-smi).
# Env: DEVICE=cpu|cuda (default cpu), THREADS (default: all cores), KS (default "1 3 9"),
#      IMAGE, PRESET, PA, ITERS (timed iterations of a K=1 repeat; a stack of K runs does
#      ITERS/K, at least 2), REPEATS, ALT_ROWS=1 (the CUDA-only alternative rows on the CPU too),
#      ROW_TIMEOUT (seconds a one-process row may take before it is killed; default none).
set -euo pipefail
source "$(dirname "$0")/trainer_lib.sh"
KS=${KS:-"1 3 9"}
if [ "$DEVICE" = cpu ]; then
  IMAGE=${IMAGE:-1x28x28}; PRESET=${PRESET:-demo}; ITERS=${ITERS:-18}
else
  IMAGE=${IMAGE:-3x32x32}; PRESET=${PRESET:-paper}; ITERS=${ITERS:-300}
fi
PA=${PA:-input}
REPEATS=${REPEATS:-3}
export RUST_LOG=${RUST_LOG:-warn}

rows=$(mktemp)
mem_file=$(mktemp)
trap 'rm -f "$rows" "$mem_file"' EXIT
# Peak GPU memory (MiB) of the processes with the given pids, sampled while they run.
watch_mem() {
  local peak=0 v pid
  while :; do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 1 ] || break
    if [ "$DEVICE" = cuda ]; then
      v=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null \
          | awk -F', ' -v p=" $* " 'index(p, " " $1 " ") {s += $2} END {print s + 0}')
      [ "$v" -gt "$peak" ] && peak=$v
    fi
    sleep 0.2
  done
  echo "$peak" >"$mem_file"
}
common=(--image "$IMAGE" --preset "$PRESET" --pa "$PA" --batch 64 --device "$DEVICE")
# One labelled JSON row of one process training K runs: label, K, then the command (which
# prints one JSON line; it gets --models/--iters/--warmup/--repeats/--threads).
measure() {
  local label=$1 k=$2; shift 2
  local iters
  iters=$(( ITERS / k )); [ "$iters" -lt 2 ] && iters=2
  echo "[bench] stack K=$k $label ..." >&2
  "$@" --models "$k" --iters "$iters" --warmup 3 --repeats "$REPEATS" --threads "$THREADS" >"$rows.one" &
  local pid=$! dog=
  # ROW_TIMEOUT=S: a row still running after S seconds is killed (and fails).
  # The watchdog gets none of the script's output descriptors: its sleep, still holding a
  # pipe, would keep a caller's `| tee` waiting after the script ended.
  if [ -n "${ROW_TIMEOUT:-}" ]; then (sleep "$ROW_TIMEOUT"; kill "$pid" 2>/dev/null) >/dev/null 2>&1 3>&- & dog=$!; fi
  watch_mem "$pid"
  local rc=0; wait "$pid" || rc=$?
  # (The watchdog may have fired and ended already: nothing to kill is not an error.)
  if [ -n "$dog" ]; then pkill -P "$dog" 2>/dev/null || true; kill "$dog" 2>/dev/null || true; fi
  [ "$rc" = 0 ] || return "$rc"
  "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); r.update(label=sys.argv[2], mem=int(sys.argv[3])); print(json.dumps(r))' \
    "$rows.one" "$label" "$(cat "$mem_file")" >>"$rows"
}
# A stack of K runs in pagan-train; extra flags after K.
ours() {
  local label=$1 k=$2; shift 2
  measure "$label" "$k" "$BIN" bench "${common[@]}" "$@"
}
# K PyTorch runs in one process and one CUDA graph: serial, or each run on its own stream
# (what concurrency of independent runs gives on the device, without grouped kernels).
torch_graph() {
  measure "PyTorch, $1 run(s) in one CUDA graph ($2)" "$1" "$PY" -W ignore bench/train_step.py "${common[@]}" --graph "$2"
}
# K processes at once, one run each (CPU threads split between them, at least one each).
# Each warms up, then waits at a barrier (PAGAN_BENCH_BARRIER) until all K are ready, so
# their timed windows overlap; the aggregate is all timed iterations over the window from
# the first start to the last end. (Summing each process's own rate, as this script did
# before 2026-11-30, overstated K processes on a GPU: started seconds apart, each was
# timed mostly alone; a real 9-process study ran at a quarter of that sum.)
# procs_k K LABEL MODE CMD...: CMD gets --iters/--warmup/--repeats/--threads.
procs_k() {
  local k=$1 label=$2 mode=$3; shift 3
  local t=$(( THREADS / k )); [ "$t" -lt 1 ] && t=1
  # Every process does a whole K=1 run's iterations: long enough windows to overlap.
  local iters=$ITERS
  echo "[bench] $label ..." >&2
  local barrier pids=() i
  barrier=$(mktemp -d)
  for i in $(seq 1 "$k"); do
    PAGAN_BENCH_BARRIER=$barrier "$@" --iters "$iters" --warmup 3 --repeats "$REPEATS" --threads "$t" >"$rows.p$i" &
    pids+=($!)
  done
  # All warmed up (or one died: its row is missing below and the script stops there).
  while [ "$(find "$barrier" -name 'ready.*' | wc -l)" -lt "$k" ]; do
    local alive=0 p
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" -eq "$k" ] || break
    sleep 0.05
  done
  touch "$barrier/go"
  watch_mem "${pids[@]}"
  for p in "${pids[@]}"; do wait "$p"; done
  rm -rf "$barrier"
  "$PY" - "$k" "$(cat "$mem_file")" "$rows" "$t" "$label" "$mode" "$(( iters * REPEATS ))" <<'PY'
import json, sys
k, mem, rows, t, label, mode, n = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]),
                                   sys.argv[5], sys.argv[6], int(sys.argv[7]))
rs = [json.load(open(f"{rows}.p{i}")) for i in range(1, k + 1)]
span = max(r["window"][1] for r in rs) - min(r["window"][0] for r in rs)
total = k * n / span
print(json.dumps({"label": label, "models": k, "step_mode": mode, "kernels": "-",
                  "threads": t, "it_per_s": total / k, "run_it_per_s": total, "mem": mem}))
PY
  rm -f "$rows".p*
}
# K PyTorch eager processes.
torch_k() {
  procs_k "$1" "PyTorch eager, $1 process(es)" eager "$PY" -W ignore bench/train_step.py "${common[@]}"
}
# K pagan-train processes (the alternative to one stack of K); extra flags after K.
ours_k() {
  local k=$1; shift
  local mode=eager; [[ " $* " == *" --cuda-graph "* ]] && mode=cuda-graph
  procs_k "$k" "pagan-train, $k process(es)" "$mode" "$BIN" bench "${common[@]}" --models 1 "$@"
}

# The table of the rows measured so far: at the end, or when a time limit stops the script
# (timeout's TERM), so a cut-short device call still returns what it measured.
table() {
  "$PY" - "$rows" "$DEVICE" "$IMAGE" "$PRESET" "$PA" "$THREADS" "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
gpu = sys.argv[2] == "cuda"
if not rows:
    sys.exit("no rows measured")
if sys.argv[7] == "cut":
    print("\n(stopped by a time limit: the rows measured until then)")
ref = rows[0]["run_it_per_s"]
print(f"\n### Stacked training: K runs per process, {sys.argv[3]} {sys.argv[4]} PA {sys.argv[5]}, batch 64, "
      f"{sys.argv[2]}, {sys.argv[6]} threads\n")
print("Aggregate run-it/s = iterations/s x runs. Ratio: vs one PyTorch eager run.\n")
head = "| K | implementation | step | kernels | stack it/s | run-it/s | ratio |"
print(head + (" peak GPU MiB |" if gpu else ""))
print("|---:|---|---|---|---:|---:|---:|" + ("---:|" if gpu else ""))
for r in rows:
    line = (f"| {r['models']} | {r['label']} | {r['step_mode']} | {r['kernels']} | {r['it_per_s']:.2f} | "
            f"{r['run_it_per_s']:.2f} | {r['run_it_per_s'] / ref:.2f}x |")
    if gpu:
        line += f" {r['mem']} |"
    print(line)
PY
}
# fd 3: the script's stdout, as rows are measured with stdout sent to the rows file.
exec 3>&1
trap 'table cut >&3; exit 124' TERM
torch_k 1 >>"$rows"
for k in $KS; do
  if [ "$k" -gt 1 ]; then torch_k "$k" >>"$rows"; fi
  ours "pagan-train" "$k"
  if [ "$k" = 1 ]; then
    # What the malloc setting (native::keep_freed_memory) contributes, measured alongside.
    PAGAN_KEEP_FREED_MEMORY=0 ours "pagan-train, glibc malloc defaults" 1
  fi
  if [ "$DEVICE" = cpu ] && [ "$k" -gt 1 ]; then ours "pagan-train" "$k" --kernels grouped; fi
  if [ "$DEVICE" = cuda ]; then
    ours "pagan-train" "$k" --cuda-graph
    # Not run anywhere before an H200 call: a failure costs its row, not the table.
    torch_graph "$k" serial || echo "[bench] PyTorch CUDA graph (serial), K=$k: failed" >&2
    if [ "$k" -gt 1 ]; then
      torch_graph "$k" streams || echo "[bench] PyTorch CUDA graph (streams), K=$k: failed" >&2
    fi
  fi
  # The H200 run of 2026-11-29 found grouped kernels slow at K = 9: the alternatives, per-model
  # kernels in one stack and K separate processes (graphed on CUDA; ALT_ROWS=1 on the CPU).
  if [ "$k" -gt 1 ] && { [ "$DEVICE" = cuda ] || [ -n "${ALT_ROWS:-}" ]; }; then
    g=(); [ "$DEVICE" = cuda ] && g=(--cuda-graph)
    ours "pagan-train" "$k" --kernels per-model "${g[@]}"
    # Per-model kernels with each run on its own CUDA stream (first GPU run still to come).
    if [ "$DEVICE" = cuda ]; then
      ours "pagan-train" "$k" --kernels streams --cuda-graph || echo "[bench] streams, K=$k: failed" >&2
    fi
    ours_k "$k" "${g[@]}" >>"$rows"
  fi
done

trap - TERM
table done
