//! The scoring policy, one for every caller (training-time evaluation, `pagan-train fid`,
//! the server): FID from features against reference statistics, through the Gram form
//! while the set is at most `dim` images (same value, far less work), the general form
//! beyond; KID when both sides' features are at hand; the minimum-n rule (at least
//! [`MIN_IMAGES`]) and the small-set warnings of both sides.

use crate::error::StatsError;
use crate::features::Features;
use crate::frechet::{frechet_distance, frechet_terms_from_features};
use crate::inception::ResizeMode;
use crate::kid::{KidConfig, KidResult, kid};
use crate::stats::{Gaussian, StatsWarning};

/// Fewest images a score is computed from (a covariance needs two).
pub const MIN_IMAGES: u64 = 2;

/// What a set is scored against.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    /// Mean and covariance.
    pub gaussian: &'a Gaussian,
    /// Raw feature rows (`n x dim`), when the reference stores them (KID needs them).
    pub features: Option<&'a [f32]>,
}

/// FID (and KID when asked) of one image set against one reference.
#[derive(Debug, Clone)]
pub struct Score {
    /// Frechet distance.
    pub fid: f64,
    /// KID with its spread over subsets, when asked for.
    pub kid: Option<KidResult>,
    /// Images scored.
    pub n: u64,
    /// Images behind the reference, if recorded.
    pub reference_n: Option<u64>,
    /// Caveats about either side (small sets).
    pub warnings: Vec<StatsWarning>,
}

/// Why a score cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// Fewer than [`MIN_IMAGES`] images.
    #[error("need at least {MIN_IMAGES} images to score, got {n}")]
    TooFewImages {
        /// Images given.
        n: u64,
    },
    /// KID asked for, but the reference has only mean and covariance.
    #[error(
        "KID needs the reference's features, and this reference has only mu/sigma (FID still works; \
         `pagan-train stats` writes references that store them)"
    )]
    NoReferenceFeatures,
    /// KID asked for, but the set's feature rows were not kept (a caller bug).
    #[error("KID needs every feature row of the scored set (extract with KeepRows::All)")]
    NoSetFeatures,
    /// The statistics could not be computed or compared.
    #[error(transparent)]
    Stats(#[from] StatsError),
}

/// The Frechet distance of `set` to `reference`: the Gram form when the set's rows are
/// kept and there are at most `dim` of them, else the general form from the statistics.
pub fn fid(set: &Features, reference: &Gaussian) -> Result<f64, ScoreError> {
    check_n(set.n())?;
    let dim = set.stats.dim();
    match set.rows.as_deref() {
        Some(rows) if set.n() as usize <= dim => {
            Ok(frechet_terms_from_features(rows, dim, reference)?.distance)
        }
        _ => Ok(frechet_distance(&set.stats.finalize()?, reference)?),
    }
}

/// KID of `set` against `reference_rows` (both `n x dim` rows).
pub fn kid_of(set: &Features, reference_rows: &[f32], cfg: &KidConfig) -> Result<KidResult, ScoreError> {
    check_n(set.n())?;
    let rows = set.rows.as_deref().ok_or(ScoreError::NoSetFeatures)?;
    Ok(kid(rows, reference_rows, set.stats.dim(), cfg)?)
}

/// FID, and KID with `kid` when given, of `set` against `reference`, with the warnings of
/// both sides.
pub fn score(set: &Features, reference: Reference<'_>, kid: Option<&KidConfig>) -> Result<Score, ScoreError> {
    check_n(set.n())?;
    let gaussian = set.stats.finalize()?;
    let fid = fid(set, reference.gaussian)?;
    let kid = match kid {
        None => None,
        Some(cfg) => {
            let y = reference.features.ok_or(ScoreError::NoReferenceFeatures)?;
            Some(kid_of(set, y, cfg)?)
        }
    };
    let mut warnings = gaussian.warnings;
    warnings.extend(reference.gaussian.warnings.iter().cloned());
    Ok(Score {
        fid,
        kid,
        n: set.n(),
        reference_n: reference.gaussian.n,
        warnings,
    })
}

