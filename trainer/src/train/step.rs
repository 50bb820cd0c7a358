//! One training iteration of every run at once: a D step on reals and detached fakes, then
//! a G step on the same fakes, each against PA's checksum targets. In a stack, run k's
//! z, bits and penalty draws come from its own seed stream in its own order, its images
//! occupy its own channel block, and its losses are summed with the others' (parameters
//! are disjoint, so each run's gradient is exactly its own).
//!
//! The iteration is split in two so that the second part can be captured and replayed as
//! a CUDA graph: [`Trainer::stage`] does all host work (data order, seeding, random draws,
//! Adam's step-dependent factors) and writes what the step reads into tensors;
//! [`Trainer::compute`] is device work only, with no host value that changes between
//! iterations and no host sync.

use tch::{Kind, Tensor};

use super::Trainer;
use super::window::StepStats;
use crate::config::GpKind;
use crate::objective::loss;
use crate::objective::pa::{self, Targets};
use crate::objective::tricks;
use crate::rng::{self, stream};

/// What one iteration reads, written before it runs.
pub struct StepInputs {
    /// Dataset indices of every run's real batch, run after run: [K*B].
    pub idx: Tensor,
    /// Every run's latents side by side: [B, K*latent].
    pub z: Tensor,
    /// Every run's bits side by side [B, K*max_level] (zeros for a run without PA), when
    /// D has bit channels.
    pub bits: Option<Tensor>,
    /// Per run: the 1-centred penalty's interpolation weights [B, 1, 1, 1] (`None`: not
    /// used, or drawn inside the step, as a single run with D dropout always did).
    pub eps: Option<Vec<Tensor>>,
}

impl StepInputs {
    /// Overwrites these tensors with `other`'s values (a replayed step's static inputs).
    #[cfg_attr(not(feature = "cuda-graphs"), allow(dead_code))]
    pub fn copy_from(&mut self, other: &StepInputs) {
        let pairs = [(&mut self.idx, &other.idx), (&mut self.z, &other.z)];
        for (dst, src) in pairs {
            dst.copy_(src);
        }
        if let (Some(dst), Some(src)) = (&mut self.bits, &other.bits) {
            dst.copy_(src);
        }
        if let (Some(dst), Some(src)) = (&mut self.eps, &other.eps) {
            for (d, s) in dst.iter_mut().zip(src) {
                d.copy_(s);
            }
        }
    }
}

