//! The feature extractor as one ONNX graph: `images` [N, 3, H, W] f32 in 0..255 (dynamic
//! N, H, W) -> Resize to 299 (linear, the chosen coordinate convention) -> `(x-128)/128`
//! -> Inception -> `features` [N, 2048]. Checked in ONNX Runtime against tch before it is
//! written, with the manifest the server reads.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use pagan_shared::inception::{
    FEATURE_DIM, INCEPTION_FILE, INCEPTION_FORMAT_VERSION, INCEPTION_KIND, INPUT_SIDE, InceptionManifest,
    NORM_CENTER, ResizeMode, WEIGHTS_ID,
};
use pagan_shared::manifest::{Dim as MDim, MANIFEST_FILE, TensorSpec, sha256_hex};
use tch::{Device, Tensor};

use super::ExportError;
use crate::fid::inception::Inception;
use crate::onnx::proto::DataType;
use crate::onnx::record::values;
use crate::onnx::{self, AttrValue, Dim, GraphBuilder, OnnxRecorder, runtime};

/// Name of the image input.
pub const INPUT_NAME: &str = "images";
/// Name of the feature output.
pub const OUTPUT_NAME: &str = "features";
/// Largest accepted |ORT - tch| of a feature.
pub const MAX_ABS_TOL: f64 = 1e-3;
/// Largest accepted ||ORT - tch|| / ||tch|| over a batch.
pub const REL_L2_TOL: f64 = 1e-5;
/// Input sizes every export is checked at (the datasets' 28, 32 and 64).
pub const CHECK_SIDES: [usize; 3] = [28, 32, 64];
/// Images per checked batch.
pub const CHECK_BATCH: usize = 2;

/// The whole feature extractor as a serialised ONNX model.
pub fn inception_onnx(inc: &Inception) -> Result<Vec<u8>, ExportError> {
    let mode = inc.mode();
    if !mode.in_graph() {
        return Err(ExportError::ResizeNotInGraph(mode));
    }
    let mut b = GraphBuilder::new("fid_inception_v3");
    b.doc(
        "FID Inception-v3 (TF 2015-12-05 weights): images [N, 3, H, W] float32 in 0..255 -> bilinear resize \
         to 299x299 -> (x - 128) / 128 -> pool3 features [N, 2048]",
    );
    b.metadata("pagan.kind", INCEPTION_KIND);
    b.metadata("pagan.weights", WEIGHTS_ID);
    b.metadata("pagan.resize_mode", mode.as_str());
    let dims: Vec<Dim> = vec!["N".into(), 3.into(), "H".into(), "W".into()];
    let x = b.input(INPUT_NAME, DataType::Float, &dims)?;

    // sizes = [N, C] of the input followed by [299, 299]: the batch stays dynamic.
    let shape = b.node("input_shape", "Shape", &[&x], &[])?;
    let zero = b.initializer_i64("const_0", &[1], &[0])?;
    let two = b.initializer_i64("const_2", &[1], &[2])?;
    let nc = b.node("batch_and_channels", "Slice", &[&shape, &zero, &two], &[])?;
    let side = INPUT_SIDE as i64;
    let hw = b.initializer_i64("target_hw", &[2], &[side, side])?;
    let sizes = b.node(
        "resize_sizes",
        "Concat",
        &[&nc, &hw],
        &[("axis", AttrValue::Int(0))],
    )?;
    let resized = b.node(
        "resize",
        "Resize",
        &[&x, "", "", &sizes],
        &[
            ("mode", AttrValue::String("linear".into())),
            (
                "coordinate_transformation_mode",
                AttrValue::String(mode.as_str().into()),
            ),
        ],
    )?;
    let center = b.initializer_f32("norm_center", &[], &[NORM_CENTER as f32])?;
    let centered = b.node("norm_sub", "Sub", &[&resized, &center], &[])?;
    let normed = b.node("norm_div", "Div", &[&centered, &center], &[])?;

    let pooled = inc.net().forward(&mut OnnxRecorder::new(&mut b), &normed)?;
    b.add_node(
        "flatten",
        "Flatten",
        &[&pooled],
        &[OUTPUT_NAME],
        &[("axis", AttrValue::Int(1))],
    )?;
    b.output(
        OUTPUT_NAME,
        DataType::Float,
        &["N".into(), (FEATURE_DIM as i64).into()],
    );
    Ok(b.finish(onnx::OPSET, onnx::PRODUCER)?)
}

/// One ORT-vs-tch comparison.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Input side (H = W).
    pub side: usize,
    /// Largest |ORT - tch|.
    pub max_abs: f64,
    /// ||ORT - tch|| / ||tch||.
    pub rel_l2: f64,
}

impl Check {
    /// True when both tolerances hold (NaN fails).
    pub fn passes(&self) -> bool {
        self.max_abs <= MAX_ABS_TOL && self.rel_l2 <= REL_L2_TOL
    }
}

