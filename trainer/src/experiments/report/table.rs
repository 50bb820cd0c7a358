//! The report's Markdown: `results.md` with one row per variant (mean ± std over seeds)
//! and one per run.

use std::fmt::Write as _;

use super::load::{RunData, group};
use crate::config::{GpKind, PaMode, TrainConfig};
use crate::run_dir::RunDir;

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `mean ± std` with `prec` decimals; one value alone; `–` for none.
pub fn fmt_mean_std(v: &[f64], prec: usize) -> String {
    match v.len() {
        0 => "–".into(),
        1 => format!("{:.prec$}", v[0]),
        _ => {
            let (m, s) = mean_std(v);
            format!("{m:.prec$} ± {s:.prec$}")
        }
    }
}

/// How a run differs from the plain paper setup, in a few words.
fn describe(cfg: &TrainConfig) -> String {
    let mut s = match cfg.pa {
        PaMode::Feat => format!("PA feat@{}", cfg.pa_feat_layer),
        p => format!("PA {p}"),
    };
    let _ = write!(s, ", {}", cfg.loss);
    if cfg.reg.gp != GpKind::None {
        let _ = write!(s, ", GP {} ×{}", cfg.reg.gp, cfg.reg.gp_weight);
    }
    if cfg.reg.dropout > 0.0 {
        let _ = write!(s, ", dropout {}@{}", cfg.reg.dropout, cfg.reg.dropout_layer);
    }
    if cfg.reg.label_smoothing > 0.0 {
        let _ = write!(s, ", smoothing {}", cfg.reg.label_smoothing);
    }
    let t = &cfg.tricks;
    if t.feature_matching > 0.0 {
        let _ = write!(
            s,
            ", FM {}@{} + adv ×{}",
            t.feature_matching, t.fm_layer, t.fm_adversarial
        );
    }
    if t.hist_avg_g > 0.0 || t.hist_avg_d > 0.0 {
        let _ = write!(s, ", hist. avg G {} D {}", t.hist_avg_g, t.hist_avg_d);
    }
    if t.minibatch_std {
        s.push_str(", minibatch std");
    }
    if let Some(c) = &cfg.cond {
        let _ = write!(
            s,
            ", conditional G {} D {} ({} classes)",
            c.g,
            c.d,
            c.classes.len()
        );
    }
    s
}

/// Writes results.md.
pub(super) fn results_md(runs: &[RunData], title: &str) -> String {
    let mut md = format!("# {title}\n\n");
    if let Some(c) = runs.first().map(|r| &r.cfg) {
        let reference = c.eval.fid_reference.as_deref().unwrap_or("no reference (no FID)");
        let _ = writeln!(
            md,
            "{} runs of {}. FID: {} generated images vs `{reference}`, resize `{}`, evaluated every {} \
             iterations during training; KID: generated vs as many training images. \
             Across seeds: mean ± sample std.\n",
            runs.len(),
            c.dataset,
            c.eval.samples,
            c.eval.resize_mode.as_str(),
            c.eval.every
        );
    }
    md.push_str("| variant | setup | seeds | iterations | final FID | best FID | final KID |\n");
    md.push_str("|---|---|---|---|---|---|---|\n");
    for (v, idx) in group(runs) {
        let rs: Vec<&RunData> = idx.iter().map(|&i| &runs[i]).collect();
        let col = |f: &dyn Fn(&RunData) -> Option<f64>| rs.iter().filter_map(|r| f(r)).collect::<Vec<_>>();
        let iters: Vec<u64> = rs.iter().map(|r| r.last_iter()).collect();
        let (lo, hi) = (iters.iter().min(), iters.iter().max());
        let iters = match (lo, hi) {
            (Some(a), Some(b)) if a != b => format!("{a}–{b}"),
            (Some(a), _) => a.to_string(),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {v} | {} | {} | {iters} | {} | {} | {} |",
            describe(&rs[0].cfg),
            rs.len(),
            fmt_mean_std(&col(&|r: &RunData| r.final_fid().map(|x| x.1)), 2),
            fmt_mean_std(&col(&|r: &RunData| r.best_fid().map(|x| x.1)), 2),
            fmt_mean_std(&col(&|r: &RunData| r.final_kid().map(|x| x.0)), 4),
        );
    }
    md.push_str("\n## Runs\n\n| run | seed | iterations | final FID (at) | best FID (at) | final KID | PA level | train time |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in runs {
        let at = |x: Option<(u64, f64)>| x.map_or("–".into(), |(i, f)| format!("{f:.2} ({i})"));
        let kid = r
            .final_kid()
            .map_or("–".into(), |(k, s)| format!("{k:.4} ± {s:.4}"));
        let level = r.metrics.last().map_or("–".into(), |m| m.pa_level.to_string());
        let secs = RunDir::at(&r.dir)
            .latest_checkpoint()
            .ok()
            .flatten()
            .map_or("–".into(), |m| format!("{:.0} s", m.train_seconds));
        let _ = writeln!(
            md,
            "| {} | {} | {} / {} | {} | {} | {kid} | {level} | {secs} |",
            r.name,
            r.cfg.seed,
            r.last_iter(),
            r.cfg.iters,
            at(r.final_fid()),
            at(r.best_fid()),
        );
    }
    md.push_str(
        "\n## Plots\n\nFID and KID vs iteration (one line per variant: the mean over seeds, band = min–max; \
         lower panel: PA level of each run):\n\n\
         ![FID vs iteration](fid.png) ([svg](fid.svg))\n\n![KID vs iteration](kid.png) ([svg](kid.svg))\n\n\
         Losses:\n\n![D and G loss](losses.png) ([svg](losses.svg))\n\n\
         Final sample grids (fixed z):\n\n![samples](samples.png)\n",
    );
    md
}
