//! The scoring policy, one for every caller (training-time evaluation, `pagan-train fid`,
//! the server): FID from features against reference statistics, through the Gram form
//! while the set is at most `dim` images (same value, far less work), the general form
//! beyond; on request KID, precision/recall/density/coverage (both need the reference's
//! features), a bootstrap interval and FID-infinity; the minimum-n rule (at least
//! [`MIN_IMAGES`]) and small-set warnings that name both sides' n.

use crate::error::StatsError;
use crate::features::Features;
use crate::frechet::{SQRT_GENERAL, SQRT_GRAM, fid_of_rows, frechet_distance};
use crate::inception::ResizeMode;
use crate::kid::{KidConfig, KidResult, kid};
use crate::prdc::{Prdc, PrdcConfig, prdc};
use crate::provenance::{ExtractorInfo, Provenance, ResizeSource};
use crate::stats::Gaussian;
use crate::uncertainty::{
    BootstrapConfig, FidInfinity, FidInfinityConfig, FidInterval, bootstrap_fid, fid_infinity,
};

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

/// What to compute besides FID.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreOptions {
    /// KID, with these subsets.
    pub kid: Option<KidConfig>,
    /// Precision/recall/density/coverage, with these k.
    pub prdc: Option<PrdcConfig>,
    /// A bootstrap confidence interval of FID.
    pub bootstrap: Option<BootstrapConfig>,
    /// FID-infinity (Chong & Forsyth 2020).
    pub fid_infinity: Option<FidInfinityConfig>,
}

impl ScoreOptions {
    /// FID only.
    pub fn fid_only() -> Self {
        Self::default()
    }

    /// True when the reference's feature rows are needed (KID, PRDC).
    pub fn needs_reference_features(&self) -> bool {
        self.kid.is_some() || self.prdc.is_some()
    }

    /// Which of the set's feature rows the extraction must keep.
    pub fn keep_rows(&self) -> crate::features::KeepRows {
        if self.needs_reference_features() || self.bootstrap.is_some() || self.fid_infinity.is_some() {
            crate::features::KeepRows::All
        } else {
            crate::features::KeepRows::WhileSmall
        }
    }
}

/// FID (and what else was asked) of one image set against one reference.
#[derive(Debug, Clone)]
pub struct Score {
    /// Frechet distance.
    pub fid: f64,
    /// How its matrix square root was taken (`frechet::SQRT_GRAM` or `SQRT_GENERAL`).
    pub sqrt_method: &'static str,
    /// KID with its spread over subsets, when asked for.
    pub kid: Option<KidResult>,
    /// Precision, recall, density, coverage, when asked for.
    pub prdc: Option<Prdc>,
    /// Bootstrap interval of FID, when asked for.
    pub fid_interval: Option<FidInterval>,
    /// FID-infinity, when asked for.
    pub fid_infinity: Option<FidInfinity>,
    /// Images scored.
    pub n: u64,
    /// Images behind the reference, if recorded.
    pub reference_n: Option<u64>,
    /// Caveats about either side (small sets), naming both sides' n.
    pub warnings: Vec<String>,
}

/// A score as reported (CLI `--json`, the server, metrics): the numbers, the caveats and
/// the provenance. One shape everywhere, so outputs of the paths can be compared.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScoreReport {
    /// Frechet Inception Distance.
    pub fid: f64,
    /// KID (mean over subsets), when asked for.
    pub kid: Option<f64>,
    /// Spread of KID over subsets, when asked for.
    pub kid_std: Option<f64>,
    /// Precision, recall, density, coverage, when asked for.
    pub prdc: Option<Prdc>,
    /// Bootstrap confidence interval of FID, when asked for.
    pub fid_ci: Option<FidInterval>,
    /// FID-infinity, when asked for.
    pub fid_infinity: Option<FidInfinity>,
    /// Images scored.
    pub n: u64,
    /// Images behind the reference, if recorded.
    pub reference_n: Option<u64>,
    /// Caveats, e.g. too few images for a full-rank covariance.
    pub warnings: Vec<String>,
    /// What the numbers were computed with.
    pub provenance: Provenance,
}

