//! Reference statistics: listing and uploading pytorch-fid `.npz` files.

use actix_web::{HttpRequest, HttpResponse, web};
use pagan_shared::StatsError;
use serde_json::json;

use super::{blocking, ok_json};
use crate::errors::ApiError;
use crate::registry::{FEATURE_DIM, Reference, is_valid_name};
use crate::state::AppState;
use crate::upload;

/// `GET /v1/references`.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    ok_json(json!({ "references": state.registry.reference_infos() }))
}

fn stats_error(e: StatsError) -> ApiError {
    match e {
        StatsError::Zip { source, .. } => {
            ApiError::bad("bad_npz", format!("not a readable .npz archive: {source}"))
        }
        StatsError::Io { source, .. } => ApiError::internal(format!("reading upload: {source}")),
        // Strip the temp path the shared reader puts in front: it means nothing to clients.
        StatsError::InvalidFile { msg, .. } => ApiError::unprocessable("invalid_statistics", msg),
        other => ApiError::unprocessable("invalid_statistics", other.to_string()),
    }
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
    if !is_valid_name(&name) {
        return Err(ApiError::bad(
            "bad_name",
            "reference names are 1-64 letters, digits, `-`, `_` or `.`, not starting with `.`",
        ));
    }
    if state.registry.reference(&name).is_some() {
        return Err(ApiError::Conflict(format!("reference `{name}` already exists")));
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
        let part = &up.parts[0];
        let r = Reference::load(&name, &part.path).map_err(stats_error)?;
        if r.gaussian.dim() != FEATURE_DIM {
            return Err(ApiError::unprocessable(
                "invalid_statistics",
                format!(
                    "statistics have dimension {}, the extractor gives {FEATURE_DIM}",
                    r.gaussian.dim()
                ),
            ));
        }
        let dir = &st.registry.references_dir;
        let io = |e: std::io::Error| ApiError::internal(format!("saving reference: {e}"));
        std::fs::create_dir_all(dir).map_err(io)?;
        // Copy beside the target, then rename: readers never see a half-written file.
        let tmp = dir.join(format!(".{name}.npz.upload"));
        std::fs::copy(&part.path, &tmp).map_err(io)?;
        std::fs::rename(&tmp, dir.join(format!("{name}.npz"))).map_err(io)?;
        let info = r.info();
        st.registry.insert_reference(r);
        tracing::info!(reference = %info.name, n = ?info.n, "reference uploaded");
        Ok(info)
    })
    .await?;
    Ok(HttpResponse::Created().json(info))
}