/// Deterministic test images [n, 3, side, side] in 0..255.
pub fn check_images(n: usize, side: usize, seed: u64) -> Vec<f32> {
    pagan_shared::latent::uniform(seed, n, 3 * side * side)
        .into_iter()
        .map(|u| (u + 1.0) * 127.5)
        .collect()
}

/// Runs the ONNX model in ORT (CPU) and `inc` in tch on the same images at each side.
pub fn compare(inc: &Inception, onnx_bytes: &[u8], sides: &[usize]) -> Result<Vec<Check>, ExportError> {
    let mut session = runtime::session_from_bytes(onnx_bytes, 0)?;
    let mut out = Vec::new();
    for &side in sides {
        let n = CHECK_BATCH;
        let data = check_images(n, side, side as u64);
        let dims = [n as i64, 3, side as i64, side as i64];
        let (got, shape) = runtime::run_f32(&mut session, INPUT_NAME, &data, &dims)?;
        let want_shape = vec![n as i64, FEATURE_DIM as i64];
        if shape != want_shape {
            return Err(ExportError::Shape {
                what: format!("inception ONNX output at {side}x{side}"),
                expected: want_shape,
                got: shape,
            });
        }
        let want = values(&inc.features(&Tensor::from_slice(&data).view(dims)))?;
        let (mut max_abs, mut diff2, mut norm2) = (0.0f64, 0.0f64, 0.0f64);
        for (&a, &b) in got.iter().zip(&want) {
            let d = (a as f64 - b as f64).abs();
            max_abs = if d.is_nan() { f64::INFINITY } else { max_abs.max(d) };
            diff2 += d * d;
            norm2 += (b as f64) * (b as f64);
        }
        let rel_l2 = if norm2 > 0.0 {
            (diff2 / norm2).sqrt()
        } else {
            f64::INFINITY
        };
        out.push(Check {
            side,
            max_abs,
            rel_l2,
        });
    }
    Ok(out)
}

/// What [`export_inception`] wrote and measured.
#[derive(Debug, Clone)]
pub struct InceptionExport {
    /// The ONNX file.
    pub onnx_path: PathBuf,
    /// The manifest.
    pub manifest_path: PathBuf,
    /// The ORT-vs-tch checks.
    pub checks: Vec<Check>,
}

/// Loads the weights, builds the graph, checks it in ORT against tch at
/// [`CHECK_SIDES`], and writes `inception.onnx` + `manifest.json` into `out_dir`.
pub fn export_inception(
    weights_path: &Path,
    out_dir: &Path,
    mode: ResizeMode,
) -> anyhow::Result<InceptionExport> {
    if !mode.in_graph() {
        return Err(ExportError::ResizeNotInGraph(mode).into());
    }
    let inc = Inception::load(weights_path, Device::Cpu, mode)?;
    let bytes = inception_onnx(&inc)?;
    let checks = compare(&inc, &bytes, &CHECK_SIDES)?;
    for c in &checks {
        tracing::info!(
            side = c.side,
            max_abs = c.max_abs,
            rel_l2 = c.rel_l2,
            "ORT vs tch features"
        );
        if !c.passes() {
            bail!(
                "the ONNX graph disagrees with tch at {0}x{0}: max |diff| {1:.3e} (limit {MAX_ABS_TOL:e}), \
                 relative L2 {2:.3e} (limit {REL_L2_TOL:e}); nothing written",
                c.side,
                c.max_abs,
                c.rel_l2
            );
        }
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let onnx_path = out_dir.join(INCEPTION_FILE);
    pagan_shared::fs::write_atomic(&onnx_path, &bytes)
        .with_context(|| format!("writing {}", onnx_path.display()))?;
    let manifest = InceptionManifest {
        kind: INCEPTION_KIND.to_owned(),
        format_version: INCEPTION_FORMAT_VERSION,
        weights: WEIGHTS_ID.to_owned(),
        weights_source: weights_path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        weights_sha256: Some(inc.weights_sha256().to_owned()),
        resize_mode: mode,
        file: INCEPTION_FILE.to_owned(),
        opset: onnx::OPSET,
        input: TensorSpec {
            name: INPUT_NAME.to_owned(),
            shape: vec![
                MDim::Sym("N".into()),
                MDim::Fixed(3),
                MDim::Sym("H".into()),
                MDim::Sym("W".into()),
            ],
        },
        output: TensorSpec {
            name: OUTPUT_NAME.to_owned(),
            shape: vec![MDim::Sym("N".into()), MDim::Fixed(FEATURE_DIM as i64)],
        },
        sha256: sha256_hex(&bytes),
        created_by: format!("pagan-trainer {}", env!("CARGO_PKG_VERSION")),
    };
    let manifest_path = out_dir.join(MANIFEST_FILE);
    manifest.write(&manifest_path)?;
    Ok(InceptionExport {
        onnx_path,
        manifest_path,
        checks,
    })
}
