"""ONNX Runtime session options on our Inception graph (CPU): which settings move its
throughput. Each row builds a fresh session on models/inception/inception.onnx and reports
the best of REPS timed passes over the same 32 random images, side by side in one run.
usage: .venv/bin/python bench/ort_options.py [--model PATH] [--reps N]"""
import argparse, time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("--model", default="models/inception/inception.onnx")
p.add_argument("--reps", type=int, default=3)
a = p.parse_args()
x = np.random.default_rng(0).uniform(0, 255, (32, 3, 28, 28)).astype(np.float32)


def options(**kw):
    so = ort.SessionOptions()
    for k, v in kw.get("config", {}).items():
        so.add_session_config_entry(k, v)
    if "threads" in kw:
        so.intra_op_num_threads = kw["threads"]
    if kw.get("parallel"):
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    return so


def rate(so, bs):
    s = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    s.run(None, {"images": x[:bs]})
    best = 0.0
    for _ in range(a.reps):
        t = time.perf_counter()
        for i in range(0, len(x), bs):
            s.run(None, {"images": x[i:i + bs]})
        best = max(best, len(x) / (time.perf_counter() - t))
    return best


rate(options(), 16)  # warm the machine up: the first session otherwise reads low
rows = [
    ("default (what pagan uses)", options(), 16),
    ("default, batch 4", options(), 4),
    ("default, batch 32", options(), 32),
    ("denormals as zero", options(config={"session.set_denormal_as_zero": "1"}), 16),
    ("intra-op spinning off", options(config={"session.intra_op.allow_spinning": "0"}), 16),
    ("intra-op threads = 2 set explicitly", options(threads=2), 16),
    ("parallel execution mode", options(parallel=True), 16),
    ("default again (drift check)", options(), 16),
]
print(f"\n### ONNX Runtime {ort.__version__} options, Inception features on CPU, 1x28x28 input replicated to 3 channels\n")
print("| setting | batch | images/s | ratio |")
print("|---|---:|---:|---:|")
ref = None
for name, so, bs in rows:
    r = rate(so, bs)
    ref = ref or r
    print(f"| {name} | {bs} | {r:.2f} | {r / ref:.2f}x |", flush=True)
