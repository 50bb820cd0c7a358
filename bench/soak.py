"""Soak test of a running pagan-serve (normally started by bench/soak.sh), loopback only.

N client threads (default 32), each with its own kept-alive connection, send D seconds
(default 60) of mixed traffic: POST /v1/models/{m}/generate (n=1 png, n=8 zip), GET
grid.png (n=16), small POST /v1/fid uploads (zips of 4/6/8 PNGs generated from the model at
start, scored against the reference), and async jobs (/v1/fid?...&async=true, then GET
/v1/jobs/{id} until done). The mix is drawn per client from a fixed seed, and every seed a
client draws is from a small set, so repeated requests must return the same bytes (and
the same FID): a difference is an error too. Anything but 2xx is an error, except the
documented 429 `busy` with a Retry-After header. The server's VmRSS/VmHWM, threads and
open files are sampled every second from /proc/PID/status.

Then the fault scenarios of bench/soak_faults.py (skip with --skip-faults): they start
their own servers from --server over --models (which they write into: pass a copy).

Prints markdown tables last; exit status 1 on any error or failed check.
usage: soak.py --url http://127.0.0.1:PORT --pid PID --server BIN --models DIR --tmpdir DIR"""
import argparse
import collections
import hashlib
import json
import math
import os
import random
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from soak_lib import Client, multipart, pct, proc_status, slope_per_min, upload_dirs, zip_count

MIX = "gen_png:40,gen_zip:15,grid:20,fid:15,job:10"
FID_SETS = ((4, 1001), (6, 1002), (8, 1003))  # (images, seed) of the uploaded zips
GEN_SEEDS = 8  # seeds 0..7: each response is cross-checked against the first one seen
JOB_TIMEOUT_S = 300


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the server under test (127.0.0.1 or localhost)")
    p.add_argument("--pid", type=int, required=True, help="its process id (for /proc/PID/status)")
    p.add_argument("--server", help="pagan-serve binary, for the fault scenarios")
    p.add_argument("--models", help="the models folder the server uses (fault scenarios write into it)")
    p.add_argument("--tmpdir", help="the server's TMPDIR: checked for leftover pagan-upload-* folders")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mix", default=MIX, help=f"kind:weight,... (default {MIX})")
    p.add_argument("--model", help="generator (default: the first one listed)")
    p.add_argument("--reference", default="fm12", help="reference for /v1/fid (default fm12)")
    p.add_argument("--growth-limit", type=float, default=2.0,
                   help="RSS slope in the last third, MiB/min, above which RSS counts as still growing")
    p.add_argument("--fail-on-growth", action="store_true", help="exit 1 when RSS is still growing")
    p.add_argument("--samples-csv", help="write the per-second samples here")
    p.add_argument("--skip-faults", action="store_true")
    p.add_argument("--upload-mib", type=int, default=64, help="fault (a): size of the killed upload")
    p.add_argument("--token", help="bearer token, if the server was started with --token")
    a = p.parse_args(argv)
    u = urlparse(a.url)
    a.host, a.port = u.hostname, u.port
    if a.host not in ("127.0.0.1", "localhost"):
        p.error("--url must be on 127.0.0.1 (loopback only)")
    a.weights = [(k, float(w)) for k, w in (item.split(":") for item in a.mix.split(","))]
    return a


