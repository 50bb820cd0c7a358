//! Uncertainty of FID: a bootstrap interval over the scored set (the reference statistics
//! held fixed), and FID-infinity (Chong & Forsyth 2020), the intercept of a line fitted to
//! FID against `1/N` over subsets of growing size `N`.
//!
//! FID is biased upward by roughly `c / N`. A resample drawn with replacement holds only
//! ~63% distinct images, so the resampled FIDs sit *above* the full-set value, far above it
//! in 2048-d (1,000 synthetic images: full 1508, resamples 2145..2219): their raw
//! percentiles would not contain the score they are meant to qualify. The interval keeps
//! their spread and centres it on the full-set FID (`fid - (mean - q_lo)` to
//! `fid + (q_hi - mean)`): it describes how much FID moves between sets of this size, not
//! its bias at this N, which FID-infinity estimates. All draws use the project's
//! SplitMix64 (`crate::rng`), so a seed gives the same numbers on every platform.

use crate::error::StatsError;
use crate::frechet::fid_of_rows;
use crate::rng::{SplitMix64, sample_without_replacement};
use crate::stats::Gaussian;

/// What [`FidInterval::method`] says.
const BOOTSTRAP_METHOD: &str =
    "bootstrap over the scored set (reference fixed): resampled percentiles re-centred on the full-set FID";

/// Settings of [`bootstrap_fid`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    /// Number of bootstrap resamples (at least 2).
    pub resamples: usize,
    /// Coverage of the interval, in `(0, 1)`.
    pub level: f64,
    /// Seed of the resampler.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    /// 50 resamples, a 95% interval, seed 0.
    fn default() -> Self {
        BootstrapConfig {
            resamples: 50,
            level: 0.95,
            seed: 0,
        }
    }
}

/// A bootstrap interval for FID.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FidInterval {
    /// Lower end: `fid - (mean - q)`, `q` the `(1 - level) / 2` percentile of the resamples.
    pub low: f64,
    /// Upper end: `fid + (q - mean)`, `q` the `1 - (1 - level) / 2` percentile.
    pub high: f64,
    /// The full-set FID the interval is centred on.
    pub fid: f64,
    /// Coverage the interval was asked for.
    pub level: f64,
    /// Sample standard deviation (ddof = 1) of the resampled FIDs.
    pub std: f64,
    /// Mean of the resampled FIDs (above `fid`: resamples repeat images).
    pub mean: f64,
    /// Number of resamples.
    pub resamples: usize,
    /// How the interval was obtained.
    pub method: &'static str,
    /// Seed of the resampler.
    pub seed: u64,
}

/// FID of `resamples` bootstrap resamples of `rows` (`n x dim`, row-major) against the fixed
/// `reference`, in draw order. Resample `r` takes the `n` row indices
/// `SplitMix64::new(seed).below(n)` draws `r*n .. (r+1)*n` (the generator is not re-seeded
/// between resamples); exposed so other implementations can be checked on the same draws.
pub fn bootstrap_fids(
    rows: &[f32],
    dim: usize,
    reference: &Gaussian,
    cfg: &BootstrapConfig,
) -> Result<Vec<f64>, StatsError> {
    check_bootstrap_config(cfg)?;
    let n = check_rows(rows, dim, reference)?;
    let mut rng = SplitMix64::new(cfg.seed);
    let mut buf: Vec<f32> = Vec::with_capacity(rows.len());
    (0..cfg.resamples)
        .map(|_| {
            buf.clear();
            for _ in 0..n {
                let r = rng.below(n as u64) as usize;
                buf.extend_from_slice(&rows[r * dim..(r + 1) * dim]);
            }
            fid_of_rows(&buf, dim, reference)
        })
        .collect()
}

/// Bootstrap interval of the FID of `rows` (`n x dim`, row-major) against the fixed
/// `reference`, centred on the full-set FID (see the module docs); [`bootstrap_fids`] for
/// the draws.
pub fn bootstrap_fid(
    rows: &[f32],
    dim: usize,
    reference: &Gaussian,
    cfg: &BootstrapConfig,
) -> Result<FidInterval, StatsError> {
    let mut values = bootstrap_fids(rows, dim, reference, cfg)?;
    let fid = fid_of_rows(rows, dim, reference)?;
    let m = values.len() as f64;
    let mean = values.iter().sum::<f64>() / m;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (m - 1.0);
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - cfg.level) / 2.0;
    Ok(FidInterval {
        low: fid - (mean - percentile(&values, tail)),
        high: fid + (percentile(&values, 1.0 - tail) - mean),
        fid,
        level: cfg.level,
        std: var.sqrt(),
        mean,
        resamples: cfg.resamples,
        method: BOOTSTRAP_METHOD,
        seed: cfg.seed,
    })
}

/// The `q`-quantile (`q` in `[0, 1]`) of ascending, non-empty `sorted`, interpolating
/// linearly between order statistics like numpy's default `'linear'` method (including its
/// choice of lerp form on each side of the midpoint, so values match numpy bit for bit).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = (pos.floor() as usize).min(sorted.len() - 1);
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

