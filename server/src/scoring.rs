//! FID/KID scoring: images are grouped by size into batches for the feature extractor,
//! features stream into `FeatureStats` (and are kept for KID when asked, or while the set
//! is small enough for the cheaper Gram form of the Frechet distance), and the result is
//! compared with a reference.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pagan_shared::{FeatureStats, KidConfig, StatsError, frechet_distance, frechet_terms_from_features, kid};
use serde::Serialize;

use crate::decode::Image;
use crate::errors::ApiError;
use crate::metrics::Metrics;
use crate::registry::{Extractor, FEATURE_DIM, Reference};

/// Bytes of decoded images held back while waiting for batch-mates of the same size;
/// above it the largest group runs early, so odd sizes cannot pile up.
const PENDING_BYTES: usize = 256 << 20;

/// Scores for one image set against one reference (the `/v1/fid` response).
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// Frechet Inception Distance.
    pub fid: f64,
    /// KID (mean over subsets), when asked for.
    pub kid: Option<f64>,
    /// Spread of KID over subsets, when asked for.
    pub kid_std: Option<f64>,
    /// Images scored.
    pub n: u64,
    /// Reference name.
    pub reference: String,
    /// Resize convention of the extractor graph.
    pub resize_mode: String,
    /// Provider the extractor ran on.
    pub provider: String,
    /// Wall seconds spent.
    pub seconds: f64,
    /// Caveats, e.g. too few images for a full-rank covariance.
    pub warnings: Vec<String>,
}

fn stats_err(e: StatsError) -> ApiError {
    match e {
        StatsError::TooFewSamples { n, needed } => ApiError::unprocessable(
            "too_few_images",
            format!("need at least {needed} images to score, got {n}"),
        ),
        other => ApiError::unprocessable("scoring_failed", other.to_string()),
    }
}

/// Accumulates features of images pushed one by one.
pub struct FeatureSink<'a> {
    extractor: &'a Extractor,
    metrics: &'a Metrics,
    batch: usize,
    groups: BTreeMap<(usize, usize), Vec<Image>>,
    pending: usize,
    stats: FeatureStats,
    /// Raw features: all of them for KID (`keep_all`), else only while at most
    /// FEATURE_DIM rows (bounded: 16 MiB), for the Gram-form FID.
    features: Option<Vec<f32>>,
    keep_all: bool,
    progress: Option<Arc<AtomicU64>>,
}

impl<'a> FeatureSink<'a> {
    /// A sink running batches of `batch`; keeps every raw feature when `keep` (for KID).
    pub fn new(
        extractor: &'a Extractor,
        metrics: &'a Metrics,
        batch: usize,
        keep: bool,
        progress: Option<Arc<AtomicU64>>,
    ) -> Result<Self, ApiError> {
        Ok(FeatureSink {
            extractor,
            metrics,
            batch: batch.max(1),
            groups: BTreeMap::new(),
            pending: 0,
            stats: FeatureStats::new(FEATURE_DIM).map_err(|e| ApiError::internal(e.to_string()))?,
            features: Some(Vec::new()),
            keep_all: keep,
            progress,
        })
    }

    /// Queues one image; runs its size group when it is a full batch.
    pub fn push(&mut self, img: Image) -> Result<(), ApiError> {
        let key = (img.height, img.width);
        self.pending += img.pixels.len();
        let group = self.groups.entry(key).or_default();
        group.push(img);
        if group.len() >= self.batch {
            self.flush(key)?;
        }
        while self.pending > PENDING_BYTES {
            let largest = self
                .groups
                .iter()
                .max_by_key(|(_, g)| g.iter().map(|i| i.pixels.len()).sum::<usize>())
                .map(|(k, _)| *k);
            match largest {
                Some(k) => self.flush(k)?,
                None => break,
            }
        }
        Ok(())
    }

