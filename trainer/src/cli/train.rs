//! `pagan-train train`: flags -> `TrainOverrides` -> the one resolved and
//! validated `TrainConfig` -> `Trainer`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, FromArgMatches};
use pagan_trainer::config::{
    GpKind, LossKind, PaMode, Preset, ScheduleSpec, TrainConfig, TrainOverrides, check_stackable, defaults,
};
use pagan_trainer::data::{self, DatasetSpec, Split};
use pagan_trainer::device;
use pagan_trainer::experiments::sweep::Plan;
use pagan_trainer::run_dir::RunDir;
use pagan_trainer::train::{RunOptions, Trainer};

use super::cond::CondArgs;
use super::tricks::TricksArgs;
use super::{Common, StepArgs, choice, usage};

#[derive(Args)]
pub struct TrainArgs {
    /// Dataset: mnist, fashion-mnist, cifar10, celeba or folder:PATH.
    #[arg(long)]
    dataset: String,
    /// Network widths and preset defaults.
    #[arg(long, default_value = "paper", value_parser = choice::<Preset>())]
    preset: Preset,
    /// Where progressive augmentation enters D.
    #[arg(long, default_value = "input", value_parser = choice::<PaMode>())]
    pa: PaMode,
    /// D conv layer (1-6) whose input gets the bits with --pa feat; 6 = the N/8 map feeding the last 3x3 conv.
    #[arg(long, default_value_t = defaults::PA_FEAT_LAYER)]
    pa_feat_layer: usize,
    /// PA level at iteration 0 (the paper recommends 2 for CIFAR-10). Default: 2 for cifar10, else 0.
    #[arg(long)]
    start_level: Option<i64>,
    /// Pre-allocated bit channels = the highest level PA can reach (1-32).
    #[arg(long, default_value_t = defaults::MAX_LEVEL)]
    max_level: i64,
    /// Iterations over which a new bit fades in (t_r; 0 = no fade-in, as in the official code).
    #[arg(long, default_value_t = defaults::FADE_ITERS)]
    fade_iters: u64,
    /// Level-up rule: kid (the paper's KID rule, at each evaluation), never, every:N or at:I1,I2,...
    /// Default: every:10000 (demo: every:1000).
    #[arg(long)]
    pa_schedule: Option<ScheduleSpec>,
    /// Reset the step counter of G's Adam at each level-up (ICLR text; the authors did not use it).
    #[arg(long)]
    reset_g_adam: bool,
    /// Total iterations (one D step + one G step each). Default: 100000 (demo: 2500).
    #[arg(long)]
    iters: Option<u64>,
    /// Batch size (reals; as many fakes).
    #[arg(long, default_value_t = defaults::BATCH)]
    batch: i64,
    /// Adam learning rate for G and D.
    #[arg(long, default_value_t = defaults::LR)]
    lr: f64,
    /// Adam beta1.
    #[arg(long, default_value_t = defaults::BETA1)]
    beta1: f64,
    /// Adam beta2.
    #[arg(long, default_value_t = defaults::BETA2)]
    beta2: f64,
    /// Seed for initialisation, data order, z and bits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Several seeds trained as one stack (one set of kernels; on a GPU much faster than one
    /// run after another): runs OUT-s<seed>, each an ordinary run folder.
    #[arg(long, value_delimiter = ',', conflicts_with = "seed")]
    seeds: Vec<u64>,
    /// Run folder to create (with --seeds: the prefix of the run folders).
    #[arg(long)]
    out: PathBuf,
    /// Data folder (default: $PAGAN_DATA, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use only the first N training images (quick experiments, tests).
    #[arg(long)]
    limit: Option<usize>,
    /// Iterations between metrics lines.
    #[arg(long, default_value_t = defaults::LOG_EVERY)]
    log_every: u64,
    /// Iterations between sample grids (samples/iter-*.png). Default: 1000 (demo: 500).
    #[arg(long)]
    sample_every: Option<u64>,
    /// Iterations between checkpoints. Default: 5000 (demo: 500).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Also checkpoint at the first metrics line after this many wall minutes since the last
    /// checkpoint, so a kill loses a bounded amount of work.
    #[arg(long, default_value_t = defaults::CHECKPOINT_MINUTES)]
    checkpoint_minutes: f64,
    /// Adversarial loss.
    #[arg(long, default_value = "ns", value_parser = choice::<LossKind>())]
    loss: LossKind,
    /// Gradient penalty on D (wgan-gp implies one-centred).
    #[arg(long, default_value = "none", value_parser = choice::<GpKind>())]
    gp: GpKind,
    /// Weight of the gradient penalty.
    #[arg(long, default_value_t = defaults::GP_WEIGHT)]
    gp_weight: f64,
    /// Dropout probability in D (0 = off), at the input of conv --d-dropout-layer.
    #[arg(long, default_value_t = 0.0)]
    d_dropout: f64,
    /// D conv index (0-6) whose input gets the dropout; 4 = the N/4 feature map.
    #[arg(long, default_value_t = defaults::DROPOUT_LAYER)]
    d_dropout_layer: usize,
    /// One-sided label smoothing: D's TRUE targets become 1 - this (ns and lsgan only).
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Iterations between FID/KID evaluations (0 = none). Default: 10000 (demo: 0).
    #[arg(long)]
    eval_every: Option<u64>,
    /// Generated images per evaluation (and training images KID compares with).
    #[arg(long, default_value_t = defaults::EVAL_SAMPLES)]
    eval_samples: usize,
    /// Statistics .npz to report FID against at each evaluation (e.g. models/references/fashion-mnist-test.npz).
    #[arg(long)]
    eval_fid_reference: Option<PathBuf>,
    /// Resize convention before Inception: asymmetric (TF1, the paper's), half_pixel (pytorch-fid) or
    /// clean (clean-fid). Default: the one --eval-fid-reference records, else asymmetric.
    #[arg(long)]
    resize_mode: Option<pagan_shared::ResizeMode>,
    /// Also report precision/recall (k = 3) and density/coverage (k = 5) at each evaluation, against the
    /// same training images KID uses (off by default: it costs a k-NN search over both sets).
    #[arg(long)]
    eval_prdc: bool,
    #[command(flatten)]
    tricks: TricksArgs,
    #[command(flatten)]
    cond: CondArgs,
    /// Images per Inception call during evaluations (1-4096).
    #[arg(long, default_value_t = defaults::EVAL_BATCH)]
    eval_batch: usize,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    step: StepArgs,
}

