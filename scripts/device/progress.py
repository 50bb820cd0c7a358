"""One status line for a sweep folder: each run's iteration and its last evaluation."""
import glob
import json
import os
import sys

parts = []
for m in sorted(glob.glob(os.path.join(sys.argv[1], "*", "metrics.jsonl"))):
    rows = []
    for line in open(m):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    if not rows:
        continue
    ev = [r for r in rows if "kid" in r]
    s = f"{os.path.basename(os.path.dirname(m))} it={rows[-1].get('iter')} lvl={rows[-1].get('pa_level')}"
    if ev:
        e = ev[-1]
        s += f" @{e['iter']}: fid={e.get('fid') or float('nan'):.2f} kid={e['kid']:.4f}"
    parts.append(s)
print(" | ".join(parts))
