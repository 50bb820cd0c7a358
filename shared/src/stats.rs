//! Streaming, mergeable feature statistics (mean and unbiased covariance) in f64.
//!
//! Numerical choice: sums are kept about a *shift* vector `c` (the mean of the first
//! chunk of rows ever added), i.e. we accumulate `n`, `Σ(x-c)` and `Σ(x-c)(x-c)ᵀ`.
//! The covariance is then `(Σ(x-c)(x-c)ᵀ - s sᵀ/n) / (n-1)` with `s = Σ(x-c)` small,
//! so there is no catastrophic cancellation when features share a large common offset
//! (plain raw sums lose ~`log10(offset²/var)` digits). Merging two accumulators with
//! different shifts re-expresses one about the other's shift exactly (in f64).
//!
//! `Σ(x-c)(x-c)ᵀ` is accumulated with faer's triangular matrix product on chunks of
//! rows (only the lower triangle is stored and updated), which is BLAS-3 speed instead
//! of a per-row rank-1 loop.

use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
use faer::{Accum, Mat, MatRef};

use crate::error::StatsError;

/// Rows converted to f64 and multiplied per faer call. 512 rows x 2048 features is
/// 8 MiB of scratch: large enough for GEMM efficiency, small enough to stay cheap.
const CHUNK_ROWS: usize = 512;

/// A warning about statistics that are usable but not trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsWarning {
    /// With `n <= dim` samples the sample covariance has rank at most `n - 1 < dim`:
    /// it is singular and FID values are biased and not comparable (PAPER.md asks for
    /// at least 2,048 images with 2048-d Inception features).
    RankDeficient {
        /// Samples used.
        n: u64,
        /// Feature dimension.
        dim: usize,
    },
}

impl std::fmt::Display for StatsWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsWarning::RankDeficient { n, dim } => write!(
                f,
                "only {n} samples for {dim}-d features: the covariance is rank-deficient \
                 (needs more than {dim} samples); FID/KID from it are not comparable"
            ),
        }
    }
}

/// A Gaussian summary of features: mean and covariance, as pytorch-fid stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    /// Mean, length `dim`.
    pub mu: Vec<f64>,
    /// Covariance, `dim * dim`, row-major (symmetric, so the order hardly matters).
    pub sigma: Vec<f64>,
    /// Number of samples behind the estimate; `None` for foreign files that do not
    /// record it (plain pytorch-fid `.npz`).
    pub n: Option<u64>,
    /// Problems the caller should surface (also logged with `tracing::warn!`).
    pub warnings: Vec<StatsWarning>,
}

impl Gaussian {
    /// Builds a validated Gaussian: `sigma` must be `dim x dim` for `dim = mu.len()`,
    /// everything finite. Computes (and logs) warnings from `n`.
    pub fn new(mu: Vec<f64>, sigma: Vec<f64>, n: Option<u64>) -> Result<Self, StatsError> {
        let mut g = Gaussian {
            mu,
            sigma,
            n,
            warnings: Vec::new(),
        };
        g.validate()?;
        if let Some(n) = n
            && n <= g.dim() as u64
        {
            let w = StatsWarning::RankDeficient { n, dim: g.dim() };
            tracing::warn!("{w}");
            g.warnings.push(w);
        }
        Ok(g)
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    /// True when the covariance was estimated from too few samples to be full rank.
    pub fn rank_deficient(&self) -> bool {
        self.warnings
            .iter()
            .any(|w| matches!(w, StatsWarning::RankDeficient { .. }))
    }

    /// Checks shapes and finiteness (fields are public, so callers may have edited them).
    pub fn validate(&self) -> Result<(), StatsError> {
        let d = self.mu.len();
        if d == 0 {
            return Err(StatsError::ZeroDim);
        }
        if self.sigma.len() != d * d {
            return Err(StatsError::Shape {
                rows: d,
                dim: d,
                expected: d * d,
                got: self.sigma.len(),
            });
        }
        check_finite("mu", &self.mu)?;
        check_finite("sigma", &self.sigma)?;
        Ok(())
    }

    /// The covariance as a faer view (column-major view of the row-major buffer, i.e.
    /// the transpose, which equals it for a symmetric matrix).
    pub(crate) fn sigma_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.sigma, self.dim(), self.dim())
    }
}