impl TrainArgs {
    fn overrides(&self) -> TrainOverrides {
        TrainOverrides {
            preset: Some(self.preset),
            pa: Some(self.pa),
            pa_feat_layer: Some(self.pa_feat_layer),
            start_level: self.start_level,
            max_level: Some(self.max_level),
            fade_iters: Some(self.fade_iters),
            schedule: self.pa_schedule.clone(),
            reset_g_adam: Some(self.reset_g_adam),
            iters: self.iters,
            batch: Some(self.batch),
            lr: Some(self.lr),
            beta1: Some(self.beta1),
            beta2: Some(self.beta2),
            seed: Some(self.seed),
            limit: self.limit,
            log_every: Some(self.log_every),
            sample_every: self.sample_every,
            checkpoint_every: self.checkpoint_every,
            checkpoint_minutes: Some(self.checkpoint_minutes),
            loss: Some(self.loss),
            gp: Some(self.gp),
            gp_weight: Some(self.gp_weight),
            dropout: Some(self.d_dropout),
            dropout_layer: Some(self.d_dropout_layer),
            label_smoothing: Some(self.label_smoothing),
            eval_every: self.eval_every,
            eval_samples: Some(self.eval_samples),
            eval_fid_reference: self.eval_fid_reference.clone(),
            resize_mode: self.resize_mode,
            eval_prdc: Some(self.eval_prdc),
            tricks: Some(self.tricks.config()),
            eval_batch: Some(self.eval_batch),
            cond: self.cond.config(),
        }
    }

    /// The dataset, data folder and configuration these flags ask for, checked before any
    /// data is loaded (the image shape of a folder dataset is a placeholder until then).
    fn config(&self) -> Result<(DatasetSpec, PathBuf, TrainConfig)> {
        self.config_with(&self.overrides())
    }

    fn config_with(&self, o: &TrainOverrides) -> Result<(DatasetSpec, PathBuf, TrainConfig)> {
        let spec: DatasetSpec = self.dataset.parse()?;
        let data_dir = data::resolve_data_dir(self.data_dir.as_deref());
        let image = spec.image_shape().unwrap_or([3, 64, 64]).map(|v| v as i64);
        let cfg = TrainConfig::resolve(&spec.to_string(), image, &data_dir, o);
        cfg.validate()?;
        Ok((spec, data_dir, cfg))
    }

    /// The runs these flags start: one, or one per `--seeds` entry in `OUT-s<seed>`.
    fn runs(&self) -> Result<Vec<(TrainOverrides, PathBuf)>> {
        if self.seeds.is_empty() {
            return Ok(vec![(self.overrides(), self.out.clone())]);
        }
        if self.seeds.iter().collect::<BTreeSet<_>>().len() != self.seeds.len() {
            return Err(usage(format!("--seeds {:?} repeats a seed", self.seeds)));
        }
        let name = self
            .out
            .file_name()
            .ok_or_else(|| {
                usage(format!(
                    "--out {}: needs a folder name to add -s<seed> to",
                    self.out.display()
                ))
            })?
            .to_string_lossy()
            .into_owned();
        Ok(self
            .seeds
            .iter()
            .map(|&seed| {
                let o = TrainOverrides {
                    seed: Some(seed),
                    ..self.overrides()
                };
                (o, self.out.with_file_name(format!("{name}-s{seed}")))
            })
            .collect())
    }
}

