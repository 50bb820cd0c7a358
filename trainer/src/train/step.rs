//! One training iteration: a D step on reals and detached fakes, then a G step on the same
//! fakes, each against PA's checksum targets.

use tch::{Kind, Tensor};

use super::Trainer;
use super::window::StepStats;
use crate::objective::{loss, pa};
use crate::rng::{self, stream};

impl Trainer {
    fn real_batch(&mut self) -> Tensor {
        let idx = self.sampler.batch(self.iter, self.cfg.batch as usize);
        let idx = Tensor::from_slice(&idx).to_device(self.device);
        self.data.index_select(0, &idx).to_kind(Kind::Float) / 127.5 - 1.0
    }

    /// One iteration (does not advance `self.iter`).
    pub(super) fn step(&mut self) -> StepStats {
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
            self.cfg.reg.effective_gp(self.cfg.loss),
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
}
