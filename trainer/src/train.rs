//! The training loop: one D step and one G step per iteration, non-saturating BCE on logits
//! with PA checksum targets, our Adam, metrics, sample grids and checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tch::{Device, Kind, Tensor, nn};

use crate::adam::Adam;
use crate::checkpoint::{self, CheckpointMeta};
use crate::config::TrainConfig;
use crate::data::ImageSet;
use crate::loss;
use crate::nets::{Discriminator, Generator};
use crate::pa::{self, PaState};
use crate::rng::{self, EpochSampler, stream};
use crate::schedule::{self, LevelSchedule, ScheduleInput};

/// Number of images in the fixed-z sample grid.
pub const GRID_N: i64 = 64;

/// G and D in one variable store (names `g.*`, `d.*`).
pub struct Gan {
    /// All variables: parameters and buffers.
    pub vs: nn::VarStore,
    /// Generator.
    pub g: Generator,
    /// Discriminator.
    pub d: Discriminator,
}

impl Gan {
    /// Builds both networks for a config, initialised from the run's seed.
    pub fn new(cfg: &TrainConfig, device: Device, level: i64) -> Self {
        rng::seed_torch(rng::derive_seed(cfg.seed, stream::INIT, 0));
        let vs = nn::VarStore::new(device);
        let g = Generator::new(&(vs.root() / "g"), &cfg.arch);
        let mut d = Discriminator::new(
            &(vs.root() / "d"),
            &cfg.arch,
            cfg.pa.layer(cfg.pa_feat_layer),
            cfg.max_level,
            level,
        );
        d.dropout = (cfg.reg.dropout > 0.0).then_some((cfg.reg.dropout_layer, cfg.reg.dropout));
        Self { vs, g, d }
    }

    /// Every variable with its name, sorted (parameters and buffers).
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Trainable parameters under `prefix` ("g." or "d."), sorted by name.
    pub fn params(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.named()
            .into_iter()
            .filter(|(n, t)| n.starts_with(prefix) && t.requires_grad())
            .collect()
    }
}

/// Per-step statistics, kept on the device until a metrics line is written.
struct StepStats {
    d_loss: Tensor,
    g_loss: Tensor,
    acc_real: Tensor,
    acc_fake: Tensor,
}

/// One line of `metrics.jsonl`: means over the iterations since the previous line.
#[derive(Debug, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct MetricsLine {
    /// Iterations completed.
    pub iter: u64,
    /// D loss (BCE real + BCE fake).
    pub d_loss: f64,
    /// G loss (BCE against the flipped PA label).
    pub g_loss: f64,
    /// D accuracy on reals against their PA targets.
    pub d_acc_real: f64,
    /// D accuracy on fakes against their PA targets.
    pub d_acc_fake: f64,
    /// PA level.
    pub pa_level: i64,
    /// P(newest bit = 1).
    pub pa_p: f64,
    /// Wall seconds per iteration over the window.
    pub sec_per_iter: f64,
    /// KID of generated vs training images, on lines where an evaluation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<f64>,
    /// Standard deviation of that KID over subsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid_std: Option<f64>,
    /// FID vs the configured reference, on lines where an evaluation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    /// Wall seconds the evaluation took (not counted in `sec_per_iter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_seconds: Option<f64>,
}

/// Options that change how a run is watched, not what it computes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Hide the progress bar (tests, logs to files).
    pub quiet: bool,
}

/// A training run in progress.
pub struct Trainer {
    /// Configuration (saved as config.json).
    pub cfg: TrainConfig,
    /// Run directory.
    pub dir: PathBuf,
    /// Compute device.
    pub device: Device,
    /// Networks.
    pub gan: Gan,
    /// G's optimiser.
    pub opt_g: Adam,
    /// D's optimiser.
    pub opt_d: Adam,
    /// PA level and history.
    pub pa: PaState,
    schedule: Box<dyn LevelSchedule>,
    /// Iterations completed.
    pub iter: u64,
    data: Tensor,
    sampler: EpochSampler,
    fixed_z: Tensor,
    train_seconds: f64,
    evaluator: Option<crate::eval::TrainingEval>,
}

