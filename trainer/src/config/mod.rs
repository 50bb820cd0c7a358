//! Run configuration, resolved in one place: a [`TrainConfig`] is built from a preset plus
//! [`TrainOverrides`] by [`TrainConfig::resolve`] and checked by [`TrainConfig::validate`];
//! the CLI, sweeps, benchmarks and tests all go through these two. It is saved as
//! `config.json` in every run folder, so `resume` rebuilds exactly the same run.

mod choices;
mod cond;
mod resolve;
mod validate;

use std::path::PathBuf;

use pagan_shared::ResizeMode;
use serde::{Deserialize, Serialize};

pub use choices::{Choice, GpKind, LossKind, PaMode, Preset, ScheduleSpec};
pub use cond::{CondConfig, DCond, EMBED_DIM, GCond};
pub use resolve::TrainOverrides;
pub use validate::{ConfigError, check_stackable};

/// Defaults that do not depend on the preset (the CLI shows them in `--help`).
pub mod defaults {
    /// Reals per step (as many fakes).
    pub const BATCH: i64 = 64;
    /// Adam learning rate of G and D.
    pub const LR: f64 = 2e-4;
    /// Adam beta1.
    pub const BETA1: f64 = 0.5;
    /// Adam beta2.
    pub const BETA2: f64 = 0.999;
    /// D conv whose input takes the bits with `--pa feat` (the N/8 map feeding the last 3x3 conv).
    pub const PA_FEAT_LAYER: usize = 6;
    /// Pre-allocated bit channels.
    pub const MAX_LEVEL: i64 = 7;
    /// Fade-in length t_r of a new bit.
    pub const FADE_ITERS: u64 = 5000;
    /// Iterations between metrics lines.
    pub const LOG_EVERY: u64 = 100;
    /// Wall minutes between time-based checkpoints.
    pub const CHECKPOINT_MINUTES: f64 = 10.0;
    /// Generated images per evaluation.
    pub const EVAL_SAMPLES: usize = 10_000;
    /// Images per Inception call during evaluations.
    pub const EVAL_BATCH: usize = 50;
    /// Gradient-penalty weight.
    pub const GP_WEIGHT: f64 = 10.0;
    /// D conv whose input gets the dropout (the N/4 map).
    pub const DROPOUT_LAYER: usize = 4;
}

/// Network sizes. The paper's widths are the default; the demo preset narrows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    /// Image channels, height, width.
    pub image: [i64; 3],
    /// Latent size (128 in the paper).
    pub latent: i64,
    /// Generator widths: after the linear layer and after each of the three deconvs.
    pub g_widths: [i64; 4],
    /// Discriminator conv widths, seven layers.
    pub d_widths: [i64; 7],
}

impl Arch {
    /// The paper's SN-DCGAN for an image of the given shape.
    pub fn paper(image: [i64; 3]) -> Self {
        Self {
            image,
            latent: 128,
            g_widths: [512, 256, 128, 64],
            d_widths: [64, 128, 128, 256, 256, 512, 512],
        }
    }

    /// The paper's layout with every width divided by `div` (at least 8 channels).
    pub fn narrowed(image: [i64; 3], div: i64) -> Self {
        let p = Self::paper(image);
        Self {
            g_widths: p.g_widths.map(|w| (w / div).max(8)),
            d_widths: p.d_widths.map(|w| (w / div).max(8)),
            ..p
        }
    }
}

impl Preset {
    /// Architecture for this preset and image shape.
    pub fn arch(self, image: [i64; 3]) -> Arch {
        match self {
            Preset::Paper => Arch::paper(image),
            Preset::Demo => {
                let (g, d) = (Arch::narrowed(image, 4), Arch::narrowed(image, 8));
                Arch {
                    d_widths: d.d_widths,
                    ..g
                }
            }
        }
    }

    /// Total iterations.
    pub fn iters(self) -> u64 {
        self.pick(2500, 100_000)
    }

    /// Level-up rule.
    pub fn schedule(self) -> ScheduleSpec {
        ScheduleSpec::Every(self.pick(1000, 10_000))
    }

