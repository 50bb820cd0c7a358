//! The `clean` resize convention against clean-fid's own resize function (PyPI
//! `clean-fid`, `make_resizer("PIL", False, "bicubic", (299, 299))`, the resizer of its
//! default mode): the Rust pre-graph resize and the float64 reference, on 0..255 pixels.

mod common;

use common::{read_f64, run_py, write_f32};
use pagan_shared::ResizeMode;
use pagan_shared::inception::{INPUT_SIDE, NORM_CENTER, preprocess_reference};
use pagan_shared::resize::resize_to_input;
use pagan_shared::rng::SplitMix64;

/// clean-fid's resize of each `[h, w, 3]` image in `in.bin` (uint8 values stored as f32,
/// planar `[n, 3, h, w]`), written back planar as f64.
fn clean_fid_resize(dir: &std::path::Path, n: usize, h: usize, w: usize) -> Vec<f64> {
    let script = format!(
        r#"
import numpy as np
from cleanfid.resize import build_resizer
fn = build_resizer("clean")
x = np.fromfile("in.bin", "<f4").reshape({n}, 3, {h}, {w})
out = []
for img in x:
    hwc = np.ascontiguousarray(img.transpose(1, 2, 0)).astype(np.uint8)
    out.append(fn(hwc).transpose(2, 0, 1))
np.stack(out).astype(np.float64).tofile("out.bin")
"#
    );
    run_py(dir, &script);
    read_f64(&dir.join("out.bin"))
}

#[test]
fn clean_matches_clean_fid_up_and_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = INPUT_SIDE;
    // The datasets' sizes (up), a non-square one, and shrinking (PIL widens the kernel).
    for (n, h, w) in [(2, 28, 28), (2, 32, 32), (1, 64, 48), (1, 400, 512)] {
        let mut r = SplitMix64::new((h * w) as u64);
        let img: Vec<f32> = (0..n * 3 * h * w)
            .map(|_| (r.next_f32() * 255.0).floor())
            .collect();
        write_f32(&dir.path().join("in.bin"), &img);
        let theirs = clean_fid_resize(dir.path(), n, h, w);
        let ours = resize_to_input(&img, n * 3, h, w, ResizeMode::Clean);
        assert_eq!(ours.len(), theirs.len());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(&o, &t)| (o as f64 - t).abs())
            .fold(0.0, f64::max);
        eprintln!("{n}x3x{h}x{w}: max |ours - clean-fid| = {worst:.2e}");
        assert!(worst < 1e-3, "{h}x{w}: max |diff| {worst}");
        // The float64 reference (what the tch extractor is tested against) agrees too.
        let img64: Vec<f64> = img[..3 * h * w].iter().map(|&v| v as f64).collect();
        let reference = preprocess_reference(&img64, 3, h, w, ResizeMode::Clean);
        let worst = reference
            .iter()
            .zip(&theirs[..3 * s * s])
            .map(|(&r, &t)| (r * NORM_CENTER + NORM_CENTER - t).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "reference {h}x{w}: max |diff| {worst}");
        // Clipping is real: bicubic overshoots on random pixels, clean-fid clips to 0..255.
        assert!(theirs.iter().all(|&t| (0.0..=255.0).contains(&t)));
    }
}

#[test]
fn the_conventions_differ() {
    // A guard that the test above could fail: the linear conventions are far from clean.
    let (h, w) = (28, 28);
    let mut r = SplitMix64::new(9);
    let img: Vec<f32> = (0..3 * h * w).map(|_| (r.next_f32() * 255.0).floor()).collect();
    let clean = resize_to_input(&img, 3, h, w, ResizeMode::Clean);
    for mode in [ResizeMode::Asymmetric, ResizeMode::HalfPixel] {
        let other = resize_to_input(&img, 3, h, w, mode);
        let worst = clean
            .iter()
            .zip(&other)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst > 10.0, "{mode} vs clean: {worst}");
    }
}
