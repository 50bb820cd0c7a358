//! FID/KID scoring of uploaded image sets and served models. Images take the shared path
//! (`pagan_shared::features`: native size, grey replicated, batches of one size through
//! the extractor) and the shared policy (`pagan_shared::score`), exactly as in the
//! trainer. `archive` turns uploaded files into images, `jobs` runs large sets in the
//! background. Errors are this module's [`ScoreError`]; the HTTP layer maps them.

pub mod archive;
pub mod cache;
pub mod jobs;
pub mod new_reference;
mod npy_images;
pub mod upload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pagan_shared::FeatureStats;
use pagan_shared::StatsError;
use pagan_shared::features::{FeatureError, FeatureSink, Features, KeepRows};
use pagan_shared::images::{ImageError, from_model_batch};
use pagan_shared::inception::{FEATURE_DIM, ResizeMode};
use pagan_shared::score::{self, ScoreOptions, ScoreReport};
use serde::Serialize;

use crate::config::Limits;
use crate::metrics::Metrics;
use crate::models::runtime::RuntimeError;
use crate::models::{Extractor, Generator, Reference};
use cache::{FeatureCache, KeyBuilder};
use upload::Upload;

/// Scores for one image set against one reference (the `/v1/fid` response): the shared
/// report (numbers, warnings, provenance) plus where and how fast it ran.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// FID and what else was asked, the warnings and the provenance.
    #[serde(flatten)]
    pub report: ScoreReport,
    /// Reference name.
    pub reference: String,
    /// Resize convention the images were scored with (also in the provenance).
    pub resize_mode: String,
    /// Provider the extractor ran on.
    pub provider: String,
    /// Wall seconds spent.
    pub seconds: f64,
    /// True when the features came from the feature cache (same pixels scored before).
    pub cached: bool,
}

