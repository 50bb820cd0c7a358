//! `pagan-train export-inception`, `stats` and `fid`: the FID tooling on the command line.
//! Every image set goes through the same path (`pagan_trainer::fid::sources` at native
//! size -> the shared feature sink -> `pagan_shared::score`) as training-time evaluation
//! and the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use pagan_shared::ResizeMode;
use pagan_shared::features::KeepRows;
use pagan_shared::manifest::MANIFEST_FILE;
use pagan_shared::score::{self, Reference};
use pagan_trainer::data::{self, DatasetSpec, Split};
use pagan_trainer::export;
use pagan_trainer::fid::inception::{Inception, weights};
use pagan_trainer::fid::sources::{DatasetImages, FileImages, GeneratedImages, OnnxGeneratedImages};
use pagan_trainer::fid::{DEFAULT_BATCH, ExtractOptions, Extracted, Extractor, extract};
use pagan_trainer::run_dir::RunDir;

use super::Common;

/// Which implementation computes the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Our tch Inception-v3 (on --device).
    Tch,
    /// The exported ONNX graph (models/inception) in ONNX Runtime on the CPU.
    Onnx,
}

/// Options shared by `stats` and `fid` about the feature extractor.
#[derive(Args)]
pub struct ExtractorArgs {
    /// tch (our Inception on --device) or onnx (the exported graph in ONNX Runtime).
    #[arg(long, value_enum, default_value = "tch")]
    backend: Backend,
    /// Inception weights for the tch backend (default: $PAGAN_INCEPTION_WEIGHTS, else the setup's file).
    #[arg(long)]
    inception_weights: Option<PathBuf>,
    /// Model folder of the ONNX feature extractor for --backend onnx.
    #[arg(long, default_value = "models/inception")]
    inception: PathBuf,
    /// Images per Inception call.
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..4097))]
    batch: usize,
}

impl ExtractorArgs {
    /// The extractor; `dev` is the device `Common::setup` resolved (used by the tch backend).
    fn open(&self, common: &Common, dev: tch::Device, mode: ResizeMode) -> Result<Extractor> {
        Ok(match self.backend {
            Backend::Tch => {
                let w = self
                    .inception_weights
                    .clone()
                    .unwrap_or_else(weights::default_path);
                Extractor::Tch(Inception::load(&w, dev, mode)?)
            }
            Backend::Onnx => {
                let threads = common.threads.map(|t| t.max(1) as usize).unwrap_or(0);
                let fx = Extractor::open_onnx(&self.inception, threads)?;
                if fx.resize_mode() != mode {
                    tracing::warn!(
                        "{} resizes with {}, not {mode}; using the graph's mode",
                        self.inception.display(),
                        fx.resize_mode()
                    );
                }
                fx
            }
        })
    }
}

/// `export-inception` arguments.
#[derive(Args)]
pub struct ExportInceptionArgs {
    /// Model folder to write (inception.onnx + manifest.json).
    #[arg(long, default_value = "models/inception")]
    out: PathBuf,
    /// Resize convention built into the graph: asymmetric (TF1, as the paper) or half_pixel (pytorch-fid).
    #[arg(long, default_value = "asymmetric")]
    resize_mode: ResizeMode,
    /// Inception weights (default: $PAGAN_INCEPTION_WEIGHTS, else the setup's file).
    #[arg(long)]
    inception_weights: Option<PathBuf>,
}

/// Writes the feature extractor's ONNX model folder.
pub fn export_inception(a: ExportInceptionArgs) -> Result<()> {
    let w = a.inception_weights.unwrap_or_else(weights::default_path);
    let r = export::export_inception(&w, &a.out, a.resize_mode)?;
    for c in &r.checks {
        println!(
            "checked {0}x{0} inputs: max |ORT - tch| = {1:.2e}, relative L2 = {2:.2e}",
            c.side, c.max_abs, c.rel_l2
        );
    }
    println!(
        "wrote {} and {} (resize {})",
        r.onnx_path.display(),
        r.manifest_path.display(),
        a.resize_mode
    );
    Ok(())
}

