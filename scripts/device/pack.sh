#!/usr/bin/env bash
# Packs what the two device calls need into .device/1 and .device/2 (git-ignored), each
# small enough for one call (64 MiB together with the checkout):
#   .device/1: the release trainer, Fashion-MNIST, the first part of the gzipped Inception
#              weights
#   .device/2: the rest of the weights
# Then one prepared command per call: `bash scripts/device/run.sh 1` carrying .device/1,
# and right after, on the still-warm machine, `bash scripts/device/run.sh 2` carrying
# .device/2 (scripts/device/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release/pagan-train
W=weights/pt_inception-2015-12-05.torchscript.pt
[ -x "$BIN" ] || { echo "missing $BIN: cargo build --release -p pagan-trainer" >&2; exit 1; }
[ -f "$W" ] || { echo "missing $W: make setup" >&2; exit 1; }
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [ -f "data/fashion-mnist/$f" ] || { echo "missing data/fashion-mnist/$f: make setup" >&2; exit 1; }
done
rm -rf .device
mkdir -p .device/1 .device/2
gzip -c "$BIN" >.device/1/pagan-train.gz
cp -L data/fashion-mnist/*-ubyte.gz .device/1/
sha1sum "$W" | cut -d' ' -f1 >.device/1/weights.sha1
# Call 1 carries the trainer and the data: the gzipped weights' first part fills what is
# left (gzip saves 6 MB of the 87 MB, which the two calls need since the checkout grew).
used=$(du -cb .device/1 | tail -1 | cut -f1)
tree_bytes=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
room=$(( 66500000 - tree_bytes - used ))
gzip -c "$W" >.device/weights.gz
head -c "$room" .device/weights.gz >.device/1/weights.part-aa
tail -c +"$((room + 1))" .device/weights.gz >.device/2/weights.part-ab
rm .device/weights.gz
for d in 1 2; do
  b=$(du -cb .device/$d | tail -1 | cut -f1)
  echo ".device/$d: $((b / 1000000)) MB + checkout $((tree_bytes / 1000000)) MB (limit 67.1 MB)"
  [ $((b + tree_bytes)) -lt 67108864 ] || { echo "too large for one call" >&2; exit 1; }
done
