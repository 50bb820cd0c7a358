//! Handler tests over real ONNX models: a tiny generator trained and exported by the
//! trainer binary, the Inception extractor, and a synthetic reference. The fixture needs
//! the trainer binary (built by `cargo test --workspace`), ONNX Runtime and Fashion-MNIST
//! (`make setup`): without them these tests fail and say which is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use actix_web::{test, web};
use common::{assert_error, json, multipart, npy_u8, npz_of, png, tar_of, zip_of};
use pagan_server::{AppState, Config, app};

/// Workspace root (server/..).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The trainer binary beside this test's binary (target/debug/deps/..).
fn trainer() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let t = dir.join("pagan-train");
    assert!(
        t.is_file(),
        "{} is missing: run `make test` (cargo test --workspace builds it) or `cargo build -p pagan-trainer`",
        t.display()
    );
    t
}

/// Runs a trainer command in the workspace root with no inherited `PAGAN_*` variables.
fn run(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PAGAN_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.current_dir(root()).output().expect("spawn pagan-train");
    assert!(
        out.status.success(),
        "fixture command failed: {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds models/ in a temp folder: `tiny` (trained 2 iterations), `broken` (a copy with
/// a corrupted ONNX), `inception` (linked from the workspace's models/ or exported), and
/// references `synth` (with features) and `plain` (without).
fn build_fixture(dir: &Path) -> PathBuf {
    let trainer = trainer();
    let ort = pagan_server::models::runtime::library_path();
    assert!(
        ort.as_ref().is_some_and(|p| p.exists()),
        "ONNX Runtime library not found ({ort:?}): run `make setup`"
    );
    let models = dir.join("models");
    let run_dir = dir.join("run");
    run(Command::new(&trainer)
        .arg("train")
        .args(pagan_e2e::TINY_RUN)
        .args(["--iters", "2", "--quiet", "--out"])
        .arg(&run_dir));
    run(Command::new(&trainer)
        .arg("export")
        .arg(&run_dir)
        .arg("--out")
        .arg(models.join("tiny")));
    let broken = models.join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::copy(models.join("tiny/manifest.json"), broken.join("manifest.json")).expect("copy");
    let mut onnx = std::fs::read(models.join("tiny/generator.onnx")).expect("onnx");
    onnx.push(0);
    std::fs::write(broken.join("generator.onnx"), onnx).expect("write");

    let have = root().join("models/inception");
    let inc = models.join("inception");
    if have.join("inception.onnx").is_file() {
        std::fs::create_dir_all(&inc).expect("mkdir");
        for f in ["manifest.json", "inception.onnx"] {
            let src = have.join(f).canonicalize().expect("canonical path");
            std::os::unix::fs::symlink(src, inc.join(f)).expect("symlink");
        }
    } else {
        run(Command::new(&trainer)
            .arg("export-inception")
            .arg("--out")
            .arg(&inc));
    }

    // Synthetic references: features of 8 random rows; mu/sigma from them.
    let refs = models.join("references");
    std::fs::create_dir_all(&refs).expect("mkdir");
    let (feats, g) = common::synthetic_reference();
    pagan_shared::write_stats_npz_with_features(
        &refs.join("synth.npz"),
        &g,
        Some("asymmetric"),
        Some(&feats),
    )
    .expect("synth.npz");
    pagan_shared::write_stats_npz(&refs.join("plain.npz"), &g, None).expect("plain.npz");
    models
}

/// Small limits so the limit paths are cheap to hit.
fn config(models: &Path) -> Config {
    let mut c = Config::with_models(models);
    c.threads = 1;
    c.limits.max_body_bytes = 32 << 20;
    c.limits.max_images = 12;
    c.limits.max_pixels = 256 * 256;
    c.limits.max_archive_entries = 20;
    c.limits.max_archive_bytes = 4 << 20;
    c.limits.max_generate_n = 16;
    c.limits.max_score_n = 16;
    c.limits.job_threshold = 6;
    c.limits.job_queue = 1;
    c
}

/// The fixture's service state, built once for every test of this file.
fn fixture() -> web::Data<AppState> {
    static STATE: OnceLock<web::Data<AppState>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let models = build_fixture(&pagan_e2e::process_tempdir());
            let st = AppState::new(config(&models)).expect("the fixture's service starts");
            web::Data::new(st)
        })
        .clone()
}

