//! `pagan-train bench`: training iterations per second on synthetic data, for `make bench`
//! (bench/train_step.py runs the same SN-DCGAN+PA step in PyTorch eager for the ratio).

use anyhow::{Result, bail};
use clap::Args;
use std::time::Instant;

use crate::config::{AdamConfig, Preset, TrainConfig};
use crate::data::ImageSet;
use crate::device::{self, DeviceArg};
use crate::pa::PaMode;
use crate::schedule::ScheduleSpec;
use crate::train::Trainer;

/// Options of `pagan-train bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Image shape CxHxW (e.g. 1x28x28, 3x32x32).
    #[arg(long, default_value = "1x28x28")]
    image: String,
    /// Network widths.
    #[arg(long, value_enum, default_value = "paper")]
    preset: Preset,
    /// PA mode.
    #[arg(long, value_enum, default_value = "input")]
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
    #[arg(long, default_value_t = 20)]
    iters: u64,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Timed repeats (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Device.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
    /// CPU threads for libtorch.
    #[arg(long)]
    threads: Option<i32>,
}

fn parse_image(s: &str) -> Result<[i64; 3]> {
    let v: Vec<i64> = s.split('x').filter_map(|x| x.parse().ok()).collect();
    match v.as_slice() {
        [c, h, w] if *c > 0 && *h >= 8 && *w >= 8 => Ok([*c, *h, *w]),
        _ => bail!("--image must be CxHxW like 1x28x28, got {s:?}"),
    }
}

/// Runs the benchmark and prints one JSON line with iterations per second.
pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t.max(1));
    }
    let dev = device::resolve(a.device)?;
    let image = parse_image(&a.image)?;
    let [c, h, w] = image.map(|v| v as usize);
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
    let cfg = TrainConfig {
        dataset: "synthetic".into(),
        data_dir: String::new(),
        preset: a.preset,
        arch: a.preset.arch(image),
        batch: a.batch,
        iters: u64::MAX,
        seed: 0,
        adam_d: AdamConfig::default(),
        adam_g: AdamConfig::default(),
        pa: a.pa,
        pa_feat_layer: 6,
        start_level: a.level,
        max_level: a.max_level,
        fade_iters: 5000,
        schedule: ScheduleSpec::Never,
        reset_g_adam_on_level_up: false,
        log_every: u64::MAX,
        sample_every: u64::MAX,
        checkpoint_every: u64::MAX,
        eval: Default::default(),
        loss: Default::default(),
        reg: Default::default(),
        limit: None,
    };
    let mut t = Trainer::ephemeral(cfg, dev, &set)?;
    t.steps(a.warmup);
    let mut rates = Vec::new();
    for _ in 0..a.repeats.max(1) {
        let start = Instant::now();
        let loss = t.steps(a.iters);
        let secs = start.elapsed().as_secs_f64();
        if !loss.is_finite() {
            bail!("loss became {loss} during the benchmark");
        }
        rates.push(a.iters as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "impl": "pagan-train (tch)",
            "device": device::describe(dev),
            "image": a.image,
            "preset": format!("{:?}", a.preset).to_lowercase(),
            "pa": format!("{:?}", a.pa).to_lowercase(),
            "batch": a.batch,
            "threads": tch::get_num_threads(),
            "it_per_s": median,
            "all_it_per_s": rates,
        })
    );
    Ok(())
}

/// Options of `pagan-train bench-inception`.
#[derive(Args, Debug)]
pub struct InceptionBenchArgs {
    /// tch (our module) or onnx (models/inception in ONNX Runtime, CPU).
    #[arg(long, default_value = "tch", value_parser = ["tch", "onnx"])]
    backend: String,
    /// Input images are CxSxS with this side (resized to 299 inside).
    #[arg(long, default_value_t = 28)]
    side: i64,
    /// Channels of the input images (1 is replicated to 3).
    #[arg(long, default_value_t = 1)]
    channels: i64,
    /// Images per call.
    #[arg(long, default_value_t = 25)]
    batch: i64,
    /// Timed batches.
    #[arg(long, default_value_t = 4)]
    batches: usize,
    /// Untimed warm-up batches.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Device (tch backend).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
    /// CPU threads (libtorch, or ORT intra-op threads).
    #[arg(long)]
    threads: Option<i32>,
    /// ONNX model folder for the onnx backend.
    #[arg(long, default_value = "models/inception")]
    inception: std::path::PathBuf,
}

/// Times Inception feature extraction and prints one JSON line with images per second.
pub fn run_inception(a: InceptionBenchArgs) -> Result<()> {
    use crate::eval::{FeatureExtractor, OnnxInception};
    if let Some(t) = a.threads {
        tch::set_num_threads(t.max(1));
    }
    let (mut fx, dev): (Box<dyn FeatureExtractor>, String) = if a.backend == "onnx" {
        let threads = a.threads.map(|t| t.max(1) as usize).unwrap_or(0);
        (
            Box::new(OnnxInception::open(&a.inception, threads)?),
            "cpu (ORT)".into(),
        )
    } else {
        let dev = device::resolve(a.device)?;
        let w = crate::inception::weights::default_path();
        let inc = crate::inception::Inception::load(&w, dev, pagan_shared::ResizeMode::Asymmetric)?;
        (Box::new(inc), device::describe(dev))
    };
    let images = tch::Tensor::randint(
        256,
        [a.batch, a.channels, a.side, a.side],
        (tch::Kind::Uint8, tch::Device::Cpu),
    );
    for _ in 0..a.warmup {
        fx.features(&images)?;
    }
    let start = Instant::now();
    for _ in 0..a.batches.max(1) {
        // features() returns host values, so each call waits for the device.
        fx.features(&images)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = a.batch as usize * a.batches.max(1);
    println!(
        "{}",
        serde_json::json!({
            "impl": format!("pagan ({})", a.backend),
            "device": dev,
            "input": format!("{}x{}x{}", a.channels, a.side, a.side),
            "batch": a.batch,
            "images": n,
            "threads": a.threads,
            "images_per_s": n as f64 / secs,
        })
    );
    Ok(())
}
