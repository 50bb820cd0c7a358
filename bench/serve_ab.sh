#!/usr/bin/env bash
# A/B of two pagan-serve builds on this machine: alternates them ROUNDS times (default 2) and
# prints, per build and round, the n = 1 latency rows of bench/serve.py and wrk at 1, 8 and
# 32 clients. Alternating in one script keeps the machine's drift out of the comparison.
# usage: bench/serve_ab.sh A_BINARY B_BINARY   (env: MODEL, REF, PORT, ROUNDS, PY)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 A_BINARY B_BINARY"; exit 2; }
MODEL=${MODEL:-fmnist-demo}
REF=${REF:-fashion-mnist-test-500}
PORT=${PORT:-18111}
ROUNDS=${ROUNDS:-2}
PY=${PY:-.venv/bin/python}
command -v wrk >/dev/null || { echo "install wrk (Debian package)"; exit 1; }
for bin in "$@"; do [ -x "$bin" ] || { echo "not an executable: $bin"; exit 1; }; done
. bench/serve_lib.sh
for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    start_server "$bin" "$PORT"
    echo "== $bin, round $round"
    "$PY" -W ignore bench/serve.py --url "http://127.0.0.1:$PORT" --model "$MODEL" --reference "$REF" \
      --fid-images 16 | grep -E '^\| (n|1) \|'
    echo "| clients | requests/s | p50 | p99 |"
    for c in 1 8 32; do
      wrk_row "http://127.0.0.1:$PORT/v1/models/$MODEL/grid.png?n=1&seed=7" "$c" 8s
    done
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  done
done
