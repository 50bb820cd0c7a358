//! `pagan-train sweep` and `report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use pagan_trainer::experiments::report::{self, ReportOptions};
use pagan_trainer::experiments::sweep::{self, Overrides, SweepOptions};

use super::train::{check_train_args, train_flags};

#[derive(Args)]
pub struct SweepArgs {
    /// Sweep file (TOML): `name`, `[defaults]` (train flags), `[[variant]]` tables, `seeds`.
    config: PathBuf,
    /// Sweep folder (default: runs/sweeps/<name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs trained at once (several small runs share a GPU well; on a CPU keep 1).
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    jobs: usize,
    /// Train runs that can share one set of kernels as one stack (same widths, loss, batch,
    /// ...; they may differ in seed, --pa, start level, fade-in and level-up rule). On a GPU
    /// a stack of K runs takes little more time than one.
    #[arg(long)]
    stack: bool,
    /// Print the plan and its commands without running anything (every run is still checked).
    #[arg(long)]
    dry_run: bool,
    /// Seeds for every variant, overriding the file (e.g. `--seeds 0` for one seed per variant).
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Overrides a train flag for every run, after the file's defaults and variants
    /// (repeatable; e.g. `--set eval-batch=250 --set device=cuda`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// `pagan-train sweep`.
pub fn sweep(a: SweepArgs) -> Result<()> {
    let over = Overrides::parse(&a.seeds, &a.set).map_err(super::usage)?;
    // A sweep file that cannot run is bad input, like a bad flag: exit 2.
    let plan = sweep::plan(
        &a.config,
        a.out.as_deref(),
        &over,
        &train_flags(),
        &check_train_args,
    )
    .map_err(|e| super::usage(pagan_shared::error::chain_message(e.chain())))?;
    let out = a.out.unwrap_or_else(|| Path::new("runs/sweeps").join(&plan.name));
    let exe = std::env::current_exe().context("locating the pagan-train executable")?;
    sweep::run(
        &plan,
        &SweepOptions {
            out,
            jobs: a.jobs,
            dry_run: a.dry_run,
            exe,
            stack: a.stack,
        },
    )
}

#[derive(Args)]
pub struct ReportArgs {
    /// Run folders, or sweep folders (every sub-folder holding a config.json is a run).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Folder for fid/kid/losses/samples plots and results.md.
    #[arg(long)]
    out: PathBuf,
    /// Heading of results.md (default: the sweep's `[report] title`, else "Results").
    #[arg(long)]
    title: Option<String>,
}

/// `pagan-train report`.
pub fn report(a: ReportArgs) -> Result<()> {
    report::run(ReportOptions {
        inputs: a.inputs,
        out: a.out,
        title: a.title,
    })
}