impl Score {
    /// The report of this score, computed with `extractor` in `resize`, against a
    /// reference file hashing to `reference_sha256` (if a file).
    pub fn report(
        self,
        extractor: ExtractorInfo,
        resize: (ResizeMode, ResizeSource),
        reference_sha256: Option<String>,
    ) -> ScoreReport {
        let provenance = Provenance::new(
            extractor,
            resize,
            self.sqrt_method,
            self.n,
            (self.reference_n, reference_sha256),
        );
        ScoreReport {
            fid: self.fid,
            kid: self.kid.as_ref().map(|k| k.mean),
            kid_std: self.kid.as_ref().map(|k| k.std),
            prdc: self.prdc,
            fid_ci: self.fid_interval,
            fid_infinity: self.fid_infinity,
            n: self.n,
            reference_n: self.reference_n,
            warnings: self.warnings,
            provenance,
        }
    }
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
    /// KID or PRDC asked for, but the reference has only mean and covariance.
    #[error(
        "KID and precision/recall need the reference's features, and this reference has only mu/sigma \
         (FID still works; `pagan-train stats` writes references that store them)"
    )]
    NoReferenceFeatures,
    /// A score needs the set's feature rows, and they were not kept (a caller bug).
    #[error("this score needs every feature row of the scored set (extract with KeepRows::All)")]
    NoSetFeatures,
    /// The statistics could not be computed or compared.
    #[error(transparent)]
    Stats(#[from] StatsError),
}

/// The Frechet distance of `set` to `reference` and how its square root was taken: the
/// Gram form when the set's rows are kept and there are at most `dim` of them, else the
/// general form from the statistics.
pub fn fid_with_method(set: &Features, reference: &Gaussian) -> Result<(f64, &'static str), ScoreError> {
    check_n(set.n())?;
    let dim = set.stats.dim();
    match set.rows.as_deref() {
        Some(rows) if set.n() as usize <= dim => Ok((fid_of_rows(rows, dim, reference)?, SQRT_GRAM)),
        _ => Ok((frechet_distance(&set.stats.finalize()?, reference)?, SQRT_GENERAL)),
    }
}

/// The Frechet distance of `set` to `reference` (see [`fid_with_method`]).
pub fn fid(set: &Features, reference: &Gaussian) -> Result<f64, ScoreError> {
    Ok(fid_with_method(set, reference)?.0)
}

/// KID of `set` against `reference_rows` (both `n x dim` rows).
pub fn kid_of(set: &Features, reference_rows: &[f32], cfg: &KidConfig) -> Result<KidResult, ScoreError> {
    check_n(set.n())?;
    let rows = set.rows.as_deref().ok_or(ScoreError::NoSetFeatures)?;
    Ok(kid(rows, reference_rows, set.stats.dim(), cfg)?)
}

/// FID and whatever `opts` asks for, of `set` against `reference`, with the warnings.
pub fn score(set: &Features, reference: Reference<'_>, opts: &ScoreOptions) -> Result<Score, ScoreError> {
    check_n(set.n())?;
    let dim = set.stats.dim();
    let (fid, sqrt_method) = fid_with_method(set, reference.gaussian)?;
    let reference_rows = if opts.needs_reference_features() {
        Some(reference.features.ok_or(ScoreError::NoReferenceFeatures)?)
    } else {
        None
    };
    let set_rows = || set.rows.as_deref().ok_or(ScoreError::NoSetFeatures);
    let mut warnings = small_n_warnings(set.n(), reference.gaussian.n, dim);
    let kid = match (&opts.kid, reference_rows) {
        (Some(cfg), Some(y)) => {
            let n_ref = y.len() / dim;
            // Subsets take min(subset_size, n_set, n_ref) rows of each side: with equal sets
            // no larger than that, every subset is both whole sets.
            if set.n() as usize == n_ref && n_ref <= cfg.subset_size && cfg.n_subsets > 1 {
                warnings.push(format!(
                    "KID's subsets of up to {} images took all {} scored and all {n_ref} reference images each \
                     time: its {} subsets are one and the same, so kid_std is 0 and says nothing about the \
                     estimate's spread",
                    cfg.subset_size,
                    set.n(),
                    cfg.n_subsets
                ));
            }
            Some(kid_of(set, y, cfg)?)
        }
        _ => None,
    };
    // An option the sets are too small for is left out with the reason; FID still stands.
    let prdc = match (&opts.prdc, reference_rows) {
        (Some(cfg), Some(y)) => {
            let k_real = cfg.k_precision_recall.max(cfg.k_density_coverage);
            let k_fake = cfg.k_precision_recall;
            let n_real = y.len() / dim;
            if n_real <= k_real || set.n() as usize <= k_fake {
                warnings.push(format!(
                    "precision/recall/density/coverage not computed: they need more than {k_fake} scored images \
                     and more than {k_real} reference feature rows (k-th neighbours within each set), got {} and \
                     {n_real}",
                    set.n()
                ));
                None
            } else {
                Some(prdc(y, set_rows()?, dim, cfg)?)
            }
        }
        _ => None,
    };
    let fid_interval = match &opts.bootstrap {
        Some(cfg) => Some(bootstrap_fid(set_rows()?, dim, reference.gaussian, cfg)?),
        None => None,
    };
    let fid_infinity = match &opts.fid_infinity {
        Some(_) if set.n() < 3 => {
            warnings.push(format!(
                "FID-infinity not computed: a line through FIDs of subsets of at least 2 images needs at least 3 \
                 images, got {}",
                set.n()
            ));
            None
        }
        Some(cfg) => Some(fid_infinity(set_rows()?, dim, reference.gaussian, cfg)?),
        None => None,
    };
    Ok(Score {
        fid,
        sqrt_method,
        kid,
        prdc,
        fid_interval,
        fid_infinity,
        n: set.n(),
        reference_n: reference.gaussian.n,
        warnings,
    })
}

