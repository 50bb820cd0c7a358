//! The served feature extractor (`models/inception`): images `[n, 3, h, w]` in 0..255 ->
//! features `[n, 2048]`, in ONNX Runtime, as the shared image-to-feature path's extractor.

use std::time::Instant;

use pagan_shared::features::{ExtractorError, FeatureExtractor};
use pagan_shared::inception::{FEATURE_DIM, INCEPTION_DIR, INPUT_SIDE, InceptionManifest, ResizeMode};
use pagan_shared::provenance::ExtractorInfo;
use pagan_shared::resize::resize_to_input;

use super::runtime::{Provider, RuntimeError, SessionPool, run_f32};
use crate::metrics::Metrics;

/// The Inception feature extractor.
pub struct Extractor {
    /// Its manifest.
    pub manifest: InceptionManifest,
    /// Provider its sessions run on.
    pub provider: Provider,
    pub(super) pool: SessionPool,
}

impl Extractor {
    /// Features `[n, 2048]` for images `[n, 3, h, w]` with values in 0..255.
    pub fn features(
        &self,
        images: &[f32],
        n: usize,
        h: usize,
        w: usize,
        metrics: &Metrics,
    ) -> Result<Vec<f32>, RuntimeError> {
        let started = Instant::now();
        let (values, shape) = {
            let mut session = self.pool.get();
            run_f32(
                &mut session,
                &self.manifest.input.name,
                images,
                &[n as i64, 3, h as i64, w as i64],
            )?
        };
        metrics.observe_run(INCEPTION_DIR, n, started.elapsed().as_secs_f64());
        let expected = vec![n as i64, FEATURE_DIM as i64];
        if shape != expected || values.len() != n * FEATURE_DIM {
            return Err(RuntimeError::OutputShape { expected, got: shape });
        }
        metrics.images_scored.inc_by(n as u64);
        Ok(values)
    }

    /// This extractor with `metrics`, as the shared path's extractor, for images resized
    /// with `mode` (the graph's convention, or another one applied before the graph).
    pub fn run<'a>(&'a self, metrics: &'a Metrics, mode: ResizeMode) -> ExtractorRun<'a> {
        ExtractorRun {
            extractor: self,
            metrics,
            mode,
        }
    }

    /// The extractor side of a score's provenance, for images resized with `mode`.
    pub fn info(&self, mode: ResizeMode) -> ExtractorInfo {
        let graph = self.manifest.resize_mode;
        let provider = self.provider.as_str();
        ExtractorInfo {
            implementation: if mode == graph {
                format!("onnxruntime {provider}")
            } else {
                format!("onnxruntime {provider} ({mode} resize before its {graph} graph)")
            },
            weights_sha256: self.manifest.weights_sha256.clone(),
            graph_sha256: Some(self.manifest.sha256.clone()),
        }
    }
}

/// The extractor seen by `pagan_shared::features::FeatureSink`, recording metrics.
pub struct ExtractorRun<'a> {
    extractor: &'a Extractor,
    metrics: &'a Metrics,
    mode: ResizeMode,
}

impl FeatureExtractor for ExtractorRun<'_> {
    fn dim(&self) -> usize {
        FEATURE_DIM
    }

    fn features(&mut self, images: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>, ExtractorError> {
        if self.mode == self.extractor.manifest.resize_mode {
            return Ok(self.extractor.features(images, n, h, w, self.metrics)?);
        }
        // Exact: the graph's own 299 -> 299 resize is the identity.
        let resized = resize_to_input(images, n * 3, h, w, self.mode);
        Ok(self
            .extractor
            .features(&resized, n, INPUT_SIDE, INPUT_SIDE, self.metrics)?)
    }
}
