//! Handler tests that need no ONNX Runtime: an empty models folder, operations routes,
//! the OpenAPI document, references and their validation.

mod common;

use std::collections::BTreeSet;

use actix_web::http::Method;
use actix_web::{App, test, web};
use common::{assert_error, json, stats_npz};
use pagan_server::{AppState, Config, app};

fn state(dir: &std::path::Path) -> web::Data<AppState> {
    web::Data::new(AppState::new(Config::with_models(dir)).expect("state"))
}

#[actix_web::test]
async fn empty_registry_serves_operations_routes() {
    let dir = tempfile::tempdir().expect("tmp");
    let svc = test::init_service(app(state(dir.path()))).await;

    let res = test::call_service(&svc, test::TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(res.status(), 200);

    let res = test::call_service(&svc, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(res.status(), 503);
    let v = json(res).await;
    assert_eq!(v["ready"], false);
    assert_eq!(v["models"], serde_json::json!([]));

    let res = test::call_service(&svc, test::TestRequest::get().uri("/v1/models").to_request()).await;
    assert_eq!(json(res).await["models"], serde_json::json!([]));

    let res = test::call_service(&svc, test::TestRequest::get().uri("/v1/models/nope").to_request()).await;
    assert_error(res, 404, "model_not_found").await;

    let req = test::TestRequest::post()
        .uri("/v1/models/nope/generate")
        .set_json(serde_json::json!({"n": 1}))
        .to_request();
    assert_error(test::call_service(&svc, req).await, 404, "model_not_found").await;

    let res = test::call_service(&svc, test::TestRequest::get().uri("/no/such/route").to_request()).await;
    assert_error(res, 404, "route_not_found").await;

    let res = test::call_service(&svc, test::TestRequest::get().uri("/v1/jobs/123").to_request()).await;
    assert_error(res, 404, "job_not_found").await;

    let req = test::TestRequest::post().uri("/v1/fid?reference=x").to_request();
    assert_error(test::call_service(&svc, req).await, 503, "unavailable").await;

    let req = test::TestRequest::post().uri("/v1/fid").to_request();
    assert_error(test::call_service(&svc, req).await, 400, "bad_query").await;

    let res = test::call_service(&svc, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(res.status(), 200);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf8");
    for name in [
        "http_requests_total",
        "http_request_duration_seconds",
        "jobs_queue_depth",
        "images_scored_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(
        text.contains("route=\"/v1/models/{name}\""),
        "route label is the pattern"
    );
}

#[actix_web::test]
async fn openapi_lists_exactly_the_registered_routes() {
    let mut registered = Vec::new();
    let _app = App::new().configure(|cfg| registered = pagan_server::http::register(cfg));
    let registered: BTreeSet<(String, String)> = registered
        .into_iter()
        .map(|(m, p, _)| (m.as_str().to_lowercase(), p.to_owned()))
        .collect();
    let doc = pagan_server::http::openapi::document(&Config::with_models("models"), &[]);
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(registered, documented);
    assert!(registered.contains(&(Method::POST.as_str().to_lowercase(), "/v1/fid".to_owned())));

    let dir = tempfile::tempdir().expect("tmp");
    let svc = test::init_service(app(state(dir.path()))).await;
    let res = test::call_service(&svc, test::TestRequest::get().uri("/openapi.json").to_request()).await;
    assert_eq!(json(res).await["openapi"], "3.0.3");
}

fn eye(d: usize) -> Vec<f32> {
    (0..d * d)
        .map(|i| if i % (d + 1) == 0 { 1.0 } else { 0.0 })
        .collect()
}

#[actix_web::test]
async fn reference_upload_validates_and_stores() {
    let dir = tempfile::tempdir().expect("tmp");
    let st = state(dir.path());
    let svc = test::init_service(app(st.clone())).await;
    let post = |name: &str, body: Vec<u8>| {
        test::TestRequest::post()
            .uri(&format!("/v1/references/{name}"))
            .insert_header(("content-type", "application/octet-stream"))
            .set_payload(body)
            .to_request()
    };

    // NaN in mu.
    let mut mu = vec![0.0f32; 2048];
    mu[3] = f32::NAN;
    let res = test::call_service(&svc, post("nan", stats_npz(&mu, &eye(2048)))).await;
    assert_error(res, 422, "invalid_statistics").await;
    // sigma not matching mu.
    let res = test::call_service(&svc, post("shape", stats_npz(&[0.0; 4], &eye(3)))).await;
    assert_error(res, 422, "invalid_statistics").await;
    // Right layout, wrong dimension for the extractor.
    let res = test::call_service(&svc, post("small", stats_npz(&[0.0; 4], &eye(4)))).await;
    assert_error(res, 422, "invalid_statistics").await;
    // Not an npz at all (nor a zip of images: the body may be either).
    let res = test::call_service(&svc, post("junk", b"PK\x03\x04 definitely not a zip".to_vec())).await;
    assert_error(res, 400, "corrupt_archive").await;
    // Missing keys.
    let res = test::call_service(
        &svc,
        post(
            "nokeys",
            common::npz_of(&[("x", pagan_shared::npy::to_bytes(&[1.0], &[1]))]),
        ),
    )
    .await;
    assert_error(res, 422, "invalid_statistics").await;
    // Bad names.
    let res = test::call_service(&svc, post(".hidden", stats_npz(&[0.0; 4], &eye(4)))).await;
    assert_error(res, 400, "bad_name").await;
    let res = test::call_service(&svc, post("a%2F..%2Fb", stats_npz(&[0.0; 4], &eye(4)))).await;
    assert_error(res, 400, "bad_name").await;
    // Empty body: no files (as for /v1/fid).
    let res = test::call_service(&svc, post("empty", Vec::new())).await;
    assert_error(res, 422, "empty_set").await;

    // A valid one (multipart this time), then a duplicate.
    let good = stats_npz(&vec![0.5f32; 2048], &eye(2048));
    let (ctype, body) =
        common::multipart(&[("file", Some("ref.npz"), "application/octet-stream", good.clone())]);
    let req = test::TestRequest::post()
        .uri("/v1/references/good")
        .insert_header(("content-type", ctype))
        .set_payload(body)
        .to_request();
    let res = test::call_service(&svc, req).await;
    assert_eq!(res.status(), 201);
    assert_eq!(json(res).await["dim"], 2048);
    assert!(dir.path().join("references/good.npz").is_file());
    let res = test::call_service(&svc, post("good", good)).await;
    assert_error(res, 409, "conflict").await;

    let res = test::call_service(&svc, test::TestRequest::get().uri("/v1/references").to_request()).await;
    let v = json(res).await;
    let names: Vec<_> = v["references"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, vec![serde_json::json!("good")]);

    // A restart finds it on disk.
    let again = state(dir.path());
    assert!(again.registry.reference("good").is_some());
}

#[actix_web::test]
async fn body_limit_is_413() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = Config::with_models(dir.path());
    cfg.limits.max_body_bytes = 1000;
    let svc = test::init_service(app(web::Data::new(AppState::new(cfg).expect("state")))).await;
    let req = test::TestRequest::post()
        .uri("/v1/references/big")
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(vec![0u8; 5000])
        .to_request();
    assert_error(test::call_service(&svc, req).await, 413, "body_too_large").await;
}

#[::core::prelude::v1::test]
fn cuda_without_the_feature_is_a_startup_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = Config::with_models(dir.path());
    cfg.provider = pagan_server::config::ProviderChoice::Cuda;
    let r = AppState::new(cfg);
    if cfg!(feature = "cuda") {
        assert!(r.is_ok());
    } else {
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("cuda"), "{msg}");
    }
}

#[::core::prelude::v1::test]
fn a_missing_models_folder_is_a_startup_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("no-models-here");
    let err = AppState::new(Config::with_models(&missing))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("no-models-here") && err.contains("--models"),
        "{err}"
    );
}

#[::core::prelude::v1::test]
fn broken_models_are_listed_not_fatal() {
    let dir = tempfile::tempdir().expect("tmp");
    let m = dir.path().join("broken");
    std::fs::create_dir_all(&m).expect("mkdir");
    std::fs::write(m.join("manifest.json"), "{ not json").expect("write");
    std::fs::create_dir_all(dir.path().join("references")).expect("mkdir");
    std::fs::write(dir.path().join("references/bad.npz"), "junk").expect("write");
    let st = AppState::new(Config::with_models(dir.path())).expect("state");
    let names: Vec<_> = st.registry.failed.iter().map(|f| f.name.clone()).collect();
    assert_eq!(names, vec!["broken".to_owned(), "references/bad.npz".to_owned()]);
    assert!(st.registry.generators.is_empty());
}
