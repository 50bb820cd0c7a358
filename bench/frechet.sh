#!/usr/bin/env bash
# Frechet distance at d=2048: ours (pagan-shared, faer symmetric eigendecompositions)
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
import json, sys, time, warnings
import numpy as np
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

times, fid = [], None
for _ in range(repeats):
    t0 = time.perf_counter()
    fid = pytorch_fid_style()
    times.append(time.perf_counter() - t0)
t_scipy = float(np.median(times))
t_ours, fid_ours = ours["median_s"], ours["fid"]
rel = abs(fid_ours - fid) / abs(fid)
d = s1.shape[0]
print(f"Frechet distance, d={d}, median of {len(ours['times_s'])} (ours) / {repeats} (scipy) runs\n")
print("| method | median s | FID | rel. diff vs scipy | speed-up |")
print("|---|---|---|---|---|")
print(f"| ours (faer eigh, release, {ours['threads']} threads) | {t_ours:.3f} | {fid_ours:.10f} | {rel:.2e} | {t_scipy / t_ours:.1f}x |")
print(f"| pytorch-fid recipe (scipy {__import__('scipy').__version__} sqrtm) | {t_scipy:.3f} | {fid:.10f} | 0 | 1.0x |")
PYEOF
