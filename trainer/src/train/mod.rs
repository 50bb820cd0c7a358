//! The training loop: one D step and one G step per iteration (`step`, run eager or as a
//! CUDA graph by `graph`), with our Adam (`adam`), the metrics window (`window`), level-ups,
//! evaluations, sample grids and checkpoints by iteration count and by wall time. A trainer
//! (built by `open`) holds one run, or a stack of runs trained in one set of kernels
//! (`model::stack`): each run (`runs`) keeps its own seed stream, data order, PA state,
//! level-up rule, evaluations and run folder.

pub mod adam;
mod graph;
mod open;
mod runs;
mod step;
pub mod window;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::fid::evaluate::{EvalResult, TrainingEval};
use crate::model::Gan;
use crate::model::stack::StackLayout;
use crate::objective::tricks::HistoricalAverage;
use crate::run_dir::{CheckpointMeta, MetricsWriter, checkpoint};
use adam::Adam;
use graph::Engine;
pub use graph::StepMode;
pub use runs::Run;
use window::LineContext;

/// Number of images in the fixed-z sample grid.
pub const GRID_N: i64 = 64;
/// Columns of every sample grid.
pub const GRID_COLS: i64 = 8;

/// Options that change how a run is watched, not what it computes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Hide the progress bar (tests, logs to files).
    pub quiet: bool,
    /// Eager, or the step as a CUDA graph.
    pub step_mode: StepMode,
}

/// A training process: one run, or a stack of runs sharing one set of kernels.
pub struct Trainer {
    /// The runs (one per model of the stack).
    pub runs: Vec<Run>,
    /// Compute device.
    pub device: Device,
    /// Networks (stacked when there are several runs).
    pub gan: Gan,
    /// G's optimiser.
    pub opt_g: Adam,
    /// D's optimiser.
    pub opt_d: Adam,
    /// Iterations completed (the same for every run).
    pub iter: u64,
    /// Each run's own shapes inside the stack (`None` for a single run).
    layout: Option<StackLayout>,
    data: Tensor,
    /// The images' labels (int64 [n]) of a class-conditional run.
    labels: Option<Tensor>,
    /// How iterations run (eager unless [`Self::set_step_mode`] chose a CUDA graph).
    engine: Engine,
    /// FID/KID of every run (the Inception is loaded at the first evaluation).
    evaluator: Option<TrainingEval>,
    /// Historical averages of G's and D's parameters (`--hist-avg-g`, `--hist-avg-d`).
    hist: [Option<HistoricalAverage>; 2],
}

impl Trainer {
    /// The single run's configuration (the first run's in a stack).
    pub fn cfg(&self) -> &TrainConfig {
        &self.runs[0].cfg
    }

    /// Total iterations (shared by every run).
    fn total(&self) -> u64 {
        self.runs[0].cfg.iters
    }

    /// Runs `n` iterations (in the current step mode) without logging or checkpoints;
    /// returns the last D loss of the first run (which also waits for the device to finish,
    /// so callers can time it).
    pub fn steps(&mut self, n: u64) -> Result<f64> {
        let mut last = None;
        for _ in 0..n {
            last = self.iteration()?.into_iter().next().map(|s| s.d_loss);
            self.iter += 1;
        }
        Ok(last.map(|t| t.double_value(&[])).unwrap_or(f64::NAN))
    }

