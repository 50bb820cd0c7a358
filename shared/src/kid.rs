//! Kernel Inception Distance: the unbiased MMD² estimate with the cubic polynomial
//! kernel `k(x, y) = (x·y / d + 1)³`, averaged over random subsets (blocks) of both
//! feature sets, as PAPER.md specifies for the PA level-up schedule.
//!
//! Subsets are drawn without replacement with the project's SplitMix64 (`crate::rng`),
//! so a given seed gives the same KID on every platform and in every release.
//! Kernel matrices are computed in f64 with faer matrix products.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
use faer::{Accum, Mat, MatRef};

use crate::error::StatsError;
use crate::rng::{SplitMix64, sample_without_replacement};

/// How KID is averaged over subsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KidConfig {
    /// Samples per subset from each set; capped at the smaller set size.
    pub subset_size: usize,
    /// Number of subsets to average over.
    pub n_subsets: usize,
    /// Seed of the subset sampler.
    pub seed: u64,
}

impl Default for KidConfig {
    /// 100 subsets of 1,000 samples (the usual KID setting), seed 0.
    fn default() -> Self {
        KidConfig {
            subset_size: 1000,
            n_subsets: 100,
            seed: 0,
        }
    }
}

/// KID estimate: mean and spread of the per-subset unbiased MMD² values.
#[derive(Debug, Clone, PartialEq)]
pub struct KidResult {
    /// Mean of the per-subset MMD² (the KID).
    pub mean: f64,
    /// Population standard deviation (ddof = 0) of the per-subset values.
    pub std: f64,
    /// Subset size actually used (after capping).
    pub subset_size: usize,
    /// One MMD² per subset, in sampling order.
    pub values: Vec<f64>,
}

/// One KID block: which rows of each feature set it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KidSubset {
    /// Row indices into the first set (`x`).
    pub x: Vec<usize>,
    /// Row indices into the second set (`y`).
    pub y: Vec<usize>,
}

/// The subsets [`kid`] uses for sets of `n_x` and `n_y` samples. Exposed so other
/// implementations can be checked on exactly the same blocks.
pub fn kid_subsets(n_x: usize, n_y: usize, cfg: &KidConfig) -> Result<Vec<KidSubset>, StatsError> {
    if cfg.n_subsets == 0 {
        return Err(StatsError::Config("KID needs at least one subset".into()));
    }
    if cfg.subset_size < 2 {
        return Err(StatsError::Config(format!(
            "KID subset size must be at least 2, got {}",
            cfg.subset_size
        )));
    }
    let m = cfg.subset_size.min(n_x).min(n_y);
    if m < 2 {
        return Err(StatsError::TooFewSamples {
            n: n_x.min(n_y) as u64,
            needed: 2,
        });
    }
    let mut rng = SplitMix64::new(cfg.seed);
    Ok((0..cfg.n_subsets)
        .map(|_| {
            let x = sample_without_replacement(&mut rng, n_x, m);
            let y = sample_without_replacement(&mut rng, n_y, m);
            KidSubset { x, y }
        })
        .collect())
}

fn rows_of(data: &[f32], dim: usize) -> Result<usize, StatsError> {
    if dim == 0 {
        return Err(StatsError::ZeroDim);
    }
    if !data.len().is_multiple_of(dim) {
        return Err(StatsError::Shape {
            rows: data.len() / dim,
            dim,
            expected: (data.len() / dim) * dim,
            got: data.len(),
        });
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(StatsError::NonFiniteFeature {
            row: i / dim,
            col: i % dim,
            value: data[i],
        });
    }
    Ok(data.len() / dim)
}

/// KID between feature sets `x` and `y` (row-major, `dim` features per row).
pub fn kid(x: &[f32], y: &[f32], dim: usize, cfg: &KidConfig) -> Result<KidResult, StatsError> {
    let n_x = rows_of(x, dim)?;
    let n_y = rows_of(y, dim)?;
    let subsets = kid_subsets(n_x, n_y, cfg)?;
    let subset_size = subsets.first().map_or(0, |s| s.x.len());
    let mut ws = Workspace::default();
    let values: Vec<f64> = subsets
        .iter()
        .map(|s| {
            ws.load(x, y, dim, &s.x, &s.y);
            ws.mmd2(dim)
        })
        .collect();
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / k;
    Ok(KidResult {
        mean,
        std: var.sqrt(),
        subset_size,
        values,
    })
}

