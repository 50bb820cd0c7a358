#!/usr/bin/env bash
# Packs the ONNX Runtime CUDA-provider proof (scripts/device/serve_cuda.sh) into
# .device/serve/1 .. .device/serve/K (git-ignored), one part per device call:
#   a pagan-serve built with --features cuda, onnxruntime-gpu 1.31.1's Python package for
#   Python 3.12 (libonnxruntime.so.1.31.1, libonnxruntime_providers_{cuda,shared}.so and the
#   Python binding, for the bare-ORT side), the generator MODEL and the Inception model from
#   MODELS, and MODELS/references/REF.npz if REF names one; one tar, zstd -19 --long=27,
#   split into parts of PART_BYTES (default 60,000,000). The last part also carries a
#   zstandard wheel, the fallback where the device has no zstd binary.
# Env: BIN (default target/cuda/release/pagan-serve: cargo build --release -p pagan-server
# --features cuda --target-dir target/cuda), MODELS (models), MODEL (fmnist-demo), REF
# (none: the device builds a reference from generated images), PART_BYTES, PY (.venv/bin/python).
# Separate from pack.sh (the training session): it touches only .device/serve.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/cuda/release/pagan-serve}
MODELS=${MODELS:-models}
MODEL=${MODEL:-fmnist-demo}
REF=${REF:-}
PART_BYTES=${PART_BYTES:-60000000}
PY=${PY:-.venv/bin/python}
ORT_VERSION=1.31.1
WHEELS=deps/wheels
LIMIT=67108864 # bytes one call may carry, checkout included

[ -x "$BIN" ] || { echo "missing $BIN: cargo build --release -p pagan-server --features cuda --target-dir target/cuda (or set BIN)" >&2; exit 1; }
grep -q CUDAExecutionProvider "$BIN" || { echo "$BIN has no CUDA provider in it: build it with --features cuda" >&2; exit 1; }
for f in "$MODELS/$MODEL/manifest.json" "$MODELS/inception/manifest.json" "$MODELS/inception/inception.onnx"; do
  [ -f "$f" ] || { echo "missing $f (set MODELS / MODEL)" >&2; exit 1; }
done
[ -z "$REF" ] || [ -f "$MODELS/references/$REF.npz" ] || { echo "missing $MODELS/references/$REF.npz" >&2; exit 1; }

# The wheels: Python 3.12 builds (the device's python3), whatever Python runs pip here.
mkdir -p "$WHEELS"
fetch() { # fetch NAME==VERSION: the manylinux cp312 wheel into deps/wheels, once
  ls "$WHEELS"/"$(echo "${1%%==*}" | tr - _)"-"${1##*==}"-cp312-*.whl >/dev/null 2>&1 && return 0
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS" "$1"
}
fetch "onnxruntime-gpu==$ORT_VERSION"
fetch "zstandard==0.25.0"
ORT_WHL=$(ls "$WHEELS"/onnxruntime_gpu-$ORT_VERSION-cp312-*.whl)
ZSTD_WHL=$(ls "$WHEELS"/zstandard-0.25.0-cp312-*.whl)

rm -rf .device/serve
STAGE=.device/serve/stage
mkdir -p "$STAGE/bin" "$STAGE/ort" "$STAGE/models/$MODEL" "$STAGE/models/inception" "$STAGE/models/references"
cp "$BIN" "$STAGE/bin/pagan-serve"
# The Python package without tools/transformers/quantization (not imported) and TensorRT.
unzip -q "$ORT_WHL" 'onnxruntime/__init__.py' 'onnxruntime/capi/*' 'onnxruntime/backend/*' 'onnxruntime/LICENSE' \
  'onnxruntime/ThirdPartyNotices.txt' -d "$STAGE/ort"
