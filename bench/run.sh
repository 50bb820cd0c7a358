#!/usr/bin/env bash
# `make bench`: every benchmark, each printing a markdown table of side-by-side measurements.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/train_step.sh
if [ -f bench/frechet.sh ]; then bash bench/frechet.sh; fi
bash bench/inception.sh
if [ "${DEVICE:-cpu}" = cpu ] && ./target/release/pagan-train bench --device cuda --iters 1 --repeats 1 --warmup 0 >/dev/null 2>&1; then
  DEVICE=cuda bash bench/train_step.sh
  DEVICE=cuda bash bench/inception.sh
else
  echo; echo "(no CUDA device visible to libtorch: GPU rows skipped)"
fi
