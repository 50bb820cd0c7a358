"""pagan-serve overhead, side by side in one run: generation latency of the HTTP service vs a
bare ONNX Runtime session on the same generator.onnx (same ORT 1.31.1 library, in this
process), and FID scoring images/s through /v1/fid vs the same Inception graph in bare ORT.
usage: serve.py --url http://127.0.0.1:PORT --models models --model NAME --reference REF [--json OUT.json]"""
import argparse, http.client, io, json, statistics, time, zipfile
from urllib.parse import urlparse

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--models", default="models")
p.add_argument("--model", required=True)
p.add_argument("--reference", required=True)
p.add_argument("--requests", type=int, default=300)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--fid-images", type=int, nargs="+", default=[64, 256])
p.add_argument("--json", help="also write every row as JSON here")
a = p.parse_args()
u = urlparse(a.url)


def call(method, path, body=b"", ctype="application/json", conn=None):
    """One request; a new TCP connection unless `conn` (a kept-alive one) is given."""
    c = conn or http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    c.request(method, path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    data = r.read()
    if conn is None:
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
# The bare side runs on the provider the server reports for this model, so a CUDA server is
# compared with bare ORT on CUDA (that needs the onnxruntime-gpu wheel in this Python).
served_on = json.loads(call("GET", f"/v1/models/{a.model}"))["provider"]
PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider"]}[served_on]
if PROVIDERS[0] not in ort.get_available_providers():
    raise SystemExit(f"the server runs {a.model} on {served_on}, but this Python's onnxruntime has only "
                     f"{ort.get_available_providers()}: install onnxruntime-gpu==1.31.1 for the bare side")
print(f"provider: {served_on} (server and bare ORT)")
gen = ort.InferenceSession(f"{a.models}/{a.model}/generator.onnx", so, providers=PROVIDERS)
# ORT falls back to CPU quietly when the CUDA provider cannot load (a missing cuDNN, say):
# then the bare side would not be what the server runs.
if gen.get_providers()[0] != PROVIDERS[0]:
    raise SystemExit(f"bare ORT asked for {PROVIDERS[0]} but runs on {gen.get_providers()}: the provider did not load")
latent = man["latent"]["size"]
rows = []
inside = []
keep = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
GEN_ROUTE = 'route="/v1/models/{name}/generate"'


def scrape():
    """(seconds, count) sums of the server's own generate-request and ORT-run histograms."""
    text = call("GET", "/metrics").decode()
    v = {}
    for line in text.splitlines():
        for key, pat in (("req", "http_request_duration_seconds"), ("ort", "ort_run_duration_seconds")):
            label = GEN_ROUTE if key == "req" else f'model="{a.model}"'
            for suffix in ("_sum", "_count"):
                if line.startswith(pat + suffix + "{") and label in line:
                    v[key + suffix] = float(line.rsplit(" ", 1)[1])
    return v


def floor(conn, reqs):
    """p50 of GET /healthz: the HTTP round trip of this client with no work behind it."""
    for _ in range(3):
        call("GET", "/healthz", conn=conn)
    xs = []
    for _ in range(reqs):
        t = time.perf_counter(); call("GET", "/healthz", conn=conn); xs.append(time.perf_counter() - t)
    return statistics.median(xs)


# (n, connection): a new TCP connection per request (a naive client) and a kept-alive one
# (what load balancers and HTTP client libraries do).
for n, kept in ((1, False), (1, True), (64, True)):
    reqs = a.requests if n == 1 else max(10, a.requests // 10)
    z = np.random.default_rng(0).uniform(-1, 1, (n, latent)).astype(np.float32)
    for _ in range(3):
        gen.run(None, {"z": z})
    bare = []
    for _ in range(reqs):
        t = time.perf_counter(); gen.run(None, {"z": z}); bare.append(time.perf_counter() - t)
    body = json.dumps({"n": n, "seed": 7, "format": "npy"}).encode()
    conn = keep if kept else None
    for _ in range(3):
        call("POST", f"/v1/models/{a.model}/generate", body, conn=conn)
    served = []
    before = scrape()
    for _ in range(reqs):
        t = time.perf_counter(); call("POST", f"/v1/models/{a.model}/generate", body, conn=conn); served.append(time.perf_counter() - t)
    after = scrape()
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    # Inside the server: handler time (JSON in, latents, ORT, npy out) vs ORT runs alone, means.
    inside.append((n, "kept-alive" if kept else "new per request", d["req_sum"] / d["req_count"], d["ort_sum"] / d["ort_count"],
                   statistics.mean(bare)))
    rows.append((n, "kept-alive" if kept else "new per request", reqs, statistics.median(bare), pct(bare, 99),
                 statistics.median(served), pct(served, 99), floor(conn, reqs)))

print("\n### Generation latency: pagan-serve (HTTP, npy) vs bare ONNX Runtime session, same model\n")
print("| n | HTTP connection | requests | bare ORT p50 ms | bare ORT p99 ms | server p50 ms | server p99 ms | overhead p50 | GET /healthz p50 ms | overhead p50 beyond /healthz |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for n, kind, r, b50, b99, s50, s99, h50 in rows:
    print(f"| {n} | {kind} | {r} | {b50*1e3:.2f} | {b99*1e3:.2f} | {s50*1e3:.2f} | {s99*1e3:.2f} | {(s50/b50-1)*100:+.0f}% "
          f"| {h50*1e3:.2f} | {((s50-h50)/b50-1)*100:+.0f}% |")
print("\n### Inside the server (its own /metrics, same requests): generate handler vs its ORT runs, means\n")
print("| n | HTTP connection | handler ms | its ORT runs ms | handler overhead | bare ORT ms (mean) |")
print("|---:|---|---:|---:|---:|---:|")
for n, kind, req, run, bare_mean in inside:
    print(f"| {n} | {kind} | {req*1e3:.3f} | {run*1e3:.3f} | {(req/run-1)*100:+.0f}% | {bare_mean*1e3:.3f} |")

# FID scoring: the same PNGs through /v1/fid vs bare ORT on inception.onnx (features only),
# both warm (one untimed call first), at each set size. /v1/fid also pays a fixed cost per
# request (the 2048-d Frechet distance, ~3 s on 2 cores), which small sets cannot amortise.
from PIL import Image

inc = ort.InferenceSession(f"{a.models}/inception/inception.onnx", so, providers=PROVIDERS)


def multipart(count, seed):
    zipped = call("POST", f"/v1/models/{a.model}/generate", json.dumps({"n": count, "seed": seed, "format": "zip"}).encode())
    zf = zipfile.ZipFile(io.BytesIO(zipped))
    names = sorted(zf.namelist())
    boundary = "benchboundary"
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{nm}\"\r\nContent-Type: image/png\r\n\r\n".encode() + zf.read(nm) + b"\r\n" for nm in names]
    imgs = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(nm))).convert("L"), dtype=np.float32) for nm in names])
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}", np.repeat(imgs[:, None], 3, axis=1)


