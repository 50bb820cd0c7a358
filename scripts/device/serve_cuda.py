"""Device-side steps of the CUDA-provider proof (scripts/device/serve_cuda.sh), loopback only.

  reference  build a reference from REF_N images the server generates: bare ORT features
             on the same inception.onnx (CUDA where asked, else CPU), mu/sigma in float64,
             uploaded as POST /v1/references/NAME (stored in the models folder, so the
             CPU-provider server started later loads it too)
  fid        /v1/models/M/fid?n=N&seed=S&async=true, polled to its end or a deadline
  report     everything under --dir merged into serve_cuda.json and serve_cuda.md
"""
import argparse
import glob
import http.client
import io
import json
import os
import sys
import time
import zipfile
from urllib.parse import urlparse


def call(url, method, path, body=None, ctype=None, timeout=600):
    u = urlparse(url)
    assert u.hostname in ("127.0.0.1", "localhost"), "loopback only"
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    c.request(method, path, body=body, headers={"Content-Type": ctype} if ctype else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def reference(a):
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    want = ["CUDAExecutionProvider"] if a.provider == "cuda" else ["CPUExecutionProvider"]
    sess = ort.InferenceSession(f"{a.models}/inception/inception.onnx", providers=want + ["CPUExecutionProvider"] * (a.provider == "cuda"))
    got = sess.get_providers()[0]
    if got != want[0]:
        # The bare CUDA side did not load (reported); a reference on the CPU, smaller so it
        # fits the call, still lets the two servers be compared.
        print(f"bare ORT asked for {want[0]}, got {got}: reference from {min(a.n, 2500)} images instead of {a.n}")
        a.n = min(a.n, 2500)
    t0 = time.perf_counter()
    imgs = []
    for i, start in enumerate(range(0, a.n, 1000)):
        n = min(1000, a.n - start)
        st, _, data = call(a.url, "POST", f"/v1/models/{a.model}/generate",
                           json.dumps({"n": n, "seed": 1000 + i, "format": "zip"}).encode(), "application/json")
        assert st == 200, (st, data[:200])
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in sorted(z.namelist()):
                im = Image.open(io.BytesIO(z.read(name)))
                x = np.asarray(im.convert("L") if im.mode in ("L", "LA", "I;16", "1") else im.convert("RGB"), dtype=np.float32)
                imgs.append(np.repeat(x[None], 3, 0) if x.ndim == 2 else x.transpose(2, 0, 1))
    gen_s = time.perf_counter() - t0
    x = np.stack(imgs)
    sess.run(None, {"images": x[:a.batch]})  # warm-up
    t1 = time.perf_counter()
    feats = np.concatenate([sess.run(None, {"images": x[i:i + a.batch]})[0] for i in range(0, len(x), a.batch)]).astype(np.float64)
    feat_s = time.perf_counter() - t1
    mu, sigma = feats.mean(0), np.cov(feats, rowvar=False)
    manifest = json.load(open(f"{a.models}/inception/manifest.json"))
    buf = io.BytesIO()
    np.savez(buf, mu=mu, sigma=sigma, n=np.int64(len(feats)), resize_mode=np.array(manifest["resize_mode"]))
    st, _, data = call(a.url, "POST", f"/v1/references/{a.name}", buf.getvalue(), "application/octet-stream")
    out = {"name": a.name, "n": len(feats), "status": st, "bare_provider": got, "asked": want[0],
           "generate_decode_s": gen_s, "bare_features_s": feat_s, "bare_images_per_s": len(feats) / feat_s,
           "answer": json.loads(data) if data[:1] == b"{" else data[:200].decode("utf-8", "replace")}
    json.dump(out, open(a.out, "w"), indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "answer"}))
    if st != 201:
        sys.exit(f"reference upload: HTTP {st} {data[:300]!r}")


def fid(a):
    t0 = time.perf_counter()
    st, hdrs, data = call(a.url, "POST", f"/v1/models/{a.model}/fid?reference={a.reference}&n={a.n}&seed={a.seed}&async=true")
    out = {"n": a.n, "seed": a.seed, "label": a.label, "submit_status": st}
    if st != 202:
        out["error"] = data[:300].decode("utf-8", "replace")
    else:
        href = hdrs.get("location") or json.loads(data)["href"]
        j = {}
        while time.perf_counter() - t0 < a.deadline:
            _, _, body = call(a.url, "GET", href)
            j = json.loads(body)
            if j["status"] in ("done", "failed"):
                break
            time.sleep(0.25)
        out.update(status=j.get("status"), done=j.get("done"), wall_s=time.perf_counter() - t0,
                   result=j.get("result"), error=j.get("error"))
        if j.get("status") == "done":
            out["images_per_s"] = a.n / j["result"]["seconds"]
    json.dump(out, open(a.out, "w"), indent=1)
    print(json.dumps({k: out.get(k) for k in ("label", "n", "status", "done", "wall_s", "images_per_s")}
                     | {"fid": (out.get("result") or {}).get("fid"), "provider": (out.get("result") or {}).get("provider")}))


def load(path, default=None):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return default


