//! Timing for `make bench`: training iterations per second on synthetic data (the same
//! step and networks as a real run; bench/train_step.py times PyTorch eager for the ratio)
//! and Inception feature extraction in tch (through the shared host path, or 8-bit images
//! as training-time evaluation feeds them) or ONNX Runtime.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use pagan_shared::features::FeatureExtractor;
use tch::{Device, Tensor};

use crate::config::{ScheduleSpec, TrainConfig, TrainOverrides};
use crate::data::ImageSet;
use crate::fid::inception::Inception;
use crate::native::profile::Profiler;
use crate::ops::StackKernels;
use crate::profile;
use crate::train::{StepMode, Trainer};

/// Measured rates (per second) of repeated timed runs.
#[derive(Debug, Clone)]
pub struct Rates {
    /// Each repeat's rate.
    pub all: Vec<f64>,
    /// The step mode that ran (a refused or failed CUDA graph runs eager).
    pub step_mode: StepMode,
    /// How the stack ran its layers.
    pub kernels: StackKernels,
    /// Unix seconds at which the timed iterations began and ended (all repeats): processes
    /// benchmarked side by side add up their work over the window they share.
    pub window: [f64; 2],
    /// Where the profiled iterations' time went, when asked for.
    pub profile: Option<profile::Profile>,
}

