//! `pagan-train sweep`: a TOML grid of variants x seeds resolved into runs
//! `OUT/<variant>-s<seed>`, each a `pagan-train train` command a person could type. Every
//! run's flags are parsed and its configuration validated before anything runs (also for
//! `--dry-run`); `runner` then trains them as child processes, a bounded number at once,
//! one run per child or (`--stack`) stackable runs together.

mod runner;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub use runner::{Action, SweepOptions, action, child_args, run, stacks};

use crate::config::TrainConfig;

/// Name of the plan file in a sweep folder.
pub const PLAN_FILE: &str = "sweep.json";

/// Checks one run's `pagan-train train` arguments the way the CLI would and returns the
/// configuration they resolve to (the CLI provides it: flags are the binary's business).
pub type TrainArgsCheck<'a> = &'a dyn Fn(&[String]) -> Result<TrainConfig>;

/// Command-line changes to a sweep file: `--seeds` and `--set`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Seeds replacing every variant's.
    pub seeds: Vec<u64>,
    /// Flags (without --) set for every run, as strings.
    pub set: Vec<(String, String)>,
}

impl Overrides {
    /// Parses `--set KEY=VALUE` pairs; `seed` and `out` are the sweep's own.
    pub fn parse(seeds: &[u64], set: &[String]) -> Result<Self> {
        let mut pairs = Vec::new();
        for s in set {
            let Some((k, v)) = s.split_once('=') else {
                bail!("--set {s:?}: expected KEY=VALUE (a train flag without --, e.g. eval-batch=250)");
            };
            let k = k.trim().trim_start_matches("--").to_string();
            if k == "seed" || k == "out" {
                bail!("--set {k}: set by the sweep (use --seeds / --out)");
            }
            pairs.push((k, v.trim().to_string()));
        }
        Ok(Self {
            seeds: seeds.to_vec(),
            set: pairs,
        })
    }
}

/// The TOML file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Seeds of every variant that does not list its own.
    #[serde(default)]
    seeds: Option<Vec<u64>>,
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default, rename = "variant")]
    variants: Vec<toml::Table>,
    #[serde(default)]
    report: toml::Table,
}

/// One planned run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Folder name inside the sweep: `<variant>-s<seed>`.
    pub name: String,
    /// Variant name.
    pub variant: String,
    /// Seed.
    pub seed: u64,
    /// Run folder.
    pub dir: PathBuf,
    /// Total iterations the run's flags resolve to.
    pub iters: Option<u64>,
    /// `pagan-train train` arguments, without `--out`.
    pub args: Vec<String>,
    /// The configuration the arguments resolve to (before the data is read), for grouping
    /// runs into stacks; not saved in the plan file.
    #[serde(skip)]
    pub cfg: Option<TrainConfig>,
}

/// The resolved plan, written to `OUT/sweep.json` (the report reads variant names from it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Sweep name.
    pub name: String,
    /// Free text from the file.
    pub description: Option<String>,
    /// The TOML file it came from.
    pub source: String,
    /// Runs in order.
    pub runs: Vec<PlannedRun>,
    /// The file's `[report]` table, for `pagan-train report` (e.g. `title`).
    pub report: serde_json::Value,
}

/// Turns a TOML value into the argument(s) of `--key`; booleans are presence flags.
fn flag_args(key: &str, v: &toml::Value, out: &mut Vec<String>) -> Result<()> {
    let flag = format!("--{key}");
    match v {
        toml::Value::Boolean(true) => out.push(flag),
        toml::Value::Boolean(false) => {}
        toml::Value::String(s) => out.extend([flag, s.clone()]),
        toml::Value::Integer(i) => out.extend([flag, i.to_string()]),
        toml::Value::Float(f) => out.extend([flag, f.to_string()]),
        other => bail!("`{key}`: expected a string, number or boolean, got {other}"),
    }
    Ok(())
}

/// A name usable as a folder name and in Markdown without escaping.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('.')
}

