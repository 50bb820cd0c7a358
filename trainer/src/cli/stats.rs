//! `pagan-train stats`: reference statistics of a dataset split, an image folder, a zip or
//! tar of images, an `.npz` of images (ADM-style `arr_0` too), or converted from
//! pytorch-fid's and clean-fid's statistics and feature files, with the resize convention
//! recorded: every input `POST /v1/references/{name}` takes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use pagan_shared::features::KeepRows;
use pagan_shared::provenance::pick_resize;
use pagan_shared::{NpzKind, ResizeMode};
use pagan_trainer::data::{self, DatasetSpec, Split};
use pagan_trainer::fid::extract;
use pagan_trainer::fid::sources::{ArchiveImages, ArrayImages};

use super::fid::{ExtractorArgs, extract_dataset, options};
use super::{Common, usage};

/// `stats` arguments.
#[derive(Args)]
pub struct StatsArgs {
    /// Dataset: mnist, fashion-mnist, cifar10, celeba, or folder:PATH (its files at their own size).
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
    dataset: Option<String>,
    /// Instead of a dataset: a file to turn into a reference: an .npz of uint8 images (member `images` or
    /// ADM-style `arr_0`), of statistics (mu/sigma from pytorch-fid or clean-fid, recorded with --resize-mode
    /// when given) or of clean-fid's feature rows (`feats`); or a zip or tar of PNG/JPEG files.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Split: train or test.
    #[arg(long, default_value = "test", conflicts_with = "from")]
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
    /// Resize convention, recorded in the file: asymmetric (TF1, the paper's; torch-fidelity; the default
    /// for images), half_pixel (pytorch-fid) or clean (clean-fid's default: PIL bicubic on floats). For a
    /// statistics or feature file: the convention it was computed with, if it does not record one.
    #[arg(long)]
    resize_mode: Option<ResizeMode>,
    /// Do not store the raw features (smaller file; KID and precision/recall against it are then impossible).
    #[arg(long)]
    no_features: bool,
    /// Data folder (default: $PAGAN_DATA, else ./data).
    #[arg(long, conflicts_with = "from")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    extractor: ExtractorArgs,
    #[command(flatten)]
    common: Common,
}

/// Computes reference statistics of a dataset split, an image folder or an `.npz`.
pub fn stats(a: StatsArgs) -> Result<()> {
    let is_npz = a
        .from
        .as_deref()
        .is_some_and(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")));
    if let Some(from) = a.from.as_deref().filter(|_| is_npz) {
        let kind = pagan_shared::npz_kind(from)?;
        if kind != NpzKind::Images && a.n.is_some() {
            return Err(usage(format!(
                "{}: --n picks images, and this file holds statistics or feature rows",
                from.display()
            )));
        }
        match kind {
            NpzKind::Statistics => return convert_statistics(&a, from),
            NpzKind::Features => return statistics_from_feature_rows(&a, from),
            NpzKind::Images => {}
        }
    }
    // Names are checked before the extractor loads: a typo should not cost a model load.
    let dataset = match &a.dataset {
        Some(d) => Some((d.parse::<DatasetSpec>()?, a.split.parse::<Split>()?)),
        None => None,
    };
    let mode = a.resize_mode.unwrap_or_default();
    let dev = a.common.setup()?;
    let mut fx = a.extractor.open(&a.common, dev, mode)?;
    let keep = if a.no_features {
        KeepRows::WhileSmall
    } else {
        KeepRows::All
    };
    let (ex, what) = match (&a.from, &a.dataset) {
        (Some(from), _) => {
            let label = from.display().to_string();
            tracing::info!(images = %label, extractor = %fx.describe(), resize = %mode, "computing statistics");
            let opts = options(label.clone(), keep, a.common.quiet, a.extractor.batch);
            let ex = if is_npz {
                extract(&mut ArrayImages::open(from, a.n, a.seed)?, &mut fx, &opts)?
            } else if ArchiveImages::is_archive(from) {
                extract(&mut ArchiveImages::open(from, a.n, a.seed)?, &mut fx, &opts)?
            } else if !from.exists() {
                return Err(usage(format!("--from {label}: no such file")));
            } else {
                return Err(usage(format!(
                    "{label}: --from takes an .npz (images, statistics or feature rows), a zip or a tar of \
                     PNG/JPEG files; for a folder use --dataset folder:PATH"
                )));
            };
            (ex, label)
        }
        (None, Some(_)) => {
            let (spec, split) = dataset.clone().context("the dataset was parsed above")?;
            let data_dir = data::resolve_data_dir(a.data_dir.as_deref());
            tracing::info!(dataset = %spec, split = %a.split, extractor = %fx.describe(), resize = %mode, "computing statistics");
            let opts = options(format!("{spec} {split}"), keep, a.common.quiet, a.extractor.batch);
            let ex = extract_dataset(&spec, split, &data_dir, a.n, a.seed, &mut fx, &opts)?;
            (ex, format!("{spec} {split}"))
        }
        (None, None) => bail!("give --dataset or --from"),
    };
    // finalize() logs its own warnings (e.g. fewer samples than feature dimensions).
    let g = ex.features.stats.finalize()?;
    let features = if a.no_features {
        None
    } else {
        ex.features.rows.as_deref()
    };
    pagan_shared::write_stats_npz_with_features(&a.out, &g, Some(mode.as_str()), features)?;
    println!(
        "wrote {} ({} images of {what}, resize {mode}, {:.1} s, {:.1} images/s)",
        a.out.display(),
        ex.features.n(),
        ex.seconds,
        ex.rate()
    );
    Ok(())
}

/// A statistics file (ours, pytorch-fid's, clean-fid's) rewritten in our format, with the
/// convention it was computed with recorded (from the file, else `--resize-mode`).
fn convert_statistics(a: &StatsArgs, from: &Path) -> Result<()> {
    let stats = pagan_shared::read_stats_npz(from)?;
    let (mode, _) = pick_resize(stats.resize_mode.as_deref(), a.resize_mode)
        .map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))?;
    let recorded = (stats.resize_mode.is_some() || a.resize_mode.is_some()).then_some(mode.as_str());
    let features = if a.no_features {
        None
    } else {
        pagan_shared::read_features_npz(from)?.map(|(v, _)| v)
    };
    pagan_shared::write_stats_npz_with_features(&a.out, &stats.gaussian, recorded, features.as_deref())?;
    println!(
        "wrote {} (statistics of {}: n {}, resize {}{})",
        a.out.display(),
        from.display(),
        stats
            .gaussian
            .n
            .map_or_else(|| "not recorded".to_owned(), |n| n.to_string()),
        recorded.unwrap_or("not recorded (pass --resize-mode to record it)"),
        if features.is_some() { ", with features" } else { "" }
    );
    Ok(())
}

/// Statistics of feature rows (clean-fid's `feats` files), rows kept unless `--no-features`.
fn statistics_from_feature_rows(a: &StatsArgs, from: &Path) -> Result<()> {
    let (rows, n, dim) = pagan_shared::read_feats_npz(from)?;
    let mut stats = pagan_shared::FeatureStats::new(dim)?;
    stats.add_rows(&rows, n)?;
    let g = stats.finalize()?;
    let recorded = a.resize_mode.map(ResizeMode::as_str);
    let features = (!a.no_features).then_some(rows.as_slice());
    pagan_shared::write_stats_npz_with_features(&a.out, &g, recorded, features)?;
    println!(
        "wrote {} (statistics of {n} feature rows of width {dim} from {}, resize {})",
        a.out.display(),
        from.display(),
        recorded.unwrap_or("not recorded (pass --resize-mode to record it)")
    );
    Ok(())
}
