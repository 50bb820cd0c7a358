#!/usr/bin/env bash
# pagan-serve on ONNX Runtime's CUDA provider, proven on the lent GPU machine in K back-to-back
# calls (scripts/device/README.md, "Serving on the CUDA provider"; pack first with
# scripts/device/pack_serve.sh). Results come back as files in $OUT; the parts wait under $P.
#
#   bash scripts/device/serve_cuda.sh K        (carry .device/serve/K): keeps part K under $P;
#                                              once every part is there, the proof itself:
#     unpack; nvidia-smi; ldd of the CUDA provider; pagan-serve --provider cuda: /readyz and
#     /v1/models; a reference from REF_N generated images (bare ORT features); FID of a
#     served model on CMP_NS images (1000 and 10000) as jobs; bench/serve.py (n=1 and n=64
#     latency vs a bare ORT CUDA session on the same generator.onnx, /v1/fid uploads vs bare
#     ORT); then the same binary with --provider cpu, the same FIDs (to 1e-3 relative, or
#     what finished by CPU_DEADLINE_S); serve_cuda.json + serve_cuda.md in $OUT
#   bash scripts/device/serve_cuda.sh rehearse  here, on the CPU: every stage from the packed
#                                              parts with DEV=cpu SMALL=1 in a scratch folder
#                                              acting as the device's /tmp; lists what comes back
# Env: P (/tmp/pgs), OUT ($P/out), DEV (cuda; cpu rehearses), SMALL=1 (tiny sizes), PY
# (python3), REF_N (10000), CMP_NS ("1000 10000"), CPU_DEADLINE_S (240), REQUESTS (300).
set -uo pipefail
T0=$SECONDS
cd "$(dirname "$0")/../.."
REPO=$PWD
stage=${1:?usage: serve_cuda.sh K | rehearse}

if [ "$stage" = rehearse ]; then
  set -e
  [ -f .device/serve/manifest.txt ] || { echo "pack first: bash scripts/device/pack_serve.sh" >&2; exit 1; }
  K=$(sed -n 's/^parts=//p' .device/serve/manifest.txt)
  P=$(mktemp -d /tmp/pgs-rehearse.XXXXXX)
  export P DEV=cpu SMALL=1 PY=${PY:-$PWD/.venv/bin/python}
  for k in $(seq "$K"); do
    export OUT=$P/out-$k
    echo "=== rehearsal: serve_cuda.sh $k (OUT=$OUT)"
    bash scripts/device/serve_cuda.sh "$k"
    n=$(find "$OUT" -type f | wc -l)
    big=$(find "$OUT" -type f -size +16M | wc -l)
    echo "=== call $k returned $n files (limit 8), $big over 16 MiB:"; ls -la "$OUT"
    [ "$n" -le 8 ] && [ "$big" = 0 ] || { echo "too many or too large files for one call" >&2; exit 1; }
  done
  echo "rehearsal ok: $P"
  exit 0
fi

P=${P:-/tmp/pgs}
OUT=${OUT:-$P/out}
DEV=${DEV:-cuda}
PY=${PY:-python3}
mkdir -p "$P" "$OUT"
stamp() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - T0))s] $*"; }
pick() { if [ -n "${SMALL:-}" ]; then echo "$1"; else echo "$2"; fi; }
left() { echo $(( $1 - (SECONDS - T0) )); }

