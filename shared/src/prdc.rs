//! Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al.
//! 2020) of a generated ("fake") feature set against a real (reference) one.
//!
//! Conventions are those of the clovaai `prdc` package:
//! - distances are Euclidean;
//! - the radius `r_i(k)` of a sample is the distance to its k-th nearest neighbour in its
//!   own set, itself excluded (clovaai takes the (k+1)-th smallest including the zero
//!   self-distance, which is the same value);
//! - every comparison is strict (`<`);
//! - precision: fraction of fake `j` with `d(real_i, fake_j) < r_real_i(k_pr)` for some `i`;
//! - recall: fraction of real `i` with `d(real_i, fake_j) < r_fake_j(k_pr)` for some `j`;
//! - density: `Σ_j #{i : d(real_i, fake_j) < r_real_i(k_dc)} / (k_dc * n_fake)` (may
//!   exceed 1);
//! - coverage: fraction of real `i` with `min_j d(real_i, fake_j) < r_real_i(k_dc)`.
//!
//! Squared distances are computed in f64 as `|a|² + |b|² - 2 a·b` (clamped at 0) with faer
//! matrix products on tiles of at most 1024 x 1024 pairs, so memory stays bounded
//! whatever the set sizes (no `n x n` matrix is held) while the work runs at GEMM speed.
//! Each row keeps only its `k` smallest squared distances, updated tile by tile; within a
//! set only the lower triangle of tiles is computed, each distance serving both rows.
//! Squared distances are compared with squared radii (the same order as distances).

use std::ops::Range;

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::error::StatsError;

/// Rows per side of a distance tile: a 1024 x 1024 f64 tile is 8 MiB, and two 1024-row
/// f64 copies of 2048-d features are 32 MiB, large enough for GEMM efficiency.
const TILE: usize = 1024;

/// Neighbourhood sizes of the two metric pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrdcConfig {
    /// `k` of precision and recall (Kynkäänniemi et al. use 3).
    pub k_precision_recall: usize,
    /// `k` of density and coverage (Naeem et al. use 5).
    pub k_density_coverage: usize,
}

impl Default for PrdcConfig {
    /// The papers' values: `k = 3` for precision/recall, `k = 5` for density/coverage.
    fn default() -> Self {
        PrdcConfig {
            k_precision_recall: 3,
            k_density_coverage: 5,
        }
    }
}

/// Precision, recall, density and coverage of a fake set against a real one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prdc {
    /// Fraction of fake samples inside the real manifold (k = `k_precision_recall`).
    pub precision: f64,
    /// Fraction of real samples inside the fake manifold (k = `k_precision_recall`).
    pub recall: f64,
    /// Mean number of real neighbourhoods holding a fake sample, over `k_density_coverage`.
    pub density: f64,
    /// Fraction of real neighbourhoods (k = `k_density_coverage`) holding a fake sample.
    pub coverage: f64,
    /// `k` used for precision and recall.
    pub k_precision_recall: usize,
    /// `k` used for density and coverage.
    pub k_density_coverage: usize,
    /// Number of real samples.
    pub n_real: usize,
    /// Number of fake samples.
    pub n_fake: usize,
}

/// Precision, recall, density and coverage of `fake` against `real`, both row-major with
/// `dim` features per row (see the module docs for the exact conventions).
pub fn prdc(real: &[f32], fake: &[f32], dim: usize, cfg: &PrdcConfig) -> Result<Prdc, StatsError> {
    prdc_tiled(real, fake, dim, cfg, TILE)
}

