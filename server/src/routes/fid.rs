//! Scoring routes: uploaded image sets (`/v1/fid`) and served models (`/v1/models/{name}/fid`).
//! Small sets are scored in the request; sets above the job threshold (or `async=true`)
//! become background jobs answered with 202.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{blocking, extractor, find_model, find_reference};
use crate::decode::{Image, walk};
use crate::errors::ApiError;
use crate::generate::image_u8;
use crate::jobs::Task;
use crate::scoring::{FeatureSink, Score, check_reference, compare};
use crate::state::AppState;
use crate::upload;

/// Query of `POST /v1/fid`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidQuery {
    /// Reference statistics to compare with.
    reference: String,
    /// Also compute KID (the reference must store features).
    #[serde(default)]
    kid: bool,
    /// Always run as a background job.
    #[serde(default, rename = "async")]
    run_async: bool,
}

/// Query of `POST /v1/models/{name}/fid`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFidQuery {
    /// Reference statistics to compare with.
    reference: String,
    /// Images to generate and score (default 1000).
    #[serde(default = "default_n")]
    n: usize,
    /// Latent seed (default 0).
    #[serde(default)]
    seed: u64,
    /// Also compute KID.
    #[serde(default)]
    kid: bool,
    /// Always run as a background job.
    #[serde(default, rename = "async")]
    run_async: bool,
}

fn default_n() -> usize {
    1000
}

/// Runs `task` in the request, or as a job when `n` is over the threshold or asked for.
async fn dispatch(state: &AppState, n: usize, run_async: bool, task: Task) -> Result<HttpResponse, ApiError> {
    if run_async || n > state.config.limits.job_threshold {
        let accepted = state.jobs.submit(n as u64, task)?;
        return Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, accepted.href.clone()))
            .json(accepted));
    }
    let score: Score = blocking(move || task(Arc::new(AtomicU64::new(0)))).await?;
    Ok(HttpResponse::Ok().json(score))
}

/// `POST /v1/fid?reference=NAME[&kid=true]`: multipart PNG/JPEG files, a zip, a tar or an
/// `.npz` of uint8 images (multipart or raw body).
pub async fn fid(
    state: web::Data<AppState>,
    q: web::Query<FidQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let q = q.into_inner();
    let x = extractor(&state)?;
    let reference = find_reference(&state, &q.reference)?;
    check_reference(&reference, &x, q.kid)?;
    let limits = state.config.limits.clone();
    let up = upload::receive(&req, payload, limits.max_body_bytes).await?;
    if up.parts.is_empty() {
        return Err(ApiError::unprocessable("empty_set", "the request holds no files"));
    }
    // Cheap pass first: counts and limits are checked before any decoding or inference.
    let lim = limits.clone();
    let (up, n) = blocking(move || {
        let n = walk(&up, &lim, false, &mut |_| Ok(()))?;
        Ok((up, n))
    })
    .await?;
    if n == 0 {
        return Err(ApiError::unprocessable("empty_set", "the upload holds no images"));
    }
    if n < 2 {
        return Err(ApiError::unprocessable(
            "too_few_images",
            format!("need at least 2 images to score, got {n}"),
        ));
    }
    let st = state.clone();
    let task: Task = Box::new(move |progress| {
        let mut sink = FeatureSink::new(&x, &st.metrics, st.config.score_batch, q.kid, Some(progress))?;
        walk(&up, &limits, true, &mut |img| sink.push(img))?;
        let (stats, features) = sink.finish()?;
        drop(up);
        compare(&stats, features.as_deref(), q.kid, &reference, &x, started)
    });
    dispatch(&state, n, q.run_async, task).await
}

/// `POST /v1/models/{name}/fid?reference=NAME&n=N&seed=S[&kid=true]`: generates `n`
/// images in-process (quantised to 8 bits exactly like PNG output) and scores them.
pub async fn model_fid(
    state: web::Data<AppState>,
    name: web::Path<String>,
    q: web::Query<ModelFidQuery>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let q = q.into_inner();
    let g = find_model(&state, &name)?;
    let x = extractor(&state)?;
    let reference = find_reference(&state, &q.reference)?;
    check_reference(&reference, &x, q.kid)?;
    if q.n < 2 {
        return Err(ApiError::unprocessable(
            "too_few_images",
            format!("need at least 2 images to score, got n = {}", q.n),
        ));
    }
    if q.n > state.config.limits.max_score_n {
        return Err(ApiError::too_large(
            "n_too_large",
            format!(
                "n = {} exceeds the limit of {} (--max-score-n)",
                q.n, state.config.limits.max_score_n
            ),
        ));
    }
    let st = state.clone();
    let (n, seed) = (q.n, q.seed);
    let task: Task = Box::new(move |progress| {
        let spec = g.manifest.image;
        let (c, h, w) = (spec.channels, spec.height, spec.width);
        let batch = st.config.generate_batch.max(1);
        let mut sink = FeatureSink::new(&x, &st.metrics, st.config.score_batch, q.kid, Some(progress))?;
        // Latents for all n at once (n x latent floats is small), images batch by batch.
        let z = pagan_shared::latent::uniform(seed, n, g.manifest.latent.size);
        for zc in z.chunks(batch * g.manifest.latent.size) {
            let b = zc.len() / g.manifest.latent.size;
            let data = g
                .generate(zc, b, batch, &st.metrics)
                .map_err(|e| ApiError::internal(format!("model {}: {e}", g.name)))?;
            st.metrics
                .images_generated
                .with_label_values(&[g.name.as_str()])
                .inc_by(b as u64);
            for i in 0..b {
                sink.push(Image {
                    width: w,
                    height: h,
                    channels: c,
                    pixels: image_u8(&data, i, c, h, w),
                })?;
            }
        }
        let (stats, features) = sink.finish()?;
        compare(&stats, features.as_deref(), q.kid, &reference, &x, started)
    });
    dispatch(&state, n, q.run_async, task).await
}
