#!/usr/bin/env bash
# The one prepared command of each device call (scripts/device/README.md). Results come back
# as files in $OUT; everything else lives under $P (/tmp/pg) while the machine stays warm.
#
#   bash scripts/device/run.sh 1   (carry .device/1): unpack; CUDA graph vs eager, number
#                                  by number; a 3-run stack on per-run streams vs per-model;
#                                  the study's size and kernels, from the measured speeds;
#                                  profiles of the K = 1 and K = 9 steps (bench --profile);
#                                  stacked-training benchmark (bench/stack.sh) in the time left
#   bash scripts/device/run.sh 2   (carry .device/2), right after: join the Inception
#                                  weights; the Fashion-MNIST test reference; the study
#                                  (experiments/fmnist.toml, 3 variants x 3 seeds, stacked)
#                                  until it ends or STUDY_S; then the Inception benchmark
#                                  if time is left
# Stage 3 (no carry; after stage 1 with SKIP_BENCH1=1 and stage 2): the profiles and
# bench/stack.sh alone, in what is left of STAGE_S, so the study can go first.
# Env: ITERS (study length; default: stage 1's plan), STUDY_S (default 480), GRAPH=0|1
# (default: stage 1's verdict),
# KERNELS=grouped|per-model|streams (the stack's kernels; default: stage 1's faster one),
# SWEEP=stack|jobs (one stack, the default, or one process per run), BENCH_ITERS /
# BENCH_REPEATS / BENCH_KS (the stack benchmark, default 300 / 3 / "1 3 9"), STAGE_S
# (seconds the benchmarks may take from the call's start, default 560), SKIP_BENCH1=1
# (stage 1 stops after the plan), SKIP_BENCH=1 (no Inception benchmark in stage 2),
# DEV=cpu SMALL=1 (rehearsal, see rehearse.sh).
set -uo pipefail
T0=$SECONDS
cd "$(dirname "$0")/../.."
REPO=$PWD
source scripts/device/env.sh
stage=${1:?usage: run.sh 1|2|3}
case "$stage" in 1|2|3) ;; *) echo "usage: run.sh 1|2|3" >&2; exit 2 ;; esac
left() { echo $(( ${1} - (SECONDS - T0) )); }

# The profiles and the stacked-training benchmark, within STAGE_S (default 560) seconds of
# the call's start: stage 1's tail, or stage 3 when stage 1 ran with SKIP_BENCH1=1 so the
# study could go first.
benches() {
  local stop=${STAGE_S:-560} k cap
  # Eager steps: the kernels and their device times are the graph's, and CUPTI times graph
  # replays' kernels wrongly before CUDA 13.1 Update 1 (kineto#1165).
  stamp "where a step's time goes: libtorch's profiler, eager, K = 1 and 9 ($(pick 2 5) iterations each)"
  for k in 1 9; do
    cap=$(left "$stop"); [ "$cap" -gt 120 ] && cap=120
    [ "$cap" -lt 20 ] && { echo "no time left for the K=$k profile"; continue; }
    timeout "$cap" "$BIN" bench --device "$DEV" --image 1x28x28 --preset "$(pick demo paper)" --models "$k" \
      --iters "$(pick 2 10)" --warmup 3 --repeats 1 \
      --profile "$OUT/profile-k$k.md" --profile-iters "$(pick 2 5)" --profile-trace "$P/trace-k$k.json" \
      2>>"$P/profile.log" >>"$P/profile-rates.jsonl" || echo "profile K=$k failed (exit $?): $(tail -2 "$P/profile.log")"
    head -16 "$OUT/profile-k$k.md" 2>/dev/null | cut -c1-160
  done
  gzip -c "$P/trace-k9.json" >"$OUT/trace-k9.json.gz" 2>/dev/null || true

  # Last, as it is the longest: what is left of the call, each row at most ROW_TIMEOUT.
  cap=$(left "$stop"); [ "$cap" -lt 30 ] && cap=30
  stamp "stacked training: bench/stack.sh (at most $cap s)"
  DEVICE=$DEV BIN="$BIN" PY="$PY" KS="$(pick "1 3" "${BENCH_KS:-1 3 9}")" ITERS="$(pick 6 "${BENCH_ITERS:-300}")" REPEATS="$(pick 1 "${BENCH_REPEATS:-3}")" \
    IMAGE=1x28x28 PRESET="$(pick demo paper)" ROW_TIMEOUT=90 timeout "$cap" bash bench/stack.sh 2>"$P/bench-stack.log" | tee "$OUT/bench-stack.md"
  [ -s "$OUT/bench-stack.md" ] || tail -5 "$P/bench-stack.log" >"$OUT/bench-stack.md"
}

