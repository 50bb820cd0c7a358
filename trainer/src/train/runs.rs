//! One run of a training process: its configuration and folder, its own randomness (data
//! order, fixed z), PA state and level-up rule, and metrics window.

use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

use super::GRID_N;
use super::window::Window;
use crate::config::TrainConfig;
use crate::objective::pa::PaState;
use crate::objective::schedule::{self, LevelSchedule, ScheduleInput};
use crate::rng::{self, EpochSampler, stream};
use crate::run_dir::RunDir;

/// A run's own state.
pub struct Run {
    /// Configuration (saved as config.json).
    pub cfg: TrainConfig,
    /// Run folder (`None` for an ephemeral run that writes nothing).
    pub dir: Option<RunDir>,
    /// PA level and history.
    pub pa: PaState,
    pub(super) schedule: Box<dyn LevelSchedule>,
    pub(super) sampler: EpochSampler,
    pub(super) fixed_z: Tensor,
    pub(super) window: Window,
    pub(super) train_seconds: f64,
}

impl Run {
    /// A run at iteration 0 over `n` training images.
    pub(super) fn new(cfg: TrainConfig, dir: Option<RunDir>, n: usize, device: Device) -> Self {
        rng::seed_torch(rng::derive_seed(cfg.seed, stream::FIXED_Z, 0));
        let fixed_z = Tensor::rand([GRID_N, cfg.arch.latent], (Kind::Float, device)) * 2.0 - 1.0;
        Self {
            pa: PaState::new(cfg.start_level, cfg.max_level, cfg.fade_iters),
            schedule: schedule::build(&cfg.schedule),
            sampler: EpochSampler::new(n, cfg.seed),
            fixed_z,
            window: Window::new(),
            train_seconds: 0.0,
            dir,
            cfg,
        }
    }

    /// The run folder, or an error for an ephemeral run.
    pub fn folder(&self) -> Result<&RunDir> {
        self.dir
            .as_ref()
            .context("this run has no folder (ephemeral): it cannot log or checkpoint")
    }

    /// Whether the level-up rule says "now" after iteration `iter` (with an evaluation's KID).
    pub(super) fn wants_level_up(&mut self, iter: u64, kid: Option<f64>) -> bool {
        let input = ScheduleInput {
            iter,
            level: self.pa.level,
            kid,
        };
        self.schedule.should_level_up(&input)
    }
}