/// `stats` arguments.
#[derive(Args)]
pub struct StatsArgs {
    /// Dataset: mnist, fashion-mnist, cifar10, celeba, or folder:PATH (its files at their own size).
    #[arg(long)]
    dataset: String,
    /// Split: train or test.
    #[arg(long, default_value = "test")]
    split: String,
    /// Use N images (a seeded random subset when the split is larger; default: all).
    #[arg(long)]
    n: Option<usize>,
    /// Seed of the subset.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output .npz (pytorch-fid keys mu, sigma; plus n, resize_mode and features).
    #[arg(long)]
    out: PathBuf,
    /// Resize convention: asymmetric (TF1, default) or half_pixel (pytorch-fid).
    #[arg(long, default_value = "asymmetric")]
    resize_mode: ResizeMode,
    /// Do not store the raw features (smaller file; KID against it is then impossible).
    #[arg(long)]
    no_features: bool,
    /// Data folder (default: $PAGAN_DATA, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    extractor: ExtractorArgs,
    #[command(flatten)]
    common: Common,
}

fn options(label: String, keep: KeepRows, quiet: bool, batch: usize) -> ExtractOptions {
    ExtractOptions {
        batch,
        keep,
        label,
        quiet,
    }
}

/// `n` images of a dataset split (a seeded subset when smaller than the split) run
/// through `fx`: a `folder:` dataset's files at their own size, other datasets as they
/// load.
fn extract_dataset(
    spec: &DatasetSpec,
    split: Split,
    data_dir: &Path,
    n: Option<usize>,
    seed: u64,
    fx: &mut Extractor,
    opts: &ExtractOptions,
) -> Result<Extracted> {
    match spec {
        DatasetSpec::Folder(path) => {
            let files = data::folder_split(path, split)?.files;
            extract(&mut FileImages::subset(files, n, seed), fx, opts)
        }
        _ => {
            let set = data::load(spec, split, data_dir, None)?;
            extract(&mut DatasetImages::new(&set, n, seed), fx, opts)
        }
    }
}

/// Computes reference statistics of a dataset split or image folder.
pub fn stats(a: StatsArgs) -> Result<()> {
    let spec: DatasetSpec = a.dataset.parse()?;
    let split: Split = a.split.parse()?;
    let data_dir = data::resolve_data_dir(a.data_dir.as_deref());
    let dev = a.common.setup()?;
    let mut fx = a.extractor.open(&a.common, dev, a.resize_mode)?;
    let mode = fx.resize_mode();
    tracing::info!(dataset = %spec, split = %a.split, extractor = %fx.describe(), resize = %mode, "computing statistics");
    let keep = if a.no_features {
        KeepRows::WhileSmall
    } else {
        KeepRows::All
    };
    let opts = options(format!("{spec} {split}"), keep, a.common.quiet, a.extractor.batch);
    let ex = extract_dataset(&spec, split, &data_dir, a.n, a.seed, &mut fx, &opts)?;
    // finalize() logs its own warnings (e.g. fewer samples than feature dimensions).
    let g = ex.features.stats.finalize()?;
    let features = if a.no_features {
        None
    } else {
        ex.features.rows.as_deref()
    };
    pagan_shared::write_stats_npz_with_features(&a.out, &g, Some(mode.as_str()), features)?;
    println!(
        "wrote {} ({} images of {spec} {split}, resize {mode}, {:.1} s, {:.1} images/s)",
        a.out.display(),
        ex.features.n(),
        ex.seconds,
        ex.rate()
    );
    Ok(())
}

