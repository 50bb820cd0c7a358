//! The run folder, the one owner of its format:
//!
//! ```text
//! RUN/config.json            the TrainConfig (written first; a folder with it is a run)
//! RUN/metrics.jsonl          one line per --log-every iterations and per evaluation
//! RUN/samples/iter-*.png     fixed-z grids, and samples/latest.png
//! RUN/checkpoints/           ckpt-<iter>.safetensors + latest.json (written last)
//! RUN/sweep-args.json        the train flags a sweep started the run with (sweeps only)
//! RUN/train.log              the run's log when a sweep started it
//! ```
//!
//! Every write is atomic (temp file + rename). A run killed before its first checkpoint
//! is still a run: it resumes from iteration 0 with its saved config.

pub mod checkpoint;
pub mod metrics;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tch::Device;

pub use checkpoint::CheckpointMeta;
pub use metrics::{MetricsLine, MetricsLog, MetricsWriter};

use crate::config::TrainConfig;
use crate::model::Gan;

/// The configuration file.
pub const CONFIG_FILE: &str = "config.json";
/// The metrics file.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The sample-grid folder.
pub const SAMPLES_DIR: &str = "samples";
/// The checkpoint folder.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The train flags a sweep started the run with.
pub const SWEEP_ARGS_FILE: &str = "sweep-args.json";
/// The log of a run a sweep started.
pub const TRAIN_LOG_FILE: &str = "train.log";
/// The newest sample grid.
pub const LATEST_SAMPLES: &str = "latest.png";

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The run folder at `path` (nothing is read or written).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// True when `path` holds a run (its config.json).
    pub fn is_run(path: &Path) -> bool {
        path.join(CONFIG_FILE).is_file()
    }

    /// Creates a run folder for `cfg`; refuses a folder that already holds a run.
    pub fn create(path: &Path, cfg: &TrainConfig) -> Result<Self> {
        let dir = Self::at(path);
        Self::check_free(path)?;
        std::fs::create_dir_all(path).with_context(|| format!("creating run folder {}", path.display()))?;
        dir.write_config(cfg)?;
        Ok(dir)
    }

    /// Refuses a folder that holds a run, or a run's metrics without one (a fresh run
    /// would append to them); anything else (an empty or unrelated folder) is free.
    pub fn check_free(path: &Path) -> Result<()> {
        let dir = Self::at(path);
        if Self::is_run(path) || dir.checkpoints().join(checkpoint::LATEST_FILE).exists() {
            bail!(
                "{} already holds a run; continue it with `pagan-train resume {}` or pick another --out",
                path.display(),
                path.display()
            );
        }
        if path.join(METRICS_FILE).exists() {
            bail!(
                "{} holds a {METRICS_FILE} but no run (config.json): a fresh run would append to it; \
                 move it away or pick another --out",
                path.display()
            );
        }
        Ok(())
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads config.json.
    pub fn config(&self) -> Result<TrainConfig> {
        let p = self.path.join(CONFIG_FILE);
        let bytes = std::fs::read(&p)
            .with_context(|| format!("{} is not a run folder (no {CONFIG_FILE})", self.path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("corrupt {}", p.display()))
    }

    /// Writes config.json.
    pub fn write_config(&self, cfg: &TrainConfig) -> Result<()> {
        let p = self.path.join(CONFIG_FILE);
        let json = serde_json::to_vec_pretty(cfg)?;
        pagan_shared::fs::write_atomic(&p, &json).with_context(|| format!("writing {}", p.display()))
    }

    /// The metrics file.
    pub fn metrics(&self) -> MetricsLog {
        MetricsLog::at(self.path.join(METRICS_FILE))
    }

    /// The checkpoint folder.
    pub fn checkpoints(&self) -> PathBuf {
        self.path.join(CHECKPOINTS_DIR)
    }

    /// The sample-grid folder.
    pub fn samples(&self) -> PathBuf {
        self.path.join(SAMPLES_DIR)
    }

    /// Writes the fixed-z grid of iteration `iter` and `latest.png`.
    pub fn save_samples(&self, iter: u64, data: &[f32], shape: [usize; 4]) -> Result<()> {
        let dir = self.samples();
        pagan_shared::grid::save_grid(&dir.join(format!("iter-{iter:09}.png")), data, shape, 8)?;
        pagan_shared::grid::save_grid(&dir.join(LATEST_SAMPLES), data, shape, 8)?;
        Ok(())
    }

    /// Writes a checkpoint (weights first, then latest.json), keeping the newest two.
    pub fn save_checkpoint(&self, tensors: &[(String, tch::Tensor)], meta: &CheckpointMeta) -> Result<()> {
        checkpoint::save(&self.checkpoints(), tensors, meta, 2)
    }

    /// The newest checkpoint's meta, if there is one.
    pub fn latest_checkpoint(&self) -> Result<Option<CheckpointMeta>> {
        checkpoint::read_meta(&self.checkpoints())
    }

    /// The newest checkpoint (meta and tensors), if there is one.
    pub fn load_checkpoint(&self) -> Result<Option<checkpoint::Saved>> {
        checkpoint::load_latest(&self.checkpoints())
    }

    /// The networks at the newest checkpoint (for sampling, export and scoring).
    pub fn load_gan(&self, device: Device) -> Result<(TrainConfig, CheckpointMeta, Gan)> {
        let cfg = self.config()?;
        let Some((meta, saved)) = self.load_checkpoint()? else {
            bail!(
                "{} has no checkpoint yet (nothing trained to use); `pagan-train resume {}` continues it",
                self.path.display(),
                self.path.display()
            );
        };
        let gan = Gan::new(&cfg, device, meta.pa.level);
        checkpoint::restore(&gan.named(), &saved, "weights")?;
        Ok((cfg, meta, gan))
    }
}
