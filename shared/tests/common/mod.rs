//! Helpers for the reference tests: the project's Python (numpy/scipy), raw binary
//! exchange files and deterministic test data.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use pagan_shared::rng::SplitMix64;

/// The project virtualenv's Python. Reference tests must not pass silently without it.
pub fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        p.exists(),
        "{} not found: these reference tests compare against numpy/scipy in the project \
         virtualenv; run `make setup` first",
        p.display()
    );
    p
}

/// Runs `script` with the venv Python in `dir`; panics with its stderr on failure.
pub fn run_py(dir: &Path, script: &str) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("failed to start the venv python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python reference script failed (if numpy/scipy are missing, run `make setup`):\n{stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes little-endian f32 values (read in numpy with `np.fromfile(p, '<f4')`).
pub fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write f32 file");
}

/// Writes little-endian f64 values.
pub fn write_f64(path: &Path, v: &[f64]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write f64 file");
}

/// Writes little-endian i64 values.
pub fn write_i64(path: &Path, v: &[i64]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write i64 file");
}

/// Reads little-endian f64 values written by numpy's `tofile`.
pub fn read_f64(path: &Path) -> Vec<f64> {
    let b = std::fs::read(path).expect("read f64 file");
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Standard normal samples (Box–Muller on SplitMix64).
pub fn normals(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1 = 1.0 - rng.next_f64(); // (0, 1]
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push(r * t.cos());
        out.push(r * t.sin());
    }
    out.truncate(n);
    out
}

/// `n` correlated rows of `d` features, row-major f32: `x = offset + shift_j + z A`
/// with a random dense mixing matrix `A` (so the covariance is far from diagonal).
pub fn correlated_rows(seed: u64, n: usize, d: usize, offset: f64, scale: f64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let a: Vec<f64> = normals(&mut rng, d * d)
        .into_iter()
        .map(|v| v * scale / (d as f64).sqrt())
        .collect();
    let shift: Vec<f64> = normals(&mut rng, d);
    let z = normals(&mut rng, n * d);
    let mut out = vec![0f32; n * d];
    for r in 0..n {
        let zr = &z[r * d..(r + 1) * d];
        for j in 0..d {
            let mut acc = offset + shift[j];
            for (k, zk) in zr.iter().enumerate() {
                acc += zk * a[k * d + j];
            }
            out[r * d + j] = acc as f32;
        }
    }
    out
}

/// `max |a - b| / max |b|`: relative error on the scale of the reference.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / scale.max(f64::MIN_POSITIVE)
}

/// A pytorch-fid style reference FID in Python for `mu1.bin` … `sigma2.bin` (f64,
/// dimension `d`) in `dir`: `sqrtm(sigma1 @ sigma2)` (scipy), real part, with the eps
/// fallback when the root is not finite. Prints the value with full precision.
pub fn python_fid(dir: &Path, d: usize) -> f64 {
    let script = format!(
        r#"
import warnings, numpy as np
from scipy import linalg
d = {d}
ld = lambda n, s: np.fromfile(n, '<f8').reshape(s)
m1, s1 = ld('mu1.bin', (d,)), ld('sigma1.bin', (d, d))
m2, s2 = ld('mu2.bin', (d,)), ld('sigma2.bin', (d, d))
diff = m1 - m2
with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
if not np.isfinite(covmean).all():
    off = np.eye(d) * 1e-6
    covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
if np.iscomplexobj(covmean):
    covmean = covmean.real
print(repr(float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))))
"#
    );
    run_py(dir, &script)
        .trim()
        .parse()
        .expect("python printed a float")
}