class Soak:
    """Shared state of the client threads: records, errors, and first-seen answers."""

    def __init__(self, a, model, fid_bodies):
        self.a, self.model, self.fid_bodies = a, model, fid_bodies
        self.lock = threading.Lock()
        self.lat = collections.defaultdict(list)  # kind -> seconds of each 2xx answer
        self.status = collections.defaultdict(collections.Counter)  # kind -> status -> count
        self.errors = collections.Counter()  # "kind: what" -> count
        self.seen = {}  # (kind, key) -> digest or FID: answers must repeat exactly
        self.deadline = None

    def record(self, kind, status, seconds=None):
        with self.lock:
            self.status[kind][status] += 1
            if seconds is not None:
                self.lat[kind].append(seconds)

    def error(self, kind, what):
        with self.lock:
            self.errors[f"{kind}: {what}"] += 1

    def same(self, kind, key, value, rel=0.0):
        """Checks `value` against the first answer recorded under (kind, key)."""
        with self.lock:
            first = self.seen.setdefault((kind, key), value)
        if isinstance(value, float):
            ok = math.isclose(value, first, rel_tol=max(rel, 1e-12))
        else:
            ok = value == first
        if not ok:
            self.error(kind, f"answer differs from the first one for {key}: {value} vs {first}")

    def expect(self, kind, status, hdrs, data, dt, ok=(200,)):
        """Records one answer; True when it is an expected 2xx. A 429 with Retry-After is
        documented back-pressure, not an error."""
        if status in ok:
            self.record(kind, status, dt)
            return True
        self.record(kind, status)
        if status == 429 and "retry-after" in hdrs:
            return False
        self.error(kind, f"HTTP {status} {data[:160].decode('utf-8', 'replace')!r}")
        return False

    # One operation of each kind. `c` is the thread's Client, `rng` its random.Random.
    def gen_png(self, c, rng):
        seed = rng.randrange(GEN_SEEDS)
        body = json.dumps({"n": 1, "seed": seed, "format": "png"}).encode()
        r = c.call("POST", f"/v1/models/{self.model}/generate", body, "application/json")
        if self.expect("gen_png", *r):
            if not r[2].startswith(b"\x89PNG"):
                self.error("gen_png", "not a PNG")
            self.same("gen_png", seed, hashlib.sha1(r[2]).hexdigest())

    def gen_zip(self, c, rng):
        seed = rng.randrange(GEN_SEEDS)
        body = json.dumps({"n": 8, "seed": seed, "format": "zip"}).encode()
        r = c.call("POST", f"/v1/models/{self.model}/generate", body, "application/json")
        if self.expect("gen_zip", *r):
            try:
                if zip_count(r[2]) != 8:
                    self.error("gen_zip", "zip without 8 entries")
            except Exception as e:  # noqa: BLE001 - any unreadable zip is the finding
                self.error("gen_zip", f"unreadable zip: {e}")
            self.same("gen_zip", seed, hashlib.sha1(r[2]).hexdigest())

    def grid(self, c, rng):
        seed = rng.randrange(GEN_SEEDS)
        r = c.call("GET", f"/v1/models/{self.model}/grid.png?n=16&seed={seed}")
        if self.expect("grid", *r):
            if not r[2].startswith(b"\x89PNG"):
                self.error("grid", "not a PNG")
            self.same("grid", seed, hashlib.sha1(r[2]).hexdigest())

    def fid(self, c, rng):
        k = rng.randrange(len(self.fid_bodies))
        zipped = self.fid_bodies[k][0]
        r = c.call("POST", f"/v1/fid?reference={self.a.reference}", zipped, "application/zip")
        if self.expect("fid", *r):
            self.check_score("fid", k, json.loads(r[2]))

    def check_score(self, kind, k, res):
        n = FID_SETS[k][0]
        if not isinstance(res.get("fid"), (int, float)) or not math.isfinite(res["fid"]) or res.get("n") != n:
            self.error(kind, f"bad score {str(res)[:160]}")
            return
        # Same images, same extractor: the same number, up to float rounding.
        self.same("fid", k, float(res["fid"]), rel=1e-6)

    def job(self, c, rng):
        k = rng.randrange(len(self.fid_bodies))
        zipped, form, ctype = self.fid_bodies[k]
        body, ct = (zipped, "application/zip") if rng.random() < 0.5 else (form, ctype)
        t0 = time.perf_counter()
        status, hdrs, data, dt = c.call("POST", f"/v1/fid?reference={self.a.reference}&async=true", body, ct)
        if not self.expect("job_submit", status, hdrs, data, dt, ok=(202,)):
            if status == 429:
                time.sleep(0.5)  # back-pressure: Retry-After says 30 s; a short pause keeps the soak busy
            return
        acc = json.loads(data)
        href = hdrs.get("location") or acc.get("href")
        if not href or acc.get("status") != "queued":
            self.error("job_submit", f"202 without location/queued: {data[:160]!r}")
            return
        while True:
            time.sleep(0.2)
            r = c.call("GET", href)
            if not self.expect("job_poll", *r):
                return
            j = json.loads(r[2])
            if j["status"] == "done":
                self.record("job", 200, time.perf_counter() - t0)
                self.check_score("job", k, j["result"])
                return
            if j["status"] == "failed":
                self.record("job", "failed")
                self.error("job", f"failed: {j.get('error')}")
                return
            if time.perf_counter() - t0 > JOB_TIMEOUT_S:
                self.record("job", "timeout")
                self.error("job", f"not done after {JOB_TIMEOUT_S} s: {j}")
                return

    def client(self, i):
        rng = random.Random(self.a.seed * 1_000_003 + i)
        kinds = [k for k, _ in self.a.weights]
        weights = [w for _, w in self.a.weights]
        c = Client(self.a.host, self.a.port, self.a.token)
        while time.monotonic() < self.deadline:
            kind = rng.choices(kinds, weights)[0]
            try:
                getattr(self, kind)(c, rng)
            except Exception as e:  # noqa: BLE001 - transport failures are findings, not crashes
                self.record(kind, "exception")
                self.error(kind, f"{type(e).__name__}: {e}")
        c.close()