impl Trainer {
    /// A fresh run in `dir` (created; refuses a folder that already holds a run).
    pub fn create(cfg: TrainConfig, dir: &Path, device: Device, data: &ImageSet) -> Result<Self> {
        if checkpoint::latest_path(dir).exists() || dir.join("config.json").exists() {
            bail!(
                "{} already holds a run; use `pagan-train resume {}` or pick another --out",
                dir.display(),
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating run folder {}", dir.display()))?;
        let json = serde_json::to_vec_pretty(&cfg)?;
        pagan_shared::grid::write_atomic(&dir.join("config.json"), &json)
            .with_context(|| format!("writing {}", dir.join("config.json").display()))?;
        Self::build(cfg, dir, device, data)
    }

    fn build(cfg: TrainConfig, dir: &Path, device: Device, data: &ImageSet) -> Result<Self> {
        let [n, c, h, w] = data.shape();
        if [c as i64, h as i64, w as i64] != cfg.arch.image {
            bail!(
                "dataset images are {c}x{h}x{w}, the run expects {:?}",
                cfg.arch.image
            );
        }
        let pa = PaState::new(cfg.start_level, cfg.max_level, cfg.fade_iters);
        let gan = Gan::new(&cfg, device, pa.level);
        let opt_g = Adam::new(cfg.adam_g, gan.params("g."));
        let opt_d = Adam::new(cfg.adam_d, gan.params("d."));
        rng::seed_torch(rng::derive_seed(cfg.seed, stream::FIXED_Z, 0));
        let fixed_z = Tensor::rand([GRID_N, cfg.arch.latent], (Kind::Float, device)) * 2.0 - 1.0;
        let images = Tensor::from_slice(&data.data)
            .view([n as i64, c as i64, h as i64, w as i64])
            .to_device(device);
        Ok(Self {
            schedule: schedule::build(&cfg.schedule),
            sampler: EpochSampler::new(n, cfg.seed),
            dir: dir.to_path_buf(),
            device,
            gan,
            opt_g,
            opt_d,
            pa,
            iter: 0,
            data: images,
            fixed_z,
            train_seconds: 0.0,
            evaluator: None,
            cfg,
        })
    }

    /// A run that writes nothing (benchmarks): same networks and step, no run folder.
    pub fn ephemeral(cfg: TrainConfig, device: Device, data: &ImageSet) -> Result<Self> {
        Self::build(cfg, Path::new(""), device, data)
    }

    /// Runs `n` iterations without logging or checkpoints; returns the last D loss (which
    /// also waits for the device to finish, so callers can time it).
    pub fn steps(&mut self, n: u64) -> f64 {
        let mut last = None;
        for _ in 0..n {
            last = Some(self.step().d_loss);
            self.iter += 1;
        }
        last.map(|t| t.double_value(&[])).unwrap_or(f64::NAN)
    }

    /// Reopens a run at its newest checkpoint; `cfg` comes from its config.json.
    pub fn open(dir: &Path, device: Device, data: &ImageSet) -> Result<Self> {
        let cfg = load_config(dir)?;
        let (meta, saved) = checkpoint::load_latest(dir)?;
        let mut t = Self::build(cfg, dir, device, data)?;
        checkpoint::restore(&t.gan.named(), &saved, "weights")?;
        checkpoint::restore(&t.opt_g.state("adam_g"), &saved, "G optimiser")?;
        checkpoint::restore(&t.opt_d.state("adam_d"), &saved, "D optimiser")?;
        t.opt_g.step = meta.adam_g_step;
        t.opt_d.step = meta.adam_d_step;
        t.pa = meta.pa;
        t.gan.d.set_level(t.pa.level);
        t.schedule.restore(&meta.schedule_state)?;
        t.iter = meta.iter;
        t.train_seconds = meta.train_seconds;
        truncate_metrics(&dir.join("metrics.jsonl"), t.iter)?;
        Ok(t)
    }

    fn real_batch(&mut self) -> Tensor {
        let idx = self.sampler.batch(self.iter, self.cfg.batch as usize);
        let idx = Tensor::from_slice(&idx).to_device(self.device);
        self.data.index_select(0, &idx).to_kind(Kind::Float) / 127.5 - 1.0
    }

    /// The penalty in use: WGAN-GP implies the 1-centred one unless another was chosen.
    fn gp_kind(&self) -> loss::GpKind {
        match (self.cfg.loss, self.cfg.reg.gp) {
            (loss::LossKind::WganGp, loss::GpKind::None) => loss::GpKind::OneCentred,
            (_, k) => k,
        }
    }

    /// One iteration: a D step on reals and detached fakes, then a G step on the same fakes.
    fn step(&mut self) -> StepStats {
        rng::seed_torch(rng::derive_seed(self.cfg.seed, stream::STEP, self.iter));
        let b = self.cfg.batch;
        let real = self.real_batch();
        let z = Tensor::rand([b, self.cfg.arch.latent], (Kind::Float, self.device)) * 2.0 - 1.0;
        let with_pa = self.gan.d.pa_layer.is_some();
        let bits = with_pa.then(|| self.pa.sample_bits(b, self.iter, self.device));
        let tg = pa::targets(bits.as_ref(), b, self.device);
        // alpha = 0 multiplies by exactly 1: plain targets.
        let tg_d = loss::smooth(&tg, self.cfg.reg.label_smoothing);
        let fake = self.gan.g.forward(&z, true);

        // D step: reals and fakes in one batch (D has no BN, so this equals two passes).
        let x = Tensor::cat(&[&real, &fake.detach()], 0);
        let bits2 = bits.as_ref().map(|t| Tensor::cat(&[t, t], 0));
        let logits = self.gan.d.forward(&x, bits2.as_ref(), true);
        let (lr, lf) = (logits.narrow(0, 0, b), logits.narrow(0, b, b));
        let d_loss = loss::d_loss(self.cfg.loss, &lr, &lf, &tg_d);
        let penalty = loss::gradient_penalty(
            self.gp_kind(),
            self.cfg.reg.gp_weight,
            &self.gan.d,
            &real,
            &fake,
            bits.as_ref(),
        );
        let d_total = match &penalty {
            Some(p) => &d_loss + p,
            None => d_loss.shallow_clone(),
        };
        let grads = Tensor::run_backward(&[&d_total], &self.opt_d.tensors(), false, false);
        self.opt_d.apply(&grads);

        // G step: only G's gradients are computed (D's weights are not inputs of the backward).
        let logits_g = self.gan.d.forward(&fake, bits.as_ref(), true);
        let g_loss = loss::g_loss(self.cfg.loss, &logits_g, &tg);
        let grads = Tensor::run_backward(&[&g_loss], &self.opt_g.tensors(), false, false);
        self.opt_g.apply(&grads);

        StepStats {
            acc_real: loss::accuracy(&lr.detach(), &tg.real),
            acc_fake: loss::accuracy(&lf.detach(), &tg.fake),
            d_loss: d_loss.detach(),
            g_loss: g_loss.detach(),
        }
    }

    /// Trains until `self.cfg.iters` iterations are done.
    pub fn run(&mut self, opts: RunOptions) -> Result<()> {
        let total = self.cfg.iters;
        if self.iter >= total {
            tracing::info!(
                iter = self.iter,
                "run already at {total} iterations; nothing to do"
            );
            return Ok(());
        }
        let bar = progress_bar(self.iter, total, opts.quiet);
        let mut metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("metrics.jsonl"))
            .with_context(|| format!("opening {}", self.dir.join("metrics.jsonl").display()))?;
        let mut window: Option<[Tensor; 4]> = None;
        let mut window_n = 0u64;
        let mut window_start = Instant::now();
        let mut seg_start = Instant::now();
        while self.iter < total {
            let s = self.step();
            let cur = [s.d_loss, s.g_loss, s.acc_real, s.acc_fake];
            window = Some(match window {
                None => cur,
                Some(w) => [&w[0] + &cur[0], &w[1] + &cur[1], &w[2] + &cur[2], &w[3] + &cur[3]],
            });
            window_n += 1;
            let p_now = self.pa.new_bit_prob(self.iter);
            self.iter += 1;
            bar.inc(1);

            let eval_every = self.cfg.eval.every;
            let eval = if eval_every > 0 && (self.iter.is_multiple_of(eval_every) || self.iter == total) {
                // Evaluation time is kept out of the iteration timing of the window.
                let paused = Instant::now();
                bar.set_message(format!("evaluating KID on {} images", self.cfg.eval.samples));
                let r = self.evaluate()?;
                window_start += paused.elapsed();
                bar.suspend(|| {
                    tracing::info!(
                        iter = self.iter,
                        level = self.pa.level,
                        kid = format!("{:.5} ± {:.5}", r.kid, r.kid_std),
                        fid = r.fid.map(|f| format!("{f:.3}")).unwrap_or_else(|| "-".into()),
                        seconds = format!("{:.1}", r.seconds),
                        "evaluation"
                    )
                });
                Some(r)
            } else {
                None
            };

            if self.iter.is_multiple_of(self.cfg.log_every) || self.iter == total || eval.is_some() {
                if let Some(w) = window.take() {
                    let k = window_n as f64;
                    let v = |t: &Tensor| t.double_value(&[]) / k;
                    let line = MetricsLine {
                        iter: self.iter,
                        d_loss: v(&w[0]),
                        g_loss: v(&w[1]),
                        d_acc_real: v(&w[2]),
                        d_acc_fake: v(&w[3]),
                        pa_level: self.pa.level,
                        pa_p: p_now,
                        sec_per_iter: window_start.elapsed().as_secs_f64() / k,
                        kid: eval.map(|e| e.kid),
                        kid_std: eval.map(|e| e.kid_std),
                        fid: eval.and_then(|e| e.fid),
                        eval_seconds: eval.map(|e| e.seconds),
                    };
                    writeln!(metrics, "{}", serde_json::to_string(&line)?)?;
                    bar.set_message(format!(
                        "D {:.3} G {:.3} acc {:.2}/{:.2} L{}",
                        line.d_loss, line.g_loss, line.d_acc_real, line.d_acc_fake, line.pa_level
                    ));
                }
                window_n = 0;
                window_start = Instant::now();
            }

            let input = ScheduleInput {
                iter: self.iter,
                level: self.pa.level,
                kid: eval.map(|e| e.kid),
            };
            if self.gan.d.pa_layer.is_some()
                && self.schedule.should_level_up(&input)
                && self.pa.level_up(self.iter)
            {
                self.gan.d.set_level(self.pa.level);
                self.schedule.on_level_up(self.iter);
                if self.cfg.reset_g_adam_on_level_up {
                    self.opt_g.step = 0;
                }
                bar.suspend(|| tracing::info!(iter = self.iter, level = self.pa.level, "PA level up"));
            }

            if self.iter.is_multiple_of(self.cfg.sample_every) || self.iter == total {
                self.save_grid()?;
            }
            if self.iter.is_multiple_of(self.cfg.checkpoint_every) || self.iter == total {
                metrics.flush()?;
                self.train_seconds += seg_start.elapsed().as_secs_f64();
                seg_start = Instant::now();
                self.save_checkpoint()?;
            }
        }
        bar.finish_and_clear();
        tracing::info!(
            iter = self.iter,
            level = self.pa.level,
            seconds = format!("{:.1}", self.train_seconds),
            "training done; run folder {}",
            self.dir.display()
        );
        Ok(())
    }

    /// Runs one FID/KID evaluation now (loading the Inception on first use).
    pub fn evaluate(&mut self) -> Result<crate::eval::EvalResult> {
        if self.evaluator.is_none() {
            self.evaluator = Some(crate::eval::TrainingEval::new(&self.cfg, self.device)?);
        }
        let ev = self.evaluator.as_mut().context("evaluator")?;
        ev.evaluate(&self.cfg, &self.gan, &self.data, self.iter)
    }

    /// Images from the fixed z, in eval mode, as [N, C, H, W] in [-1, 1] on the CPU.
    pub fn fixed_samples(&self) -> Tensor {
        tch::no_grad(|| self.gan.g.forward(&self.fixed_z, false)).to_device(Device::Cpu)
    }

    fn save_grid(&self) -> Result<()> {
        let x = self.fixed_samples();
        let shape = x.size();
        let data = Vec::<f32>::try_from(x.flatten(0, -1))?;
        let dims = [
            shape[0] as usize,
            shape[1] as usize,
            shape[2] as usize,
            shape[3] as usize,
        ];
        let dir = self.dir.join("samples");
        pagan_shared::grid::save_grid(&dir.join(format!("iter-{:09}.png", self.iter)), &data, dims, 8)?;
        pagan_shared::grid::save_grid(&dir.join("latest.png"), &data, dims, 8)?;
        Ok(())
    }

    /// Writes a checkpoint for the current iteration.
    pub fn save_checkpoint(&self) -> Result<()> {
        let mut tensors = self.gan.named();
        tensors.extend(self.opt_g.state("adam_g"));
        tensors.extend(self.opt_d.state("adam_d"));
        let meta = CheckpointMeta {
            iter: self.iter,
            weights_file: checkpoint::weights_name(self.iter),
            pa: self.pa.clone(),
            schedule_state: self.schedule.state(),
            adam_g_step: self.opt_g.step,
            adam_d_step: self.opt_d.step,
            seed: self.cfg.seed,
            train_seconds: self.train_seconds,
        };
        checkpoint::save(&self.dir, &tensors, &meta, 2)
    }
}

/// Reads a run's config.json.
pub fn load_config(dir: &Path) -> Result<TrainConfig> {
    let p = dir.join("config.json");
    let bytes = std::fs::read(&p)
        .with_context(|| format!("{} is not a run folder (no config.json)", dir.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("corrupt {}", p.display()))
}

/// Loads only the networks of a run at its newest checkpoint (for sampling and export).
pub fn load_gan(dir: &Path, device: Device) -> Result<(TrainConfig, CheckpointMeta, Gan)> {
    let cfg = load_config(dir)?;
    let (meta, saved) = checkpoint::load_latest(dir)?;
    let gan = Gan::new(&cfg, device, meta.pa.level);
    checkpoint::restore(&gan.named(), &saved, "weights")?;
    Ok((cfg, meta, gan))
}

/// Drops metrics lines past `iter` (written after the checkpoint a resume starts from).
fn truncate_metrics(path: &Path, iter: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<MetricsLine>(l)
                .map(|m| m.iter <= iter)
                .unwrap_or(true)
        })
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    pagan_shared::grid::write_atomic(path, out.as_bytes())
        .with_context(|| format!("rewriting {}", path.display()))
}

/// Reads a metrics file.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad line in {}: {l}", path.display())))
        .collect()
}

fn progress_bar(pos: u64, total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_position(pos);
    bar.reset_eta();
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} it {per_sec} ETA {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