    /// Iterations between sample grids.
    pub fn sample_every(self) -> u64 {
        self.pick(500, 1000)
    }

    /// Iterations between checkpoints.
    pub fn checkpoint_every(self) -> u64 {
        self.pick(500, 5000)
    }

    /// Iterations between FID/KID evaluations (the demo skips them: CPU Inception is slow).
    pub fn eval_every(self) -> u64 {
        self.pick(0, 10_000)
    }

    fn pick(self, demo: u64, paper: u64) -> u64 {
        match self {
            Preset::Demo => demo,
            Preset::Paper => paper,
        }
    }
}

/// Adam settings for one network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: defaults::LR,
            beta1: defaults::BETA1,
            beta2: defaults::BETA2,
            eps: 1e-8,
        }
    }
}

/// D regularisers of the paper's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegConfig {
    /// Gradient penalty kind.
    pub gp: GpKind,
    /// Its weight (lambda / gamma).
    pub gp_weight: f64,
    /// Dropout probability in D (0 = off).
    pub dropout: f64,
    /// D conv index whose input the dropout acts on (like --pa-feat-layer).
    pub dropout_layer: usize,
    /// One-sided label smoothing: D's TRUE targets become 1 - this (0 = off).
    pub label_smoothing: f64,
}

impl Default for RegConfig {
    fn default() -> Self {
        Self {
            gp: GpKind::None,
            gp_weight: defaults::GP_WEIGHT,
            dropout: 0.0,
            dropout_layer: defaults::DROPOUT_LAYER,
            label_smoothing: 0.0,
        }
    }
}

impl RegConfig {
    /// The penalty in use with `loss`: WGAN-GP implies the 1-centred one unless another
    /// was chosen.
    pub fn effective_gp(&self, loss: LossKind) -> GpKind {
        match (loss, self.gp) {
            (LossKind::WganGp, GpKind::None) => GpKind::OneCentred,
            (_, k) => k,
        }
    }
}

/// Evaluation during training: KID of generated vs training images (drives the `kid`
/// schedule) and, with a reference, FID vs the test statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Iterations between evaluations (0 = never).
    pub every: u64,
    /// Generated images per evaluation, and training images for KID.
    pub samples: usize,
    /// Statistics `.npz` to compute FID against (e.g. the test split's), if any.
    pub fid_reference: Option<String>,
    /// Resize convention before Inception.
    pub resize_mode: ResizeMode,
    /// Images per Inception call.
    pub batch: usize,
    /// Inception weights file (empty: the setup's default).
    #[serde(default)]
    pub weights: String,
    /// Also precision/recall (k = 3) and density/coverage (k = 5) of the generated images
    /// against the same training subset KID uses.
    #[serde(default)]
    pub prdc: bool,
}

/// Environment variable naming the FID Inception weights file.
pub const INCEPTION_WEIGHTS_ENV: &str = "PAGAN_INCEPTION_WEIGHTS";

/// The default FID Inception weights: `$PAGAN_INCEPTION_WEIGHTS`, else the setup's file
/// (baked in at build time), else `weights/…` relative to the working directory.
pub fn default_inception_weights() -> PathBuf {
    pagan_shared::install_paths::configured_path(
        INCEPTION_WEIGHTS_ENV,
        option_env!("PAGAN_INCEPTION_WEIGHTS_DEFAULT"),
    )
    .unwrap_or_else(|| PathBuf::from("weights/pt_inception-2015-12-05.torchscript.pt"))
}

impl EvalConfig {
    /// The Inception weights file these evaluations load (the default when none is named).
    pub fn weights_path(&self) -> PathBuf {
        if self.weights.is_empty() {
            default_inception_weights()
        } else {
            PathBuf::from(&self.weights)
        }
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 0,
            samples: defaults::EVAL_SAMPLES,
            fid_reference: None,
            resize_mode: ResizeMode::Asymmetric,
            batch: defaults::EVAL_BATCH,
            weights: String::new(),
            prdc: false,
        }
    }
}

