//! `pagan-train`: train, resume, sample and export PA-GAN (SN-DCGAN) runs; FID tooling.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use pagan_trainer::config::{AdamConfig, EvalConfig, Preset, TrainConfig};
use pagan_trainer::data::{self, DatasetSpec, Split};
use pagan_trainer::device::{self, DeviceArg};
use pagan_trainer::pa::PaMode;
use pagan_trainer::schedule::ScheduleSpec;
use pagan_trainer::train::{RunOptions, Trainer};
use pagan_trainer::{bench, report, sample, sweep};

mod fid_cli;

#[derive(Parser)]
#[command(
    name = "pagan-train",
    version,
    about = "Train SN-DCGAN with progressive augmentation (PA-GAN, Zhang & Khoreva 2019), sample from runs, export to ONNX.",
    long_about = "Train SN-DCGAN with progressive augmentation (PA-GAN, Zhang & Khoreva, NeurIPS 2019).\n\n\
A run folder holds config.json, metrics.jsonl, samples/*.png and checkpoints/. \
Data is read from --data-dir (default: $PAGAN_DATA, else ./data); `make setup` installs MNIST and Fashion-MNIST there.\n\n\
Example: pagan-train train --dataset fashion-mnist --preset demo --pa input --iters 3000 --out runs/demo"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a new training run.
    Train(Box<TrainArgs>),
    /// Continue a run from its newest checkpoint, exactly where it stopped.
    Resume(ResumeArgs),
    /// Generate images from a run's newest checkpoint.
    Sample(SampleArgs),
    /// Export a run's generator to ONNX (verified against tch in ONNX Runtime) with a manifest.
    Export(ExportArgs),
    /// Dataset utilities.
    Data {
        #[command(subcommand)]
        cmd: DataCmd,
    },
    /// Export the FID Inception-v3 (resize + normalisation inside) to ONNX for the server, checked in ONNX Runtime.
    ExportInception(fid_cli::ExportInceptionArgs),
    /// Compute FID reference statistics (.npz, pytorch-fid keys) of a dataset split.
    Stats(Box<fid_cli::StatsArgs>),
    /// Score a run, an exported model or an image set by FID (and KID) against reference statistics.
    Fid(Box<fid_cli::FidArgs>),
    /// Time training iterations on synthetic data (used by `make bench`); prints one JSON line.
    Bench(bench::BenchArgs),
    /// Run a TOML grid of variants x seeds (experiments/*.toml), each in its own run folder; resumable.
    Sweep(sweep::SweepArgs),
    /// Plot FID/KID/loss curves and sample grids of runs or sweeps, and write results.md.
    Report(report::ReportArgs),
    /// Time Inception feature extraction (tch or the ONNX graph in ORT; used by `make bench`); prints one JSON line.
    BenchInception(bench::InceptionBenchArgs),
}

