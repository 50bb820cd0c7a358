//! The FID Inception: our tch module against the TorchScript original, the preprocessing
//! against its float64 reference, pytorch-fid state dicts, and the ONNX export in ORT.

use std::path::{Path, PathBuf};

use pagan_shared::inception::{INPUT_SIDE, ResizeMode, preprocess_reference};
use pagan_trainer::export::inception::{CHECK_SIDES, compare, export_inception, inception_onnx};
use pagan_trainer::fid::inception::{Inception, preprocess};
use tch::{Device, Kind, Tensor};

use crate::common::{python, torch_rng, weights as weights_path};

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn features_equal_the_torchscript_module() {
    let path = weights_path();
    let ours = Inception::load(&path, Device::Cpu, ResizeMode::Asymmetric).expect("load");
    let script = tch::CModule::load(&path).expect("torchscript");
    let s = INPUT_SIDE as i64;
    let x = {
        let _rng = torch_rng();
        tch::manual_seed(3);
        Tensor::rand([3, 3, s, s], (Kind::Float, Device::Cpu)) * 2.0 - 1.0
    };
    let want = tch::no_grad(|| script.forward_ts(&[&x])).expect("torchscript forward");
    let got = ours.features_preprocessed(&x);
    assert_eq!(got.size(), vec![3, 2048]);
    let d = max_abs(&got, &want);
    println!("max |ours - torchscript| = {d:e}");
    assert!(d <= 1e-4, "features differ from the TorchScript module by {d:e}");
    // Not trivially equal: the features vary between images.
    assert!(max_abs(&got.get(0), &got.get(1)) > 1e-2);
}

/// Raw 8-bit images through our preprocessing (two GEMMs) and module equal the
/// TorchScript original fed the float64 reference preprocessing: the whole path from
/// bytes to features, grey and RGB, every resize convention.
#[test]
fn features_of_raw_images_equal_the_torchscript_module_on_the_reference_preprocessing() {
    let path = weights_path();
    let script = tch::CModule::load(&path).expect("torchscript");
    for (mode, (c, h, w)) in [
        (ResizeMode::Asymmetric, (1, 28, 28)),
        (ResizeMode::HalfPixel, (3, 32, 32)),
        (ResizeMode::Clean, (3, 32, 32)),
    ] {
        let ours = Inception::load(&path, Device::Cpu, mode).expect("load");
        let n = 2;
        let mut bytes = Vec::new();
        let mut reference = Vec::new();
        for i in 0..n {
            let img = test_image(c, h, w, 7 + i as u64, true);
            bytes.extend(img.iter().map(|&v| v as u8));
            reference.extend(
                preprocess_reference(&img, c, h, w, mode)
                    .into_iter()
                    .map(|v| v as f32),
            );
        }
        let (c, h, w, s) = (c as i64, h as i64, w as i64, INPUT_SIDE as i64);
        let got = ours.features(&Tensor::from_slice(&bytes).view([n, c, h, w]));
        let x = Tensor::from_slice(&reference).view([n, 3, s, s]);
        let want = tch::no_grad(|| script.forward_ts(&[&x])).expect("torchscript forward");
        let d = max_abs(&got, &want);
        println!("{mode} {c}x{h}x{w}: max |ours - torchscript(reference preprocessing)| = {d:e}");
        assert!(d <= 1e-4, "{mode}: features differ by {d:e}");
        assert!(max_abs(&got.get(0), &got.get(1)) > 1e-2);
    }
}

/// [C, H, W] test image with a gradient plus noise, values 0..255 (integers when `uint8`).
fn test_image(c: usize, h: usize, w: usize, seed: u64, uint8: bool) -> Vec<f64> {
    let u = pagan_shared::latent::uniform(seed, 1, c * h * w);
    (0..c * h * w)
        .map(|i| {
            let (y, x) = ((i / w) % h, i % w);
            let v = (y * 255 / h.max(1) + x * 3) as f64 * 0.5 + (u[i] as f64 + 1.0) * 60.0;
            let v = v.clamp(0.0, 255.0);
            if uint8 { v.round() } else { v }
        })
        .collect()
}

