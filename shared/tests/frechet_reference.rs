//! Frechet distance against pytorch-fid's recipe (scipy `sqrtm`) and closed forms.

mod common;

use common::{correlated_rows, python_fid, write_f64};
use pagan_shared::rng::SplitMix64;
use pagan_shared::{
    FeatureStats, Gaussian, StatsError, frechet_distance, frechet_terms, frechet_terms_from_features,
};

fn gaussian_of(rows: &[f32], d: usize) -> Gaussian {
    let mut s = FeatureStats::new(d).expect("dim");
    s.add_rows(rows, rows.len() / d).expect("rows");
    s.finalize().expect("finalize")
}

#[test]
fn fid_matches_scipy_sqrtm_d128() {
    let d = 128;
    let a = gaussian_of(&correlated_rows(1, 1500, d, 0.0, 1.0), d);
    let b = gaussian_of(&correlated_rows(2, 1200, d, 0.3, 1.3), d);
    let dir = tempfile::tempdir().expect("tempdir");
    write_f64(&dir.path().join("mu1.bin"), &a.mu);
    write_f64(&dir.path().join("sigma1.bin"), &a.sigma);
    write_f64(&dir.path().join("mu2.bin"), &b.mu);
    write_f64(&dir.path().join("sigma2.bin"), &b.sigma);
    let reference = python_fid(dir.path(), d);
    let ours = frechet_distance(&a, &b).expect("fid");
    let rel = (ours - reference).abs() / reference.abs();
    eprintln!("d=128: ours {ours:.12} scipy {reference:.12} rel {rel:e}");
    assert!(rel < 1e-6, "FID {ours} vs scipy {reference} (rel {rel:e})");
    // Symmetric in its arguments.
    let swapped = frechet_distance(&b, &a).expect("fid");
    assert!((swapped - ours).abs() / ours < 1e-9);
}

/// `Q diag(lam) Qᵀ` with `Q` a product of random Householder reflections (dense, known
/// spectrum), row-major.
fn spd_with_spectrum(q_seed: u64, lam: &[f64]) -> Vec<f64> {
    let d = lam.len();
    let mut m = vec![0.0; d * d];
    for (i, &l) in lam.iter().enumerate() {
        m[i * d + i] = l;
    }
    let mut rng = SplitMix64::new(q_seed);
    for _ in 0..4 {
        let v = common::normals(&mut rng, d);
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let u: Vec<f64> = v.iter().map(|x| x / norm).collect();
        // H M H = M - 2 u pᵀ - 2 p uᵀ + 4 c u uᵀ with p = M u, c = uᵀ M u.
        let p: Vec<f64> = (0..d)
            .map(|i| (0..d).map(|j| m[i * d + j] * u[j]).sum())
            .collect();
        let c: f64 = u.iter().zip(&p).map(|(a, b)| a * b).sum();
        for i in 0..d {
            for j in 0..d {
                m[i * d + j] += -2.0 * u[i] * p[j] - 2.0 * p[i] * u[j] + 4.0 * c * u[i] * u[j];
            }
        }
    }
    // Remove rounding asymmetry so the matrix is exactly symmetric.
    for i in 0..d {
        for j in (i + 1)..d {
            let s = 0.5 * (m[i * d + j] + m[j * d + i]);
            m[i * d + j] = s;
            m[j * d + i] = s;
        }
    }
    m
}

/// Decaying spectrum, roughly like Inception pool3 features.
fn decaying_spectrum(d: usize) -> Vec<f64> {
    let tau = d as f64 / 14.0;
    (0..d).map(|i| 5.0 * (-(i as f64) / tau).exp() + 1e-3).collect()
}

/// `mean + trace1 + trace2 - 2 trace_sqrt` before the clamp at 0, so rounding on
/// identical inputs is visible to the tests.
fn unclamped(t: &pagan_shared::FrechetTerms) -> f64 {
    t.mean_term + t.trace1 + t.trace2 - 2.0 * t.trace_sqrt
}

#[test]
fn fid_2048_of_a_distribution_with_itself_is_zero() {
    let d = 2048;
    let mut rng = SplitMix64::new(99);
    let g = Gaussian::new(
        common::normals(&mut rng, d),
        spd_with_spectrum(7, &decaying_spectrum(d)),
        Some(10_000),
    )
    .expect("g");
    let t = frechet_terms(&g, &g).expect("fid");
    let raw = unclamped(&t);
    eprintln!("FID(X, X) at d=2048: {raw:e} (trace {})", t.trace1);
    assert!(raw.abs() < 1e-6, "FID(X, X) = {raw}");
    assert_eq!(t.distance, raw.max(0.0));
}

