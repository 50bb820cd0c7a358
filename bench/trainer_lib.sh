# Shared by the pagan-train benchmarks (sourced, not run): the repository root as working
# folder, and the settings every one of them takes from the environment.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEVICE=${DEVICE:-cpu}
THREADS=${THREADS:-$(nproc)}
BIN=${BIN:-target/release/pagan-train}
PY=${PY:-.venv/bin/python}
[ -x "$BIN" ] || { echo "missing $BIN: run 'cargo build --release -p pagan-trainer'"; exit 1; }
