//! `pagan-train export-inception` and `fid`: the FID tooling on the command line (`stats`
//! is in `stats.rs`).
//! Every image set goes through the same path (`pagan_trainer::fid::sources` at native
//! size -> the shared feature sink -> `pagan_shared::score`) as training-time evaluation
//! and the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use pagan_shared::KidConfig;
use pagan_shared::ResizeMode;
use pagan_shared::features::{FeatureExtractor, KeepRows};
use pagan_shared::manifest::MANIFEST_FILE;
use pagan_shared::prdc::PrdcConfig;
use pagan_shared::provenance::pick_resize;
use pagan_shared::score::{self, Reference, ScoreOptions, ScoreReport};
use pagan_shared::uncertainty::{BootstrapConfig, FidInfinityConfig};
use pagan_trainer::data::{self, DatasetSpec, Split};
use pagan_trainer::export;
use pagan_trainer::fid::inception::Inception;
use pagan_trainer::fid::sources::{DatasetImages, FileImages, GeneratedImages, OnnxGeneratedImages};
use pagan_trainer::fid::{DEFAULT_BATCH, ExtractOptions, Extracted, Extractor, extract};
use pagan_trainer::run_dir::RunDir;

use super::{Common, usage};

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
    pub(super) batch: usize,
}

impl ExtractorArgs {
    /// The extractor; `dev` is the device `Common::setup` resolved (used by the tch backend).
    pub(super) fn open(&self, common: &Common, dev: tch::Device, mode: ResizeMode) -> Result<Extractor> {
        Ok(match self.backend {
            Backend::Tch => {
                let w = self
                    .inception_weights
                    .clone()
                    .unwrap_or_else(pagan_trainer::config::default_inception_weights);
                Extractor::Tch(Inception::load(&w, dev, mode)?)
            }
            Backend::Onnx => {
                let threads = common.threads.map(|t| t as usize).unwrap_or(0);
                // Another convention than the graph's is applied before it (exact: the
                // graph's own 299 -> 299 resize is then the identity).
                Extractor::open_onnx(&self.inception, threads, mode)?
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
    /// Resize convention built into the graph: asymmetric (TF1, as the paper) or half_pixel (pytorch-fid);
    /// clean (clean-fid) is not a graph convention: it is applied before either graph.
    #[arg(long, default_value = "asymmetric")]
    resize_mode: ResizeMode,
    /// Inception weights (default: $PAGAN_INCEPTION_WEIGHTS, else the setup's file).
    #[arg(long)]
    inception_weights: Option<PathBuf>,
}

/// Writes the feature extractor's ONNX model folder.
pub fn export_inception(a: ExportInceptionArgs) -> Result<()> {
    let w = a
        .inception_weights
        .unwrap_or_else(pagan_trainer::config::default_inception_weights);
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

pub(super) fn options(label: String, keep: KeepRows, quiet: bool, batch: usize) -> ExtractOptions {
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
pub(super) fn extract_dataset(
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

/// `fid` arguments.
#[derive(Args)]
pub struct FidArgs {
    /// What to score: a run folder (its newest checkpoint), an exported model folder
    /// (generator.onnx), a folder of PNG/JPEG files (each at its own size), or a dataset
    /// (mnist, fashion-mnist, ..., folder:PATH) with --split.
    target: String,
    /// Reference statistics (.npz with mu and sigma: ours, pytorch-fid's or clean-fid's).
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
    /// Also compute precision/recall (k = 3, Kynkäänniemi et al.) and density/coverage (k = 5, Naeem et
    /// al.) on the Inception pool3 features (needs a reference that stores features).
    #[arg(long)]
    prdc: bool,
    /// A bootstrap confidence interval (95%) of FID from this many resamples of the scored set, the
    /// reference fixed (0 = none; each resample costs about one FID).
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Also FID-infinity: FID of subsets of several sizes, extrapolated linearly in 1/N to N = infinity
    /// (Chong & Forsyth 2020).
    #[arg(long)]
    fid_infinity: bool,
    /// Split of a dataset target (default: train).
    #[arg(long)]
    split: Option<String>,
    /// Resize convention (default: the one recorded in the reference, else asymmetric; one that differs
    /// from the recorded one is refused).
    #[arg(long)]
    resize_mode: Option<ResizeMode>,
    /// Print one JSON object (the scores and their provenance) instead of text.
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

/// The score options the flags ask for (the seeds follow `--seed`).
fn score_options(a: &FidArgs) -> ScoreOptions {
    ScoreOptions {
        kid: a.kid.then(KidConfig::default),
        prdc: a.prdc.then(PrdcConfig::default),
        bootstrap: (a.bootstrap > 0).then(|| BootstrapConfig {
            resamples: a.bootstrap,
            seed: a.seed,
            ..BootstrapConfig::default()
        }),
        fid_infinity: a.fid_infinity.then(|| FidInfinityConfig {
            seed: a.seed,
            ..FidInfinityConfig::default()
        }),
    }
}

/// What `fid` scores.
enum Target {
    /// A run folder: its newest checkpoint generates.
    Run,
    /// An exported model folder: its generator.onnx generates.
    Model,
    /// A folder of image files.
    Images,
    /// A dataset split.
    Dataset(DatasetSpec),
}

impl Target {
    fn describe(&self) -> &'static str {
        match self {
            Self::Run => "a run folder",
            Self::Model => "a model folder",
            Self::Images => "an image folder",
            Self::Dataset(_) => "a dataset",
        }
    }
}

/// Scores a generator or image set against reference statistics.
pub fn fid(a: FidArgs) -> Result<()> {
    if a.bootstrap == 1 {
        return Err(usage("--bootstrap needs at least 2 resamples (0 = none)"));
    }
    let reference = pagan_shared::read_stats_npz(&a.reference)?;
    let reference_sha256 = pagan_shared::manifest::sha256_hex(
        &std::fs::read(&a.reference).with_context(|| format!("reading {}", a.reference.display()))?,
    );
    let resize = pick_resize(reference.resize_mode.as_deref(), a.resize_mode)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.reference.display()))?;
    let opts = score_options(&a);
    let ref_features = if opts.needs_reference_features() {
        let f = pagan_shared::read_features_npz(&a.reference)?;
        if f.is_none() {
            bail!(
                "--kid and --prdc need the reference's features, and {} has only mu/sigma; write one with \
                 `pagan-train stats` (it stores them)",
                a.reference.display()
            );
        }
        f.map(|(v, _)| v)
    } else {
        None
    };
    let target = Path::new(&a.target);
    let kind = if RunDir::is_run(target) {
        Target::Run
    } else if target.join(MANIFEST_FILE).is_file() {
        Target::Model
    } else if target.is_dir() {
        Target::Images
    } else {
        Target::Dataset(a.target.parse().with_context(|| {
            format!(
                "{} is not a run folder (config.json), a model folder (manifest.json), an image folder or a dataset",
                a.target
            )
        })?)
    };
    // A flag that would be ignored is refused: the user meant something else.
    if !matches!(kind, Target::Dataset(_)) {
        for (flag, given) in [
            ("--split", a.split.is_some()),
            ("--data-dir", a.data_dir.is_some()),
        ] {
            if given {
                return Err(usage(format!(
                    "{flag} applies to dataset targets (mnist, fashion-mnist, ..., folder:PATH); {} is {}",
                    a.target,
                    kind.describe()
                )));
            }
        }
    }
    let split: Split = a.split.as_deref().unwrap_or("train").parse()?;
    let dev = a.common.setup()?;
    let mut fx = a.extractor.open(&a.common, dev, resize.0)?;
    // Before any image is generated or read: a reference of another width cannot be scored.
    if reference.gaussian.dim() != fx.dim() {
        return Err(usage(format!(
            "{} holds {}-d statistics and the extractor gives {}-d features (Inception pool3); write a \
             reference with `pagan-train stats`",
            a.reference.display(),
            reference.gaussian.dim(),
            fx.dim()
        )));
    }
    let opts_keep = opts.keep_rows();
    let run_opts = options(a.target.clone(), opts_keep, a.common.quiet, a.extractor.batch);
    let ex: Extracted = match kind {
        Target::Run => {
            let (_cfg, _meta, gan) = RunDir::at(target).load_gan(dev)?;
            extract(&mut GeneratedImages::new(&gan, a.n, a.seed), &mut fx, &run_opts)?
        }
        Target::Model => extract(
            &mut OnnxGeneratedImages::open(target, a.n, a.seed)?,
            &mut fx,
            &run_opts,
        )?,
        Target::Images => {
            let mut files = data::image_files(target)?;
            files.truncate(a.n);
            extract(&mut FileImages::new(files), &mut fx, &run_opts)?
        }
        Target::Dataset(spec) => {
            let data_dir = data::resolve_data_dir(a.data_dir.as_deref());
            extract_dataset(&spec, split, &data_dir, Some(a.n), a.seed, &mut fx, &run_opts)?
        }
    };
    let reference_view = Reference {
        gaussian: &reference.gaussian,
        features: ref_features.as_deref(),
    };
    let report =
        score::score(&ex.features, reference_view, &opts)?.report(fx.info(), resize, Some(reference_sha256));
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["reference"] = a.reference.display().to_string().into();
        v["resize_mode"] = resize.0.as_str().into();
        v["extractor"] = fx.describe().into();
        v["seconds"] = ex.seconds.into();
        println!("{v}");
        return Ok(());
    }
    print_report(&report, &a, &fx, &ex);
    Ok(())
}

/// The text form of a score.
fn print_report(r: &ScoreReport, a: &FidArgs, fx: &Extractor, ex: &Extracted) {
    let ref_n = r.reference_n.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    let mode = r.provenance.resize_mode;
    println!(
        "FID {:.4}  ({} images of {} vs {} ({} images); resize {mode}; {}; {:.1} s, {:.1} images/s)",
        r.fid,
        r.n,
        a.target,
        a.reference.display(),
        ref_n,
        fx.describe(),
        ex.seconds,
        ex.rate()
    );
    if let Some(ci) = &r.fid_ci {
        println!(
            "FID {:.0}% interval [{:.4}, {:.4}]  (bootstrap std {:.4}, {} resamples of the scored set, reference fixed)",
            ci.level * 100.0,
            ci.low,
            ci.high,
            ci.std,
            ci.resamples
        );
    }
    if let Some(fi) = &r.fid_infinity {
        println!(
            "FID-infinity {:.4}  (slope {:.1} in 1/N, R² {:.3}, {} subset sizes from {} to {})",
            fi.fid_infinity,
            fi.slope,
            fi.r_squared,
            fi.points.len(),
            fi.points.first().map_or(0, |p| p.n),
            fi.points.last().map_or(0, |p| p.n)
        );
    }
    if let (Some(k), Some(s)) = (r.kid, r.kid_std) {
        println!("KID {k:.6} ± {s:.6}");
    }
    if let Some(p) = &r.prdc {
        println!(
            "precision {:.4}  recall {:.4}  (k = {})   density {:.4}  coverage {:.4}  (k = {})",
            p.precision, p.recall, p.k_precision_recall, p.density, p.coverage, p.k_density_coverage
        );
    }
    println!("comparable with: {}", r.provenance.comparable_with.join("; "));
}