rm -f "$STAGE/ort/onnxruntime/capi/libonnxruntime_providers_tensorrt.so"
ln -s libonnxruntime.so.$ORT_VERSION "$STAGE/ort/onnxruntime/capi/libonnxruntime.so"
ln -s libonnxruntime.so.$ORT_VERSION "$STAGE/ort/onnxruntime/capi/libonnxruntime.so.1"
cp "$MODELS/$MODEL/manifest.json" "$MODELS/$MODEL/generator.onnx" "$STAGE/models/$MODEL/"
cp "$MODELS/inception/manifest.json" "$MODELS/inception/inception.onnx" "$STAGE/models/inception/"
[ -z "$REF" ] || cp "$MODELS/references/$REF.npz" "$STAGE/models/references/"
{ echo "model=$MODEL"; echo "ref=$REF"; echo "ort=$ORT_VERSION"; echo "commit=$(git rev-parse HEAD)$(git diff --quiet HEAD -- server shared || echo '+dirty')"
  echo "built=$(date -u +%FT%TZ)"; } >"$STAGE/pack.txt"

# The two ORT cores (the C library and the Python binding) next to each other in the tar, so
# --long finds what they share; the 284 MB CUDA provider after them.
CAPI=ort/onnxruntime/capi
ORDER=(pack.txt bin models "$CAPI/libonnxruntime.so.$ORT_VERSION" "$(cd "$STAGE" && ls "$CAPI"/onnxruntime_pybind11_state.*.so)")
mapfile -t REST < <(cd "$STAGE" && find ort \( -type f -o -type l \) ! -name "libonnxruntime.so.$ORT_VERSION" ! -name 'onnxruntime_pybind11_state.*.so' | sort)
echo "compressing $(du -sb "$STAGE" | cut -f1) bytes with zstd -19 --long=27 (several minutes on 2 cores)"
if command -v zstd >/dev/null; then
  tar -C "$STAGE" -cf - "${ORDER[@]}" "${REST[@]}" | nice zstd -19 --long=27 -T0 -q -c >.device/serve/pack.tar.zst
else
  "$PY" -c 'import zstandard' 2>/dev/null || "$PY" -m pip install -q zstandard
  tar -C "$STAGE" -cf - "${ORDER[@]}" "${REST[@]}" | nice "$PY" -c '
import sys, zstandard
p = zstandard.ZstdCompressionParameters.from_level(19, window_log=27, enable_ldm=True, threads=-1)
zstandard.ZstdCompressor(compression_params=p).copy_stream(sys.stdin.buffer, sys.stdout.buffer)' >.device/serve/pack.tar.zst
fi
rm -rf "$STAGE"
(cd .device/serve && split -b "$PART_BYTES" -d -a 2 pack.tar.zst part-)
mapfile -t PARTS < <(ls .device/serve/part-*)
K=${#PARTS[@]}
{
  echo "parts=$K"
  echo "whole=$(sha256sum .device/serve/pack.tar.zst | cut -d' ' -f1)"
  i=1; for p in "${PARTS[@]}"; do echo "part-$i=$(sha256sum "$p" | cut -d' ' -f1)"; i=$((i + 1)); done
} >.device/serve/manifest.txt
i=1
for p in "${PARTS[@]}"; do
  mkdir -p ".device/serve/$i"
  mv "$p" ".device/serve/$i/part-$i"
  cp .device/serve/manifest.txt ".device/serve/$i/"
  i=$((i + 1))
done
cp "$ZSTD_WHL" ".device/serve/$K/"
rm .device/serve/pack.tar.zst

tree_bytes=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo "calls: $K, back to back (scripts/device/README.md); checkout $((tree_bytes / 1000000)) MB travels with each"
for i in $(seq "$K"); do
  b=$(du -cb ".device/serve/$i" | tail -1 | cut -f1)
  echo "  call $i: carry .device/serve/$i ($((b / 1000000)) MB + checkout = $(((b + tree_bytes) / 1000000)) MB; limit 67.1 MB): bash scripts/device/serve_cuda.sh $i"
  [ $((b + tree_bytes)) -lt $LIMIT ] || { echo "too large for one call: lower PART_BYTES" >&2; exit 1; }
done
