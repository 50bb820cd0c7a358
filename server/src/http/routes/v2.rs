//! KServe V2 / Open Inference Protocol (REST) beside the `/v1` API, so serving
//! infrastructure and its clients (e.g. `tritonclient[http]`) can call the generators.
//! Errors use the protocol's shape, `{"error": "message"}`, with the `/v1` statuses.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use crate::http::error::{ApiError, response_for};
use crate::http::{blocking, find_model, upload};
use crate::oip::{self, OipError};
use crate::state::AppState;

/// Largest inference body read into memory (a JSON tensor is ~20 bytes per value).
const MAX_INFER_BODY: u64 = 64 << 20;

/// An [`ApiError`] rendered as the protocol's `{"error": "message"}`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct V2Error(#[from] ApiError);

impl ResponseError for V2Error {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        response_for("/v2", &self.0)
    }
}

impl From<OipError> for V2Error {
    fn from(e: OipError) -> Self {
        let m = e.to_string();
        V2Error(match e {
            OipError::TooMany { .. } => ApiError::too_large("n_too_large", m),
            OipError::Json(_) => ApiError::bad("bad_json", m),
            OipError::Input(_) => ApiError::bad("bad_input", m),
        })
    }
}

/// `GET /v2`: server metadata.
pub async fn server_metadata() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "pagan-serve",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

/// `GET /v2/health/live`.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "live": true }))
}

/// `GET /v2/health/ready`: 200 when a generator can be served, else 503.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let ready = !state.registry.generators.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(json!({ "ready": ready }))
}

/// `GET /v2/models/{name}`: inputs and outputs with datatypes and shapes.
pub async fn model_metadata(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, V2Error> {
    let g = find_model(&state, &name)?;
    Ok(HttpResponse::Ok().json(oip::metadata(&g)))
}

/// `GET /v2/models/{name}/ready`: 200 for a loaded model (unknown ones are 404).
pub async fn model_ready(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, V2Error> {
    let g = find_model(&state, &name)?;
    Ok(HttpResponse::Ok().json(json!({ "name": g.name, "ready": true })))
}

/// `POST /v2/models/{name}/infer`: JSON, or the binary tensor extension (the JSON part's
/// length in `Inference-Header-Content-Length`, raw tensors after it). A class-conditional
/// model needs its `labels` input too (the graph's inputs, no default).
pub async fn infer(
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, V2Error> {
    let g = find_model(&state, &name)?;
    let header_len = match req.headers().get(oip::HEADER_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad(
                        "bad_header",
                        "Inference-Header-Content-Length must be a byte count",
                    )
                })?,
        ),
    };
    let limit = MAX_INFER_BODY.min(state.config.limits.max_body_bytes);
    let body = upload::read_body(
        &req,
        payload,
        upload::BodyLimits::new(&state.config.limits, limit),
    )
    .await?;
    let inf = oip::decode(
        &body,
        header_len,
        &oip::ModelInputs::of(&g),
        state.config.limits.max_generate_n,
    )?;
    let st = state.clone();
    let encoded = blocking(move || {
        let images = g
            .generate(
                &inf.z,
                inf.labels.as_deref(),
                inf.n,
                st.config.generate_batch,
                &st.metrics,
            )
            .map_err(|e| ApiError::internal(format!("model {}: {e}", g.name)))?;
        oip::encode(&g, &inf, &images).map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    Ok(match encoded.binary {
        None => HttpResponse::Ok()
            .content_type("application/json")
            .body(encoded.json),
        Some(raw) => {
            let json_len = encoded.json.len();
            let mut bytes = encoded.json;
            bytes.extend_from_slice(&raw);
            HttpResponse::Ok()
                .content_type("application/octet-stream")
                .insert_header((oip::HEADER_LENGTH, json_len.to_string()))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(bytes)
        }
    })
}
