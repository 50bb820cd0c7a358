//! Frechet distance between two Gaussians (FID when they summarise Inception features):
//! `||mu1 - mu2||² + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})`.
//!
//! pytorch-fid takes a general (Schur-based) matrix square root of the non-symmetric
//! product `S1 S2`, which can turn complex or fail on singular covariances. We use
//! only symmetric eigendecompositions: with `S1 = U D Uᵀ` and `W = U D^{1/2}`, the
//! eigenvalues of `S1 S2` equal those of the symmetric PSD `M = Wᵀ S2 W` (similar to
//! `S1^{1/2} S2 S1^{1/2}`), so `Tr((S1 S2)^{1/2}) = Σ sqrt(eig(M))`. Tiny negative
//! eigenvalues (rounding on singular matrices) are clamped to 0, so the result is
//! always real and finite; it is valid for rank-deficient `S1` too.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
use faer::{Accum, Mat, Side};

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

    let eig = s1
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| StatsError::Eigen { what: "sigma1" })?;
    let lam = eig.S().column_vector();
    // W = U D^{1/2}: scale each eigenvector by the root of its (clamped) eigenvalue.
    let mut w = eig.U().to_owned();
    for j in 0..d {
        let r = lam[j].max(0.0).sqrt();
        w.col_mut(j).iter_mut().for_each(|x| *x *= r);
    }
    let mut t = Mat::<f64>::zeros(d, d);
    matmul(t.as_mut(), Accum::Replace, s2, w.as_ref(), 1.0, par);
    // M = Wᵀ (S2 W): only the lower triangle is needed by the eigensolver.
    let mut m = Mat::<f64>::zeros(d, d);
    tri_matmul(
        m.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        w.transpose(),
        BlockStructure::Rectangular,
        t.as_ref(),
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    let mu_eigs = m
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| StatsError::Eigen {
            what: "sqrt(S1) S2 sqrt(S1)",
        })?;
    let trace_sqrt: f64 = mu_eigs.iter().map(|&e| e.max(0.0).sqrt()).sum();

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
