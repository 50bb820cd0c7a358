#!/usr/bin/env bash
# The long contract fuzz: `schemathesis run --checks all` against the release pagan-serve,
# the same configuration as the bounded run in `make test` (tests/schemathesis/) with more
# examples per operation (EXAMPLES, default 400). Builds its own tiny models folder (the
# e2e fixture: a 3-iteration run, the Inception, a 12-image reference) in a temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
EXAMPLES=${EXAMPLES:-400}
SERVE=${SERVE:-target/release/pagan-serve}
TRAIN=${TRAIN:-target/release/pagan-train}
PORT=${PORT:-18090}
for b in "$SERVE" "$TRAIN"; do
  [ -x "$b" ] || { echo "missing $b: run 'cargo build --release'"; exit 1; }
done
T=$(mktemp -d)
SERVER_PID=
trap 'kill -TERM ${SERVER_PID:-0} 2>/dev/null; wait ${SERVER_PID:-} 2>/dev/null; rm -rf "$T"' EXIT
M=$T/models
"$TRAIN" train --dataset fashion-mnist --preset demo --limit 64 --batch 8 --iters 3 --quiet --out "$T/run" >/dev/null
"$TRAIN" export "$T/run" --out "$M/tiny" >/dev/null
"$TRAIN" export-inception --out "$M/inception" >/dev/null
"$TRAIN" stats --dataset fashion-mnist --split test --n 12 --quiet --out "$M/references/fm12.npz" >/dev/null 2>&1
SERVER_PID=
"$SERVE" --models "$M" --bind "127.0.0.1:$PORT" --max-generate-n 16 --max-score-n 6 --job-threshold 4 \
  --job-queue 4 >"$T/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
started=$(date +%s)
set +e
(cd "$T" && NO_COLOR=1 "$ROOT/.venv/bin/schemathesis" --config-file "$ROOT/tests/schemathesis/schemathesis.toml" \
  run "http://127.0.0.1:$PORT/openapi.json" --checks all --max-examples "$EXAMPLES") >"$T/st.txt" 2>&1
rc=$?
set -e
secs=$(( $(date +%s) - started ))
cases=$(grep -Eo '[0-9]+ generated' "$T/st.txt" | head -1 | cut -d' ' -f1 || true)
failures=$(grep -Eo '[0-9]+ found [0-9]+ unique failures' "$T/st.txt" | head -1 | cut -d' ' -f1 || true)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo "?")
echo
echo "### API contract: schemathesis --checks all, $EXAMPLES examples per operation (seed in tests/schemathesis/schemathesis.toml)"
echo
echo "| requests generated | failures | schemathesis exit | seconds | server peak RSS (MiB) |"
echo "|---:|---:|---:|---:|---:|"
echo "| ${cases:-?} | ${failures:-0} | $rc | $secs | $(( ${rss/\?/0} / 1024 )) |"
if [ "$rc" != 0 ]; then
  sed -n '/FAILURES/,$p' "$T/st.txt" | head -80
  exit "$rc"
fi