#[test]
fn fid_equals_closed_form_when_covariances_commute() {
    let d = 512;
    let a = decaying_spectrum(d);
    let b: Vec<f64> = (0..d).map(|i| a[i] * (1.0 + 0.5 * (i as f64).sin())).collect();
    let mut rng = SplitMix64::new(98);
    let mu1 = common::normals(&mut rng, d);
    let mu2: Vec<f64> = mu1.iter().map(|m| m + 0.01).collect();
    let g1 = Gaussian::new(mu1, spd_with_spectrum(5, &a), Some(10_000)).expect("g1");
    let g2 = Gaussian::new(mu2, spd_with_spectrum(5, &b), Some(10_000)).expect("g2");
    // S1 and S2 share eigenvectors: FID = |Δμ|² + Σ (√a - √b)².
    let expected: f64 = d as f64 * 1e-4
        + a.iter()
            .zip(&b)
            .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    let t = frechet_terms(&g1, &g2).expect("fid");
    let rel = (t.distance - expected).abs() / expected;
    eprintln!(
        "commuting d={d}: ours {} expected {expected} rel {rel:e}",
        t.distance
    );
    assert!(rel < 1e-9, "closed form mismatch: rel {rel:e}");
    assert!((t.mean_term - d as f64 * 1e-4).abs() < 1e-9);
}

#[test]
fn rank_deficient_covariances_match_the_closed_form_and_the_gram_form() {
    // Singular covariances with shared eigenvectors: each has zeros where the other does
    // not, so the eigen path (Cholesky fails) is exercised; FID = |Δμ|² + Σ (√a - √b)².
    let d = 64;
    let a: Vec<f64> = (0..d)
        .map(|i| if i % 2 == 0 { 1.0 + i as f64 / 10.0 } else { 0.0 })
        .collect();
    let b: Vec<f64> = (0..d)
        .map(|i| if i % 3 == 0 { 0.0 } else { 0.5 + i as f64 / 20.0 })
        .collect();
    let g1 = Gaussian::new(vec![0.0; d], spd_with_spectrum(7, &a), Some(30)).expect("g1");
    let g2 = Gaussian::new(vec![0.1; d], spd_with_spectrum(7, &b), Some(30)).expect("g2");
    assert!(g1.rank_deficient() && g2.rank_deficient());
    let expected = d as f64 * 0.01
        + a.iter()
            .zip(&b)
            .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    let f = frechet_distance(&g1, &g2).expect("fid");
    let rel = (f - expected).abs() / expected;
    eprintln!("rank-deficient closed form d={d}: ours {f} expected {expected} rel {rel:e}");
    assert!(rel < 1e-6, "rank-deficient FID {f} vs closed form {expected}");

    // Sample covariances of 30 rows in 64-d: the general path and the Gram form (an n x n
    // computation, a different factorisation) agree, and FID(X, X) is 0.
    let rows = correlated_rows(21, 30, d, 0.0, 1.0);
    let x = gaussian_of(&rows, d);
    let y = gaussian_of(&correlated_rows(22, 30, d, 0.5, 1.0), d);
    assert!(x.rank_deficient() && y.rank_deficient());
    let general = frechet_distance(&x, &y).expect("general");
    let gram = frechet_terms_from_features(&rows, d, &y).expect("gram").distance;
    assert!(
        (general - gram).abs() < 1e-8 * general,
        "general {general} vs Gram {gram}"
    );
    let zero = unclamped(&frechet_terms(&x, &x).expect("fid"));
    assert!(zero.abs() < 1e-6, "FID(X, X) = {zero}");
}

#[test]
fn invalid_inputs_are_errors_not_nan() {
    let a = Gaussian::new(
        vec![0.0; 3],
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        None,
    )
    .expect("valid");
    let b = Gaussian::new(vec![0.0; 2], vec![1.0, 0.0, 0.0, 1.0], None).expect("valid");
    assert!(matches!(
        frechet_distance(&a, &b),
        Err(StatsError::DimMismatch { .. })
    ));
    let mut nan = a.clone();
    nan.sigma[4] = f64::NAN;
    assert!(matches!(
        frechet_distance(&a, &nan),
        Err(StatsError::NonFinite { what: "sigma", .. })
    ));
    assert!(Gaussian::new(vec![0.0; 2], vec![1.0; 3], None).is_err());
}
