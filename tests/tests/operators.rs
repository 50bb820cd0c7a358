//! What operators rely on, against the real binary: the API contract under schemathesis
//! (`--checks all`, fixed seed, bounded), KServe V2 through `tritonclient[http]`, bearer
//! tokens, concurrent reference uploads of one name, a full job queue, and a server killed
//! in the middle of an upload.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use pagan_e2e::{
    Response, Server, command, get, post_json, process_tempdir, python, repo, request, run_ok, send_head,
    tiny_models,
};

/// A models folder (tiny generator, Inception, the 12-image reference `fm12` with
/// features) and the run it was exported from; built once per test process.
struct Fixture {
    models: PathBuf,
    run: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (models, run) = tiny_models(&process_tempdir());
        Fixture { models, run }
    })
}

/// A private copy of the fixture's models folder (tests that write references).
fn models_copy(into: &Path) -> PathBuf {
    let src = &fixture().models;
    let dst = into.join("models");
    for sub in ["tiny", "inception", "references"] {
        std::fs::create_dir_all(dst.join(sub)).expect("mkdir");
        for e in std::fs::read_dir(src.join(sub)).expect("ls").flatten() {
            std::fs::copy(e.path(), dst.join(sub).join(e.file_name())).expect("copy");
        }
    }
    dst
}

#[test]
fn schemathesis_finds_no_contract_failures() {
    let f = fixture();
    // Small limits keep every generated request cheap; the document declares them.
    let server = Server::start(
        &f.models,
        &[
            "--max-generate-n",
            "16",
            "--max-score-n",
            "6",
            "--job-threshold",
            "4",
            "--job-queue",
            "4",
        ],
    );
    let st = repo().join(".venv/bin/schemathesis");
    assert!(st.exists(), "{} missing: run `make setup`", st.display());
    let work = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(st)
        .current_dir(work.path())
        .arg("--config-file")
        .arg(repo().join("tests/schemathesis/schemathesis.toml"))
        .args([
            "run",
            &format!("http://127.0.0.1:{}/openapi.json", server.port),
            "--checks",
            "all",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary: String = text
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(out.status.success(), "schemathesis reported failures:\n{text}");
    let generated = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" generated, ")
                .map(|(n, _)| n.trim().to_owned())
        })
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no test-case count in:\n{text}"));
    assert!(
        generated >= 1000,
        "only {generated} requests generated:\n{summary}"
    );
    assert!(text.contains(&format!("{generated} passed")), "{summary}");
}

#[test]
fn tritonclient_infers_what_v1_generate_and_pagan_train_sample_give() {
    let f = fixture();
    let server = Server::start(&f.models, &[]);
    let t = tempfile::tempdir().expect("tmp");
    let manifest =
        pagan_shared::manifest::ModelManifest::read(&f.models.join("tiny/manifest.json")).expect("manifest");
    let (n, latent, seed) = (5, manifest.latent.size, 11);
    let z = pagan_shared::latent::uniform(seed, n, latent);
    pagan_shared::npy::write(&t.path().join("z.npy"), &z, &[n, latent]).expect("z");
    run_ok(
        python()
            .arg(repo().join("tests/py/kserve_client.py"))
            .arg(format!("127.0.0.1:{}", server.port))
            .arg("tiny")
            .args([
                t.path().join("z.npy"),
                t.path().join("json.npy"),
                t.path().join("bin.npy"),
            ]),
    );
    let (v2, shape) = pagan_shared::npy::read(&t.path().join("bin.npy")).expect("v2 out");
    assert_eq!(shape, vec![n, 1, 28, 28]);
    let v1 = post_json(
        server.port,
        "/v1/models/tiny/generate",
        &serde_json::json!({"n": n, "seed": seed, "format": "npy"}),
    );
    assert_eq!(v1.status, 200);
    let (v1, _) = pagan_shared::npy::from_bytes(&v1.body, "v1").expect("npy");
    assert_eq!(
        v2, v1,
        "V2 infer on z == /v1 generate for the seed of z (same session, same bytes)"
    );
    run_ok(
        command("pagan-train")
            .arg("sample")
            .arg(&f.run)
            .arg("--z")
            .arg(t.path().join("z.npy"))
            .args(["--format", "npy", "--device", "cpu", "--out"])
            .arg(t.path().join("tch.npy")),
    );
    let (tch, _) = pagan_shared::npy::read(&t.path().join("tch.npy")).expect("tch");
    let diff = v2
        .iter()
        .zip(&tch)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "V2 (ORT) vs pagan-train sample (tch): {diff}");
}

