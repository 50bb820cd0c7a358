//! Generator export: the tch generator as an ONNX graph (opset 17, dynamic batch, BN in
//! eval mode), checked in ONNX Runtime against the tch forward before anything is written,
//! plus the model folder (`generator.onnx`, `manifest.json`, `samples.png`) for the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ort::session::Session;
use pagan_shared::manifest::{
    self, Dim as MDim, ImageSpec, LatentSpec, ModelKind, ModelManifest, OnnxSpec, TensorSpec, TrainingSummary,
};
use tch::{Device, Kind, Tensor};

use crate::nets::{BN_EPS, BatchNorm, Deconv, Generator};
use crate::onnx::proto::DataType;
use crate::onnx::{self, AttrValue, Dim, GraphBuilder, OnnxError};
use crate::ort_run::{self, OrtRunError};
use crate::train;

/// Name of the generator's latent input.
pub const INPUT_NAME: &str = "z";
/// Name of the generator's image output.
pub const OUTPUT_NAME: &str = "images";
/// Symbol of the dynamic batch axis.
pub const BATCH_DIM: &str = "N";
/// Largest |ORT - tch| accepted on the check (float32 rounding differences only).
pub const TOLERANCE: f32 = 1e-4;
/// Batch sizes every export is checked on (1 and an odd size > 1).
pub const VERIFY_BATCHES: [usize; 2] = [1, 7];
/// Seed of the latents of the check and of `samples.png`, so exports are reproducible.
pub const SAMPLE_SEED: u64 = 20_191_208;
/// Side of the sample grid (8 x 8 images).
pub const GRID_SIDE: usize = 8;
/// File name of the sample grid inside the model folder.
pub const SAMPLES_FILE: &str = "samples.png";

/// Errors of the export library functions.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The graph could not be built.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// Reading weights or running the tch forward failed.
    #[error("tch: {0}")]
    Tch(#[from] tch::TchError),
    /// ONNX Runtime failed to load, build or run the model.
    #[error(transparent)]
    Ort(#[from] OrtRunError),
    /// A weight or output with an unexpected shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// What was checked.
        what: String,
        /// Expected shape.
        expected: Vec<i64>,
        /// Actual shape.
        got: Vec<i64>,
    },
}

/// What [`export_run`] wrote and measured.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The ONNX file.
    pub onnx_path: PathBuf,
    /// The manifest.
    pub manifest_path: PathBuf,
    /// Largest |ORT - tch| over the checked batches.
    pub max_abs_diff: f32,
    /// Batch sizes checked.
    pub batch_sizes: Vec<usize>,
}

/// Values of a tensor as f32, row-major, copied to the CPU.
pub(crate) fn values(t: &Tensor) -> Result<Vec<f32>, ExportError> {
    let flat = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .flatten(0, -1);
    Ok(Vec::<f32>::try_from(&flat)?)
}

/// Adds `t` as an f32 initializer called `name`, after checking its shape.
pub(crate) fn weight(
    b: &mut GraphBuilder,
    name: &str,
    t: &Tensor,
    expected: &[i64],
) -> Result<String, ExportError> {
    let got = t.size();
    if got != expected {
        return Err(ExportError::Shape {
            what: format!("weight `{name}`"),
            expected: expected.to_vec(),
            got,
        });
    }
    Ok(b.initializer_f32(name, expected, &values(t)?)?)
}

/// BatchNormalization in inference mode (running statistics) over channel axis 1.
fn batch_norm(
    b: &mut GraphBuilder,
    name: &str,
    x: &str,
    bn: &BatchNorm,
    c: i64,
) -> Result<String, ExportError> {
    let scale = weight(b, &format!("{name}.weight"), &bn.weight, &[c])?;
    let bias = weight(b, &format!("{name}.bias"), &bn.bias, &[c])?;
    let mean = weight(b, &format!("{name}.running_mean"), &bn.running_mean, &[c])?;
    let var = weight(b, &format!("{name}.running_var"), &bn.running_var, &[c])?;
    Ok(b.node(
        name,
        "BatchNormalization",
        &[x, &scale, &bias, &mean, &var],
        &[("epsilon", AttrValue::Float(BN_EPS as f32))],
    )?)
}

