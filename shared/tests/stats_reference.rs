//! FeatureStats against numpy (`np.mean`, `np.cov`), merging, and sample-count checks.

mod common;

use common::{correlated_rows, read_f64, rel_err, run_py, write_f32};
use pagan_shared::{FeatureStats, Gaussian, StatsError, StatsWarning};

fn stats_of(rows: &[f32], d: usize, batch: usize) -> FeatureStats {
    let mut s = FeatureStats::new(d).expect("dim > 0");
    for chunk in rows.chunks(batch * d) {
        s.add_rows(chunk, chunk.len() / d).expect("valid rows");
    }
    s
}

#[test]
fn mean_and_cov_match_numpy_with_large_offset() {
    let (n, d) = (3000, 96);
    // Offset 1e4 with unit-scale spread: raw (unshifted) f64 sums would lose ~8 digits.
    let x = correlated_rows(11, n, d, 1e4, 1.0);
    let dir = tempfile::tempdir().expect("tempdir");
    write_f32(&dir.path().join("x.bin"), &x);
    run_py(
        dir.path(),
        &format!(
            "import numpy as np\n\
             x = np.fromfile('x.bin', '<f4').reshape({n}, {d}).astype(np.float64)\n\
             x.mean(axis=0).tofile('mu.bin')\n\
             np.cov(x, rowvar=False).tofile('sigma.bin')\n"
        ),
    );
    let mu_ref = read_f64(&dir.path().join("mu.bin"));
    let sigma_ref = read_f64(&dir.path().join("sigma.bin"));

    let g = stats_of(&x, d, 700).finalize().expect("enough samples");
    assert_eq!(g.n, Some(n as u64));
    assert!(g.warnings.is_empty());
    let e_mu = rel_err(&g.mu, &mu_ref);
    let e_sigma = rel_err(&g.sigma, &sigma_ref);
    eprintln!("mu rel err {e_mu:e}, sigma rel err {e_sigma:e}");
    assert!(e_mu < 1e-12, "mu differs from numpy: {e_mu:e}");
    assert!(e_sigma < 1e-9, "sigma differs from np.cov: {e_sigma:e}");
}

#[test]
fn merged_halves_equal_the_whole() {
    let (n, d) = (2500, 80);
    let x = correlated_rows(5, n, d, 300.0, 2.0);
    let whole = stats_of(&x, d, 10_000).finalize().expect("whole");

    // Different split points and batch sizes give different shifts per half.
    let cut = 1234 * d;
    let mut a = stats_of(&x[..cut], d, 100);
    let b = stats_of(&x[cut..], d, 333);
    a.merge(&b).expect("same dim");
    let merged = a.finalize().expect("merged");
    assert_eq!(merged.n, whole.n);
    let (em, es) = (
        rel_err(&merged.mu, &whole.mu),
        rel_err(&merged.sigma, &whole.sigma),
    );
    eprintln!("merge: mu {em:e}, sigma {es:e}");
    assert!(em < 1e-12 && es < 1e-12, "merge mismatch mu {em:e} sigma {es:e}");

    // Merging into an empty accumulator and merging an empty one are identities.
    let mut empty = FeatureStats::new(d).expect("dim");
    empty.merge(&stats_of(&x, d, 512)).expect("merge into empty");
    empty
        .merge(&FeatureStats::new(d).expect("dim"))
        .expect("merge empty");
    let e = empty.finalize().expect("finalize");
    assert!(rel_err(&e.sigma, &whole.sigma) < 1e-12);

    let other_dim = FeatureStats::new(d + 1).expect("dim");
    assert!(matches!(a.merge(&other_dim), Err(StatsError::DimMismatch { .. })));
}

#[test]
fn fewer_than_two_samples_is_an_error() {
    let d = 8;
    let mut s = FeatureStats::new(d).expect("dim");
    assert!(matches!(
        s.finalize(),
        Err(StatsError::TooFewSamples { n: 0, .. })
    ));
    s.add_rows(&[1.0; 8], 1).expect("one row");
    assert!(matches!(
        s.finalize(),
        Err(StatsError::TooFewSamples { n: 1, .. })
    ));
    s.add_rows(&[2.0; 8], 1).expect("second row");
    let g = s.finalize().expect("two samples suffice");
    assert!((g.sigma[0] - 0.5).abs() < 1e-15);
    assert!(FeatureStats::new(0).is_err());
}

#[test]
fn bad_rows_are_rejected_without_side_effects() {
    let d = 4;
    let mut s = FeatureStats::new(d).expect("dim");
    s.add_rows(&[1.0, 2.0, 3.0, 4.0, 0.0, 1.0, 0.0, 1.0], 2)
        .expect("ok");
    let before = s.finalize().expect("finalize");
    let mut bad = vec![0.5f32; 3 * d];
    bad[6] = f32::NAN;
    match s.add_rows(&bad, 3) {
        Err(StatsError::NonFiniteFeature { row: 1, col: 2, .. }) => {}
        other => panic!("expected NonFiniteFeature at (1, 2), got {other:?}"),
    }
    assert!(matches!(s.add_rows(&[0.0; 7], 2), Err(StatsError::Shape { .. })));
    assert_eq!(s.finalize().expect("finalize"), before);
}

#[test]
fn rank_deficient_covariance_warns() {
    let d = 64;
    let x = correlated_rows(3, 100, d, 0.0, 1.0);
    let few = stats_of(&x[..40 * d], d, 16).finalize().expect("40 samples");
    assert!(few.rank_deficient());
    assert_eq!(few.warnings, vec![StatsWarning::RankDeficient { n: 40, dim: d }]);
    assert!(few.warnings[0].to_string().contains("rank-deficient"));

    let enough = stats_of(&x, d, 16).finalize().expect("100 samples");
    assert!(!enough.rank_deficient());
    assert!(enough.warnings.is_empty());

    // The protocol case: 2048-d Inception features from fewer than 2,048 images.
    let d = 2048;
    let mut eye = vec![0.0; d * d];
    (0..d).for_each(|i| eye[i * d + i] = 1.0);
    let g = Gaussian::new(vec![0.0; d], eye.clone(), Some(2000)).expect("valid");
    assert!(g.rank_deficient());
    let g = Gaussian::new(vec![0.0; d], eye, Some(10_000)).expect("valid");
    assert!(!g.rank_deficient());
}
