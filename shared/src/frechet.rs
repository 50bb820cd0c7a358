//! Frechet distance between two Gaussians (FID when they summarise Inception features):
//! `||mu1 - mu2||² + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})`.
//!
//! pytorch-fid takes a general (Schur-based) matrix square root of the non-symmetric
//! product `S1 S2`, which can turn complex or fail on singular covariances. We use
//! only symmetric factorisations: for any factor `S1 = W Wᵀ`, the eigenvalues of
//! `S1 S2` equal those of the symmetric PSD `M = Wᵀ S2 W`, so
//! `Tr((S1 S2)^{1/2}) = Σ sqrt(eig(M))` and only eigen*values* of `M` are needed.
//! `W` is the Cholesky factor when `S1` is positive definite (cheap), otherwise
//! `U D^{1/2}` from `S1 = U D Uᵀ` with negative rounding eigenvalues clamped to 0
//! (valid for rank-deficient `S1`). Tiny negative eigenvalues of `M` are clamped
//! too, so the result is always real and finite.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::error::StatsError;
use crate::stats::Gaussian;

/// The terms of a Frechet distance, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrechetTerms {
    /// `||mu1 - mu2||²`.
    pub mean_term: f64,
    /// `Tr(S1)`.
    pub trace1: f64,
    /// `Tr(S2)`.
    pub trace2: f64,
    /// `Tr((S1 S2)^{1/2})`.
    pub trace_sqrt: f64,
    /// `mean_term + trace1 + trace2 - 2 trace_sqrt`, clamped at 0 (the exact value is
    /// non-negative; a negative result can only be rounding).
    pub distance: f64,
}

/// Frechet distance between `a` and `b` (see the module docs for the method).
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64, StatsError> {
    frechet_terms(a, b).map(|t| t.distance)
}

/// Frechet distance with its individual terms.
pub fn frechet_terms(a: &Gaussian, b: &Gaussian) -> Result<FrechetTerms, StatsError> {
    a.validate()?;
    b.validate()?;
    let d = a.dim();
    if b.dim() != d {
        return Err(StatsError::DimMismatch {
            what: "frechet_distance",
            left: d,
            right: b.dim(),
        });
    }
    let par = faer::get_global_parallelism();
    let s1 = a.sigma_ref();
    let s2 = b.sigma_ref();

    let mean_term: f64 = a.mu.iter().zip(&b.mu).map(|(x, y)| (x - y) * (x - y)).sum();
    let trace1: f64 = (0..d).map(|i| s1[(i, i)]).sum();
    let trace2: f64 = (0..d).map(|i| s2[(i, i)]).sum();

    // Cholesky is ~30x cheaper than an eigendecomposition with vectors; it fails only
    // when S1 is (numerically) singular, e.g. rank-deficient with n <= d samples.
    let trace_sqrt = match trace_sqrt_cholesky(s1, s2, par) {
        Some(t) => t,
        None => trace_sqrt_eigen(s1, s2, par)?,
    };

    let raw = mean_term + trace1 + trace2 - 2.0 * trace_sqrt;
    if !raw.is_finite() {
        // Unreachable for validated finite inputs; kept so NaN can never escape.
        return Err(StatsError::NonFinite {
            what: "frechet distance",
            index: 0,
        });
    }
    Ok(FrechetTerms {
        mean_term,
        trace1,
        trace2,
        trace_sqrt,
        distance: raw.max(0.0),
    })
}

/// `Σ sqrt(eig(Lᵀ S2 L))` with `S1 = L Lᵀ`; `None` when `S1` is not positive definite.
fn trace_sqrt_cholesky(s1: MatRef<'_, f64>, s2: MatRef<'_, f64>, par: Par) -> Option<f64> {
    let llt = s1.llt(Side::Lower).ok()?;
    let l = llt.L();
    let d = l.nrows();
    let mut t = Mat::<f64>::zeros(d, d);
    tri_matmul(
        t.as_mut(),
        BlockStructure::Rectangular,
        Accum::Replace,
        s2,
        BlockStructure::Rectangular,
        l,
        BlockStructure::TriangularLower,
        1.0,
        par,
    );
    sqrt_eigen_sum(l.transpose(), BlockStructure::TriangularUpper, t.as_ref(), par).ok()
}

/// `Σ sqrt(eig(Wᵀ S2 W))` with `W = U D^{1/2}` from `S1 = U D Uᵀ` (any PSD `S1`).
fn trace_sqrt_eigen(s1: MatRef<'_, f64>, s2: MatRef<'_, f64>, par: Par) -> Result<f64, StatsError> {
    let eig = s1
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| StatsError::Eigen { what: "sigma1" })?;
    let lam = eig.S().column_vector();
    let d = s1.nrows();
    // W = U D^{1/2}: scale each eigenvector by the root of its (clamped) eigenvalue.
    let mut w = eig.U().to_owned();
    for j in 0..d {
        let r = lam[j].max(0.0).sqrt();
        w.col_mut(j).iter_mut().for_each(|x| *x *= r);
    }
    let mut t = Mat::<f64>::zeros(d, d);
    matmul(t.as_mut(), Accum::Replace, s2, w.as_ref(), 1.0, par);
    sqrt_eigen_sum(w.transpose(), BlockStructure::Rectangular, t.as_ref(), par)
}

/// `Σ sqrt(max(eig(Wᵀ T), 0))` for symmetric `Wᵀ T`; only its lower triangle is formed.
fn sqrt_eigen_sum(
    wt: MatRef<'_, f64>,
    wt_structure: BlockStructure,
    t: MatRef<'_, f64>,
    par: Par,
) -> Result<f64, StatsError> {
    let d = wt.nrows();
    let mut m = Mat::<f64>::zeros(d, d);
    tri_matmul(
        m.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        wt,
        wt_structure,
        t,
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    let eigs = m
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| StatsError::Eigen { what: "W^T S2 W" })?;
    Ok(eigs.iter().map(|&e| e.max(0.0).sqrt()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both factorisations must agree on a positive definite S1.
    #[test]
    fn cholesky_and_eigen_paths_agree() {
        let d = 120;
        let a = Mat::<f64>::from_fn(d, d, |i, j| (((i * 31 + j * 17) % 97) as f64 / 97.0) - 0.5);
        let b = Mat::<f64>::from_fn(d, d, |i, j| (((i * 13 + j * 7) % 89) as f64 / 89.0) - 0.4);
        let mut s1 = Mat::<f64>::zeros(d, d);
        let mut s2 = Mat::<f64>::zeros(d, d);
        matmul(
            s1.as_mut(),
            Accum::Replace,
            a.as_ref(),
            a.transpose(),
            1.0,
            Par::Seq,
        );
        matmul(
            s2.as_mut(),
            Accum::Replace,
            b.as_ref(),
            b.transpose(),
            1.0,
            Par::Seq,
        );
        for i in 0..d {
            s1[(i, i)] += 0.1;
            s2[(i, i)] += 0.1;
        }
        let c = trace_sqrt_cholesky(s1.as_ref(), s2.as_ref(), Par::Seq).expect("s1 is PD");
        let e = trace_sqrt_eigen(s1.as_ref(), s2.as_ref(), Par::Seq).expect("eigen");
        assert!((c - e).abs() / e < 1e-12, "cholesky {c} vs eigen {e}");
        // A singular S1 takes the eigen path.
        let z = Mat::<f64>::zeros(d, d);
        assert!(trace_sqrt_cholesky(z.as_ref(), s2.as_ref(), Par::Seq).is_none());
    }
}
