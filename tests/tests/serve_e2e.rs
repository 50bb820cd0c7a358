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
    let scored = request(
        port,
        "POST",
        "/v1/fid?reference=fm12&kid=true&prdc=true",
        &ctype,
        &body,
    );
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
        "/v1/models/tiny/fid?reference=fm12&n=6&seed=1&prdc=true",
        "text/plain",
        b"",
    );
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    let model_fid = m.json()["fid"].as_f64().expect("fid");
    assert_eq!(
        m.json()["prdc"],
        s["prdc"],
        "precision/recall of the model route vs the upload"
    );
    assert!(s["prdc"]["precision"].as_f64().is_some());
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
    clean_references_from_images_and_every_score_option(port, t, &models);

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

/// A zip of the PNG files of `dir`, in name order.
fn zip_folder(dir: &Path) -> Vec<u8> {
    let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut names: Vec<_> = std::fs::read_dir(dir)
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
    zw.finish().expect("zip").into_inner()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    ((a - b) / b).abs() <= rel
}

fn py_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = python().args(args).output().expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// clean-fid's convention end to end, on the folders of the previous check: a reference
/// built by the server from images (`resize_mode=clean`), scored with every option
/// (PRDC, bootstrap, FID-infinity) against the independent pipeline (clean-fid's resize,
/// TorchScript, scipy, numpy PRDC), the CLI on both backends, the provenance, the feature
/// cache, ADM `arr_0` archives, clean-fid's statistics and `feats` files, `stats --from`.
fn clean_references_from_images_and_every_score_option(port: u16, t: &Path, models: &Path) {
    let (a, b) = (t.join("folder-a"), t.join("folder-b"));
    let script = repo().join("trainer/tests/py/folder_fid_reference.py");
    let weights = repo().join("weights/pt_inception-2015-12-05.torchscript.pt");
    for (folder, out) in [(&a, "a_clean.npz"), (&b, "b_clean.npz")] {
        let st = python()
            .arg(&script)
            .arg("stats")
            .arg(&weights)
            .arg(folder)
            .arg(t.join(out))
            .arg("clean")
            .status();
        assert!(
            st.expect("python").success(),
            "clean reference pipeline on {}",
            folder.display()
        );
    }
    let os = |p: &Path| p.as_os_str().to_owned();
    let fid_cmd = std::ffi::OsString::from("fid");
    let prdc_cmd = std::ffi::OsString::from("prdc");
    let (ac, bc) = (t.join("a_clean.npz"), t.join("b_clean.npz"));
    let want_fid = py_json(&[&os(&script), &fid_cmd, &os(&ac), &os(&bc)])["fid"]
        .as_f64()
        .expect("fid");
    let want_prdc = py_json(&[&os(&script), &prdc_cmd, &os(&ac), &os(&bc)]);

    // A reference from images: 16 PNGs in a zip, computed with clean-fid's resize.
    let made = request(
        port,
        "POST",
        "/v1/references/a-clean?resize_mode=clean",
        "application/zip",
        &zip_folder(&a),
    );
    assert_eq!(made.status, 201, "{}", String::from_utf8_lossy(&made.body));
    let info = made.json();
    assert_eq!(info["resize_mode"], "clean");
    assert_eq!(info["n"], 16);
    assert_eq!(info["feature_rows"], 16);
    // The same as a background job (what a large set becomes): 202, then the job's result.
    let job = request(
        port,
        "POST",
        "/v1/references/a-job?resize_mode=clean&async=true",
        "application/zip",
        &zip_folder(&a),
    );
    assert_eq!(job.status, 202, "{}", String::from_utf8_lossy(&job.body));
    let href = job.json()["href"].as_str().expect("href").to_owned();
    let started = Instant::now();
    let done = loop {
        let v = get(port, &href).json();
        if v["status"] == "done" || v["status"] == "failed" {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "job stuck: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["result"]["name"], "a-job");
    assert_eq!(done["result"]["feature_rows"], 16);
    assert!(get(port, "/v1/references").json().to_string().contains("a-job"));

    let zip_b = zip_folder(&b);
    let path = "/v1/fid?reference=a-clean&kid=true&prdc=true&bootstrap=20&fid_infinity=true";
    let scored = request(port, "POST", path, "application/zip", &zip_b);
    assert_eq!(scored.status, 200, "{}", String::from_utf8_lossy(&scored.body));
    let s = scored.json();
    println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
    let fid = s["fid"].as_f64().expect("fid");
    println!("clean FID: server {fid}, independent (clean-fid resize, TorchScript, scipy) {want_fid}");
    assert!(
        close(fid, want_fid, 1e-4),
        "clean FID {fid} vs independent {want_fid}"
    );
    for k in ["precision", "recall", "density", "coverage"] {
        let (got, want) = (s["prdc"][k].as_f64(), want_prdc[k].as_f64());
        assert!(
            got.zip(want).is_some_and(|(g, w)| (g - w).abs() < 1e-9),
            "{k}: server {got:?} vs numpy {want:?}"
        );
    }
    assert_eq!(s["prdc"]["k_precision_recall"], 3);
    assert_eq!(s["prdc"]["k_density_coverage"], 5);
    let ci = &s["fid_ci"];
    assert_eq!(ci["resamples"], 20);
    assert!(ci["low"].as_f64() <= ci["high"].as_f64() && ci["low"].as_f64().is_some());
    let points = s["fid_infinity"]["points"].as_array().expect("points");
    assert_eq!(points.last().map(|p| p["n"].clone()), Some(serde_json::json!(12)));
    assert!(
        s["fid_infinity"]["fid_infinity"]
            .as_f64()
            .is_some_and(f64::is_finite)
    );
    assert_eq!(s["cached"], false);
    // Provenance: what the number was computed with.
    let p = &s["provenance"];
    assert_eq!(p["resize_mode"], "clean");
    assert_eq!(p["resize_mode_source"], "reference");
    assert_eq!(p["n"], 12);
    assert_eq!(p["reference_n"], 16);
    assert_eq!(p["weights"], "tf-inception-2015-12-05");
    let stored = models.join("references/a-clean.npz");
    let sha = |f: &Path| pagan_shared::manifest::sha256_hex(&std::fs::read(f).expect("read"));
    assert_eq!(p["reference_sha256"], sha(&stored));
    assert_eq!(p["extractor"]["weights_sha256"], sha(&weights));
    let inception =
        pagan_shared::InceptionManifest::read(&models.join("inception/manifest.json")).expect("manifest");
    assert_eq!(p["extractor"]["graph_sha256"], inception.sha256);
    assert!(
        p["comparable_with"].to_string().contains("clean-fid mode=clean"),
        "{p}"
    );
    assert!(
        p["sqrt_method"].as_str().is_some_and(|m| m.contains("Gram")),
        "{p}"
    );
    assert!(
        s["warnings"]
            .to_string()
            .contains("12 images and the reference 16"),
        "{}",
        s["warnings"]
    );

    // The same pixels again: features from the cache, the same numbers.
    let again = request(port, "POST", path, "application/zip", &zip_b).json();
    assert_eq!(again["cached"], true);
    assert_eq!(again["fid"], s["fid"]);
    assert_eq!(again["prdc"], s["prdc"]);
    assert_eq!(again["fid_ci"], s["fid_ci"]);
    // An ADM-style archive (arr_0, [N, H, W] uint8) of the same pixels: the same key, a hit.
    let arr0 = t.join("b_arr0.npz");
    let write_arr0 = "import sys, glob, numpy as np\n\
        from PIL import Image\n\
        x = np.stack([np.asarray(Image.open(f)) for f in sorted(glob.glob(sys.argv[1] + '/*.png'))])\n\
        np.savez(sys.argv[2], arr_0=x, arr_1=np.zeros(len(x), np.int64))\n";
    let st = python().args(["-c", write_arr0]).arg(&b).arg(&arr0).status();
    assert!(st.expect("python").success());
    let adm = request(
        port,
        "POST",
        "/v1/fid?reference=a-clean",
        "application/octet-stream",
        &std::fs::read(&arr0).expect("npz"),
    );
    assert_eq!(adm.status, 200, "{}", String::from_utf8_lossy(&adm.body));
    let adm = adm.json();
    assert_eq!(adm["fid"], s["fid"]);
    assert_eq!(adm["cached"], true);
    let metrics = String::from_utf8_lossy(&get(port, "/metrics").body).into_owned();
    assert!(
        metrics.contains("feature_cache_lookups_total{result=\"hit\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("feature_cache_hit_ratio"), "{metrics}");

    // The CLI on the stored reference: the ONNX graph (clean resized before it) equals the
    // server; the tch Inception (clean inside) agrees to feature precision; same options,
    // same seed: the same interval and PRDC.
    let cli = |backend: &str| -> serde_json::Value {
        let out = run_ok(
            command("pagan-train")
                .arg("fid")
                .arg(&b)
                .args([
                    "--backend",
                    backend,
                    "--json",
                    "--quiet",
                    "--kid",
                    "--prdc",
                    "--bootstrap",
                    "20",
                ])
                .args(["--fid-infinity", "--device", "cpu", "--inception"])
                .arg(models.join("inception"))
                .arg("--reference")
                .arg(&stored),
        );
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("json")
    };
    let onnx = cli("onnx");
    assert!(
        close(onnx["fid"].as_f64().expect("fid"), fid, 1e-6),
        "onnx CLI {} vs server {fid}",
        onnx["fid"]
    );
    assert_eq!(onnx["prdc"], s["prdc"]);
    let (lo, slo) = (onnx["fid_ci"]["low"].as_f64(), s["fid_ci"]["low"].as_f64());
    assert!(
        lo.zip(slo).is_some_and(|(x, y)| close(x, y, 1e-6)),
        "{} vs {}",
        onnx["fid_ci"],
        s["fid_ci"]
    );
    assert_eq!(onnx["provenance"]["resize_mode_source"], "reference");
    let tch = cli("tch");
    assert!(
        close(tch["fid"].as_f64().expect("fid"), fid, 1e-4),
        "tch CLI {} vs server {fid}",
        tch["fid"]
    );
    assert_eq!(tch["provenance"]["extractor"]["weights_sha256"], sha(&weights));
    // A conflicting explicit convention is refused, not silently used.
    let refused = command("pagan-train")
        .arg("fid")
        .arg(&b)
        .args(["--resize-mode", "half_pixel", "--quiet", "--reference"])
        .arg(&stored)
        .output()
        .expect("run");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("would not be comparable"));

    // clean-fid's own files: statistics (mu, sigma; no convention recorded, so the request
    // names it) and KID feature rows (`feats`).
    let write_cf = "import sys, numpy as np\n\
        a = np.load(sys.argv[1])\n\
        np.savez_compressed(sys.argv[2], mu=a['mu'], sigma=a['sigma'])\n\
        np.savez_compressed(sys.argv[3], feats=a['features'])\n";
    let (cf_stats, cf_feats) = (t.join("cf_stats.npz"), t.join("cf_feats.npz"));
    let st = python()
        .args(["-c", write_cf])
        .arg(&ac)
        .arg(&cf_stats)
        .arg(&cf_feats)
        .status();
    assert!(st.expect("python").success());
    let up = |name: &str, file: &Path| {
        request(
            port,
            "POST",
            &format!("/v1/references/{name}?resize_mode=clean"),
            "application/octet-stream",
            &std::fs::read(file).expect("npz"),
        )
    };
    let r = up("cf-stats", &cf_stats);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["resize_mode"], "clean");
    let r = up("cf-feats", &cf_feats);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["feature_rows"], 16);
    for name in ["cf-stats", "cf-feats"] {
        let r = request(
            port,
            "POST",
            &format!("/v1/fid?reference={name}"),
            "application/zip",
            &zip_b,
        )
        .json();
        let f = r["fid"].as_f64().expect("fid");
        assert!(close(f, want_fid, 1e-4), "{name}: {f} vs independent {want_fid}");
        assert_eq!(r["provenance"]["resize_mode"], "clean");
    }
    // A statistics file that records one convention, uploaded as another: refused.
    request(
        port,
        "POST",
        "/v1/references/conflict?resize_mode=half_pixel",
        "application/octet-stream",
        &std::fs::read(&stored).expect("npz"),
    )
    .assert_error(422, "invalid_statistics");

    // `pagan-train stats --from` an ADM archive of folder a's pixels == the server's reference.
    let arr0_a = t.join("a_arr0.npz");
    let st = python().args(["-c", write_arr0]).arg(&a).arg(&arr0_a).status();
    assert!(st.expect("python").success());
    // ... and `stats --from` the very zip the server built its reference from.
    let zip_a = t.join("a.zip");
    std::fs::write(&zip_a, zip_folder(&a)).expect("zip");
    for (input, what) in [(&arr0_a, "an ADM archive"), (&zip_a, "a zip")] {
        let from = input.with_extension("stats.npz");
        run_ok(
            command("pagan-train")
                .arg("stats")
                .arg("--from")
                .arg(input)
                .args([
                    "--resize-mode",
                    "clean",
                    "--backend",
                    "onnx",
                    "--quiet",
                    "--inception",
                ])
                .arg(models.join("inception"))
                .arg("--out")
                .arg(&from),
        );
        let out = run_ok(
            command("pagan-train")
                .arg("fid")
                .arg(&b)
                .args(["--backend", "onnx", "--json", "--quiet", "--inception"])
                .arg(models.join("inception"))
                .arg("--reference")
                .arg(&from),
        );
        let v: serde_json::Value =
            serde_json::from_str(out.lines().last().unwrap_or_default()).expect("json");
        assert!(
            close(v["fid"].as_f64().expect("fid"), fid, 1e-6),
            "stats --from {what}: {} vs {fid}",
            v["fid"]
        );
    }
}
