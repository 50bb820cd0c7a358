//! Scoring routes: uploaded image sets (`/v1/fid`) and served models (`/v1/models/{name}/fid`).
//! Small sets are scored in the request; sets above the job threshold (or `async=true`)
//! become background jobs answered with 202.

use std::sync::atomic::AtomicU64;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::http::error::ApiError;
use crate::http::routes::models::query_choice;
use crate::http::{blocking, extractor, find_model, find_reference, upload};
use crate::scoring::jobs::{JobOutput, Jobs, Task};
use pagan_shared::KidConfig;
use pagan_shared::prdc::PrdcConfig;
use pagan_shared::score::ScoreOptions;
use pagan_shared::uncertainty::{BootstrapConfig, FidInfinityConfig};

use crate::scoring::{ScoreError, Scorer, archive, check_reference};
use crate::state::AppState;

/// Query of `POST /v1/fid`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidQuery {
    /// Reference statistics to compare with.
    reference: String,
    /// Also compute KID (the reference must store features).
    #[serde(default)]
    kid: bool,
    /// Also precision/recall (k = 3) and density/coverage (k = 5) (the reference must store features).
    #[serde(default)]
    prdc: bool,
    /// Resamples of a bootstrap 95% interval of FID (0 = none; at most [`MAX_BOOTSTRAP`]).
    #[serde(default)]
    bootstrap: usize,
    /// Also FID-infinity (FID at several subset sizes, extrapolated in 1/N).
    #[serde(default)]
    fid_infinity: bool,
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
    /// Images to generate and score (default 1000, or --max-score-n if lower).
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
    /// Also compute KID.
    #[serde(default)]
    kid: bool,
    /// Also precision/recall (k = 3) and density/coverage (k = 5) (the reference must store features).
    #[serde(default)]
    prdc: bool,
    /// Resamples of a bootstrap 95% interval of FID (0 = none; at most [`MAX_BOOTSTRAP`]).
    #[serde(default)]
    bootstrap: usize,
    /// Also FID-infinity (FID at several subset sizes, extrapolated in 1/N).
    #[serde(default)]
    fid_infinity: bool,
    /// Always run as a background job.
    #[serde(default, rename = "async")]
    run_async: bool,
}

/// `n` when the query leaves it out (never over the server's limit).
pub const DEFAULT_SCORE_N: usize = 1000;
/// Most bootstrap resamples one request may ask for (each costs about one FID).
pub const MAX_BOOTSTRAP: usize = 200;

/// The score options of a query; the resampling seeds follow `seed`.
fn score_options(
    kid: bool,
    prdc: bool,
    bootstrap: usize,
    fid_infinity: bool,
    seed: u64,
) -> Result<ScoreOptions, ApiError> {
    if bootstrap == 1 || bootstrap > MAX_BOOTSTRAP {
        return Err(ApiError::bad(
            "bad_query",
            format!("bootstrap must be 0 (none) or 2..={MAX_BOOTSTRAP} resamples, got {bootstrap}"),
        ));
    }
    Ok(ScoreOptions {
        kid: kid.then(KidConfig::default),
        prdc: prdc.then(PrdcConfig::default),
        bootstrap: (bootstrap > 0).then(|| BootstrapConfig {
            resamples: bootstrap,
            seed,
            ..BootstrapConfig::default()
        }),
        fid_infinity: fid_infinity.then(|| FidInfinityConfig {
            seed,
            ..FidInfinityConfig::default()
        }),
    })
}

/// Runs `task` in the request (answered with `inline`, 200 or 201), or as a job when `n`
/// is over the threshold or asked for (202 with its address).
pub(crate) async fn dispatch(
    state: &web::Data<AppState>,
    n: usize,
    run_async: bool,
    task: Task,
    inline: StatusCode,
) -> Result<HttpResponse, ApiError> {
    if run_async || n > state.config.limits.job_threshold {
        let accepted = state.jobs.submit(n as u64, task)?;
        return Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, accepted.href.clone()))
            .json(accepted));
    }
    // Waiting for a slot holds no thread: only this request's future and its upload on disk.
    let slot = state
        .scoring_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("the scoring gate is closed"))?;
    let out: JobOutput = blocking(move || {
        let _slot = slot;
        Ok(task(&AtomicU64::new(0))?)
    })
    .await?;
    Ok(HttpResponse::build(inline).json(out))
}