/// Salimans et al. (2016)'s techniques, each off by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TricksConfig {
    /// Feature-matching weight (0 = off): G also minimises `||E f(real) - E f(fake)||²`
    /// of D's features at `fm_layer`.
    pub feature_matching: f64,
    /// D conv (0..=6) whose output features are matched.
    pub fm_layer: usize,
    /// Weight of the adversarial G loss kept beside feature matching (1 = all of it,
    /// 0 = feature matching alone, as Salimans et al. trained).
    pub fm_adversarial: f64,
    /// Historical-averaging weight on G's parameters (0 = off).
    pub hist_avg_g: f64,
    /// Historical-averaging weight on D's parameters (0 = off).
    pub hist_avg_d: f64,
    /// A minibatch standard-deviation feature into D's final linear layer.
    pub minibatch_std: bool,
}

impl Default for TricksConfig {
    fn default() -> Self {
        Self {
            feature_matching: 0.0,
            fm_layer: 6,
            fm_adversarial: 1.0,
            hist_avg_g: 0.0,
            hist_avg_d: 0.0,
            minibatch_std: false,
        }
    }
}

impl TricksConfig {
    /// True when any technique is on.
    pub fn any(&self) -> bool {
        self.feature_matching > 0.0 || self.hist_avg_g > 0.0 || self.hist_avg_d > 0.0 || self.minibatch_std
    }
}

fn default_checkpoint_minutes() -> f64 {
    defaults::CHECKPOINT_MINUTES
}