impl Rates {
    /// The median rate.
    pub fn median(&self) -> f64 {
        let mut v = self.all.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

/// A training benchmark: `overrides` on synthetic images of shape `image`, PA held at
/// level `level`.
#[derive(Debug, Clone)]
pub struct StepBench {
    /// Image shape C, H, W.
    pub image: [i64; 3],
    /// Settings (preset, PA mode, batch, max level...).
    pub overrides: TrainOverrides,
    /// PA level during the benchmark.
    pub level: i64,
    /// Timed iterations per repeat.
    pub iters: u64,
    /// Untimed warm-up iterations.
    pub warmup: u64,
    /// Timed repeats.
    pub repeats: usize,
    /// Runs trained as one stack (seeds 0..models), 1 for a single run.
    pub models: usize,
    /// How a stack runs its layers (`None`: the device's default).
    pub kernels: Option<StackKernels>,
    /// Eager, or the step as a CUDA graph.
    pub step_mode: StepMode,
    /// Iterations profiled after the timed ones (0: none).
    pub profile_iters: u64,
    /// Where the profile's Chrome trace goes (with `profile_iters`).
    pub trace: Option<PathBuf>,
}

/// Iterations per second of the training step (of the whole stack: one iteration trains
/// every run once).
pub fn train_steps(b: &StepBench, device: Device) -> Result<Rates> {
    let [c, h, w] = b.image.map(|v| v as usize);
    let n = 512;
    // Synthetic images: the step's cost does not depend on pixel values.
    let data: Vec<u8> = (0..n * c * h * w)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let set = ImageSet {
        data,
        labels: None,
        n,
        channels: c,
        height: h,
        width: w,
        source: "synthetic".into(),
    };
    // A bench never evaluates, so it needs no Inception weights (the paper preset would
    // evaluate every 10k and have them checked).
    let o = TrainOverrides {
        start_level: Some(b.level),
        schedule: Some(ScheduleSpec::Never),
        iters: Some(u64::MAX),
        eval_every: Some(0),
        ..b.overrides.clone()
    };
    let cfgs = (0..b.models.max(1) as u64)
        .map(|seed| {
            let o = TrainOverrides {
                seed: Some(seed),
                ..o.clone()
            };
            let cfg = TrainConfig::resolve("synthetic", b.image, Path::new(""), &o);
            cfg.validate().map(|()| cfg)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if b.profile_iters > 0 && device.is_cuda() {
        // A CUDA graph captured before the profiler's first use has crashed or hung the
        // profiled replays (pytorch#75504); PyTorch's remedy: one empty profile first.
        Profiler::start(true)?.stop(None)?;
    }
    let mut t = Trainer::ephemeral_stack(cfgs, device, &set)?;
    if let Some(k) = b.kernels {
        t.gan.set_kernels(k);
    }
    t.set_step_mode(b.step_mode);
    // What runs: streams without lanes (no CUDA part, or the CPU) are per-model kernels.
    let kernels = match t.gan.g.kernels {
        StackKernels::Streams if !t.gan.lanes().active() => StackKernels::PerModel,
        k => k,
    };
    t.steps(b.warmup)?;
    wait_for_start()?;
    let from = unix_now();
    let mut all = Vec::new();
    for _ in 0..b.repeats.max(1) {
        let start = Instant::now();
        let loss = t.steps(b.iters)?;
        let secs = start.elapsed().as_secs_f64();
        if !loss.is_finite() {
            bail!("loss became {loss} during the benchmark");
        }
        all.push(b.iters as f64 / secs);
    }
    let window = [from, unix_now()];
    let profile = match b.profile_iters {
        0 => None,
        n => Some(profile_steps(&mut t, n, device, b.trace.as_deref())?),
    };
    Ok(Rates {
        all,
        step_mode: t.step_mode(),
        kernels,
        window,
        profile,
    })
}

/// Where the time of `n` more iterations of `t` goes (untimed: profiling slows them).
fn profile_steps(t: &mut Trainer, n: u64, device: Device, trace: Option<&Path>) -> Result<profile::Profile> {
    let p = Profiler::start(device.is_cuda())?;
    let start = Instant::now();
    // steps() ends by reading a loss, so the device work is done when the profile stops.
    t.steps(n)?;
    let wall = start.elapsed().as_nanos() as u64;
    Ok(profile::Profile::new(&p.stop(trace)?, n, wall))
}

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// With `PAGAN_BENCH_BARRIER=DIR`: says this process is warmed up (`DIR/ready.PID`) and
/// waits for `DIR/go`, so processes benchmarked side by side on one device time the same
/// window (bench/stack.sh; without it, K processes that start seconds apart are each timed
/// mostly alone, and their summed rates overstate what they do together).
fn wait_for_start() -> Result<()> {
    let Some(dir) = std::env::var_os("PAGAN_BENCH_BARRIER") else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    let ready = dir.join(format!("ready.{}", std::process::id()));
    std::fs::write(&ready, b"").with_context(|| format!("writing {}", ready.display()))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(900);
    while !dir.join("go").exists() {
        if Instant::now() > deadline {
            bail!("benchmark barrier: no {}/go after 900 s", dir.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Ok(())
}

/// `n` pseudo-random pixel values (the same ones in every run).
fn random_pixels(n: usize) -> Vec<u8> {
    let mut rng = pagan_shared::rng::SplitMix64::new(1);
    (0..n).map(|_| (rng.next_u64() % 256) as u8).collect()
}

/// An Inception throughput measurement: `batches` timed batches of `batch` random images
/// `[channels, side, side]` after `warmup` untimed ones.
#[derive(Debug, Clone, Copy)]
pub struct InceptionBench {
    /// Input channels (1 is replicated to 3, as the shared path does).
    pub channels: usize,
    /// Input side.
    pub side: usize,
    /// Images per call.
    pub batch: usize,
    /// Timed calls.
    pub batches: usize,
    /// Untimed calls first.
    pub warmup: usize,
}

impl InceptionBench {
    /// Images per second of `call` (one batch per call, which waits for the device).
    fn rate(&self, mut call: impl FnMut() -> Result<()>) -> Result<f64> {
        for _ in 0..self.warmup {
            call()?;
        }
        let start = Instant::now();
        for _ in 0..self.batches.max(1) {
            call()?;
        }
        Ok((self.batch * self.batches.max(1)) as f64 / start.elapsed().as_secs_f64())
    }

    fn pixels(&self) -> Vec<u8> {
        random_pixels(self.batch * self.channels * self.side * self.side)
    }
}

/// Images per second of `fx`, fed f32 images through the shared host path.
pub fn inception_rate(fx: &mut dyn FeatureExtractor, b: &InceptionBench) -> Result<f64> {
    let (side, plane) = (b.side, b.side * b.side);
    let pixels: Vec<f32> = b.pixels().into_iter().map(f32::from).collect();
    let images: Vec<f32> = if b.channels == 1 {
        pixels
            .chunks_exact(plane)
            .flat_map(|p| p.iter().chain(p).chain(p).copied())
            .collect()
    } else {
        pixels
    };
    // features() returns host values, so each call waits for the device.
    b.rate(|| {
        fx.features(&images, b.batch, side, side)
            .map(drop)
            .map_err(anyhow::Error::from_boxed)
    })
}

/// Images per second of the training-evaluation path: 8-bit images to the device, features
/// (resize and normalisation included) back to the host, as `fid::evaluate` runs them.
pub fn inception_rate_bytes(inception: &Inception, b: &InceptionBench) -> Result<f64> {
    let (c, s) = (b.channels as i64, b.side as i64);
    let host = Tensor::from_slice(&b.pixels()).view([b.batch as i64, c, s, s]);
    b.rate(|| {
        let f = inception.features(&host.to_device(inception.device()));
        // Reading the features back waits for the device.
        let sum = f.to_device(Device::Cpu).sum(tch::Kind::Float).double_value(&[]);
        if !sum.is_finite() {
            bail!("non-finite features during the benchmark");
        }
        Ok(())
    })
}