    /// Trains until every run's iterations are done.
    pub fn run(&mut self, opts: RunOptions) -> Result<()> {
        let total = self.total();
        if self.iter >= total {
            tracing::info!(iter = self.iter, "already at {total} iterations; nothing to do");
            return Ok(());
        }
        self.set_step_mode(opts.step_mode);
        let bar = crate::progress::bar(total, self.iter, "it", opts.quiet);
        let mut writers = self
            .runs
            .iter()
            .map(|r| r.folder().and_then(|d| d.metrics().writer()))
            .collect::<Result<Vec<MetricsWriter>>>()?;
        let cfg = self.runs[0].cfg.clone();
        let mut seg_start = Instant::now();
        let mut last_checkpoint = Instant::now();
        let checkpoint_period = Duration::from_secs_f64(cfg.checkpoint_minutes * 60.0);
        while self.iter < total {
            let stats = self.iteration()?;
            let p_now: Vec<f64> = self.runs.iter().map(|r| r.pa.new_bit_prob(self.iter)).collect();
            for (r, s) in self.runs.iter_mut().zip(stats) {
                r.window.add(s);
            }
            self.iter += 1;
            bar.inc(1);

            let evals = if self.evaluation_due() {
                // Evaluation time is kept out of the iteration timing of the window.
                let paused = Instant::now();
                bar.set_message(format!("evaluating KID on {} images", cfg.eval.samples));
                let r = self.evaluate_all()?;
                for (run, e) in self.runs.iter_mut().zip(&r) {
                    run.window.pause(paused.elapsed());
                    let dir = run
                        .folder()
                        .map(|d| d.path().display().to_string())
                        .unwrap_or_default();
                    bar.suspend(|| e.log(self.iter, run.pa.level, &dir));
                }
                Some(r)
            } else {
                None
            };

            // A checkpoint always ends a metrics window, so a resumed run writes the same
            // lines as an uninterrupted one; a time-based one waits for the next line.
            let at_line = self.iter.is_multiple_of(cfg.log_every) || self.iter == total;
            let checkpoint_now = self.iter.is_multiple_of(cfg.checkpoint_every)
                || self.iter == total
                || (at_line && last_checkpoint.elapsed() >= checkpoint_period);
            if at_line || evals.is_some() || checkpoint_now {
                for (k, (run, w)) in self.runs.iter_mut().zip(writers.iter_mut()).enumerate() {
                    let ctx = LineContext {
                        iter: self.iter,
                        pa_level: run.pa.level,
                        pa_p: p_now[k],
                    };
                    if let Some(line) = run.window.take_line(ctx) {
                        let line = match &evals {
                            Some(e) => e[k].clone().annotate(line),
                            None => line,
                        };
                        w.append(&line)?;
                        if k == 0 {
                            bar.set_message(format!(
                                "D {:.3} G {:.3} acc {:.2}/{:.2} L{}",
                                line.d_loss, line.g_loss, line.d_acc_real, line.d_acc_fake, line.pa_level
                            ));
                        }
                    }
                }
            }

            for k in 0..self.runs.len() {
                let kid = evals.as_ref().map(|e| e[k].kid);
                self.maybe_level_up(k, kid, &bar);
            }

            if self.iter.is_multiple_of(cfg.sample_every) || self.iter == total {
                self.save_grids()?;
            }
            if checkpoint_now {
                let seconds = seg_start.elapsed().as_secs_f64();
                seg_start = Instant::now();
                for (r, w) in self.runs.iter_mut().zip(writers.iter_mut()) {
                    r.train_seconds += seconds;
                    w.flush()?;
                }
                self.checkpoint()?;
                last_checkpoint = Instant::now();
            }
        }
        bar.finish_and_clear();
        for r in &self.runs {
            let folder = r.folder()?.path().display().to_string();
            tracing::info!(
                iter = self.iter,
                level = r.pa.level,
                seconds = format!("{:.1}", r.train_seconds),
                "training done; run folder {folder}"
            );
        }
        Ok(())
    }

    fn evaluation_due(&self) -> bool {
        let every = self.runs[0].cfg.eval.every;
        every > 0 && (self.iter.is_multiple_of(every) || self.iter == self.total())
    }

    fn maybe_level_up(&mut self, k: usize, kid: Option<f64>, bar: &indicatif::ProgressBar) {
        let iter = self.iter;
        let has_pa = self.gan.d.pa_layers[k].is_some();
        let run = &mut self.runs[k];
        if has_pa && run.wants_level_up(iter, kid) && run.pa.level_up(iter) {
            run.schedule.on_level_up(iter);
            let level = run.pa.level;
            self.gan.d.set_model_level(k, level);
            if run.cfg.reset_g_adam_on_level_up {
                // Only single runs: a stack refuses this setting (its runs share counters).
                self.opt_g.step = 0;
            }
            let name = run.dir.as_ref().map(|d| d.path().display().to_string());
            let run = name.unwrap_or_else(|| format!("#{k}"));
            bar.suspend(|| tracing::info!(iter, level, run, "PA level up"));
        }
    }

