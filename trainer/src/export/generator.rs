//! Generator export: the run's generator recorded as an ONNX graph (opset 17, dynamic
//! batch, BN in eval mode) from the same forward code tch runs, checked in ONNX Runtime
//! against the tch forward before anything is written, plus the model folder
//! (`generator.onnx`, `manifest.json`, `samples.png`) for the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ort::session::Session;
use pagan_shared::manifest::{
    self, ClassesSpec, Dim as MDim, ImageSpec, LatentSpec, ModelKind, ModelManifest, OnnxSpec, TensorSpec,
    TrainingSummary,
};
use tch::{Device, Kind, Tensor};

use super::ExportError;
use crate::model::Generator;
use crate::model::generator::class_row_labels;
use crate::onnx::proto::DataType;
use crate::onnx::record::values;
use crate::onnx::{self, Dim, GraphBuilder, OnnxRecorder, runtime};
use crate::run_dir::RunDir;

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

/// The generator as a serialised ONNX model: input `z` [N, latent] f32 (and, for a
/// class-conditional G, `labels` [N] int64), output `images` [N, C, H, W] f32 in [-1, 1].
/// BatchNorm uses the running statistics (eval mode).
pub fn generator_onnx(g: &Generator) -> Result<Vec<u8>, ExportError> {
    if g.models != 1 {
        // Stacked generators are cut into their runs' own before export (run folders hold those).
        return Err(ExportError::Shape {
            what: "generator to export (one model, not a stack)".into(),
            expected: vec![1],
            got: vec![g.models],
        });
    }
    let latent = g.arch.latent;
    let [c, h, w] = g.arch.image;
    let mut b = GraphBuilder::new("pagan_generator");
    b.doc("PA-GAN SN-DCGAN generator: z [N, latent] ~ uniform(-1,1) -> images [N, C, H, W] in [-1, 1]");
    b.metadata("pagan.kind", "generator");
    b.metadata("pagan.latent", &latent.to_string());
    b.metadata("pagan.image", &format!("{c}x{h}x{w}"));
    let z = b.input(INPUT_NAME, DataType::Float, &[BATCH_DIM.into(), latent.into()])?;
    let labels = match &g.classes {
        Some(c) => {
            b.metadata(manifest::CLASSES_METADATA, &c.table.size()[0].to_string());
            Some(b.input(manifest::LABELS_INPUT, DataType::Int64, &[BATCH_DIM.into()])?)
        }
        None => None,
    };
    let y = g.forward_with(&mut OnnxRecorder::new(&mut b), &z, labels.as_ref())?;
    b.add_node("output", "Identity", &[&y], &[OUTPUT_NAME], &[])?;
    let out_dims: Vec<Dim> = vec![BATCH_DIM.into(), c.into(), h.into(), w.into()];
    b.output(OUTPUT_NAME, DataType::Float, &out_dims);
    Ok(b.finish(onnx::OPSET, onnx::PRODUCER)?)
}

/// A CPU copy of G sharing nothing mutable with the original (tch reference forward).
fn generator_on_cpu(g: &Generator) -> Generator {
    g.map_tensors(|t| t.detach().to_device(Device::Cpu).to_kind(Kind::Float))
}