/// Everything that defines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Dataset spec as given on the command line (e.g. `fashion-mnist`, `folder:/x`).
    pub dataset: String,
    /// Data folder the dataset was read from.
    pub data_dir: String,
    /// Preset the run started from.
    pub preset: Preset,
    /// Network sizes.
    pub arch: Arch,
    /// Batch size (reals per step; the same number of fakes).
    pub batch: i64,
    /// Total iterations (one D step and one G step each).
    pub iters: u64,
    /// Base seed; per-iteration randomness derives from (seed, iteration).
    pub seed: u64,
    /// Discriminator optimiser.
    pub adam_d: AdamConfig,
    /// Generator optimiser.
    pub adam_g: AdamConfig,
    /// Where progressive augmentation enters D.
    pub pa: PaMode,
    /// D conv layer (0..=6) whose input receives the bits in `feat` mode.
    pub pa_feat_layer: usize,
    /// Level at iteration 0.
    pub start_level: i64,
    /// Pre-allocated bit channels (the level cap).
    pub max_level: i64,
    /// Fade-in length t_r of a new bit, in iterations.
    pub fade_iters: u64,
    /// When to level up.
    pub schedule: ScheduleSpec,
    /// Reset G's Adam step counter at a level-up (ICLR text; off in the authors' runs).
    pub reset_g_adam_on_level_up: bool,
    /// Iterations between metrics lines.
    pub log_every: u64,
    /// Iterations between sample grids.
    pub sample_every: u64,
    /// Iterations between checkpoints.
    pub checkpoint_every: u64,
    /// Wall minutes after which a checkpoint is also written, at the next metrics line
    /// (absent in configs of older runs: the default).
    #[serde(default = "default_checkpoint_minutes")]
    pub checkpoint_minutes: f64,
    /// FID/KID evaluation during training (absent in configs of older runs: off).
    #[serde(default)]
    pub eval: EvalConfig,
    /// Adversarial loss family (absent in older configs: ns).
    #[serde(default)]
    pub loss: LossKind,
    /// D regularisers (absent in older configs: none).
    #[serde(default)]
    pub reg: RegConfig,
    /// Salimans et al.'s techniques (absent in older configs: none).
    #[serde(default)]
    pub tricks: TricksConfig,
    /// Class conditioning (absent: an unconditional GAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cond: Option<CondConfig>,
    /// Only the first N training images (`--limit`); a resume loads the same subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fm(o: &TrainOverrides) -> TrainConfig {
        TrainConfig::resolve("fashion-mnist", [1, 28, 28], Path::new("data"), o)
    }

    #[test]
    fn presets_resolve_their_defaults() {
        let paper = fm(&TrainOverrides::default());
        assert_eq!(
            (paper.iters, paper.eval.every, paper.checkpoint_every),
            (100_000, 10_000, 5000)
        );
        assert_eq!(paper.schedule, ScheduleSpec::Every(10_000));
        assert_eq!(paper.arch, Arch::paper([1, 28, 28]));
        let demo = fm(&TrainOverrides {
            preset: Some(Preset::Demo),
            iters: Some(7),
            ..Default::default()
        });
        assert_eq!((demo.iters, demo.eval.every, demo.sample_every), (7, 0, 500));
        assert_eq!(demo.arch.g_widths, [128, 64, 32, 16]);
        assert_eq!(demo.arch.d_widths, [8, 16, 16, 32, 32, 64, 64]);
        let cifar = TrainConfig::resolve("cifar10", [3, 32, 32], Path::new("d"), &TrainOverrides::default());
        assert_eq!(cifar.start_level, 2, "the paper starts CIFAR-10 at level 2");
        // The paper preset evaluates, so its weights must exist: any existing file passes
        // the check (its content is read at the first evaluation).
        let mut paper = paper;
        paper.eval.weights = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into();
        assert!(paper.validate().is_ok() && demo.validate().is_ok());
    }

    #[test]
    fn combinations_that_cannot_work_are_refused() {
        let cases: [(TrainOverrides, &str); 7] = [
            (
                TrainOverrides {
                    schedule: Some(ScheduleSpec::Kid),
                    preset: Some(Preset::Demo),
                    ..Default::default()
                },
                "--eval-every",
            ),
            (
                TrainOverrides {
                    loss: Some(LossKind::Hinge),
                    label_smoothing: Some(0.1),
                    ..Default::default()
                },
                "--label-smoothing",
            ),
            (
                TrainOverrides {
                    batch: Some(0),
                    ..Default::default()
                },
                "--batch",
            ),
            (
                TrainOverrides {
                    start_level: Some(9),
                    ..Default::default()
                },
                "--start-level",
            ),
            (
                TrainOverrides {
                    dropout: Some(1.0),
                    ..Default::default()
                },
                "--d-dropout",
            ),
            (
                TrainOverrides {
                    checkpoint_minutes: Some(0.0),
                    ..Default::default()
                },
                "--checkpoint-minutes",
            ),
            (
                TrainOverrides {
                    eval_fid_reference: Some("/no/such/ref.npz".into()),
                    ..Default::default()
                },
                "ref.npz",
            ),
        ];
        for (o, flag) in cases {
            let err = fm(&o).validate().err().map(|e| e.0).unwrap_or_default();
            assert!(err.contains(flag), "{o:?}: {err:?}");
        }
    }

    #[test]
    fn a_run_that_evaluates_needs_the_inception_weights_before_it_starts() {
        let mut c = fm(&TrainOverrides::default());
        assert!(c.eval.every > 0, "the paper preset evaluates");
        c.eval.weights = "/no/such/inception.pt".into();
        let err = c.validate().err().map(|e| e.0).unwrap_or_default();
        assert!(
            err.contains("/no/such/inception.pt") && err.contains("--eval-every 0"),
            "{err}"
        );
        // Without evaluations the weights are never read, so none are needed.
        c.eval.every = 0;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn old_configs_load_with_defaults_for_new_fields() {
        let mut v = serde_json::to_value(fm(&TrainOverrides::default())).expect("json");
        let obj = v.as_object_mut().expect("object");
        for k in ["checkpoint_minutes", "eval", "loss", "reg", "limit"] {
            obj.remove(k);
        }
        let back: TrainConfig = serde_json::from_value(v).expect("old config");
        assert_eq!(back.checkpoint_minutes, defaults::CHECKPOINT_MINUTES);
        assert_eq!(back.eval.every, 0);
        assert_eq!(back.loss, LossKind::Ns);
    }
}
