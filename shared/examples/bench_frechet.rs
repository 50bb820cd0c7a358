//! Times `frechet_distance` on two `.npz` statistics files (used by bench/frechet.sh).
//!
//! Usage: `bench_frechet A.npz B.npz [REPEATS]`; prints one JSON line with the median
//! wall time in seconds, every repeat's time, the median process CPU time (all threads;
//! Linux `/proc/self/stat`, `null` elsewhere) and the FID value.

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
    let mut cpu_times = Vec::with_capacity(repeats);
    let mut fid = f64::NAN;
    for _ in 0..repeats.max(1) {
        let c0 = cpu_seconds();
        let t0 = Instant::now();
        fid = frechet_distance(&a, &b)?;
        times.push(t0.elapsed().as_secs_f64());
        if let (Some(c0), Some(c1)) = (c0, cpu_seconds()) {
            cpu_times.push(c1 - c0);
        }
    }
    let wall = median(&times);
    let cpu = if cpu_times.len() == times.len() {
        format!("{:.3}", median(&cpu_times))
    } else {
        "null".to_string()
    };
    let times_s: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
    println!(
        "{{\"median_s\": {wall:.6}, \"times_s\": [{}], \"cpu_s\": {cpu}, \"fid\": {fid:.17e}, \"threads\": {}}}",
        times_s.join(", "),
        faer::get_global_parallelism().degree()
    );
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    if s.len().is_multiple_of(2) {
        0.5 * (s[mid - 1] + s[mid])
    } else {
        s[mid]
    }
}

/// User + system CPU seconds of this process (all threads), from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14, 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every mainstream Linux configuration.
    Some(ticks / 100.0)
}