#[actix_web::test]
async fn registry_lists_loaded_failed_and_provider() {
    let st = fixture();
    let svc = test::init_service(app(st)).await;
    let v = json(test::call_service(&svc, test::TestRequest::get().uri("/readyz").to_request()).await).await;
    assert_eq!(v["ready"], true);
    assert_eq!(v["models"][0]["name"], "tiny");
    assert_eq!(v["models"][0]["provider"], "cpu");
    assert_eq!(v["extractor"]["status"], "loaded");
    assert_eq!(v["failed"][0]["name"], "broken");
    assert!(
        v["failed"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("sha256")),
        "{v}"
    );
    let v =
        json(test::call_service(&svc, test::TestRequest::get().uri("/v1/models/tiny").to_request()).await)
            .await;
    assert_eq!(v["manifest"]["image"]["height"], 28);
    // The folder that failed to load says why where it is asked for.
    let res = test::call_service(
        &svc,
        test::TestRequest::get().uri("/v1/models/broken").to_request(),
    )
    .await;
    assert_eq!(res.status(), 404);
    let v = json(res).await;
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("did not load") && msg.contains("sha256"), "{v}");
    let m = test::call_service(&svc, test::TestRequest::get().uri("/metrics").to_request()).await;
    let text = String::from_utf8(test::read_body(m).await.to_vec()).expect("utf8");
    assert!(
        text.contains("model_provider{model=\"tiny\",provider=\"cpu\"} 1"),
        "{text}"
    );
}

/// POSTs a generate body; gives (status, body bytes, content type).
macro_rules! generate {
    ($svc:expr, $body:expr) => {{
        let req = test::TestRequest::post()
            .uri("/v1/models/tiny/generate")
            .set_json($body)
            .to_request();
        let res = test::call_service($svc, req).await;
        let status = res.status().as_u16();
        let ctype = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, test::read_body(res).await.to_vec(), ctype)
    }};
}

#[actix_web::test]
async fn generation_formats_are_deterministic() {
    let st = fixture();
    let svc = test::init_service(app(st)).await;
    let (s, a, ct) = generate!(&svc, serde_json::json!({"n": 1, "seed": 7}));
    assert_eq!((s, ct.as_str()), (200, "image/png"));
    let img = image::load_from_memory(&a).expect("png");
    assert_eq!((img.width(), img.height()), (28, 28));
    let (_, b, _) = generate!(&svc, serde_json::json!({"n": 1, "seed": 7, "format": "png"}));
    // The first call ran on the blocking pool (cost unknown), this one inline (measured cost
    // of the tiny model is far under 1 ms): both paths give the same bytes.
    assert_eq!(a, b, "same seed, same bytes");
    let (_, c, _) = generate!(&svc, serde_json::json!({"n": 1, "seed": 8}));
    assert_ne!(a, c);

    let (s, z, ct) = generate!(&svc, serde_json::json!({"n": 3, "seed": 1, "format": "zip"}));
    assert_eq!((s, ct.as_str()), (200, "application/zip"));
    let (_, z2, _) = generate!(&svc, serde_json::json!({"n": 3, "seed": 1, "format": "zip"}));
    assert_eq!(z, z2);
    assert_eq!(
        zip::ZipArchive::new(std::io::Cursor::new(z)).expect("zip").len(),
        3
    );

    let (s, npy, _) = generate!(&svc, serde_json::json!({"n": 5, "seed": 1, "format": "npy"}));
    assert_eq!(s, 200);
    let (data, shape) = pagan_shared::npy::from_bytes(&npy, "npy").expect("npy");
    assert_eq!(shape, vec![5, 1, 28, 28]);
    assert!(data.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Batching must not change results: n = 5 starts with the n = 1 image of the same seed.
    let (_, one, _) = generate!(&svc, serde_json::json!({"n": 1, "seed": 1, "format": "npy"}));
    let (first, _) = pagan_shared::npy::from_bytes(&one, "npy").expect("npy");
    let diff = first
        .iter()
        .zip(&data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "batched vs single {diff}");

    let (s, grid, _) = generate!(&svc, serde_json::json!({"n": 4, "format": "grid"}));
    assert_eq!(s, 200);
    assert!(image::load_from_memory(&grid).is_ok());
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/v1/models/tiny/grid.png?n=4&seed=0")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        test::read_body(res).await.to_vec(),
        grid,
        "GET grid.png equals format grid"
    );

    for (body, status, code) in [
        (serde_json::json!({"n": 0}), 400, "bad_n"),
        (serde_json::json!({"n": 2, "format": "png"}), 400, "bad_n"),
        (serde_json::json!({"n": 17, "format": "grid"}), 413, "n_too_large"),
        (serde_json::json!({"n": 1, "format": "gif"}), 400, "bad_json"),
        (serde_json::json!({"n": -1}), 400, "bad_json"),
        (serde_json::json!({"n": 1, "sed": 3}), 400, "bad_json"),
    ] {
        let req = test::TestRequest::post()
            .uri("/v1/models/tiny/generate")
            .set_json(body)
            .to_request();
        assert_error(test::call_service(&svc, req).await, status, code).await;
    }
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/v1/models/tiny/grid.png?n=abc")
            .to_request(),
    )
    .await;
    assert_error(res, 400, "bad_query").await;
}

