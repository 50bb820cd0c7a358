//! The two feature extractors of the trainer, behind the shared
//! `pagan_shared::features::FeatureExtractor`: our tch Inception on the chosen device, and
//! the exported `models/inception` graph in ONNX Runtime (what the server runs).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ort::session::Session;
use pagan_shared::features::{ExtractorError, FeatureExtractor};
use pagan_shared::inception::{FEATURE_DIM, INCEPTION_FILE, INPUT_SIDE, InceptionManifest, ResizeMode};
use pagan_shared::manifest::MANIFEST_FILE;
use pagan_shared::provenance::ExtractorInfo;
use pagan_shared::resize::resize_to_input;
use tch::Tensor;

use super::inception::Inception;
use crate::onnx::record::values;
use crate::onnx::runtime;

/// A feature extractor of the trainer.
pub enum Extractor {
    /// Our tch Inception (on its device).
    Tch(Inception),
    /// The exported graph in ONNX Runtime (CPU).
    Onnx {
        /// The session.
        session: Session,
        /// Its manifest (input name, resize mode); boxed, it is the bulk of the variant.
        manifest: Box<InceptionManifest>,
        /// The model folder, for messages.
        dir: PathBuf,
        /// The convention images are resized with: the graph's, or another one applied
        /// before the graph (`pagan_shared::resize`).
        mode: ResizeMode,
    },
}

impl Extractor {
    /// Opens `dir/manifest.json` and `dir/inception.onnx` (sha256 checked) to resize with
    /// `mode` (the graph's convention, else resized before the graph); `threads` = 0 lets
    /// ONNX Runtime choose.
    pub fn open_onnx(dir: &Path, threads: usize, mode: ResizeMode) -> Result<Self> {
        let manifest = InceptionManifest::read(&dir.join(MANIFEST_FILE)).with_context(|| {
            format!(
                "no feature extractor in {} (create it with `pagan-train export-inception --out {}`)",
                dir.display(),
                dir.display()
            )
        })?;
        let path = dir.join(&manifest.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        manifest.check_bytes(&bytes)?;
        let session = runtime::session_from_bytes(&bytes, threads)?;
        Ok(Self::Onnx {
            session,
            manifest: Box::new(manifest),
            dir: dir.to_path_buf(),
            mode,
        })
    }

    /// The resize convention applied before the network.
    pub fn resize_mode(&self) -> ResizeMode {
        match self {
            Self::Tch(i) => i.mode(),
            Self::Onnx { mode, .. } => *mode,
        }
    }

    /// The extractor side of a score's provenance.
    pub fn info(&self) -> ExtractorInfo {
        match self {
            Self::Tch(i) => ExtractorInfo {
                implementation: format!("tch {}", crate::device::describe(i.device())),
                weights_sha256: Some(i.weights_sha256().to_owned()),
                graph_sha256: None,
            },
            Self::Onnx { manifest, mode, .. } => ExtractorInfo {
                implementation: if *mode == manifest.resize_mode {
                    "onnxruntime cpu".to_owned()
                } else {
                    format!(
                        "onnxruntime cpu ({mode} resize before its {} graph)",
                        manifest.resize_mode
                    )
                },
                weights_sha256: manifest.weights_sha256.clone(),
                graph_sha256: Some(manifest.sha256.clone()),
            },
        }
    }

    /// Short description for logs and JSON output.
    pub fn describe(&self) -> String {
        match self {
            Self::Tch(i) => format!("tch Inception on {}", crate::device::describe(i.device())),
            Self::Onnx {
                dir, manifest, mode, ..
            } if *mode != manifest.resize_mode => format!(
                "ONNX Runtime CPU, {} ({mode} resize before its {} graph)",
                dir.display(),
                manifest.resize_mode
            ),
            Self::Onnx { dir, .. } => format!("ONNX Runtime CPU, {}", dir.display()),
        }
    }

    fn run(&mut self, images: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>> {
        let dims = [n as i64, 3, h as i64, w as i64];
        match self {
            Self::Tch(inc) => Ok(values(&inc.features(&Tensor::from_slice(images).view(dims)))?),
            Self::Onnx {
                session,
                manifest,
                mode,
                ..
            } => {
                let resized;
                let (images, dims) = if *mode != manifest.resize_mode {
                    resized = resize_to_input(images, n * 3, h, w, *mode);
                    let s = INPUT_SIDE as i64;
                    (resized.as_slice(), [n as i64, 3, s, s])
                } else {
                    (images, dims)
                };
                let (out, shape) = runtime::run_f32(session, &manifest.input.name, images, &dims)?;
                if shape != [n as i64, FEATURE_DIM as i64] {
                    bail!("{INCEPTION_FILE} returned shape {shape:?}, expected [{n}, {FEATURE_DIM}]");
                }
                Ok(out)
            }
        }
    }
}

impl FeatureExtractor for Extractor {
    fn dim(&self) -> usize {
        FEATURE_DIM
    }

    fn features(&mut self, images: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>, ExtractorError> {
        self.run(images, n, h, w).map_err(Into::into)
    }
}