#[test]
fn preprocessing_matches_the_float64_reference() {
    for mode in ResizeMode::ALL {
        for &(c, h, w, uint8) in &[
            (1, 28, 28, true),
            (3, 32, 32, false),
            (3, 64, 40, true),
            (1, 500, 333, false),
        ] {
            let img = test_image(c, h, w, (h * w) as u64, uint8);
            let want = preprocess_reference(&img, c, h, w, mode);
            let t = if uint8 {
                let bytes: Vec<u8> = img.iter().map(|&v| v as u8).collect();
                Tensor::from_slice(&bytes).view([1, c as i64, h as i64, w as i64])
            } else {
                let f: Vec<f32> = img.iter().map(|&v| v as f32).collect();
                Tensor::from_slice(&f).view([1, c as i64, h as i64, w as i64])
            };
            let got = preprocess(&t, mode);
            assert_eq!(got.size(), vec![1, 3, 299, 299]);
            let got: Vec<f32> = Vec::try_from(&got.flatten(0, -1)).expect("values");
            let d = got
                .iter()
                .zip(&want)
                .map(|(&a, &b)| (a as f64 - b).abs())
                .fold(0.0, f64::max);
            // Outputs lie in [-1, 1]; f32 rounding of 0..255 values is ~1e-5 before /128.
            assert!(d < 2e-6, "{mode} {c}x{h}x{w}: max |tch - f64| = {d:e}");
        }
    }
    // The two conventions really differ (upsampling 28 -> 299 shifts by half a pixel).
    let img = test_image(1, 28, 28, 1, true);
    let a = preprocess_reference(&img, 1, 28, 28, ResizeMode::Asymmetric);
    let b = preprocess_reference(&img, 1, 28, 28, ResizeMode::HalfPixel);
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-2));
}

fn write_pth(dir: &Path, name: &str, fmt: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/write_fid_pth.py");
    let st = python()
        .arg(&script)
        .arg(weights_path())
        .arg(&out)
        .arg(fmt)
        .args(extra)
        .status()
        .expect("run python");
    assert!(st.success(), "write_fid_pth.py failed");
    out
}

#[test]
fn pytorch_fid_state_dicts_load_with_mapped_names() {
    let dir = tempfile::tempdir().expect("tmp");
    let reference = Inception::load(&weights_path(), Device::Cpu, ResizeMode::HalfPixel).expect("load");
    let rng = torch_rng();
    tch::manual_seed(5);
    let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu)) * 255.0;
    drop(rng);
    let want = reference.features(&x);
    for fmt in ["zip", "legacy"] {
        let pth = write_pth(dir.path(), &format!("fid-{fmt}.pth"), fmt, &[]);
        let inc = Inception::load(&pth, Device::Cpu, ResizeMode::HalfPixel)
            .unwrap_or_else(|e| panic!("{fmt} state dict: {e}"));
        let d = max_abs(&inc.features(&x), &want);
        assert!(d == 0.0, "{fmt}: features differ by {d:e}");
    }
    // A state dict whose BN has a real scale is other weights: refused, naming the layer.
    let bad = write_pth(dir.path(), "scaled.pth", "zip", &["--bad-scale"]);
    let err = Inception::load(&bad, Device::Cpu, ResizeMode::HalfPixel)
        .expect_err("a BN scale != 1 must be refused")
        .to_string();
    assert!(err.contains("BN scale"), "{err}");
    // Not weights at all.
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"not a model").expect("write");
    assert!(Inception::load(&junk, Device::Cpu, ResizeMode::HalfPixel).is_err());
    let missing = Inception::load(&dir.path().join("nope.pt"), Device::Cpu, ResizeMode::Asymmetric)
        .expect_err("missing file")
        .to_string();
    assert!(missing.contains("make setup"), "{missing}");
}

#[test]
fn onnx_export_matches_tch_and_passes_the_checker() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("inception");
    let report = export_inception(&weights_path(), &out, ResizeMode::Asymmetric).expect("export");
    for c in &report.checks {
        println!(
            "asymmetric {0}x{0}: max |ORT - tch| = {1:.3e}, rel L2 = {2:.3e}",
            c.side, c.max_abs, c.rel_l2
        );
        assert!(c.passes());
    }
    assert_eq!(
        report.checks.iter().map(|c| c.side).collect::<Vec<_>>(),
        CHECK_SIDES.to_vec()
    );
    let manifest = pagan_shared::InceptionManifest::read(&report.manifest_path).expect("manifest");
    assert_eq!(manifest.resize_mode, ResizeMode::Asymmetric);
    let bytes = std::fs::read(&report.onnx_path).expect("onnx");
    manifest.check_bytes(&bytes).expect("sha256");

    let st = python()
        .args([
            "-c",
            "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); \
             print(m.graph.input[0].type.tensor_type.shape)",
        ])
        .arg(&report.onnx_path)
        .status()
        .expect("python");
    assert!(st.success(), "onnx.checker rejected the graph");

    // The other convention, checked the same way (no file written).
    let half = Inception::load(&weights_path(), Device::Cpu, ResizeMode::HalfPixel).expect("load");
    let half_bytes = inception_onnx(&half).expect("graph");
    for c in compare(&half, &half_bytes, &[28]).expect("compare") {
        println!(
            "half_pixel {0}x{0}: max |ORT - tch| = {1:.3e}, rel L2 = {2:.3e}",
            c.side, c.max_abs, c.rel_l2
        );
        assert!(c.passes());
    }
}