/// ConvTranspose with torch's geometry: symmetric padding, output padding at the end.
fn deconv(b: &mut GraphBuilder, name: &str, x: &str, d: &Deconv) -> Result<String, ExportError> {
    let shape = d.weight.size();
    if shape.len() != 4 || shape[2] != shape[3] {
        return Err(ExportError::Shape {
            what: format!("deconv `{name}` kernel (square 4-D expected)"),
            expected: vec![-1, -1, -1, -1],
            got: shape,
        });
    }
    let (cout, k) = (shape[1], shape[2]);
    let w = weight(b, &format!("{name}.weight"), &d.weight, &shape)?;
    let mut inputs = vec![x.to_owned(), w];
    if let Some(bias) = &d.bias {
        inputs.push(weight(b, &format!("{name}.bias"), bias, &[cout])?);
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let (s, p, op) = (d.stride, d.padding, d.output_padding);
    Ok(b.node(
        name,
        "ConvTranspose",
        &inputs,
        &[
            ("kernel_shape", AttrValue::Ints(vec![k, k])),
            ("strides", AttrValue::Ints(vec![s, s])),
            ("pads", AttrValue::Ints(vec![p, p, p, p])),
            ("output_padding", AttrValue::Ints(vec![op, op])),
            ("dilations", AttrValue::Ints(vec![1, 1])),
            ("group", AttrValue::Int(1)),
        ],
    )?)
}

/// The generator as a serialised ONNX model: input `z` [N, latent] f32, output `images`
/// [N, C, H, W] f32 in [-1, 1]. BatchNorm uses the running statistics (eval mode).
pub fn generator_onnx(g: &Generator) -> Result<Vec<u8>, ExportError> {
    let latent = g.arch.latent;
    let [c, h, w] = g.arch.image;
    let [c0, h0, w0] = g.start;
    let f = c0 * h0 * w0;
    let mut b = GraphBuilder::new("pagan_generator");
    b.doc("PA-GAN SN-DCGAN generator: z [N, latent] ~ uniform(-1,1) -> images [N, C, H, W] in [-1, 1]");
    b.metadata("pagan.kind", "generator");
    b.metadata("pagan.latent", &latent.to_string());
    b.metadata("pagan.image", &format!("{c}x{h}x{w}"));

    let z = b.input(INPUT_NAME, DataType::Float, &[BATCH_DIM.into(), latent.into()])?;
    let fc_w = weight(&mut b, "fc.weight", &g.fc_weight, &[f, latent])?;
    let fc_b = weight(&mut b, "fc.bias", &g.fc_bias, &[f])?;
    // Gemm with transB computes z W^T + b, exactly torch's linear.
    let x = b.node(
        "fc",
        "Gemm",
        &[&z, &fc_w, &fc_b],
        &[("transB", AttrValue::Int(1))],
    )?;
    // BatchNormalization takes [N, C] with C = F: the BN1d before the reshape.
    let x = batch_norm(&mut b, "bn0", &x, &g.bn0, f)?;
    let x = b.node("relu0", "Relu", &[&x], &[])?;
    // -1 keeps the batch axis dynamic.
    let shape = b.initializer_i64("start_shape", &[4], &[-1, c0, h0, w0])?;
    let mut x = b.node("reshape", "Reshape", &[&x, &shape], &[])?;
    for (i, (up, bn)) in g.ups.iter().zip(&g.bns).enumerate() {
        let y = deconv(&mut b, &format!("up{}", i + 1), &x, up)?;
        let cout = up.weight.size().get(1).copied().unwrap_or(0);
        let y = batch_norm(&mut b, &format!("bn{}", i + 1), &y, bn, cout)?;
        x = b.node(&format!("relu{}", i + 1), "Relu", &[&y], &[])?;
    }
    let x = deconv(&mut b, "out", &x, &g.out)?;
    let y = b.node(OUTPUT_NAME, "Tanh", &[&x], &[])?;
    let out_dims: Vec<Dim> = vec![BATCH_DIM.into(), c.into(), h.into(), w.into()];
    b.output(&y, DataType::Float, &out_dims);
    Ok(b.finish(onnx::OPSET, onnx::PRODUCER)?)
}

/// A CPU copy of G sharing nothing mutable with the original (tch reference forward).
fn generator_on_cpu(g: &Generator) -> Generator {
    let cpu = |t: &Tensor| t.detach().to_device(Device::Cpu).to_kind(Kind::Float);
    let bn = |b: &BatchNorm| BatchNorm {
        weight: cpu(&b.weight),
        bias: cpu(&b.bias),
        running_mean: cpu(&b.running_mean),
        running_var: cpu(&b.running_var),
    };
    let dc = |d: &Deconv| Deconv {
        weight: cpu(&d.weight),
        bias: d.bias.as_ref().map(cpu),
        stride: d.stride,
        padding: d.padding,
        output_padding: d.output_padding,
    };
    Generator {
        arch: g.arch.clone(),
        fc_weight: cpu(&g.fc_weight),
        fc_bias: cpu(&g.fc_bias),
        bn0: bn(&g.bn0),
        ups: g.ups.iter().map(dc).collect(),
        bns: g.bns.iter().map(bn).collect(),
        out: dc(&g.out),
        start: g.start,
    }
}

/// Runs the ONNX session and the CPU tch generator (eval mode) on the same latents for
/// each batch size; returns the largest absolute difference (infinite on NaN).
fn compare(session: &mut Session, cpu_g: &Generator, batch_sizes: &[usize]) -> Result<f32, ExportError> {
    let latent = cpu_g.arch.latent;
    let [c, h, w] = cpu_g.arch.image;
    let mut max = 0.0f32;
    for &n in batch_sizes {
        let z = pagan_shared::latent::uniform(SAMPLE_SEED ^ n as u64, n, latent as usize);
        let (got, shape) = ort_run::run_f32(session, INPUT_NAME, &z, &[n as i64, latent])?;
        let expected_shape = vec![n as i64, c, h, w];
        if shape != expected_shape {
            return Err(ExportError::Shape {
                what: format!("ONNX output for batch {n}"),
                expected: expected_shape,
                got: shape,
            });
        }
        let zt = Tensor::from_slice(&z).view([n as i64, latent]);
        let want = values(&tch::no_grad(|| cpu_g.forward(&zt, false)))?;
        for (a, b) in got.iter().zip(&want) {
            let d = (a - b).abs();
            // f32::max ignores NaN; a NaN anywhere must fail the check.
            max = if d.is_nan() { f32::INFINITY } else { max.max(d) };
            if max.is_infinite() {
                return Ok(max);
            }
        }
    }
    Ok(max)
}

/// Largest |ORT - tch eval forward| of `onnx_bytes` against `g` over `batch_sizes`
/// (latents from [`SAMPLE_SEED`]; tch runs on the CPU).
pub fn max_abs_diff(g: &Generator, onnx_bytes: &[u8], batch_sizes: &[usize]) -> Result<f32, ExportError> {
    let mut session = ort_run::session_from_bytes(onnx_bytes, 0)?;
    compare(&mut session, &generator_on_cpu(g), batch_sizes)
}

/// Exports the newest checkpoint of `run_dir` into the model folder `out_dir` (the model's
/// name is the folder's name): `generator.onnx`, `manifest.json` and `samples.png`.
/// The ONNX graph is checked in ONNX Runtime against the tch forward first; if the check
/// fails nothing is written. The manifest is written last, so a folder with a manifest is
/// complete.
pub fn export_run(run_dir: &Path, out_dir: &Path, device: Device) -> anyhow::Result<ExportReport> {
    let name = out_dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .with_context(|| format!("cannot take a model name from {}", out_dir.display()))?
        .to_owned();
    let (cfg, meta, gan) =
        train::load_gan(run_dir, device).with_context(|| format!("loading run {}", run_dir.display()))?;
    let g = generator_on_cpu(&gan.g);
    let bytes = generator_onnx(&g).context("building the generator ONNX graph")?;

    let mut session =
        ort_run::session_from_bytes(&bytes, 0).context("loading the exported graph in ONNX Runtime")?;
    let diff = compare(&mut session, &g, &VERIFY_BATCHES).context("checking the export against tch")?;
    // NaN compares false, so test it explicitly.
    if diff.is_nan() || diff > TOLERANCE {
        bail!(
            "export check failed: ONNX Runtime and tch differ by {diff:e} (tolerance {TOLERANCE:e}) on batches \
             {VERIFY_BATCHES:?}; nothing was written to {}",
            out_dir.display()
        );
    }

    // The grid comes from the exported graph itself: what the server will serve.
    let latent = cfg.arch.latent;
    let n = GRID_SIDE * GRID_SIDE;
    let z = pagan_shared::latent::uniform(SAMPLE_SEED, n, latent as usize);
    let (images, shape) = ort_run::run_f32(&mut session, INPUT_NAME, &z, &[n as i64, latent])
        .context("generating the sample grid in ONNX Runtime")?;
    let grid_shape: [usize; 4] = match shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(v) if v.len() == 4 => [v[0], v[1], v[2], v[3]],
        _ => bail!("unexpected ONNX output shape {shape:?} for the sample grid"),
    };

    let [c, h, w] = cfg.arch.image;
    let pa_mode = serde_json::to_value(cfg.pa)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", cfg.pa).to_lowercase());
    let sym = || MDim::Sym(BATCH_DIM.to_owned());
    let m = ModelManifest {
        name,
        kind: ModelKind::Generator,
        format_version: manifest::FORMAT_VERSION,
        latent: LatentSpec {
            size: latent as usize,
            prior: pagan_shared::latent::PRIOR.to_owned(),
        },
        image: ImageSpec {
            channels: c as usize,
            height: h as usize,
            width: w as usize,
        },
        value_range: manifest::VALUE_RANGE,
        dataset: cfg.dataset.clone(),
        training: TrainingSummary {
            iterations: meta.iter,
            pa_mode,
            pa_level_history: meta.pa.history.clone(),
            seed: cfg.seed,
            train_seconds: meta.train_seconds,
            // Not measured by the training loop yet; filled in once evaluation records them.
            final_fid: None,
            final_kid: None,
        },
        onnx: OnnxSpec {
            file: manifest::GENERATOR_FILE.to_owned(),
            opset: onnx::OPSET,
            ir_version: onnx::IR_VERSION,
            input: TensorSpec {
                name: INPUT_NAME.to_owned(),
                shape: vec![sym(), MDim::Fixed(latent)],
            },
            output: TensorSpec {
                name: OUTPUT_NAME.to_owned(),
                shape: vec![sym(), MDim::Fixed(c), MDim::Fixed(h), MDim::Fixed(w)],
            },
        },
        sha256: manifest::sha256_hex(&bytes),
        created_by: format!("{} {}", onnx::PRODUCER, env!("CARGO_PKG_VERSION")),
    };
    m.validate()
        .context("the manifest built for this export is invalid")?;

    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let onnx_path = out_dir.join(manifest::GENERATOR_FILE);
    let manifest_path = out_dir.join(manifest::MANIFEST_FILE);
    // An old manifest next to the new ONNX file would be a mismatch; without one the
    // folder is simply not a model until the new manifest lands.
    match std::fs::remove_file(&manifest_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing the old {}", manifest_path.display())),
    }
    pagan_shared::grid::write_atomic(&onnx_path, &bytes)
        .with_context(|| format!("writing {} (export incomplete: no manifest)", onnx_path.display()))?;
    let samples_path = out_dir.join(SAMPLES_FILE);
    pagan_shared::grid::save_grid(&samples_path, &images, grid_shape, GRID_SIDE).with_context(|| {
        format!(
            "writing {} (export incomplete: no manifest)",
            samples_path.display()
        )
    })?;
    m.write(&manifest_path)
        .with_context(|| format!("writing {} (export incomplete)", manifest_path.display()))?;

    Ok(ExportReport {
        onnx_path,
        manifest_path,
        max_abs_diff: diff,
        batch_sizes: VERIFY_BATCHES.to_vec(),
    })
}
