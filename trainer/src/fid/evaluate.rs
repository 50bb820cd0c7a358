//! Evaluation during training: KID of generated vs training images (it drives the `kid`
//! level-up rule) and, with a reference, FID vs the test statistics, on the training
//! device, along the same image-to-feature path and scoring policy as `pagan-train fid`
//! and the server.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use pagan_shared::features::KeepRows;
use pagan_shared::{Gaussian, KidConfig, score};
use tch::{Device, Tensor};

use super::extract::{ExtractOptions, extract};
use super::extractor::Extractor;
use super::inception::{Inception, weights};
use super::sources::{GeneratedImages, TensorImages};
use crate::config::{EvalConfig, TrainConfig};
use crate::model::Gan;
use crate::rng::{derive_seed, stream};
use crate::run_dir::MetricsLine;

/// One evaluation during training.
#[derive(Debug, Clone, Copy)]
pub struct EvalResult {
    /// KID of generated vs training images.
    pub kid: f64,
    /// Its standard deviation over subsets.
    pub kid_std: f64,
    /// FID vs the reference statistics, if one is configured.
    pub fid: Option<f64>,
    /// Wall seconds of the evaluation.
    pub seconds: f64,
}

impl EvalResult {
    /// Adds the evaluation's fields to the metrics line of its iteration.
    pub fn annotate(self, line: MetricsLine) -> MetricsLine {
        MetricsLine {
            kid: Some(self.kid),
            kid_std: Some(self.kid_std),
            fid: self.fid,
            eval_seconds: Some(self.seconds),
            ..line
        }
    }

    /// The one-line summary in the log (`run`: the run folder, empty for a lone run).
    pub fn log(&self, iter: u64, level: i64, run: &str) {
        tracing::info!(
            iter,
            level,
            run,
            kid = format!("{:.5} ± {:.5}", self.kid, self.kid_std),
            fid = self.fid.map(|f| format!("{f:.3}")).unwrap_or_else(|| "-".into()),
            seconds = format!("{:.1}", self.seconds),
            "evaluation"
        );
    }
}

/// The trainer's evaluator: the Inception on the training device, the FID reference and
/// the features of a fixed random subset of training images (computed once per process).
pub struct TrainingEval {
    extractor: Extractor,
    reference: Option<Gaussian>,
    real: Option<Vec<f32>>,
}

impl TrainingEval {
    /// Loads the Inception on `device` and the reference of `e`, if any.
    pub fn new(e: &EvalConfig, device: Device) -> Result<Self> {
        let weights = if e.weights.is_empty() {
            weights::default_path()
        } else {
            PathBuf::from(&e.weights)
        };
        let inception = Inception::load(&weights, device, e.resize_mode)?;
        let reference = match &e.fid_reference {
            None => None,
            Some(p) => {
                let r = pagan_shared::read_stats_npz(Path::new(p))?;
                if let Err(m) = score::check_resize_mode(r.resize_mode.as_deref(), e.resize_mode) {
                    tracing::warn!(reference = %p, "{m}");
                }
                Some(r.gaussian)
            }
        };
        Ok(Self {
            extractor: Extractor::Tch(inception),
            reference,
            real: None,
        })
    }

    /// KID (and FID) of `cfg.eval.samples` images of `gan` at iteration `iter` against a
    /// fixed random subset of the training images `data` (u8 [N, C, H, W] on the device).
    pub fn evaluate(&mut self, cfg: &TrainConfig, gan: &Gan, data: &Tensor, iter: u64) -> Result<EvalResult> {
        let start = Instant::now();
        let e = &cfg.eval;
        let opts = |label: &str| ExtractOptions {
            batch: e.batch,
            keep: KeepRows::All,
            label: label.to_owned(),
            quiet: true,
        };
        if self.real.is_none() {
            let seed = derive_seed(cfg.seed, stream::EVAL_REAL, 0);
            let mut src = TensorImages::new(data, e.samples, seed);
            let ex = extract(&mut src, &mut self.extractor, &opts("real"))?;
            self.real = ex.features.rows;
        }
        let mut gen_src = GeneratedImages::new(gan, e.samples, derive_seed(cfg.seed, stream::EVAL_Z, iter));
        let generated = extract(&mut gen_src, &mut self.extractor, &opts("generated"))?.features;
        let real = self.real.as_deref().context("training features missing")?;
        let kid_cfg = KidConfig {
            seed: iter,
            ..KidConfig::default()
        };
        let kid = score::kid_of(&generated, real, &kid_cfg)?;
        let fid = match &self.reference {
            Some(r) => Some(score::fid(&generated, r)?),
            None => None,
        };
        Ok(EvalResult {
            kid: kid.mean,
            kid_std: kid.std,
            fid,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