/// Warnings for a side with at most `dim` samples (a rank-deficient covariance), each
/// naming both sides' n: FID is biased upward in 1/n, so such scores compare only with
/// scores of the same n.
pub fn small_n_warnings(n: u64, reference_n: Option<u64>, dim: usize) -> Vec<String> {
    let ref_n = reference_n.map_or_else(|| "a number it does not record".to_owned(), |r| r.to_string());
    let mut out = Vec::new();
    if n <= dim as u64 {
        out.push(format!(
            "the scored set has {n} images and the reference {ref_n}: with at most {dim} images the set's \
             {dim}-d covariance is rank-deficient, and FID is biased upward at small n; compare only with \
             scores of the same n (or see fid_infinity)"
        ));
    }
    if let Some(r) = reference_n
        && r <= dim as u64
    {
        out.push(format!(
            "the reference has {r} images and the scored set {n}: with at most {dim} images the reference's \
             {dim}-d covariance is rank-deficient; its FIDs are not comparable with those against a full reference"
        ));
    }
    out
}

fn check_n(n: u64) -> Result<(), ScoreError> {
    if n < MIN_IMAGES {
        return Err(ScoreError::TooFewImages { n });
    }
    Ok(())
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
        let opts = ScoreOptions {
            kid: Some(KidConfig::default()),
            ..ScoreOptions::default()
        };
        assert!(matches!(
            score(&features(&set_rows, d, true), r, &opts),
            Err(ScoreError::NoReferenceFeatures)
        ));
        let ref_rows = reference.rows.clone().expect("rows");
        let r = Reference {
            gaussian: &g,
            features: Some(&ref_rows),
        };
        let s = score(&features(&set_rows, d, true), r, &opts).expect("score");
        assert_eq!(s.n, n as u64);
        assert_eq!(s.reference_n, Some(40));
        assert!(s.kid.is_some_and(|k| k.mean.is_finite()));
        // 6 samples of 8-d features: the set's covariance is rank-deficient, and the warning
        // names both sides' n (KID resampled the 40 reference rows: no warning about it).
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        // Equal sets within one subset: KID's subsets are all the same, and it says so.
        let same = features(&ref_rows, d, true);
        let s2 = score(&same, r, &opts).expect("score");
        assert!(
            s2.warnings.iter().any(|w| w.contains("kid_std is 0")),
            "{:?}",
            s2.warnings
        );
        assert!(
            s.warnings[0].contains("has 6 images and the reference 40"),
            "{}",
            s.warnings[0]
        );
        assert_eq!(s.sqrt_method, SQRT_GRAM);
        assert!(matches!(
            score(&features(&set_rows, d, false), r, &opts),
            Err(ScoreError::NoSetFeatures)
        ));
    }

    #[test]
    fn options_a_set_is_too_small_for_are_left_out_with_the_reason() {
        let d = 4;
        let reference = features(&rows(30, d, 5), d, true);
        let g = reference.stats.finalize().expect("ref");
        let ref_rows = reference.rows.clone().expect("rows");
        let r = Reference {
            gaussian: &g,
            features: Some(&ref_rows),
        };
        let opts = ScoreOptions {
            prdc: Some(PrdcConfig::default()),
            fid_infinity: Some(FidInfinityConfig::default()),
            ..ScoreOptions::default()
        };
        let s = score(&features(&rows(2, d, 6), d, true), r, &opts).expect("score");
        assert!(s.prdc.is_none() && s.fid_infinity.is_none());
        assert!(s.fid.is_finite());
        let said = s.warnings.join("\n");
        assert!(
            said.contains("precision/recall/density/coverage not computed") && said.contains("got 2 and 30"),
            "{said}"
        );
        assert!(said.contains("FID-infinity not computed"), "{said}");
        // Enough images: both computed.
        let s = score(&features(&rows(12, d, 7), d, true), r, &opts).expect("score");
        assert!(s.prdc.is_some() && s.fid_infinity.is_some(), "{:?}", s.warnings);
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
}
