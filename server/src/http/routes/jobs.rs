//! `GET /v1/jobs/{id}`: progress and result of a background scoring job.

use actix_web::{HttpResponse, ResponseError, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::ok_json;
use crate::scoring::jobs::{JobState, JobView};
use crate::state::AppState;

/// `GET /v1/jobs/{id}`.
pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = state
        .jobs
        .get(&id)
        .ok_or_else(|| ApiError::not_found("job_not_found", format!("no job `{id}`")))?;
    Ok(ok_json(job_json(&job.view())))
}

/// The JSON of a job: status, progress, and its result or error (with the status and
/// code the request would have got had it run inline).
pub fn job_json(v: &JobView) -> serde_json::Value {
    let (status, result, error) = match &v.state {
        JobState::Queued => ("queued", None, None),
        JobState::Running => ("running", None, None),
        JobState::Done(s) => ("done", Some(s.clone()), None),
        JobState::Failed(e) => {
            let api = ApiError::from(e.as_ref());
            let err = json!({ "code": api.code(), "message": api.to_string(), "status": api.status_code().as_u16() });
            ("failed", None, Some(err))
        }
    };
    json!({
        "id": v.id,
        "status": status,
        "done": v.done,
        "total": v.total,
        "age_seconds": v.age.as_secs_f64(),
        "result": result,
        "error": error,
    })
}
