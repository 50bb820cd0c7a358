//! Spectral normalisation (Miyato et al. 2018), our own: one power iteration per training
//! forward, the left singular vector `u` kept as a non-trainable variable so checkpoints
//! carry it, and no update in eval mode. A stacked weight holds `models` weights along
//! axis 0 and normalises each by its own sigma, one batched power iteration for all.

use tch::{Kind, Tensor, nn};

use crate::ops::{StackKernels, block};

const EPS: f64 = 1e-12;

/// A weight whose largest singular value is divided out at every use.
#[derive(Debug)]
pub struct SpectralWeight {
    /// The raw weight (trainable), any shape with the output dimension first.
    pub weight: Tensor,
    /// Running estimate of the left singular vector, shape [out] (per model, stacked).
    pub u: Tensor,
    /// Weights stacked along axis 0 (1: a plain weight).
    pub models: i64,
    /// How a stack normalises: batched, or each model's block with the plain code.
    pub kernels: StackKernels,
}

fn normalize(x: &Tensor) -> Tensor {
    let n = x.norm().clamp_min(EPS);
    x / n
}

impl SpectralWeight {
    /// Registers `u` beside an existing weight under `p` (named `u`): a random unit vector.
    pub fn new(p: &nn::Path, weight: Tensor) -> Self {
        Self::stacked(p, weight, 1)
    }

    /// `models` weights stacked along axis 0, each with its own `u` (for `models > 1`, `u`
    /// starts as zeros: `model::stack` copies each model's own vector in).
    pub fn stacked(p: &nn::Path, weight: Tensor, models: i64) -> Self {
        let out = weight.size()[0];
        if models > 1 {
            let u = p.zeros_no_train("u", &[out]);
            return Self {
                weight,
                u,
                models,
                kernels: StackKernels::PerModel,
            };
        }
        // A buffer, not a parameter: zeros_no_train keeps it out of the optimiser.
        let u = p.zeros_no_train("u", &[out]);
        tch::no_grad(|| {
            let r = Tensor::randn([out], (weight.kind(), weight.device()));
            let mut u2 = u.shallow_clone();
            u2.copy_(&normalize(&r));
        });
        Self {
            weight,
            u,
            models: 1,
            kernels: StackKernels::PerModel,
        }
    }

    /// The normalised weight `W / sigma(W)`, where `W` is the raw weight times `mask` if given.
    /// In training one power-iteration step refines `u` (stored); in eval `u` is read only.
    pub fn normalized(&self, train: bool, mask: Option<&Tensor>) -> Tensor {
        let w = match mask {
            Some(m) => &self.weight * m,
            None => self.weight.shallow_clone(),
        };
        match (self.models, self.kernels) {
            (1, _) => normalized_one(&w, &self.u, train),
            (_, StackKernels::Grouped) => self.normalized_stacked(train, w),
            (m, StackKernels::PerModel | StackKernels::Streams) => {
                let parts: Vec<Tensor> = (0..m)
                    .map(|k| {
                        let (wk, uk) = (block(&w, 0, k, m), block(&self.u, 0, k, m));
                        normalized_one(&wk, &uk, train)
                    })
                    .collect();
                Tensor::cat(&parts, 0)
            }
        }
    }
}

/// `w / sigma(w)` with one power-iteration step refining `u` in place when `train`.
pub(crate) fn normalized_one(w: &Tensor, u_store: &Tensor, train: bool) -> Tensor {
    let out = w.size()[0];
    let w2 = w.view([out, -1]);
    let (u, v) = tch::no_grad(|| {
        let v = normalize(&w2.tr().mv(u_store));
        if train {
            let u = normalize(&w2.mv(&v));
            let mut stored = u_store.shallow_clone();
            stored.copy_(&u);
            (u, v)
        } else {
            (u_store.copy(), v)
        }
    });
    // Gradient flows through W in sigma = u^T W v (u, v held constant), as in the paper.
    let sigma = u.dot(&w2.mv(&v));
    w / sigma
}

impl SpectralWeight {
    /// Each model's block of `w` divided by its own sigma; one batched power iteration.
    fn normalized_stacked(&self, train: bool, w: Tensor) -> Tensor {
        let k = self.models;
        let out = w.size()[0] / k;
        let w3 = w.view([k, out, -1]);
        let norm_rows = |x: Tensor| {
            let n = x
                .square()
                .sum_dim_intlist(1, true, Kind::Float)
                .sqrt()
                .clamp_min(EPS);
            x / n
        };
        let (u, v) = tch::no_grad(|| {
            let u0 = self.u.view([k, out, 1]);
            let v = norm_rows(w3.transpose(1, 2).bmm(&u0));
            if train {
                let u = norm_rows(w3.bmm(&v));
                let mut stored = self.u.shallow_clone();
                stored.copy_(&u.view([k * out]));
                (u, v)
            } else {
                (u0.copy(), v)
            }
        });
        // Per model: sigma = u^T W v, the gradient flowing through W only.
        let sigma = u.transpose(1, 2).bmm(&w3.bmm(&v));
        (w3 / sigma).view_as(&w)
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
