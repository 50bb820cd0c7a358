//! Evaluation during training: KID of generated vs training images (it drives the `kid`
//! level-up rule) and, with a reference, FID vs the test statistics, on the training
//! device, with the same image-to-feature steps and scoring policy as `pagan-train fid`
//! and the server. Images never leave the device: generated ones are rounded to bytes
//! there exactly as PNGs are (`quantize`), and one Inception call serves every run of a
//! stack.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use pagan_shared::features::Features;
use pagan_shared::inception::FEATURE_DIM;
use pagan_shared::manifest::sha256_hex;
use pagan_shared::prdc::{Prdc, PrdcConfig, prdc};
use pagan_shared::provenance::{ExtractorInfo, Provenance, ResizeSource, pick_resize};
use pagan_shared::rng::{SplitMix64, sample_without_replacement};
use pagan_shared::{FeatureStats, Gaussian, KidConfig, score};
use tch::{Device, Kind, Tensor};

use super::inception::Inception;
use super::quantize::to_bytes;
use crate::config::{EvalConfig, TrainConfig};
use crate::model::Gan;
use crate::rng::{derive_seed, stream};
use crate::run_dir::MetricsLine;

/// One evaluation during training.
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// KID of generated vs training images.
    pub kid: f64,
    /// Its standard deviation over subsets.
    pub kid_std: f64,
    /// FID vs the reference statistics, if one is configured.
    pub fid: Option<f64>,
    /// Precision/recall/density/coverage vs the KID training subset, when configured.
    pub prdc: Option<Prdc>,
    /// What the FID was computed with (also when only KID was: the extractor and resize).
    pub provenance: Provenance,
    /// Wall seconds of the evaluation (of all runs of a stack, which run together).
    pub seconds: f64,
}

