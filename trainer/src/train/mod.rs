//! The training loop: one D step and one G step per iteration (`step`), with our Adam
//! (`adam`), the metrics window (`window`), level-ups, evaluations, sample grids and
//! checkpoints by iteration count and by wall time.

pub mod adam;
mod step;
pub mod window;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tch::{Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::data::ImageSet;
use crate::fid::evaluate::{EvalResult, TrainingEval};
use crate::model::Gan;
use crate::objective::pa::PaState;
use crate::objective::schedule::{self, LevelSchedule, ScheduleInput};
use crate::rng::{self, EpochSampler, stream};
use crate::run_dir::{CheckpointMeta, MetricsWriter, RunDir, checkpoint};
use adam::Adam;
use window::{LineContext, Window};

/// Number of images in the fixed-z sample grid.
pub const GRID_N: i64 = 64;

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
    /// Run folder (`None` for an ephemeral run that writes nothing).
    pub dir: Option<RunDir>,
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
    evaluator: Option<TrainingEval>,
}

impl Trainer {
    /// A fresh run in `dir` (created; refuses a folder that already holds a run).
    pub fn create(cfg: TrainConfig, dir: &Path, device: Device, data: &ImageSet) -> Result<Self> {
        let run = RunDir::create(dir, &cfg)?;
        Self::build(cfg, Some(run), device, data)
    }

    /// A run that writes nothing (benchmarks, tests): same networks and step, no folder.
    pub fn ephemeral(cfg: TrainConfig, device: Device, data: &ImageSet) -> Result<Self> {
        Self::build(cfg, None, device, data)
    }

    /// Reopens a run at its newest checkpoint, or at iteration 0 when it was stopped before
    /// its first one; the config comes from its config.json.
    pub fn open(dir: &Path, device: Device, data: &ImageSet) -> Result<Self> {
        let run = RunDir::at(dir);
        let cfg = run.config()?;
        let saved = run.load_checkpoint()?;
        let mut t = Self::build(cfg, Some(run.clone()), device, data)?;
        match saved {
            Some((meta, tensors)) => {
                checkpoint::restore(&t.gan.named(), &tensors, "weights")?;
                checkpoint::restore(&t.opt_g.state("adam_g"), &tensors, "G optimiser")?;
                checkpoint::restore(&t.opt_d.state("adam_d"), &tensors, "D optimiser")?;
                t.opt_g.step = meta.adam_g_step;
                t.opt_d.step = meta.adam_d_step;
                t.pa = meta.pa;
                t.gan.d.set_level(t.pa.level);
                t.schedule.restore(&meta.schedule_state)?;
                t.iter = meta.iter;
                t.train_seconds = meta.train_seconds;
            }
            None => {
                tracing::info!(run = %dir.display(), "no checkpoint yet: starting again from iteration 0")
            }
        }
        run.metrics().truncate_after(t.iter)?;
        Ok(t)
    }

    fn build(cfg: TrainConfig, dir: Option<RunDir>, device: Device, data: &ImageSet) -> Result<Self> {
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
            dir,
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

    fn run_dir(&self) -> Result<&RunDir> {
        self.dir
            .as_ref()
            .context("this run has no folder (ephemeral): it cannot log or checkpoint")
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
        let bar = crate::progress::bar(total, self.iter, "it", opts.quiet);
        let mut metrics = self.run_dir()?.metrics().writer()?;
        let mut window = Window::new();
        let mut seg_start = Instant::now();
        let mut last_checkpoint = Instant::now();
        let checkpoint_period = Duration::from_secs_f64(self.cfg.checkpoint_minutes * 60.0);
        while self.iter < total {
            window.add(self.step());
            let p_now = self.pa.new_bit_prob(self.iter);
            self.iter += 1;
            bar.inc(1);

            let eval = if self.evaluation_due() {
                // Evaluation time is kept out of the iteration timing of the window.
                let paused = Instant::now();
                bar.set_message(format!("evaluating KID on {} images", self.cfg.eval.samples));
                let r = self.evaluate()?;
                window.pause(paused.elapsed());
                bar.suspend(|| r.log(self.iter, self.pa.level));
                Some(r)
            } else {
                None
            };

            // A checkpoint always ends a metrics window, so a resumed run writes the same
            // lines as an uninterrupted one; a time-based one waits for the next line.
            let at_line = self.iter.is_multiple_of(self.cfg.log_every) || self.iter == total;
            let checkpoint_now = self.iter.is_multiple_of(self.cfg.checkpoint_every)
                || self.iter == total
                || (at_line && last_checkpoint.elapsed() >= checkpoint_period);
            if at_line || eval.is_some() || checkpoint_now {
                let ctx = LineContext {
                    iter: self.iter,
                    pa_level: self.pa.level,
                    pa_p: p_now,
                };
                if let Some(line) = window.take_line(ctx) {
                    let line = match eval {
                        Some(e) => e.annotate(line),
                        None => line,
                    };
                    metrics.append(&line)?;
                    bar.set_message(format!(
                        "D {:.3} G {:.3} acc {:.2}/{:.2} L{}",
                        line.d_loss, line.g_loss, line.d_acc_real, line.d_acc_fake, line.pa_level
                    ));
                }
            }

            self.maybe_level_up(eval.map(|e| e.kid), &bar);

            if self.iter.is_multiple_of(self.cfg.sample_every) || self.iter == total {
                self.save_grid()?;
            }
            if checkpoint_now {
                self.train_seconds += seg_start.elapsed().as_secs_f64();
                seg_start = Instant::now();
                self.checkpoint(&mut metrics)?;
                last_checkpoint = Instant::now();
            }
        }
        bar.finish_and_clear();
        tracing::info!(
            iter = self.iter,
            level = self.pa.level,
            seconds = format!("{:.1}", self.train_seconds),
            "training done; run folder {}",
            self.run_dir()?.path().display()
        );
        Ok(())
    }

    fn evaluation_due(&self) -> bool {
        let every = self.cfg.eval.every;
        every > 0 && (self.iter.is_multiple_of(every) || self.iter == self.cfg.iters)
    }

    fn maybe_level_up(&mut self, kid: Option<f64>, bar: &indicatif::ProgressBar) {
        let input = ScheduleInput {
            iter: self.iter,
            level: self.pa.level,
            kid,
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
    }

    /// Runs one FID/KID evaluation now (loading the Inception on first use).
    pub fn evaluate(&mut self) -> Result<EvalResult> {
        if self.evaluator.is_none() {
            self.evaluator = Some(TrainingEval::new(&self.cfg.eval, self.device)?);
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
        let s = x.size();
        let data = Vec::<f32>::try_from(x.flatten(0, -1))?;
        let shape = [s[0] as usize, s[1] as usize, s[2] as usize, s[3] as usize];
        self.run_dir()?.save_samples(self.iter, &data, shape)
    }

    /// Writes a checkpoint for the current iteration (metrics flushed first).
    fn checkpoint(&self, metrics: &mut MetricsWriter) -> Result<()> {
        metrics.flush()?;
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
        self.run_dir()?.save_checkpoint(&tensors, &meta)
    }
}
