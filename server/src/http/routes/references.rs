//! Reference statistics: listing, and creating them from statistics files or image sets.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use pagan_shared::ResizeMode;
use serde::Deserialize;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::routes::fid::dispatch;
use crate::http::{blocking, extractor, ok_json, upload};
use crate::models::ReferenceError;
use crate::models::registry::is_valid_name;
use crate::scoring::jobs::{JobOutput, Jobs, Task};
use crate::scoring::new_reference::{self, ReferenceUpload};
use crate::scoring::{ScoreError, archive};
use crate::state::AppState;

/// `GET /v1/references`.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    ok_json(json!({ "references": state.registry.reference_infos() }))
}

/// Query of `POST /v1/references/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceQuery {
    /// Images: the convention to compute with (default asymmetric). A statistics file: the
    /// convention it was computed with, recorded when the file records none.
    #[serde(default)]
    resize_mode: Option<ResizeMode>,
    /// Images: always build as a background job.
    #[serde(default, rename = "async")]
    run_async: bool,
}

/// `POST /v1/references/{name}[?resize_mode=M][&async=true]`: one `.npz` of statistics
/// (`mu`, `sigma`; optional `features`; pytorch-fid's and clean-fid's files too) or of
/// clean-fid feature rows (`feats`), stored at once (201); or an image set in any format
/// `/v1/fid` takes, whose statistics and features are computed (201 in the request, 202
/// and a job when large).
pub async fn upload(
    state: web::Data<AppState>,
    name: web::Path<String>,
    q: web::Query<ReferenceQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let q = q.into_inner();
    // Cheap checks before the body is read; the store checks the name again, atomically.
    if !is_valid_name(&name) {
        return Err(ReferenceError::BadName.into());
    }
    if state.registry.reference(&name).is_some() {
        return Err(ReferenceError::Exists(name).into());
    }
    if q.run_async && state.jobs.looks_full() {
        return Err(Jobs::full_error().into());
    }
    let limits = state.config.limits.clone();
    let up = upload::receive(
        &req,
        payload,
        upload::BodyLimits::new(&limits, limits.max_body_bytes),
    )
    .await?;
    if up.parts.is_empty() {
        return Err(ApiError::unprocessable("empty_set", "the request holds no files"));
    }
    let (up, kind) = blocking(move || {
        let kind = new_reference::classify(&up)?;
        Ok((up, kind))
    })
    .await?;
    if let ReferenceUpload::Statistics(kind) = kind {
        let st = state.clone();
        let info = blocking(move || {
            let path = new_reference::convert(&up, kind, q.resize_mode)?;
            let info = st.registry.add_reference(&name, &path)?;
            tracing::info!(reference = %info.name, n = ?info.n, "reference uploaded");
            Ok(info)
        })
        .await?;
        return Ok(HttpResponse::Created().json(info));
    }
    // An image set: counted and checked against the limits before any decoding (and before
    // the extractor is needed: a file that is no reference at all is the client's error).
    let lim = limits.clone();
    let (up, n) = blocking(move || match archive::count(&up, &lim) {
        Ok(n) => Ok((up, n)),
        Err(
            e @ (ScoreError::BadDtype { .. }
            | ScoreError::BadShape { .. }
            | ScoreError::NpzMember(_)
            | ScoreError::FortranOrder(_)),
        ) if kind == ReferenceUpload::ImageArray => Err(ReferenceError::Invalid(format!(
            "the .npz holds neither statistics (mu, sigma), feature rows (feats) nor a uint8 image array \
             (images, arr_0): {e}"
        ))
        .into()),
        Err(e) => Err(e.into()),
    })
    .await?;
    let x = extractor(&state)?;
    if n < 2 {
        return Err(ScoreError::TooFewImages { n: n as u64 }.into());
    }
    let mode = q.resize_mode.unwrap_or_default();
    let st = state.clone();
    let task: Task = Box::new(move |progress| {
        let path = new_reference::from_images(
            &x,
            &st.metrics,
            st.config.score_batch,
            progress,
            &up,
            &limits,
            mode,
        )?;
        let info = st.registry.add_reference(&name, &path)?;
        tracing::info!(reference = %info.name, n = ?info.n, resize = %mode, "reference built from images");
        Ok(JobOutput::Reference(info))
    });
    dispatch(&state, n, q.run_async, task, StatusCode::CREATED).await
}