/// Unbiased MMD² between all of `x` and all of `y` (one block; sizes may differ):
/// `Σ_{i≠j} k(xi,xj) / (m(m-1)) + Σ_{i≠j} k(yi,yj) / (n(n-1)) - 2 Σ k(xi,yj) / (mn)`.
pub fn mmd2_unbiased(x: &[f32], y: &[f32], dim: usize) -> Result<f64, StatsError> {
    let n_x = rows_of(x, dim)?;
    let n_y = rows_of(y, dim)?;
    if n_x < 2 || n_y < 2 {
        return Err(StatsError::TooFewSamples {
            n: n_x.min(n_y) as u64,
            needed: 2,
        });
    }
    let xi: Vec<usize> = (0..n_x).collect();
    let yi: Vec<usize> = (0..n_y).collect();
    let mut ws = Workspace::default();
    ws.load(x, y, dim, &xi, &yi);
    Ok(ws.mmd2(dim))
}

/// Buffers reused across subsets (each block is d x m, one sample per column).
struct Workspace {
    a: Vec<f64>,
    b: Vec<f64>,
    m: usize,
    n: usize,
    kxx: Mat<f64>,
    kyy: Mat<f64>,
    kxy: Mat<f64>,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace {
            a: Vec::new(),
            b: Vec::new(),
            m: 0,
            n: 0,
            kxx: Mat::new(),
            kyy: Mat::new(),
            kxy: Mat::new(),
        }
    }
}

impl Workspace {
    fn load(&mut self, x: &[f32], y: &[f32], dim: usize, xi: &[usize], yi: &[usize]) {
        gather(&mut self.a, x, dim, xi);
        gather(&mut self.b, y, dim, yi);
        self.m = xi.len();
        self.n = yi.len();
    }

    fn mmd2(&mut self, dim: usize) -> f64 {
        let (m, n) = (self.m, self.n);
        let a = MatRef::from_column_major_slice(&self.a, dim, m);
        let b = MatRef::from_column_major_slice(&self.b, dim, n);
        let alpha = 1.0 / dim as f64;
        let sxx = off_diagonal_sum(&mut self.kxx, a, alpha);
        let syy = off_diagonal_sum(&mut self.kyy, b, alpha);
        if self.kxy.nrows() != m || self.kxy.ncols() != n {
            self.kxy = Mat::zeros(m, n);
        }
        let par = faer::get_global_parallelism();
        matmul(self.kxy.as_mut(), Accum::Replace, a.transpose(), b, alpha, par);
        let mut sxy = 0.0;
        for j in 0..n {
            for &g in self.kxy.col(j).iter() {
                sxy += cubic(g);
            }
        }
        let (mf, nf) = (m as f64, n as f64);
        sxx / (mf * (mf - 1.0)) + syy / (nf * (nf - 1.0)) - 2.0 * sxy / (mf * nf)
    }
}

/// The kernel, given the already scaled dot product `x·y / d`.
#[inline]
fn cubic(g: f64) -> f64 {
    let t = g + 1.0;
    t * t * t
}

/// `Σ_{i≠j} k(ai, aj)` using only the strict lower triangle of `Aᵀ A` (symmetry).
fn off_diagonal_sum(k: &mut Mat<f64>, a: MatRef<'_, f64>, alpha: f64) -> f64 {
    let m = a.ncols();
    if k.nrows() != m {
        *k = Mat::zeros(m, m);
    }
    let par = faer::get_global_parallelism();
    tri_matmul(
        k.as_mut(),
        BlockStructure::StrictTriangularLower,
        Accum::Replace,
        a.transpose(),
        BlockStructure::Rectangular,
        a,
        BlockStructure::Rectangular,
        alpha,
        par,
    );
    let mut s = 0.0;
    for j in 0..m {
        for i in (j + 1)..m {
            s += cubic(k[(i, j)]);
        }
    }
    2.0 * s
}

/// Copies the selected rows of `src` (row-major, `dim` wide) into `dst` as columns.
fn gather(dst: &mut Vec<f64>, src: &[f32], dim: usize, idx: &[usize]) {
    dst.clear();
    dst.reserve(idx.len() * dim);
    for &r in idx {
        dst.extend(src[r * dim..(r + 1) * dim].iter().map(|&v| f64::from(v)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors() {
        let cfg = KidConfig {
            n_subsets: 0,
            ..KidConfig::default()
        };
        assert!(kid_subsets(10, 10, &cfg).is_err());
        assert!(kid_subsets(1, 10, &KidConfig::default()).is_err());
    }
}