fn check_bootstrap_config(cfg: &BootstrapConfig) -> Result<(), StatsError> {
    if cfg.resamples < 2 {
        return Err(StatsError::Config(format!(
            "a bootstrap interval needs at least 2 resamples, got {}",
            cfg.resamples
        )));
    }
    // Written so that NaN fails too.
    if !(cfg.level > 0.0 && cfg.level < 1.0) {
        return Err(StatsError::Config(format!(
            "the bootstrap level must lie strictly between 0 and 1, got {}",
            cfg.level
        )));
    }
    Ok(())
}

/// Settings of [`fid_infinity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FidInfinityConfig {
    /// Number of subset sizes (at least 2; fewer remain if sizes coincide after rounding).
    pub points: usize,
    /// Smallest subset as a fraction of the set, in `(0, 1)`.
    pub min_fraction: f64,
    /// Seed of the subset sampler.
    pub seed: u64,
}

impl Default for FidInfinityConfig {
    /// 8 sizes from 20% of the set to all of it, seed 0.
    fn default() -> Self {
        FidInfinityConfig {
            points: 8,
            min_fraction: 0.2,
            seed: 0,
        }
    }
}

/// FID extrapolated to infinitely many samples, with the fit behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FidInfinity {
    /// Intercept of the least-squares line of FID against `1/N`: FID at `N = ∞`.
    pub fid_infinity: f64,
    /// Slope of that line (the bias coefficient `c` in `FID(N) ≈ FID_∞ + c/N`).
    pub slope: f64,
    /// Coefficient of determination of the fit.
    pub r_squared: f64,
    /// The subset sizes and their FIDs, by ascending size.
    pub points: Vec<FidPoint>,
    /// Seed of the subset sampler.
    pub seed: u64,
}

/// FID of one subset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FidPoint {
    /// Subset size.
    pub n: usize,
    /// FID of the subset against the reference.
    pub fid: f64,
}

/// FID-infinity of `rows` (`n x dim`, row-major) against `reference`: one subset drawn
/// without replacement per size (sizes evenly spaced from `max(2, round(min_fraction n))`
/// to `n`, ascending, drawn in that order from one generator; the full set at size `n`),
/// then ordinary least squares of FID against `1/N`.
pub fn fid_infinity(
    rows: &[f32],
    dim: usize,
    reference: &Gaussian,
    cfg: &FidInfinityConfig,
) -> Result<FidInfinity, StatsError> {
    if cfg.points < 2 {
        return Err(StatsError::Config(format!(
            "FID-infinity needs at least 2 subset sizes, got {}",
            cfg.points
        )));
    }
    if !(cfg.min_fraction > 0.0 && cfg.min_fraction < 1.0) {
        return Err(StatsError::Config(format!(
            "the smallest FID-infinity subset fraction must lie strictly between 0 and 1, got {}",
            cfg.min_fraction
        )));
    }
    let n = check_rows(rows, dim, reference)?;
    let sizes = subset_sizes(n, cfg.points, cfg.min_fraction);
    if sizes.len() < 2 {
        // Only when n = 2: the smallest subset FID accepts is 2 rows.
        return Err(StatsError::TooFewSamples {
            n: n as u64,
            needed: 3,
        });
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let mut buf: Vec<f32> = Vec::new();
    let mut points = Vec::with_capacity(sizes.len());
    for &m in &sizes {
        let fid = if m == n {
            fid_of_rows(rows, dim, reference)?
        } else {
            buf.clear();
            for r in sample_without_replacement(&mut rng, n, m) {
                buf.extend_from_slice(&rows[r * dim..(r + 1) * dim]);
            }
            fid_of_rows(&buf, dim, reference)?
        };
        points.push(FidPoint { n: m, fid });
    }
    let x: Vec<f64> = points.iter().map(|p| 1.0 / p.n as f64).collect();
    let y: Vec<f64> = points.iter().map(|p| p.fid).collect();
    // Distinct sizes give distinct x, and FIDs are finite, so the fit exists.
    let fit = fit_line(&x, &y).ok_or(StatsError::NonFinite {
        what: "FID-infinity fit",
        index: 0,
    })?;
    Ok(FidInfinity {
        fid_infinity: fit.intercept,
        slope: fit.slope,
        r_squared: fit.r_squared,
        points,
        seed: cfg.seed,
    })
}

/// Distinct subset sizes, ascending: `points` values evenly spaced from
/// `max(2, round(min_fraction n))` to `n` and rounded (fewer when rounding merges some).
fn subset_sizes(n: usize, points: usize, min_fraction: f64) -> Vec<usize> {
    let lo = ((min_fraction * n as f64).round() as usize).max(2).min(n);
    // More points than sizes in [lo, n] would only repeat sizes.
    let p = points.min(n - lo + 1);
    if p < 2 {
        return vec![lo];
    }
    let span = (n - lo) as f64;
    let mut sizes: Vec<usize> = (0..p)
        .map(|k| lo + (span * k as f64 / (p - 1) as f64).round() as usize)
        .collect();
    sizes.dedup();
    sizes
}

/// An ordinary least-squares line `y ≈ intercept + slope x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LineFit {
    /// Value at `x = 0`.
    pub intercept: f64,
    /// Change in `y` per unit `x`.
    pub slope: f64,
    /// Coefficient of determination (1 when every `y` is equal: the flat line is exact).
    pub r_squared: f64,
}

