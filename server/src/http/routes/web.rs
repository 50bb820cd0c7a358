//! The web page for people: one HTML page, its script and style, embedded in the binary
//! (works offline, nothing to build), and the API documentation as text.

use actix_web::HttpResponse;
use actix_web::http::header;

const INDEX: &str = include_str!("../../../web/index.html");
const SCRIPT: &str = include_str!("../../../web/app.js");
const STYLE: &str = include_str!("../../../web/app.css");
const API_DOC: &str = include_str!("../../../API.md");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Same binary, same bytes: a browser may keep them, but must ask after a restart.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// `GET /`: the page (models, scoring, status).
pub async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /assets/app.js`.
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /assets/app.css`.
pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /docs/api.md`: server/API.md as served by this build.
pub async fn api_doc() -> HttpResponse {
    asset("text/markdown; charset=utf-8", API_DOC)
}
