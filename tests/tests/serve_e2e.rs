//! The whole product over a real socket: train a tiny model with `pagan-train`, export it
//! and the Inception, compute a reference, start the real `pagan-serve` binary, and call it
//! over HTTP. Scores must equal `pagan-train fid` on the same images (and, for image
//! folders, an independent float64 pipeline), and generation must equal `pagan-train
//! sample --z`.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pagan_e2e::{
    Server, command, get, multipart, post_json, proc_status_kib, python, repo, request, run_ok, tiny_models,
};

#[test]
fn service_end_to_end() {
    let train = || command("pagan-train");
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    // A tiny model (seconds), its export, the Inception export and a 12-image reference.
    let (models, run) = tiny_models(t);
    let reference = models.join("references/fm12.npz");

    let mut server = Server::start(&models, &["--workers", "2"]);
    let port = server.port;

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
    let pid = server.child.id();
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
        train()
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
        train()
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
    get(port, "/v1/models/nope").assert_error(404, "model_not_found");
    request(port, "POST", "/v1/fid?reference=nope", &ctype, &body).assert_error(404, "reference_not_found");
    let (c1, b1) = multipart(&files[..1]);
    request(port, "POST", "/v1/fid?reference=fm12", &c1, &b1).assert_error(422, "too_few_images");
    let (cbad, bbad) = multipart(&[
        ("a.png".into(), b"\x89PNG\r\n\x1a\nnot really".to_vec()),
        files[0].clone(),
    ]);
    let bad = request(port, "POST", "/v1/fid?reference=fm12", &cbad, &bbad);
    bad.assert_error(400, "corrupt_image");
    assert!(
        String::from_utf8_lossy(&bad.body).contains("a.png"),
        "the message names the file"
    );
    post_json(port, "/v1/models/tiny/generate", &serde_json::json!({"n": 0})).assert_error(400, "bad_n");
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
    assert_eq!(
        ready.header("content-type").as_deref(),
        Some("application/json"),
        "{}",
        ready.headers
    );

    folder_scores_match_an_independent_pipeline(port, t, &models);

    // Graceful shutdown on SIGTERM: a clean exit.
    let st = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().expect("wait") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// Two folders of Fashion-MNIST PNGs: `pagan-train stats --dataset folder:` of one and
/// `/v1/fid` of the other against it give the FID an independent float64 pipeline (PIL,
/// numpy TF1 resize, the TorchScript module, scipy) gives, and the same as `pagan-train fid`.
fn folder_scores_match_an_independent_pipeline(port: u16, t: &Path, models: &Path) {
    let (a, b) = (t.join("folder-a"), t.join("folder-b"));
    // One statement per line: Rust's line continuation would eat Python's indentation.
    let write = "import gzip, os, sys, numpy as np\n\
        from PIL import Image\n\
        x = np.frombuffer(gzip.open(sys.argv[1]).read(), np.uint8, offset=16).reshape(-1, 28, 28)\n\
        save = lambda out, lo, hi: [os.makedirs(out, exist_ok=True)] + [Image.fromarray(x[i]).save(f'{out}/{i:05}.png') for i in range(lo, hi)]\n\
        save(sys.argv[2], 0, 16)\n\
        save(sys.argv[3], 200, 212)\n";
    let idx = repo().join("data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    let st = python()
        .args(["-c", write])
        .arg(&idx)
        .arg(&a)
        .arg(&b)
        .status()
        .expect("python");
    assert!(st.success(), "writing the PNG folders from {}", idx.display());
    let script = repo().join("trainer/tests/py/folder_fid_reference.py");
    let weights = repo().join("weights/pt_inception-2015-12-05.torchscript.pt");
    for (folder, out) in [(&a, "a_py.npz"), (&b, "b_py.npz")] {
        let st = python()
            .arg(&script)
            .arg("stats")
            .arg(&weights)
            .arg(folder)
            .arg(t.join(out))
            .status();
        assert!(
            st.expect("python").success(),
            "the reference pipeline failed on {}",
            folder.display()
        );
    }
    let want = python()
        .arg(&script)
        .arg("fid")
        .arg(t.join("a_py.npz"))
        .arg(t.join("b_py.npz"))
        .output();
    let want = want.expect("python");
    assert!(want.status.success(), "{}", String::from_utf8_lossy(&want.stderr));
    let want: serde_json::Value = serde_json::from_slice(&want.stdout).expect("json");
    let want = want["fid"].as_f64().expect("scipy fid");

    let stats = t.join("folder-a.npz");
    run_ok(
        command("pagan-train")
            .arg("stats")
            .arg("--dataset")
            .arg(format!("folder:{}", a.display()))
            .args(["--split", "train", "--quiet", "--out"])
            .arg(&stats),
    );
    let upload = request(
        port,
        "POST",
        "/v1/references/folder-a",
        "application/octet-stream",
        &std::fs::read(&stats).expect("npz"),
    );
    assert_eq!(upload.status, 201, "{}", String::from_utf8_lossy(&upload.body));
    let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut names: Vec<_> = std::fs::read_dir(&b)
        .expect("ls")
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for p in &names {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        zw.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        std::io::Write::write_all(&mut zw, &std::fs::read(p).expect("png")).expect("zip write");
    }
    let body = zw.finish().expect("zip").into_inner();
    let served = request(
        port,
        "POST",
        "/v1/fid?reference=folder-a",
        "application/zip",
        &body,
    );
    assert_eq!(served.status, 200, "{}", String::from_utf8_lossy(&served.body));
    let served = served.json()["fid"].as_f64().expect("fid");
    let cli = run_ok(
        command("pagan-train")
            .arg("fid")
            .arg(&b)
            .args(["--backend", "onnx", "--json", "--quiet", "--inception"])
            .arg(models.join("inception"))
            .arg("--reference")
            .arg(&stats),
    );
    let cli: serde_json::Value = serde_json::from_str(cli.lines().last().unwrap_or_default()).expect("json");
    let cli = cli["fid"].as_f64().expect("fid");
    println!("folder FID: server {served}, pagan-train {cli}, independent {want}");
    assert!(
        ((served - want) / want).abs() < 1e-4,
        "/v1/fid {served} vs the independent {want}"
    );
    assert!(
        ((served - cli) / cli).abs() < 1e-6,
        "/v1/fid {served} vs pagan-train fid {cli}"
    );
}
