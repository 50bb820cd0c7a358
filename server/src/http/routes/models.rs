//! Models: listing, details, generation and browser grids.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::{blocking, find_model, json, ok_json};
use crate::models::Generator;
use crate::models::classes::{self, ClassChoice, ClassRef};
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
        "classes": m.classes.as_ref().map(|c| &c.names),
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
    /// A class-conditional model's label of each image (length n; n defaults to it).
    #[serde(default, deserialize_with = "present")]
    pub labels: Option<Vec<i64>>,
    /// A class-conditional model's class for every image: a name or an integer label.
    #[serde(default, deserialize_with = "present")]
    pub class: Option<ClassRef>,
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
/// and the format's own rule (png is one image). `n` defaults to `fixed_n` (the length of
/// `labels`), else 1.
fn check_request(req: &GenerateRequest, fixed_n: Option<usize>, max_n: usize) -> Result<Latents, ApiError> {
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
            n: req.n.or(fixed_n).unwrap_or(1),
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

/// The class choice of a query's `labels` (comma-separated integers) and `class` (a class
/// name of `g`, else an integer label) parameters.
pub(crate) fn query_choice(
    g: &Generator,
    labels: Option<&str>,
    class: Option<&str>,
) -> Result<ClassChoice, ApiError> {
    let labels = labels.map(classes::parse_list).transpose()?;
    let class = class.map(|c| {
        let named = g.manifest.classes.as_ref().and_then(|s| s.label_of(c)).is_some();
        match c.trim().parse::<i64>() {
            Ok(label) if !named => ClassRef::Label(label),
            _ => ClassRef::Name(c.to_owned()),
        }
    });
    Ok(ClassChoice::from_parts(labels, class)?)
}

async fn run(
    state: web::Data<AppState>,
    g: Arc<Generator>,
    req: GenerateRequest,
    choice: ClassChoice,
) -> Result<HttpResponse, ApiError> {
    let latents = check_request(&req, choice.fixed_n(), state.config.limits.max_generate_n)?;
    let provider = g.provider.as_str();
    let n = latents.n();
    let labels = g.labels(&choice, n)?;
    let inline = runs_inline(g.per_image_seconds(), n);
    let st = state.clone();
    let work = move || {
        let batch = st.config.generate_batch;
        let labels = labels.as_deref();
        let (data, seed) = match latents {
            Latents::Seeded { n, seed } => (g.images(n, seed, labels, batch, &st.metrics), seed),
            Latents::Walk(w) => {
                let z = pagan_shared::latent::walk(w.from, w.to, w.steps, g.manifest.latent.size);
                (g.generate(&z, labels, w.steps, batch, &st.metrics), w.from)
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

/// `POST /v1/models/{name}/generate` with JSON `{n, seed, format, labels | class}`.
pub async fn generate(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let mut req: GenerateRequest = json::object(body.into_inner())?;
    let g = find_model(&state, &name)?;
    let choice = ClassChoice::from_parts(req.labels.take(), req.class.take())?;
    run(state, g, req, choice).await
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
    /// Labels of a class-conditional model, comma-separated (one per image; n defaults to their count).
    #[serde(default)]
    labels: Option<String>,
    /// A class-conditional model's class for every image: a class name, else an integer label.
    #[serde(default)]
    class: Option<String>,
}

/// Grid size when the query leaves it out (never over the server's limit).
pub const DEFAULT_GRID_N: usize = 64;

/// `GET /v1/models/{name}/grid.png?n=64&seed=7[&class=C | &labels=0,1,..]`: a PNG grid for browsers.
pub async fn grid(
    state: web::Data<AppState>,
    name: web::Path<String>,
    q: web::Query<GridQuery>,
) -> Result<HttpResponse, ApiError> {
    let g = find_model(&state, &name)?;
    let choice = query_choice(&g, q.labels.as_deref(), q.class.as_deref())?;
    let default_n = DEFAULT_GRID_N.min(state.config.limits.max_generate_n);
    let req = GenerateRequest {
        n: Some(q.n.or(choice.fixed_n()).unwrap_or(default_n)),
        seed: Some(q.seed),
        interpolate: None,
        format: Format::Grid,
        labels: None,
        class: None,
    };
    run(state, g, req, choice).await
}
