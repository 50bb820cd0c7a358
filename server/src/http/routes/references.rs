//! Reference statistics: listing and uploading pytorch-fid `.npz` files.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::{blocking, ok_json, upload};
use crate::models::ReferenceError;
use crate::models::registry::is_valid_name;
use crate::state::AppState;

/// `GET /v1/references`.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    ok_json(json!({ "references": state.registry.reference_infos() }))
}

/// `POST /v1/references/{name}`: a pytorch-fid `.npz` (`mu`, `sigma`; optional
/// `features` for KID) as the raw body or one multipart file. 201 on success.
pub async fn upload(
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    // Cheap checks before the body is read; the store checks the name again, atomically.
    if !is_valid_name(&name) {
        return Err(ReferenceError::BadName.into());
    }
    if state.registry.reference(&name).is_some() {
        return Err(ReferenceError::Exists(name).into());
    }
    let up = upload::receive(&req, payload, state.config.limits.max_body_bytes).await?;
    if up.parts.len() != 1 {
        return Err(ApiError::bad(
            "bad_upload",
            format!("send exactly one .npz file, got {}", up.parts.len()),
        ));
    }
    let st = state.clone();
    let info = blocking(move || {
        let info = st.registry.add_reference(&name, &up.parts[0].path)?;
        tracing::info!(reference = %info.name, n = ?info.n, "reference uploaded");
        Ok(info)
    })
    .await?;
    Ok(HttpResponse::Created().json(info))
}