const TOKEN: &str = "operators-test-token-5c1d9e";

fn with_auth(port: u16, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> Response {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut s = send_head(port, method, path, "application/json", body.len(), &auth);
    s.write_all(body).expect("body");
    pagan_e2e::read_response(s)
}

#[test]
fn a_token_file_guards_writes_and_compute_and_leaves_health_open() {
    let f = fixture();
    let t = tempfile::tempdir().expect("tmp");
    let token_file = t.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    let server = Server::start(&f.models, &["--token-file", &token_file.display().to_string()]);
    let port = server.port;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/models",
        "/v2/health/ready",
        "/v2/models/tiny",
    ] {
        assert_eq!(get(port, path).status, 200, "{path} stays open");
    }
    let body = br#"{"n": 1, "seed": 3}"#;
    with_auth(port, "POST", "/v1/models/tiny/generate", None, body).assert_error(401, "unauthorized");
    with_auth(port, "POST", "/v1/models/tiny/generate", Some("wrong"), body)
        .assert_error(401, "unauthorized");
    assert_eq!(
        with_auth(port, "GET", "/v1/models/tiny/grid.png?n=4", None, b"").status,
        401
    );
    let ok = with_auth(port, "POST", "/v1/models/tiny/generate", Some(TOKEN), body);
    assert_eq!(ok.status, 200);
    assert!(ok.body.starts_with(b"\x89PNG"));
    let v2 = with_auth(port, "POST", "/v2/models/tiny/infer", None, b"{}");
    assert_eq!(v2.status, 401);
    assert!(
        v2.json()["error"].as_str().is_some_and(|m| m.contains("Bearer")),
        "V2 error shape"
    );
}

/// Sends the head and the first half of `body` to `path`, waits at `barrier`, then the rest.
fn upload_in_two_halves(port: u16, path: &str, body: Arc<Vec<u8>>, barrier: Arc<Barrier>) -> Response {
    let mut s = send_head(port, "POST", path, "application/octet-stream", body.len(), "");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let half = body.len() / 2;
    s.write_all(&body[..half]).expect("first half");
    barrier.wait();
    // Both handlers have passed the name check and are streaming their bodies now.
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&body[half..]).expect("second half");
    pagan_e2e::read_response(s)
}

#[test]
fn of_two_concurrent_uploads_of_one_name_exactly_one_wins() {
    let t = tempfile::tempdir().expect("tmp");
    let models = models_copy(t.path());
    let server = Server::start(&models, &["--workers", "2"]);
    let npz = Arc::new(std::fs::read(models.join("references/fm12.npz")).expect("npz"));
    assert!(npz.len() > 32 << 20, "two 32 MB uploads, as reported");
    for round in 0..3 {
        let name = format!("twin{round}");
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (npz, barrier, port, path) = (
                    npz.clone(),
                    barrier.clone(),
                    server.port,
                    format!("/v1/references/{name}"),
                );
                std::thread::spawn(move || upload_in_two_halves(port, &path, npz, barrier))
            })
            .collect();
        let mut statuses: Vec<u16> = threads
            .into_iter()
            .map(|h| {
                let r = h.join().expect("thread");
                if r.status == 409 {
                    r.assert_error(409, "conflict");
                }
                r.status
            })
            .collect();
        statuses.sort();
        assert_eq!(statuses, vec![201, 409], "round {round}");
        let stored = std::fs::read(models.join(format!("references/{name}.npz"))).expect("stored");
        assert!(stored == *npz, "the stored file is one whole upload");
    }
    let left: Vec<_> = std::fs::read_dir(models.join("references"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
    let listed = get(server.port, "/v1/references").json().to_string();
    assert!(listed.contains("twin0") && listed.contains("twin2"), "{listed}");
}

#[test]
fn a_full_job_queue_answers_429_with_retry_after() {
    let f = fixture();
    // Jobs of 4,000 images keep the worker busy for minutes on a CPU, so the queue is
    // still full when the upload below arrives (with 64 images a job could finish in
    // between on a loaded machine, and the upload was then accepted and waited for its
    // body). The server is killed when the test ends, jobs and all.
    let server = Server::start(
        &f.models,
        &[
            "--job-queue",
            "1",
            "--job-threshold",
            "2",
            "--max-score-n",
            "4000",
        ],
    );
    let submit = || {
        let r = request(
            server.port,
            "POST",
            "/v1/models/tiny/fid?reference=fm12&n=4000&async=true",
            "text/plain",
            b"",
        );
        if r.status == 429 {
            r.assert_error(429, "busy");
            let after: u64 = r
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .expect("Retry-After seconds");
            assert!(after > 0);
        } else {
            assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        }
        r.status
    };
    // Until one job runs and one waits: the second is refused while the worker has not
    // yet taken the first off the queue, so that is retried, not assumed.
    let mut statuses = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while statuses.iter().filter(|&&s| s == 202).count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "two jobs never got in: {statuses:?}"
        );
        statuses.push(submit());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(submit(), 429, "one running and one waiting fill a queue of 1");
    // While the queue is full, an async upload is refused before its body is read: the
    // head announces 100 MB and none of it is sent.
    let s = send_head(
        server.port,
        "POST",
        "/v1/fid?reference=fm12&async=true",
        "application/zip",
        100 << 20,
        "",
    );
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    pagan_e2e::read_response(s).assert_error(429, "busy");
}