/// Runs the ONNX session and the CPU tch generator (eval mode) on the same latents for
/// each batch size; returns the largest absolute difference (infinite on NaN).
fn compare(session: &mut Session, cpu_g: &Generator, batch_sizes: &[usize]) -> Result<f32, ExportError> {
    let latent = cpu_g.arch.latent;
    let [c, h, w] = cpu_g.arch.image;
    let mut max = 0.0f32;
    for &n in batch_sizes {
        let z = pagan_shared::latent::uniform(SAMPLE_SEED ^ n as u64, n, latent as usize);
        // Every class appears across the checked batches, not only label 0.
        let labels: Option<Vec<i64>> = cpu_g.classes.as_ref().map(|c| {
            (0..n as i64)
                .map(|i| (3 * i + n as i64) % c.table.size()[0])
                .collect()
        });
        let feed = labels.as_deref().map(|y| (manifest::LABELS_INPUT, y));
        let (got, shape) = runtime::run_f32_labelled(session, INPUT_NAME, &z, &[n as i64, latent], feed)?;
        let expected_shape = vec![n as i64, c, h, w];
        if shape != expected_shape {
            return Err(ExportError::Shape {
                what: format!("ONNX output for batch {n}"),
                expected: expected_shape,
                got: shape,
            });
        }
        let zt = Tensor::from_slice(&z).view([n as i64, latent]);
        let yt = labels.as_deref().map(Tensor::from_slice);
        let want = values(&tch::no_grad(|| cpu_g.forward_labelled(&zt, yt.as_ref(), false)))?;
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
    let mut session = runtime::session_from_bytes(onnx_bytes, 0)?;
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
        .filter(|n| pagan_shared::manifest::is_valid_name(n))
        .with_context(|| {
            format!(
                "cannot take a model name from {}: the folder's name must be ASCII letters, digits, \
                 `-`, `_` or `.` (not first), at most 64 characters, as pagan-serve loads only such names",
                out_dir.display()
            )
        })?
        .to_owned();
    let run = RunDir::at(run_dir);
    let (cfg, meta, gan) = run
        .load_gan(device)
        .with_context(|| format!("loading run {}", run_dir.display()))?;
    let g = generator_on_cpu(&gan.g);
    let bytes = generator_onnx(&g).context("building the generator ONNX graph")?;

    let mut session =
        runtime::session_from_bytes(&bytes, 0).context("loading the exported graph in ONNX Runtime")?;
    let diff = compare(&mut session, &g, &VERIFY_BATCHES).context("checking the export against tch")?;
    // NaN compares false, so test it explicitly.
    if diff.is_nan() || diff > TOLERANCE {
        bail!(
            "export check failed: ONNX Runtime and tch differ by {diff:e} (tolerance {TOLERANCE:e}) on batches \
             {VERIFY_BATCHES:?}; nothing was written to {}",
            out_dir.display()
        );
    }

    // The grid comes from the exported graph itself: what the server will serve. A
    // class-conditional model's has one row per class (each column one z).
    let latent = cfg.arch.latent;
    let classes = cfg.cond.as_ref().map(|c| c.classes.clone());
    let rows = classes.as_ref().map_or(GRID_SIDE, Vec::len);
    let n = rows * GRID_SIDE;
    let z = pagan_shared::latent::uniform(SAMPLE_SEED, n, latent as usize);
    let (z, labels) = match &classes {
        None => (z, None),
        Some(names) => {
            let cols = z[..GRID_SIDE * latent as usize].to_vec();
            (
                cols.repeat(names.len()),
                Some(class_row_labels(names.len() as i64, GRID_SIDE as i64)),
            )
        }
    };
    let feed = labels.as_deref().map(|y| (manifest::LABELS_INPUT, y));
    let (images, shape) = runtime::run_f32_labelled(&mut session, INPUT_NAME, &z, &[n as i64, latent], feed)
        .context("generating the sample grid in ONNX Runtime")?;
    let grid_shape: [usize; 4] = match shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(v) if v.len() == 4 => [v[0], v[1], v[2], v[3]],
        _ => bail!("unexpected ONNX output shape {shape:?} for the sample grid"),
    };

    let evaluations: Vec<manifest::Evaluation> = run
        .metrics()
        .read()?
        .iter()
        .filter(|m| m.iter <= meta.iter && (m.fid.is_some() || m.kid.is_some()))
        .map(|m| manifest::Evaluation {
            iter: m.iter,
            fid: m.fid,
            kid: m.kid,
        })
        .collect();
    // The run's last evaluation at or before the exported checkpoint, if it had any.
    let (final_fid, final_kid) = evaluations.last().map_or((None, None), |e| (e.fid, e.kid));
    let [c, h, w] = cfg.arch.image;
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
            pa_mode: cfg.pa.to_string(),
            pa_level_history: meta.pa.history.clone(),
            seed: cfg.seed,
            train_seconds: meta.train_seconds,
            final_fid,
            final_kid,
            evaluations,
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
        classes: classes.map(|names| ClassesSpec {
            input: TensorSpec {
                name: manifest::LABELS_INPUT.to_owned(),
                shape: vec![sym()],
            },
            names,
        }),
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
    pagan_shared::fs::write_atomic(&onnx_path, &bytes)
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