impl EvalResult {
    /// Adds the evaluation's fields to the metrics line of its iteration.
    pub fn annotate(self, line: MetricsLine) -> MetricsLine {
        MetricsLine {
            kid: Some(self.kid),
            kid_std: Some(self.kid_std),
            fid: self.fid,
            prdc: self.prdc,
            provenance: Some(self.provenance),
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

/// The trainer's evaluator: the Inception on the training device, the FID reference and,
/// per run, the features of its fixed random subset of training images (computed at its
/// first evaluation).
pub struct TrainingEval {
    inception: Inception,
    reference: Option<Reference>,
    /// Each run's training-image features (runs with one subset share them).
    real: Vec<Option<Arc<[f32]>>>,
    prdc: bool,
    resize_source: ResizeSource,
}

/// The FID reference of an evaluation, with what its provenance needs.
struct Reference {
    gaussian: Gaussian,
    sha256: String,
}

impl TrainingEval {
    /// Loads the Inception on `device` and the reference of `e`, if any, for `runs` runs.
    pub fn new(e: &EvalConfig, device: Device, runs: usize) -> Result<Self> {
        let weights = e.weights_path();
        let inception = Inception::load(&weights, device, e.resize_mode)?;
        // The config holds the resolved convention: the reference's (below), or the default
        // one (an explicit flag naming the default is the same convention), or another one asked for.
        let mut resize_source = if e.resize_mode == pagan_shared::ResizeMode::default() {
            ResizeSource::Default
        } else {
            ResizeSource::Requested
        };
        let reference = match &e.fid_reference {
            None => None,
            Some(p) => {
                let path = Path::new(p);
                let r = pagan_shared::read_stats_npz(path)?;
                // The config resolved the convention from the reference; a conflict is refused.
                let picked = pick_resize(r.resize_mode.as_deref(), Some(e.resize_mode))
                    .map_err(|m| anyhow!("{p}: {m}"))?
                    .1;
                if picked == ResizeSource::Reference {
                    resize_source = picked;
                }
                let bytes = std::fs::read(path).with_context(|| format!("reading {p}"))?;
                Some(Reference {
                    gaussian: r.gaussian,
                    sha256: sha256_hex(&bytes),
                })
            }
        };
        Ok(Self {
            inception,
            reference,
            real: vec![None; runs],
            prdc: e.prdc,
            resize_source,
        })
    }

    /// Features [N, 2048] of u8 images [N, C, H, W] on the device, to the host.
    fn features(&self, images: &Tensor) -> Result<Vec<f32>> {
        let f = self
            .inception
            .features(images)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        Ok(Vec::<f32>::try_from(f.flatten(0, -1))?)
    }

    /// KID (and FID) of every run of `gan` (one run, or a stack with `cfgs[k]` the config
    /// of run k) at iteration `iter`: `cfgs[k].eval.samples` generated images per run
    /// against that run's fixed random subset of the training images `data` (u8
    /// [N, C, H, W] on the device). Each Inception call takes `eval.batch` images, shared
    /// by the runs.
    /// `started`: when the caller began the evaluation (the Inception's loading counts).
    pub fn evaluate(
        &mut self,
        cfgs: &[&TrainConfig],
        gan: &Gan,
        data: &Tensor,
        iter: u64,
        started: Instant,
    ) -> Result<Vec<EvalResult>> {
        let first = cfgs.first().context("no runs to evaluate")?;
        let (k, e) = (cfgs.len(), &first.eval);
        let per_call = (e.batch / k).max(1);
        self.real_features(cfgs, data, e.batch)?;

        // Each run's latents, drawn as for a lone run (`pagan-train fid` uses the same).
        let latent = gan.g.arch.latent as usize;
        let z: Vec<Vec<f32>> = cfgs
            .iter()
            .map(|c| {
                pagan_shared::latent::uniform(derive_seed(c.seed, stream::EVAL_Z, iter), e.samples, latent)
            })
            .collect();
        let mut rows: Vec<Vec<f32>> = vec![Vec::with_capacity(e.samples * FEATURE_DIM); k];
        let mut pos = 0;
        while pos < e.samples {
            let m = per_call.min(e.samples - pos);
            let parts: Vec<Tensor> = z
                .iter()
                .map(|zk| {
                    Tensor::from_slice(&zk[pos * latent..(pos + m) * latent]).view([m as i64, latent as i64])
                })
                .collect();
            let z = Tensor::cat(&parts, 1).to_device(gan.device());
            let x = tch::no_grad(|| gan.g.forward_cycled(&z, pos as i64, false));
            // [m, K*C, H, W] (runs side by side) -> [K*m, C, H, W] (run after run).
            let s = x.size();
            let (c, h, w) = (s[1] / k as i64, s[2], s[3]);
            let x = x
                .view([m as i64, k as i64, c, h, w])
                .transpose(0, 1)
                .reshape([-1, c, h, w]);
            let f = self.features(&to_bytes(&x))?;
            for (run, chunk) in rows.iter_mut().zip(f.chunks_exact(m * FEATURE_DIM)) {
                run.extend_from_slice(chunk);
            }
            pos += m;
        }
        let mut out = Vec::new();
        for (run, generated) in rows.into_iter().enumerate() {
            let mut stats = FeatureStats::new(FEATURE_DIM)?;
            stats.add_rows(&generated, e.samples)?;
            let generated = Features {
                stats,
                rows: Some(generated),
            };
            let real = self.real[run].as_deref().context("training features missing")?;
            let kid_cfg = KidConfig {
                seed: iter,
                ..KidConfig::default()
            };
            let kid = score::kid_of(&generated, real, &kid_cfg)?;
            let (fid, sqrt_method) = match &self.reference {
                Some(r) => {
                    let (f, m) = score::fid_with_method(&generated, &r.gaussian)?;
                    (Some(f), m)
                }
                None => (None, "none (no FID reference)"),
            };
            let prdc = match (self.prdc, generated.rows.as_deref()) {
                (true, Some(rows)) => Some(prdc(real, rows, FEATURE_DIM, &PrdcConfig::default())?),
                _ => None,
            };
            let provenance = Provenance::new(
                ExtractorInfo {
                    implementation: format!("tch {}", crate::device::describe(self.inception.device())),
                    weights_sha256: Some(self.inception.weights_sha256().to_owned()),
                    graph_sha256: None,
                },
                (e.resize_mode, self.resize_source),
                sqrt_method,
                e.samples as u64,
                (
                    self.reference.as_ref().and_then(|r| r.gaussian.n),
                    self.reference.as_ref().map(|r| r.sha256.clone()),
                ),
            );
            out.push(EvalResult {
                kid: kid.mean,
                kid_std: kid.std,
                fid,
                prdc,
                provenance,
                seconds: 0.0,
            });
        }
        // The whole evaluation, scores included (until 2026-11-30 the clock stopped after
        // the features: 32 s of an H200 study's ~62 s evaluation).
        let seconds = started.elapsed().as_secs_f64();
        for r in &mut out {
            r.seconds = seconds;
        }
        Ok(out)
    }

    /// Computes the training-image features of the runs that have none yet: each run's own
    /// seeded subset, `batch` images per Inception call. Runs with the same seed pick the
    /// same subset (a study's variants share seeds), which is computed once and shared.
    fn real_features(&mut self, cfgs: &[&TrainConfig], data: &Tensor, batch: usize) -> Result<()> {
        let total = data.size().first().copied().unwrap_or(0) as usize;
        let todo: Vec<usize> = (0..cfgs.len()).filter(|&r| self.real[r].is_none()).collect();
        if todo.is_empty() {
            return Ok(());
        }
        let picks: Vec<Vec<i64>> = todo
            .iter()
            .map(|&r| {
                let c = cfgs[r];
                let seed = derive_seed(c.seed, stream::EVAL_REAL, 0);
                let idx = sample_without_replacement(&mut SplitMix64::new(seed), total, c.eval.samples);
                idx.into_iter().map(|i| i as i64).collect()
            })
            .collect();
        let (subsets, of_run) = distinct(&picks);
        let per_call = (batch / subsets.len()).max(1);
        let n = subsets.iter().map(|p| p.len()).min().unwrap_or(0);
        let mut rows: Vec<Vec<f32>> = vec![Vec::with_capacity(n * FEATURE_DIM); subsets.len()];
        let mut pos = 0;
        while pos < n {
            let m = per_call.min(n - pos);
            let idx: Vec<i64> = subsets
                .iter()
                .flat_map(|p| p[pos..pos + m].iter().copied())
                .collect();
            let idx = Tensor::from_slice(&idx).to_device(data.device());
            let f = self.features(&data.index_select(0, &idx))?;
            for (subset, chunk) in rows.iter_mut().zip(f.chunks_exact(m * FEATURE_DIM)) {
                subset.extend_from_slice(chunk);
            }
            pos += m;
        }
        let rows: Vec<Arc<[f32]>> = rows.into_iter().map(Arc::from).collect();
        for (r, u) in todo.into_iter().zip(of_run) {
            self.real[r] = Some(Arc::clone(&rows[u]));
        }
        Ok(())
    }
}

/// The distinct lists of `lists` (first appearance order) and, for each list, the index of
/// its distinct one.
fn distinct(lists: &[Vec<i64>]) -> (Vec<&[i64]>, Vec<usize>) {
    let mut uniq: Vec<&[i64]> = Vec::new();
    let of = lists
        .iter()
        .map(|l| match uniq.iter().position(|u| *u == l.as_slice()) {
            Some(i) => i,
            None => {
                uniq.push(l);
                uniq.len() - 1
            }
        })
        .collect();
    (uniq, of)
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_subsets_are_computed_once() {
        let lists = vec![vec![3, 1], vec![2, 0], vec![3, 1], vec![2, 0], vec![5, 1]];
        let (uniq, of) = super::distinct(&lists);
        assert_eq!(uniq, vec![&[3i64, 1][..], &[2, 0], &[5, 1]]);
        assert_eq!(of, vec![0, 1, 0, 1, 2]);
    }
}
