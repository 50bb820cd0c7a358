#!/usr/bin/env bash
# `make bench`: every benchmark, each printing a markdown table of side-by-side measurements.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/train_step.sh
bash bench/stack.sh
if [ -f bench/frechet.sh ]; then bash bench/frechet.sh; fi
bash bench/score_options.sh
bash bench/inception.sh
bash bench/contract.sh
if [ -f models/fmnist-demo/manifest.json ] && [ -x target/release/pagan-serve ]; then
  bash bench/serve.sh
  # 32 clients x 60 s of mixed traffic, RSS sampled; then the fault scenarios.
  bash bench/soak.sh target/release/pagan-serve models --model fmnist-demo --reference fashion-mnist-test-500
else
  echo; echo "(service benchmark skipped: needs the demo model and reference; run 'make demo' first)"
fi
if [ "${DEVICE:-cpu}" = cpu ] && ./target/release/pagan-train bench --device cuda --iters 1 --repeats 1 --warmup 0 >/dev/null 2>&1; then
  DEVICE=cuda bash bench/train_step.sh
  DEVICE=cuda bash bench/stack.sh
  DEVICE=cuda bash bench/inception.sh
  echo; echo "(service benchmark on CUDA not automated: it needs pagan-serve built with --features cuda and the ORT CUDA provider; see docs/BENCHMARKS.md)"
else
  echo; echo "(no CUDA device visible to libtorch: GPU rows skipped)"
fi
