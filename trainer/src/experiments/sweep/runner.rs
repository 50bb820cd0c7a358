//! Runs a sweep's plan: each run as a `pagan-train train` (or `resume`) child process with
//! its log in the run folder, a bounded number at once; finished runs are skipped and
//! interrupted ones resumed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{PLAN_FILE, Plan, PlannedRun};
use crate::run_dir::{RunDir, SWEEP_ARGS_FILE, TRAIN_LOG_FILE};

/// How a sweep runs.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Sweep folder.
    pub out: PathBuf,
    /// Runs trained at once.
    pub jobs: usize,
    /// Print the plan only.
    pub dry_run: bool,
    /// The `pagan-train` executable the children run.
    pub exe: PathBuf,
}

/// What the runner does with one run folder.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start it.
    Train,
    /// Continue it (a run stopped before its first checkpoint continues from 0).
    Resume {
        /// Iterations done.
        from: u64,
        /// Target.
        to: u64,
    },
    /// Finished.
    Skip {
        /// Iterations done.
        iter: u64,
    },
}

/// Decides from the run folder whether to train, resume or skip.
pub fn action(run: &PlannedRun) -> Result<Action> {
    if !RunDir::is_run(&run.dir) {
        return Ok(Action::Train);
    }
    let recorded = run.dir.join(SWEEP_ARGS_FILE);
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
    let dir = RunDir::at(&run.dir);
    let done = dir.latest_checkpoint()?.map_or(0, |m| m.iter);
    let target = match run.iters {
        Some(t) => t,
        None => dir.config()?.iters,
    };
    Ok(if done >= target {
        Action::Skip { iter: done }
    } else {
        Action::Resume {
            from: done,
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
pub fn child_args(run: &PlannedRun, act: &Action) -> Vec<String> {
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

/// Runs one child to completion, output appended to `<run>/train.log`.
fn run_child(exe: &Path, run: &PlannedRun, act: &Action) -> Result<()> {
    std::fs::create_dir_all(&run.dir).with_context(|| format!("creating {}", run.dir.display()))?;
    if *act == Action::Train {
        let json = serde_json::to_vec_pretty(&run.args)?;
        pagan_shared::fs::write_atomic(&run.dir.join(SWEEP_ARGS_FILE), &json)?;
    }
    let args = child_args(run, act);
    let log_path = run.dir.join(TRAIN_LOG_FILE);
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

/// Runs `plan` (or prints it with `dry_run`).
pub fn run(plan: &Plan, o: &SweepOptions) -> Result<()> {
    let (a, out) = (o, &o.out);
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
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    pagan_shared::fs::write_atomic(&out.join(PLAN_FILE), &serde_json::to_vec_pretty(plan)?)?;
    let exe = &o.exe;
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
                    match run_child(exe, r, act) {
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