    fn flush(&mut self, key: (usize, usize)) -> Result<(), ApiError> {
        let Some(images) = self.groups.remove(&key) else {
            return Ok(());
        };
        if images.is_empty() {
            return Ok(());
        }
        let (h, w) = key;
        let plane = h * w;
        let n = images.len();
        // [n, 3, h, w] in 0..255; grey images are replicated to the three channels.
        let mut input = vec![0f32; n * 3 * plane];
        for (img, out) in images.iter().zip(input.chunks_exact_mut(3 * plane)) {
            self.pending -= img.pixels.len();
            for ch in 0..3 {
                let src = if img.channels == 1 { 0 } else { ch };
                let dst = &mut out[ch * plane..(ch + 1) * plane];
                for (d, px) in dst
                    .iter_mut()
                    .zip(img.pixels.iter().skip(src).step_by(img.channels))
                {
                    *d = f32::from(*px);
                }
            }
        }
        let feats = self
            .extractor
            .features(&input, n, h, w, self.metrics)
            .map_err(|e| ApiError::internal(format!("feature extractor: {e}")))?;
        self.stats
            .add_rows(&feats, n)
            .map_err(|e| ApiError::unprocessable("scoring_failed", e.to_string()))?;
        if let Some(all) = self.features.as_mut() {
            all.extend_from_slice(&feats);
            if !self.keep_all && all.len() > FEATURE_DIM * FEATURE_DIM {
                // Past d rows the general path is the cheaper one: stop keeping them.
                self.features = None;
            }
        }
        self.metrics.images_scored.inc_by(n as u64);
        if let Some(p) = &self.progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs every remaining group; returns the statistics and the raw features (all of
    /// them with `keep`, else those of a set of at most FEATURE_DIM images).
    pub fn finish(mut self) -> Result<(FeatureStats, Option<Vec<f32>>), ApiError> {
        let keys: Vec<_> = self.groups.keys().copied().collect();
        for k in keys {
            self.flush(k)?;
        }
        Ok((self.stats, self.features))
    }
}

/// Compares accumulated features with `reference`: FID always (through the features'
/// Gram form when there are at most FEATURE_DIM of them, the same value for far less
/// work), KID when `want_kid` (needs every feature, and the reference's).
pub fn compare(
    stats: &FeatureStats,
    features: Option<&[f32]>,
    want_kid: bool,
    reference: &Reference,
    extractor: &Extractor,
    started: std::time::Instant,
) -> Result<Score, ApiError> {
    if stats.n() < 2 {
        return Err(ApiError::unprocessable(
            "too_few_images",
            format!("need at least 2 images to score, got {}", stats.n()),
        ));
    }
    let gaussian = stats.finalize().map_err(stats_err)?;
    let fid = match features {
        // The sink keeps features only for sets it holds whole: every row, for KID, or
        // every row of a set of at most FEATURE_DIM.
        Some(x) if stats.n() as usize <= FEATURE_DIM => {
            frechet_terms_from_features(x, FEATURE_DIM, &reference.gaussian)
                .map_err(stats_err)?
                .distance
        }
        _ => frechet_distance(&gaussian, &reference.gaussian).map_err(stats_err)?,
    };
    let (kid_mean, kid_std) = match features.filter(|_| want_kid) {
        None => (None, None),
        Some(x) => {
            let (y, _) = reference
                .features
                .as_ref()
                .ok_or_else(|| no_features(&reference.name))?;
            let r = kid(x, y, FEATURE_DIM, &KidConfig::default()).map_err(stats_err)?;
            (Some(r.mean), Some(r.std))
        }
    };
    Ok(Score {
        fid,
        kid: kid_mean,
        kid_std,
        n: stats.n(),
        reference: reference.name.clone(),
        resize_mode: extractor.manifest.resize_mode.as_str().to_owned(),
        provider: extractor.provider.as_str().to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        warnings: gaussian.warnings.iter().map(|w| w.to_string()).collect(),
    })
}

/// The 422 for KID against a reference without stored features.
pub fn no_features(name: &str) -> ApiError {
    ApiError::unprocessable(
        "reference_has_no_features",
        format!("reference `{name}` stores no features, so KID cannot be computed (FID still can)"),
    )
}

/// Checks before any work that `reference` can be compared with this extractor.
pub fn check_reference(reference: &Reference, extractor: &Extractor, want_kid: bool) -> Result<(), ApiError> {
    let ours = extractor.manifest.resize_mode.as_str();
    if let Some(theirs) = reference.resize_mode.as_deref()
        && theirs.parse::<pagan_shared::ResizeMode>().map(|m| m.as_str()) != Ok(ours)
    {
        return Err(ApiError::unprocessable(
            "resize_mode_mismatch",
            format!(
                "reference `{}` was computed with resize mode {theirs}, the extractor uses {ours}: the scores would not be comparable",
                reference.name
            ),
        ));
    }
    if want_kid && reference.features.is_none() {
        return Err(no_features(&reference.name));
    }
    Ok(())
}