/// Whether a symmetric `d x d` matrix (row-major) can be a covariance: no negative variance,
/// and positive semi-definite up to rounding (a Cholesky factorisation of it plus 1e-8 times
/// its largest variance on the diagonal succeeds; an eigenvalue below about minus that
/// fails). A matrix that is not one would give a meaningless or silently clamped FID.
pub(crate) fn check_covariance(sigma: &[f64], d: usize) -> Result<(), String> {
    let diag = |i: usize| sigma[i * d + i];
    if let Some(i) = (0..d).find(|&i| diag(i) < 0.0) {
        return Err(format!(
            "sigma[{i}, {i}] = {:e} is a negative variance: not a covariance matrix",
            diag(i)
        ));
    }
    let top = (0..d).map(diag).fold(0.0f64, f64::max);
    let eps = 1e-8 * top.max(f64::MIN_POSITIVE);
    let shifted = Mat::from_fn(d, d, |i, j| sigma[i * d + j] + if i == j { eps } else { 0.0 });
    if shifted.llt(faer::Side::Lower).is_err() {
        return Err(
            "sigma has a clearly negative eigenvalue (not positive semi-definite): not a covariance matrix"
                .into(),
        );
    }
    Ok(())
}

pub(crate) fn check_finite(what: &'static str, v: &[f64]) -> Result<(), StatsError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(StatsError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Streaming accumulator of `n`, `Σx` and `Σxxᵀ` (about a shift, see module docs).
#[derive(Debug, Clone)]
pub struct FeatureStats {
    dim: usize,
    n: u64,
    /// Empty until the first rows arrive; then the mean of the first chunk.
    shift: Vec<f64>,
    /// `Σ(x - shift)`.
    sum: Vec<f64>,
    /// Lower triangle (incl. diagonal) of `Σ(x - shift)(x - shift)ᵀ`; the strict upper
    /// triangle is never read or written.
    gram: Mat<f64>,
    /// Scratch for one chunk: column `j` holds row `j` minus the shift.
    buf: Vec<f64>,
}

impl FeatureStats {
    /// An empty accumulator for `dim`-dimensional features.
    pub fn new(dim: usize) -> Result<Self, StatsError> {
        if dim == 0 {
            return Err(StatsError::ZeroDim);
        }
        Ok(FeatureStats {
            dim,
            n: 0,
            shift: Vec::new(),
            sum: vec![0.0; dim],
            gram: Mat::zeros(dim, dim),
            buf: Vec::new(),
        })
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Samples accumulated so far.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// Adds `n_rows` feature rows given row-major in `rows` (`n_rows * dim` values).
    /// The batch is validated first (length, finiteness); on error nothing is added.
    pub fn add_rows(&mut self, rows: &[f32], n_rows: usize) -> Result<(), StatsError> {
        let d = self.dim;
        let expected = n_rows.checked_mul(d).ok_or(StatsError::Shape {
            rows: n_rows,
            dim: d,
            expected: usize::MAX,
            got: rows.len(),
        })?;
        if rows.len() != expected {
            return Err(StatsError::Shape {
                rows: n_rows,
                dim: d,
                expected,
                got: rows.len(),
            });
        }
        if let Some(i) = rows.iter().position(|x| !x.is_finite()) {
            return Err(StatsError::NonFiniteFeature {
                row: i / d,
                col: i % d,
                value: rows[i],
            });
        }
        if n_rows == 0 {
            return Ok(());
        }
        if self.shift.is_empty() {
            // Shift by the first chunk's mean: close enough to the true mean to remove
            // any large common offset before squaring.
            let m = n_rows.min(CHUNK_ROWS);
            let mut shift = vec![0.0f64; d];
            for row in rows[..m * d].chunks_exact(d) {
                for (s, &x) in shift.iter_mut().zip(row) {
                    *s += f64::from(x);
                }
            }
            let inv = 1.0 / m as f64;
            shift.iter_mut().for_each(|s| *s *= inv);
            self.shift = shift;
        }
        let par = faer::get_global_parallelism();
        for chunk in rows.chunks(CHUNK_ROWS * d) {
            let m = chunk.len() / d;
            self.buf.resize(m * d, 0.0);
            for (dst_row, src_row) in self.buf.chunks_exact_mut(d).zip(chunk.chunks_exact(d)) {
                for (((o, &x), &c), s) in dst_row
                    .iter_mut()
                    .zip(src_row)
                    .zip(&self.shift)
                    .zip(self.sum.iter_mut())
                {
                    let v = f64::from(x) - c;
                    *o = v;
                    *s += v;
                }
            }
            // buf viewed column-major as d x m: each column is one centred sample, so
            // A Aᵀ is this chunk's Σ(x-c)(x-c)ᵀ.
            let a = MatRef::from_column_major_slice(&self.buf, d, m);
            tri_matmul(
                self.gram.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Add,
                a,
                BlockStructure::Rectangular,
                a.transpose(),
                BlockStructure::Rectangular,
                1.0,
                par,
            );
        }
        self.n += n_rows as u64;
        Ok(())
    }

    /// Merges `other` into `self`; the result equals accumulating both streams into one.
    pub fn merge(&mut self, other: &FeatureStats) -> Result<(), StatsError> {
        if self.dim != other.dim {
            return Err(StatsError::DimMismatch {
                what: "FeatureStats::merge",
                left: self.dim,
                right: other.dim,
            });
        }
        if other.n == 0 {
            return Ok(());
        }
        if self.n == 0 {
            let buf = std::mem::take(&mut self.buf);
            *self = other.clone();
            self.buf = buf;
            return Ok(());
        }
        let d = self.dim;
        let n_o = other.n as f64;
        // x - c = (x - c') + δ with δ = c' - c, so about our shift c:
        //   Σ(x-c)       = s' + n'δ
        //   Σ(x-c)(x-c)ᵀ = G' + s'δᵀ + δs'ᵀ + n'δδᵀ
        let delta: Vec<f64> = other.shift.iter().zip(&self.shift).map(|(a, b)| a - b).collect();
        for j in 0..d {
            let (sj, dj) = (other.sum[j], delta[j]);
            let terms = other.sum.iter().zip(&delta).enumerate().skip(j);
            for (i, (&si, &di)) in terms {
                self.gram[(i, j)] += other.gram[(i, j)] + si * dj + di * sj + n_o * di * dj;
            }
        }
        for ((s, &so), &dl) in self.sum.iter_mut().zip(&other.sum).zip(&delta) {
            *s += so + n_o * dl;
        }
        self.n += other.n;
        Ok(())
    }

    /// Mean and unbiased covariance (divide by `n - 1`, as `numpy.cov` and pytorch-fid).
    /// Fewer than 2 samples is an error; `n <= dim` adds a
    /// [`StatsWarning::RankDeficient`] to the result and logs it.
    pub fn finalize(&self) -> Result<Gaussian, StatsError> {
        if self.n < 2 {
            return Err(StatsError::TooFewSamples { n: self.n, needed: 2 });
        }
        let d = self.dim;
        let n = self.n as f64;
        let mu: Vec<f64> = self.shift.iter().zip(&self.sum).map(|(c, s)| c + s / n).collect();
        let inv = 1.0 / (n - 1.0);
        let mut sigma = vec![0.0f64; d * d];
        for j in 0..d {
            for i in j..d {
                let v = (self.gram[(i, j)] - self.sum[i] * self.sum[j] / n) * inv;
                sigma[i * d + j] = v;
                sigma[j * d + i] = v;
            }
        }
        Gaussian::new(mu, sigma, Some(self.n))
    }
}
