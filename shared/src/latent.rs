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

#[cfg(test)]
mod tests {
    use super::*;

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
