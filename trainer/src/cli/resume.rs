//! `pagan-train resume`: run folders -> their saved configs (a new `--iters` checked
//! against the checkpoints) -> one `Trainer` that continues them as one stack.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use pagan_trainer::config::check_stackable;
use pagan_trainer::data::DatasetSpec;
use pagan_trainer::run_dir::RunDir;
use pagan_trainer::train::{RunOptions, Trainer};

use super::train::load_data;
use super::{Common, StepArgs, usage};

#[derive(Args)]
pub struct ResumeArgs {
    /// Run folder(s) (each holds config.json and checkpoints/); several continue as one
    /// stack, as `train --seeds` and `sweep --stack` started them.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// New total iteration count (default: the runs' own).
    #[arg(long)]
    iters: Option<u64>,
    /// Data folder (default: the one the run was started with).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    step: StepArgs,
}

/// `pagan-train resume`.
pub fn resume(a: ResumeArgs) -> Result<()> {
    let mut seen = BTreeSet::new();
    for run in &a.runs {
        if !seen.insert(run.canonicalize().unwrap_or_else(|_| run.clone())) {
            return Err(usage(format!("{} is named twice", run.display())));
        }
    }
    let mut cfgs = Vec::new();
    for run in &a.runs {
        let dir = RunDir::at(run);
        let mut cfg = dir.config()?;
        if let Some(total) = a.iters {
            let at = dir.latest_checkpoint()?.map_or(0, |m| m.iter);
            if total < at {
                return Err(usage(format!(
                    "--iters {total} is below {}'s checkpoint at iteration {at}",
                    run.display()
                )));
            }
            cfg.iters = total;
        }
        // Always: a run's settings may point at files that are gone (its eval reference).
        cfg.validate()
            .map_err(|e| usage(format!("{}: {e}", run.display())))?;
        cfgs.push(cfg);
    }
    check_stackable(&cfgs)?;
    let dev = a.common.setup()?;
    let cfg = &cfgs[0];
    let spec: DatasetSpec = cfg
        .dataset
        .parse()
        .with_context(|| format!("{} names an unknown dataset", a.runs[0].display()))?;
    if let Some(why) = cfg.cond.as_ref().and_then(|c| spec.class_mismatch(&c.classes)) {
        bail!("{}: {why}", a.runs[0].display());
    }
    let data_dir = a.data_dir.clone().unwrap_or_else(|| PathBuf::from(&cfg.data_dir));
    let set = load_data(&spec, &data_dir, cfg.limit, dev)?;
    let dirs: Vec<&Path> = a.runs.iter().map(PathBuf::as_path).collect();
    let mut t = Trainer::reopen_stack(&dirs, cfgs.clone(), dev, &set)?;
    // A new --iters is saved only once the runs reopened: a failed open changes nothing.
    if a.iters.is_some() {
        for (run, cfg) in a.runs.iter().zip(&cfgs) {
            RunDir::at(run).write_config(cfg)?;
        }
    }
    for run in &a.runs {
        tracing::info!(run = %run.display(), from = t.iter, to = t.cfg().iters, "resuming");
    }
    t.run(RunOptions {
        quiet: a.common.quiet,
        step_mode: a.step.mode(),
    })
}
