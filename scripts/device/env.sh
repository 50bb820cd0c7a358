# Sourced by run.sh on the device machine (and by rehearse.sh here): paths, and the libtorch
# of the machine's Python first on the library path (the binary's rpath points at this
# machine's folders, which do not exist there).
P=${P:-/tmp/pg}
mkdir -p "$P"
PY=${PY:-python3}
TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PAGAN_DATA=$P/data
export PAGAN_INCEPTION_WEIGHTS=$P/inception.pt
export PYTHONUNBUFFERED=1
BIN=$P/pagan-train
# DEV=cpu and SMALL=1 rehearse on a CPU machine (rehearse.sh sets both).
DEV=${DEV:-cuda}
OUT=${OUT:-$P/out}
mkdir -p "$OUT"
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
# pick SMALL_VALUE FULL_VALUE: the first when rehearsing with SMALL=1.
pick() { if [ -n "${SMALL:-}" ]; then echo "$1"; else echo "$2"; fi; }
