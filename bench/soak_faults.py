"""Fault scenarios for bench/soak.py, each against servers of its own (127.0.0.1:0) over the
soak's models folder (a copy: scenario (a) writes a reference into it and removes it again),
each with a TMPDIR of its own under --tmpdir, so leftover upload folders are unambiguous.

(a) kill_during_upload: SIGKILL while a large reference upload streams in slowly; then no
    partial or temp file may be left under references/, a restarted server must be ready,
    must not list the name, and must accept the name afterwards (fm12.npz's bytes). Whether
    the killed process left its `pagan-upload-*` folder behind is reported, not failed.
(a2) kill_during_store: SIGKILL in the window where the received npz is copied into
    references/ as a temp file; the restart must list the name only if its file is whole.
(b) full_queue: a server with --job-queue 1 --job-threshold 2 gets a burst of scoring jobs
    at once; at least one must be refused with 429, a Retry-After header and a JSON `busy`
    error; every accepted job must finish, and the queue must accept work again after."""
import http.client
import json
import os
import threading
import time
from pathlib import Path

from soak_lib import Server, kill_started, multipart, upload_dirs

UPLOAD_NAME = "soak-fault-a"
CHUNK = 1 << 20


def _check(results, scenario, check, value, ok, fail=True):
    """Appends a row; `fail=False` rows are reported only."""
    results.append((scenario, check, value, "ok" if ok else ("**FAILED**" if fail else "see note")))
    return 0 if ok or not fail else 1


