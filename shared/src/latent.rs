//! The latent prior, reproducible across binaries: `pagan-train sample --seed S` and the
//! server's `seed` draw the same z, so the same seed gives the same images everywhere.

use crate::rng::SplitMix64;

/// Name of the prior recorded in manifests.
pub const PRIOR: &str = "uniform(-1,1)";

/// `n` latents of size `dim`, row-major, uniform in [-1, 1) from SplitMix64 seeded with `seed`.
pub fn uniform(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n * dim).map(|_| 2.0 * rng.next_f32() - 1.0).collect()
}

/// `steps` latents on the straight line from seed `from`'s latent to seed `to`'s (both
/// `uniform(seed, 1, dim)`), endpoints included: a latent walk.
pub fn walk(from: u64, to: u64, steps: usize, dim: usize) -> Vec<f32> {
    let (a, b) = (uniform(from, 1, dim), uniform(to, 1, dim));
    let last = steps.saturating_sub(1).max(1) as f32;
    (0..steps)
        .flat_map(|k| {
            let t = k as f32 / last;
            a.iter().zip(&b).map(move |(x, y)| (1.0 - t) * x + t * y)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_starts_and_ends_at_its_seeds_latents() {
        let w = walk(3, 9, 5, 16);
        assert_eq!(w.len(), 5 * 16);
        assert_eq!(w[..16], uniform(3, 1, 16)[..]);
        assert_eq!(w[4 * 16..], uniform(9, 1, 16)[..]);
        // The middle step is the midpoint (computed in f64).
        let (a, b) = (uniform(3, 1, 16), uniform(9, 1, 16));
        for i in 0..16 {
            let mid = 0.5 * f64::from(a[i]) + 0.5 * f64::from(b[i]);
            assert!((f64::from(w[2 * 16 + i]) - mid).abs() < 1e-6);
        }
    }

    #[test]
    fn the_first_latents_are_the_published_ones() {
        // An independent Python transcription of SplitMix64 (24 high bits -> [0, 1) ->
        // 2u - 1) gives these for seed 7: every binary draws exactly them.
        let want = [
            -0.22034060955047607f64,
            -0.966423511505127,
            0.8015213012695312,
            0.16586053371429443,
        ];
        let got: Vec<f64> = uniform(7, 1, 4).into_iter().map(f64::from).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn seeded_range_and_moments() {
        let z = uniform(7, 1000, 128);
        assert_eq!(z, uniform(7, 1000, 128));
        assert_ne!(z[..10], uniform(8, 1, 10)[..]);
        assert!(z.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean: f64 = z.iter().map(|&v| v as f64).sum::<f64>() / z.len() as f64;
        let var: f64 = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0 / 3.0).abs() < 0.01, "var {var}");
    }
}
