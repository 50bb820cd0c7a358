#!/usr/bin/env bash
# What each scoring option (KID, precision/recall/density/coverage, bootstrap interval,
# FID-infinity) costs on top of FID on this machine, for scored sets of 1k and 10k images.
# Prints a markdown table. Env: SIZES ("1000 10000"), RESAMPLES (50).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building the release example..." >&2
cargo build --release -q -p pagan-shared --example bench_score_options
# shellcheck disable=SC2086
RESAMPLES=${RESAMPLES:-50} ./target/release/examples/bench_score_options ${SIZES:-1000 10000}
