//! Middleware: counts and times each request under its route pattern
//! (`/v1/models/{name}`), so metric cardinality stays bounded.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::metrics::UNMATCHED;
use crate::state::AppState;

/// Records `http_requests_total` and `http_request_duration_seconds`.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| UNMATCHED.to_owned());
        let status = res.status().as_u16().to_string();
        let m = &state.metrics;
        m.http_requests
            .with_label_values(&[route.as_str(), status.as_str()])
            .inc();
        m.http_duration
            .with_label_values(&[route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}