warm_body, warm_type, warm_x = multipart(16, 1)
call("POST", f"/v1/fid?reference={a.reference}", warm_body, warm_type)
inc.run(None, {"images": warm_x})
fid_rows = []
for count in a.fid_images:
    body, ctype, x = multipart(count, 3)
    t = time.perf_counter()
    res = json.loads(call("POST", f"/v1/fid?reference={a.reference}", body, ctype))
    served_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(x), 16):
        inc.run(None, {"images": x[i:i + 16]})
    bare_s = time.perf_counter() - t
    fid_rows.append((count, count / bare_s, count / served_s, bare_s / served_s, res))
print("\n### FID scoring throughput: /v1/fid (upload, decode, features, statistics, FID) vs bare ORT features\n")
print("| images | bare ORT images/s | /v1/fid images/s | ratio |")
print("|---:|---:|---:|---:|")
for count, b, sv, r, _ in fid_rows:
    print(f"| {count} | {b:.2f} | {sv:.2f} | {r:.2f}x |")
res = fid_rows[-1][4]
print(f"\n(/v1/fid reported FID {res['fid']:.3f} on the last set, provider {res['provider']}, server seconds {res['seconds']:.2f})")
if a.json:
    keys = ("n", "connection", "requests", "bare_p50_s", "bare_p99_s", "server_p50_s", "server_p99_s", "healthz_p50_s")
    with open(a.json, "w") as f:
        json.dump({
            "provider": served_on,
            "latency": [dict(zip(keys, r)) for r in rows],
            "inside": [dict(zip(("n", "connection", "handler_mean_s", "ort_run_mean_s", "bare_mean_s"), r)) for r in inside],
            "fid_throughput": [{"images": c, "bare_images_per_s": b, "served_images_per_s": sv, "ratio": r, "fid": res["fid"],
                                "provider": res["provider"]} for c, b, sv, r, res in fid_rows],
        }, f, indent=1)
