"""Helpers shared by bench/soak.py and bench/soak_faults.py: a kept-alive HTTP client that
reconnects before reusing an idle connection, a pagan-serve process on 127.0.0.1:0, and
small statistics. Loopback only: nothing here talks to another host."""
import http.client
import io
import json
import os
import re
import signal
import subprocess
import time
import zipfile
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost")
# actix closes a kept-alive connection after 5 s idle; a client that reuses one later races
# that close. Reconnecting first keeps such races out of the error count.
IDLE_RECONNECT_S = 2.0


class Client:
    """One kept-alive connection (a thread's own). `call` returns (status, headers, body,
    seconds) with lower-case header names, or raises on a transport failure (after which
    the next call reconnects)."""

    def __init__(self, host, port, token=None, timeout=600):
        if host not in LOOPBACK:
            raise SystemExit(f"refusing to talk to {host}: loopback only")
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token
        self.conn = None
        self.last = 0.0

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def call(self, method, path, body=None, ctype=None, headers=None):
        if self.conn is None or time.monotonic() - self.last > IDLE_RECONNECT_S:
            self.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        h = dict(headers or {})
        if ctype:
            h["Content-Type"] = ctype
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        t = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except BaseException:
            self.close()
            raise
        dt = time.perf_counter() - t
        self.last = time.monotonic()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if r.will_close:
            self.close()
        return r.status, hdrs, data, dt

    def json(self, method, path, body=None, ctype=None):
        status, hdrs, data, _ = self.call(method, path, body, ctype)
        try:
            return status, hdrs, json.loads(data)
        except ValueError:
            return status, hdrs, {"_raw": data[:200].decode("utf-8", "replace")}


STARTED = []  # every Server started here, so a scenario that breaks leaves none running


def kill_started():
    for srv in STARTED:
        srv.kill()


class Server:
    """pagan-serve on 127.0.0.1:0 over `models`, its temp folder `tmpdir` (TMPDIR), its log
    in `log`; `port` is read from the `listening on` line."""

    def __init__(self, binary, models, tmpdir, log, extra=(), timeout=120):
        Path(tmpdir).mkdir(parents=True, exist_ok=True)
        self.log = Path(log)
        env = dict(os.environ, TMPDIR=str(tmpdir), RUST_LOG=os.environ.get("RUST_LOG", "info"))
        env.pop("PAGAN_BIND", None)
        offset = self.log.stat().st_size if self.log.exists() else 0  # the log may hold earlier servers'
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([binary, "--models", str(models), "--bind", "127.0.0.1:0", *extra],
                                         stdout=f, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        STARTED.append(self)
        self.port = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pagan-serve exited with {self.proc.returncode} at start; see {self.log}")
            with open(self.log, "rb") as f:
                f.seek(offset)
                m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.1)
        if self.port is None:
            self.kill()
            raise RuntimeError(f"pagan-serve did not log its port within {timeout} s; see {self.log}")

    def client(self, token=None):
        return Client("127.0.0.1", self.port, token)

    def kill(self):
        """SIGKILL, reaped."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        return self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM (graceful); returns (exit status, seconds to exit); SIGKILL after `timeout`."""
        t = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = self.kill()
        return rc, time.monotonic() - t


def pct(xs, q):
    """Nearest-rank percentile of `xs` (q in 0..100); NaN for an empty list."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def slope_per_min(points):
    """Least-squares slope of [(seconds, value)] in value units per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else 60 * sum((t - mt) * (v - mv) for t, v in points) / den


def proc_status(pid):
    """VmRSS, VmHWM (kB) and Threads of a live process from /proc/PID/status, plus its open
    file descriptors; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    v = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            v[key] = int(rest.split()[0])
    v["fds"] = fds
    return v


def upload_dirs(tmpdir):
    """`pagan-upload-*` folders in `tmpdir` with their total bytes."""
    out = []
    for d in sorted(Path(tmpdir).glob("pagan-upload-*")):
        size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d.is_dir() else 0
        out.append((d.name, size))
    return out


def multipart(files, boundary="soakboundary"):
    """(body, content type) of a multipart form with one `file` field per (name, bytes, type)."""
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{n}\"\r\n"
             f"Content-Type: {t}\r\n\r\n".encode() + b + b"\r\n" for n, b, t in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def zip_count(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return len(z.namelist())
