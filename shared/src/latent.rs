//! The latent prior, reproducible across binaries: `pagan-train sample --seed S` and the
//! server's `seed` draw the same z, so the same seed gives the same images everywhere.

/// Name of the prior recorded in manifests.
pub const PRIOR: &str = "uniform(-1,1)";

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` latents of size `dim`, row-major, uniform in [-1, 1) from SplitMix64 seeded with `seed`.
pub fn uniform(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n * dim)
        .map(|_| {
            // 24 high bits -> exactly representable f32 in [0, 1).
            let u = (splitmix64(&mut s) >> 40) as f32 / (1u64 << 24) as f32;
            2.0 * u - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
