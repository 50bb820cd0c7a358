//! Spectral normalisation (Miyato et al. 2018), our own: one power iteration per training
//! forward, the left singular vector `u` kept as a non-trainable variable so checkpoints
//! carry it, and no update in eval mode.

use tch::{Kind, Tensor, nn};

const EPS: f64 = 1e-12;

/// A weight whose largest singular value is divided out at every use.
#[derive(Debug)]
pub struct SpectralWeight {
    /// The raw weight (trainable), any shape with the output dimension first.
    pub weight: Tensor,
    /// Running estimate of the left singular vector, shape [out].
    pub u: Tensor,
}

fn normalize(x: &Tensor) -> Tensor {
    let n = x.norm().clamp_min(EPS);
    x / n
}

impl SpectralWeight {
    /// Registers `u` beside an existing weight under `p` (named `u`): a random unit vector.
    pub fn new(p: &nn::Path, weight: Tensor) -> Self {
        let out = weight.size()[0];
        // A buffer, not a parameter: zeros_no_train keeps it out of the optimiser.
        let u = p.zeros_no_train("u", &[out]);
        tch::no_grad(|| {
            let r = Tensor::randn([out], (weight.kind(), weight.device()));
            let mut u2 = u.shallow_clone();
            u2.copy_(&normalize(&r));
        });
        Self { weight, u }
    }

    /// The normalised weight `W / sigma(W)`, where `W` is the raw weight times `mask` if given.
    /// In training one power-iteration step refines `u` (stored); in eval `u` is read only.
    pub fn normalized(&self, train: bool, mask: Option<&Tensor>) -> Tensor {
        let w = match mask {
            Some(m) => &self.weight * m,
            None => self.weight.shallow_clone(),
        };
        let out = w.size()[0];
        let w2 = w.view([out, -1]);
        let (u, v) = tch::no_grad(|| {
            let v = normalize(&w2.tr().mv(&self.u));
            if train {
                let u = normalize(&w2.mv(&v));
                let mut stored = self.u.shallow_clone();
                stored.copy_(&u);
                (u, v)
            } else {
                (self.u.copy(), v)
            }
        });
        // Gradient flows through W in sigma = u^T W v (u, v held constant), as in the paper.
        let sigma = u.dot(&w2.mv(&v));
        w / sigma
    }

    /// The current estimate of the largest singular value (no update).
    pub fn sigma_estimate(&self, mask: Option<&Tensor>) -> f64 {
        tch::no_grad(|| {
            let w = match mask {
                Some(m) => &self.weight * m,
                None => self.weight.shallow_clone(),
            };
            let w2 = w.view([w.size()[0], -1]);
            let v = normalize(&w2.tr().mv(&self.u));
            self.u.dot(&w2.mv(&v)).double_value(&[])
        })
    }
}

/// Largest singular value by SVD, the reference for tests and diagnostics.
pub fn sigma_svd(w: &Tensor) -> f64 {
    tch::no_grad(|| {
        let w2 = w.view([w.size()[0], -1]).to_kind(Kind::Double);
        let (_, s, _) = w2.svd(true, false);
        s.max().double_value(&[])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn::VarStore};

    #[test]
    fn power_iteration_converges_to_svd_sigma_and_normalised_norm_is_one() {
        let _rng = crate::rng::torch_rng_lock();
        tch::manual_seed(3);
        let vs = VarStore::new(Device::Cpu);
        let p = vs.root();
        let w = p.var(
            "w",
            &[64, 32, 3, 3],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.05,
            },
        );
        let sn = SpectralWeight::new(&p, w);
        for _ in 0..200 {
            let _ = sn.normalized(true, None);
        }
        let svd = sigma_svd(&sn.weight);
        let est = sn.sigma_estimate(None);
        assert!((est - svd).abs() / svd < 0.01, "estimate {est} vs svd {svd}");
        let wn = sn.normalized(false, None);
        let norm = sigma_svd(&wn);
        assert!((norm - 1.0).abs() < 0.01, "normalised spectral norm {norm}");
    }

    #[test]
    fn eval_does_not_update_u() {
        let _rng = crate::rng::torch_rng_lock();
        tch::manual_seed(4);
        let vs = VarStore::new(Device::Cpu);
        let p = vs.root();
        let w = p.var(
            "w",
            &[8, 5],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        let sn = SpectralWeight::new(&p, w);
        let before = sn.u.copy();
        let _ = sn.normalized(false, None);
        assert_eq!(f64::try_from((&sn.u - &before).abs().max()).unwrap_or(1.0), 0.0);
        let _ = sn.normalized(true, None);
        assert!(f64::try_from((&sn.u - &before).abs().max()).unwrap_or(0.0) > 0.0);
    }
}
