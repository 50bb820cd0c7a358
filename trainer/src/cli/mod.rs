//! The command line (binary only): clap types parse flags, each command converts them into
//! the library's plain types and calls it. Exit codes: 0 done, 1 failed, 2 bad flags or
//! values (clap's own errors, dataset names, settings `TrainConfig::validate` refuses).

mod bench;
mod cond;
mod data;
mod experiments;
mod fid;
mod intra;
mod resume;
mod run;
mod semi;
mod stats;
mod train;
mod tricks;

use std::process::ExitCode;

use anyhow::Result;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use pagan_trainer::config::{Choice, ConfigError};
use pagan_trainer::data::DataError;
use pagan_trainer::device::{self, DeviceChoice};
use pagan_trainer::train::StepMode;

#[derive(Parser)]
#[command(
    name = "pagan-train",
    version,
    about = "Train SN-DCGAN with progressive augmentation (PA-GAN, Zhang & Khoreva 2019), sample from runs, export to ONNX.",
    long_about = "Train SN-DCGAN with progressive augmentation (PA-GAN, Zhang & Khoreva, NeurIPS 2019).\n\n\
A run folder holds config.json, metrics.jsonl, samples/*.png and checkpoints/. \
Data is read from --data-dir (default: $PAGAN_DATA, else ./data); `make setup` installs MNIST and Fashion-MNIST there.\n\n\
Exit status: 0 done, 1 failed, 2 bad flags or values.\n\n\
Example: pagan-train train --dataset fashion-mnist --preset demo --pa input --iters 3000 --out runs/demo"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a new training run.
    Train(Box<train::TrainArgs>),
    /// Continue runs from their newest checkpoint (or from iteration 0 if they stopped before one), exactly.
    Resume(resume::ResumeArgs),
    /// Train runs of a sweep plan as one stack (what `sweep --stack` runs for each stack).
    #[command(hide = true)]
    TrainStack(train::TrainStackArgs),
    /// Generate images from a run's newest checkpoint.
    Sample(run::SampleArgs),
    /// Export a run's generator to ONNX (verified against tch in ONNX Runtime) with a manifest.
    Export(run::ExportArgs),
    /// Dataset utilities.
    Data {
        #[command(subcommand)]
        cmd: data::DataCmd,
    },
    /// Export the FID Inception-v3 (resize + normalisation inside) to ONNX for the server, checked in ONNX Runtime.
    ExportInception(fid::ExportInceptionArgs),
    /// Compute FID reference statistics (.npz, pytorch-fid keys) of a dataset split or image folder.
    Stats(Box<stats::StatsArgs>),
    /// Score a run, an exported model or an image set by FID (and KID) against reference statistics.
    Fid(Box<fid::FidArgs>),
    /// Intra-class FID of a class-conditional run: per class, generated vs the dataset's images of that class.
    IntraFid(Box<intra::IntraFidArgs>),
    /// Time training iterations on synthetic data (used by `make bench`); prints one JSON line.
    Bench(bench::BenchArgs),
    /// Run a TOML grid of variants x seeds (experiments/*.toml), each in its own run folder; resumable.
    Sweep(experiments::SweepArgs),
    /// Plot FID/KID/loss curves and sample grids of runs or sweeps, and write results.md.
    Report(experiments::ReportArgs),
    /// Semi-supervised GAN: D classifies K classes + fake, trained on a few labels (or the labels alone).
    Ssgan(Box<semi::SemiArgs>),
    /// Time Inception feature extraction (tch or the ONNX graph in ORT; used by `make bench`); prints one JSON line.
    BenchInception(bench::InceptionBenchArgs),
}

/// Flags every command that computes takes.
#[derive(Args)]
struct Common {
    /// Compute device: auto picks CUDA when libtorch sees a GPU.
    #[arg(long, default_value = "auto", value_parser = choice::<DeviceChoice>())]
    device: DeviceChoice,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    threads: Option<i32>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// How training iterations run (train, resume, bench).
#[derive(Args, Debug, Clone, Copy)]
struct StepArgs {
    /// Capture the training step once as a CUDA graph and replay it every iteration (CUDA
    /// only: one launch instead of hundreds of kernels). Where a graph cannot run the step
    /// runs eager, and the log says which mode ran.
    #[arg(long)]
    cuda_graph: bool,
}

impl StepArgs {
    fn mode(self) -> StepMode {
        if self.cuda_graph {
            StepMode::CudaGraph
        } else {
            StepMode::Eager
        }
    }
}

impl Common {
    /// Applies the thread count and resolves the device.
    fn setup(&self) -> Result<tch::Device> {
        if let Some(t) = self.threads {
            tch::set_num_threads(t);
        }
        device::resolve(self.device)
    }
}

/// A clap parser for a library choice: its words (with help) as possible values.
fn choice<T: Choice + Clone + Send + Sync>() -> impl TypedValueParser<Value = T> {
    let values = T::ALL
        .iter()
        .zip(T::HELP)
        .map(|((w, _), h)| PossibleValue::new(*w).help(*h));
    PossibleValuesParser::new(values).try_map(|s: String| T::parse_word(&s, "value"))
}

/// A bad value given on the command line (exit 2), found after clap's own checks.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// Marks `e` as a bad value (exit 2).
fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// True when the failure is the user's input, not the work.
fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<ConfigError>()
            || matches!(
                c.downcast_ref::<DataError>(),
                Some(DataError::UnknownDataset { .. } | DataError::UnknownSplit { .. })
            )
    })
}

/// Runs the command line.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: logs piped to files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let kept = pagan_trainer::native::keep_freed_memory();
    tracing::debug!(kept, "malloc keeps freed memory for reuse");
    match dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", pagan_shared::error::chain_message(e.chain()));
            if is_usage(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    if matches!(
        cli.cmd,
        Cmd::Train(_) | Cmd::Resume(_) | Cmd::TrainStack(_) | Cmd::Bench(_) | Cmd::Sweep(_)
    ) {
        // Read where a stack is built (train::open); checked once here, before a command
        // that trains reads data or makes a run folder (a sweep's children read it later).
        // Any word is valid on every device.
        pagan_trainer::ops::StackKernels::configured(tch::Device::Cpu).map_err(usage)?;
    }
    match cli.cmd {
        Cmd::Train(a) => train::train(*a),
        Cmd::Resume(a) => resume::resume(a),
        Cmd::TrainStack(a) => train::train_stack(a),
        Cmd::Sample(a) => run::sample(a),
        Cmd::Export(a) => run::export(a),
        Cmd::Data { cmd } => data::run(cmd),
        Cmd::ExportInception(a) => fid::export_inception(a),
        Cmd::Stats(a) => stats::stats(*a),
        Cmd::Fid(a) => fid::fid(*a),
        Cmd::IntraFid(a) => intra::intra_fid(*a),
        Cmd::Bench(a) => bench::train_steps(a),
        Cmd::BenchInception(a) => bench::inception(a),
        Cmd::Sweep(a) => experiments::sweep(a),
        Cmd::Report(a) => experiments::report(a),
        Cmd::Ssgan(a) => semi::ssgan(*a),
    }
}
