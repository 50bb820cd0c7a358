//! Adam written out: its moments and step counter are ours to checkpoint (tch's optimiser
//! hides them), G's counter can be reset at a level-up, and an update is graph-safe and
//! cheap. The parameters become views of one flat buffer, so an update is a handful of
//! kernels over that buffer instead of a handful per parameter; the factors that depend on
//! the step count are device scalars written before the step ([`Adam::advance`]), so the
//! update itself ([`Adam::update`]) has no host values baked in and can be replayed.

use tch::{Kind, Tensor};

use crate::config::AdamConfig;

/// Adam over a fixed list of parameters.
#[derive(Debug)]
pub struct Adam {
    /// Settings.
    pub cfg: AdamConfig,
    /// (name, parameter) pairs, in a stable order; each a view of the flat buffer.
    pub params: Vec<(String, Tensor)>,
    /// Every parameter, concatenated.
    flat: Tensor,
    /// First moments, flat.
    m: Tensor,
    /// Second moments, flat.
    v: Tensor,
    /// Steps taken (for bias correction).
    pub step: u64,
    /// `lr / (1 - beta1^t)` for the coming update, on the device.
    lr_t: Tensor,
    /// `sqrt(1 - beta2^t)` for the coming update, on the device.
    bc2_sqrt: Tensor,
}

impl Adam {
    /// Zero moments for the given parameters, which from now on live in one flat buffer.
    pub fn new(cfg: AdamConfig, params: Vec<(String, Tensor)>) -> Self {
        let (kind, device) = params
            .first()
            .map_or((Kind::Float, tch::Device::Cpu), |(_, p)| (p.kind(), p.device()));
        let flat = if params.is_empty() {
            Tensor::zeros([0], (kind, device))
        } else {
            let parts: Vec<Tensor> = params.iter().map(|(_, p)| p.detach().reshape([-1])).collect();
            Tensor::cat(&parts, 0)
        };
        tch::no_grad(|| {
            let mut off = 0;
            for (_, p) in &params {
                let n = p.numel() as i64;
                let mut p = p.shallow_clone();
                p.set_data(&flat.narrow(0, off, n).view(p.size().as_slice()));
                off += n;
            }
        });
        let scalar = || Tensor::zeros([], (kind, device));
        Self {
            cfg,
            m: flat.zeros_like(),
            v: flat.zeros_like(),
            flat,
            params,
            step: 0,
            lr_t: scalar(),
            bc2_sqrt: scalar(),
        }
    }

    /// The parameter tensors, for `Tensor::run_backward`.
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.params.iter().map(|(_, p)| p).collect()
    }

    /// Counts the coming update and writes its bias-correction factors to the device
    /// (before the step: the update reads them there).
    pub fn advance(&mut self) {
        self.step += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        let _ = self.lr_t.fill_(c.lr / bc1);
        let _ = self.bc2_sqrt.fill_(bc2.sqrt());
    }

    /// One update with the given gradients (same order as the parameters), using the
    /// factors [`Self::advance`] wrote. Device work only.
    pub fn update(&mut self, grads: &[Tensor]) {
        let c = self.cfg;
        tch::no_grad(|| {
            let parts: Vec<Tensor> = grads
                .iter()
                .zip(&self.params)
                .map(|(g, (_, p))| {
                    // A parameter the loss does not reach gets no gradient tensor.
                    if g.defined() {
                        g.reshape([-1])
                    } else {
                        p.zeros_like().reshape([-1])
                    }
                })
                .collect();
            let g = Tensor::cat(&parts, 0);
            let _ = self.m.lerp_(&g, 1.0 - c.beta1);
            self.v *= c.beta2;
            let _ = self.v.addcmul_(&(&g * (1.0 - c.beta2)), &g);
            let denom = self.v.sqrt() / &self.bc2_sqrt + c.eps;
            let upd = self.m.divide(&denom) * &self.lr_t;
            self.flat -= upd;
        });
    }

    /// [`Self::advance`] then [`Self::update`]: one eager step.
    pub fn apply(&mut self, grads: &[Tensor]) {
        self.advance();
        self.update(grads);
    }

    /// Named state tensors for a checkpoint: `{prefix}.m.{name}` and `{prefix}.v.{name}`
    /// (views of the flat moments: restoring into them restores the optimiser).
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let mut off = 0;
        for (name, p) in &self.params {
            let n = p.numel() as i64;
            let shape = p.size();
            out.push((
                format!("{prefix}.m.{name}"),
                self.m.narrow(0, off, n).view(shape.as_slice()),
            ));
            out.push((
                format!("{prefix}.v.{name}"),
                self.v.narrow(0, off, n).view(shape.as_slice()),
            ));
            off += n;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Reference: the Adam formula in f64 scalars, step by step.
    #[test]
    fn matches_scalar_adam_in_f64() {
        let cfg = AdamConfig {
            lr: 0.01,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        };
        let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let mut adam = Adam::new(cfg, vec![("p".into(), p.shallow_clone())]);
        let (mut x, mut m, mut v) = ([1.0f64, -2.0], [0.0; 2], [0.0; 2]);
        for t in 1..=5 {
            let g = [x[0] * 3.0, x[1] * x[1]];
            adam.apply(&[Tensor::from_slice(&g)]);
            for i in 0..2 {
                m[i] = 0.5 * m[i] + 0.5 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                let mh = m[i] / (1.0 - 0.5f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                x[i] -= 0.01 * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got = Vec::<f64>::try_from(p.to_kind(Kind::Double).to_device(Device::Cpu)).unwrap_or_default();
        for i in 0..2 {
            assert!((got[i] - x[i]).abs() < 1e-9, "{got:?} vs {x:?}");
        }
    }
}
