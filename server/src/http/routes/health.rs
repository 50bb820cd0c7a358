//! Operations: liveness, readiness with per-model detail, metrics, the OpenAPI document.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::ok_json;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    ok_json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when something can be served, else 503; detail per model.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let reg = &state.registry;
    let models: Vec<_> = reg
        .generators
        .values()
        .map(|g| json!({ "name": g.name, "status": "loaded", "provider": g.provider.as_str() }))
        .collect();
    let extractor = reg.extractor.as_ref().map(|x| {
        json!({ "status": "loaded", "provider": x.provider.as_str(), "resize_mode": x.manifest.resize_mode.as_str() })
    });
    let body = json!({
        "ready": reg.ready(),
        "models": models,
        "extractor": extractor,
        "references": reg.reference_infos().len(),
        "failed": reg.failed,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
    });
    if reg.ready() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// `GET /openapi.json`: the hand-written OpenAPI 3 document.
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    let conditional: Vec<_> = state
        .registry
        .generators
        .values()
        .filter_map(|g| g.manifest.classes.as_ref())
        .collect();
    ok_json(crate::http::openapi::document(&state.config, &conditional))
}