def kill_during_upload(a, results):
    failed = 0
    s = "a: kill -9 during upload"
    refs = Path(a.models) / "references"
    before = set(os.listdir(refs))
    target = refs / f"{UPLOAD_NAME}.npz"
    if target.exists():
        raise SystemExit(f"{target} exists already: remove it (a previous run stopped half-way)")
    tmp = Path(a.tmpdir) / "fault-a"
    srv = Server(a.server, a.models, tmp, Path(a.tmpdir) / "fault-a.log")
    total = a.upload_mib * CHUNK
    hc = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    hc.putrequest("POST", f"/v1/references/{UPLOAD_NAME}")
    hc.putheader("Content-Type", "application/octet-stream")
    hc.putheader("Content-Length", str(total))
    if a.token:
        hc.putheader("Authorization", f"Bearer {a.token}")
    hc.endheaders()
    # Slowly: 1 MiB every 50 ms; SIGKILL once a quarter is on the server's disk.
    chunk = (bytes(range(256)) * (CHUNK // 256))
    sent, on_disk, send_error = 0, 0, None
    deadline = time.monotonic() + 120
    try:
        while sent < total and time.monotonic() < deadline:
            hc.send(chunk)
            sent += len(chunk)
            time.sleep(0.05)
            on_disk = sum(b for _, b in upload_dirs(tmp))
            if on_disk >= total // 4:
                break
    except OSError as e:
        send_error = e
    in_flight = upload_dirs(tmp)
    srv.kill()
    try:
        hc.send(chunk)
        hc.getresponse()
    except (OSError, http.client.HTTPException):
        pass
    hc.close()
    failed += _check(results, s, "upload in flight at the kill (sent / on the server's disk)",
                     f"{sent >> 20} MiB / {on_disk >> 20} MiB of {a.upload_mib} MiB" + (f", send error {send_error}" if send_error else ""),
                     bool(in_flight) and on_disk > 0 and send_error is None)
    extra = sorted(set(os.listdir(refs)) - before)
    failed += _check(results, s, "files under references/ besides the earlier ones", extra or "none", not extra)
    left = upload_dirs(tmp)
    _check(results, s, f"pagan-upload-* left in the killed server's TMPDIR ({tmp})",
           ", ".join(f"{n} ({b >> 20} MiB)" for n, b in left) or "none", not left, fail=False)

    srv2 = Server(a.server, a.models, tmp, Path(a.tmpdir) / "fault-a.log")
    c = srv2.client(a.token)
    status, _, ready = c.json("GET", "/readyz")
    failed += _check(results, s, "restart on the same folder: /readyz", status, status == 200 and ready.get("ready") is True)
    status, _, listed = c.json("GET", "/v1/references")
    names = [r["name"] for r in listed.get("references", [])]
    failed += _check(results, s, f"{UPLOAD_NAME} absent from GET /v1/references", names, status == 200 and UPLOAD_NAME not in names)
    after_restart = upload_dirs(tmp)
    _check(results, s, "killed process's pagan-upload-* still there after the restart",
           ", ".join(n for n, _ in after_restart) or "none (cleaned at start)", not after_restart, fail=False)
    npz = (refs / f"{a.reference}.npz").read_bytes()
    status, _, body = c.json("POST", f"/v1/references/{UPLOAD_NAME}", npz, "application/octet-stream")
    failed += _check(results, s, f"upload {UPLOAD_NAME} again ({a.reference}.npz's bytes)", f"{status} n={body.get('n')}", status == 201)
    status, _, listed = c.json("GET", "/v1/references")
    names = [r["name"] for r in listed.get("references", [])]
    failed += _check(results, s, "now listed", UPLOAD_NAME in names, UPLOAD_NAME in names)
    status, hdrs, body = c.json("POST", f"/v1/references/{UPLOAD_NAME}", npz, "application/octet-stream")
    code = body.get("error", {}).get("code")
    failed += _check(results, s, "the same name once more", f"{status} {code}", status == 409 and code == "conflict")
    c.close()
    rc, secs = srv2.stop()
    failed += _check(results, s, "SIGTERM of the restarted server", f"exit {rc} after {secs:.1f} s", rc == 0)
    now = sorted(set(os.listdir(refs)) - before)
    failed += _check(results, s, "references/ after it stopped (new files)", now, now == [f"{UPLOAD_NAME}.npz"])
    mine = [n for n, _ in upload_dirs(tmp) if n not in {m for m, _ in left}]
    failed += _check(results, s, "pagan-upload-* left by the restarted server (uploads finished)", mine or "none", not mine)
    target.unlink(missing_ok=True)  # the models folder as it was, so a rerun starts clean
    return failed


def kill_during_store(a, results):
    """(a2) The narrower window after the body has arrived: the server validates the npz and
    copies it beside the target as `.NAME.npz.tmp*` before renaming. Poll references/ and
    SIGKILL as soon as that temp file shows up. Whether the window was hit is luck (reported);
    what must hold: a restart is ready and lists the name only if its file is complete."""
    failed = 0
    s = "a2: kill -9 while storing"
    name = UPLOAD_NAME + "2"
    refs = Path(a.models) / "references"
    before = set(os.listdir(refs))
    tmp = Path(a.tmpdir) / "fault-a2"
    npz = (refs / f"{a.reference}.npz").read_bytes()
    caught, seen = None, set()
    for attempt in range(3):
        srv = Server(a.server, a.models, tmp, Path(a.tmpdir) / "fault-a2.log")
        done = threading.Event()

        def send():
            c = srv.client(a.token)
            try:
                c.call("POST", f"/v1/references/{name}", npz, "application/octet-stream")
            except Exception:  # noqa: BLE001 - the server is killed under it
                pass
            c.close()
            done.set()

        th = threading.Thread(target=send)
        th.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not done.is_set():
            new = [n for n in os.listdir(refs) if name in n]
            seen.update(new)
            if any(".tmp" in n for n in new):
                srv.kill()
                caught = new
                break
            time.sleep(0.0005)
        srv.kill()
        th.join()
        if caught:
            break
        (refs / f"{name}.npz").unlink(missing_ok=True)  # stored before the kill: try again
    left = sorted(n for n in set(os.listdir(refs)) - before)
    _check(results, s, "temp file seen and killed (3 tries)", caught or f"missed; seen {sorted(seen) or 'nothing'}", bool(caught), fail=False)
    _check(results, s, "files under references/ right after the kill", left or "none", not any(".tmp" in n for n in left), fail=False)
    srv = Server(a.server, a.models, tmp, Path(a.tmpdir) / "fault-a2.log")
    c = srv.client(a.token)
    status, _, _ = c.json("GET", "/readyz")
    failed += _check(results, s, "restart: /readyz", status, status == 200)
    status, _, listed = c.json("GET", "/v1/references")
    names = {r["name"]: r for r in listed.get("references", [])}
    complete = (refs / f"{name}.npz").exists() and (refs / f"{name}.npz").read_bytes() == npz
    failed += _check(results, s, f"{name} listed only if its file is complete",
                     f"listed={name in names}, complete file={complete}", (name in names) == complete)
    c.close()
    srv.stop()
    stale = sorted(n for n in os.listdir(refs) if name in n and ".tmp" in n)
    _check(results, s, "temp files still under references/ after the restart", stale or "none", not stale, fail=False)
    for n in set(os.listdir(refs)) - before:  # the models folder as it was
        (refs / n).unlink()
    return failed


def full_queue(a, model, results):
    failed = 0
    s = "b: full job queue"
    tmp = Path(a.tmpdir) / "fault-b"
    srv = Server(a.server, a.models, tmp, Path(a.tmpdir) / "fault-b.log", extra=["--job-queue", "1", "--job-threshold", "2"])
    c0 = srv.client(a.token)
    body = json.dumps({"n": 8, "seed": 5, "format": "zip"}).encode()
    status, _, zipped, _ = c0.call("POST", f"/v1/models/{model}/generate", body, "application/json")
    assert status == 200, status
    form, ctype = multipart([("set.zip", zipped, "application/zip")])
    burst = 8
    answers = [None] * burst
    gate = threading.Barrier(burst)

    def submit(i):
        c = srv.client(a.token)
        # Half: a served model's FID over the threshold (a job without async=true); half:
        # uploads with async=true, alternately raw zip and multipart.
        if i % 2 == 0:
            req = ("POST", f"/v1/models/{model}/fid?reference={a.reference}&n=48&seed={i}", None, None)
        else:
            req = ("POST", f"/v1/fid?reference={a.reference}&async=true", *((zipped, "application/zip") if i % 4 == 1 else (form, ctype)))
        gate.wait()
        try:
            answers[i] = c.call(*req)
        except Exception as e:  # noqa: BLE001 - reported as an answer
            answers[i] = (f"{type(e).__name__}: {e}", {}, b"", 0.0)
        c.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(burst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r[0] for r in answers]
    accepted = [r for r in answers if r[0] == 202]
    refused = [r for r in answers if r[0] == 429]
    failed += _check(results, s, f"{burst} submissions at once: statuses", sorted(statuses, key=str),
                     all(x in (202, 429) for x in statuses))
    failed += _check(results, s, "accepted (202) / refused (429)", f"{len(accepted)} / {len(refused)}", len(refused) >= 1 and len(accepted) >= 1)
    bad = []
    for st, hdrs, data, _ in refused:
        try:
            code = json.loads(data)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        ra = hdrs.get("retry-after", "")
        if not ra.isdigit() or int(ra) <= 0 or code != "busy" or not hdrs.get("content-type", "").startswith("application/json"):
            bad.append((ra, code, hdrs.get("content-type")))
    ras = sorted({r[1].get("retry-after") for r in refused})
    failed += _check(results, s, "every 429 has Retry-After and a JSON `busy` error", bad or f"Retry-After {ras}", not bad)
    # Every accepted job runs to its end.
    states = []
    for _, hdrs, data, _ in accepted:
        href = hdrs.get("location") or json.loads(data).get("href")
        t = time.monotonic()
        while True:
            _, _, j = c0.json("GET", href)
            if j.get("status") in ("done", "failed") or time.monotonic() - t > 300:
                states.append(j.get("status"))
                break
            time.sleep(0.2)
    failed += _check(results, s, "accepted jobs' end states", states, all(x == "done" for x in states))
    status, hdrs, data, _ = c0.call("POST", f"/v1/models/{model}/fid?reference={a.reference}&n=4&seed=9&async=true")
    ok = status == 202
    if ok:
        href = hdrs.get("location")
        for _ in range(600):
            _, _, j = c0.json("GET", href)
            if j.get("status") in ("done", "failed"):
                break
            time.sleep(0.2)
        ok = j.get("status") == "done"
    failed += _check(results, s, "a job after the queue drained", f"{status}, {'done' if ok else 'not done'}", ok)
    _, _, metrics, _ = c0.call("GET", "/metrics")
    depth = [line for line in metrics.decode().splitlines() if line.startswith("jobs_queue_depth")]
    failed += _check(results, s, "jobs_queue_depth at the end", depth, depth == ["jobs_queue_depth 0"])
    left = upload_dirs(tmp)
    failed += _check(results, s, "pagan-upload-* left (refused and finished uploads)", left or "none", not left)
    c0.close()
    rc, secs = srv.stop()
    failed += _check(results, s, "SIGTERM", f"exit {rc} after {secs:.1f} s", rc == 0)
    return failed


def run_all(a, model):
    results, failed = [], 0
    for name, fn in (("a", lambda r: kill_during_upload(a, r)), ("a2", lambda r: kill_during_store(a, r)),
                     ("b", lambda r: full_queue(a, model, r))):
        try:
            failed += fn(results)
        except Exception as e:  # noqa: BLE001 - a scenario that breaks is a failed check
            results.append((name, "scenario ran", f"{type(e).__name__}: {e}", "**FAILED**"))
            failed += 1
        finally:
            kill_started()
    print("\n### Fault scenarios\n")
    print("| scenario | check | observed | result |")
    print("|---|---|---|---|")
    for row in results:
        print("| " + " | ".join(str(x).replace("|", "/") for x in row) + " |")
    return failed


if __name__ == "__main__":
    raise SystemExit("run through bench/soak.py (or bench/soak.sh)")