def sampler(pid, tmpdir, stop, out):
    """Every second: (t, VmRSS kB, VmHWM kB, threads, fds, pagan-upload-* folders)."""
    t0 = time.monotonic()
    while not stop.is_set():
        v = proc_status(pid)
        if v is None:
            out.append((time.monotonic() - t0, None, None, None, None, None))
            return
        dirs = len(upload_dirs(tmpdir)) if tmpdir else None
        out.append((time.monotonic() - t0, v["VmRSS"], v["VmHWM"], v["Threads"], v["fds"], dirs))
        stop.wait(1.0)


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def prepare(a):
    """The model name and the uploads (zip, multipart form, its type) generated from it."""
    c = Client(a.host, a.port, a.token)
    status, _, models = c.json("GET", "/v1/models")
    if status != 200 or not models.get("models"):
        raise SystemExit(f"/v1/models: {status} {models}")
    model = a.model or models["models"][0]["name"]
    status, _, refs = c.json("GET", "/v1/references")
    if a.reference not in [r["name"] for r in refs.get("references", [])]:
        raise SystemExit(f"reference {a.reference} is not served: {refs}")
    bodies = []
    for n, seed in FID_SETS:
        body = json.dumps({"n": n, "seed": seed, "format": "zip"}).encode()
        status, _, zipped, _ = c.call("POST", f"/v1/models/{model}/generate", body, "application/json")
        if status != 200:
            raise SystemExit(f"generating the upload set: HTTP {status}")
        form, ctype = multipart([(f"set{seed}.zip", zipped, "application/zip")])
        bodies.append((zipped, form, ctype))
    c.close()
    return model, bodies


def server_metrics(a):
    """(5xx answers the server counted, jobs_queue_depth) from its /metrics."""
    c = Client(a.host, a.port, a.token)
    status, _, data, _ = c.call("GET", "/metrics")
    c.close()
    five, depth = 0, None
    for line in data.decode().splitlines():
        if line.startswith("http_requests_total{") and 'status="5' in line:
            five += int(float(line.rsplit(" ", 1)[1]))
        if line.startswith("jobs_queue_depth"):
            depth = int(float(line.rsplit(" ", 1)[1]))
    return five, depth


