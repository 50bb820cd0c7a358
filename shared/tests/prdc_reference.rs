//! `prdc` against a float64 numpy/scipy implementation of the clovaai `prdc` conventions
//! (full distance matrices from `scipy.spatial.distance.cdist`, exact differences).

mod common;

use common::{correlated_rows, read_f64, run_py, write_f32};
use pagan_shared::StatsError;
use pagan_shared::prdc::{Prdc, PrdcConfig, prdc};

/// precision, recall, density, coverage from numpy for `real`/`fake` in `dir`.
fn numpy_prdc(dir: &std::path::Path, real: &[f32], fake: &[f32], dim: usize, cfg: &PrdcConfig) -> [f64; 4] {
    write_f32(&dir.join("real.bin"), real);
    write_f32(&dir.join("fake.bin"), fake);
    let script = format!(
        r#"
import numpy as np
from scipy.spatial.distance import cdist
d, kpr, kdc = {dim}, {kpr}, {kdc}
real = np.fromfile('real.bin', '<f4').astype(np.float64).reshape(-1, d)
fake = np.fromfile('fake.bin', '<f4').astype(np.float64).reshape(-1, d)
def radii(x, k):
    # k-th neighbour excluding self = (k+1)-th smallest including the zero diagonal.
    return np.partition(cdist(x, x), k, axis=1)[:, k]
rr_pr, rr_dc, rf_pr = radii(real, kpr), radii(real, kdc), radii(fake, kpr)
rf = cdist(real, fake)
precision = (rf < rr_pr[:, None]).any(axis=0).mean()
recall = (rf < rf_pr[None, :]).any(axis=1).mean()
density = (1.0 / kdc) * (rf < rr_dc[:, None]).sum(axis=0).mean()
coverage = (rf.min(axis=1) < rr_dc).mean()
np.array([precision, recall, density, coverage], dtype=np.float64).tofile('out.bin')
"#,
        kpr = cfg.k_precision_recall,
        kdc = cfg.k_density_coverage,
    );
    run_py(dir, &script);
    let v = read_f64(&dir.join("out.bin"));
    [v[0], v[1], v[2], v[3]]
}

/// `n_real + n_fake` rows of one distribution; the fake part is shifted and shrunk so the
/// two overlap only partly.
fn sets(
    seed: u64,
    n_real: usize,
    n_fake: usize,
    dim: usize,
    shift: f32,
    shrink: f32,
) -> (Vec<f32>, Vec<f32>) {
    let all = correlated_rows(seed, n_real + n_fake, dim, 0.0, 1.0);
    let (real, fake) = all.split_at(n_real * dim);
    // Shrink about the sample mean of the fake part so only the spread changes.
    let mut mean = vec![0f32; dim];
    for row in fake.chunks_exact(dim) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += v / n_fake as f32);
    }
    let fake = fake
        .chunks_exact(dim)
        .flat_map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, &m)| m + shrink * (v - m) + shift)
                .collect::<Vec<_>>()
        })
        .collect();
    (real.to_vec(), fake)
}

fn check(got: &Prdc, want: [f64; 4], what: &str) {
    // Counts: the same integers over the same n give the same f64; a tie at a radius that
    // rounding broke differently would move one count (none occurs with this data).
    assert_eq!(got.precision, want[0], "{what}: precision");
    assert_eq!(got.recall, want[1], "{what}: recall");
    assert_eq!(got.coverage, want[3], "{what}: coverage");
    assert!(
        (got.density - want[2]).abs() <= 1e-12 * want[2],
        "{what}: density {} vs {}",
        got.density,
        want[2]
    );
}