impl Trainer {
    /// The host half of an iteration: each run's batch indices and draws from its own seed
    /// stream (z, bits, penalty weights, in the order a single run draws them), and Adam's
    /// factors for the coming updates. Does not advance `self.iter`.
    pub(super) fn stage(&mut self) -> StepInputs {
        let models = self.runs.len();
        let dev = self.device;
        let b = self.runs[0].cfg.batch;
        let (mut idx, mut zs, mut bits, mut eps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for k in 0..models {
            let run = &mut self.runs[k];
            idx.extend(run.sampler.batch(self.iter, b as usize));
            rng::seed_torch(rng::derive_seed(run.cfg.seed, stream::STEP, self.iter));
            zs.push(Tensor::rand([b, run.cfg.arch.latent], (Kind::Float, dev)) * 2.0 - 1.0);
            let run = &self.runs[k];
            if self.gan.d.has_bits() {
                bits.push(match self.gan.d.pa_layers[k] {
                    Some(_) => run.pa.sample_bits(b, self.iter, dev),
                    None => Tensor::zeros([b, run.cfg.max_level], (Kind::Float, dev)),
                });
            }
            let one_centred = run.cfg.reg.effective_gp(run.cfg.loss) == GpKind::OneCentred;
            // With D dropout the weights were always drawn after the dropout masks, inside
            // the step; a stack (which refuses dropout) and every other run draw them here.
            if one_centred && run.cfg.reg.dropout == 0.0 {
                eps.push(Tensor::rand([b, 1, 1, 1], (Kind::Float, dev)));
            }
        }
        self.opt_d.advance();
        self.opt_g.advance();
        StepInputs {
            idx: crate::device::upload(&Tensor::from_slice(&idx), dev),
            z: cat1(&zs),
            bits: (!bits.is_empty()).then(|| cat1(&bits)),
            eps: (eps.len() == models).then_some(eps),
        }
    }

    /// Every run's real batch side by side, [B, K*C, H, W] in [-1, 1].
    fn real_batch(&self, idx: &Tensor) -> Tensor {
        let k = self.runs.len() as i64;
        let x = self.data.index_select(0, idx).to_kind(Kind::Float) / 127.5 - 1.0;
        if k == 1 {
            return x;
        }
        let s = x.size();
        let (c, h, w) = (s[1], s[2], s[3]);
        x.view([k, -1, c, h, w])
            .permute([1, 0, 2, 3, 4])
            .reshape([-1, k * c, h, w])
    }

    /// The device half of an iteration: the D step and the G step of every run on `inp`;
    /// one [`StepStats`] per run. Device work only (capturable as a CUDA graph).
    pub(super) fn compute(&mut self, inp: &StepInputs) -> Vec<StepStats> {
        let models = self.runs.len();
        let cfg = &self.runs[0].cfg;
        let (b, loss_kind, reg) = (cfg.batch, cfg.loss, cfg.reg);
        let tricks_cfg = cfg.tricks;
        let max_level = cfg.max_level;
        let real = self.real_batch(&inp.idx);
        let targets: Vec<Targets> = (0..models)
            .map(|k| {
                let bits = match (&inp.bits, self.gan.d.pa_layers[k]) {
                    (Some(all), Some(_)) => Some(all.narrow(1, k as i64 * max_level, max_level)),
                    _ => None,
                };
                pa::targets(bits.as_ref(), b, self.device)
            })
            .collect();
        // alpha = 0 multiplies by exactly 1: plain targets.
        let targets_d: Vec<Targets> = targets
            .iter()
            .map(|t| loss::smooth(t, reg.label_smoothing))
            .collect();
        let bits = inp.bits.as_ref();
        // A class-conditional run generates each fake with its real's label (single runs).
        let y = self.labels.as_ref().map(|l| l.index_select(0, &inp.idx));
        let y = y.as_ref();
        let fake = self.gan.g.forward_labelled(&inp.z, y, true);

        // D step: reals and fakes in one batch (D has no BN, so this equals two passes).
        let x = Tensor::cat(&[&real, &fake.detach()], 0);
        let bits2 = bits.map(|t| Tensor::cat(&[t, t], 0));
        let y2 = y.map(|t| Tensor::cat(&[t, t], 0));
        let logits = self.gan.d.forward_each(&x, bits2.as_ref(), y2.as_ref(), true);
        let lr: Vec<Tensor> = logits.iter().map(|l| l.narrow(0, 0, b).select(1, 0)).collect();
        let lf: Vec<Tensor> = logits.iter().map(|l| l.narrow(0, b, b).select(1, 0)).collect();
        let d_losses: Vec<Tensor> = (0..models)
            .map(|k| loss::d_loss(loss_kind, &lr[k], &lf[k], &targets_d[k]))
            .collect();
        let eps: Option<Vec<&Tensor>> = inp.eps.as_ref().map(|e| e.iter().collect());
        let penalty = loss::gradient_penalty(
            reg.effective_gp(loss_kind),
            reg.gp_weight,
            &self.gan.d,
            &real,
            &fake,
            loss::Given { bits, labels: y },
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
        // The runs' backward ran on their streams (if any): the update waits for it.
        self.gan.lanes().join();
        if let Some(h) = &self.hist[1] {
            h.add_gradients(&mut grads, &params);
        }
        self.opt_d.update(&grads);
        if let Some(h) = &mut self.hist[1] {
            h.record(&self.opt_d.tensors());
        }

        // G step: only G's gradients are computed (D's weights are not inputs of the backward).
        let logits_g = self.gan.d.forward_each(&fake, bits, y, true);
        let tricks = tricks_cfg;
        let g_losses: Vec<Tensor> = (0..models)
            .map(|k| {
                let adv = loss::g_loss(loss_kind, &logits_g[k].select(1, 0), &targets[k]);
                if tricks.feature_matching == 0.0 {
                    return adv;
                }
                // Single runs only (a stack refuses the techniques): D's features of the
                // same reals and fakes, the reals as the target.
                let d = &self.gan.d;
                let fm = tricks::feature_matching(
                    &d.features(&real, bits, y, tricks.fm_layer, false),
                    &d.features(&fake, bits, y, tricks.fm_layer, false),
                );
                adv * tricks.fm_adversarial + fm * tricks.feature_matching
            })
            .collect();
        let g_params = self.opt_g.tensors();
        let mut grads = Tensor::run_backward(&[&sum(&g_losses)], &g_params, false, false);
        self.gan.lanes().join();
        if let Some(h) = &self.hist[0] {
            h.add_gradients(&mut grads, &g_params);
        }
        self.opt_g.update(&grads);
        if let Some(h) = &mut self.hist[0] {
            h.record(&self.opt_g.tensors());
        }

        (0..models)
            .map(|k| StepStats {
                acc_real: loss::accuracy(&lr[k].detach(), &targets[k].real),
                acc_fake: loss::accuracy(&lf[k].detach(), &targets[k].fake),
                d_loss: d_losses[k].detach(),
                g_loss: g_losses[k].detach(),
            })
            .collect()
    }

    /// One iteration of every run, eager (does not advance `self.iter`).
    pub(super) fn step(&mut self) -> Vec<StepStats> {
        let inputs = self.stage();
        self.compute(&inputs)
    }
}

/// Tensors side by side along axis 1 (one tensor as it is).
fn cat1(ts: &[Tensor]) -> Tensor {
    match ts {
        [one] => one.shallow_clone(),
        _ => Tensor::cat(ts, 1),
    }
}

/// The sum of per-run losses (a single run's loss as it is).
fn sum(ts: &[Tensor]) -> Tensor {
    match ts {
        [one] => one.shallow_clone(),
        _ => Tensor::stack(ts, 0).sum(Kind::Float),
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Tensor};

    use crate::config::{GpKind, LossKind, PaMode, TrainOverrides};
    use crate::train::Trainer;

    /// The device half of an iteration reads only its staged inputs and the tensors of the
    /// networks and optimisers: computed again on the same inputs from the same tensors,
    /// after the host state moved on (iteration count, data order, PA state, the global
    /// random generator), it gives the same losses and weights. That is what lets a CUDA
    /// graph replay it with new inputs.
    #[test]
    fn compute_depends_only_on_its_staged_inputs_and_device_tensors() {
        let _rng = crate::rng::torch_rng_lock();
        tch::set_num_threads(1);
        let o = TrainOverrides {
            pa: Some(PaMode::Input),
            start_level: Some(1),
            max_level: Some(3),
            batch: Some(6),
            loss: Some(LossKind::Hinge),
            gp: Some(GpKind::OneCentred),
            ..TrainOverrides::default()
        };
        let (cfg, set) = crate::train::tiny_setup(&o);
        let mut t = Trainer::ephemeral(cfg, Device::Cpu, &set).expect("trainer");
        t.steps(2).expect("steps");
        let state = |t: &Trainer| -> Vec<(String, Tensor)> {
            let mut v = t.gan.named();
            v.extend(t.opt_g.state("g"));
            v.extend(t.opt_d.state("d"));
            v
        };
        let saved: Vec<Tensor> = state(&t).iter().map(|(_, x)| x.copy()).collect();
        let inputs = t.stage();
        let first = t.compute(&inputs);
        let after_first: Vec<Tensor> = state(&t).iter().map(|(_, x)| x.copy()).collect();
        tch::no_grad(|| {
            for ((_, x), s) in state(&t).iter().zip(&saved) {
                x.shallow_clone().copy_(s);
            }
        });
        // The host moves on: none of this may reach the computation.
        t.iter += 17;
        let iter = t.iter;
        t.runs[0].pa.level_up(iter);
        let _ = t.runs[0].sampler.batch(iter, 6);
        tch::manual_seed(12345);
        let _ = Tensor::rand([100], (tch::Kind::Float, Device::Cpu));
        let second = t.compute(&inputs);
        let same = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap_or(f64::NAN) == 0.0;
        assert!(same(&first[0].d_loss, &second[0].d_loss) && same(&first[0].g_loss, &second[0].g_loss));
        for ((name, x), y) in state(&t).iter().zip(&after_first) {
            assert!(same(x, y), "{name} differs between the two computations");
        }
    }
}
