//! Progressive augmentation (PAPER.md): the bit vector, its checksum labels (PA's label
//! rule: `(sample_bit + sum(s)) mod 2`, see [`targets`]), and the fade-in of the newest
//! bit. Lives in D only; G never sees it.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// The PA level and its history; saved in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaState {
    /// Bits in use now (L).
    pub level: i64,
    /// Pre-allocated bit channels (cap on L).
    pub max_level: i64,
    /// Level at iteration 0 (those bits are fully on, no fade-in).
    pub start_level: i64,
    /// Iteration of the last level-up (t_st).
    pub last_level_up: u64,
    /// Fade-in length t_r.
    pub fade_iters: u64,
    /// (iteration, new level) for every level-up.
    pub history: Vec<(u64, i64)>,
}

impl PaState {
    /// State at iteration 0.
    pub fn new(start_level: i64, max_level: i64, fade_iters: u64) -> Self {
        Self {
            level: start_level.clamp(0, max_level),
            max_level,
            start_level: start_level.clamp(0, max_level),
            last_level_up: 0,
            fade_iters,
            history: Vec::new(),
        }
    }

    /// P(newest bit = 1) at iteration `t`: `min(0.5 (t - t_st) / t_r, 0.5)` for a bit added by a
    /// level-up; bits present from the start are Bernoulli(0.5).
    pub fn new_bit_prob(&self, t: u64) -> f64 {
        if self.level == 0 {
            return 0.0;
        }
        if self.level <= self.start_level || self.fade_iters == 0 {
            return 0.5;
        }
        let dt = t.saturating_sub(self.last_level_up) as f64;
        (0.5 * dt / self.fade_iters as f64).min(0.5)
    }

    /// Per-channel P(bit = 1) at iteration `t`, length `max_level` (0 for inactive bits).
    pub fn probs(&self, t: u64) -> Vec<f64> {
        (0..self.max_level)
            .map(|i| {
                if i + 1 < self.level {
                    0.5
                } else if i + 1 == self.level {
                    self.new_bit_prob(t)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Raises the level at iteration `t`; false if already at the cap.
    pub fn level_up(&mut self, t: u64) -> bool {
        if self.level >= self.max_level {
            return false;
        }
        self.level += 1;
        self.last_level_up = t;
        self.history.push((t, self.level));
        true
    }

    /// Samples bits [n, max_level] as 0/1 floats from torch's RNG on `device`.
    pub fn sample_bits(&self, n: i64, t: u64, device: Device) -> Tensor {
        let probs: Vec<f32> = self.probs(t).iter().map(|&p| p as f32).collect();
        let p = crate::device::upload(&Tensor::from_slice(&probs), device).view([1, self.max_level]);
        Tensor::rand([n, self.max_level], (Kind::Float, device))
            .lt_tensor(&p)
            .to_kind(Kind::Float)
    }
}

/// Class of a sample in PA's checksum task: `(sample_bit + sum(s)) mod 2`, 0 = TRUE, 1 = FAKE.
pub fn checksum_class(sample_bit: u8, bits: &[u8]) -> u8 {
    let s: u32 = bits.iter().map(|&b| b as u32).sum();
    ((sample_bit as u32 + s) % 2) as u8
}

/// BCE targets (probability of TRUE) for D and G given the bits [n, L] of each pair.
#[derive(Debug)]
pub struct Targets {
    /// D's target for the real image of each pair.
    pub real: Tensor,
    /// D's target for the fake image of each pair.
    pub fake: Tensor,
    /// G's target for its fake: D's fake label flipped.
    pub generator: Tensor,
}

/// Targets from bits; without bits it is plain NS-GAN (real 1, fake 0, G 1).
pub fn targets(bits: Option<&Tensor>, n: i64, device: Device) -> Targets {
    let parity = match bits {
        Some(b) => b.sum_dim_intlist(1, false, Kind::Float).remainder(2.0),
        None => Tensor::zeros([n], (Kind::Float, device)),
    };
    // Real: class = parity, TRUE iff parity 0. Fake: class = (1 + parity) mod 2, TRUE iff parity 1.
    let real = 1.0 - &parity;
    let generator = 1.0 - &parity;
    Targets {
        real,
        fake: parity,
        generator,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_label_table() {
        // PAPER.md: real = bit 0, fake = bit 1; class (bit + sum s) mod 2, 0 TRUE, 1 FAKE.
        let table: [(u8, &[u8], u8); 8] = [
            (0, &[], 0),
            (1, &[], 1),
            (0, &[1], 1),
            (1, &[1], 0),
            (0, &[1, 1], 0),
            (1, &[1, 0], 0),
            (0, &[0, 1, 1], 0),
            (1, &[1, 1, 1], 0),
        ];
        for (bit, s, class) in table {
            assert_eq!(checksum_class(bit, s), class, "bit {bit} s {s:?}");
        }
        // The tensor targets agree with the table: target = P(TRUE) = 1 - class.
        let bits = Tensor::from_slice(&[0f32, 0., 1., 0., 1., 1.]).view([3, 2]);
        let t = targets(Some(&bits), 3, Device::Cpu);
        let v = |x: &Tensor| Vec::<f32>::try_from(x).unwrap_or_default();
        assert_eq!(v(&t.real), vec![1., 0., 1.]);
        assert_eq!(v(&t.fake), vec![0., 1., 0.]);
        assert_eq!(v(&t.generator), vec![1., 0., 1.]);
    }

    #[test]
    fn fade_in_follows_the_formula() {
        let mut s = PaState::new(0, 3, 5000);
        assert_eq!(s.probs(10), vec![0.0, 0.0, 0.0]);
        assert!(s.level_up(1000));
        assert_eq!(s.new_bit_prob(1000), 0.0);
        assert!((s.new_bit_prob(2000) - 0.1).abs() < 1e-12);
        assert_eq!(s.new_bit_prob(6000), 0.5);
        assert_eq!(s.new_bit_prob(60000), 0.5);
        s.level_up(7000);
        let p = s.probs(8000);
        assert_eq!(p[0], 0.5);
        assert!((p[1] - 0.1).abs() < 1e-12);
        assert_eq!(p[2], 0.0);
        // Start-level bits are fully on from iteration 0.
        assert_eq!(PaState::new(2, 4, 5000).probs(0), vec![0.5, 0.5, 0.0, 0.0]);
        let mut capped = PaState::new(1, 1, 10);
        assert!(!capped.level_up(5));
    }

    #[test]
    fn sampled_bits_match_probabilities() {
        let _rng = crate::rng::torch_rng_lock();
        tch::manual_seed(0);
        let mut s = PaState::new(1, 3, 100);
        s.level_up(0);
        let b = s.sample_bits(20000, 50, Device::Cpu);
        let means = Vec::<f32>::try_from(b.mean_dim(0, false, Kind::Float)).unwrap_or_default();
        assert!((means[0] - 0.5).abs() < 0.02, "{means:?}");
        assert!((means[1] - 0.25).abs() < 0.02, "{means:?}");
        assert_eq!(means[2], 0.0);
    }
}