    /// Runs one FID/KID evaluation of every run now (loading the Inception on first use).
    pub fn evaluate_all(&mut self) -> Result<Vec<EvalResult>> {
        let start = Instant::now();
        if self.evaluator.is_none() {
            let e = &self.runs[0].cfg.eval;
            self.evaluator = Some(TrainingEval::new(e, self.device, self.runs.len())?);
        }
        let ev = self.evaluator.as_mut().context("evaluator")?;
        let cfgs: Vec<&TrainConfig> = self.runs.iter().map(|r| &r.cfg).collect();
        // Timed from before the Inception's loading at the first evaluation.
        ev.evaluate(&cfgs, &self.gan, &self.data, self.iter, start)
    }

    /// Runs one FID/KID evaluation of the (first) run now.
    pub fn evaluate(&mut self) -> Result<EvalResult> {
        self.evaluate_all()?.into_iter().next().context("no runs")
    }

    /// Each run's images from its fixed z, in eval mode, as [N, C, H, W] in [-1, 1] on the CPU.
    /// A class-conditional run's grid has one row per class, each column one z.
    pub fn fixed_samples(&self) -> Vec<Tensor> {
        if let Some(c) = &self.gan.g.classes {
            let (k, cols) = (c.table.size()[0], GRID_COLS);
            let z = self.runs[0].fixed_z.narrow(0, 0, cols).repeat([k, 1]);
            let y = Tensor::from_slice(&crate::model::generator::class_row_labels(k, cols))
                .to_device(self.device);
            let x = tch::no_grad(|| self.gan.g.forward_labelled(&z, Some(&y), false));
            return vec![x.to_device(Device::Cpu)];
        }
        let z: Vec<&Tensor> = self.runs.iter().map(|r| &r.fixed_z).collect();
        let x = tch::no_grad(|| self.gan.g.forward(&Tensor::cat(&z, 1), false)).to_device(Device::Cpu);
        x.chunk(self.runs.len() as i64, 1)
    }

    fn save_grids(&self) -> Result<()> {
        for (r, x) in self.runs.iter().zip(self.fixed_samples()) {
            let x = x.contiguous().to_kind(Kind::Float);
            let s = x.size();
            let data = Vec::<f32>::try_from(x.flatten(0, -1))?;
            let shape = [s[0] as usize, s[1] as usize, s[2] as usize, s[3] as usize];
            r.folder()?.save_samples(self.iter, &data, shape)?;
        }
        Ok(())
    }

    /// Writes a checkpoint of every run for the current iteration, each in its own folder
    /// in today's format.
    fn checkpoint(&self) -> Result<()> {
        let mut tensors = self.gan.named();
        tensors.extend(self.opt_g.state("adam_g"));
        tensors.extend(self.opt_d.state("adam_d"));
        for (k, r) in self.runs.iter().enumerate() {
            let own = match &self.layout {
                None => tensors
                    .iter()
                    .map(|(n, t)| (n.clone(), t.shallow_clone()))
                    .collect(),
                Some(l) => l.run_tensors(&tensors, k)?,
            };
            let meta = CheckpointMeta {
                iter: self.iter,
                weights_file: checkpoint::weights_name(self.iter),
                pa: r.pa.clone(),
                schedule_state: r.schedule.state(),
                adam_g_step: self.opt_g.step,
                adam_d_step: self.opt_d.step,
                seed: r.cfg.seed,
                train_seconds: r.train_seconds,
            };
            r.folder()?.save_checkpoint(&own, &meta)?;
        }
        Ok(())
    }
}

/// A narrow 1x28x28 config with overrides `o` and 24 deterministic synthetic images, for
/// this module's unit tests.
#[cfg(test)]
pub(crate) fn tiny_setup(o: &crate::config::TrainOverrides) -> (TrainConfig, crate::data::ImageSet) {
    let mut cfg = TrainConfig::resolve("synthetic", [1, 28, 28], std::path::Path::new(""), o);
    cfg.arch = crate::config::Arch::narrowed([1, 28, 28], 16);
    let n = 24;
    let set = crate::data::ImageSet {
        data: (0..n * 784).map(|i| (i * 31 % 256) as u8).collect(),
        labels: None,
        n,
        channels: 1,
        height: 28,
        width: 28,
        source: "synthetic".into(),
    };
    (cfg, set)
}