/// `fid` arguments.
#[derive(Args)]
pub struct FidArgs {
    /// What to score: a run folder (its newest checkpoint), an exported model folder
    /// (generator.onnx), a folder of PNG/JPEG files (each at its own size), or a dataset
    /// (mnist, fashion-mnist, ..., folder:PATH) with --split.
    target: String,
    /// Reference statistics (.npz with mu and sigma; ours or pytorch-fid's).
    #[arg(long)]
    reference: PathBuf,
    /// Number of images to generate (or at most to take from images or a dataset).
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Seed of the latents (or of the dataset subset).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also compute KID ± std (needs a reference written by `pagan-train stats`, which stores features).
    #[arg(long)]
    kid: bool,
    /// Split of a dataset target.
    #[arg(long, default_value = "train")]
    split: String,
    /// Resize convention (default: the one recorded in the reference, else asymmetric).
    #[arg(long)]
    resize_mode: Option<ResizeMode>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Data folder for dataset targets (default: $PAGAN_DATA, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    extractor: ExtractorArgs,
    #[command(flatten)]
    common: Common,
}

/// The mode to use: explicit flag, else the reference's, else TF1.
fn pick_mode(flag: Option<ResizeMode>, recorded: Option<&str>) -> Result<ResizeMode> {
    let recorded = recorded
        .map(|m| m.parse::<ResizeMode>().map_err(anyhow::Error::msg))
        .transpose()?;
    Ok(match (flag, recorded) {
        (Some(f), Some(r)) if f != r => {
            tracing::warn!(
                "reference was computed with resize {r}, scoring with {f}: values are not comparable"
            );
            f
        }
        (Some(f), _) => f,
        (None, Some(r)) => r,
        (None, None) => ResizeMode::Asymmetric,
    })
}

/// Scores a generator or image set against reference statistics.
pub fn fid(a: FidArgs) -> Result<()> {
    let reference = pagan_shared::read_stats_npz(&a.reference)?;
    let mode = pick_mode(a.resize_mode, reference.resize_mode.as_deref())?;
    let ref_features = if a.kid {
        let f = pagan_shared::read_features_npz(&a.reference)?;
        if f.is_none() {
            bail!(
                "--kid needs the reference's features, and {} has only mu/sigma; write one with \
                 `pagan-train stats` (it stores them)",
                a.reference.display()
            );
        }
        f.map(|(v, _)| v)
    } else {
        None
    };
    let dev = a.common.setup()?;
    let mut fx = a.extractor.open(&a.common, dev, mode)?;
    let mode = fx.resize_mode();
    let keep = if a.kid {
        KeepRows::All
    } else {
        KeepRows::WhileSmall
    };
    let opts = options(a.target.clone(), keep, a.common.quiet, a.extractor.batch);
    let target = Path::new(&a.target);
    let ex: Extracted = if RunDir::is_run(target) {
        let (_cfg, _meta, gan) = RunDir::at(target).load_gan(dev)?;
        extract(&mut GeneratedImages::new(&gan, a.n, a.seed), &mut fx, &opts)?
    } else if target.join(MANIFEST_FILE).is_file() {
        extract(
            &mut OnnxGeneratedImages::open(target, a.n, a.seed)?,
            &mut fx,
            &opts,
        )?
    } else if target.is_dir() {
        let mut files = data::image_files(target)?;
        files.truncate(a.n);
        extract(&mut FileImages::new(files), &mut fx, &opts)?
    } else {
        let spec: DatasetSpec = a.target.parse().with_context(|| {
            format!(
                "{} is not a run folder (config.json), a model folder (manifest.json), an image folder or a dataset",
                a.target
            )
        })?;
        let data_dir = data::resolve_data_dir(a.data_dir.as_deref());
        extract_dataset(
            &spec,
            a.split.parse()?,
            &data_dir,
            Some(a.n),
            a.seed,
            &mut fx,
            &opts,
        )?
    };
    let kid_cfg = pagan_shared::KidConfig::default();
    let reference_view = Reference {
        gaussian: &reference.gaussian,
        features: ref_features.as_deref(),
    };
    let s = score::score(&ex.features, reference_view, a.kid.then_some(&kid_cfg))?;
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        let v = serde_json::json!({
            "fid": s.fid,
            "kid": s.kid.as_ref().map(|k| k.mean),
            "kid_std": s.kid.as_ref().map(|k| k.std),
            "n": s.n,
            "reference": a.reference.display().to_string(),
            "reference_n": s.reference_n,
            "resize_mode": mode.as_str(),
            "extractor": fx.describe(),
            "seconds": ex.seconds,
        });
        println!("{v}");
        return Ok(());
    }
    let ref_n = s.reference_n.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    println!(
        "FID {:.4}  ({} images of {} vs {} ({} images); resize {mode}; {}; {:.1} s, {:.1} images/s)",
        s.fid,
        s.n,
        a.target,
        a.reference.display(),
        ref_n,
        fx.describe(),
        ex.seconds,
        ex.rate()
    );
    if let Some(k) = &s.kid {
        println!(
            "KID {:.6} ± {:.6}  ({} subsets of {})",
            k.mean,
            k.std,
            k.values.len(),
            k.subset_size
        );
    }
    Ok(())
}