fn fid_req(query: &str, ctype: &str, body: Vec<u8>) -> actix_web::test::TestRequest {
    test::TestRequest::post()
        .uri(&format!("/v1/fid?{query}"))
        .insert_header(("content-type", ctype.to_owned()))
        .set_payload(body)
}

#[actix_web::test]
async fn fid_scores_every_upload_kind() {
    let st = fixture();
    let svc = test::init_service(app(st)).await;
    // Mixed sizes and channels in one multipart request, with kid.
    let (ct, body) = multipart(&[
        ("file", Some("a.png"), "image/png", png(28, 28, 1, 1)),
        ("file", Some("b.png"), "image/png", png(28, 28, 3, 2)),
        ("file", Some("c.png"), "image/png", png(40, 30, 1, 3)),
        ("note", None, "text/plain", b"ignored".to_vec()),
        // What a browser sends for a file input left empty: ignored too.
        ("extra", Some(""), "application/octet-stream", Vec::new()),
    ]);
    let res = test::call_service(&svc, fid_req("reference=synth&kid=true", &ct, body).to_request()).await;
    assert_eq!(res.status(), 200);
    let v = json(res).await;
    assert_eq!(v["n"], 3);
    assert!(v["fid"].as_f64().is_some_and(f64::is_finite), "{v}");
    assert!(v["kid"].as_f64().is_some(), "{v}");
    assert_eq!(v["reference"], "synth");
    assert_eq!(v["resize_mode"], "asymmetric");
    assert_eq!(v["provider"], "cpu");

    // The same images as a zip, a tar and an npz give the same FID (same order, same batches).
    let same = [png(28, 28, 1, 1), png(28, 28, 1, 2)];
    let zip_body = zip_of(&[
        ("x/0.png", same[0].clone()),
        ("x/1.png", same[1].clone()),
        ("__MACOSX/._0.png", vec![1]),
    ]);
    let res = test::call_service(
        &svc,
        fid_req("reference=plain", "application/zip", zip_body).to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let fid_zip = json(res).await["fid"].as_f64().expect("fid");
    let tar_body = tar_of(&[("0.png", same[0].clone()), ("1.png", same[1].clone())]);
    let res = test::call_service(
        &svc,
        fid_req("reference=plain", "application/x-tar", tar_body).to_request(),
    )
    .await;
    let fid_tar = json(res).await["fid"].as_f64().expect("fid");
    let mut px = Vec::new();
    for p in &same {
        px.extend(image::load_from_memory(p).expect("png").to_luma8().into_raw());
    }
    let npz = npz_of(&[("images", npy_u8(&[2, 28, 28], &px))]);
    let (ct, body) = multipart(&[("file", Some("imgs.npz"), "application/octet-stream", npz)]);
    let res = test::call_service(&svc, fid_req("reference=plain", &ct, body).to_request()).await;
    let fid_npz = json(res).await["fid"].as_f64().expect("fid");
    assert_eq!(fid_zip, fid_tar);
    assert_eq!(fid_zip, fid_npz);
}

#[actix_web::test]
async fn fid_rejects_bad_input_with_4xx() {
    let st = fixture();
    let svc = test::init_service(app(st)).await;
    let two = || zip_of(&[("0.png", png(8, 8, 1, 0)), ("1.png", png(8, 8, 1, 1))]);
    let mut truncated = png(16, 16, 3, 5);
    truncated.truncate(truncated.len() / 2);
    let mut corrupt_tail = png(16, 16, 1, 5);
    let n = corrupt_tail.len();
    corrupt_tail[n - 30..n - 12].fill(0xAB);
    // A real 1000x1000 PNG (compresses to a few KB) against max_pixels 256*256.
    let bomb = pagan_shared::grid::encode_png(1000, 1000, 1, &vec![0u8; 1_000_000]).expect("png");
    let many: Vec<(String, Vec<u8>)> = (0..21)
        .map(|i| (format!("{i}.png"), png(4, 4, 1, i as u8)))
        .collect();
    let many_refs: Vec<(&str, Vec<u8>)> = many.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let thirteen: Vec<(&str, Vec<u8>)> = many_refs[..13].to_vec();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "reference=synth",
            "application/zip",
            zip_of(&[("../evil.png", png(8, 8, 1, 0)), ("ok.png", png(8, 8, 1, 1))]),
            400,
            "unsafe_path",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&[("/abs.png", png(8, 8, 1, 0)), ("ok.png", png(8, 8, 1, 1))]),
            400,
            "unsafe_path",
        ),
        (
            "reference=synth",
            "application/x-tar",
            tar_of(&[("../../x.png", png(8, 8, 1, 0)), ("y.png", png(8, 8, 1, 0))]),
            400,
            "unsafe_path",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&many_refs),
            413,
            "too_many_entries",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&thirteen),
            413,
            "too_many_images",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&[("big.png", vec![0u8; 5 << 20]), ("b.png", png(8, 8, 1, 0))]),
            413,
            "archive_too_large",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&[("a.png", png(8, 8, 1, 0)), ("b.png", truncated.clone())]),
            400,
            "corrupt_image",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&[("a.png", png(8, 8, 1, 0)), ("b.txt", b"hello".to_vec())]),
            415,
            "unsupported_media_type",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&[("a.png", png(8, 8, 1, 0)), ("b.png", bomb.clone())]),
            413,
            "too_many_pixels",
        ),
        ("reference=synth", "image/png", bomb, 413, "too_many_pixels"),
        (
            "reference=synth",
            "image/png",
            png(8, 8, 1, 0),
            422,
            "too_few_images",
        ),
        (
            "reference=synth",
            "text/plain",
            b"just some text".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "reference=synth",
            "application/zip",
            b"PK\x03\x04garbage".to_vec(),
            400,
            "corrupt_archive",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&[]),
            422,
            "empty_set",
        ),
        (
            "reference=synth",
            "application/zip",
            zip_of(&[("d/.DS_Store", vec![0])]),
            422,
            "empty_set",
        ),
        (
            "reference=synth",
            "application/octet-stream",
            Vec::new(),
            422,
            "empty_set",
        ),
        (
            "reference=nope",
            "application/zip",
            two(),
            404,
            "reference_not_found",
        ),
        (
            "reference=plain&kid=true",
            "application/zip",
            two(),
            422,
            "reference_has_no_features",
        ),
        (
            "reference=synth&bogus=1",
            "application/zip",
            two(),
            400,
            "bad_query",
        ),
        (
            "reference=synth",
            "application/x-npz",
            npz_of(&[("images", npy_u8(&[2, 4], &[0; 8]))]),
            422,
            "bad_shape",
        ),
        (
            "reference=synth",
            "application/x-npz",
            npz_of(&[("images", npy_u8(&[2, 4, 4], &[0; 20]))]),
            400,
            "bad_npz",
        ),
        (
            "reference=synth",
            "application/x-npz",
            npz_of(&[("images", pagan_shared::npy::to_bytes(&[0.0; 32], &[2, 4, 4]))]),
            422,
            "bad_dtype",
        ),
        (
            "reference=synth",
            "application/x-npz",
            npz_of(&[("images", npy_u8(&[20, 4, 4], &[0; 320]))]),
            413,
            "too_many_images",
        ),
    ];
    for (query, ctype, body, status, code) in cases {
        let res = test::call_service(&svc, fid_req(query, ctype, body).to_request()).await;
        let got = res.status().as_u16();
        let v = json(res).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{query} {ctype}: {v}"
        );
    }
    // Multipart edge cases: no file fields; a broken form.
    let (ct, body) = multipart(&[("note", None, "text/plain", b"x".to_vec())]);
    assert_error(
        test::call_service(&svc, fid_req("reference=synth", &ct, body).to_request()).await,
        422,
        "empty_set",
    )
    .await;
    let res = test::call_service(
        &svc,
        fid_req(
            "reference=synth",
            "multipart/form-data; boundary=zzz",
            b"--zzz\r\nbroken".to_vec(),
        )
        .to_request(),
    )
    .await;
    assert_error(res, 400, "bad_multipart").await;
    // A PNG with damaged data after a good one, as separate files: refused as corrupt,
    // naming the file (a server that dropped it and scored one image would answer
    // too_few_images instead).
    let (ct, body) = multipart(&[
        ("f", Some("a.png"), "image/png", png(8, 8, 1, 0)),
        ("f", Some("b.png"), "image/png", corrupt_tail),
    ]);
    let res = test::call_service(&svc, fid_req("reference=synth", &ct, body).to_request()).await;
    assert_eq!(res.status(), 400);
    let v = json(res).await;
    assert_eq!(v["error"]["code"], "corrupt_image", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("b.png")),
        "{v}"
    );
}

