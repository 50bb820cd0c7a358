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
    /// Images to generate (default 1; not with `interpolate`).
    #[serde(default, deserialize_with = "present")]
    pub n: Option<usize>,
    /// Latent seed (default 0; not with `interpolate`).
    #[serde(default, deserialize_with = "present")]
    pub seed: Option<u64>,
    /// A latent walk instead of seeded draws.
    #[serde(default, deserialize_with = "present")]
    pub interpolate: Option<Interpolate>,
    /// Output encoding (default png).
    #[serde(default)]
    pub format: Format,
}

/// An optional field that, when given, must hold a value: `null` is refused (absent is None).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A latent walk: `steps` latents from seed `from`'s latent to seed `to`'s, endpoints included.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interpolate {
    /// Seed of the first latent.
    pub from: u64,
    /// Seed of the last latent.
    pub to: u64,
    /// Latents on the way (at least 2).
    pub steps: usize,
}

/// What to generate, checked.
#[derive(Debug, Clone, Copy)]
enum Latents {
    /// `n` latents drawn from `seed`.
    Seeded { n: usize, seed: u64 },
    /// A walk.
    Walk(Interpolate),
}

impl Latents {
    fn n(self) -> usize {
        match self {
            Latents::Seeded { n, .. } => n,
            Latents::Walk(w) => w.steps,
        }
    }
}

/// Checks the request: `n` in 1..=max (or a walk of 2..=max steps, without `n` or `seed`)
/// and the format's own rule (png is one image).
fn check_request(req: &GenerateRequest, max_n: usize) -> Result<Latents, ApiError> {
    let latents = match req.interpolate {
        Some(_) if req.n.is_some() || req.seed.is_some() => {
            return Err(ApiError::bad(
                "bad_interpolate",
                "interpolate sets the latents itself: leave out n and seed",
            ));
        }
        Some(w) if w.steps < 2 => {
            return Err(ApiError::bad("bad_interpolate", "a walk has at least 2 steps"));
        }
        Some(w) => Latents::Walk(w),
        None => Latents::Seeded {
            n: req.n.unwrap_or(1),
            seed: req.seed.unwrap_or(0),
        },
    };
    let n = latents.n();
    if n == 0 {
        return Err(ApiError::bad("bad_n", "n must be at least 1"));
    }
    if n > max_n {
        return Err(ApiError::too_large(
            "n_too_large",
            format!("{n} images exceed the limit of {max_n} (--max-generate-n)"),
        ));
    }
    if req.format == Format::Png && n != 1 {
        return Err(ApiError::bad(
            "bad_n",
            "format png returns one image: use n = 1, or format grid, zip or npy",
        ));
    }
    Ok(latents)
}

async fn run(state: web::Data<AppState>, name: &str, req: GenerateRequest) -> Result<HttpResponse, ApiError> {
    let g = find_model(&state, name)?;
    let latents = check_request(&req, state.config.limits.max_generate_n)?;
    let provider = g.provider.as_str();
    let n = latents.n();
    let inline = runs_inline(g.per_image_seconds(), n);
    let st = state.clone();
    let work = move || {
        let batch = st.config.generate_batch;
        let (data, seed) = match latents {
            Latents::Seeded { n, seed } => (g.images(n, seed, batch, &st.metrics), seed),
            Latents::Walk(w) => {
                let z = pagan_shared::latent::walk(w.from, w.to, w.steps, g.manifest.latent.size);
                (g.generate(&z, w.steps, batch, &st.metrics), w.from)
            }
        };
        let data = data.map_err(|e| ApiError::internal(format!("model {}: {e}", g.name)))?;
        Ok(encode(&g, &data, n, seed, req.format)?)
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
        n: Some(q.n.unwrap_or(DEFAULT_GRID_N.min(state.config.limits.max_generate_n))),
        seed: Some(q.seed),
        interpolate: None,
        format: Format::Grid,
    };
    run(state, &name, req).await
}