/// Reads a sweep file and resolves it into runs under `out` (default runs/sweeps/<name>);
/// every run's arguments go through `check` (flags known, values valid, the combination
/// possible), so a plan that passes can run.
pub fn plan(
    config: &Path,
    out: Option<&Path>,
    over: &Overrides,
    known: &BTreeSet<String>,
    check: TrainArgsCheck<'_>,
) -> Result<Plan> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let file: SweepFile = toml::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
    if !plain_name(&file.name) {
        bail!("sweep name {:?}: use letters, digits, '-', '_' or '.'", file.name);
    }
    if file.variants.is_empty() {
        bail!("{} has no [[variant]] tables", config.display());
    }
    let out = out.map_or_else(|| Path::new("runs/sweeps").join(&file.name), Path::to_path_buf);
    // Keys the runner sets itself; allowing them would make runs collide or lie about seeds.
    for reserved in ["out", "seed", "seeds"] {
        let in_variant = reserved != "seeds" && file.variants.iter().any(|v| v.contains_key(reserved));
        if file.defaults.contains_key(reserved) || in_variant {
            bail!(
                "`{reserved}` is the sweep's own (folders come from --out, seeds from a top-level or \
                 per-variant `seeds = [...]`); remove it"
            );
        }
    }
    // Names first, so a naming mistake is reported before any flag problem.
    let mut names = BTreeSet::new();
    let mut variants = Vec::new();
    for (i, v) in file.variants.iter().enumerate() {
        let mut v = v.clone();
        let name = match v.remove("name") {
            Some(toml::Value::String(s)) => s,
            _ => bail!("variant #{} needs `name = \"...\"`", i + 1),
        };
        if !plain_name(&name) {
            bail!("variant name {name:?}: use letters, digits, '-', '_' or '.'");
        }
        if !names.insert(name.clone()) {
            bail!("variant name {name:?} is used twice");
        }
        variants.push((name, v));
    }
    let mut runs = Vec::new();
    for (name, mut v) in variants {
        let listed = v.remove("seeds");
        let seeds: Vec<u64> = match listed {
            _ if !over.seeds.is_empty() => over.seeds.clone(),
            Some(s) => s.try_into().with_context(|| {
                format!("variant {name}: `seeds` must be a list of non-negative integers")
            })?,
            None => file.seeds.clone().unwrap_or_else(|| vec![0]),
        };
        if seeds.is_empty() || seeds.iter().collect::<BTreeSet<_>>().len() != seeds.len() {
            bail!("variant {name}: `seeds` must be a non-empty list without repeats");
        }
        // Variant keys override defaults; the merged table keeps a stable (sorted) order.
        let mut merged = file.defaults.clone();
        for (k, val) in v {
            merged.insert(k, val);
        }
        for (k, val) in &over.set {
            // "true"/"false" stay presence flags; anything else is passed as written.
            let tv = match val.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => toml::Value::String(val.clone()),
            };
            merged.insert(k.clone(), tv);
        }
        let mut base = Vec::new();
        for (k, val) in &merged {
            if !known.contains(k) {
                bail!(
                    "variant {name}: `{k}` is not a `pagan-train train` flag (keys are the flags without \
                     the leading --, kebab-case; see `pagan-train train --help`)"
                );
            }
            flag_args(k, val, &mut base).with_context(|| format!("variant {name}"))?;
        }
        for seed in seeds {
            let run = format!("{name}-s{seed}");
            let dir = out.join(&run);
            let mut args = base.clone();
            args.extend(["--seed".into(), seed.to_string()]);
            let mut full = args.clone();
            full.extend(["--out".into(), dir.display().to_string()]);
            let cfg = check(&full).with_context(|| format!("run {run}"))?;
            runs.push(PlannedRun {
                iters: Some(cfg.iters),
                cfg: Some(cfg),
                name: run,
                variant: name.clone(),
                seed,
                dir,
                args,
            });
        }
    }
    Ok(Plan {
        name: file.name,
        description: file.description,
        source: config.display().to_string(),
        runs,
        report: serde_json::to_value(&file.report)?,
    })
}
