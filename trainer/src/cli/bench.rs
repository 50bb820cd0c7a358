//! `pagan-train bench` and `bench-inception`: flags -> `pagan_trainer::bench` -> one JSON
//! line each (bench/run.sh turns them into tables).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use pagan_trainer::bench::{self, InceptionBench, StepBench};
use pagan_trainer::config::{Choice, PaMode, Preset, TrainOverrides};
use pagan_trainer::device::{self, DeviceChoice};
use pagan_trainer::fid::Extractor;
use pagan_trainer::fid::inception::Inception;
use pagan_trainer::ops::StackKernels;
use pagan_trainer::train::StepMode;

use super::{StepArgs, choice};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Image shape CxHxW (e.g. 1x28x28, 3x32x32).
    #[arg(long, default_value = "1x28x28")]
    image: String,
    /// Network widths.
    #[arg(long, default_value = "paper", value_parser = choice::<Preset>())]
    preset: Preset,
    /// PA mode.
    #[arg(long, default_value = "input", value_parser = choice::<PaMode>())]
    pa: PaMode,
    /// PA level during the benchmark (bits sampled, mask live).
    #[arg(long, default_value_t = 2)]
    level: i64,
    /// Pre-allocated bit channels.
    #[arg(long, default_value_t = 7)]
    max_level: i64,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: i64,
    /// Timed iterations per repeat.
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    iters: u64,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Timed repeats (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    repeats: usize,
    /// Device.
    #[arg(long, default_value = "cpu", value_parser = choice::<DeviceChoice>())]
    device: DeviceChoice,
    /// CPU threads for libtorch.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    threads: Option<i32>,
    /// Runs trained as one stack (seeds 0..K); the rates are of the whole stack.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    models: usize,
    /// How a stack runs its layers (default: grouped on CUDA, per-model on the CPU).
    #[arg(long, value_parser = choice::<StackKernels>())]
    kernels: Option<StackKernels>,
    /// After the timed iterations, profile --profile-iters more with libtorch's profiler
    /// and write a Markdown table of where an iteration's time goes (host operators by self
    /// time; on CUDA also the device's kernels and copies, summed over streams, those of a
    /// graph replay too, and the CUDA runtime calls).
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Iterations profiled (with --profile).
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    profile_iters: u64,
    /// With --profile: also write the profile's Chrome trace (Perfetto, chrome://tracing).
    #[arg(long, value_name = "FILE", requires = "profile")]
    profile_trace: Option<PathBuf>,
    #[command(flatten)]
    step: StepArgs,
}

fn parse_image(s: &str) -> Result<[i64; 3]> {
    // Every token must parse: "1xabcx28x28" is a typo, not 1x28x28.
    let v: Option<Vec<i64>> = s.split('x').map(|x| x.parse().ok()).collect();
    match v.as_deref() {
        Some([c, h, w]) if (1..=4).contains(c) && (8..=1024).contains(h) && (8..=1024).contains(w) => {
            Ok([*c, *h, *w])
        }
        _ => Err(super::usage(format!(
            "--image must be CxHxW like 1x28x28 (C 1..=4, H and W 8..=1024), got {s:?}"
        ))),
    }
}