#[derive(Subcommand)]
enum DataCmd {
    /// Download a dataset from its canonical URLs into the data folder (needs internet).
    Fetch {
        /// mnist, fashion-mnist, cifar10 or celeba.
        dataset: String,
        /// Data folder (default: $PAGAN_DATA, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print what a dataset split holds (count, shape, pixel mean) to check an install.
    Info {
        /// mnist, fashion-mnist, cifar10, celeba or folder:PATH.
        dataset: String,
        /// train or test.
        #[arg(long, default_value = "train")]
        split: String,
        /// Data folder (default: $PAGAN_DATA, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Args)]
struct Common {
    /// Compute device: auto picks CUDA when libtorch sees a GPU.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceArg,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    threads: Option<i32>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct TrainArgs {
    /// Dataset: mnist, fashion-mnist, cifar10, celeba or folder:PATH.
    #[arg(long)]
    dataset: String,
    /// paper = the paper's SN-DCGAN widths; demo = quarter widths for a quick CPU run.
    #[arg(long, value_enum, default_value = "paper")]
    preset: Preset,
    /// Progressive augmentation: off (plain NS-GAN), input (bits at D's input) or feat (bits at a D feature map).
    #[arg(long, value_enum, default_value = "input")]
    pa: PaMode,
    /// D conv layer (0-6) whose input gets the bits with --pa feat; 6 = the N/8 map feeding the last 3x3 conv.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=6))]
    pa_feat_layer: u64,
    /// PA level at iteration 0 (the paper recommends 2 for CIFAR-10). Default: 2 for cifar10, else 0.
    #[arg(long)]
    start_level: Option<i64>,
    /// Pre-allocated bit channels = the highest level PA can reach.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(1..=32))]
    max_level: i64,
    /// Iterations over which a new bit fades in (t_r; 0 = no fade-in, as in the official code).
    #[arg(long, default_value_t = 5000)]
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
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i64).range(1..))]
    batch: i64,
    /// Adam learning rate for G and D.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Adam beta1.
    #[arg(long, default_value_t = 0.5)]
    beta1: f64,
    /// Adam beta2.
    #[arg(long, default_value_t = 0.999)]
    beta2: f64,
    /// Seed for initialisation, data order, z and bits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run folder to create.
    #[arg(long)]
    out: PathBuf,
    /// Data folder (default: $PAGAN_DATA, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use only the first N training images (quick experiments, tests).
    #[arg(long)]
    limit: Option<usize>,
    /// Iterations between metrics lines.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    log_every: u64,
    /// Iterations between sample grids (samples/iter-*.png). Default: 1000 (demo: 500).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    sample_every: Option<u64>,
    /// Iterations between checkpoints. Default: 5000 (demo: 500).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: Option<u64>,
    /// Adversarial loss: ns (non-saturating, the paper's), hinge, lsgan or wgan-gp (implies --gp one-centred).
    #[arg(long, value_enum, default_value = "ns")]
    loss: pagan_trainer::loss::LossKind,
    /// Gradient penalty on D: none, one-centred (interpolates, Gulrajani) or zero-centred (reals, R1).
    #[arg(long, value_enum, default_value = "none")]
    gp: pagan_trainer::loss::GpKind,
    /// Weight of the gradient penalty.
    #[arg(long, default_value_t = 10.0)]
    gp_weight: f64,
    /// Dropout probability in D (0 = off), at the input of conv --d-dropout-layer.
    #[arg(long, default_value_t = 0.0)]
    d_dropout: f64,
    /// D conv index (0-6) whose input gets the dropout; 4 = the N/4 feature map.
    #[arg(long, default_value_t = 4)]
    d_dropout_layer: usize,
    /// One-sided label smoothing: D's TRUE targets become 1 - this (ns and lsgan only).
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Iterations between FID/KID evaluations (0 = none). Default: 10000 (demo: 0).
    #[arg(long)]
    eval_every: Option<u64>,
    /// Generated images per evaluation (and training images KID compares with).
    #[arg(long, default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..))]
    eval_samples: usize,
    /// Statistics .npz to report FID against at each evaluation (e.g. models/references/fashion-mnist-test.npz).
    #[arg(long)]
    eval_fid_reference: Option<PathBuf>,
    /// Resize convention before Inception: asymmetric (TF1, the paper's) or half_pixel (pytorch-fid).
    #[arg(long, default_value = "asymmetric")]
    resize_mode: pagan_shared::ResizeMode,
    /// Images per Inception call during evaluations.
    #[arg(long, default_value_t = 50, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..4097))]
    eval_batch: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct ResumeArgs {
    /// Run folder (holds config.json and checkpoints/).
    run: PathBuf,
    /// New total iteration count (default: the run's own).
    #[arg(long)]
    iters: Option<u64>,
    /// Data folder (default: the one the run was started with).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct SampleArgs {
    /// Run folder.
    run: PathBuf,
    /// Number of images (grid format).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Seed of the latents (the same seed gives the same z in the server).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Latents [N, latent] as float32 .npy instead of --n/--seed.
    #[arg(long)]
    z: Option<PathBuf>,
    /// Output format: grid (PNG) or npy (raw float32 [N, C, H, W] in [-1, 1]).
    #[arg(long, default_value = "grid", value_parser = ["grid", "npy"])]
    format: String,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct ExportArgs {
    /// Run folder.
    run: PathBuf,
    /// Model folder to write (e.g. models/fmnist-pa); its name is the model's name.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

fn setup(common: &Common) -> Result<tch::Device> {
    if let Some(t) = common.threads {
        tch::set_num_threads(t.max(1));
    }
    device::resolve(common.device)
}

fn train(a: TrainArgs) -> Result<()> {
    let dev = setup(&a.common)?;
    let spec: DatasetSpec = a.dataset.parse()?;
    let data_dir = data::resolve_data_dir(a.data_dir.as_deref());
    let demo = a.preset == Preset::Demo;
    let set = data::load(&spec, Split::Train, &data_dir, a.limit)?;
    tracing::info!(dataset = %spec, images = set.n, source = %set.source, device = %device::describe(dev), "data loaded");
    let adam = AdamConfig {
        lr: a.lr,
        beta1: a.beta1,
        beta2: a.beta2,
        ..AdamConfig::default()
    };
    let image = [set.channels as i64, set.height as i64, set.width as i64];
    let cfg = TrainConfig {
        dataset: spec.to_string(),
        data_dir: data_dir.display().to_string(),
        preset: a.preset,
        arch: a.preset.arch(image),
        batch: a.batch,
        iters: a.iters.unwrap_or(if demo { 2500 } else { 100_000 }),
        seed: a.seed,
        adam_d: adam,
        adam_g: adam,
        pa: a.pa,
        pa_feat_layer: a.pa_feat_layer as usize,
        start_level: a.start_level.unwrap_or(if matches!(spec, DatasetSpec::Cifar10) {
            2
        } else {
            0
        }),
        max_level: a.max_level,
        fade_iters: a.fade_iters,
        schedule: a
            .pa_schedule
            .unwrap_or(ScheduleSpec::Every(if demo { 1000 } else { 10_000 })),
        reset_g_adam_on_level_up: a.reset_g_adam,
        log_every: a.log_every,
        sample_every: a.sample_every.unwrap_or(if demo { 500 } else { 1000 }),
        checkpoint_every: a.checkpoint_every.unwrap_or(if demo { 500 } else { 5000 }),
        eval: EvalConfig {
            every: a.eval_every.unwrap_or(if demo { 0 } else { 10_000 }),
            samples: a.eval_samples,
            fid_reference: a.eval_fid_reference.map(|p| p.display().to_string()),
            resize_mode: a.resize_mode,
            batch: a.eval_batch,
            weights: String::new(),
        },
        loss: a.loss,
        reg: pagan_trainer::loss::RegConfig {
            gp: a.gp,
            gp_weight: a.gp_weight,
            dropout: a.d_dropout,
            dropout_layer: a.d_dropout_layer,
            label_smoothing: a.label_smoothing,
        },
        limit: a.limit,
    };
    cfg.reg.validate(cfg.loss).map_err(anyhow::Error::msg)?;
    if cfg.schedule == ScheduleSpec::Kid && cfg.eval.every == 0 {
        anyhow::bail!("--pa-schedule kid levels up at evaluations: set --eval-every N (N > 0)");
    }
    if let Some(r) = &cfg.eval.fid_reference {
        // Fail now, not after hours of training.
        pagan_shared::read_stats_npz(std::path::Path::new(r))?;
    }
    let mut t = Trainer::create(cfg, &a.out, dev, &set)?;
    t.run(RunOptions {
        quiet: a.common.quiet,
    })
}

fn resume(a: ResumeArgs) -> Result<()> {
    let dev = setup(&a.common)?;
    let cfg = pagan_trainer::train::load_config(&a.run)?;
    let spec: DatasetSpec = cfg.dataset.parse()?;
    let data_dir = a.data_dir.unwrap_or_else(|| PathBuf::from(&cfg.data_dir));
    let set = data::load(&spec, Split::Train, &data_dir, cfg.limit)?;
    tracing::info!(dataset = %spec, images = set.n, source = %set.source, device = %device::describe(dev), "data loaded");
    let mut t = Trainer::open(&a.run, dev, &set)?;
    if let Some(total) = a.iters {
        t.cfg.iters = total;
        let json = serde_json::to_vec_pretty(&t.cfg)?;
        pagan_shared::grid::write_atomic(&a.run.join("config.json"), &json)?;
    }
    tracing::info!(run = %a.run.display(), from = t.iter, to = t.cfg.iters, "resuming");
    t.run(RunOptions {
        quiet: a.common.quiet,
    })
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: logs piped to files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", pagan_shared::error::chain_message(e.chain()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Train(a) => train(*a),
        Cmd::Resume(a) => resume(a),
        Cmd::Sample(a) => {
            let dev = setup(&a.common)?;
            match (a.format.as_str(), &a.z) {
                ("npy", Some(z)) => sample::sample_npy(&a.run, dev, z, &a.out),
                ("npy", None) => anyhow::bail!("--format npy needs --z z.npy (latents in, raw images out)"),
                (_, Some(_)) => anyhow::bail!("--z goes with --format npy"),
                _ => sample::sample_grid(&a.run, dev, a.n, a.seed, &a.out),
            }?;
            println!("wrote {}", a.out.display());
            Ok(())
        }
        Cmd::Export(a) => {
            let dev = setup(&a.common)?;
            let r = pagan_trainer::export::export_run(&a.run, &a.out, dev)?;
            println!(
                "wrote {} and {} (ORT vs tch max |diff| {:.2e} at batch sizes {:?})",
                r.onnx_path.display(),
                r.manifest_path.display(),
                r.max_abs_diff,
                r.batch_sizes
            );
            Ok(())
        }
        Cmd::Data {
            cmd: DataCmd::Fetch { dataset, data_dir },
        } => {
            let spec: DatasetSpec = dataset.parse()?;
            let dir = data::resolve_data_dir(data_dir.as_deref());
            let files = data::fetch(&spec, &dir).with_context(|| format!("fetching {spec}"))?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
        Cmd::Data {
            cmd:
                DataCmd::Info {
                    dataset,
                    split,
                    data_dir,
                },
        } => {
            let spec: DatasetSpec = dataset.parse()?;
            let split: Split = split.parse()?;
            let dir = data::resolve_data_dir(data_dir.as_deref());
            let set = data::load(&spec, split, &dir, None)?;
            let mean = set.data.iter().map(|&b| b as f64).sum::<f64>() / set.data.len().max(1) as f64;
            println!(
                "{spec} {split}: {} images, {}x{}x{}, pixel mean {mean:.2}, from {}",
                set.n, set.channels, set.height, set.width, set.source
            );
            Ok(())
        }
        Cmd::ExportInception(a) => fid_cli::export_inception(a),
        Cmd::Stats(a) => fid_cli::stats(*a),
        Cmd::Fid(a) => fid_cli::fid(*a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::BenchInception(a) => bench::run_inception(a),
        // The sweep checks each run's flags with the real train parser before starting any.
        Cmd::Sweep(a) => sweep::run(a, &TrainArgs::augment_args(clap::Command::new("train"))),
        Cmd::Report(a) => report::run(a),
    }
}
