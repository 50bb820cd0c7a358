#!/usr/bin/env bash
# Packs what a GPU session needs into .device/a and .device/b (git-ignored), each small
# enough for one device call (64 MiB with the checkout): the release trainer and the first
# part of the Inception weights in `a`, the rest of the weights and Fashion-MNIST in `b`.
# Then: call 1 runs scripts/device/gpu-1-bench.sh carrying .device/a, call 2 runs
# gpu-2-train.sh carrying .device/b, call 3 runs gpu-3-collect.sh carrying .device/c (see docs/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release/pagan-train
W=weights/pt_inception-2015-12-05.torchscript.pt
[ -x "$BIN" ] || { echo "missing $BIN: cargo build --release -p pagan-trainer" >&2; exit 1; }
[ -f "$W" ] || { echo "missing $W: make setup" >&2; exit 1; }
rm -rf .device
mkdir -p .device/a .device/b .device/c
gzip -c "$BIN" >.device/a/pagan-train.gz
sha1sum "$W" | cut -d' ' -f1 >.device/a/weights.sha1
split -b 55000000 "$W" .device/weights.part-
mv .device/weights.part-aa .device/a/
mv .device/weights.part-ab .device/b/
cp -L data/fashion-mnist/*-ubyte.gz .device/b/
gzip -c deps/onnxruntime/libonnxruntime.so.1.31.1 >.device/c/libonnxruntime.so.1.31.1.gz
tree_bytes=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
for d in a b c; do
  b=$(du -cb .device/$d | tail -1 | cut -f1)
  echo ".device/$d: $((b / 1000000)) MB + checkout $((tree_bytes / 1000000)) MB (limit 67 MB)"
  [ $((b + tree_bytes)) -lt 67000000 ] || { echo "too large for one call" >&2; exit 1; }
done