def report(a):
    d = a.dir
    r = {"device": open(f"{d}/device.txt").read().strip() if os.path.exists(f"{d}/device.txt") else None,
         "dev": os.environ.get("DEV", "cuda"), "pack": open(f"{d}/pack.txt").read().split() if os.path.exists(f"{d}/pack.txt") else None}
    r["steps"] = load(f"{d}/steps.json", {})
    for side in ("cuda", "cpu"):
        r[f"server_{side}"] = {"readyz": load(f"{d}/readyz-{side}.json"), "models": load(f"{d}/models-{side}.json")}
    r["reference"] = load(f"{d}/reference.json")
    r["ldd_missing"] = [x.strip() for x in open(f"{d}/ldd-missing.txt") if x.strip()] if os.path.exists(f"{d}/ldd-missing.txt") else None
    r["python_ort"] = load(f"{d}/python-ort.json")
    r["fid"] = []
    for path in sorted(glob.glob(f"{d}/fid-cuda-*.json"), key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0])):
        cu = load(path)
        cp = load(path.replace("fid-cuda-", "fid-cpu-"))
        row = {"n": cu["n"], "cuda": cu, "cpu": cp}
        f1, f2 = (cu.get("result") or {}).get("fid"), ((cp or {}).get("result") or {}).get("fid")
        if f1 is not None and f2 is not None:
            row["rel_diff"] = abs(f1 - f2) / max(abs(f2), 1e-12)
            row["same_1e-3"] = row["rel_diff"] <= 1e-3
        r["fid"].append(row)
    r["serve_py"] = load(f"{d}/serve-cuda.json")
    json.dump(r, open(f"{a.out}/serve_cuda.json", "w"), indent=1)

    def prov(side):
        rz = r[f"server_{side}"]["readyz"]
        if rz is None:
            return "not started"
        models = {m["name"]: m.get("provider") for m in rz.get("models", [])}
        ext = (rz.get("extractor") or {}).get("provider")
        failed = rz.get("failed") or []
        return f"models {models}, extractor {ext}" + (f", failed {failed}" if failed else "")

    L = [f"### pagan-serve ONNX Runtime provider proof ({r['dev']}; {r['device'] or 'no GPU'})", ""]
    L += ["| check | observed |", "|---|---|",
          f"| CUDA-side server (/readyz) | {prov('cuda')} |",
          f"| CPU-side server (/readyz) | {prov('cpu')} |",
          f"| provider libraries: missing shared objects (ldd) | {', '.join(x for x in (r['ldd_missing'] or []) if x) or 'none'} |",
          f"| Python bare ORT | {' '.join(str(v) for k, v in (r['python_ort'] or {}).items() if k != 'file')} |"]
    ref = r["reference"] or {}
    L.append(f"| reference `{ref.get('name')}` | {ref.get('n')} generated images, bare ORT on {ref.get('bare_provider')} "
             f"at {ref.get('bare_images_per_s', float('nan')):.0f} images/s, upload {ref.get('status')} |")
    L += ["", "| n | FID, CUDA-side server | FID, CPU-side server | relative difference | same to 1e-3 | CUDA-side images/s | CPU-side images/s |",
          "|---:|---:|---:|---:|---|---:|---:|"]
    for row in r["fid"]:
        cu, cp = row["cuda"], row["cpu"] or {}

        def val(x, key, fmt):
            v = (x.get("result") or {}).get(key) if key == "fid" else x.get(key)
            return fmt.format(v) if isinstance(v, (int, float)) else f"({x.get('status') or x.get('submit_status')}, done {x.get('done')})"
        L.append(f"| {row['n']} | {val(cu, 'fid', '{:.6f}')} | {val(cp, 'fid', '{:.6f}') if cp else 'not run'} "
                 f"| {row.get('rel_diff', float('nan')):.2e} | {row.get('same_1e-3', 'n/a')} "
                 f"| {val(cu, 'images_per_s', '{:.0f}')} | {val(cp, 'images_per_s', '{:.0f}') if cp else '-'} |")
    sp = r["serve_py"]
    if sp:
        L += ["", f"Generation (`bench/serve.py`, provider {sp['provider']} on both sides; npy format):", "",
              "| n | HTTP connection | requests | bare ORT p50 ms | bare ORT p99 ms | server p50 ms | server p99 ms | bare images/s (p50) | server images/s (p50) | server / bare |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for x in sp["latency"]:
            L.append(f"| {x['n']} | {x['connection']} | {x['requests']} | {x['bare_p50_s'] * 1e3:.2f} | {x['bare_p99_s'] * 1e3:.2f} "
                     f"| {x['server_p50_s'] * 1e3:.2f} | {x['server_p99_s'] * 1e3:.2f} | {x['n'] / x['bare_p50_s']:.0f} "
                     f"| {x['n'] / x['server_p50_s']:.0f} | {x['bare_p50_s'] / x['server_p50_s']:.2f}x |")
        L += ["", "| /v1/fid upload, images | bare ORT images/s | /v1/fid images/s | ratio |", "|---:|---:|---:|---:|"]
        for x in sp["fid_throughput"]:
            L.append(f"| {x['images']} | {x['bare_images_per_s']:.1f} | {x['served_images_per_s']:.1f} | {x['ratio']:.2f}x |")
    if r["steps"]:
        L += ["", "Steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["steps"].items())]
    text = "\n".join(L) + "\n"
    open(f"{a.out}/serve_cuda.md", "w").write(text)
    print(text)
    ok = all(row.get("same_1e-3") for row in r["fid"]) and bool(r["fid"])
    sys.exit(0 if ok else 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("reference")
    for k in ("url", "models", "model", "name", "out"):
        s.add_argument(f"--{k}", required=True)
    s.add_argument("--n", type=int, default=10000)
    s.add_argument("--batch", type=int, default=200)
    s.add_argument("--provider", choices=("cuda", "cpu"), default="cuda")
    s = sub.add_parser("fid")
    for k in ("url", "model", "reference", "out", "label"):
        s.add_argument(f"--{k}", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=2)
    s.add_argument("--deadline", type=float, default=300)
    s = sub.add_parser("report")
    s.add_argument("--dir", required=True)
    s.add_argument("--out", required=True)
    a = p.parse_args()
    {"reference": reference, "fid": fid, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
