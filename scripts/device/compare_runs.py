"""Compares two runs trained from the same seed, one with the eager step and one with the
CUDA-graph step: per metrics line, the relative difference of the D and G losses.
Prints a table and a verdict; exits 1 when they disagree beyond what kernel rounding
explains (early lines within --tol), so a broken replay (stale inputs, a wrong capture)
cannot pass. Usage: compare_runs.py EAGER_RUN GRAPH_RUN [--tol 1e-3] [--lines 20]"""
import argparse
import json
import sys


def lines(run):
    with open(f"{run}/metrics.jsonl") as f:
        return [json.loads(l) for l in f if l.strip()]


ap = argparse.ArgumentParser()
ap.add_argument("eager")
ap.add_argument("graph")
ap.add_argument("--tol", type=float, default=1e-3)
ap.add_argument("--lines", type=int, default=20)
a = ap.parse_args()
e, g = lines(a.eager), lines(a.graph)
if len(e) != len(g) or not e:
    print(f"DIFFERENT: {len(e)} vs {len(g)} metrics lines")
    sys.exit(1)
print("| iter | D eager | D graph | G eager | G graph | max rel diff |")
print("|---:|---:|---:|---:|---:|---:|")
worst = 0.0
for x, y in zip(e, g):
    rel = max(abs(x[k] - y[k]) / max(abs(x[k]), 1e-6) for k in ("d_loss", "g_loss"))
    if x["iter"] <= a.lines:
        worst = max(worst, rel)
    print(f"| {x['iter']} | {x['d_loss']:.6f} | {y['d_loss']:.6f} | {x['g_loss']:.6f} | {y['g_loss']:.6f} | {rel:.2e} |")
ok = worst <= a.tol
print(f"\n{'SAME' if ok else 'DIFFERENT'}: largest relative loss difference over the first {a.lines} "
      f"iterations {worst:.2e} (tolerance {a.tol:g})")
sys.exit(0 if ok else 1)
