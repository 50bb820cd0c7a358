//! The whole product over a real socket: train a tiny model with `pagan-train`, export it
//! and the Inception, compute a reference, start the real `pagan-serve` binary on a free
//! port, and call it over HTTP. Scores must equal `pagan-train fid` on the same images and
//! generation must equal `pagan-train sample --z`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Directory of the workspace's debug binaries (this test runs from target/debug/deps).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf()
}

/// The two binaries. `cargo test --workspace` (what `make test` runs) builds them before any
/// test starts; a nested `cargo build` here would wait forever on cargo's build-dir lock.
fn binaries() -> (PathBuf, PathBuf) {
    let d = bin_dir();
    let (train, serve) = (d.join("pagan-train"), d.join("pagan-serve"));
    for b in [&train, &serve] {
        assert!(
            b.exists(),
            "{} is missing: run `make test` (cargo test --workspace) or `cargo build -p pagan-trainer -p pagan-server` first",
            b.display()
        );
    }
    (train, serve)
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.env("RUST_LOG", "error").output().expect("spawn");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {cmd:?}\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A minimal HTTP/1.1 client (one request per connection): status, headers, body.
struct Response {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn request(port: u16, method: &str, path: &str, ctype: &str, body: &[u8]) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {ctype}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
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

fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, "text/plain", b"")
}

fn post_json(port: u16, path: &str, body: &serde_json::Value) -> Response {
    request(
        port,
        "POST",
        path,
        "application/json",
        body.to_string().as_bytes(),
    )
}

