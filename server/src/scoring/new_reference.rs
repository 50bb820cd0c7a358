//! New references from uploads: statistics files (ours, pytorch-fid's, clean-fid's) are
//! checked and stored with the convention they were computed with; clean-fid's feature
//! rows (`feats`) become statistics; image sets (every format `/v1/fid` takes, ADM-style
//! `arr_0` archives included) run through the extractor, and their statistics and features
//! are stored, recording the resize convention used.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pagan_shared::features::{FeatureSink, KeepRows};
use pagan_shared::inception::{FEATURE_DIM, ResizeMode};
use pagan_shared::provenance::pick_resize;
use pagan_shared::{FeatureStats, NpzKind};

use super::upload::{Part, Upload};
use super::{ScoreError, archive};
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::models::{Extractor, ReferenceError};

/// What an upload to `/v1/references/{name}` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceUpload {
    /// One `.npz` of statistics or feature rows: stored without the extractor.
    Statistics(NpzKind),
    /// One `.npz` holding neither statistics nor feature rows: an image array, or nothing usable.
    ImageArray,
    /// Image files or archives: their features are computed.
    Images,
}

/// Sorts an upload: a single `.npz` of statistics or features, else an image set.
pub fn classify(up: &Upload) -> Result<ReferenceUpload, ScoreError> {
    if let [part] = up.parts.as_slice()
        && archive::sniff(part)? == archive::Kind::Npz
    {
        let kind = pagan_shared::npz_kind(&part.path).map_err(|e| ScoreError::BadNpz {
            label: part.label(),
            reason: e.to_string(),
        })?;
        if kind != NpzKind::Images {
            return Ok(ReferenceUpload::Statistics(kind));
        }
        return Ok(ReferenceUpload::ImageArray);
    }
    Ok(ReferenceUpload::Images)
}

/// The upload's statistics (or feature rows) as a statistics file of ours at a new path in
/// the upload's folder, with the convention recorded: the file's, else `requested`.
pub fn convert(up: &Upload, kind: NpzKind, requested: Option<ResizeMode>) -> Result<PathBuf, ReferenceError> {
    let part: &Part = up
        .parts
        .first()
        .ok_or_else(|| ReferenceError::Invalid("the request holds no file".into()))?;
    let out = up.dir.path().join("reference.npz");
    match kind {
        NpzKind::Statistics | NpzKind::Images => {
            let stats = pagan_shared::read_stats_npz(&part.path)?;
            let (mode, _) =
                pick_resize(stats.resize_mode.as_deref(), requested).map_err(ReferenceError::Invalid)?;
            let recorded = (stats.resize_mode.is_some() || requested.is_some()).then_some(mode.as_str());
            let features = pagan_shared::read_features_npz(&part.path)?;
            pagan_shared::write_stats_npz_with_features(
                &out,
                &stats.gaussian,
                recorded,
                features.as_ref().map(|(f, _)| f.as_slice()),
            )?;
        }
        NpzKind::Features => {
            let (rows, n, dim) = pagan_shared::read_feats_npz(&part.path)?;
            if dim != FEATURE_DIM {
                return Err(ReferenceError::Dimension(dim));
            }
            let mut stats = FeatureStats::new(dim)?;
            stats.add_rows(&rows, n)?;
            let g = stats.finalize()?;
            let recorded = requested.map(ResizeMode::as_str);
            pagan_shared::write_stats_npz_with_features(&out, &g, recorded, Some(&rows))?;
        }
    }
    Ok(out)
}

/// Runs every image of `up` through `extractor` in `mode` and writes their statistics and
/// features (and `mode`) to a new file in the upload's folder.
pub fn from_images(
    extractor: &Extractor,
    metrics: &Metrics,
    batch: usize,
    progress: &AtomicU64,
    up: &Upload,
    limits: &Limits,
    mode: ResizeMode,
) -> Result<PathBuf, ScoreError> {
    let mut run = extractor.run(metrics, mode);
    let mut sink = FeatureSink::new(&mut run, batch, KeepRows::All)?
        .on_progress(|d| progress.store(d, Ordering::Relaxed));
    archive::walk(up, limits, &mut |img| Ok(sink.push(img)?))?;
    let features = sink.finish()?;
    if features.n() < pagan_shared::score::MIN_IMAGES {
        return Err(ScoreError::TooFewImages { n: features.n() });
    }
    let g = features.stats.finalize()?;
    let out: PathBuf = up.dir.path().join("reference.npz");
    write(&out, &g, mode, features.rows.as_deref())?;
    Ok(out)
}

fn write(
    out: &Path,
    g: &pagan_shared::Gaussian,
    mode: ResizeMode,
    rows: Option<&[f32]>,
) -> Result<(), ScoreError> {
    pagan_shared::write_stats_npz_with_features(out, g, Some(mode.as_str()), rows)
        .map_err(|e| ScoreError::Statistics(e.to_string()))
}
