//! Shared application state: configuration, registry, metrics and the job queue.

use std::time::Instant;

use crate::config::Config;
use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::runtime::RuntimeError;

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
    /// When the service started.
    pub started: Instant,
}

/// Errors building the state.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The provider choice is impossible in this build.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl AppState {
    /// Loads the registry for `config` (broken models are listed, not fatal).
    pub fn new(config: Config) -> Result<Self, StartError> {
        crate::runtime::check_provider_choice(config.provider)?;
        let metrics = Metrics::new()?;
        let registry = Registry::load(&config, &metrics);
        let jobs = Jobs::new(config.limits.job_queue, metrics.jobs_queue_depth.clone());
        Ok(AppState {
            config,
            registry,
            metrics,
            jobs,
            started: Instant::now(),
        })
    }
}