fn multipart(files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
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
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], code);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[test]
fn service_end_to_end() {
    let (train, serve) = binaries();
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let models = t.join("models");
    let run = t.join("run");

    // A tiny model (seconds), its export, the Inception export and a 12-image reference.
    run_ok(
        Command::new(&train)
            .args([
                "train",
                "--dataset",
                "fashion-mnist",
                "--preset",
                "demo",
                "--limit",
                "64",
                "--batch",
                "8",
                "--iters",
                "3",
                "--quiet",
                "--out",
            ])
            .arg(&run),
    );
    run_ok(
        Command::new(&train)
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(models.join("tiny")),
    );
    run_ok(
        Command::new(&train)
            .arg("export-inception")
            .arg("--out")
            .arg(models.join("inception")),
    );
    let reference = models.join("references/fm12.npz");
    run_ok(
        Command::new(&train)
            .args([
                "stats",
                "--dataset",
                "fashion-mnist",
                "--split",
                "test",
                "--n",
                "12",
                "--quiet",
                "--out",
            ])
            .arg(&reference),
    );

    let port = free_port();
    let child = Command::new(&serve)
        .arg("--models")
        .arg(&models)
        .args(["--bind", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pagan-serve");
    let mut server = Server(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(120), "server did not start");
        assert!(
            server.0.try_wait().expect("wait").is_none(),
            "server exited at start-up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Operations.
    assert_eq!(get(port, "/healthz").status, 200);
    let ready = get(port, "/readyz");
    assert_eq!(ready.status, 200, "{}", String::from_utf8_lossy(&ready.body));
    let listed = get(port, "/v1/models").json();
    let text = listed.to_string();
    assert!(text.contains("\"tiny\"") && text.contains("\"cpu\""), "{text}");
    let refs = get(port, "/v1/references").json().to_string();
    assert!(refs.contains("fm12"), "{refs}");

    // Uploads stream to disk: a 192 MiB body (under the 256 MiB default limit) is read to the
    // end (the 415 comes from sniffing the saved file) without passing through memory. A server
    // that buffered it would have to reach its current RSS + 192 MiB at least once.
    let pid = server.0.id();
    let rss_before = proc_status_kib(pid, "VmRSS");
    let peak_before = proc_status_kib(pid, "VmHWM");
    let junk = vec![0x5au8; 192 << 20];
    let res = request(
        port,
        "POST",
        "/v1/fid?reference=fm12",
        "application/octet-stream",
        &junk,
    );
    drop(junk);
    assert_eq!(res.status, 415, "{}", String::from_utf8_lossy(&res.body));
    assert!(String::from_utf8_lossy(&res.body).contains("not a PNG, JPEG, zip, tar or .npz"));
    let peak = proc_status_kib(pid, "VmHWM");
    println!(
        "server before the 192 MiB upload: RSS {rss_before} KiB, peak {peak_before} KiB; peak after {peak} KiB"
    );
    // Start-up's own peak must leave room to see the upload, or the check proves nothing.
    assert!(
        peak_before < rss_before + (96 << 10),
        "start-up peak too high for this check"
    );
    assert!(
        peak < rss_before + (96 << 10),
        "peak RSS {peak} KiB vs {rss_before} KiB before a 192 MiB upload: the body was held in memory"
    );

    // Generation: deterministic, and equal to the trainer's tch generator on the same z.
    let body = serde_json::json!({"n": 1, "seed": 7, "format": "png"});
    let a = post_json(port, "/v1/models/tiny/generate", &body);
    let b = post_json(port, "/v1/models/tiny/generate", &body);
    assert_eq!(a.status, 200);
    assert!(a.body.starts_with(b"\x89PNG") && a.body == b.body);
    let npy = post_json(
        port,
        "/v1/models/tiny/generate",
        &serde_json::json!({"n": 5, "seed": 3, "format": "npy"}),
    );
    assert_eq!(npy.status, 200);
    let (served, shape) = pagan_shared::npy::from_bytes(&npy.body, "served").expect("npy");
    assert_eq!(shape, vec![5, 1, 28, 28]);
    let manifest =
        pagan_shared::manifest::ModelManifest::read(&models.join("tiny/manifest.json")).expect("manifest");
    let z = pagan_shared::latent::uniform(3, 5, manifest.latent.size);
    pagan_shared::npy::write(&t.join("z.npy"), &z, &[5, manifest.latent.size]).expect("z");
    run_ok(
        Command::new(&train)
            .arg("sample")
            .arg(&run)
            .arg("--z")
            .arg(t.join("z.npy"))
            .args(["--format", "npy", "--device", "cpu", "--out"])
            .arg(t.join("x.npy")),
    );
    let (sampled, _) = pagan_shared::npy::read(&t.join("x.npy")).expect("x");
    let diff = served
        .iter()
        .zip(&sampled)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "server (ORT) vs pagan-train sample (tch): {diff}");
    let grid = get(port, "/v1/models/tiny/grid.png?n=9&seed=2");
    assert!(grid.status == 200 && grid.body.starts_with(b"\x89PNG"));

    // Scoring: 6 generated PNGs uploaded == `pagan-train fid` on the same files (same ONNX).
    let zip = post_json(
        port,
        "/v1/models/tiny/generate",
        &serde_json::json!({"n": 6, "seed": 1, "format": "zip"}),
    );
    assert_eq!(zip.status, 200);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.body)).expect("zip");
    let pngs = t.join("pngs");
    std::fs::create_dir_all(&pngs).expect("mkdir");
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut e = archive.by_index(i).expect("entry");
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("read entry");
        let name = format!("{i:02}.png");
        std::fs::write(pngs.join(&name), &bytes).expect("write png");
        files.push((name, bytes));
    }
    assert_eq!(files.len(), 6);
    let (ctype, body) = multipart(&files);
    let scored = request(port, "POST", "/v1/fid?reference=fm12&kid=true", &ctype, &body);
    assert_eq!(scored.status, 200, "{}", String::from_utf8_lossy(&scored.body));
    let s = scored.json();
    assert_eq!(s["n"], 6);
    assert_eq!(s["resize_mode"], "asymmetric");
    assert_eq!(s["provider"], "cpu");
    let served_fid = s["fid"].as_f64().expect("fid");
    assert!(s["kid"].as_f64().is_some_and(f64::is_finite));
    let cli = run_ok(
        Command::new(&train)
            .arg("fid")
            .arg(&pngs)
            .args(["--backend", "onnx", "--json", "--quiet", "--inception"])
            .arg(models.join("inception"))
            .arg("--reference")
            .arg(&reference),
    );
    let cli: serde_json::Value = serde_json::from_str(cli.lines().last().unwrap_or_default()).expect("json");
    let cli_fid = cli["fid"].as_f64().expect("fid");
    assert!(
        ((served_fid - cli_fid) / cli_fid).abs() <= 1e-6,
        "/v1/fid {served_fid} vs pagan-train fid {cli_fid}"
    );
    // The model route generates the same 6 images in-process: the same score.
    let m = request(
        port,
        "POST",
        "/v1/models/tiny/fid?reference=fm12&n=6&seed=1",
        "text/plain",
        b"",
    );
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    let model_fid = m.json()["fid"].as_f64().expect("fid");
    assert!(
        ((model_fid - served_fid) / served_fid).abs() <= 1e-6,
        "{model_fid} vs {served_fid}"
    );

    // Bad input over the wire: JSON 4xx, and the process keeps serving.
    assert_error(&get(port, "/v1/models/nope"), 404, "model_not_found");
    assert_error(
        &request(port, "POST", "/v1/fid?reference=nope", &ctype, &body),
        404,
        "reference_not_found",
    );
    let (c1, b1) = multipart(&files[..1]);
    assert_error(
        &request(port, "POST", "/v1/fid?reference=fm12", &c1, &b1),
        422,
        "too_few_images",
    );
    let (cbad, bbad) = multipart(&[
        ("a.png".into(), b"\x89PNG\r\n\x1a\nnot really".to_vec()),
        files[0].clone(),
    ]);
    let bad = request(port, "POST", "/v1/fid?reference=fm12", &cbad, &bbad);
    assert!((400..500).contains(&bad.status), "{}", bad.status);
    assert_error(
        &post_json(port, "/v1/models/tiny/generate", &serde_json::json!({"n": 0})),
        400,
        "bad_n",
    );
    assert_eq!(get(port, "/healthz").status, 200);

    // Metrics and the API description.
    let metrics = String::from_utf8_lossy(&get(port, "/metrics").body).into_owned();
    for name in [
        "http_requests_total",
        "http_request_duration_seconds",
        "ort_run_duration_seconds",
        "images_scored_total",
        "model_provider",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    let api = get(port, "/openapi.json").json();
    for p in ["/v1/fid", "/v1/models/{name}/generate", "/healthz", "/metrics"] {
        assert!(api["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    assert!(!ready.headers.is_empty());

    // Graceful shutdown on SIGTERM: a clean exit.
    let st = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait().expect("wait") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
