//! The HTTP contract beyond single handlers: 405 with `Allow` on known paths, JSON bodies
//! that must be objects, the OpenAPI document declaring the limits this server enforces,
//! bearer tokens on writes and compute-heavy routes, and refusing to expose a
//! non-loopback address without one.

mod common;

use actix_web::http::Method;
use actix_web::{App, test, web};
use common::{assert_error, json};
use pagan_server::config::ExposureError;
use pagan_server::http::Access;
use pagan_server::{AppState, Config, app};

fn state_with(dir: &std::path::Path, edit: impl FnOnce(&mut Config)) -> web::Data<AppState> {
    let mut c = Config::with_models(dir);
    edit(&mut c);
    web::Data::new(AppState::new(c).expect("state"))
}

#[actix_web::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let dir = tempfile::tempdir().expect("tmp");
    let svc = test::init_service(app(state_with(dir.path(), |_| {}))).await;
    for (method, path, allow) in [
        (Method::TRACE, "/healthz", "GET, HEAD"),
        (Method::DELETE, "/v1/models", "GET, HEAD"),
        (Method::GET, "/v1/fid", "POST"),
        (Method::PUT, "/v1/references/x", "POST"),
        (Method::PATCH, "/v2/models/x/infer", "POST"),
    ] {
        let req = test::TestRequest::default()
            .method(method.clone())
            .uri(path)
            .to_request();
        let res = test::call_service(&svc, req).await;
        let v2 = path.starts_with("/v2");
        let got = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(got.as_deref(), Some(allow), "{method} {path}");
        if v2 {
            assert_eq!(res.status(), 405);
            let v = json(res).await;
            assert!(
                v["error"].as_str().is_some_and(|m| m.contains("allowed: POST")),
                "{v}"
            );
        } else {
            assert_error(res, 405, "method_not_allowed").await;
        }
    }
    let res = test::call_service(&svc, test::TestRequest::get().uri("/v1/nothing").to_request()).await;
    assert_error(res, 404, "route_not_found").await;
    // HEAD wherever GET is served.
    let head = test::TestRequest::default()
        .method(Method::HEAD)
        .uri("/healthz")
        .to_request();
    assert_eq!(test::call_service(&svc, head).await.status(), 200);
}

#[actix_web::test]
async fn generate_bodies_must_be_json_objects() {
    let dir = tempfile::tempdir().expect("tmp");
    let svc = test::init_service(app(state_with(dir.path(), |_| {}))).await;
    for (body, what) in [
        ("[]", "an array"),
        ("[1, 7, \"png\"]", "an array"),
        ("3", "a number"),
        ("null", "null"),
        ("\"n\"", "a string"),
    ] {
        let req = test::TestRequest::post()
            .uri("/v1/models/any/generate")
            .insert_header(("content-type", "application/json"))
            .set_payload(body)
            .to_request();
        let res = test::call_service(&svc, req).await;
        assert_eq!(res.status(), 400, "{body}");
        let v = json(res).await;
        assert_eq!(v["error"]["code"], "bad_json", "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| m.contains(what)),
            "{body}: {v}"
        );
    }
    // Another content type is 415 and a body past the JSON limit 413, each saying why.
    let big = format!("{{\"n\": 1, \"pad\": \"{}\"}}", "x".repeat(70 << 10));
    for (ctype, body, status, code, what) in [
        (
            "text/plain",
            "{\"n\": 1}".to_string(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        ("application/json", big, 413, "body_too_large", "65536 bytes"),
    ] {
        let req = test::TestRequest::post()
            .uri("/v1/models/any/generate")
            .insert_header(("content-type", ctype))
            .set_payload(body)
            .to_request();
        let res = test::call_service(&svc, req).await;
        assert_eq!(res.status(), status, "{ctype}");
        let v = json(res).await;
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| m.contains(what)),
            "{v}"
        );
    }
    // A query that does not parse is quoted in the message (the parser names no parameter).
    let req = test::TestRequest::get()
        .uri("/v1/models/any/grid.png?n=-1")
        .to_request();
    let v = json(test::call_service(&svc, req).await).await;
    assert_eq!(v["error"]["code"], "bad_query", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`n=-1`")),
        "{v}"
    );
}

/// The schema of query parameter `name` of `method path` in the OpenAPI document.
fn query_param(doc: &serde_json::Value, path: &str, method: &str, name: &str) -> serde_json::Value {
    let params = doc["paths"][path][method]["parameters"]
        .as_array()
        .expect("params");
    params.iter().find(|p| p["name"] == name).expect("param").clone()
}