if [ "$stage" = 1 ]; then
  gunzip -c .device/1/pagan-train.gz >"$BIN" && chmod +x "$BIN" || exit 1
  cp .device/1/weights.part-aa .device/1/weights.sha1 "$P/"
  mkdir -p "$P/data/fashion-mnist"
  cp .device/1/*-ubyte.gz "$P/data/fashion-mnist/"
  { nvidia-smi || echo "(no nvidia-smi)"; } >"$OUT/nvidia-smi.txt" 2>&1
  head -12 "$OUT/nvidia-smi.txt"

  stamp "CUDA graph vs eager: the same run twice, every metrics line compared"
  check=(--dataset fashion-mnist --preset "$(pick demo paper)" --pa input --start-level 1 --iters "$(pick 8 40)"
         --log-every 1 --seed 0 --device "$DEV" --quiet --limit "$(pick 512 60000)" --eval-every 0)
  # Two eager runs: on a GPU they differ by themselves (non-deterministic kernels); that
  # difference is the band the graph must stay in (compare_runs.py).
  # Every run must also finish (exit 0): a run that fails after training still leaves
  # metrics that compare well.
  graph_rc=0
  for r in eager eager2; do
    PAGAN_CUDNN_BENCHMARK=0 "$BIN" train "${check[@]}" --out "$P/check-$r" 2>"$P/check-$r.log" || graph_rc=$?
  done
  PAGAN_CUDNN_BENCHMARK=0 "$BIN" train "${check[@]}" --cuda-graph --out "$P/check-graph" 2>"$P/check-graph.log" || graph_rc=$?
  grep -h "step mode\|CUDA graph\|rror" "$P/check-graph.log" | cut -c1-300 | tee "$OUT/graph-check.txt"
  [ "$graph_rc" = 0 ] || echo "a check run failed (exit $graph_rc)" | tee -a "$OUT/graph-check.txt"
  if [ "$graph_rc" = 0 ] && "$PY" scripts/device/compare_runs.py "$P/check-eager" "$P/check-graph" $([ "$DEV" = cuda ] && echo --baseline "$P/check-eager2") >>"$OUT/graph-check.txt" \
     && grep -q "CUDA graph captured" "$P/check-graph.log"; then
    echo 1 >"$P/graph-ok"
  else
    echo 0 >"$P/graph-ok"
  fi
  tail -3 "$OUT/graph-check.txt"

  # Per-run CUDA streams (PAGAN_STACK_KERNELS=streams), never run on a GPU before: a 3-run
  # stack on streams, graphed, against per-model kernels eager (twice: the noise band).
  # Every new GPU step below has a time cap: a hang must not eat the call.
  stamp "per-run streams vs per-model kernels: a 3-run stack, every metrics line compared"
  stk=(--dataset fashion-mnist --preset "$(pick demo paper)" --pa input --start-level 1 --iters "$(pick 8 40)"
       --log-every 1 --seeds 0,1,2 --device "$DEV" --quiet --limit "$(pick 512 60000)" --eval-every 0)
  streams_rc=0
  for r in per-model per-model2; do
    PAGAN_STACK_KERNELS=per-model PAGAN_CUDNN_BENCHMARK=0 timeout 120 "$BIN" train "${stk[@]}" --out "$P/stk-$r" 2>"$P/stk-$r.log" \
      || streams_rc=$?
  done
  PAGAN_STACK_KERNELS=streams PAGAN_CUDNN_BENCHMARK=0 timeout 120 "$BIN" train "${stk[@]}" --cuda-graph --out "$P/stk-streams" 2>"$P/stk-streams.log" \
    || streams_rc=$?
  [ "$streams_rc" = 0 ] || echo "a streams-check run failed or timed out (exit $streams_rc)" | tee -a "$P/stk-streams.log"
  grep -h "step mode\|CUDA graph\|stack of\|streams\|panic\|rror" "$P/stk-streams.log" | cut -c1-300 | tee "$OUT/streams-check.txt"
  for s in 0 1 2; do
    "$PY" scripts/device/compare_runs.py "$P/stk-per-model-s$s" "$P/stk-streams-s$s" \
      $([ "$DEV" = cuda ] && echo --baseline "$P/stk-per-model2-s$s") >>"$OUT/streams-check.txt" 2>&1
  done
  # Streams pass when the run finished, all three runs agree and (on a GPU) the log shows
  # streams and a graph.
  streams_ok=0
  if [ "$streams_rc" = 0 ] && [ "$(grep -c '^SAME' "$OUT/streams-check.txt")" = 3 ]; then
    if [ "$DEV" != cuda ] || { grep -q "one CUDA stream per run" "$P/stk-streams.log" && grep -q "CUDA graph captured" "$P/stk-streams.log"; }; then
      streams_ok=1
    fi
  fi
  echo "streams verdict: $streams_ok" | tee -a "$OUT/streams-check.txt"

  # The study's length and kernels: 9 runs stacked, grouped kernels or (if the check above
  # passed) per-run streams, whichever is faster; half of STUDY_S for training (evaluations
  # take the rest), whole 10k blocks, 10k to 100k (a 20k floor made both GPU sessions so
  # far stop inside their first evaluation).
  stamp "the study's plan: 9-run stack rates"
  mode=$([ "$(cat "$P/graph-ok")" = 1 ] && echo cuda-graph || echo eager)
  kinds=grouped; [ "$streams_ok" = 1 ] && kinds="grouped streams"
  for kk in $kinds; do
    timeout 120 "$BIN" bench --device "$DEV" --image 1x28x28 --preset "$(pick demo paper)" --models 9 --kernels "$kk" \
      --iters "$(pick 2 100)" --warmup 3 --repeats 1 $([ "$mode" = cuda-graph ] && echo --cuda-graph) \
      2>>"$P/plan.log" >"$P/plan-$kk.json" || echo "plan bench $kk failed (exit $?)"
  done
  "$PY" - "$P" "${STUDY_S:-480}" $kinds <<'PY' | tee "$OUT/plan.txt"
import json, sys
p, budget, kinds = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
rates = {}
for k in kinds:
    try:
        rates[k] = json.load(open(f"{p}/plan-{k}.json"))["it_per_s"]
    except (OSError, ValueError, KeyError):
        pass
best = max(rates, key=rates.get) if rates else "grouped"
iters = int(rates.get(best, 0) * budget * 0.5) // 10000 * 10000
iters = max(10000, min(100000, iters))
open(f"{p}/plan", "w").write(f"{iters}\n")
open(f"{p}/kernels", "w").write(best + "\n")
print(f"{iters} iterations, {best} kernels (9-run stack it/s: {rates})")
PY

  if [ "${SKIP_BENCH1:-0}" = 1 ]; then stamp "stage 1 done in $((SECONDS - T0)) s (benchmarks left to stage 3)"; exit 0; fi
  benches
  stamp "stage 1 done in $((SECONDS - T0)) s"
  exit 0
fi

[ -x "$BIN" ] || { echo "no $BIN: run stage 1 on this machine first"; exit 1; }
if [ "$stage" = 3 ]; then
  benches
  stamp "stage 3 done in $((SECONDS - T0)) s"
  exit 0
fi

cat "$P/weights.part-aa" .device/2/weights.part-ab | gunzip -c >"$P/inception.pt" || { echo "weights: gunzip failed"; exit 1; }
[ "$(sha1sum "$P/inception.pt" | cut -d' ' -f1)" = "$(cat "$P/weights.sha1")" ] || { echo "weights sha1 mismatch"; exit 1; }
# env.sh points PAGAN_INCEPTION_WEIGHTS (and bench/inception.sh) at $P/inception.pt; the
# checkout's weights/ is left alone (a rehearsal here once replaced it with a link into
# its scratch folder, which dangled once that was removed).
mkdir -p "$P/refs"

REF=$P/refs/fashion-mnist-test.npz
stamp "Fashion-MNIST test reference ($(pick 200 10000) images)"
"$BIN" stats --dataset fashion-mnist --split test ${SMALL:+--n 200} --out "$REF" --device "$DEV" --batch 500 --quiet 2>&1 | tail -2

ITERS=${ITERS:-$(pick 20 "$(cat "$P/plan" 2>/dev/null || echo 100000)")}
GRAPH=${GRAPH:-$(cat "$P/graph-ok" 2>/dev/null || echo 0)}
export PAGAN_STACK_KERNELS=${KERNELS:-$(cat "$P/kernels" 2>/dev/null || echo grouped)}
STUDY_S=${STUDY_S:-480}
SETS=(--set device="$DEV" --set "iters=$ITERS" --set "eval-fid-reference=$REF" --set eval-batch=500
      --set sample-every="$(pick 10 10000)" --set checkpoint-every="$(pick 10 10000)")
[ "$GRAPH" = 1 ] && SETS+=(--set cuda-graph=true)
# Rehearsal: the demo network on a subset, evaluations every 10 iterations on 60 images.
[ -n "${SMALL:-}" ] && SETS+=(--set preset=demo --set limit=512 --set eval-every=10 --set eval-samples=60 --set threads=2)
stamp "study: experiments/fmnist.toml ${SWEEP:-stack}, iters=$ITERS, CUDA graph=$GRAPH, $PAGAN_STACK_KERNELS kernels, for at most $STUDY_S s"
printf '%s ' "${SETS[@]}" >"$OUT/study-settings.txt"
# SWEEP=jobs: one process per run, 9 at once, instead of one stack (the default). On an
# H200 (2026-11-30) 9 graphed processes trained at ~240 run-it/s together, about one
# process's rate, against ~300 for the grouped stack.
how=(--stack); [ "${SWEEP:-stack}" = jobs ] && how=(--jobs 9)
(cd "$P" && timeout --signal=INT "$STUDY_S" "$BIN" sweep "$REPO/experiments/fmnist.toml" "${how[@]}" \
   --out "$P/runs/fmnist" "${SETS[@]}" >"$P/sweep.log" 2>&1) &
SWEEP=$!
while kill -0 "$SWEEP" 2>/dev/null; do
  sleep "$(pick 15 30)"
  echo "$(date -u +%H:%M:%S) $("$PY" scripts/device/progress.py "$P/runs/fmnist" 2>/dev/null)"
done
wait "$SWEEP"; rc=$?
stamp "study ended (exit $rc) after $((SECONDS - T0)) s"
tail -5 "$P/sweep.log" | tee "$OUT/sweep.log"
for r in "$P"/runs/fmnist/*/; do [ -f "$r/train.log" ] && tail -30 "$r/train.log" >"$OUT/train-$(basename "$r").log.txt" && break; done
(cd "$P/runs" && tar czf "$OUT/study.tgz" --exclude='checkpoints/*.safetensors' fmnist)
ls -la "$OUT"

if [ "$(left 560)" -gt 60 ] && [ "${SKIP_BENCH:-0}" != 1 ]; then
  stamp "Inception throughput (bench/inception.sh)"
  DEVICE=$DEV BIN="$BIN" PY="$PY" BATCH=$(pick 5 250) BATCHES=$(pick 1 10) SIDES=1x28 \
    timeout "$(left 570)" bash bench/inception.sh 2>/dev/null | tee "$OUT/bench-inception.md"
fi
stamp "stage 2 done in $((SECONDS - T0)) s"