#[test]
fn a_server_killed_mid_upload_leaves_nothing_and_restarts_clean() {
    let t = tempfile::tempdir().expect("tmp");
    let models = models_copy(t.path());
    let uploads = t.path().join("tmp");
    std::fs::create_dir_all(&uploads).expect("tmpdir");
    let start = |models: &Path| {
        let mut c = command("pagan-serve");
        c.env("TMPDIR", &uploads);
        Server::start_command(c, models, &[])
    };
    let mut server = start(&models);
    let npz = std::fs::read(models.join("references/fm12.npz")).expect("npz");
    let mut s = send_head(
        server.port,
        "POST",
        "/v1/references/halfway",
        "application/octet-stream",
        npz.len(),
        "",
    );
    s.write_all(&npz[..npz.len() / 2]).expect("half");
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let upload_dirs = |d: &Path| -> Vec<String> {
        names(d)
            .into_iter()
            .filter(|n| n.starts_with("pagan-upload-"))
            .collect()
    };
    // The folder appears once the handler runs: waited for, not assumed after a sleep
    // (a loaded machine may take its time to dispatch the request).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while upload_dirs(&uploads).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        upload_dirs(&uploads).len(),
        1,
        "the upload streams into its temp folder: {:?}",
        names(&uploads)
    );
    server.child.kill().expect("kill -9");
    let _ = server.child.wait();
    drop(s);
    let refs = names(&models.join("references"));
    assert_eq!(
        refs,
        vec!["fm12.npz".to_owned()],
        "no partial file beside the references"
    );
    let server = start(&models);
    assert!(
        upload_dirs(&uploads).is_empty(),
        "the restarted server removed the killed one's upload folder"
    );
    assert_eq!(get(server.port, "/readyz").status, 200);
    assert!(
        !get(server.port, "/v1/references")
            .json()
            .to_string()
            .contains("halfway")
    );
    let r = request(
        server.port,
        "POST",
        "/v1/references/halfway",
        "application/octet-stream",
        &npz,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// An upload that stops sending is answered 408 after `--body-idle-timeout-s` (it would
/// otherwise hold its temp files and its slot forever), stores nothing and leaves no temp
/// folder; the server goes on serving.
#[test]
fn a_stalled_upload_is_answered_408_and_leaves_nothing() {
    let t = tempfile::tempdir().expect("tmp");
    let models = models_copy(t.path());
    let uploads = t.path().join("tmp");
    std::fs::create_dir_all(&uploads).expect("tmpdir");
    let mut c = command("pagan-serve");
    c.env("TMPDIR", &uploads);
    let server = Server::start_command(c, &models, &["--body-idle-timeout-s", "1"]);
    let npz = std::fs::read(models.join("references/fm12.npz")).expect("npz");
    // A multipart form stalls inside its first file part.
    let (form_type, form) = pagan_e2e::multipart(&[("a.npz".to_string(), npz.clone())]);
    for (path, ctype, body) in [
        ("/v1/references/stalled", "application/octet-stream", &npz),
        ("/v1/fid?reference=fm12", "application/zip", &npz),
        ("/v1/fid?reference=fm12", form_type.as_str(), &form),
    ] {
        let mut s = send_head(server.port, "POST", path, ctype, body.len(), "");
        s.write_all(&body[..body.len() / 2]).expect("half the body");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let started = std::time::Instant::now();
        let r = pagan_e2e::read_response(s);
        r.assert_error(408, "request_timeout");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path}: 408 after {:?}",
            started.elapsed()
        );
    }
    assert!(!models.join("references/stalled.npz").exists());
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pagan-upload-"))
        .collect();
    assert!(left.is_empty(), "temp folders left: {left:?}");
    assert_eq!(get(server.port, "/healthz").status, 200);
}
