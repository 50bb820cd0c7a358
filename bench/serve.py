"""pagan-serve overhead, side by side in one run: generation latency of the HTTP service vs a
bare ONNX Runtime session on the same generator.onnx (same ORT 1.31.1 library, in this
process), and FID scoring images/s through /v1/fid vs the same Inception graph in bare ORT.
usage: serve.py --url http://127.0.0.1:PORT --models models --model NAME --reference REF"""
import argparse, http.client, io, json, statistics, time, zipfile
from urllib.parse import urlparse

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--models", default="models")
p.add_argument("--model", required=True)
p.add_argument("--reference", required=True)
p.add_argument("--requests", type=int, default=60)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--fid-images", type=int, default=64)
a = p.parse_args()
u = urlparse(a.url)


def call(method, path, body=b"", ctype="application/json"):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    c.request(method, path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    data = r.read()
    c.close()
    assert r.status == 200, (r.status, data[:300])
    return data


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


so = ort.SessionOptions()
if a.threads:
    so.intra_op_num_threads = a.threads
man = json.load(open(f"{a.models}/{a.model}/manifest.json"))
gen = ort.InferenceSession(f"{a.models}/{a.model}/generator.onnx", so, providers=["CPUExecutionProvider"])
latent = man["latent"]["size"]
rows = []
for n in (1, 64):
    reqs = a.requests if n == 1 else max(10, a.requests // 4)
    z = np.random.default_rng(0).uniform(-1, 1, (n, latent)).astype(np.float32)
    for _ in range(3):
        gen.run(None, {"z": z})
    bare = []
    for _ in range(reqs):
        t = time.perf_counter(); gen.run(None, {"z": z}); bare.append(time.perf_counter() - t)
    body = json.dumps({"n": n, "seed": 7, "format": "npy"}).encode()
    for _ in range(3):
        call("POST", f"/v1/models/{a.model}/generate", body)
    served = []
    for _ in range(reqs):
        t = time.perf_counter(); call("POST", f"/v1/models/{a.model}/generate", body); served.append(time.perf_counter() - t)
    rows.append((n, reqs, statistics.median(bare), pct(bare, 99), statistics.median(served), pct(served, 99)))

print("\n### Generation latency: pagan-serve (HTTP, npy) vs bare ONNX Runtime session, same model\n")
print("| n | requests | bare ORT p50 ms | bare ORT p99 ms | server p50 ms | server p99 ms | overhead p50 |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for n, r, b50, b99, s50, s99 in rows:
    print(f"| {n} | {r} | {b50*1e3:.2f} | {b99*1e3:.2f} | {s50*1e3:.2f} | {s99*1e3:.2f} | {(s50/b50-1)*100:+.0f}% |")

# FID scoring: the same PNGs through /v1/fid vs bare ORT on inception.onnx (features only).
zipped = call("POST", f"/v1/models/{a.model}/generate", json.dumps({"n": a.fid_images, "seed": 3, "format": "zip"}).encode())
zf = zipfile.ZipFile(io.BytesIO(zipped))
names = sorted(zf.namelist())
boundary = "benchboundary"
parts = []
for nm in names:
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{nm}\"\r\nContent-Type: image/png\r\n\r\n".encode() + zf.read(nm) + b"\r\n")
mp = b"".join(parts) + f"--{boundary}--\r\n".encode()
t = time.perf_counter()
res = json.loads(call("POST", f"/v1/fid?reference={a.reference}", mp, f"multipart/form-data; boundary={boundary}"))
served_s = time.perf_counter() - t
from PIL import Image
imgs = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(nm))).convert("L"), dtype=np.float32) for nm in names])
x = np.repeat(imgs[:, None], 3, axis=1)
inc = ort.InferenceSession(f"{a.models}/inception/inception.onnx", so, providers=["CPUExecutionProvider"])
t = time.perf_counter()
for i in range(0, len(x), 16):
    inc.run(None, {"images": x[i:i + 16]})
bare_s = time.perf_counter() - t
n = len(names)
print("\n### FID scoring throughput: /v1/fid (upload, decode, features, statistics, FID) vs bare ORT features\n")
print("| images | bare ORT images/s | /v1/fid images/s | ratio |")
print("|---:|---:|---:|---:|")
print(f"| {n} | {n/bare_s:.2f} | {n/served_s:.2f} | {bare_s/served_s:.2f}x |")
print(f"\n(/v1/fid reported FID {res['fid']:.3f}, provider {res['provider']})")
