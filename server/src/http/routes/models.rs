//! Models: listing, details, generation and browser grids.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::{blocking, find_model, json, ok_json};
use crate::models::Generator;
use crate::models::encode::{Format, encode};
use crate::models::generator::runs_inline;
use crate::state::AppState;

fn summary(g: &Generator) -> serde_json::Value {
    let m = &g.manifest;
    json!({
        "name": g.name,
        "kind": m.kind,
        "dataset": m.dataset,
        "latent": m.latent,
        "image": m.image,
        "provider": g.provider.as_str(),
        "sha256": m.sha256,
        "links": {
            "self": format!("/v1/models/{}", g.name),
            "generate": format!("/v1/models/{}/generate", g.name),
            "grid": format!("/v1/models/{}/grid.png", g.name),
            "fid": format!("/v1/models/{}/fid", g.name),
        },
    })
}

/// `GET /v1/models`.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let models: Vec<_> = state.registry.generators.values().map(|g| summary(g)).collect();
    ok_json(json!({ "models": models, "failed": state.registry.failed }))
}

/// `GET /v1/models/{name}`: the summary plus the full manifest.
pub async fn get(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let g = find_model(&state, &name)?;
    let mut v = summary(&g);
    v["manifest"] = serde_json::to_value(&g.manifest).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok_json(v))
}

/// Body of a generate request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// Images to generate (default 1).
    #[serde(default = "one")]
    pub n: usize,
    /// Latent seed (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Output encoding (default png).
    #[serde(default)]
    pub format: Format,
}

fn one() -> usize {
    1
}

/// Checks `n` against 1..=max and the format's own rule (png is one image).
fn check_request(req: &GenerateRequest, max_n: usize) -> Result<(), ApiError> {
    if req.n == 0 {
        return Err(ApiError::bad("bad_n", "n must be at least 1"));
    }
    if req.n > max_n {
        return Err(ApiError::too_large(
            "n_too_large",
            format!("n = {} exceeds the limit of {max_n} (--max-generate-n)", req.n),
        ));
    }
    if req.format == Format::Png && req.n != 1 {
        return Err(ApiError::bad(
            "bad_n",
            "format png returns one image: use n = 1, or format grid, zip or npy",
        ));
    }
    Ok(())
}

async fn run(state: web::Data<AppState>, name: &str, req: GenerateRequest) -> Result<HttpResponse, ApiError> {
    let g = find_model(&state, name)?;
    check_request(&req, state.config.limits.max_generate_n)?;
    let provider = g.provider.as_str();
    let inline = runs_inline(g.per_image_seconds(), req.n);
    let st = state.clone();
    let work = move || {
        let data = g
            .images(req.n, req.seed, st.config.generate_batch, &st.metrics)
            .map_err(|e| ApiError::internal(format!("model {}: {e}", g.name)))?;
        Ok(encode(&g, &data, req.n, req.seed, req.format)?)
    };
    // Sub-millisecond work (one image of a small model) skips the blocking-pool round trip.
    let out = if inline { work()? } else { blocking(work).await? };
    Ok(HttpResponse::Ok()
        .content_type(out.content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", out.filename),
        ))
        .insert_header(("x-pagan-provider", provider))
        .body(out.bytes))
}

/// `POST /v1/models/{name}/generate` with JSON `{n, seed, format}`.
pub async fn generate(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    run(state, &name, json::object(body.into_inner())?).await
}

/// Query of `GET /v1/models/{name}/grid.png`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridQuery {
    /// Images in the grid (default 64, or --max-generate-n if lower).
    #[serde(default)]
    n: Option<usize>,
    /// Latent seed (default 0).
    #[serde(default)]
    seed: u64,
}

/// Grid size when the query leaves it out (never over the server's limit).
pub const DEFAULT_GRID_N: usize = 64;

/// `GET /v1/models/{name}/grid.png?n=64&seed=7`: a PNG grid for browsers.
pub async fn grid(
    state: web::Data<AppState>,
    name: web::Path<String>,
    q: web::Query<GridQuery>,
) -> Result<HttpResponse, ApiError> {
    let req = GenerateRequest {
        n: q.n
            .unwrap_or(DEFAULT_GRID_N.min(state.config.limits.max_generate_n)),
        seed: q.seed,
        format: Format::Grid,
    };
    run(state, &name, req).await
}
