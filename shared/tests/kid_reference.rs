//! KID against a numpy implementation on the same subsets.

mod common;

use common::{correlated_rows, read_f64, run_py, write_f32, write_i64};
use pagan_shared::kid::{KidSubset, kid_subsets};
use pagan_shared::{KidConfig, kid, mmd2_unbiased};

/// numpy: unbiased MMD² with k(x, y) = (x·y/d + 1)³ for each block listed in
/// `xi.bin`/`yi.bin` (int64, `k` blocks of `m` indices), written to `mmd.bin`.
const NUMPY_KID: &str = r#"
import numpy as np, sys
d, nx, ny, k, m = (int(v) for v in open('dims.txt').read().split())
x = np.fromfile('x.bin', '<f4').reshape(nx, d).astype(np.float64)
y = np.fromfile('y.bin', '<f4').reshape(ny, d).astype(np.float64)
xi = np.fromfile('xi.bin', '<i8').reshape(k, -1)
yi = np.fromfile('yi.bin', '<i8').reshape(k, -1)
def mmd(a, b):
    kxx = (a @ a.T / d + 1) ** 3
    kyy = (b @ b.T / d + 1) ** 3
    kxy = (a @ b.T / d + 1) ** 3
    p, q = len(a), len(b)
    return ((kxx.sum() - np.trace(kxx)) / (p * (p - 1))
            + (kyy.sum() - np.trace(kyy)) / (q * (q - 1))
            - 2 * kxy.sum() / (p * q))
vals = np.array([mmd(x[xi[s]], y[yi[s]]) for s in range(k)])
vals.tofile('mmd.bin')
np.array([vals.mean(), vals.std()]).tofile('summary.bin')
"#;

fn numpy_kid(x: &[f32], y: &[f32], d: usize, subsets: &[KidSubset]) -> (Vec<f64>, f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    write_f32(&p.join("x.bin"), x);
    write_f32(&p.join("y.bin"), y);
    let flat = |f: fn(&KidSubset) -> &Vec<usize>| -> Vec<i64> {
        subsets
            .iter()
            .flat_map(|s| f(s).iter().map(|&i| i as i64))
            .collect()
    };
    write_i64(&p.join("xi.bin"), &flat(|s| &s.x));
    write_i64(&p.join("yi.bin"), &flat(|s| &s.y));
    std::fs::write(
        p.join("dims.txt"),
        format!(
            "{d} {} {} {} {}",
            x.len() / d,
            y.len() / d,
            subsets.len(),
            subsets[0].x.len()
        ),
    )
    .expect("dims");
    run_py(p, NUMPY_KID);
    let vals = read_f64(&p.join("mmd.bin"));
    let s = read_f64(&p.join("summary.bin"));
    (vals, s[0], s[1])
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn kid_matches_numpy_on_the_same_subsets() {
    let d = 48;
    // Non-negative-ish features with a shift between the sets, like pool3 activations.
    let x = correlated_rows(1, 300, d, 0.5, 0.4);
    let y = correlated_rows(2, 260, d, 0.6, 0.45);
    let cfg = KidConfig {
        subset_size: 100,
        n_subsets: 7,
        seed: 42,
    };
    let ours = kid(&x, &y, d, &cfg).expect("kid");
    let subsets = kid_subsets(300, 260, &cfg).expect("subsets");
    assert_eq!(ours.subset_size, 100);
    let (vals, mean, std) = numpy_kid(&x, &y, d, &subsets);
    for (a, b) in ours.values.iter().zip(&vals) {
        assert!(rel(*a, *b) < 1e-8, "subset MMD² {a} vs numpy {b}");
    }
    eprintln!("KID ours {} ± {} numpy {mean} ± {std}", ours.mean, ours.std);
    assert!(rel(ours.mean, mean) < 1e-8);
    assert!(rel(ours.std, std) < 1e-6);
    assert!(ours.mean > 0.0);
}

#[test]
fn subset_size_is_capped_and_single_block_matches_numpy() {
    let d = 32;
    let x = correlated_rows(3, 90, d, 0.0, 1.0);
    let y = correlated_rows(4, 70, d, 0.2, 1.0);
    // Default subset size 1000 is capped at the smaller set (70).
    let r = kid(
        &x,
        &y,
        d,
        &KidConfig {
            n_subsets: 3,
            ..KidConfig::default()
        },
    )
    .expect("kid");
    assert_eq!(r.subset_size, 70);

    // One block with all samples and unequal sizes.
    let all = vec![KidSubset {
        x: (0..90).collect(),
        y: (0..70).collect(),
    }];
    let (vals, _, _) = numpy_kid(&x, &y, d, &all);
    let ours = mmd2_unbiased(&x, &y, d).expect("mmd");
    assert!(rel(ours, vals[0]) < 1e-8, "MMD² {ours} vs numpy {}", vals[0]);
}

#[test]
fn kid_is_deterministic_given_the_seed() {
    let d = 16;
    let x = correlated_rows(5, 200, d, 0.0, 1.0);
    let y = correlated_rows(6, 200, d, 0.1, 1.0);
    let cfg = KidConfig {
        subset_size: 50,
        n_subsets: 5,
        seed: 9,
    };
    let a = kid(&x, &y, d, &cfg).expect("kid");
    let b = kid(&x, &y, d, &cfg).expect("kid");
    assert_eq!(a, b);
    let c = kid(&x, &y, d, &KidConfig { seed: 10, ..cfg }).expect("kid");
    assert_ne!(a.values, c.values);
    // Same distribution against itself: KID near zero relative to a shifted set.
    let same = kid(&x, &x, d, &cfg).expect("kid");
    assert!(same.mean.abs() < a.mean.abs());
}

#[test]
fn kid_input_errors() {
    let x = vec![0.0f32; 10];
    assert!(kid(&x, &x, 3, &KidConfig::default()).is_err()); // 10 not a multiple of 3
    assert!(kid(&x, &x, 0, &KidConfig::default()).is_err());
    assert!(mmd2_unbiased(&x[..5], &x, 5).is_err()); // one sample
    let mut nan = vec![0.0f32; 10];
    nan[3] = f32::NAN;
    assert!(kid(&nan, &x, 5, &KidConfig::default()).is_err());
}