#[actix_web::test]
async fn model_fid_in_request_and_as_job() {
    let st = fixture();
    let svc = test::init_service(app(st)).await;
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/v1/models/tiny/fid?reference=synth&n=3&seed=1&kid=true")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let v = json(res).await;
    assert_eq!(v["n"], 3);
    assert!(v["kid"].as_f64().is_some());

    for (uri, status, code) in [
        ("/v1/models/tiny/fid?reference=synth&n=1", 422, "too_few_images"),
        ("/v1/models/tiny/fid?reference=synth&n=17", 413, "n_too_large"),
        ("/v1/models/nope/fid?reference=synth&n=3", 404, "model_not_found"),
        (
            "/v1/models/tiny/fid?reference=nope&n=3",
            404,
            "reference_not_found",
        ),
        ("/v1/models/tiny/fid?n=3", 400, "bad_query"),
    ] {
        let res = test::call_service(&svc, test::TestRequest::post().uri(uri).to_request()).await;
        assert_error(res, status, code).await;
    }

    // Above the threshold (6): a job. The queue holds one waiting job, so a burst gets a 429.
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/v1/models/tiny/fid?reference=synth&n=7&seed=2")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), 202);
    assert!(res.headers().get("location").is_some());
    let id = json(res).await["id"].as_str().expect("id").to_owned();
    let mut busy = false;
    for _ in 0..4 {
        let res = test::call_service(
            &svc,
            test::TestRequest::post()
                .uri("/v1/models/tiny/fid?reference=synth&n=2&async=true")
                .to_request(),
        )
        .await;
        if res.status() == 429 {
            assert!(res.headers().get("retry-after").is_some());
            assert_error(res, 429, "busy").await;
            busy = true;
            break;
        }
        assert_eq!(res.status(), 202);
    }
    assert!(busy, "a full queue answers 429");
    let mut last = serde_json::Value::Null;
    for _ in 0..600 {
        let res = test::call_service(
            &svc,
            test::TestRequest::get()
                .uri(&format!("/v1/jobs/{id}"))
                .to_request(),
        )
        .await;
        last = json(res).await;
        if last["status"] == "done" || last["status"] == "failed" {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(last["status"], "done", "{last}");
    assert_eq!(last["done"], 7);
    assert_eq!(last["result"]["n"], 7);
}

/// Built with `--features cuda` (`cargo test -p pagan-server --features cuda`): the provider
/// reported is the one ORT really gave, and `--provider cuda` never falls back. Without the
/// CUDA provider library every model is refused with ORT's reason; with it (a GPU machine
/// with onnxruntime-gpu), every model reports cuda.
#[cfg(feature = "cuda")]
#[actix_web::test]
async fn cuda_provider_is_real_or_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let models = build_fixture(tmp.path());
    let mut c = config(&models);
    c.provider = pagan_server::config::ProviderChoice::Cuda;
    let st = web::Data::new(AppState::new(c).expect("state"));
    let svc = test::init_service(app(st)).await;
    let v = json(test::call_service(&svc, test::TestRequest::get().uri("/readyz").to_request()).await).await;
    let mut loaded = v["models"].as_array().cloned().unwrap_or_default();
    if v["extractor"].is_object() {
        loaded.push(v["extractor"].clone());
    }
    let refused: Vec<_> = v["failed"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f["name"] != "broken")
        .collect();
    for m in &loaded {
        assert_eq!(m["provider"], "cuda", "{v}");
    }
    for f in &refused {
        assert!(f["error"].as_str().is_some_and(|e| e.contains("CUDA")), "{v}");
    }
    assert_eq!(loaded.len() + refused.len(), 2, "tiny and the extractor: {v}");

    let mut c = config(&models);
    c.provider = pagan_server::config::ProviderChoice::Auto;
    let st = web::Data::new(AppState::new(c).expect("state"));
    let svc = test::init_service(app(st)).await;
    let v = json(test::call_service(&svc, test::TestRequest::get().uri("/readyz").to_request()).await).await;
    let want = if refused.is_empty() { "cuda" } else { "cpu" };
    assert_eq!(
        v["models"][0]["provider"], want,
        "auto must report what it got: {v}"
    );
}