/// Least-squares line through `(x, y)`; `None` for fewer than 2 points, unequal lengths,
/// constant `x` or non-finite values. Sums are taken about the means for accuracy.
pub(crate) fn fit_line(x: &[f64], y: &[f64]) -> Option<LineFit> {
    if x.len() != y.len() || x.len() < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let m = x.len() as f64;
    let mx = x.iter().sum::<f64>() / m;
    let my = y.iter().sum::<f64>() / m;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r_squared = if syy > 0.0 {
        (sxy * sxy / (sxx * syy)).min(1.0)
    } else {
        1.0
    };
    Some(LineFit {
        intercept: my - slope * mx,
        slope,
        r_squared,
    })
}

/// Number of rows of `rows`, after checking `dim`, the shape, finiteness, the reference and
/// that a covariance can be estimated (at least 2 rows).
fn check_rows(rows: &[f32], dim: usize, reference: &Gaussian) -> Result<usize, StatsError> {
    if dim == 0 {
        return Err(StatsError::ZeroDim);
    }
    reference.validate()?;
    if reference.dim() != dim {
        return Err(StatsError::DimMismatch {
            what: "scored rows vs reference",
            left: dim,
            right: reference.dim(),
        });
    }
    let n = rows.len() / dim;
    if n * dim != rows.len() {
        return Err(StatsError::Shape {
            rows: n,
            dim,
            expected: n * dim,
            got: rows.len(),
        });
    }
    if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
        return Err(StatsError::NonFiniteFeature {
            row: i / dim,
            col: i % dim,
            value: rows[i],
        });
    }
    if n < 2 {
        return Err(StatsError::TooFewSamples {
            n: n as u64,
            needed: 2,
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_line_recovers_exact_lines() {
        let x = [0.5, 0.25, 0.125, 0.0625, 0.03125];
        let y: Vec<f64> = x.iter().map(|v| 3.0 - 8.0 * v).collect();
        let fit = fit_line(&x, &y).expect("fit");
        assert!((fit.intercept - 3.0).abs() < 1e-14, "{fit:?}");
        assert!((fit.slope + 8.0).abs() < 1e-13, "{fit:?}");
        assert!((fit.r_squared - 1.0).abs() < 1e-15, "{fit:?}");
        // Two points define the line; a flat line is exact too.
        let fit = fit_line(&[1.0, 3.0], &[2.0, 6.0]).expect("fit");
        assert_eq!((fit.intercept, fit.slope, fit.r_squared), (0.0, 2.0, 1.0));
        let fit = fit_line(&[1.0, 2.0, 4.0], &[7.0, 7.0, 7.0]).expect("fit");
        assert_eq!((fit.intercept, fit.slope, fit.r_squared), (7.0, 0.0, 1.0));
    }

    #[test]
    fn fit_line_on_noisy_points() {
        // y = 1 + x with residuals +1, -1, -1, +1 at x = 0..4: the fit is unchanged
        // (residuals orthogonal to 1 and x), SS_res = 4, SS_tot = 5 + 4 = 9.
        let fit = fit_line(&[0.0, 1.0, 2.0, 3.0], &[2.0, 1.0, 2.0, 5.0]).expect("fit");
        assert!(
            (fit.intercept - 1.0).abs() < 1e-15 && (fit.slope - 1.0).abs() < 1e-15,
            "{fit:?}"
        );
        assert!((fit.r_squared - 5.0 / 9.0).abs() < 1e-15, "{fit:?}");
    }

    #[test]
    fn fit_line_refuses_degenerate_input() {
        assert!(fit_line(&[1.0], &[1.0]).is_none());
        assert!(fit_line(&[1.0, 1.0], &[1.0, 2.0]).is_none());
        assert!(fit_line(&[1.0, 2.0], &[1.0]).is_none());
        assert!(fit_line(&[1.0, 2.0], &[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn subset_sizes_are_distinct_ascending_and_end_at_n() {
        assert_eq!(subset_sizes(1000, 5, 0.2), vec![200, 400, 600, 800, 1000]);
        assert_eq!(subset_sizes(10, 8, 0.2), vec![2, 3, 4, 5, 7, 8, 9, 10]);
        assert_eq!(subset_sizes(5, 8, 0.2), vec![2, 3, 4, 5]);
        assert_eq!(subset_sizes(3, 8, 0.1), vec![2, 3]);
        assert_eq!(subset_sizes(2, 8, 0.5), vec![2]);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // np.percentile([1, 2, 4, 8], [0, 2.5, 50, 97.5, 100]) = [1, 1.075, 3, 7.7, 8].
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!((percentile(&v, 0.025) - 1.075).abs() < 1e-15);
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert!((percentile(&v, 0.975) - 7.7).abs() < 1e-15);
        assert_eq!(percentile(&v, 1.0), 8.0);
    }
}