#[test]
fn matches_numpy_on_overlapping_sets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dim = 64;
    let (real, fake) = sets(11, 300, 250, dim, 0.3, 0.9);
    let cfg = PrdcConfig::default();
    let got = prdc(&real, &fake, dim, &cfg).expect("prdc");
    let want = numpy_prdc(dir.path(), &real, &fake, dim, &cfg);
    check(&got, want, "300 x 250 x 64");
    assert_eq!(
        (
            got.n_real,
            got.n_fake,
            got.k_precision_recall,
            got.k_density_coverage
        ),
        (300, 250, 3, 5)
    );
    // The data must make every number informative, not saturated.
    for (name, v) in [
        ("precision", got.precision),
        ("recall", got.recall),
        ("coverage", got.coverage),
    ] {
        assert!(v > 0.0 && v < 1.0, "{name} = {v}");
    }
    // Shrunk fakes crowd into real neighbourhoods: density above 1 is part of the check.
    assert!(got.density > 1.0, "density = {}", got.density);
    assert!(
        got.precision != got.recall,
        "shrunk fakes should trade recall for precision"
    );

    // Other neighbourhood sizes, including k_dc < k_pr.
    let cfg = PrdcConfig {
        k_precision_recall: 7,
        k_density_coverage: 2,
    };
    let got = prdc(&real, &fake, dim, &cfg).expect("prdc");
    check(&got, numpy_prdc(dir.path(), &real, &fake, dim, &cfg), "k = 7, 2");
}

#[test]
fn matches_numpy_across_distance_tiles() {
    // More rows than one 1024-row tile on both sides, with partial last tiles.
    let dir = tempfile::tempdir().expect("tempdir");
    let dim = 16;
    let (real, fake) = sets(12, 2100, 1900, dim, 0.3, 0.7);
    let cfg = PrdcConfig::default();
    let got = prdc(&real, &fake, dim, &cfg).expect("prdc");
    check(
        &got,
        numpy_prdc(dir.path(), &real, &fake, dim, &cfg),
        "2100 x 1900 x 16",
    );
    for v in [got.precision, got.recall, got.coverage] {
        assert!(v > 0.0 && v < 1.0, "{got:?}");
    }
}

#[test]
fn identical_sets_are_fully_precise_and_covering() {
    let dim = 8;
    let real = correlated_rows(13, 200, dim, 5.0, 1.0);
    let got = prdc(&real, &real, dim, &PrdcConfig::default()).expect("prdc");
    // Each fake sits on a real sample (distance 0 < any positive radius) and vice versa.
    assert_eq!((got.precision, got.recall, got.coverage), (1.0, 1.0, 1.0));
    assert!(got.density >= 1.0 / 5.0);
}

#[test]
fn rejects_bad_input() {
    let dim = 4;
    let rows = correlated_rows(14, 10, dim, 0.0, 1.0);
    let cfg = PrdcConfig::default();
    assert!(matches!(prdc(&rows, &rows, 0, &cfg), Err(StatsError::ZeroDim)));
    assert!(matches!(
        prdc(&rows[..39], &rows, dim, &cfg),
        Err(StatsError::Shape { got: 39, .. })
    ));
    assert!(matches!(
        prdc(&rows, &rows[..38], dim, &cfg),
        Err(StatsError::Shape { got: 38, .. })
    ));
    // Real needs max(k_pr, k_dc) + 1 = 6 rows, fake k_pr + 1 = 4.
    assert!(matches!(
        prdc(&rows[..5 * dim], &rows, dim, &cfg),
        Err(StatsError::TooFewSamples { n: 5, needed: 6 })
    ));
    assert!(prdc(&rows[..6 * dim], &rows[..4 * dim], dim, &cfg).is_ok());
    assert!(matches!(
        prdc(&rows, &rows[..3 * dim], dim, &cfg),
        Err(StatsError::TooFewSamples { n: 3, needed: 4 })
    ));
    assert!(matches!(
        prdc(&[], &rows, dim, &cfg),
        Err(StatsError::TooFewSamples { n: 0, .. })
    ));
    let mut bad = rows.clone();
    bad[2 * dim + 3] = f32::NAN;
    assert!(matches!(
        prdc(&bad, &rows, dim, &cfg),
        Err(StatsError::NonFiniteFeature { row: 2, col: 3, .. })
    ));
    assert!(matches!(
        prdc(&rows, &bad, dim, &cfg),
        Err(StatsError::NonFiniteFeature { row: 2, col: 3, .. })
    ));
    for (k_pr, k_dc) in [(0, 5), (3, 0)] {
        let cfg = PrdcConfig {
            k_precision_recall: k_pr,
            k_density_coverage: k_dc,
        };
        assert!(matches!(
            prdc(&rows, &rows, dim, &cfg),
            Err(StatsError::Config(_))
        ));
    }
}
