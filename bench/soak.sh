#!/usr/bin/env bash
# Soak test of pagan-serve (bench/soak.py), loopback only; builds nothing.
# usage: bench/soak.sh SERVER_BINARY MODELS_DIR [soak.py flags: --clients 32 --seconds 60 --skip-faults ...]
# Copies MODELS_DIR to a scratch folder (the fault scenarios write into references/), starts
# the server there on 127.0.0.1:0 with a TMPDIR of its own (so leftover upload folders are
# its own), runs soak.py, stops the server with SIGTERM. Env: PY (default .venv/bin/python),
# KEEP=1 keeps the scratch folder (logs), RUST_LOG (default info).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 SERVER_BINARY MODELS_DIR [soak.py flags]" >&2; exit 2; }
BIN=$(realpath "$1"); MODELS=$(realpath "$2"); shift 2
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$BIN" ] || { echo "not an executable: $BIN" >&2; exit 1; }
[ -d "$MODELS" ] || { echo "no models folder: $MODELS" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pagan-soak.XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "scratch kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cp -r "$MODELS" "$WORK/models"
mkdir -p "$WORK/tmp"
TMPDIR=$WORK/tmp RUST_LOG=${RUST_LOG:-info} "$BIN" --models "$WORK/models" --bind 127.0.0.1:0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=
for _ in $(seq 300); do
  PORT=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$WORK/server.log" | head -1 | sed 's/.*://') || true
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.2
done
[ -n "$PORT" ] || { echo "pagan-serve did not log its port" >&2; exit 1; }
rc=0
"$PY" -u bench/soak.py --url "http://127.0.0.1:$PORT" --pid "$SERVER_PID" --server "$BIN" \
  --models "$WORK/models" --tmpdir "$WORK/tmp" "$@" || rc=$?
t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"; src=0; wait "$SERVER_PID" || src=$?
SERVER_PID=
printf '\nsoak server: SIGTERM -> exit %s after %.1f s; log lines WARN %s, ERROR %s (%s)\n' "$src" \
  "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b - a}')" "$(grep -c ' WARN ' "$WORK/server.log" || true)" \
  "$(grep -c ' ERROR ' "$WORK/server.log" || true)" "$WORK/server.log"
grep ' ERROR ' "$WORK/server.log" | head -5 || true
[ "$src" = 0 ] || rc=1
exit "$rc"