/// [`prdc`] with a given tile size (unit tests use tiny tiles to exercise the blocking).
fn prdc_tiled(
    real: &[f32],
    fake: &[f32],
    dim: usize,
    cfg: &PrdcConfig,
    tile: usize,
) -> Result<Prdc, StatsError> {
    let k_pr = cfg.k_precision_recall;
    let k_dc = cfg.k_density_coverage;
    if k_pr == 0 || k_dc == 0 {
        return Err(StatsError::Config(format!(
            "PRDC neighbourhood sizes must be at least 1, got k_precision_recall = {k_pr}, \
             k_density_coverage = {k_dc}"
        )));
    }
    let n_real = rows_of(real, dim)?;
    let n_fake = rows_of(fake, dim)?;
    // Real samples need both radii, fake samples only the precision/recall one; a radius
    // needs k other samples in the set.
    let k_real = k_pr.max(k_dc);
    for (n, k) in [(n_real, k_real), (n_fake, k_pr)] {
        if n <= k {
            return Err(StatsError::TooFewSamples {
                n: n as u64,
                needed: (k as u64).saturating_add(1),
            });
        }
    }

    let mut ws = Workspace::new(tile, dim);
    let real_norms = squared_norms(real, dim);
    let fake_norms = squared_norms(fake, dim);

    let real_knn = ws.self_knn(real, &real_norms, k_real);
    let real_r_pr: Vec<f64> = real_knn.chunks_exact(k_real).map(|s| s[k_pr - 1]).collect();
    let real_r_dc: Vec<f64> = real_knn.chunks_exact(k_real).map(|s| s[k_dc - 1]).collect();
    drop(real_knn);
    let fake_knn = ws.self_knn(fake, &fake_norms, k_pr);
    let fake_r_pr: Vec<f64> = fake_knn.chunks_exact(k_pr).map(|s| s[k_pr - 1]).collect();
    drop(fake_knn);

    let mut fake_in_real = vec![false; n_fake];
    let mut real_in_fake = vec![false; n_real];
    let mut real_covered = vec![false; n_real];
    let mut fake_neighbourhoods = vec![0u64; n_fake];
    ws.cross(real, &real_norms, fake, &fake_norms, |i, j, d2| {
        if d2 < real_r_pr[i] {
            fake_in_real[j] = true;
        }
        if d2 < fake_r_pr[j] {
            real_in_fake[i] = true;
        }
        if d2 < real_r_dc[i] {
            fake_neighbourhoods[j] += 1;
            real_covered[i] = true;
        }
    });

    let fraction = |flags: &[bool]| flags.iter().filter(|&&f| f).count() as f64 / flags.len() as f64;
    let total: u64 = fake_neighbourhoods.iter().sum();
    Ok(Prdc {
        precision: fraction(&fake_in_real),
        recall: fraction(&real_in_fake),
        density: total as f64 / (k_dc as f64 * n_fake as f64),
        coverage: fraction(&real_covered),
        k_precision_recall: k_pr,
        k_density_coverage: k_dc,
        n_real,
        n_fake,
    })
}