/// Why a set could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// An image file is not a PNG/JPEG, is damaged, or is too large.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// An uploaded file is none of the formats read.
    #[error("{0}: not a PNG, JPEG, zip, tar or .npz file")]
    UnsupportedFile(String),
    /// A zip or tar that cannot be read.
    #[error("{label}: {reason}")]
    CorruptArchive {
        /// The file.
        label: String,
        /// What failed.
        reason: String,
    },
    /// More images than allowed in one request.
    #[error("more than {0} images in one request (--max-images)")]
    TooManyImages(usize),
    /// More archive entries than allowed.
    #[error("{label}: more than {limit} archive entries (--max-archive-entries)")]
    TooManyEntries {
        /// The archive.
        label: String,
        /// The limit.
        limit: usize,
    },
    /// More uncompressed bytes than allowed in one archive.
    #[error("{label}: more than {limit} uncompressed bytes (--max-archive-bytes)")]
    ArchiveTooLarge {
        /// The archive.
        label: String,
        /// The limit.
        limit: u64,
    },
    /// An archive entry outside the archive (absolute or `..`).
    #[error("{label}: entry {entry:?} escapes the archive (absolute path or `..`)")]
    UnsafePath {
        /// The archive.
        label: String,
        /// The entry.
        entry: String,
    },
    /// An archive entry that is not a regular file.
    #[error("{label}: entry {entry:?} is {what}")]
    UnsupportedEntry {
        /// The archive.
        label: String,
        /// The entry.
        entry: String,
        /// What it is instead.
        what: &'static str,
    },
    /// A damaged `.npz`/`.npy` (header, data).
    #[error("{label}: {reason}")]
    BadNpz {
        /// The file.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// An `.npz` without the images member.
    #[error("{0}: expected a member `images` (or a single array) in the .npz")]
    NpzMember(String),
    /// An `.npy` image array that is not uint8.
    #[error("{label}: images must be uint8, the array has dtype {dtype}")]
    BadDtype {
        /// The file.
        label: String,
        /// Its dtype.
        dtype: String,
    },
    /// A Fortran-order array.
    #[error("{0}: Fortran-order arrays are not supported (use np.ascontiguousarray)")]
    FortranOrder(String),
    /// An image array of another shape than [N, H, W] or [N, H, W, C].
    #[error("{label}: {reason}")]
    BadShape {
        /// The file.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// No files, or files without images.
    #[error("the {0} holds no images")]
    EmptySet(&'static str),
    /// Fewer images than a score needs.
    #[error("need at least {} images to score, got {n}", score::MIN_IMAGES)]
    TooFewImages {
        /// Images given.
        n: u64,
    },
    /// KID or precision/recall against a reference without stored features.
    #[error(
        "reference `{0}` stores no features, so KID and precision/recall cannot be computed (FID still can)"
    )]
    NoReferenceFeatures(String),
    /// The features could not be accumulated or compared (e.g. non-finite values).
    #[error("{0}")]
    Statistics(String),
    /// The extractor or a generator failed: our fault.
    #[error("{0}")]
    Runtime(String),
    /// A reference built from an upload could not be stored.
    #[error(transparent)]
    Reference(#[from] crate::models::ReferenceError),
    /// Reading the upload from disk failed: our fault.
    #[error("reading the upload: {0}")]
    Io(#[from] std::io::Error),
}

impl From<FeatureError> for ScoreError {
    fn from(e: FeatureError) -> Self {
        match e {
            FeatureError::Stats(s) => Self::Statistics(s.to_string()),
            other => Self::Runtime(other.to_string()),
        }
    }
}

impl From<StatsError> for ScoreError {
    fn from(e: StatsError) -> Self {
        match e {
            StatsError::TooFewSamples { n, needed: 2 } => Self::TooFewImages { n },
            other => Self::Statistics(other.to_string()),
        }
    }
}

/// Checks before any work that `reference` can serve the scores `options` asks for.
pub fn check_reference(reference: &Reference, options: &ScoreOptions) -> Result<(), ScoreError> {
    if options.needs_reference_features() && reference.features.is_none() {
        return Err(ScoreError::NoReferenceFeatures(reference.name.clone()));
    }
    Ok(())
}

/// Everything a scoring run needs, shared by uploads and served models.
pub struct Scorer<'a> {
    /// The feature extractor.
    pub extractor: &'a Extractor,
    /// The reference.
    pub reference: &'a Reference,
    /// Metrics to record runs in.
    pub metrics: &'a Metrics,
    /// Images per extractor run.
    pub batch: usize,
    /// What to compute besides FID.
    pub options: ScoreOptions,
    /// Images done so far (polled by `/v1/jobs/{id}`).
    pub progress: &'a AtomicU64,
    /// Features of earlier uploads, if the cache is on.
    pub cache: Option<&'a FeatureCache>,
}

impl Scorer<'_> {
    /// Runs `feed` (which pushes every image into the sink) and scores the result.
    fn run(
        &self,
        keep: KeepRows,
        feed: impl FnOnce(&mut FeatureSink<'_>) -> Result<(), ScoreError>,
    ) -> Result<(Features, ResizeMode), ScoreError> {
        let mode = self.reference.resize().0;
        let mut run = self.extractor.run(self.metrics, mode);
        let progress = self.progress;
        let mut sink = FeatureSink::new(&mut run, self.batch, keep)?
            .on_progress(|d| progress.store(d, Ordering::Relaxed));
        feed(&mut sink)?;
        Ok((sink.finish()?, mode))
    }

    /// Scores extracted features.
    fn score(&self, features: &Features, started: Instant, cached: bool) -> Result<Score, ScoreError> {
        let resize = self.reference.resize();
        let s = score::score(features, self.reference.view(), &self.options).map_err(|e| match e {
            score::ScoreError::TooFewImages { n } => ScoreError::TooFewImages { n },
            score::ScoreError::NoReferenceFeatures => {
                ScoreError::NoReferenceFeatures(self.reference.name.clone())
            }
            score::ScoreError::Stats(s) => s.into(),
            other => ScoreError::Statistics(other.to_string()),
        })?;
        Ok(Score {
            report: s.report(
                self.extractor.info(resize.0),
                resize,
                Some(self.reference.sha256.clone()),
            ),
            reference: self.reference.name.clone(),
            resize_mode: resize.0.as_str().to_owned(),
            provider: self.extractor.provider.as_str().to_owned(),
            seconds: started.elapsed().as_secs_f64(),
            cached,
        })
    }

    /// Scores every image of an upload (after [`archive::count`] checked its limits). With
    /// the cache on, a first decoding pass keys the set; a hit skips the extractor.
    pub fn upload(&self, up: &Upload, limits: &Limits) -> Result<Score, ScoreError> {
        let started = Instant::now();
        let Some(cache) = self.cache else {
            let (features, _) = self.run(self.options.keep_rows(), |sink| {
                archive::walk(up, limits, &mut |img| Ok(sink.push(img)?)).map(drop)
            })?;
            return self.score(&features, started, false);
        };
        let mode = self.reference.resize().0;
        let mut key = KeyBuilder::new(&self.extractor.manifest.sha256, mode);
        archive::walk(up, limits, &mut |img| {
            key.add(&img);
            Ok(())
        })?;
        let key = key.finish();
        if let Some(rows) = cache.get(&key, FEATURE_DIM, self.metrics) {
            let n = rows.len() / FEATURE_DIM;
            let mut stats = FeatureStats::new(FEATURE_DIM)?;
            stats.add_rows(&rows, n)?;
            self.progress.store(n as u64, Ordering::Relaxed);
            let features = Features {
                stats,
                rows: Some(rows),
            };
            return self.score(&features, started, true);
        }
        // Every row is kept so the next identical upload can skip the extractor.
        let (features, _) = self.run(KeepRows::All, |sink| {
            archive::walk(up, limits, &mut |img| Ok(sink.push(img)?)).map(drop)
        })?;
        if let Some(rows) = features.rows.as_deref() {
            cache.put(&key, rows, self.metrics);
        }
        self.score(&features, started, false)
    }

    /// Generates `n` images of `g` from `seed` (rounded to bytes as PNGs are) and scores them.
    pub fn model(
        &self,
        g: &Generator,
        n: usize,
        seed: u64,
        labels: Option<&[i64]>,
        batch: usize,
    ) -> Result<Score, ScoreError> {
        let started = Instant::now();
        let runtime = |e: RuntimeError| ScoreError::Runtime(format!("model {}: {e}", g.name));
        let [c, h, w] = g.image_shape();
        let latent = g.manifest.latent.size;
        let rows = batch.max(1);
        let (features, _) = self.run(self.options.keep_rows(), |sink| {
            // Latents for all n at once (n x latent floats is small), images batch by batch.
            let z = pagan_shared::latent::uniform(seed, n, latent);
            for (i, zc) in z.chunks(rows * latent).enumerate() {
                let b = zc.len() / latent;
                let lc = labels.map(|l| l.get(i * rows..i * rows + b).unwrap_or(&[]));
                let data = g.generate(zc, lc, b, batch, self.metrics).map_err(runtime)?;
                for img in from_model_batch(&data, [b, c, h, w])? {
                    sink.push(img)?;
                }
            }
            Ok(())
        })?;
        self.score(&features, started, false)
    }
}
