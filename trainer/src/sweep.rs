//! `pagan-train sweep`: runs a TOML grid of variants x seeds, each as its own `pagan-train
//! train` (or `resume`) child process in `OUT/<variant>-s<seed>`, a bounded number at once.
//! Children reuse the whole CLI (validation, defaults), so a sweep is exactly a list of
//! commands a person could type; the plan is written to `OUT/sweep.json`.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointMeta};

/// Name of the plan file in a sweep folder.
pub const PLAN_FILE: &str = "sweep.json";
/// Per-run file recording the train arguments the run was started with.
const ARGS_FILE: &str = "sweep-args.json";

/// `pagan-train sweep` arguments.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// Sweep file (TOML): `name`, `[defaults]` (train flags), `[[variant]]` tables, `seeds`.
    pub config: PathBuf,
    /// Sweep folder (default: runs/sweeps/<name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs trained at once (several small runs share a GPU well; on a CPU keep 1).
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: usize,
    /// Print the plan and its commands without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Seeds for every variant, overriding the file (e.g. `--seeds 0` for one seed per variant).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Overrides a train flag for every run, after the file's defaults and variants
    /// (repeatable; e.g. `--set eval-batch=250 --set device=cuda`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

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
    /// Total iterations if the sweep sets them (else the preset's default).
    pub iters: Option<u64>,
    /// `pagan-train train` arguments, without `--out`.
    pub args: Vec<String>,
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

/// Reads a sweep file and resolves it into runs under `out` (default runs/sweeps/<name>),
/// checking every run's arguments against the train command's parser.
pub fn plan(config: &Path, out: Option<&Path>, over: &Overrides, train_cmd: &clap::Command) -> Result<Plan> {
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
    for reserved in ["out", "seed"] {
        if file.defaults.contains_key(reserved) || file.variants.iter().any(|v| v.contains_key(reserved)) {
            bail!("`{reserved}` is set by the sweep (run folders and `seeds = [...]`); remove it");
        }
    }
    let known: BTreeSet<&str> = train_cmd.get_arguments().filter_map(|a| a.get_long()).collect();
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
            if !known.contains(k.as_str()) {
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
            let mut full = vec!["train".to_string()];
            full.extend(args.iter().cloned());
            full.extend(["--out".into(), dir.display().to_string()]);
            let m = train_cmd.clone().try_get_matches_from(&full).map_err(|e| {
                let msg = e.render().to_string();
                anyhow::anyhow!("run {run}: {}", msg.trim_start_matches("error: "))
            })?;
            runs.push(PlannedRun {
                iters: m.try_get_one::<u64>("iters").ok().flatten().copied(),
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

/// What the runner does with one run folder.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Train,
    Resume { from: u64, to: u64 },
    Skip { iter: u64 },
}

/// Decides from the run folder's checkpoint whether to train, resume or skip.
fn action(run: &PlannedRun) -> Result<Action> {
    let latest = checkpoint::latest_path(&run.dir);
    if !latest.exists() {
        return Ok(Action::Train);
    }
    let recorded = run.dir.join(ARGS_FILE);
    if let Ok(bytes) = std::fs::read(&recorded) {
        let old: Vec<String> =
            serde_json::from_slice(&bytes).with_context(|| format!("corrupt {}", recorded.display()))?;
        if without_iters(&old) != without_iters(&run.args) {
            bail!(
                "{} was started with other settings ({}); delete it or rename the variant",
                run.dir.display(),
                old.join(" ")
            );
        }
    }
    let meta: CheckpointMeta = serde_json::from_slice(
        &std::fs::read(&latest).with_context(|| format!("reading {}", latest.display()))?,
    )
    .with_context(|| format!("corrupt {}", latest.display()))?;
    let target = match run.iters {
        Some(t) => t,
        None => crate::train::load_config(&run.dir)?.iters,
    };
    Ok(if meta.iter >= target {
        Action::Skip { iter: meta.iter }
    } else {
        Action::Resume {
            from: meta.iter,
            to: target,
        }
    })
}

/// The arguments with `--iters N` removed: a longer target is a continuation, not a change.
fn without_iters(args: &[String]) -> Vec<&String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--iters" {
            it.next();
        } else {
            out.push(a);
        }
    }
    out
}