fn check_n(n: u64) -> Result<(), ScoreError> {
    if n < MIN_IMAGES {
        return Err(ScoreError::TooFewImages { n });
    }
    Ok(())
}

/// A reference computed with another resize convention than the extractor's: its scores
/// would not be comparable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the reference was computed with resize mode {reference}, the extractor uses {extractor}: scores would not be comparable"
)]
pub struct ResizeMismatch {
    /// The reference's recorded mode.
    pub reference: String,
    /// The extractor's mode.
    pub extractor: ResizeMode,
}

/// Checks a reference's recorded resize mode (if any) against the extractor's.
pub fn check_resize_mode(reference: Option<&str>, extractor: ResizeMode) -> Result<(), ResizeMismatch> {
    match reference {
        Some(r) if r.parse::<ResizeMode>().ok() != Some(extractor) => Err(ResizeMismatch {
            reference: r.to_owned(),
            extractor,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::FeatureStats;

    fn features(rows: &[f32], dim: usize, keep: bool) -> Features {
        let mut stats = FeatureStats::new(dim).expect("stats");
        stats.add_rows(rows, rows.len() / dim).expect("rows");
        Features {
            stats,
            rows: keep.then(|| rows.to_vec()),
        }
    }

    fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut r = crate::rng::SplitMix64::new(seed);
        (0..n * dim).map(|_| r.next_f32()).collect()
    }

    #[test]
    fn gram_and_general_paths_agree_and_kid_needs_both_sides() {
        let (d, n) = (8, 6);
        let reference = features(&rows(40, d, 1), d, true);
        let g = reference.stats.finalize().expect("ref");
        let set_rows = rows(n, d, 2);
        let with = fid(&features(&set_rows, d, true), &g).expect("gram");
        let without = fid(&features(&set_rows, d, false), &g).expect("general");
        assert!(
            (with - without).abs() < 1e-8 * without.max(1.0),
            "{with} vs {without}"
        );
        assert!(with > 0.0);

        let r = Reference {
            gaussian: &g,
            features: None,
        };
        let cfg = KidConfig::default();
        assert!(matches!(
            score(&features(&set_rows, d, true), r, Some(&cfg)),
            Err(ScoreError::NoReferenceFeatures)
        ));
        let ref_rows = reference.rows.clone().expect("rows");
        let r = Reference {
            gaussian: &g,
            features: Some(&ref_rows),
        };
        let s = score(&features(&set_rows, d, true), r, Some(&cfg)).expect("score");
        assert_eq!(s.n, n as u64);
        assert_eq!(s.reference_n, Some(40));
        assert!(s.kid.is_some_and(|k| k.mean.is_finite()));
        // 6 samples of 8-d features: the set's covariance is rank-deficient, and says so.
        assert!(
            s.warnings
                .iter()
                .any(|w| matches!(w, StatsWarning::RankDeficient { n: 6, .. }))
        );
        assert!(matches!(
            score(&features(&set_rows, d, false), r, Some(&cfg)),
            Err(ScoreError::NoSetFeatures)
        ));
    }

    #[test]
    fn one_image_is_too_few() {
        let d = 4;
        let g = features(&rows(10, d, 3), d, false).stats.finalize().expect("ref");
        let mut stats = FeatureStats::new(d).expect("stats");
        stats.add_rows(&rows(1, d, 4), 1).expect("row");
        let one = Features { stats, rows: None };
        assert!(matches!(fid(&one, &g), Err(ScoreError::TooFewImages { n: 1 })));
    }

    #[test]
    fn resize_modes_must_match_when_recorded() {
        assert!(check_resize_mode(None, ResizeMode::Asymmetric).is_ok());
        assert!(check_resize_mode(Some("asymmetric"), ResizeMode::Asymmetric).is_ok());
        assert!(check_resize_mode(Some("half_pixel"), ResizeMode::Asymmetric).is_err());
        assert!(check_resize_mode(Some("bogus"), ResizeMode::HalfPixel).is_err());
    }
}
