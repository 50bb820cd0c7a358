//! Times `frechet_distance` on two `.npz` statistics files (used by bench/frechet.sh).
//!
//! Usage: `bench_frechet A.npz B.npz [REPEATS]`; prints one JSON line with the median
//! time in seconds, every repeat's time and the FID value.

use std::path::Path;
use std::time::Instant;

use pagan_shared::{frechet_distance, read_stats_npz};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: bench_frechet A.npz B.npz [REPEATS]".into());
    }
    let repeats: usize = match args.get(3) {
        Some(r) => r.parse()?,
        None => 5,
    };
    let a = read_stats_npz(Path::new(&args[1]))?.gaussian;
    let b = read_stats_npz(Path::new(&args[2]))?.gaussian;
    let mut times = Vec::with_capacity(repeats);
    let mut fid = f64::NAN;
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        fid = frechet_distance(&a, &b)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 0 {
        0.5 * (sorted[mid - 1] + sorted[mid])
    } else {
        sorted[mid]
    };
    let times_s: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
    println!(
        "{{\"median_s\": {median:.6}, \"times_s\": [{}], \"fid\": {fid:.17e}, \"threads\": {}}}",
        times_s.join(", "),
        faer::get_global_parallelism().degree()
    );
    Ok(())
}