/// Number of rows of a row-major buffer, after checking `dim`, its length and finiteness.
fn rows_of(data: &[f32], dim: usize) -> Result<usize, StatsError> {
    if dim == 0 {
        return Err(StatsError::ZeroDim);
    }
    let rows = data.len() / dim;
    if rows * dim != data.len() {
        return Err(StatsError::Shape {
            rows,
            dim,
            expected: rows * dim,
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
    Ok(rows)
}

/// `|x|²` of every row, in f64.
fn squared_norms(data: &[f32], dim: usize) -> Vec<f64> {
    data.chunks_exact(dim)
        .map(|row| row.iter().map(|&v| f64::from(v) * f64::from(v)).sum())
        .collect()
}

/// Inserts `v` into `top`, the ascending `k` smallest values seen so far, if it belongs.
#[inline]
fn offer(top: &mut [f64], v: f64) {
    let last = top.len() - 1;
    if v < top[last] {
        let mut p = last;
        while p > 0 && top[p - 1] > v {
            top[p] = top[p - 1];
            p -= 1;
        }
        top[p] = v;
    }
}

/// Scratch reused across tiles: two f64 row blocks (one sample per column) and the
/// product tile.
struct Workspace {
    tile: usize,
    dim: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    g: Mat<f64>,
    par: Par,
}

impl Workspace {
    fn new(tile: usize, dim: usize) -> Self {
        Workspace {
            tile,
            dim,
            a: Vec::new(),
            b: Vec::new(),
            g: Mat::zeros(tile, tile),
            par: faer::get_global_parallelism(),
        }
    }

    /// For each row, its `k` smallest squared distances to the other rows of the same set,
    /// ascending, flattened (`n * k` values).
    fn self_knn(&mut self, x: &[f32], norms: &[f64], k: usize) -> Vec<f64> {
        let n = norms.len();
        let mut best = vec![f64::INFINITY; n * k];
        for i0 in (0..n).step_by(self.tile) {
            let ri = i0..(i0 + self.tile).min(n);
            load(&mut self.a, x, self.dim, ri.clone());
            for j0 in (0..=i0).step_by(self.tile) {
                let rj = j0..(j0 + self.tile).min(n);
                let diagonal = j0 == i0;
                // Only the strictly lower triangle (i > j) is used: each distance updates
                // both rows, so both see the very same value.
                let g = if diagonal {
                    self.product_lower(ri.len())
                } else {
                    load(&mut self.b, x, self.dim, rj.clone());
                    self.product(ri.len(), rj.len())
                };
                for (jj, j) in rj.enumerate() {
                    let first = if diagonal { jj + 1 } else { 0 };
                    for ii in first..ri.len() {
                        let i = i0 + ii;
                        let d2 = (g[(ii, jj)] + norms[i] + norms[j]).max(0.0);
                        offer(&mut best[i * k..(i + 1) * k], d2);
                        offer(&mut best[j * k..(j + 1) * k], d2);
                    }
                }
            }
        }
        best
    }

    /// Calls `visit(i, j, d²)` for every real row `i` and fake row `j`.
    fn cross(
        &mut self,
        real: &[f32],
        real_norms: &[f64],
        fake: &[f32],
        fake_norms: &[f64],
        mut visit: impl FnMut(usize, usize, f64),
    ) {
        let (n_real, n_fake) = (real_norms.len(), fake_norms.len());
        for i0 in (0..n_real).step_by(self.tile) {
            let ri = i0..(i0 + self.tile).min(n_real);
            load(&mut self.a, real, self.dim, ri.clone());
            for j0 in (0..n_fake).step_by(self.tile) {
                let rj = j0..(j0 + self.tile).min(n_fake);
                load(&mut self.b, fake, self.dim, rj.clone());
                let g = self.product(ri.len(), rj.len());
                for (jj, j) in rj.enumerate() {
                    for (ii, i) in ri.clone().enumerate() {
                        visit(i, j, (g[(ii, jj)] + real_norms[i] + fake_norms[j]).max(0.0));
                    }
                }
            }
        }
    }

    /// `-2 Aᵀ B` for the loaded blocks (`m` and `n` samples).
    fn product(&mut self, m: usize, n: usize) -> MatRef<'_, f64> {
        let a = MatRef::from_column_major_slice(&self.a, self.dim, m);
        let b = MatRef::from_column_major_slice(&self.b, self.dim, n);
        let g: MatMut<'_, f64> = self.g.as_mut().submatrix_mut(0, 0, m, n);
        matmul(g, Accum::Replace, a.transpose(), b, -2.0, self.par);
        self.g.as_ref().submatrix(0, 0, m, n)
    }

    /// The strictly lower triangle of `-2 Aᵀ A` for the loaded block `A` (`m` samples);
    /// the rest of the returned tile is stale.
    fn product_lower(&mut self, m: usize) -> MatRef<'_, f64> {
        let a = MatRef::from_column_major_slice(&self.a, self.dim, m);
        tri_matmul(
            self.g.as_mut().submatrix_mut(0, 0, m, m),
            BlockStructure::StrictTriangularLower,
            Accum::Replace,
            a.transpose(),
            BlockStructure::Rectangular,
            a,
            BlockStructure::Rectangular,
            -2.0,
            self.par,
        );
        self.g.as_ref().submatrix(0, 0, m, m)
    }
}

/// Copies rows `rows` of `src` (row-major, `dim` wide) into `dst` as f64 columns.
fn load(dst: &mut Vec<f64>, src: &[f32], dim: usize, rows: Range<usize>) {
    dst.clear();
    dst.extend(
        src[rows.start * dim..rows.end * dim]
            .iter()
            .map(|&v| f64::from(v)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward O(n²) version of the definitions (exact differences, sorting).
    fn naive(real: &[f32], fake: &[f32], dim: usize, k_pr: usize, k_dc: usize) -> [f64; 4] {
        let rows = |x: &[f32]| -> Vec<Vec<f64>> {
            x.chunks_exact(dim)
                .map(|r| r.iter().map(|&v| f64::from(v)).collect())
                .collect()
        };
        let (r, f) = (rows(real), rows(fake));
        let dist = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt()
        };
        let radius = |set: &[Vec<f64>], i: usize, k: usize| {
            let mut d: Vec<f64> = (0..set.len())
                .filter(|&j| j != i)
                .map(|j| dist(&set[i], &set[j]))
                .collect();
            d.sort_by(f64::total_cmp);
            d[k - 1]
        };
        let rr_pr: Vec<f64> = (0..r.len()).map(|i| radius(&r, i, k_pr)).collect();
        let rr_dc: Vec<f64> = (0..r.len()).map(|i| radius(&r, i, k_dc)).collect();
        let rf_pr: Vec<f64> = (0..f.len()).map(|j| radius(&f, j, k_pr)).collect();
        let d = |i: usize, j: usize| dist(&r[i], &f[j]);
        let p = (0..f.len())
            .filter(|&j| (0..r.len()).any(|i| d(i, j) < rr_pr[i]))
            .count();
        let rc = (0..r.len())
            .filter(|&i| (0..f.len()).any(|j| d(i, j) < rf_pr[j]))
            .count();
        let dens: usize = (0..f.len())
            .map(|j| (0..r.len()).filter(|&i| d(i, j) < rr_dc[i]).count())
            .sum();
        let cov = (0..r.len())
            .filter(|&i| (0..f.len()).any(|j| d(i, j) < rr_dc[i]))
            .count();
        [
            p as f64 / f.len() as f64,
            rc as f64 / r.len() as f64,
            dens as f64 / (k_dc as f64 * f.len() as f64),
            cov as f64 / r.len() as f64,
        ]
    }

    /// Deterministic pseudo-random rows (no ties at the precision the test needs).
    fn rows(seed: u64, n: usize, dim: usize, shift: f32) -> Vec<f32> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        (0..n * dim).map(|_| rng.next_f32() * 2.0 - 1.0 + shift).collect()
    }

    #[test]
    fn tiles_of_any_size_match_the_definitions() {
        let dim = 5;
        let real = rows(1, 61, dim, 0.0);
        let fake = rows(2, 47, dim, 0.3);
        let cfg = PrdcConfig {
            k_precision_recall: 3,
            k_density_coverage: 5,
        };
        let want = naive(&real, &fake, dim, 3, 5);
        for tile in [1, 2, 7, 16, 61, 1024] {
            let got = prdc_tiled(&real, &fake, dim, &cfg, tile).expect("prdc");
            assert_eq!(
                [got.precision, got.recall, got.density, got.coverage],
                want,
                "tile {tile}"
            );
            assert_eq!((got.n_real, got.n_fake), (61, 47));
        }
        assert!(want.iter().all(|&v| v > 0.0) && want[0] < 1.0 && want[1] < 1.0 && want[3] < 1.0);
    }

    #[test]
    fn hand_computed_line() {
        // Real points 0, 1, 2, 3 on a line: 1-NN radii 1, 1, 1, 1 (k = 1 for both pairs).
        // Fake 0.5 is within 1 of 0 and 1; fake 10 is far from all; fake radii are 9.5.
        let real = [0.0f32, 1.0, 2.0, 3.0];
        let fake = [0.5f32, 10.0];
        let cfg = PrdcConfig {
            k_precision_recall: 1,
            k_density_coverage: 1,
        };
        let got = prdc(&real, &fake, 1, &cfg).expect("prdc");
        assert_eq!(got.precision, 0.5);
        // Every real point is within 9.5 of fake 0.5 (and 3 is within 9.5 of 10).
        assert_eq!(got.recall, 1.0);
        // Fake 0.5 lies in the neighbourhoods of 0 and 1: 2 / (1 * 2).
        assert_eq!(got.density, 1.0);
        assert_eq!(got.coverage, 0.5);
        // Strict comparison: a fake exactly on a radius is outside.
        let got = prdc(&real, &[1.0, 10.0], 1, &cfg).expect("prdc");
        // Fake 1.0 coincides with real 1 (distance 0 < 1), at distance 1 (not < 1) of 0 and 2.
        assert_eq!((got.precision, got.density, got.coverage), (0.5, 0.5, 0.25));
    }

    #[test]
    fn offer_keeps_the_k_smallest() {
        let mut top = [f64::INFINITY; 3];
        for v in [5.0, 1.0, 4.0, 1.0, 3.0, 2.0, 9.0] {
            offer(&mut top, v);
        }
        assert_eq!(top, [1.0, 1.0, 2.0]);
    }

    #[test]
    fn rejects_bad_input() {
        let cfg = PrdcConfig::default();
        let ok = rows(3, 10, 2, 0.0);
        assert!(matches!(prdc(&ok, &ok, 0, &cfg), Err(StatsError::ZeroDim)));
        assert!(matches!(
            prdc(&ok[..19], &ok, 2, &cfg),
            Err(StatsError::Shape { .. })
        ));
        assert!(matches!(
            prdc(&ok[..10], &ok, 2, &cfg),
            Err(StatsError::TooFewSamples { n: 5, needed: 6 })
        ));
        assert!(matches!(
            prdc(&ok, &ok[..6], 2, &cfg),
            Err(StatsError::TooFewSamples { n: 3, needed: 4 })
        ));
        let zero = PrdcConfig {
            k_precision_recall: 0,
            k_density_coverage: 5,
        };
        assert!(matches!(prdc(&ok, &ok, 2, &zero), Err(StatsError::Config(_))));
        let mut bad = ok.clone();
        bad[7] = f32::INFINITY;
        assert!(matches!(
            prdc(&ok, &bad, 2, &cfg),
            Err(StatsError::NonFiniteFeature { row: 3, col: 1, .. })
        ));
    }
}
