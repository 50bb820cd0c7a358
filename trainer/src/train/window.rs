//! The metrics window: per-step statistics summed on the device (no host sync per step)
//! until a metrics line is written.

use std::time::{Duration, Instant};

use tch::Tensor;

use crate::run_dir::MetricsLine;

/// One iteration's statistics, on the device.
pub struct StepStats {
    /// D's adversarial loss.
    pub d_loss: Tensor,
    /// G's loss.
    pub g_loss: Tensor,
    /// D accuracy on reals.
    pub acc_real: Tensor,
    /// D accuracy on fakes.
    pub acc_fake: Tensor,
}

impl StepStats {
    /// Another handle on the same tensors.
    pub fn shallow_clone(&self) -> Self {
        Self {
            d_loss: self.d_loss.shallow_clone(),
            g_loss: self.g_loss.shallow_clone(),
            acc_real: self.acc_real.shallow_clone(),
            acc_fake: self.acc_fake.shallow_clone(),
        }
    }
}

/// Sums since the last metrics line.
pub struct Window {
    sums: Option<[Tensor; 4]>,
    n: u64,
    start: Instant,
}

/// What a line needs besides the window's means.
#[derive(Debug, Clone, Copy)]
pub struct LineContext {
    /// Iterations completed.
    pub iter: u64,
    /// PA level.
    pub pa_level: i64,
    /// P(newest bit = 1) during the last iteration.
    pub pa_p: f64,
}

impl Window {
    /// An empty window starting now.
    pub fn new() -> Self {
        Self {
            sums: None,
            n: 0,
            start: Instant::now(),
        }
    }

    /// Adds one iteration (on the device, into the window's own sums: a replayed step's
    /// outputs are overwritten by the next replay).
    pub fn add(&mut self, s: StepStats) {
        let cur = [s.d_loss, s.g_loss, s.acc_real, s.acc_fake];
        let sums = self
            .sums
            .get_or_insert_with(|| cur.each_ref().map(Tensor::zeros_like));
        for (sum, c) in sums.iter_mut().zip(&cur) {
            *sum += c;
        }
        self.n += 1;
    }

    /// Leaves `d` (an evaluation's time) out of the iteration timing.
    pub fn pause(&mut self, d: Duration) {
        self.start += d;
    }

    /// True when no iteration was added since the last line.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The means as a metrics line (reads the device once), and a fresh window.
    pub fn take_line(&mut self, ctx: LineContext) -> Option<MetricsLine> {
        let sums = self.sums.take()?;
        let k = self.n as f64;
        let v = |t: &Tensor| t.double_value(&[]) / k;
        let line = MetricsLine {
            iter: ctx.iter,
            d_loss: v(&sums[0]),
            g_loss: v(&sums[1]),
            d_acc_real: v(&sums[2]),
            d_acc_fake: v(&sums[3]),
            pa_level: ctx.pa_level,
            pa_p: ctx.pa_p,
            sec_per_iter: self.start.elapsed().as_secs_f64() / k,
            kid: None,
            kid_std: None,
            fid: None,
            prdc: None,
            provenance: None,
            eval_seconds: None,
        };
        *self = Self::new();
        Some(line)
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}
