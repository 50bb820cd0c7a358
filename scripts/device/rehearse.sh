#!/usr/bin/env bash
# Rehearses the device calls here, on the CPU, at tiny scale, before any GPU time is
# spent: packs .device/ as for the real calls, then runs stages 1, 2 and 3 of run.sh
# with DEV=cpu SMALL=1 into a scratch folder and lists what would come back.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/device/pack.sh
P=$(mktemp -d /tmp/pg-rehearse.XXXXXX)
# The order that fits one task's device time: checks and plan, the study, then the
# benchmarks (SKIP_BENCH1=1 leaves them to stage 3).
export P DEV=cpu SMALL=1 PY=${PY:-$PWD/.venv/bin/python} STUDY_S=${STUDY_S:-300} SKIP_BENCH1=1 STAGE_S=${STAGE_S:-150}
for stage in 1 2 3; do
  export OUT=$P/out-$stage
  echo "=== rehearsal: run.sh $stage (OUT=$OUT)"
  bash scripts/device/run.sh "$stage"
  n=$(find "$OUT" -type f | wc -l)
  echo "=== stage $stage returned $n files (limit 8):"; ls -la "$OUT"
  [ "$n" -le 8 ] || { echo "too many files for one call" >&2; exit 1; }
done
echo "rehearsal ok: $P"