/// The child's command line (after the executable) for an action.
fn child_args(run: &PlannedRun, act: &Action) -> Vec<String> {
    let mut v: Vec<String> = match act {
        Action::Train => {
            let mut v = vec!["train".to_string()];
            v.extend(run.args.iter().cloned());
            v.extend(["--out".into(), run.dir.display().to_string()]);
            v
        }
        Action::Resume { to, .. } => {
            let mut v = vec!["resume".to_string(), run.dir.display().to_string()];
            v.extend(["--iters".into(), to.to_string()]);
            // resume takes only the flags that say where and how, not what, to train.
            let mut it = run.args.iter();
            while let Some(a) = it.next() {
                if ["--data-dir", "--device", "--threads"].contains(&a.as_str()) {
                    v.push(a.clone());
                    v.extend(it.next().cloned());
                }
            }
            v
        }
        Action::Skip { .. } => Vec::new(),
    };
    // A progress bar in a log file is noise.
    if !v.is_empty() && !v.iter().any(|a| a == "--quiet") {
        v.push("--quiet".into());
    }
    v
}

/// Prepares a run folder for a fresh start: a crash before the first checkpoint leaves a
/// config.json that `train` would refuse, and metrics that would be appended to.
fn clear_unstarted(dir: &Path) -> Result<()> {
    for f in ["config.json", "metrics.jsonl"] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    Ok(())
}

/// Runs one child to completion, output appended to `<run>/train.log`.
fn run_child(exe: &Path, run: &PlannedRun, act: &Action) -> Result<()> {
    std::fs::create_dir_all(&run.dir).with_context(|| format!("creating {}", run.dir.display()))?;
    if *act == Action::Train {
        clear_unstarted(&run.dir)?;
        let json = serde_json::to_vec_pretty(&run.args)?;
        pagan_shared::grid::write_atomic(&run.dir.join(ARGS_FILE), &json)?;
    }
    let args = child_args(run, act);
    let log_path = run.dir.join("train.log");
    let mut log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    writeln!(log, "$ pagan-train {}", args.join(" "))?;
    let status = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("starting {}", exe.display()))?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{status}; end of {}:\n{}", log_path.display(), tail.join("\n"));
    }
    Ok(())
}

/// Entry point of `pagan-train sweep`; `train_cmd` is the train subcommand's parser.
pub fn run(a: SweepArgs, train_cmd: &clap::Command) -> Result<()> {
    let over = Overrides::parse(&a.seeds, &a.set)?;
    let plan = plan(&a.config, a.out.as_deref(), &over, train_cmd)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("runs/sweeps").join(&plan.name));
    let actions: Vec<Action> = plan.runs.iter().map(action).collect::<Result<_>>()?;
    println!(
        "sweep {}: {} runs in {}{}",
        plan.name,
        plan.runs.len(),
        out.display(),
        if a.dry_run { " (dry run)" } else { "" }
    );
    for (r, act) in plan.runs.iter().zip(&actions) {
        match act {
            Action::Skip { iter } => println!("  {}: done at {iter} iterations, skipped", r.name),
            _ => println!("  {}: pagan-train {}", r.name, child_args(r, act).join(" ")),
        }
    }
    if a.dry_run {
        return Ok(());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    pagan_shared::grid::write_atomic(&out.join(PLAN_FILE), &serde_json::to_vec_pretty(&plan)?)?;

    let exe = std::env::current_exe().context("locating the pagan-train executable")?;
    let todo: VecDeque<(usize, &PlannedRun, &Action)> = plan
        .runs
        .iter()
        .zip(&actions)
        .enumerate()
        .filter(|(_, (_, act))| !matches!(act, Action::Skip { .. }))
        .map(|(i, (r, act))| (i, r, act))
        .collect();
    let total = todo.len();
    let queue = Mutex::new(todo);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.jobs.min(total.max(1)) {
            s.spawn(|| {
                loop {
                    // The lock guard is dropped at the end of this statement, before training.
                    let next = queue.lock().map(|mut q| q.pop_front()).ok().flatten();
                    let Some((i, r, act)) = next else { break };
                    let t0 = Instant::now();
                    println!("[{}/{}] {} started", i + 1, plan.runs.len(), r.name);
                    match run_child(&exe, r, act) {
                        Ok(()) => println!(
                            "[{}/{}] {} done in {:.1} s",
                            i + 1,
                            plan.runs.len(),
                            r.name,
                            t0.elapsed().as_secs_f64()
                        ),
                        Err(e) => {
                            println!("[{}/{}] {} FAILED", i + 1, plan.runs.len(), r.name);
                            if let Ok(mut f) = failures.lock() {
                                f.push(format!(
                                    "{}: {}",
                                    r.name,
                                    pagan_shared::error::chain_message(e.chain())
                                ));
                            }
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    println!(
        "sweep {}: {} trained, {} skipped, {} failed in {:.1} s; plots: pagan-train report {} --out {}",
        plan.name,
        total - failures.len(),
        plan.runs.len() - total,
        failures.len(),
        started.elapsed().as_secs_f64(),
        out.display(),
        out.join("report").display()
    );
    if !failures.is_empty() {
        bail!("{} run(s) failed:\n{}", failures.len(), failures.join("\n\n"));
    }
    Ok(())
}
