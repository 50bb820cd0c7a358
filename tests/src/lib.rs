//! The harness of the end-to-end tests (tests/): the workspace's binaries, a child
//! `pagan-serve` on a port the kernel picked, and a minimal HTTP/1.1 client, so the tests
//! speak to the real service over a real socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A temporary folder removed when the test process exits, for fixtures built once and
/// kept in a `static`: statics are never dropped, so a `TempDir` held there would stay
/// behind after every run (150 MB each with the Inception extractor).
pub fn process_tempdir() -> PathBuf {
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static HOOK: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        if let Ok(dirs) = DIRS.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    unsafe extern "C" {
        fn atexit(cb: extern "C" fn()) -> std::ffi::c_int;
    }
    HOOK.call_once(|| {
        // SAFETY: atexit only records the pointer to a plain function; the test harness
        // leaves through exit() whether tests passed or failed, which runs it.
        let rc = unsafe { atexit(remove_all) };
        assert_eq!(rc, 0, "atexit refused the cleanup hook");
    });
    let dir = tempfile::tempdir().expect("tmp").keep();
    DIRS.lock().expect("fixture list").push(dir.clone());
    dir
}

/// Directory of the workspace's debug binaries (the tests run from target/debug/deps).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf()
}

/// A workspace binary, with no `PAGAN_*` variable inherited from the caller's shell.
/// `cargo test --workspace` (what `make test` runs) builds them before any test starts; a
/// nested `cargo build` here would wait forever on cargo's build-dir lock.
pub fn command(name: &str) -> Command {
    let b = bin_dir().join(name);
    assert!(
        b.exists(),
        "{} is missing: run `make test` (cargo test --workspace) or `cargo build -p pagan-trainer -p pagan-server` first",
        b.display()
    );
    let mut c = Command::new(b);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PAGAN_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "error");
    c
}

/// Runs `cmd`, asserts success, returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {cmd:?}\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The setup's Python (fails with the fix when `make setup` has not run).
pub fn python() -> Command {
    let p = repo().join(".venv/bin/python");
    assert!(p.exists(), "{} missing: run `make setup`", p.display());
    Command::new(p)
}

/// `pagan-train train` flags of the tests' tiny runs: 64 Fashion-MNIST images, demo
/// widths, batch 8 (seconds per run).
pub const TINY_RUN: [&str; 8] = [
    "--dataset",
    "fashion-mnist",
    "--preset",
    "demo",
    "--limit",
    "64",
    "--batch",
    "8",
];

/// Builds the service's smallest real models folder under `dir`: a tiny Fashion-MNIST run
/// (3 iterations, seconds) exported as model `tiny`, the Inception extractor, and the
/// 12-image test reference `fm12` (with features, for KID). Returns (models, run).
pub fn tiny_models(dir: &Path) -> (PathBuf, PathBuf) {
    let (models, run) = (dir.join("models"), dir.join("run"));
    let train = || command("pagan-train");
    run_ok(
        train()
            .arg("train")
            .args(TINY_RUN)
            .args(["--iters", "3", "--quiet", "--out"])
            .arg(&run),
    );
    run_ok(
        train()
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(models.join("tiny")),
    );
    run_ok(
        train()
            .arg("export-inception")
            .arg("--out")
            .arg(models.join("inception")),
    );
    fm12_reference(&models.join("references/fm12.npz"));
    (models, run)
}

/// Writes the statistics of 12 Fashion-MNIST test images (the seeded subset `stats --n 12`
/// takes; with features, for KID) to `out`: the tests' small reference `fm12`.
pub fn fm12_reference(out: &Path) {
    let reference = [
        "--dataset",
        "fashion-mnist",
        "--split",
        "test",
        "--n",
        "12",
        "--quiet",
    ];
    run_ok(
        command("pagan-train")
            .arg("stats")
            .args(reference)
            .arg("--out")
            .arg(out),
    );
}

/// A running `pagan-serve`, killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// The port it listens on (the kernel picked it: no race with other tests).
    pub port: u16,
    /// Everything it logged so far.
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `pagan-serve --models MODELS --bind 127.0.0.1:0 ARGS` and waits for the log
    /// line that names the port.
    pub fn start(models: &Path, args: &[&str]) -> Server {
        Self::start_command(command("pagan-serve"), models, args)
    }

    /// Like [`Server::start`], from a prepared `pagan-serve` command (extra environment).
    pub fn start_command(mut cmd: Command, models: &Path, args: &[&str]) -> Server {
        let mut child = cmd
            .arg("--models")
            .arg(models)
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn,pagan_serve=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pagan-serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (log, tx) = (log.clone(), tx.clone());
            // Drains the pipe for the server's whole life, so it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(port) = line
                        .split("listening on http://127.0.0.1:")
                        .nth(1)
                        .and_then(|p| p.split_whitespace().next())
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        let _ = tx.send(port);
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        let port = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "pagan-serve did not start: {}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            )
        });
        Server { child, port, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// One HTTP response: status, headers (raw), body.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The header block as received.
    pub headers: String,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (panics with the body otherwise).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// Asserts a JSON error with `status` and `code` and a non-empty message.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
}

/// One request on its own connection (`Connection: close`).
pub fn request(port: u16, method: &str, path: &str, ctype: &str, body: &[u8]) -> Response {
    let mut s = send_head(port, method, path, ctype, body.len(), "");
    s.write_all(body).expect("write body");
    read_response(s)
}

/// Connects and sends a request head (`Connection: close`, `extra` header lines each ending
/// in CRLF) announcing `length` body bytes; the caller sends the body, or part of it.
pub fn send_head(port: u16, method: &str, path: &str, ctype: &str, length: usize, extra: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {ctype}\r\n\
         {extra}Content-Length: {length}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write head");
    s
}

/// Reads a whole response (the request was sent with `Connection: close`).
pub fn read_response(mut s: TcpStream) -> Response {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).expect("hex").trim(), 16).expect("size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

/// `GET path`.
pub fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, "text/plain", b"")
}

/// `POST path` with a JSON body.
pub fn post_json(port: u16, path: &str, body: &serde_json::Value) -> Response {
    request(
        port,
        "POST",
        path,
        "application/json",
        body.to_string().as_bytes(),
    )
}

/// A multipart/form-data body of PNG files named `file`.
pub fn multipart(files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "pagan-e2e-boundary-7d1f";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A `/proc/PID/status` field in KiB (`VmRSS`: resident now, `VmHWM`: the peak so far).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
