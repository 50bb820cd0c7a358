#!/usr/bin/env bash
# pagan-serve benchmarks: latency vs bare ORT (bench/serve.py), throughput and p99 at 1, 8 and
# 32 concurrent clients with wrk, FID images/s vs bare ORT. Needs a generator in models/
# (MODEL, default fmnist-demo: `make demo`), models/inception and a reference (REF).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-fmnist-demo}
REF=${REF:-fashion-mnist-test-500}
PORT=${PORT:-18080}
PY=${PY:-.venv/bin/python}
SERVE=${SERVE:-target/release/pagan-serve}
[ -x "$SERVE" ] || { echo "missing $SERVE: run 'cargo build --release -p pagan-server'"; exit 1; }
[ -f "models/$MODEL/manifest.json" ] || { echo "no model models/$MODEL: run 'make demo' (or set MODEL)"; exit 1; }
[ -f "models/references/$REF.npz" ] || { echo "no reference models/references/$REF.npz (make demo writes it)"; exit 1; }
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; else echo "install wrk (Debian package) for the load test"; fi
fi
. bench/serve_lib.sh
trap 'kill -TERM $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null' EXIT
start_server "$SERVE" "$PORT"
"$PY" -W ignore bench/serve.py --url "http://127.0.0.1:$PORT" --model "$MODEL" --reference "$REF"
if command -v wrk >/dev/null; then
  echo; echo "### Load: GET /v1/models/$MODEL/grid.png?n=1 with wrk (10 s per row, 2 wrk threads; 1 for one client)"; echo
  echo "| clients | requests/s | p50 | p99 |"
  echo "|---:|---:|---:|---:|"
  for c in 1 8 32; do
    wrk_row "http://127.0.0.1:$PORT/v1/models/$MODEL/grid.png?n=1&seed=7" "$c" 10s
  done
fi
