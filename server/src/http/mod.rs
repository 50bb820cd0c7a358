//! The HTTP layer: routes (`routes`), the mapping of domain errors to statuses and codes
//! (`error`), streaming uploads to disk (`upload`), the OpenAPI document (`openapi`) and
//! the request-metrics middleware. Every route is registered through [`Routes`], which
//! records it, so a test can hold the OpenAPI document to exactly the routes served.

pub mod error;
mod middleware;
pub mod openapi;
mod routes;
pub mod upload;

use std::sync::Arc;

use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{App, Error, FromRequest, Handler, HttpResponse, Responder, web};

use crate::models::{Extractor, Generator, Reference};
use crate::state::AppState;
use error::{ApiError, extractor_error};
use routes::{fid, health, jobs, models, references};

/// Registers routes on a `ServiceConfig` and remembers (method, path) of each.
pub struct Routes<'a> {
    cfg: &'a mut web::ServiceConfig,
    /// Routes registered so far.
    pub seen: Vec<(Method, &'static str)>,
}

impl Routes<'_> {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.cfg.route(path, web::method(method.clone()).to(handler));
        self.seen.push((method, path));
    }
}

/// Registers every route; returns what was registered.
pub fn register(cfg: &mut web::ServiceConfig) -> Vec<(Method, &'static str)> {
    let mut r = Routes {
        cfg,
        seen: Vec::new(),
    };
    r.add(Method::GET, "/healthz", health::healthz);
    r.add(Method::GET, "/readyz", health::readyz);
    r.add(Method::GET, "/metrics", health::metrics);
    r.add(Method::GET, "/openapi.json", health::openapi);
    r.add(Method::GET, "/v1/models", models::list);
    r.add(Method::GET, "/v1/models/{name}", models::get);
    r.add(Method::POST, "/v1/models/{name}/generate", models::generate);
    r.add(Method::GET, "/v1/models/{name}/grid.png", models::grid);
    r.add(Method::POST, "/v1/models/{name}/fid", fid::model_fid);
    r.add(Method::GET, "/v1/references", references::list);
    r.add(Method::POST, "/v1/references/{name}", references::upload);
    r.add(Method::POST, "/v1/fid", fid::fid);
    r.add(Method::GET, "/v1/jobs/{id}", jobs::get);
    r.seen
}

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// The application: routes, JSON errors for extractor failures and unknown routes, metrics.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(64 << 10)
                .error_handler(|e, _| extractor_error(e, "bad_json")),
        )
        .app_data(web::QueryConfig::default().error_handler(|e, _| extractor_error(e, "bad_query")))
        .app_data(web::PathConfig::default().error_handler(|e, _| extractor_error(e, "bad_path")))
        .configure(|cfg| {
            register(cfg);
        })
        .default_service(web::to(not_found))
        .wrap(actix_web::middleware::from_fn(middleware::track))
}

/// A JSON 200 response.
fn ok_json(v: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok().json(v)
}

/// Runs blocking work (ONNX Runtime, decoding) on actix's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|_| ApiError::internal("a worker thread failed"))?
}

/// The reference `name`, or 404.
fn find_reference(state: &AppState, name: &str) -> Result<Arc<Reference>, ApiError> {
    state.registry.reference(name).ok_or_else(|| {
        ApiError::not_found(
            "reference_not_found",
            format!("no reference statistics named `{name}`"),
        )
    })
}

/// The generator `name`, or 404.
fn find_model(state: &AppState, name: &str) -> Result<Arc<Generator>, ApiError> {
    state
        .registry
        .generators
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("model_not_found", format!("no model named `{name}`")))
}

/// The feature extractor, or 503 when `models/inception` is not loaded.
fn extractor(state: &AppState) -> Result<Arc<Extractor>, ApiError> {
    state.registry.extractor.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "no feature extractor loaded (models/inception); export one with `pagan-train export-inception`"
                .into(),
        )
    })
}
