//! Adam written out so its moments and step counter are ours to checkpoint (tch's optimiser
//! hides them), and so G's step counter can be reset at a level-up.

use tch::Tensor;

use crate::config::AdamConfig;

/// Adam over a fixed list of parameters.
#[derive(Debug)]
pub struct Adam {
    /// Settings.
    pub cfg: AdamConfig,
    /// (name, parameter) pairs, in a stable order.
    pub params: Vec<(String, Tensor)>,
    /// First moments, one per parameter.
    pub m: Vec<Tensor>,
    /// Second moments, one per parameter.
    pub v: Vec<Tensor>,
    /// Steps taken (for bias correction).
    pub step: u64,
}

impl Adam {
    /// Zero moments for the given parameters.
    pub fn new(cfg: AdamConfig, params: Vec<(String, Tensor)>) -> Self {
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            cfg,
            params,
            m,
            v,
            step: 0,
        }
    }

    /// The parameter tensors, for `Tensor::run_backward`.
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.params.iter().map(|(_, p)| p).collect()
    }

    /// One update with the given gradients (same order as the parameters).
    pub fn apply(&mut self, grads: &[Tensor]) {
        self.step += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        tch::no_grad(|| {
            for (((_, p), (m, v)), g) in self
                .params
                .iter()
                .zip(self.m.iter_mut().zip(self.v.iter_mut()))
                .zip(grads)
            {
                let _ = m.lerp_(g, 1.0 - c.beta1);
                *v *= c.beta2;
                let _ = v.addcmul_(&(g * (1.0 - c.beta2)), g);
                let denom = v.sqrt() / bc2.sqrt() + c.eps;
                let upd = m.divide(&denom) * (c.lr / bc1);
                let mut p = p.shallow_clone();
                p -= upd;
            }
        });
    }

    /// Named state tensors for a checkpoint: `{prefix}.m.{name}` and `{prefix}.v.{name}`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (((name, _), m), v) in self.params.iter().zip(&self.m).zip(&self.v) {
            out.push((format!("{prefix}.m.{name}"), m.shallow_clone()));
            out.push((format!("{prefix}.v.{name}"), v.shallow_clone()));
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