#[::core::prelude::v1::test]
fn the_document_declares_this_servers_limits() {
    let mut c = Config::with_models("models");
    c.limits.max_generate_n = 37;
    c.limits.max_score_n = 99;
    let doc = pagan_server::http::openapi::document(&c, &[]);
    let generate = &doc["components"]["schemas"]["GenerateRequest"];
    assert_eq!(generate["properties"]["n"]["maximum"], 37);
    assert_eq!(generate["additionalProperties"], false);
    let grid_n = query_param(&doc, "/v1/models/{name}/grid.png", "get", "n");
    assert_eq!(grid_n["schema"]["maximum"], 37);
    let fid_n = query_param(&doc, "/v1/models/{name}/fid", "post", "n");
    assert_eq!(
        (
            fid_n["schema"]["minimum"].clone(),
            fid_n["schema"]["maximum"].clone()
        ),
        (2.into(), 99.into())
    );
    for status in ["202", "413", "429"] {
        assert!(
            doc["paths"]["/v1/fid"]["post"]["responses"][status].is_object(),
            "{status}"
        );
    }
}

const TOKEN: &str = "a-long-enough-test-token-0123";

#[actix_web::test]
async fn with_a_token_writes_and_compute_need_it_and_the_rest_stays_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let svc = test::init_service(app(state_with(dir.path(), |c| c.token = Some(TOKEN.into())))).await;
    let mut routes = Vec::new();
    let _ = App::new().configure(|cfg| routes = pagan_server::http::register(cfg));
    let mut guarded = 0;
    for (method, path, access) in routes {
        let uri = path.replace("{name}", "nope").replace("{id}", "nope");
        let req = test::TestRequest::default()
            .method(method.clone())
            .uri(&uri)
            .to_request();
        let res = test::call_service(&svc, req).await;
        match access {
            Access::Token => {
                guarded += 1;
                assert_eq!(
                    res.headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "{method} {uri}"
                );
                let v = json(res).await;
                let message = if path.starts_with("/v2") {
                    v["error"].as_str()
                } else {
                    assert_eq!(v["error"]["code"], "unauthorized", "{method} {uri}: {v}");
                    v["error"]["message"].as_str()
                };
                assert!(
                    message.is_some_and(|m| m.contains("Bearer")),
                    "{method} {uri}: {v}"
                );
            }
            Access::Open => assert_ne!(res.status(), 401, "{method} {uri} must stay open"),
        }
    }
    assert_eq!(
        guarded, 7,
        "generate, grid, model fid, reference upload, fid, jobs, v2 infer"
    );
    // The right token passes the guard (the model does not exist: 404, not 401).
    for auth in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")] {
        let req = test::TestRequest::post()
            .uri("/v1/models/nope/generate")
            .insert_header(("authorization", auth))
            .set_json(serde_json::json!({"n": 1}))
            .to_request();
        assert_error(test::call_service(&svc, req).await, 404, "model_not_found").await;
    }
    let req = test::TestRequest::post()
        .uri("/v1/models/nope/generate")
        .insert_header(("authorization", "Bearer wrong"))
        .set_json(serde_json::json!({"n": 1}))
        .to_request();
    assert_error(test::call_service(&svc, req).await, 401, "unauthorized").await;
}

#[::core::prelude::v1::test]
fn a_public_address_without_a_token_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().expect("tmp");
    let public = |c: &mut Config| c.bind = "0.0.0.0:8080".parse().expect("addr");
    let mut c = Config::with_models(dir.path());
    public(&mut c);
    let err = AppState::new(c.clone()).err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("0.0.0.0:8080") && msg.contains("--token"), "{msg}");
    assert!(matches!(
        c.check_exposure(),
        Err(ExposureError::Unauthenticated(_))
    ));
    c.allow_unauthenticated = true;
    assert!(AppState::new(c.clone()).is_ok(), "explicitly allowed");
    c.allow_unauthenticated = false;
    c.token = Some(TOKEN.into());
    assert!(AppState::new(c.clone()).is_ok(), "a token makes it safe");
    c.token = Some("  ".into());
    assert!(matches!(c.check_exposure(), Err(ExposureError::EmptyToken)));
    let loopback = Config::with_models(dir.path());
    assert!(
        AppState::new(loopback).is_ok(),
        "loopback without a token is fine"
    );
}
