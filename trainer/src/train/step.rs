//! One training iteration of every run at once: a D step on reals and detached fakes, then
//! a G step on the same fakes, each against PA's checksum targets. In a stack, run k's
//! z, bits and penalty draws come from its own seed stream in its own order, its images
//! occupy its own channel block, and its losses are summed with the others' (parameters
//! are disjoint, so each run's gradient is exactly its own).

use tch::{Kind, Tensor};

use super::Trainer;
use super::window::StepStats;
use crate::config::GpKind;
use crate::objective::loss;
use crate::objective::pa::{self, Targets};
use crate::rng::{self, stream};

/// One run's random draws for one iteration.
struct Draws {
    z: Tensor,
    bits: Option<Tensor>,
    /// The 1-centred penalty's interpolation weights, drawn up front (stacks only: a
    /// single run draws them where it always did).
    eps: Option<Tensor>,
}

impl Trainer {
    /// Run `k`'s real batch for this iteration, in [-1, 1].
    fn real_batch(&mut self, k: usize) -> Tensor {
        let b = self.runs[k].cfg.batch as usize;
        let idx = self.runs[k].sampler.batch(self.iter, b);
        let idx = Tensor::from_slice(&idx).to_device(self.device);
        self.data.index_select(0, &idx).to_kind(Kind::Float) / 127.5 - 1.0
    }

    /// Run `k`'s z, bits (and penalty weights in a stack), in the order a single run draws them.
    fn draws(&self, k: usize, stacked: bool) -> Draws {
        let run = &self.runs[k];
        let (b, dev) = (run.cfg.batch, self.device);
        rng::seed_torch(rng::derive_seed(run.cfg.seed, stream::STEP, self.iter));
        let z = Tensor::rand([b, run.cfg.arch.latent], (Kind::Float, dev)) * 2.0 - 1.0;
        let bits = self.gan.d.pa_layers[k].map(|_| run.pa.sample_bits(b, self.iter, dev));
        let one_centred = run.cfg.reg.effective_gp(run.cfg.loss) == GpKind::OneCentred;
        let eps = (stacked && one_centred).then(|| Tensor::rand([b, 1, 1, 1], (Kind::Float, dev)));
        Draws { z, bits, eps }
    }

    /// One iteration of every run (does not advance `self.iter`); one [`StepStats`] per run.
    pub(super) fn step(&mut self) -> Vec<StepStats> {
        let models = self.runs.len();
        let stacked = models > 1;
        let cfg = self.runs[0].cfg.clone();
        let b = cfg.batch;
        let draws: Vec<Draws> = (0..models).map(|k| self.draws(k, stacked)).collect();
        let reals: Vec<Tensor> = (0..models).map(|k| self.real_batch(k)).collect();
        let targets: Vec<Targets> = draws
            .iter()
            .map(|d| pa::targets(d.bits.as_ref(), b, self.device))
            .collect();
        // alpha = 0 multiplies by exactly 1: plain targets.
        let targets_d: Vec<Targets> = targets
            .iter()
            .map(|t| loss::smooth(t, cfg.reg.label_smoothing))
            .collect();
        let cat1 = |ts: Vec<&Tensor>| {
            if ts.len() == 1 {
                ts[0].shallow_clone()
            } else {
                Tensor::cat(&ts, 1)
            }
        };
        let real = cat1(reals.iter().collect());
        let z = cat1(draws.iter().map(|d| &d.z).collect());
        // Bits of every model side by side; a run without PA feeds zeros (masked anyway).
        let bits = self.gan.d.has_bits().then(|| {
            let zeros = Tensor::zeros([b, cfg.max_level], (Kind::Float, self.device));
            cat1(draws.iter().map(|d| d.bits.as_ref().unwrap_or(&zeros)).collect())
        });
        let fake = self.gan.g.forward(&z, true);

        // D step: reals and fakes in one batch (D has no BN, so this equals two passes).
        let x = Tensor::cat(&[&real, &fake.detach()], 0);
        let bits2 = bits.as_ref().map(|t| Tensor::cat(&[t, t], 0));
        let logits = self.gan.d.forward_each(&x, bits2.as_ref(), true);
        let lr: Vec<Tensor> = logits.iter().map(|l| l.narrow(0, 0, b).select(1, 0)).collect();
        let lf: Vec<Tensor> = logits.iter().map(|l| l.narrow(0, b, b).select(1, 0)).collect();
        let d_losses: Vec<Tensor> = (0..models)
            .map(|k| loss::d_loss(cfg.loss, &lr[k], &lf[k], &targets_d[k]))
            .collect();
        let eps: Option<Vec<&Tensor>> = draws.iter().map(|d| d.eps.as_ref()).collect();
        let penalty = loss::gradient_penalty(
            cfg.reg.effective_gp(cfg.loss),
            cfg.reg.gp_weight,
            &self.gan.d,
            &real,
            &fake,
            bits.as_ref(),
            eps.as_deref(),
        );
        let params = self.opt_d.tensors();
        let mut grads = Tensor::run_backward(&[&sum(&d_losses)], &params, false, false);
        if let Some(p) = &penalty {
            // The penalty's gradient is taken in its own pass and added: one pass over both
            // would sum a weight's several contributions in an order that depends on the
            // graph's shape, and a stack's graph has a different shape than its runs'.
            let pen = Tensor::run_backward(&[p], &params, false, false);
            for (g, q) in grads.iter_mut().zip(pen) {
                *g = match (g.defined(), q.defined()) {
                    (true, true) => &*g + q,
                    (false, _) => q,
                    (true, false) => g.shallow_clone(),
                };
            }
        }
        self.opt_d.apply(&grads);

        // G step: only G's gradients are computed (D's weights are not inputs of the backward).
        let logits_g = self.gan.d.forward_each(&fake, bits.as_ref(), true);
        let g_losses: Vec<Tensor> = (0..models)
            .map(|k| loss::g_loss(cfg.loss, &logits_g[k].select(1, 0), &targets[k]))
            .collect();
        let grads = Tensor::run_backward(&[&sum(&g_losses)], &self.opt_g.tensors(), false, false);
        self.opt_g.apply(&grads);

        (0..models)
            .map(|k| StepStats {
                acc_real: loss::accuracy(&lr[k].detach(), &targets[k].real),
                acc_fake: loss::accuracy(&lf[k].detach(), &targets[k].fake),
                d_loss: d_losses[k].detach(),
                g_loss: g_losses[k].detach(),
            })
            .collect()
    }
}

/// The sum of per-run losses (a single run's loss as it is).
fn sum(ts: &[Tensor]) -> Tensor {
    match ts {
        [one] => one.shallow_clone(),
        _ => Tensor::stack(ts, 0).sum(Kind::Float),
    }
}
