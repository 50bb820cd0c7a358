//! Reference statistics to score against: `models/references/<name>.npz` (pytorch-fid keys
//! `mu`, `sigma`; optional `n`, `resize_mode` and `features` for KID).

use std::path::Path;

use pagan_shared::inception::{FEATURE_DIM, ResizeMode};
use pagan_shared::manifest::sha256_hex;
use pagan_shared::provenance::ResizeSource;
use pagan_shared::{Gaussian, StatsError, read_features_npz, read_stats_npz};
use serde::Serialize;

/// Reference statistics.
pub struct Reference {
    /// Name (the file stem).
    pub name: String,
    /// Mean and covariance.
    pub gaussian: Gaussian,
    /// Resize mode recorded in the file, if any.
    pub resize_mode: Option<ResizeMode>,
    /// Raw features `[rows, 2048]` for KID, if the file has them.
    pub features: Option<(Vec<f32>, usize)>,
    /// sha256 of the file, for the provenance of scores against it.
    pub sha256: String,
}

/// Summary of a reference for listings.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceInfo {
    /// Name to pass as `reference=`.
    pub name: String,
    /// Feature dimension.
    pub dim: usize,
    /// Samples behind the statistics, if recorded.
    pub n: Option<u64>,
    /// Resize mode recorded in the file, if any (scores against it use it).
    pub resize_mode: Option<ResizeMode>,
    /// sha256 of the file.
    pub sha256: String,
    /// Rows of stored features (KID needs them), if any.
    pub feature_rows: Option<usize>,
}

/// Why a reference cannot be stored or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Not a valid reference name.
    #[error("reference names are 1-64 letters, digits, `-`, `_` or `.`, not starting with `.`")]
    BadName,
    /// The name is taken.
    #[error("reference `{0}` already exists")]
    Exists(String),
    /// Not a readable `.npz` archive.
    #[error("not a readable .npz archive: {0}")]
    NotNpz(String),
    /// An `.npz` whose statistics are unusable (NaN, shapes, asymmetric sigma).
    #[error("{0}")]
    Invalid(String),
    /// Statistics of another feature width than the extractor's.
    #[error("statistics have dimension {0}, the extractor gives {FEATURE_DIM}")]
    Dimension(usize),
    /// Reading or saving failed on our side.
    #[error("saving reference: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StatsError> for ReferenceError {
    fn from(e: StatsError) -> Self {
        match e {
            StatsError::Zip { source, .. } | StatsError::NotNpz { source, .. } => {
                Self::NotNpz(source.to_string())
            }
            StatsError::Io { source, .. } => Self::Io(source),
            // The reader names the (temp) file; clients only need what is wrong.
            StatsError::InvalidFile { msg, .. } => Self::Invalid(msg),
            other => Self::Invalid(other.to_string()),
        }
    }
}

impl Reference {
    /// Loads and validates `path` (statistics, then features if present, the width).
    pub fn load(name: &str, path: &Path) -> Result<Self, ReferenceError> {
        let stats = read_stats_npz(path)?;
        let features = read_features_npz(path)?;
        if stats.gaussian.dim() != FEATURE_DIM {
            return Err(ReferenceError::Dimension(stats.gaussian.dim()));
        }
        let resize_mode = stats
            .resize_mode
            .as_deref()
            .map(str::parse::<ResizeMode>)
            .transpose()
            .map_err(ReferenceError::Invalid)?;
        Ok(Reference {
            name: name.to_owned(),
            gaussian: stats.gaussian,
            resize_mode,
            features,
            sha256: sha256_hex(&std::fs::read(path)?),
        })
    }

    /// Listing summary.
    pub fn info(&self) -> ReferenceInfo {
        ReferenceInfo {
            name: self.name.clone(),
            dim: self.gaussian.dim(),
            n: self.gaussian.n,
            resize_mode: self.resize_mode,
            sha256: self.sha256.clone(),
            feature_rows: self.features.as_ref().map(|(_, rows)| *rows),
        }
    }

    /// The convention scores against it use: the recorded one, else the default.
    pub fn resize(&self) -> (ResizeMode, ResizeSource) {
        match self.resize_mode {
            Some(m) => (m, ResizeSource::Reference),
            None => (ResizeMode::default(), ResizeSource::Default),
        }
    }

    /// Its features as the scoring policy takes them.
    pub fn view(&self) -> pagan_shared::score::Reference<'_> {
        pagan_shared::score::Reference {
            gaussian: &self.gaussian,
            features: self.features.as_ref().map(|(f, _)| f.as_slice()),
        }
    }
}
