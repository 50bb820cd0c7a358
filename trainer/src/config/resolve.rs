//! Building a configuration: a preset's defaults with the caller's overrides applied, in
//! one place for the CLI, sweeps, benchmarks and tests.

use std::path::{Path, PathBuf};

use pagan_shared::ResizeMode;

use super::{
    AdamConfig, CondConfig, DCond, EvalConfig, GCond, GpKind, LossKind, PaMode, Preset, RegConfig,
    ScheduleSpec, TrainConfig, TricksConfig, defaults,
};
use crate::data::DatasetSpec;

/// What a caller changes from the preset's defaults; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainOverrides {
    /// Preset (default: paper).
    pub preset: Option<Preset>,
    /// Where PA enters D (default: input).
    pub pa: Option<PaMode>,
    /// D conv taking the bits with `feat`.
    pub pa_feat_layer: Option<usize>,
    /// Level at iteration 0 (default: 2 for CIFAR-10, else 0).
    pub start_level: Option<i64>,
    /// Bit channels (the level cap).
    pub max_level: Option<i64>,
    /// Fade-in length.
    pub fade_iters: Option<u64>,
    /// Level-up rule.
    pub schedule: Option<ScheduleSpec>,
    /// Reset G's Adam step counter at level-ups.
    pub reset_g_adam: Option<bool>,
    /// Total iterations.
    pub iters: Option<u64>,
    /// Batch size.
    pub batch: Option<i64>,
    /// Adam learning rate (G and D).
    pub lr: Option<f64>,
    /// Adam beta1.
    pub beta1: Option<f64>,
    /// Adam beta2.
    pub beta2: Option<f64>,
    /// Base seed.
    pub seed: Option<u64>,
    /// Only the first N training images.
    pub limit: Option<usize>,
    /// Iterations between metrics lines.
    pub log_every: Option<u64>,
    /// Iterations between sample grids.
    pub sample_every: Option<u64>,
    /// Iterations between checkpoints.
    pub checkpoint_every: Option<u64>,
    /// Wall minutes between time-based checkpoints.
    pub checkpoint_minutes: Option<f64>,
    /// Adversarial loss.
    pub loss: Option<LossKind>,
    /// Gradient penalty.
    pub gp: Option<GpKind>,
    /// Gradient-penalty weight.
    pub gp_weight: Option<f64>,
    /// D dropout probability.
    pub dropout: Option<f64>,
    /// D conv whose input gets the dropout.
    pub dropout_layer: Option<usize>,
    /// One-sided label smoothing.
    pub label_smoothing: Option<f64>,
    /// Iterations between evaluations.
    pub eval_every: Option<u64>,
    /// Images per evaluation.
    pub eval_samples: Option<usize>,
    /// FID reference statistics for evaluations.
    pub eval_fid_reference: Option<PathBuf>,
    /// Resize convention before Inception.
    pub resize_mode: Option<ResizeMode>,
    /// Also precision/recall/density/coverage at evaluations.
    pub eval_prdc: Option<bool>,
    /// Salimans et al.'s techniques.
    pub tricks: Option<TricksConfig>,
    /// Images per Inception call.
    pub eval_batch: Option<usize>,
    /// Class conditioning: G's input and D's head (the classes come from the dataset).
    pub cond: Option<(GCond, DCond)>,
}

impl TrainConfig {
    /// The configuration of a run on `dataset` (a dataset spec such as `fashion-mnist`;
    /// images of shape `image`, read from `data_dir`): the preset's defaults with `o`
    /// applied. Check it with [`Self::validate`].
    pub fn resolve(dataset: &str, image: [i64; 3], data_dir: &Path, o: &TrainOverrides) -> Self {
        let preset = o.preset.unwrap_or(Preset::Paper);
        let adam = AdamConfig {
            lr: o.lr.unwrap_or(defaults::LR),
            beta1: o.beta1.unwrap_or(defaults::BETA1),
            beta2: o.beta2.unwrap_or(defaults::BETA2),
            ..AdamConfig::default()
        };
        let reg = RegConfig::default();
        let eval = EvalConfig::default();
        let spec = dataset.parse::<DatasetSpec>().ok();
        let cifar = spec == Some(DatasetSpec::Cifar10);
        Self {
            dataset: dataset.to_owned(),
            data_dir: data_dir.display().to_string(),
            preset,
            arch: preset.arch(image),
            batch: o.batch.unwrap_or(defaults::BATCH),
            iters: o.iters.unwrap_or(preset.iters()),
            seed: o.seed.unwrap_or(0),
            adam_d: adam,
            adam_g: adam,
            pa: o.pa.unwrap_or(PaMode::Input),
            pa_feat_layer: o.pa_feat_layer.unwrap_or(defaults::PA_FEAT_LAYER),
            // The paper starts CIFAR-10 at level 2.
            start_level: o.start_level.unwrap_or(if cifar { 2 } else { 0 }),
            max_level: o.max_level.unwrap_or(defaults::MAX_LEVEL),
            fade_iters: o.fade_iters.unwrap_or(defaults::FADE_ITERS),
            schedule: o.schedule.clone().unwrap_or_else(|| preset.schedule()),
            reset_g_adam_on_level_up: o.reset_g_adam.unwrap_or(false),
            log_every: o.log_every.unwrap_or(defaults::LOG_EVERY),
            sample_every: o.sample_every.unwrap_or(preset.sample_every()),
            checkpoint_every: o.checkpoint_every.unwrap_or(preset.checkpoint_every()),
            checkpoint_minutes: o.checkpoint_minutes.unwrap_or(defaults::CHECKPOINT_MINUTES),
            eval: EvalConfig {
                every: o.eval_every.unwrap_or(preset.eval_every()),
                samples: o.eval_samples.unwrap_or(eval.samples),
                fid_reference: o.eval_fid_reference.as_ref().map(|p| p.display().to_string()),
                // Chosen per reference: the flag, else the convention the reference records.
                resize_mode: o
                    .resize_mode
                    .or_else(|| o.eval_fid_reference.as_deref().and_then(recorded_resize_mode))
                    .unwrap_or(eval.resize_mode),
                prdc: o.eval_prdc.unwrap_or(eval.prdc),
                batch: o.eval_batch.unwrap_or(eval.batch),
                weights: String::new(),
            },
            loss: o.loss.unwrap_or_default(),
            reg: RegConfig {
                gp: o.gp.unwrap_or(reg.gp),
                gp_weight: o.gp_weight.unwrap_or(reg.gp_weight),
                dropout: o.dropout.unwrap_or(reg.dropout),
                dropout_layer: o.dropout_layer.unwrap_or(reg.dropout_layer),
                label_smoothing: o.label_smoothing.unwrap_or(reg.label_smoothing),
            },
            tricks: o.tricks.unwrap_or_default(),
            cond: o.cond.map(|(g, d)| CondConfig {
                g,
                d,
                classes: spec
                    .as_ref()
                    .and_then(DatasetSpec::class_names)
                    .unwrap_or_default(),
            }),
            limit: o.limit,
        }
    }
}

/// The resize convention a statistics file records, if it is readable and records one
/// (an unreadable file is reported by `validate`).
fn recorded_resize_mode(path: &std::path::Path) -> Option<ResizeMode> {
    pagan_shared::npz::read_resize_mode_npz(path).ok()??.parse().ok()
}