# --- every call: keep this call's part (checked), then see whether all are there
src=.device/serve/$stage
[ -f "$src/manifest.txt" ] || { echo "no $src/manifest.txt: carry .device/serve/$stage (pack_serve.sh)" >&2; exit 1; }
K=$(sed -n 's/^parts=//p' "$src/manifest.txt")
cp "$src"/* "$P/"
missing=()
for i in $(seq "$K"); do
  want=$(sed -n "s/^part-$i=//p" "$P/manifest.txt")
  if [ ! -f "$P/part-$i.ok" ]; then
    if [ -f "$P/part-$i" ] && [ "$(sha256sum "$P/part-$i" | cut -d' ' -f1)" = "$want" ]; then touch "$P/part-$i.ok"; else missing+=("$i"); fi
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  stamp "call $stage of $K: part $stage kept in $P; still missing: ${missing[*]} (next: serve_cuda.sh ${missing[0]})" | tee "$OUT/stage-$stage.txt"
  exit 0
fi

# --- the last call: unpack
stamp "all $K parts here: unpacking"
unzstd() { # stdin -> stdout: the zstd binary, else Python's zstandard (carried wheel), else pyarrow
  if command -v zstd >/dev/null; then zstd -dc --long=27; return; fi
  if ! "$PY" -c 'import zstandard' 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --target "$P/site" "$P"/zstandard-*.whl >&2 && export PYTHONPATH=$P/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  "$PY" -c '
import sys
try:
    import zstandard
    zstandard.ZstdDecompressor(max_window_size=1 << 27).copy_stream(sys.stdin.buffer, sys.stdout.buffer)
except ImportError:
    import pyarrow as pa
    with pa.CompressedInputStream(pa.PythonFile(sys.stdin.buffer, mode="r"), "zstd") as f:
        while chunk := f.read(1 << 22):
            sys.stdout.buffer.write(chunk)'
}
rm -rf "$P/pack" "$P/res" && mkdir -p "$P/pack" "$P/res"
R=$P/res # this run's results (a rerun starts clean)
for i in $(seq "$K"); do cat "$P/part-$i"; done | unzstd | tar -x -C "$P/pack" || { echo "unpack failed" >&2; exit 1; }
UNPACK_S=$((SECONDS - T0))
cp "$P/pack/pack.txt" "$R/"
MODEL=$(sed -n 's/^model=//p' "$P/pack/pack.txt")
PREF=$(sed -n 's/^ref=//p' "$P/pack/pack.txt")
BIN=$P/pack/bin/pagan-serve
CAPI=$P/pack/ort/onnxruntime/capi
MODELS=$P/pack/models

# The server loads this ORT (and its CUDA provider beside it); CUDA 13 and cuDNN 9 come from
# the nvidia-* packages of the machine's Python (torch's), libtorch's folder after them.
export ORT_DYLIB_PATH=$CAPI/libonnxruntime.so.1.31.1
NVLIBS=$("$PY" - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except ImportError:
    roots = []
print(":".join(sorted({os.path.dirname(p) for r in roots for p in glob.glob(f"{r}/**/lib/lib*.so*", recursive=True)})))
PY
)
TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")' 2>/dev/null || true)
export LD_LIBRARY_PATH=$CAPI${NVLIBS:+:$NVLIBS}${TORCH_LIB:+:$TORCH_LIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The bare-ORT side: onnxruntime-gpu 1.31.1 for Python 3.12 from the pack (the machine's own
# onnxruntime is a CPU build). A rehearsal keeps its own Python's onnxruntime.
[ "$DEV" = cuda ] && export PYTHONPATH=$P/pack/ort${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
unset PAGAN_TOKEN PAGAN_TOKEN_FILE PAGAN_BIND PAGAN_PROVIDER

{ nvidia-smi 2>&1 || echo "(no nvidia-smi)"; } >"$OUT/nvidia-smi.txt"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU (DEV=$DEV)"; } | head -1 >"$R/device.txt"
ldd "$CAPI/libonnxruntime_providers_cuda.so" 2>&1 | grep "not found" >"$R/ldd-missing.txt" || true
"$PY" -c 'import json, onnxruntime as o; print(json.dumps({"version": o.__version__, "file": o.__file__, "providers": o.get_available_providers()}))' \
  >"$R/python-ort.json" 2>"$R/python-ort.err" || echo "{\"error\": \"$(tail -1 "$R/python-ort.err" | tr '"' "'")\"}" >"$R/python-ort.json"
stamp "GPU: $(cat "$R/device.txt"); missing libraries: $(wc -l <"$R/ldd-missing.txt"); Python ORT: $(cat "$R/python-ort.json")"

SERVER_PID=
start_server() { # start_server LABEL PROVIDER: sets URL and SERVER_PID, or returns 1
  local log=$R/server-$1.log
  : >"$log"
  "$BIN" --models "$MODELS" --bind 127.0.0.1:0 --provider "$2" >"$log" 2>&1 &
  SERVER_PID=$!
  URL=
  for _ in $(seq 600); do
    URL=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$log" | head -1 | sed 's/listening on //') || true
    [ -n "$URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$URL" ] || { echo "pagan-serve ($2) did not start:"; tail -20 "$log"; return 1; }
  curl -s "$URL/readyz" >"$R/readyz-$1.json"
  curl -s "$URL/v1/models" >"$R/models-$1.json"
  stamp "server $1 (--provider $2) at $URL: $(cat "$R/readyz-$1.json")"
}
stop_server() { [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; SERVER_PID=; }
trap stop_server EXIT
steps() { "$PY" -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)) if __import__("os").path.exists(p) else {}; d[sys.argv[2]]=float(sys.argv[3]); json.dump(d,open(p,"w"))' "$R/steps.json" "$1" "$2"; }
steps unpack "$UNPACK_S"

PROVIDER=$([ "$DEV" = cuda ] && echo cuda || echo cpu)
REF_N=${REF_N:-$(pick 64 10000)}
CMP_NS=${CMP_NS:-$(pick "24 40" "1000 10000")}
CPU_DEADLINE_S=${CPU_DEADLINE_S:-240}
t=$SECONDS
start_server cuda "$PROVIDER" || { cp "$R/server-cuda.log" "$OUT/server-cuda.log.txt"; exit 1; }
steps server_cuda_start $((SECONDS - t))
# No silent fallback: every model must run on the provider asked for, else stop here (the
# report says why: /readyz lists each failure with ONNX Runtime's reason).
if ! "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); p = sys.argv[2]
sys.exit(0 if r.get("models") and all(m.get("provider") == p for m in r["models"]) and (r.get("extractor") or {}).get("provider") == p and not r.get("failed") else 1)' \
    "$R/readyz-cuda.json" "$PROVIDER"; then
  stamp "the server does not run everything on $PROVIDER: stopping (see serve_cuda.md and server-cuda.log.txt)"
  stop_server
  tail -c 200000 "$R/server-cuda.log" >"$OUT/server-cuda.log.txt"
  "$PY" scripts/device/serve_cuda.py report --dir "$R" --out "$OUT"
  exit 1
fi
REF=${PREF:-gen-ref}
if [ -z "$PREF" ]; then
  t=$SECONDS
  stamp "reference: $REF_N generated images, bare ORT features on $PROVIDER"
  "$PY" scripts/device/serve_cuda.py reference --url "$URL" --models "$MODELS" --model "$MODEL" --name "$REF" \
    --n "$REF_N" --provider "$PROVIDER" --out "$R/reference.json" || echo "reference failed"
  steps reference $((SECONDS - t))
fi
for n in $CMP_NS; do
  t=$SECONDS
  stamp "FID of $MODEL, $n images, on the $PROVIDER-provider server"
  "$PY" scripts/device/serve_cuda.py fid --url "$URL" --model "$MODEL" --reference "$REF" --n "$n" --label "$PROVIDER" \
    --deadline 180 --out "$R/fid-cuda-$n.json"
  steps "fid_cuda_$n" $((SECONDS - t))
done
t=$SECONDS
stamp "bench/serve.py: generation latency and /v1/fid uploads vs bare ORT ($PROVIDER)"
timeout "$(left 420)" "$PY" -W ignore bench/serve.py --url "$URL" --models "$MODELS" --model "$MODEL" --reference "$REF" \
  --requests "${REQUESTS:-$(pick 20 300)}" --fid-images $(pick "16" "256 1024") --json "$R/serve-cuda.json" 2>&1 | tee "$OUT/serve_py.md"
steps serve_py $((SECONDS - t))
stop_server
tail -c 200000 "$R/server-cuda.log" >"$OUT/server-cuda.log.txt"

t=$SECONDS
start_server cpu cpu && {
  steps server_cpu_start $((SECONDS - t))
  for n in $CMP_NS; do
    d=$(( $(left 540) < CPU_DEADLINE_S ? $(left 540) : CPU_DEADLINE_S ))
    [ "$d" -gt 10 ] || { stamp "no time left for the CPU-side FID of $n"; break; }
    t=$SECONDS
    stamp "FID of $MODEL, $n images, on the CPU-provider server (deadline $d s)"
    "$PY" scripts/device/serve_cuda.py fid --url "$URL" --model "$MODEL" --reference "$REF" --n "$n" --label cpu \
      --deadline "$d" --out "$R/fid-cpu-$n.json"
    steps "fid_cpu_$n" $((SECONDS - t))
  done
  stop_server
}
tail -c 100000 "$R/server-cpu.log" >"$OUT/server-cpu.log.txt" 2>/dev/null
steps total $((SECONDS - T0))
"$PY" scripts/device/serve_cuda.py report --dir "$R" --out "$OUT"
rc=$?
stamp "done (exit $rc)"
exit $rc
