//! The application state handlers share: configuration, the model registry, metrics and
//! the scoring job queue. Building it is the service's start-up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use pagan_shared::fs::Orphans;
use tokio::sync::Semaphore;

use crate::config::{Config, ExposureError, FEATURE_CACHE_DIR};
use crate::metrics::Metrics;
use crate::models::registry::Registry;
use crate::models::runtime::{self, RuntimeError};
use crate::scoring::cache::FeatureCache;
use crate::scoring::jobs::Jobs;

/// Everything handlers share (behind `web::Data`, an `Arc`).
pub struct AppState {
    /// Configuration the service started with.
    pub config: Config,
    /// Loaded models, extractor and references.
    pub registry: Registry,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Background scoring jobs.
    pub jobs: Jobs,
    /// Inline scoring requests that decode and extract at once (one per extractor session
    /// by default): the extractor's sessions run one batch each at a time anyway, so more
    /// concurrent scorers only add memory (~25-30 MiB each; 32 clients reached 1.6 GB).
    pub scoring_slots: Arc<Semaphore>,
    /// Features of scored uploads, reused when the same pixels come again (None: off).
    pub feature_cache: Option<FeatureCache>,
    /// When the service started.
    pub started: Instant,
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The models folder does not exist.
    #[error(
        "models folder {0} does not exist: create it, or point --models (PAGAN_MODELS) at the folder \
         `pagan-train export` and `export-inception` write to"
    )]
    ModelsMissing(PathBuf),
    /// The models path is a file, not a folder.
    #[error(
        "--models {0} is a file; it must be the folder `pagan-train export` and `export-inception` write to"
    )]
    ModelsNotFolder(PathBuf),
    /// The address would be served without authentication.
    #[error(transparent)]
    Exposure(#[from] ExposureError),
    /// The provider choice is impossible in this build.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl AppState {
    /// Loads the registry for `config` (broken models are listed, not fatal; a missing
    /// models folder is).
    pub fn new(config: Config) -> Result<Self, StartError> {
        config.check_exposure()?;
        runtime::check_provider_choice(config.provider)?;
        if config.models.is_file() {
            return Err(StartError::ModelsNotFolder(config.models.clone()));
        }
        if !config.models.is_dir() {
            return Err(StartError::ModelsMissing(config.models.clone()));
        }
        // A server killed mid-upload leaves its temp files; they are never renamed into place.
        let leftovers = [
            (
                config.models.join(crate::models::registry::REFERENCES_DIR),
                Orphans::All,
            ),
            (std::env::temp_dir(), Orphans::UploadDirs),
        ];
        for (dir, which) in leftovers {
            for path in pagan_shared::fs::remove_orphaned_temps(&dir, which) {
                tracing::info!(path = %path.display(), "removed a temp file left by a stopped server");
            }
        }
        let metrics = Metrics::new()?;
        let registry = Registry::load(&config, &metrics);
        let jobs = Jobs::new(config.limits.job_queue, metrics.jobs_queue_depth.clone());
        let slots = match config.scoring_concurrency {
            0 => config.sessions,
            n => n,
        };
        let scoring_slots = Arc::new(Semaphore::new(slots.max(1)));
        let feature_cache = match config.feature_cache_bytes {
            0 => None,
            bytes => {
                let dir = config
                    .feature_cache_dir
                    .clone()
                    .unwrap_or_else(|| config.models.join(FEATURE_CACHE_DIR));
                // A cache that cannot be opened costs speed, not correctness.
                match FeatureCache::open(&dir, bytes, &metrics) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "feature cache disabled");
                        None
                    }
                }
            }
        };
        Ok(AppState {
            feature_cache,
            scoring_slots,
            config,
            registry,
            metrics,
            jobs,
            started: Instant::now(),
        })
    }
}
