//! FID/KID scoring of uploaded image sets and served models. Images take the shared path
//! (`pagan_shared::features`: native size, grey replicated, batches of one size through
//! the extractor) and the shared policy (`pagan_shared::score`), exactly as in the
//! trainer. `archive` turns uploaded files into images, `jobs` runs large sets in the
//! background. Errors are this module's [`ScoreError`]; the HTTP layer maps them.

pub mod archive;
pub mod jobs;
mod npy_images;
pub mod upload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pagan_shared::features::{FeatureError, FeatureSink, KeepRows};
use pagan_shared::images::{ImageError, from_model_batch};
use pagan_shared::score::{self, ResizeMismatch};
use pagan_shared::{KidConfig, StatsError};
use serde::Serialize;

use crate::config::Limits;
use crate::metrics::Metrics;
use crate::models::runtime::RuntimeError;
use crate::models::{Extractor, Generator, Reference};
use upload::Upload;

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
    /// KID against a reference without stored features.
    #[error("reference `{0}` stores no features, so KID cannot be computed (FID still can)")]
    NoReferenceFeatures(String),
    /// The reference was computed with another resize convention.
    #[error("reference `{name}`: {mismatch}")]
    ResizeMismatch {
        /// The reference.
        name: String,
        /// The two conventions.
        mismatch: ResizeMismatch,
    },
    /// The features could not be accumulated or compared (e.g. non-finite values).
    #[error("{0}")]
    Statistics(String),
    /// The extractor or a generator failed: our fault.
    #[error("{0}")]
    Runtime(String),
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
            StatsError::TooFewSamples { n, .. } => Self::TooFewImages { n },
            other => Self::Statistics(other.to_string()),
        }
    }
}

/// Checks before any work that `reference` can be compared with this extractor.
pub fn check_reference(
    reference: &Reference,
    extractor: &Extractor,
    want_kid: bool,
) -> Result<(), ScoreError> {
    score::check_resize_mode(reference.resize_mode.as_deref(), extractor.manifest.resize_mode).map_err(
        |mismatch| ScoreError::ResizeMismatch {
            name: reference.name.clone(),
            mismatch,
        },
    )?;
    if want_kid && reference.features.is_none() {
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
    /// Also compute KID.
    pub kid: bool,
    /// Images done so far (polled by `/v1/jobs/{id}`).
    pub progress: &'a AtomicU64,
}

impl Scorer<'_> {
    /// Runs `feed` (which pushes every image into the sink) and scores the result.
    fn run(
        &self,
        feed: impl FnOnce(&mut FeatureSink<'_>) -> Result<(), ScoreError>,
    ) -> Result<Score, ScoreError> {
        let started = Instant::now();
        let keep = if self.kid {
            KeepRows::All
        } else {
            KeepRows::WhileSmall
        };
        let mut run = self.extractor.run(self.metrics);
        let progress = self.progress;
        let mut sink = FeatureSink::new(&mut run, self.batch, keep)?
            .on_progress(|d| progress.store(d, Ordering::Relaxed));
        feed(&mut sink)?;
        let features = sink.finish()?;
        let kid_cfg = KidConfig::default();
        let s = score::score(&features, self.reference.view(), self.kid.then_some(&kid_cfg)).map_err(
            |e| match e {
                score::ScoreError::TooFewImages { n } => ScoreError::TooFewImages { n },
                score::ScoreError::NoReferenceFeatures => {
                    ScoreError::NoReferenceFeatures(self.reference.name.clone())
                }
                score::ScoreError::Stats(s) => s.into(),
                other => ScoreError::Statistics(other.to_string()),
            },
        )?;
        Ok(Score {
            fid: s.fid,
            kid: s.kid.as_ref().map(|k| k.mean),
            kid_std: s.kid.as_ref().map(|k| k.std),
            n: s.n,
            reference: self.reference.name.clone(),
            resize_mode: self.extractor.manifest.resize_mode.as_str().to_owned(),
            provider: self.extractor.provider.as_str().to_owned(),
            seconds: started.elapsed().as_secs_f64(),
            warnings: s.warnings.iter().map(|w| w.to_string()).collect(),
        })
    }

    /// Scores every image of an upload (after [`archive::count`] checked its limits).
    pub fn upload(&self, up: &Upload, limits: &Limits) -> Result<Score, ScoreError> {
        self.run(|sink| {
            archive::walk(up, limits, &mut |img| Ok(sink.push(img)?))?;
            Ok(())
        })
    }

    /// Generates `n` images of `g` from `seed` (rounded to bytes as PNGs are) and scores them.
    pub fn model(&self, g: &Generator, n: usize, seed: u64, batch: usize) -> Result<Score, ScoreError> {
        let runtime = |e: RuntimeError| ScoreError::Runtime(format!("model {}: {e}", g.name));
        let [c, h, w] = g.image_shape();
        let latent = g.manifest.latent.size;
        self.run(|sink| {
            // Latents for all n at once (n x latent floats is small), images batch by batch.
            let z = pagan_shared::latent::uniform(seed, n, latent);
            for zc in z.chunks(batch.max(1) * latent) {
                let b = zc.len() / latent;
                let data = g.generate(zc, b, batch, self.metrics).map_err(runtime)?;
                for img in from_model_batch(&data, [b, c, h, w])? {
                    sink.push(img)?;
                }
            }
            Ok(())
        })
    }
}
