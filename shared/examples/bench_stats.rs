//! Times feature accumulation (10k x 2048 rows) and KID (10k vs 10k, default config)
//! on synthetic features. Usage: `bench_stats [ROWS] [DIM] [KID_SUBSETS]`.

use std::time::Instant;

use pagan_shared::rng::SplitMix64;
use pagan_shared::{FeatureStats, KidConfig, kid};

fn features(seed: u64, n: usize, d: usize) -> Vec<f32> {
    // Non-negative, pool3-like magnitudes; the distribution does not matter for timing.
    let mut rng = SplitMix64::new(seed);
    (0..n * d).map(|_| (rng.next_f64() * 0.8) as f32).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let n = args.first().copied().unwrap_or(10_000);
    let d = args.get(1).copied().unwrap_or(2048);
    let subsets = args.get(2).copied().unwrap_or(100);
    let x = features(1, n, d);
    let y = features(2, n, d);

    let t0 = Instant::now();
    let mut s = FeatureStats::new(d)?;
    for chunk in x.chunks(100 * d) {
        s.add_rows(chunk, chunk.len() / d)?;
    }
    let t_add = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let g = s.finalize()?;
    let t_fin = t1.elapsed().as_secs_f64();
    println!(
        "FeatureStats {n} x {d}: add_rows {t_add:.2} s, finalize {t_fin:.2} s (trace {:.4})",
        (0..d).map(|i| g.sigma[i * d + i]).sum::<f64>()
    );

    let cfg = KidConfig {
        n_subsets: subsets,
        ..KidConfig::default()
    };
    let t2 = Instant::now();
    let r = kid(&x, &y, d, &cfg)?;
    println!(
        "KID {n} vs {n}, {} subsets of {}: {:.2} s (KID {:.6e} ± {:.2e})",
        cfg.n_subsets,
        r.subset_size,
        t2.elapsed().as_secs_f64(),
        r.mean,
        r.std
    );
    Ok(())
}
