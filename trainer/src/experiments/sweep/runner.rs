//! Runs a sweep's plan: each run, or each stack of runs (`--stack`), as a `pagan-train`
//! child process with its log in the run folder(s), a bounded number at once; finished
//! runs are skipped and interrupted ones resumed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{PLAN_FILE, Plan, PlannedRun};
use crate::config::check_stackable;
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
    /// Train runs that can share one set of kernels as one stack (one child each).
    pub stack: bool,
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

/// The arguments that say where and how, not what, to train (what `resume` takes).
fn placement_args(args: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if ["--data-dir", "--device", "--threads"].contains(&a.as_str()) {
            v.push(a.clone());
            v.extend(it.next().cloned());
        } else if a == "--cuda-graph" {
            v.push(a.clone());
        }
    }
    v
}

/// The child's command line (after the executable) for an action.
pub fn child_args(run: &PlannedRun, act: &Action) -> Vec<String> {
    stack_args(&[run], act, Path::new(PLAN_FILE))
}

/// The child's command line for runs trained together (one run: `train`/`resume` as a
/// person would type them; several: `train-stack` over the plan file, or `resume` of all).
fn stack_args(runs: &[&PlannedRun], act: &Action, plan_file: &Path) -> Vec<String> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut v: Vec<String> = match act {
        Action::Train if runs.len() == 1 => {
            let mut v = vec!["train".to_string()];
            v.extend(first.args.iter().cloned());
            v.extend(["--out".into(), first.dir.display().to_string()]);
            v
        }
        Action::Train => {
            let mut v = vec!["train-stack".to_string(), "--plan".into()];
            v.push(plan_file.display().to_string());
            for r in runs {
                v.extend(["--run".into(), r.name.clone()]);
            }
            v
        }
        Action::Resume { to, .. } => {
            let mut v = vec!["resume".to_string()];
            v.extend(runs.iter().map(|r| r.dir.display().to_string()));
            v.extend(["--iters".into(), to.to_string()]);
            v.extend(placement_args(&first.args));
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

/// Groups the runs to do into jobs: one run each, or (`stack`) runs that start or continue
/// from the same iteration and can be stacked, in plan order.
pub fn stacks<'a>(
    todo: &[(&'a PlannedRun, &'a Action)],
    stack: bool,
) -> Vec<Vec<(&'a PlannedRun, &'a Action)>> {
    let mut jobs: Vec<Vec<(&PlannedRun, &Action)>> = Vec::new();
    for &(run, act) in todo {
        let fits = |job: &Vec<(&PlannedRun, &Action)>| {
            if !stack || job[0].1 != act {
                return false;
            }
            let cfgs: Option<Vec<_>> = job
                .iter()
                .chain(std::iter::once(&(run, act)))
                .map(|(r, _)| r.cfg.clone())
                .collect();
            cfgs.is_some_and(|c| check_stackable(&c).is_ok())
        };
        match jobs.iter_mut().find(|j| fits(j)) {
            Some(job) => job.push((run, act)),
            None => jobs.push(vec![(run, act)]),
        }
    }
    jobs
}

/// Copies a child's output, line by line, into every log of the job.
fn tee(from: impl Read, logs: &Mutex<Vec<File>>) {
    for line in BufReader::new(from).lines().map_while(Result::ok) {
        if let Ok(mut logs) = logs.lock() {
            for log in logs.iter_mut() {
                // A log that cannot be written must not stop the training it records.
                let _ = writeln!(log, "{line}");
            }
        }
    }
}

/// Runs one child to completion, its output appended to every run's `train.log`.
fn run_child(exe: &Path, runs: &[&PlannedRun], act: &Action, args: &[String]) -> Result<()> {
    let mut logs = Vec::new();
    for run in runs {
        std::fs::create_dir_all(&run.dir).with_context(|| format!("creating {}", run.dir.display()))?;
        if *act == Action::Train {
            let json = serde_json::to_vec_pretty(&run.args)?;
            pagan_shared::fs::write_atomic(&run.dir.join(SWEEP_ARGS_FILE), &json)?;
        }
        let log_path = run.dir.join(TRAIN_LOG_FILE);
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        writeln!(log, "$ pagan-train {}", args.join(" "))?;
        logs.push(log);
    }
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let logs = Mutex::new(logs);
    let (out, err) = (child.stdout.take(), child.stderr.take());
    std::thread::scope(|s| {
        if let Some(out) = out {
            s.spawn(|| tee(out, &logs));
        }
        if let Some(err) = err {
            s.spawn(|| tee(err, &logs));
        }
    });
    let status = child
        .wait()
        .with_context(|| format!("waiting for {}", exe.display()))?;
    if !status.success() {
        let log_path = runs[0].dir.join(TRAIN_LOG_FILE);
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{status}; end of {}:\n{}", log_path.display(), tail.join("\n"));
    }
    Ok(())
}

/// Runs `plan` (or prints it with `dry_run`).
pub fn run(plan: &Plan, o: &SweepOptions) -> Result<()> {
    let out = &o.out;
    let actions: Vec<Action> = plan.runs.iter().map(action).collect::<Result<_>>()?;
    let plan_file = out.join(PLAN_FILE);
    let todo: Vec<(&PlannedRun, &Action)> = plan
        .runs
        .iter()
        .zip(&actions)
        .filter(|(_, act)| !matches!(act, Action::Skip { .. }))
        .collect();
    let jobs = stacks(&todo, o.stack);
    println!(
        "sweep {}: {} runs in {}{}",
        plan.name,
        plan.runs.len(),
        out.display(),
        if o.dry_run { " (dry run)" } else { "" }
    );
    for (r, act) in plan.runs.iter().zip(&actions) {
        if let Action::Skip { iter } = act {
            println!("  {}: done at {iter} iterations, skipped", r.name);
        }
    }
    let label = |job: &[(&PlannedRun, &Action)]| {
        let names: Vec<&str> = job.iter().map(|(r, _)| r.name.as_str()).collect();
        names.join(" + ")
    };
    for job in &jobs {
        let runs: Vec<&PlannedRun> = job.iter().map(|(r, _)| *r).collect();
        println!(
            "  {}: pagan-train {}",
            label(job),
            stack_args(&runs, job[0].1, &plan_file).join(" ")
        );
    }
    if o.dry_run {
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    pagan_shared::fs::write_atomic(&plan_file, &serde_json::to_vec_pretty(plan)?)?;
    let total = jobs.len();
    let queue = Mutex::new(jobs.iter().enumerate().collect::<VecDeque<_>>());
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..o.jobs.min(total.max(1)) {
            s.spawn(|| {
                loop {
                    // The lock guard is dropped at the end of this statement, before training.
                    let next = queue.lock().map(|mut q| q.pop_front()).ok().flatten();
                    let Some((i, job)) = next else { break };
                    let runs: Vec<&PlannedRun> = job.iter().map(|(r, _)| *r).collect();
                    let args = stack_args(&runs, job[0].1, &plan_file);
                    let t0 = Instant::now();
                    println!("[{}/{total}] {} started", i + 1, label(job));
                    match run_child(&o.exe, &runs, job[0].1, &args) {
                        Ok(()) => println!(
                            "[{}/{total}] {} done in {:.1} s",
                            i + 1,
                            label(job),
                            t0.elapsed().as_secs_f64()
                        ),
                        Err(e) => {
                            println!("[{}/{total}] {} FAILED", i + 1, label(job));
                            if let Ok(mut f) = failures.lock() {
                                let why = pagan_shared::error::chain_message(e.chain());
                                f.push((job.len(), format!("{}: {why}", label(job))));
                            }
                        }
                    }
                }
            });
        }
    });
    let failures: Vec<(usize, String)> = failures.into_inner().unwrap_or_default();
    let failed: usize = failures.iter().map(|f| f.0).sum();
    println!(
        "sweep {}: {} trained, {} skipped, {failed} failed in {:.1} s ({total} job(s)); plots: pagan-train report {} --out {}",
        plan.name,
        todo.len() - failed,
        plan.runs.len() - todo.len(),
        started.elapsed().as_secs_f64(),
        out.display(),
        out.join("report").display()
    );
    if !failures.is_empty() {
        let text: Vec<&str> = failures.iter().map(|f| f.1.as_str()).collect();
        bail!("{} job(s) failed:\n{}", failures.len(), text.join("\n\n"));
    }
    Ok(())
}
