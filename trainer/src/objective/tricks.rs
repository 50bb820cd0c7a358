//! Salimans et al. (2016)'s techniques for training GANs, each a term beside the
//! adversarial loss: feature matching (G matches the mean of D's features on real data) and
//! historical averaging (a pull of every parameter towards the mean of its past values).
//! The third, the minibatch standard deviation (D sees a batch's spread; the simpler
//! successor of minibatch discrimination, as in ProGAN), is part of D:
//! `model::layers::minibatch_std`.

use tch::{Kind, Tensor};

/// Feature matching: `||mean_n f(real) - mean_n f(fake)||²` over feature rows `[N, F]`
/// (the real side is a target: no gradient flows into it).
pub fn feature_matching(real: &Tensor, fake: &Tensor) -> Tensor {
    let diff = real.detach().mean_dim(0, false, Kind::Float) - fake.mean_dim(0, false, Kind::Float);
    diff.square().sum(Kind::Float)
}

/// Historical averaging: the running mean of each parameter's past values (after every
/// update), and the penalty `weight * ||θ - θ̄||²` as its gradient `2 weight (θ - θ̄)`.
/// The means live on the parameters' device; they restart at a resume.
#[derive(Debug)]
pub struct HistoricalAverage {
    weight: f64,
    mean: Vec<Tensor>,
    count: u64,
}

impl HistoricalAverage {
    /// Averages of `params` (starting from their current values) with penalty `weight`.
    pub fn new(weight: f64, params: &[&Tensor]) -> Self {
        HistoricalAverage {
            weight,
            mean: params.iter().map(|p| p.detach().copy()).collect(),
            count: 1,
        }
    }

    /// The penalty's value (for tests and logs).
    pub fn penalty(&self, params: &[&Tensor]) -> f64 {
        let total: f64 = params
            .iter()
            .zip(&self.mean)
            .map(|(p, m)| (p.detach() - m).square().sum(Kind::Double).double_value(&[]))
            .sum();
        self.weight * total
    }

    /// Adds the penalty's gradient to `grads` (one per parameter; undefined ones become it).
    pub fn add_gradients(&self, grads: &mut [Tensor], params: &[&Tensor]) {
        for ((g, p), m) in grads.iter_mut().zip(params).zip(&self.mean) {
            let pull = (p.detach() - m) * (2.0 * self.weight);
            *g = if g.defined() { &*g + pull } else { pull };
        }
    }

    /// Folds the parameters' new values into the means (after an update).
    pub fn record(&mut self, params: &[&Tensor]) {
        self.count += 1;
        let step = 1.0 / self.count as f64;
        tch::no_grad(|| {
            for (m, p) in self.mean.iter_mut().zip(params) {
                let _ = m.g_add_(&((p.detach() - &*m) * step));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(v: &[f64], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape).to_kind(Kind::Float)
    }

    fn rows(seed: u64, n: usize, f: usize) -> Vec<f64> {
        let mut r = pagan_shared::rng::SplitMix64::new(seed);
        (0..n * f).map(|_| r.next_f64() * 4.0 - 2.0).collect()
    }

    #[test]
    fn feature_matching_is_the_squared_distance_of_the_means() {
        let (n, f) = (5, 3);
        let (a, b) = (rows(1, n, f), rows(2, 4, f));
        let mean = |x: &[f64], n: usize, j: usize| (0..n).map(|i| x[i * f + j]).sum::<f64>() / n as f64;
        let want: f64 = (0..f).map(|j| (mean(&a, n, j) - mean(&b, 4, j)).powi(2)).sum();
        let fake = t(&b, &[4, f as i64]).set_requires_grad(true);
        let got = feature_matching(&t(&a, &[n as i64, f as i64]), &fake);
        assert!(
            (got.double_value(&[]) - want).abs() < 1e-5 * want.max(1.0),
            "{got} vs {want}"
        );
        // Its gradient w.r.t. each fake row: -2 (mean_real - mean_fake) / n_fake.
        got.backward();
        let g = fake.grad();
        for j in 0..f {
            let want = -2.0 * (mean(&a, n, j) - mean(&b, 4, j)) / 4.0;
            assert!((g.double_value(&[0, j as i64]) - want).abs() < 1e-5);
        }
    }

    #[test]
    fn historical_average_is_the_mean_of_past_values_and_pulls_towards_it() {
        let mut p = Tensor::from_slice(&[1.0f32, -2.0]).to_device(Device::Cpu);
        let mut h = HistoricalAverage::new(0.5, &[&p]);
        let history: [[f64; 2]; 3] = [[1.0, -2.0], [3.0, 0.0], [2.0, 4.0]];
        for v in &history[1..] {
            tch::no_grad(|| {
                p.copy_(&Tensor::from_slice(&[v[0] as f32, v[1] as f32]));
            });
            h.record(&[&p]);
        }
        let mean: [f64; 2] = [2.0, 2.0 / 3.0];
        let now: [f64; 2] = history[2];
        let want: f64 = 0.5 * now.iter().zip(&mean).map(|(x, m)| (x - m).powi(2)).sum::<f64>();
        assert!(
            (h.penalty(&[&p]) - want).abs() < 1e-5,
            "{} vs {want}",
            h.penalty(&[&p])
        );
        let mut grads = vec![Tensor::new()];
        h.add_gradients(&mut grads, &[&p]);
        for j in 0..2 {
            let want = 2.0 * 0.5 * (now[j] - mean[j]);
            assert!((grads[0].double_value(&[j as i64]) - want).abs() < 1e-5);
        }
    }
}
