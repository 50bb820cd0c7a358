//! Loading what a report shows: run folders (config, metrics, checkpoint meta), sweep
//! folders through their plan, and the grouping of runs into variants.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::TrainConfig;
use crate::experiments::sweep::{PLAN_FILE, Plan};
use crate::run_dir::{MetricsLine, RunDir};

/// One run as the report sees it.
#[derive(Debug)]
pub struct RunData {
    /// Folder name.
    pub name: String,
    /// Variant the run belongs to (runs of a variant differ only by seed).
    pub variant: String,
    /// Run folder.
    pub dir: PathBuf,
    /// Its config.json.
    pub cfg: TrainConfig,
    /// Its metrics.jsonl.
    pub metrics: Vec<MetricsLine>,
}

impl RunData {
    pub(super) fn points(&self, f: impl Fn(&MetricsLine) -> Option<f64>) -> Vec<(f64, f64)> {
        let v = self
            .metrics
            .iter()
            .filter_map(|m| f(m).map(|y| (m.iter as f64, y)));
        v.filter(|p| p.1.is_finite()).collect()
    }
    pub(super) fn last_iter(&self) -> u64 {
        self.metrics.last().map_or(0, |m| m.iter)
    }
    pub(super) fn final_fid(&self) -> Option<(u64, f64)> {
        self.metrics.iter().rev().find_map(|m| m.fid.map(|f| (m.iter, f)))
    }
    pub(super) fn best_fid(&self) -> Option<(u64, f64)> {
        let fids = self.metrics.iter().filter_map(|m| m.fid.map(|f| (m.iter, f)));
        fids.min_by(|a, b| a.1.total_cmp(&b.1))
    }
    pub(super) fn final_kid(&self) -> Option<(f64, f64)> {
        let m = self.metrics.iter().rev().find(|m| m.kid.is_some())?;
        Some((m.kid?, m.kid_std.unwrap_or(f64::NAN)))
    }
}

/// Loads one run folder; `variant` defaults to the name without its `-s<seed>` suffix.
fn load_run(dir: &Path, variant: Option<String>) -> Result<RunData> {
    let run = RunDir::at(dir);
    let cfg = run.config()?;
    let metrics = run.metrics().read()?;
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    let variant = variant.unwrap_or_else(|| {
        let suffix = format!("-s{}", cfg.seed);
        name.strip_suffix(&suffix).unwrap_or(&name).to_string()
    });
    Ok(RunData {
        name,
        variant,
        dir: dir.to_path_buf(),
        cfg,
        metrics,
    })
}

/// The runs a report shows, and those it leaves out.
#[derive(Debug, Default)]
pub struct Collected {
    /// Runs that loaded.
    pub runs: Vec<RunData>,
    /// The sweep's `[report] title`, if any.
    pub title: Option<String>,
    /// Runs inside a sweep or folder that could not be read: (folder, why). A run named
    /// on the command line that cannot be read is an error instead.
    pub left_out: Vec<(PathBuf, String)>,
}

impl Collected {
    /// Loads a run found inside a sweep or folder; one that cannot be read is left out
    /// with its reason (one broken folder must not hide the others' results).
    fn load_found(&mut self, dir: &Path, variant: Option<String>) {
        match load_run(dir, variant) {
            Ok(r) => self.runs.push(r),
            Err(e) => {
                let why = format!("{e:#}");
                tracing::warn!(run = %dir.display(), "left out of the report: {why}");
                self.left_out.push((dir.to_path_buf(), why));
            }
        }
    }
}

/// Expands the inputs into runs: a run folder is itself; a sweep folder gives its plan's
/// runs (those started), any other folder its sub-folders that hold a config.json.
pub fn collect_runs(inputs: &[PathBuf]) -> Result<Collected> {
    let mut c = Collected::default();
    for input in inputs {
        if RunDir::is_run(input) {
            c.runs.push(load_run(input, None)?);
        } else if input.join(PLAN_FILE).is_file() {
            let p = input.join(PLAN_FILE);
            let plan: Plan = serde_json::from_slice(&std::fs::read(&p)?)
                .with_context(|| format!("corrupt {}", p.display()))?;
            c.title = c.title.or_else(|| {
                plan.report
                    .get("title")
                    .and_then(|t| t.as_str())
                    .map(String::from)
            });
            for r in &plan.runs {
                // Folders are looked up beside sweep.json, so a moved sweep still reports.
                let dir = input.join(&r.name);
                if RunDir::is_run(&dir) {
                    c.load_found(&dir, Some(r.variant.clone()));
                } else {
                    tracing::warn!(run = %r.name, "not started yet; left out of the report");
                }
            }
        } else if input.is_dir() {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| RunDir::is_run(p))
                .collect();
            dirs.sort();
            if dirs.is_empty() {
                bail!(
                    "{} holds no runs (no config.json in it or its sub-folders)",
                    input.display()
                );
            }
            for d in dirs {
                c.load_found(&d, None);
            }
        } else {
            bail!("{} is not a run or sweep folder", input.display());
        }
    }
    Ok(c)
}

/// Variants in order of first appearance, each with the indices of its runs.
pub(super) fn group(runs: &[RunData]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        match out.iter_mut().find(|(v, _)| *v == r.variant) {
            Some((_, idx)) => idx.push(i),
            None => out.push((r.variant.clone(), vec![i])),
        }
    }
    out
}
