# Sourced by the gpu-*.sh scripts on the device machine: paths and the libtorch of its Python.
P=${P:-/tmp/pg}
mkdir -p "$P"
TORCH_LIB=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PAGAN_DATA=$P/data
export PAGAN_INCEPTION_WEIGHTS=$P/inception.pt
export PYTHONUNBUFFERED=1
BIN=$P/pagan-train
# DEV=cpu, SMALL=1 and SKIP_BENCH=1 rehearse the scripts on a CPU machine.
DEV=${DEV:-cuda}
OUT=${OUT:-$P/out}
mkdir -p "$OUT"
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
# pick SMALL_VALUE FULL_VALUE: the first when rehearsing with SMALL=1.
pick() { if [ -n "${SMALL:-}" ]; then echo "$1"; else echo "$2"; fi; }
