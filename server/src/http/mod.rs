//! The HTTP layer: routes (`routes`), the mapping of domain errors to statuses and codes
//! (`error`), streaming uploads to disk (`upload`), the OpenAPI document (`openapi`) and
//! the request-metrics middleware, bearer tokens (`auth`). Every route is registered
//! through [`Routes`], which records it, so a test can hold the OpenAPI document to
//! exactly the routes served, and answers a known path's other methods with 405.

pub mod auth;
pub mod error;
mod json;
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
pub use auth::Access;
use error::{ApiError, extractor_error};
use routes::{fid, health, jobs, models, references, v2, web as page};

/// Collects the routes of each path, so that a path answers every method it does not
/// serve with 405 and an `Allow` header, and each path's access rule ([`Access`]) wraps
/// all of its methods.
pub struct Routes {
    paths: Vec<PathRoutes>,
}

/// One path, its access rule and its routes by method.
type PathRoutes = (&'static str, Access, Vec<(Method, actix_web::Route)>);

impl Routes {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, access: Access, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        // HEAD wherever GET is served (RFC 9110; load balancers probe with it): actix sends
        // the GET handler's headers without the body.
        let head =
            (method == Method::GET).then(|| (Method::HEAD, web::method(Method::HEAD).to(handler.clone())));
        let route = web::method(method.clone()).to(handler);
        let entry = match self.paths.iter().position(|(p, ..)| *p == path) {
            Some(i) => {
                assert_eq!(self.paths[i].1, access, "{path}: one access rule per path");
                i
            }
            None => {
                self.paths.push((path, access, Vec::new()));
                self.paths.len() - 1
            }
        };
        let routes = &mut self.paths[entry].2;
        routes.push((method, route));
        routes.extend(head);
    }

    /// Registers every collected path on `cfg`; returns (method, path, access) of each route.
    fn install(self, cfg: &mut web::ServiceConfig) -> Vec<(Method, &'static str, Access)> {
        let mut seen = Vec::new();
        for (path, access, routes) in self.paths {
            let allow = routes
                .iter()
                .map(|(m, _)| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut resource = web::resource(path);
            for (method, route) in routes {
                // HEAD is implied by GET in OpenAPI: not listed as a route of its own.
                if method != Method::HEAD {
                    seen.push((method, path, access));
                }
                resource = resource.route(route);
            }
            let resource = resource
                .default_service(web::to(move |req: actix_web::HttpRequest| {
                    let allow = allow.clone();
                    async move {
                        let e = ApiError::MethodNotAllowed {
                            message: format!(
                                "{} {} is not served; allowed: {allow}",
                                req.method(),
                                req.path()
                            ),
                            allow,
                        };
                        error::response_for(req.path(), &e)
                    }
                }))
                .wrap(actix_web::middleware::from_fn(move |req, next| {
                    auth::guard(access, req, next)
                }));
            cfg.service(resource);
        }
        seen
    }
}

/// Registers every route; returns (method, path, access) of each.
pub fn register(cfg: &mut web::ServiceConfig) -> Vec<(Method, &'static str, Access)> {
    use Access::{Open, Token};
    let mut r = Routes { paths: Vec::new() };
    r.add(Method::GET, "/", Open, page::index);
    r.add(Method::GET, "/assets/app.js", Open, page::script);
    r.add(Method::GET, "/assets/app.css", Open, page::style);
    r.add(Method::GET, "/docs/api.md", Open, page::api_doc);
    r.add(Method::GET, "/healthz", Open, health::healthz);
    r.add(Method::GET, "/readyz", Open, health::readyz);
    r.add(Method::GET, "/metrics", Open, health::metrics);
    r.add(Method::GET, "/openapi.json", Open, health::openapi);
    r.add(Method::GET, "/v1/models", Open, models::list);
    r.add(Method::GET, "/v1/models/{name}", Open, models::get);
    r.add(
        Method::POST,
        "/v1/models/{name}/generate",
        Token,
        models::generate,
    );
    r.add(Method::GET, "/v1/models/{name}/grid.png", Token, models::grid);
    r.add(Method::POST, "/v1/models/{name}/fid", Token, fid::model_fid);
    r.add(Method::GET, "/v1/references", Open, references::list);
    r.add(Method::POST, "/v1/references/{name}", Token, references::upload);
    r.add(Method::POST, "/v1/fid", Token, fid::fid);
    r.add(Method::GET, "/v1/jobs/{id}", Token, jobs::get);
    r.add(Method::GET, "/v2", Open, v2::server_metadata);
    r.add(Method::GET, "/v2/health/live", Open, v2::live);
    r.add(Method::GET, "/v2/health/ready", Open, v2::ready);
    r.add(Method::GET, "/v2/models/{name}", Open, v2::model_metadata);
    r.add(Method::GET, "/v2/models/{name}/ready", Open, v2::model_ready);
    r.add(Method::POST, "/v2/models/{name}/infer", Token, v2::infer);
    r.install(cfg)
}

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// The largest JSON request body (bytes): generation requests are small.
const JSON_LIMIT: usize = 64 << 10;

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
                .limit(JSON_LIMIT)
                .error_handler(|e, _| error::json_error(e, JSON_LIMIT)),
        )
        .app_data(
            web::QueryConfig::default().error_handler(|e, req| error::query_error(e, req.query_string())),
        )
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
    state.registry.generators.get(name).cloned().ok_or_else(|| {
        // A folder that failed to load says why (its reason is in /v1/models too).
        let why = state.registry.failed.iter().find(|f| f.name == name);
        let shown: String = name.chars().take(80).collect();
        let msg = match why {
            Some(f) => format!("model `{shown}` did not load: {}", f.error),
            None => format!("no model named `{shown}`"),
        };
        ApiError::not_found("model_not_found", msg)
    })
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
