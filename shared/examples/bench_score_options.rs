//! What each scoring option costs on top of FID: the shared policy (`score::score`) timed
//! with FID alone and with each option, on synthetic 2048-d features of scored sets of the
//! sizes given (the reference: 10,000 rows with features). Prints a markdown table.
//! Usage: `bench_score_options [N ...]` (default 1000 10000); env `RESAMPLES` (50).

use std::time::Instant;

use pagan_shared::features::Features;
use pagan_shared::prdc::PrdcConfig;
use pagan_shared::rng::SplitMix64;
use pagan_shared::score::{Reference, ScoreOptions, score};
use pagan_shared::uncertainty::{BootstrapConfig, FidInfinityConfig};
use pagan_shared::{FeatureStats, KidConfig};

const DIM: usize = 2048;
const REFERENCE_N: usize = 10_000;

/// Correlated, non-negative, pool3-like rows: a few shared factors plus noise, so the
/// covariance has a decaying spectrum (eigen-solvers take realistic paths).
fn features(seed: u64, n: usize, shift: f32) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let loadings: Vec<f32> = {
        let mut r = SplitMix64::new(99);
        (0..16 * DIM).map(|_| r.next_f32()).collect()
    };
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let f: Vec<f32> = (0..16).map(|_| rng.next_f32()).collect();
        for j in 0..DIM {
            let common: f32 = (0..16).map(|k| f[k] * loadings[k * DIM + j]).sum();
            out.push((0.1 * common + 0.3 * rng.next_f32() + shift).max(0.0));
        }
    }
    out
}

fn set(rows: Vec<f32>) -> Result<Features, Box<dyn std::error::Error>> {
    let mut stats = FeatureStats::new(DIM)?;
    stats.add_rows(&rows, rows.len() / DIM)?;
    Ok(Features {
        stats,
        rows: Some(rows),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![1000, 10_000]
    } else {
        sizes
    };
    let resamples: usize = std::env::var("RESAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let reference = set(features(1, REFERENCE_N, 0.0))?;
    let g = reference.stats.finalize()?;
    let r = Reference {
        gaussian: &g,
        features: reference.rows.as_deref(),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Scoring options, {DIM}-d synthetic features vs a {REFERENCE_N}-row reference; release, {threads} CPUs; \
         one run each\n"
    );
    println!("| scored n | option | wall s | x FID alone | result |");
    println!("|---|---|---|---|---|");
    for &n in &sizes {
        let x = set(features(2, n, 0.02))?;
        let options: Vec<(String, ScoreOptions)> = vec![
            ("FID alone".into(), ScoreOptions::fid_only()),
            (
                "+ KID (100 subsets of 1000)".into(),
                ScoreOptions {
                    kid: Some(KidConfig::default()),
                    ..ScoreOptions::default()
                },
            ),
            (
                "+ precision/recall/density/coverage".into(),
                ScoreOptions {
                    prdc: Some(PrdcConfig::default()),
                    ..ScoreOptions::default()
                },
            ),
            (
                format!("+ bootstrap ({resamples} resamples)"),
                ScoreOptions {
                    bootstrap: Some(BootstrapConfig {
                        resamples,
                        ..BootstrapConfig::default()
                    }),
                    ..ScoreOptions::default()
                },
            ),
            (
                "+ FID-infinity (8 sizes)".into(),
                ScoreOptions {
                    fid_infinity: Some(FidInfinityConfig::default()),
                    ..ScoreOptions::default()
                },
            ),
        ];
        let mut base = None;
        for (name, opts) in options {
            let t = Instant::now();
            let s = score(&x, r, &opts)?;
            let secs = t.elapsed().as_secs_f64();
            let base_s = *base.get_or_insert(secs);
            let result = if let Some(p) = &s.prdc {
                format!(
                    "P {:.3} R {:.3} D {:.3} C {:.3}",
                    p.precision, p.recall, p.density, p.coverage
                )
            } else if let Some(ci) = &s.fid_interval {
                format!("FID {:.2} [{:.2}, {:.2}]", s.fid, ci.low, ci.high)
            } else if let Some(fi) = &s.fid_infinity {
                format!("FID {:.2}, FID-inf {:.2}", s.fid, fi.fid_infinity)
            } else if let Some(k) = &s.kid {
                format!("KID {:.5}", k.mean)
            } else {
                format!("FID {:.2}", s.fid)
            };
            println!("| {n} | {name} | {secs:.2} | {:.1} | {result} |", secs / base_s);
        }
    }
    Ok(())
}