/// The flags `pagan-train train` knows (without the leading `--`).
pub fn train_flags() -> BTreeSet<String> {
    TrainArgs::augment_args(clap::Command::new("train"))
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect()
}

/// Parses `pagan-train train` arguments as the command would.
fn parse_train_args(args: &[String]) -> Result<TrainArgs> {
    let cmd = TrainArgs::augment_args(clap::Command::new("train"));
    let full = std::iter::once("train".to_string()).chain(args.iter().cloned());
    let m = cmd.try_get_matches_from(full).map_err(|e| {
        let msg = e.render().to_string();
        usage(msg.trim_start_matches("error: ").trim_end())
    })?;
    TrainArgs::from_arg_matches(&m).map_err(usage)
}

/// Parses `pagan-train train` arguments as the command would and returns the
/// configuration they resolve to (for sweeps, which check every run before starting any).
pub fn check_train_args(args: &[String]) -> Result<TrainConfig> {
    Ok(parse_train_args(args)?.config()?.2)
}

pub(super) fn load_data(
    spec: &DatasetSpec,
    data_dir: &Path,
    limit: Option<usize>,
    dev: tch::Device,
) -> Result<data::ImageSet> {
    let set = data::load(spec, Split::Train, data_dir, limit)?;
    tracing::info!(dataset = %spec, images = set.n, source = %set.source, device = %device::describe(dev), "data loaded");
    Ok(set)
}

/// `pagan-train train`.
pub fn train(a: TrainArgs) -> Result<()> {
    let runs = a.runs()?.into_iter().map(|(o, out)| (&a, o, out)).collect();
    start(runs, a.common.quiet)
}

/// Starts fresh runs (flags, their overrides, run folder) as one stack; every run is
/// checked, and the set checked stackable, before any data is loaded.
fn start(runs: Vec<(&TrainArgs, TrainOverrides, PathBuf)>, quiet: bool) -> Result<()> {
    let mut checked = Vec::new();
    for (a, o, _) in &runs {
        checked.push(a.config_with(o)?);
    }
    let cfgs: Vec<TrainConfig> = checked.iter().map(|c| c.2.clone()).collect();
    check_stackable(&cfgs)?;
    let ((spec, data_dir, _), (first, ..)) = (&checked[0], &runs[0]);
    // Every folder is checked before any is created (or data read): a retry can start.
    for (.., dir) in &runs {
        RunDir::check_free(dir).map_err(usage)?;
    }
    let dev = first.common.setup()?;
    let set = load_data(spec, data_dir, first.limit, dev)?;
    let image = [set.channels as i64, set.height as i64, set.width as i64];
    let cfgs: Vec<TrainConfig> = runs
        .iter()
        .map(|(_, o, _)| TrainConfig::resolve(&spec.to_string(), image, data_dir, o))
        .collect();
    let dirs: Vec<&Path> = runs.iter().map(|(.., d)| d.as_path()).collect();
    if dirs.len() > 1 {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        tracing::info!(runs = names.len(), "training {} as one stack", names.join(", "));
    }
    let mut t = Trainer::create_stack(cfgs, &dirs, dev, &set)?;
    t.run(RunOptions {
        quiet: quiet || runs.iter().any(|(a, ..)| a.common.quiet),
        step_mode: first.step.mode(),
    })
}

#[derive(Args)]
pub struct TrainStackArgs {
    /// The sweep's plan (OUT/sweep.json) that names the runs and their flags.
    #[arg(long)]
    plan: PathBuf,
    /// A run of the plan to train in the stack (by name, e.g. pa-input-s0; repeat for each).
    #[arg(long = "run", required = true)]
    runs: Vec<String>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `pagan-train train-stack` (what `sweep --stack` runs): fresh runs of a sweep plan, each
/// with its own flags, trained as one stack.
pub fn train_stack(a: TrainStackArgs) -> Result<()> {
    let plan: Plan = serde_json::from_slice(
        &std::fs::read(&a.plan).with_context(|| format!("reading {}", a.plan.display()))?,
    )
    .with_context(|| format!("parsing {}", a.plan.display()))?;
    let mut parsed = Vec::new();
    for name in &a.runs {
        let r = plan
            .runs
            .iter()
            .find(|r| r.name == *name)
            .ok_or_else(|| usage(format!("{} has no run named {name}", a.plan.display())))?;
        let mut args = r.args.clone();
        args.extend(["--out".into(), r.dir.display().to_string()]);
        parsed.push((parse_train_args(&args)?, r.dir.clone()));
    }
    let runs = parsed
        .iter()
        .map(|(t, d)| (t, t.overrides(), d.clone()))
        .collect();
    start(runs, a.quiet)
}
