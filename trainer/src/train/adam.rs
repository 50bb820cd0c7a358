//! Adam written out: its moments and step counter are ours to checkpoint (tch's optimiser
//! hides them), G's counter can be reset at a level-up, and an update is graph-safe and
//! cheap. An update is libtorch's fused Adam kernel over all parameters: one pass over the
//! memory on a CPU (the operation-by-operation form took ~100 ms of a ~1.1 s paper-width
//! step), one multi-tensor launch on CUDA. The step count it reads is a device tensor
//! written before the step ([`Adam::advance`]), so the update itself ([`Adam::update`]) has
//! no host values baked in and can be replayed.

use tch::{Kind, Tensor};

use crate::config::AdamConfig;
use crate::native::{AdamTensors, fused_adam};

/// Adam over a fixed list of parameters.
#[derive(Debug)]
pub struct Adam {
    /// Settings.
    pub cfg: AdamConfig,
    /// (name, parameter) pairs, in a stable order.
    pub params: Vec<(String, Tensor)>,
    /// Each parameter's first moments.
    m: Vec<Tensor>,
    /// Each parameter's second moments.
    v: Vec<Tensor>,
    /// Steps taken (for bias correction).
    pub step: u64,
    /// The coming update's step count, float32 on the device: one tensor, written by one
    /// fill, and a view of it per parameter (the fused kernel takes a count per parameter).
    steps: Tensor,
    /// Views of `steps`, one per parameter.
    step_views: Vec<Tensor>,
}

impl Adam {
    /// Zero moments for the given parameters.
    pub fn new(cfg: AdamConfig, params: Vec<(String, Tensor)>) -> Self {
        let device = params.first().map_or(tch::Device::Cpu, |(_, p)| p.device());
        let zeros = || -> Vec<Tensor> { params.iter().map(|(_, p)| p.detach().zeros_like()).collect() };
        let steps = Tensor::zeros([params.len() as i64], (Kind::Float, device));
        Self {
            cfg,
            m: zeros(),
            v: zeros(),
            step_views: (0..params.len() as i64).map(|i| steps.select(0, i)).collect(),
            steps,
            params,
            step: 0,
        }
    }

    /// The parameter tensors, for `Tensor::run_backward`.
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.params.iter().map(|(_, p)| p).collect()
    }

    /// Counts the coming update and writes its count to the device (before the step: the
    /// update reads it there).
    pub fn advance(&mut self) {
        self.step += 1;
        let _ = self.steps.fill_(self.step as f64);
    }

    /// One update with the given gradients (same order as the parameters), using the count
    /// [`Self::advance`] wrote. Device work only.
    pub fn update(&mut self, grads: &[Tensor]) {
        let c = self.cfg;
        tch::no_grad(|| {
            let grads: Vec<Tensor> = grads
                .iter()
                .zip(&self.params)
                .map(|(g, (_, p))| {
                    // A parameter the loss does not reach gets no gradient tensor. The
                    // kernel reads memory in order: gradients must be contiguous.
                    if g.defined() {
                        g.contiguous()
                    } else {
                        p.zeros_like()
                    }
                })
                .collect();
            let tensors = AdamTensors {
                params: &self.tensors(),
                grads: &grads,
                exp_avgs: &self.m,
                exp_avg_sqs: &self.v,
                steps: &self.step_views,
            };
            // Lists built here from our own parameters: an error is a bug, not bad input.
            if let Err(e) = fused_adam(&tensors, c.lr, c.beta1, c.beta2, c.eps) {
                panic!("Adam update: {e}");
            }
        });
    }

    /// [`Self::advance`] then [`Self::update`]: one eager step.
    pub fn apply(&mut self, grads: &[Tensor]) {
        self.advance();
        self.update(grads);
    }

    /// Named state tensors for a checkpoint: `{prefix}.m.{name}` and `{prefix}.v.{name}`
    /// (the moments themselves: restoring into them restores the optimiser).
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

    /// Float32 parameters of several shapes against the formula in f64, with a gradient
    /// that is a transposed view (the kernel reads memory in order) and one missing.
    #[test]
    fn float_parameters_follow_the_f64_formula_with_odd_gradients() {
        let _rng = crate::rng::torch_rng_lock();
        let cfg = AdamConfig {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        };
        let opts = (Kind::Float, Device::Cpu);
        let init = [
            Tensor::randn([3, 4], opts),
            Tensor::randn([5], opts),
            Tensor::randn([2, 2], opts),
        ];
        let params: Vec<(String, Tensor)> = init
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("p{i}"), t.copy().set_requires_grad(true)))
            .collect();
        let mut adam = Adam::new(
            cfg,
            params
                .iter()
                .map(|(n, p)| (n.clone(), p.shallow_clone()))
                .collect(),
        );
        let f64s =
            |t: &Tensor| Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap_or_default();
        let mut x: Vec<Vec<f64>> = init.iter().map(f64s).collect();
        let mut m: Vec<Vec<f64>> = x.iter().map(|v| vec![0.0; v.len()]).collect();
        let mut v = m.clone();
        for t in 1..=20 {
            let g0 = Tensor::randn([4, 3], opts).tr();
            let g1 = Tensor::randn([5], opts) * 10.0;
            let grads = [g0.shallow_clone(), g1.shallow_clone(), Tensor::new()];
            assert!(!g0.is_contiguous() && !grads[2].defined());
            adam.apply(&grads);
            let g = [f64s(&g0), f64s(&g1), vec![0.0; 4]];
            for i in 0..3 {
                for j in 0..x[i].len() {
                    m[i][j] = 0.5 * m[i][j] + 0.5 * g[i][j];
                    v[i][j] = 0.999 * v[i][j] + 0.001 * g[i][j] * g[i][j];
                    let mh = m[i][j] / (1.0 - 0.5f64.powi(t));
                    let vh = v[i][j] / (1.0 - 0.999f64.powi(t));
                    x[i][j] -= 2e-4 * mh / (vh.sqrt() + 1e-8);
                }
            }
        }
        let mut worst = 0.0f64;
        for (i, (_, p)) in params.iter().enumerate() {
            for (a, b) in f64s(p).iter().zip(&x[i]) {
                // Float32 rounding of values ~1 over 20 updates of ~2e-4 each.
                worst = worst.max((a - b).abs());
            }
        }
        assert!(worst < 1e-6, "max |float32 Adam - f64 formula| = {worst:e}");
        // The parameter without gradients did not move.
        assert_eq!(f64s(&params[2].1), f64s(&init[2]));
        assert_eq!(adam.state("adam").len(), 6);
    }

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
