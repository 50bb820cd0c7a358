//! Run configuration: architecture widths, optimiser settings and presets, saved as
//! `config.json` in every run directory so `resume` rebuilds exactly the same run.

use serde::{Deserialize, Serialize};

use crate::pa::PaMode;
use crate::schedule::ScheduleSpec;

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

/// Named sets of defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The paper's SN-DCGAN widths and optimiser settings.
    Paper,
    /// Narrow networks (G at 1/4, D at 1/8 of the paper's widths): recognisable
    /// Fashion-MNIST in minutes on a 2-core CPU. D is narrower because it runs on twice the
    /// images and dominates the step's cost.
    Demo,
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
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
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
    /// FID/KID evaluation during training (absent in configs of older runs: off).
    #[serde(default)]
    pub eval: EvalConfig,
    /// Adversarial loss family (absent in older configs: ns).
    #[serde(default)]
    pub loss: crate::loss::LossKind,
    /// D regularisers (absent in older configs: none).
    #[serde(default)]
    pub reg: crate::loss::RegConfig,
    /// Only the first N training images (`--limit`); a resume loads the same subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
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
    pub resize_mode: pagan_shared::ResizeMode,
    /// Images per Inception call.
    pub batch: usize,
    /// Inception weights file (empty: the setup's default).
    #[serde(default)]
    pub weights: String,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 0,
            samples: 10_000,
            fid_reference: None,
            resize_mode: pagan_shared::ResizeMode::Asymmetric,
            batch: 50,
            weights: String::new(),
        }
    }
}
