//! `GET /v1/jobs/{id}`: progress and result of a background scoring job.

use actix_web::{HttpResponse, web};

use super::ok_json;
use crate::errors::ApiError;
use crate::state::AppState;

/// `GET /v1/jobs/{id}`.
pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = state
        .jobs
        .get(&id)
        .ok_or_else(|| ApiError::not_found("job_not_found", format!("no job `{id}`")))?;
    Ok(ok_json(job.to_json()))
}