/// `POST /v1/fid?reference=NAME[&kid=true][&prdc=true][&bootstrap=B][&fid_infinity=true]`: multipart PNG/JPEG files, a zip, a tar or an
/// `.npz` of uint8 images (multipart or raw body).
pub async fn fid(
    state: web::Data<AppState>,
    q: web::Query<FidQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let x = extractor(&state)?;
    let reference = find_reference(&state, &q.reference)?;
    let options = score_options(q.kid, q.prdc, q.bootstrap, q.fid_infinity, 0)?;
    check_reference(&reference, &options)?;
    // An async upload into a full queue would be refused after its whole body arrived.
    if q.run_async && state.jobs.looks_full() {
        return Err(Jobs::full_error().into());
    }
    let limits = state.config.limits.clone();
    let up = upload::receive(
        &req,
        payload,
        upload::BodyLimits::new(&limits, limits.max_body_bytes),
    )
    .await?;
    if up.parts.is_empty() {
        return Err(ApiError::unprocessable("empty_set", "the request holds no files"));
    }
    // Cheap pass first: counts and limits are checked before any decoding or inference.
    let lim = limits.clone();
    let (up, n) = blocking(move || {
        let n = archive::count(&up, &lim)?;
        Ok((up, n))
    })
    .await?;
    if n == 0 {
        return Err(ScoreError::EmptySet("upload").into());
    }
    if n < 2 {
        return Err(ScoreError::TooFewImages { n: n as u64 }.into());
    }
    let st = state.clone();
    let task: Task = Box::new(move |progress| {
        let scorer = Scorer {
            extractor: &x,
            reference: &reference,
            metrics: &st.metrics,
            batch: st.config.score_batch,
            options,
            progress,
            cache: st.feature_cache.as_ref(),
        };
        Ok(JobOutput::Score(Box::new(scorer.upload(&up, &limits)?)))
    });
    dispatch(&state, n, q.run_async, task, StatusCode::OK).await
}

/// `POST /v1/models/{name}/fid?reference=NAME&n=N&seed=S[&kid=true][&class=C | &labels=..]`:
/// generates `n` images in-process (quantised to 8 bits exactly like PNG output) and
/// scores them; a class-conditional model's labels cycle through its classes unless asked.
pub async fn model_fid(
    state: web::Data<AppState>,
    name: web::Path<String>,
    q: web::Query<ModelFidQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let g = find_model(&state, &name)?;
    let x = extractor(&state)?;
    let reference = find_reference(&state, &q.reference)?;
    let options = score_options(q.kid, q.prdc, q.bootstrap, q.fid_infinity, q.seed)?;
    check_reference(&reference, &options)?;
    let choice = query_choice(&g, q.labels.as_deref(), q.class.as_deref())?;
    let max = state.config.limits.max_score_n;
    let n = q.n.or(choice.fixed_n()).unwrap_or(DEFAULT_SCORE_N.min(max));
    if n < 2 {
        return Err(ScoreError::TooFewImages { n: n as u64 }.into());
    }
    if n > max {
        return Err(ApiError::too_large(
            "n_too_large",
            format!("n = {n} exceeds the limit of {max} (--max-score-n)"),
        ));
    }
    let labels = g.labels(&choice, n)?;
    let st = state.clone();
    let seed = q.seed;
    let task: Task = Box::new(move |progress| {
        let scorer = Scorer {
            extractor: &x,
            reference: &reference,
            metrics: &st.metrics,
            batch: st.config.score_batch,
            options,
            progress,
            // Generated sets are keyed by nothing cheaper than generating them: not cached.
            cache: None,
        };
        Ok(JobOutput::Score(Box::new(scorer.model(
            &g,
            n,
            seed,
            labels.as_deref(),
            st.config.generate_batch,
        )?)))
    });
    dispatch(&state, n, q.run_async, task, StatusCode::OK).await
}