def report(a, soak, samples, wall, post):
    """Markdown tables; returns the number of failed checks (errors included)."""
    mib = 1 / 1024
    kinds = [k for k, _ in a.weights] + (["job_submit", "job_poll"] if "job" in dict(a.weights) else [])
    print(f"\n### Soak: {a.clients} clients x {a.seconds:g} s, mix {a.mix}, seed {a.seed} ({wall:.1f} s wall)\n")
    print("| kind | answers | per s | 2xx | 429 | errors | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in kinds:
        st = soak.status.get(k, {})
        total = sum(st.values())
        ok = sum(v for s, v in st.items() if isinstance(s, int) and 200 <= s < 300)
        errs = sum(v for e, v in soak.errors.items() if e.startswith(k + ":"))
        lat = soak.lat.get(k, [])
        mx = max(lat) * 1e3 if lat else float("nan")
        print(f"| {k} | {total} | {total / wall:.1f} | {ok} | {st.get(429, 0)} | {errs} | {pct(lat, 50) * 1e3:.1f} "
              f"| {pct(lat, 99) * 1e3:.1f} | {mx:.1f} |")
    hist = collections.Counter()
    for st in soak.status.values():
        hist.update(st)
    print("\nStatus histogram (all answers; `job` rows count finished jobs): "
          + ", ".join(f"{s}: {v}" for s, v in sorted(hist.items(), key=lambda kv: str(kv[0]))))

    live = [s for s in samples if s[1] is not None]
    failed = sum(soak.errors.values())
    if live:
        # The last third of the traffic window, while every client is busy; the drain after
        # it (clients finishing long FID requests and jobs) would read as shrinking.
        last = [(t, r * mib) for t, r, *_ in live if a.seconds * 2 / 3 <= t <= a.seconds]
        slope = slope_per_min(last)
        at_deadline = min(live, key=lambda smp: abs(smp[0] - a.seconds))
        growing = slope > a.growth_limit
        if growing and a.fail_on_growth:
            failed += 1
        start, end = live[0], live[-1]
        print("\n### Server memory and handles (/proc/PID/status every 1 s)\n")
        print("| samples | RSS start MiB | RSS max MiB | RSS at traffic end MiB | RSS end (quiet) MiB | VmHWM MiB | slope last third MiB/min | still growing | threads start/max/end | fds start/max/end | pagan-upload-* max in flight |")
        print("|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|")
        dirs = [s[5] for s in live if s[5] is not None]
        print(f"| {len(live)} | {start[1] * mib:.1f} | {max(s[1] for s in live) * mib:.1f} | {at_deadline[1] * mib:.1f} | {end[1] * mib:.1f} "
              f"| {end[2] * mib:.1f} | {slope:+.2f} | {'yes' if growing else 'no'} (limit {a.growth_limit:g}) "
              f"| {start[3]}/{max(s[3] for s in live)}/{end[3]} | {start[4]}/{max(s[4] for s in live)}/{end[4]} "
              f"| {max(dirs) if dirs else 'n/a'} |")
    else:
        print("\n(no memory samples: the server process was not found)")
        failed += 1
    print("\n### After the soak (quiet for 3 s)\n")
    for check, value, ok in post:
        print(f"- {check}: {value}{'' if ok else '  **FAILED**'}")
        failed += 0 if ok else 1
    if soak.errors:
        print(f"\n### Errors ({sum(soak.errors.values())})\n")
        for e, v in soak.errors.most_common(40):
            print(f"- {v} x {e}")
    return failed


def main():
    a = parse_args()
    model, bodies = prepare(a)
    soak = Soak(a, model, bodies)
    samples, stop = [], threading.Event()
    smp = threading.Thread(target=sampler, args=(a.pid, a.tmpdir, stop, samples), daemon=True)
    smp.start()
    time.sleep(1.5)  # a baseline sample before the traffic
    print(f"soak: {a.clients} clients x {a.seconds:g} s against {a.url} (model {model}, reference {a.reference}, pid {a.pid}); "
          f"load average before: {loadavg()}", flush=True)
    t0 = time.monotonic()
    soak.deadline = t0 + a.seconds
    threads = [threading.Thread(target=soak.client, args=(i,), daemon=True) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    print(f"traffic ended; load average: {loadavg()} (other processes on this machine share its {os.cpu_count()} cores)")
    time.sleep(3)  # quiet: every job was polled to its end, temp folders should be gone
    stop.set()
    smp.join()
    # Sample times are relative to the sampler's start, 1.5 s before the traffic.
    samples = [(t - 1.5, *rest) for t, *rest in samples]
    if a.samples_csv:
        with open(a.samples_csv, "w") as f:
            f.write("t_s,vmrss_kb,vmhwm_kb,threads,fds,upload_dirs\n")
            f.writelines(",".join("" if x is None else (f"{x:.2f}" if isinstance(x, float) else str(x)) for x in smp) + "\n"
                         for smp in samples)
    post = []
    five, depth = server_metrics(a)
    post.append(("5xx answers counted by the server (/metrics)", five, five == 0))
    post.append(("jobs_queue_depth", depth, depth == 0))
    if a.tmpdir:
        left = upload_dirs(a.tmpdir)
        post.append((f"pagan-upload-* folders left in {a.tmpdir}", left or "none", not left))
    failed = report(a, soak, samples, wall, post)

    if not a.skip_faults:
        if not (a.server and a.models and a.tmpdir):
            raise SystemExit("the fault scenarios need --server, --models and --tmpdir (or pass --skip-faults)")
        import soak_faults
        failed += soak_faults.run_all(a, model)
    print(f"\nsoak: {'FAILED (' + str(failed) + ' errors or failed checks)' if failed else 'ok'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
