#!/usr/bin/env bash
# Frechet distance at d=2048: ours (pagan-shared, faer Cholesky + symmetric eigenvalues)
# vs pytorch-fid's recipe (scipy.linalg.sqrtm of sigma1 @ sigma2, real part), on the
# same random SPD statistics written once to .npz files that both sides read.
# Prints a markdown table. Run from anywhere: bench/frechet.sh
# Env: D (2048), REPEATS (5, ours), SCIPY_REPEATS (3), SEED (0).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
    echo "error: $PY not found; run \`make setup\` first" >&2
    exit 1
fi
D=${D:-2048}
REPEATS=${REPEATS:-5}
SCIPY_REPEATS=${SCIPY_REPEATS:-3}
SEED=${SEED:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Random SPD covariances with a decaying spectrum (roughly like pool3 features).
"$PY" - "$tmp" "$D" "$SEED" <<'PYEOF'
import sys
import numpy as np
out, d, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
for name, tau in (("a", 300.0), ("b", 250.0)):
    a = rng.standard_normal((d, d)) * np.exp(-np.arange(d) / tau)
    sigma = a @ a.T / d + 1e-4 * np.eye(d)
    sigma = (sigma + sigma.T) / 2
    np.savez(f"{out}/{name}.npz", mu=rng.standard_normal(d) * 0.1, sigma=sigma)
PYEOF

echo "building the release example..." >&2
cargo build --release -q -p pagan-shared --example bench_frechet
ours_json=$(cargo run --release -q -p pagan-shared --example bench_frechet -- \
    "$tmp/a.npz" "$tmp/b.npz" "$REPEATS")

"$PY" - "$tmp" "$SCIPY_REPEATS" "$ours_json" <<'PYEOF'
import json, os, sys, time, warnings
import numpy as np
import scipy
from scipy import linalg
tmp, repeats, ours = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
a, b = np.load(f"{tmp}/a.npz"), np.load(f"{tmp}/b.npz")
m1, s1, m2, s2 = a["mu"], a["sigma"], b["mu"], b["sigma"]

def pytorch_fid_style():
    # The pytorch-fid recipe: sqrtm of the product, eps fallback, real part.
    diff = m1 - m2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))

times, cpu, fid = [], [], None
for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    fid = pytorch_fid_style()
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
t_scipy, c_scipy = float(np.median(times)), float(np.median(cpu))
t_ours, fid_ours = ours["median_s"], ours["fid"]
c_ours = ours["cpu_s"]
rel = abs(fid_ours - fid) / abs(fid)
d = s1.shape[0]
load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
print(f"Frechet distance, d={d}, median of {len(ours['times_s'])} (ours) / {repeats} (scipy) runs; "
      f"{os.cpu_count()} CPUs, load average {load}\n")
print("| method | median wall s | median CPU s | FID | rel. diff vs scipy | speed-up (wall) |")
print("|---|---|---|---|---|---|")
c_ours_s = "n/a" if c_ours is None else f"{c_ours:.2f}"
print(f"| ours (faer Cholesky + symmetric eigenvalues, release, {ours['threads']} threads) | {t_ours:.3f} | {c_ours_s} | "
      f"{fid_ours:.10f} | {rel:.2e} | {t_scipy / t_ours:.1f}x |")
print(f"| pytorch-fid recipe (scipy {scipy.__version__} sqrtm) | {t_scipy:.3f} | {c_scipy:.2f} | "
      f"{fid:.10f} | 0 | 1.0x |")
PYEOF
