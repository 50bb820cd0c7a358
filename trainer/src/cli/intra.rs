//! `pagan-train intra-fid`: intra-class FID of a class-conditional run.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use pagan_shared::ResizeMode;
use pagan_shared::features::KeepRows;
use pagan_trainer::data::{self, DatasetSpec};
use pagan_trainer::fid::intra::{IntraOptions, intra_class_fid};
use pagan_trainer::run_dir::RunDir;

use super::fid::{ExtractorArgs, options};
use super::{Common, usage};

/// `intra-fid` arguments.
#[derive(Args)]
pub struct IntraFidArgs {
    /// Run folder of a class-conditional run (trained with --cond).
    run: PathBuf,
    /// Generated images per class.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Reference images per class, at most (a seeded subset of the split's images of that class).
    #[arg(long, default_value_t = 1000)]
    reference_n: usize,
    /// Split of the run's dataset the per-class reference statistics come from.
    #[arg(long, default_value = "test")]
    split: String,
    /// Seed of the latents (the same z for every class) and of the reference subsets.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Resize convention before Inception (default: the run's evaluation convention).
    #[arg(long)]
    resize_mode: Option<ResizeMode>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Data folder (default: the run's, else $PAGAN_DATA, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    extractor: ExtractorArgs,
    #[command(flatten)]
    common: Common,
}

/// Per-class FIDs of a conditional run against its dataset's per-class images, and their mean.
pub fn intra_fid(a: IntraFidArgs) -> Result<()> {
    if a.n < 2 || a.reference_n < 2 {
        return Err(usage(
            "--n and --reference-n must be at least 2 (FID needs a covariance)",
        ));
    }
    let dev = a.common.setup()?;
    let (cfg, _meta, gan) = RunDir::at(&a.run).load_gan(dev)?;
    let Some(cond) = cfg.cond.as_ref() else {
        return Err(usage(format!(
            "{} is not a class-conditional run (train with --cond)",
            a.run.display()
        )));
    };
    let spec: DatasetSpec = cfg.dataset.parse()?;
    if let Some(why) = spec.class_mismatch(&cond.classes) {
        bail!("{why}");
    }
    let data_dir = a.data_dir.clone().unwrap_or_else(|| PathBuf::from(&cfg.data_dir));
    let set = data::load(&spec, a.split.parse()?, &data_dir, None)
        .with_context(|| format!("loading the {} split of {spec}", a.split))?;
    let resize = a.resize_mode.unwrap_or(cfg.eval.resize_mode);
    let mut fx = a.extractor.open(&a.common, dev, resize)?;
    let opts = options(
        "intra-class FID".into(),
        KeepRows::WhileSmall,
        a.common.quiet,
        a.extractor.batch,
    );
    let o = IntraOptions {
        n: a.n,
        reference_n: a.reference_n,
        seed: a.seed,
    };
    let r = intra_class_fid(&gan, &cond.classes, &set, o, &mut fx, &opts)?;
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["run"] = a.run.display().to_string().into();
        v["split"] = a.split.clone().into();
        v["resize_mode"] = resize.as_str().into();
        v["extractor"] = fx.describe().into();
        println!("{v}");
        return Ok(());
    }
    println!(
        "{:>5}  {:<20} {:>10} {:>6} {:>8}",
        "label", "class", "FID", "n", "ref n"
    );
    for c in &r.classes {
        println!(
            "{:>5}  {:<20} {:>10.4} {:>6} {:>8}",
            c.label, c.class, c.fid, c.n, c.reference_n
        );
    }
    println!(
        "intra-class FID {:.4}  (mean over {} classes; {} split of {spec}; resize {resize}; {})",
        r.mean,
        r.classes.len(),
        a.split,
        fx.describe()
    );
    Ok(())
}
