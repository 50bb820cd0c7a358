//! Reports of semi-supervised runs (`pagan-train ssgan`): D's test accuracy vs iteration,
//! one line per run, and a results table (labels, method, accuracy at each evaluation).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{Line, PALETTE, line_chart};
use crate::semi::{self, SemiConfig, SemiLine};

/// One semi-supervised or supervised-only run.
#[derive(Debug)]
pub struct SemiRun {
    /// Folder name.
    pub name: String,
    /// Its config.json.
    pub cfg: SemiConfig,
    /// Its metrics.jsonl: one line per evaluation.
    pub lines: Vec<SemiLine>,
}

/// The run in `dir`, if it is a semi-supervised run.
fn load(dir: &Path) -> Result<Option<SemiRun>> {
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(semi::read_run(dir)?.map(|(cfg, lines)| SemiRun { name, cfg, lines }))
}

/// The semi-supervised runs among `inputs` (each a run folder, or a folder of them);
/// empty when there are none (the inputs are GAN runs).
pub fn collect(inputs: &[PathBuf]) -> Result<Vec<SemiRun>> {
    let mut runs = Vec::new();
    for input in inputs {
        if let Some(r) = load(input)? {
            runs.push(r);
            continue;
        }
        let Ok(entries) = std::fs::read_dir(input) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for d in dirs {
            if let Some(r) = load(&d)? {
                runs.push(r);
            }
        }
    }
    Ok(runs)
}

fn method(cfg: &SemiConfig) -> &'static str {
    if cfg.supervised_only {
        "classifier on the labels alone"
    } else {
        "SGAN"
    }
}

/// Test accuracy vs iteration, one line per run.
pub(super) fn accuracy_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    runs: &[SemiRun],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .map(|(k, r)| Line {
            label: format!("{} ({} labels, {})", r.name, r.cfg.labels, method(&r.cfg)),
            color: PALETTE[k % PALETTE.len()],
            points: r.lines.iter().map(|l| (l.iter as f64, l.test_accuracy)).collect(),
            band: Vec::new(),
            evals: true,
        })
        .collect();
    let x_max = runs.iter().map(|r| r.cfg.iters).max().unwrap_or(1).max(1) as f64;
    let empty = "no evaluations in these runs";
    line_chart(
        &root,
        &lines,
        "test accuracy vs iteration",
        "test accuracy",
        x_max,
        empty,
    )?;
    root.present()
}

/// results.md of semi-supervised runs.
pub(super) fn results_md(runs: &[SemiRun], title: &str) -> String {
    let mut md = format!("# {title}\n\n");
    let _ = writeln!(
        md,
        "{} semi-supervised runs. Test accuracy of D's class head (the classifier's, for the baseline) on the \
         test split at each evaluation.\n",
        runs.len()
    );
    md.push_str(
        "| run | labels | method | iterations | test accuracy at each evaluation | final | minutes |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|\n");
    for r in runs {
        let curve: Vec<String> = r
            .lines
            .iter()
            .map(|l| format!("{}: {:.4}", l.iter, l.test_accuracy))
            .collect();
        let (last, minutes) = r
            .lines
            .last()
            .map_or((String::from("-"), String::from("-")), |l| {
                (
                    format!("**{:.4}**", l.test_accuracy),
                    format!("{:.1}", l.seconds / 60.0),
                )
            });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {last} | {minutes} |",
            r.name,
            r.cfg.labels,
            method(&r.cfg),
            r.lines.last().map_or(0, |l| l.iter),
            curve.join(", ")
        );
    }
    md.push_str("\n![test accuracy vs iteration](accuracy.png) ([svg](accuracy.svg))\n");
    md
}