/// `pagan-train bench`.
pub fn train_steps(a: BenchArgs) -> Result<()> {
    if a.profile.is_some() && a.device == DeviceChoice::Cpu && std::env::var_os("KINETO_LOG_LEVEL").is_none()
    {
        // Kineto probes for GPUs and logs an error line when a CUDA build of libtorch finds
        // no driver: noise for a CPU profile (on CUDA its messages stay, they may matter).
        // SAFETY: first thing in the command, before libtorch starts any thread.
        unsafe { std::env::set_var("KINETO_LOG_LEVEL", "5") };
    }
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    if !(0..=a.max_level).contains(&a.level) {
        return Err(super::usage(format!(
            "--level must be 0..={} (--max-level), got {}",
            a.max_level, a.level
        )));
    }
    let dev = device::resolve(a.device)?;
    let b = StepBench {
        image: parse_image(&a.image)?,
        overrides: TrainOverrides {
            preset: Some(a.preset),
            pa: Some(a.pa),
            max_level: Some(a.max_level),
            batch: Some(a.batch),
            ..TrainOverrides::default()
        },
        level: a.level,
        iters: a.iters,
        warmup: a.warmup,
        repeats: a.repeats,
        models: a.models,
        kernels: a.kernels,
        step_mode: a.step.mode(),
        profile_iters: if a.profile.is_some() { a.profile_iters } else { 0 },
        trace: a.profile_trace.clone(),
    };
    let rates = bench::train_steps(&b, dev)?;
    let mode = match rates.step_mode {
        StepMode::Eager => "eager",
        StepMode::CudaGraph => "cuda-graph",
    };
    if let (Some(path), Some(prof)) = (&a.profile, &rates.profile) {
        let title = format!(
            "# Profile: pagan-train bench, {}, {} {} pa {}, batch {}, {} model(s), {}, {} iterations\n",
            device::describe(dev),
            a.preset,
            a.image,
            a.pa,
            a.batch,
            a.models,
            mode,
            b.profile_iters
        );
        let text = title + &prof.table(30);
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{}",
        serde_json::json!({
            "impl": "pagan-train (tch)",
            "device": device::describe(dev),
            "image": a.image,
            "preset": a.preset.to_string(),
            "pa": a.pa.to_string(),
            "batch": a.batch,
            "threads": tch::get_num_threads(),
            "models": a.models,
            "kernels": if a.models > 1 { rates.kernels.word() } else { "-" },
            "step_mode": mode,
            "it_per_s": rates.median(),
            "run_it_per_s": rates.median() * a.models as f64,
            "all_it_per_s": rates.all,
            "window": rates.window,
        })
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct InceptionBenchArgs {
    /// tch (our module, f32 images through the shared host path as `fid` and `stats` run
    /// it), tch-bytes (our module fed 8-bit images, as training-time evaluation runs it) or
    /// onnx (models/inception in ONNX Runtime, CPU).
    #[arg(long, default_value = "tch", value_parser = ["tch", "tch-bytes", "onnx"])]
    backend: String,
    /// Input images are CxSxS with this side (resized to 299 inside; at most 2048).
    #[arg(long, default_value_t = 28, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=2048))]
    side: usize,
    /// Channels of the input images (1 is replicated to 3).
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Images per call.
    #[arg(long, default_value_t = 25, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    batch: usize,
    /// Timed batches.
    #[arg(long, default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batches: usize,
    /// Untimed warm-up batches.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Device (tch backend).
    #[arg(long, default_value = "cpu", value_parser = choice::<DeviceChoice>())]
    device: DeviceChoice,
    /// CPU threads (libtorch, or ORT intra-op threads).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    threads: Option<i32>,
    /// ONNX model folder for the onnx backend.
    #[arg(long, default_value = "models/inception")]
    inception: std::path::PathBuf,
    /// tch backends: lay activations out channels-first (NCHW) instead of channels-last,
    /// the default (to compare the two).
    #[arg(long)]
    nchw: bool,
}

/// `pagan-train bench-inception`.
pub fn inception(a: InceptionBenchArgs) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    if !matches!(a.channels, 1 | 3) {
        return Err(super::usage("--channels must be 1 or 3"));
    }
    let spec = InceptionBench {
        channels: a.channels,
        side: a.side,
        batch: a.batch,
        batches: a.batches,
        warmup: a.warmup,
    };
    let load = || -> Result<(Inception, tch::Device)> {
        let dev = device::resolve(a.device)?;
        let mut inc = Inception::load(
            &pagan_trainer::config::default_inception_weights(),
            dev,
            pagan_shared::ResizeMode::Asymmetric,
        )?;
        inc.set_channels_last(!a.nchw);
        Ok((inc, dev))
    };
    if a.backend == "tch-bytes" {
        let (inc, dev) = load()?;
        let rate = bench::inception_rate_bytes(&inc, &spec)?;
        return print_inception_row(&a, &device::describe(dev), rate);
    }
    let (mut fx, dev) = if a.backend == "onnx" {
        let threads = a.threads.map(|t| t as usize).unwrap_or(0);
        (
            Extractor::open_onnx(&a.inception, threads, pagan_shared::ResizeMode::Asymmetric)?,
            "cpu (ORT)".to_string(),
        )
    } else {
        let (inc, dev) = load()?;
        (Extractor::Tch(inc), device::describe(dev))
    };
    let rate = bench::inception_rate(&mut fx, &spec)?;
    print_inception_row(&a, &dev, rate)
}

/// One JSON line of `bench-inception`.
fn print_inception_row(a: &InceptionBenchArgs, dev: &str, rate: f64) -> Result<()> {
    println!(
        "{}",
        serde_json::json!({
            "impl": format!("pagan ({}{})", a.backend, if a.nchw && a.backend != "onnx" { ", NCHW" } else { "" }),
            "device": dev,
            "input": format!("{}x{}x{}", a.channels, a.side, a.side),
            "batch": a.batch,
            "images": a.batch * a.batches,
            "threads": a.threads,
            "images_per_s": rate,
        })
    );
    Ok(())
}
