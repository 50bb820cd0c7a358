//! `pagan-train report` on synthetic metrics (exact mean ± std in results.md, valid images),
//! and `pagan-train sweep` end to end: a tiny 2-variant sweep, its resumption, its report.

use std::path::Path;

use pagan_trainer::config::{PaMode, Preset, ScheduleSpec, TrainConfig, TrainOverrides};
use pagan_trainer::experiments::report::{CHART_SIZE, fmt_mean_std};
use pagan_trainer::run_dir::{MetricsLine, RunDir};

use crate::common::{bin, repo, require_fashion_mnist, run_exit, run_ok};

fn config(pa: PaMode, seed: u64, iters: u64) -> TrainConfig {
    let o = TrainOverrides {
        preset: Some(Preset::Demo),
        pa: Some(pa),
        seed: Some(seed),
        iters: Some(iters),
        fade_iters: Some(0),
        schedule: Some(ScheduleSpec::Every(500)),
        sample_every: Some(500),
        checkpoint_every: Some(500),
        eval_every: Some(500),
        eval_samples: Some(1000),
        ..TrainOverrides::default()
    };
    let mut cfg = TrainConfig::resolve("fashion-mnist", [1, 28, 28], Path::new("data"), &o);
    // Recorded, not read: the report only prints the reference's name.
    cfg.eval.fid_reference = Some("models/references/fashion-mnist-test.npz".into());
    cfg
}

/// Writes a run folder with metrics every 100 iterations and evaluations at 500 and 1000.
fn synthetic_run(dir: &Path, pa: PaMode, seed: u64, fids: [f64; 2], kids: [f64; 2]) {
    std::fs::create_dir_all(dir.join("samples")).expect("mkdir");
    RunDir::create(dir, &config(pa, seed, 1000)).expect("run folder");
    let mut text = String::new();
    for k in 1..=10u64 {
        let eval = (k % 5 == 0).then(|| (k / 5 - 1) as usize);
        let line = MetricsLine {
            iter: k * 100,
            d_loss: 1.0 + 0.01 * k as f64 + seed as f64 * 0.1,
            g_loss: 2.0 - 0.05 * k as f64,
            d_acc_real: 0.7,
            d_acc_fake: 0.6,
            pa_level: if pa == PaMode::Off { 0 } else { (k / 4) as i64 },
            pa_p: 0.5,
            sec_per_iter: 0.01,
            kid: eval.map(|e| kids[e]),
            kid_std: eval.map(|_| 0.001),
            fid: eval.map(|e| fids[e]),
            prdc: None,
            provenance: None,
            eval_seconds: eval.map(|_| 3.0),
        };
        text.push_str(&serde_json::to_string(&line).expect("line"));
        text.push('\n');
    }
    std::fs::write(dir.join("metrics.jsonl"), text).expect("metrics");
    let grid = image::RgbImage::from_fn(50, 50, |x, y| image::Rgb([(x * 5) as u8, (y * 5) as u8, 90]));
    grid.save(dir.join("samples/latest.png")).expect("grid");
}

fn has_colour(img: &image::RgbImage, c: [u8; 3]) -> bool {
    img.pixels().any(|p| p.0 == c)
}

#[test]
fn report_on_synthetic_metrics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sweep = tmp.path().join("sweep");
    // (final FID, best FID) per seed: best is the first evaluation for one seed, the last for the other.
    let runs = [
        ("no-pa-s0", PaMode::Off, 0, [12.0, 10.5], [0.020, 0.011]),
        ("no-pa-s1", PaMode::Off, 1, [11.0, 11.5], [0.018, 0.013]),
        ("pa-input-s0", PaMode::Input, 0, [9.0, 6.0], [0.012, 0.006]),
        ("pa-input-s1", PaMode::Input, 1, [8.5, 6.75], [0.010, 0.007]),
    ];
    for (name, pa, seed, fids, kids) in runs {
        synthetic_run(&sweep.join(name), pa, seed, fids, kids);
    }
    let out = tmp.path().join("report");
    run_ok(bin().arg("report").arg(&sweep).arg("--out").arg(&out));

    for stem in ["fid", "kid", "losses"] {
        let img = image::open(out.join(format!("{stem}.png")))
            .expect("png decodes")
            .to_rgb8();
        assert_eq!(img.dimensions(), CHART_SIZE, "{stem}.png");
        // Both variants' colours (tab10 blue, orange) are drawn.
        assert!(
            has_colour(&img, [31, 119, 180]) && has_colour(&img, [255, 127, 14]),
            "{stem}.png"
        );
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("polyline"), "{stem}.svg");
    }
    let fid_svg = std::fs::read_to_string(out.join("fid.svg")).expect("svg");
    assert!(fid_svg.contains("pa-input (mean of 2 seeds)") && fid_svg.contains("PA level"));
    let samples = image::open(out.join("samples.png")).expect("samples decodes");
    // Two variants (rows) of two seeds (columns), each grid enlarged from 50 px.
    assert!(samples.width() > 2 * 300 && samples.height() > 2 * 300);

    let md = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    let row = |variant: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {variant} |")))
            .unwrap_or_else(|| panic!("no row for {variant} in\n{md}"))
            .to_string()
    };
    let (no_pa, pa) = (row("no-pa"), row("pa-input"));
    // Sample std over two seeds, computed here independently of the report's code.
    let ms = |a: f64, b: f64, p: usize| {
        let m = (a + b) / 2.0;
        let s = ((a - m).powi(2) + (b - m).powi(2)).sqrt();
        format!("{m:.p$} ± {s:.p$}")
    };
    assert!(no_pa.contains(&ms(10.5, 11.5, 2)), "final FID: {no_pa}");
    assert!(no_pa.contains(&ms(10.5, 11.0, 2)), "best FID: {no_pa}");
    assert!(no_pa.contains(&ms(0.011, 0.013, 4)), "final KID: {no_pa}");
    assert!(
        pa.contains(&ms(6.0, 6.75, 2)) && pa.contains(&ms(0.006, 0.007, 4)),
        "{pa}"
    );
    assert!(pa.contains("| 2 | 1000 |") && pa.contains("PA input"), "{pa}");
    assert_eq!(fmt_mean_std(&[6.0, 6.75], 2), ms(6.0, 6.75, 2));
    for link in ["fid.png", "kid.png", "losses.png", "samples.png"] {
        assert!(md.contains(&format!("]({link})")), "results.md lacks {link}");
    }
    assert!(
        md.contains("| pa-input-s1 | 1 | 1000 / 1000 | 6.75 (1000) | 6.75 (1000) |"),
        "{md}"
    );

    // A single run folder works too, and a folder without runs is a clear error.
    run_ok(
        bin()
            .arg("report")
            .arg(sweep.join("no-pa-s0"))
            .arg("--out")
            .arg(tmp.path().join("one")),
    );
    let err = run_exit(
        bin()
            .arg("report")
            .arg(tmp.path().join("one"))
            .arg("--out")
            .arg(tmp.path().join("x")),
        1,
    );
    assert!(err.contains("no runs"), "{err}");

    // A run stopped while writing (a torn last metrics line) still reports; a run folder
    // that cannot be read is left out with its reason, in the log and in results.md, and
    // the others still report. Named alone, it is an error.
    let metrics = sweep.join("no-pa-s1/metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).expect("metrics");
    text.push_str("{\"iter\":1100,\"d_lo");
    std::fs::write(&metrics, text).expect("tear");
    std::fs::write(sweep.join("pa-input-s1/config.json"), "{}").expect("break");
    let out2 = tmp.path().join("report2");
    let log = run_ok(bin().arg("report").arg(&sweep).arg("--out").arg(&out2));
    assert!(log.contains("3 runs"), "{log}");
    let md = std::fs::read_to_string(out2.join("results.md")).expect("results.md");
    assert!(
        md.contains("## Left out") && md.contains("pa-input-s1") && md.contains("dataset"),
        "{md}"
    );
    assert!(md.contains(&ms(10.5, 11.5, 2)), "no-pa keeps both seeds:\n{md}");
    let err = run_exit(
        bin()
            .arg("report")
            .arg(sweep.join("pa-input-s1"))
            .arg("--out")
            .arg(tmp.path().join("y")),
        1,
    );
    assert!(err.contains("config.json"), "{err}");
}

fn write_sweep(path: &Path, iters: u64) {
    let toml = format!(
        r#"name = "tiny"
seeds = [0]

[defaults]
dataset = "fashion-mnist"
preset = "demo"
limit = 64
batch = 8
iters = {iters}
eval-every = 0
log-every = 1
checkpoint-every = 2
device = "cpu"
threads = 1
data-dir = "{}"

[[variant]]
name = "no-pa"
pa = "off"

[[variant]]
name = "pa-input"
pa = "input"
pa-schedule = "every:2"

[report]
title = "Tiny sweep"
"#,
        repo().join("data").display()
    );
    std::fs::write(path, toml).expect("write sweep file");
}

fn latest_iter(run: &Path) -> u64 {
    RunDir::at(run)
        .latest_checkpoint()
        .expect("meta")
        .expect("a checkpoint")
        .iter
}

#[test]
fn tiny_sweep_resumes_and_reports() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("tiny.toml");
    let out = tmp.path().join("sweeps/tiny");
    write_sweep(&cfg, 4);

    // Dry run: the plan and commands, nothing written.
    let plan = run_ok(
        bin()
            .arg("sweep")
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .arg("--dry-run"),
    );
    assert!(
        plan.contains("no-pa-s0: pagan-train train") && plan.contains("--pa input"),
        "{plan}"
    );
    assert!(!out.exists());

    let first = run_ok(
        bin()
            .arg("sweep")
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .args(["--jobs", "2"]),
    );
    assert!(first.contains("2 trained, 0 skipped, 0 failed"), "{first}");
    for run in ["no-pa-s0", "pa-input-s0"] {
        let d = out.join(run);
        assert_eq!(latest_iter(&d), 4, "{run}");
        assert!(d.join("train.log").exists() && d.join("samples/latest.png").exists());
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).expect("sweep.json")).expect("json");
    assert_eq!(plan["runs"].as_array().map(Vec::len), Some(2));

    // Same file again: everything is done.
    let again = run_ok(bin().arg("sweep").arg(&cfg).arg("--out").arg(&out));
    assert!(again.contains("0 trained, 2 skipped"), "{again}");

    // A longer target continues the finished runs from their checkpoints.
    write_sweep(&cfg, 6);
    let more = run_ok(bin().arg("sweep").arg(&cfg).arg("--out").arg(&out));
    assert!(
        more.contains("pagan-train resume") && more.contains("2 trained"),
        "{more}"
    );
    assert_eq!(latest_iter(&out.join("pa-input-s0")), 6);
    let metrics = std::fs::read_to_string(out.join("pa-input-s0/metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 6);

    let report = tmp.path().join("report");
    run_ok(bin().arg("report").arg(&out).arg("--out").arg(&report));
    for f in [
        "fid.png",
        "fid.svg",
        "kid.png",
        "kid.svg",
        "losses.png",
        "losses.svg",
        "samples.png",
    ] {
        assert!(report.join(f).exists(), "missing {f}");
    }
    let md = std::fs::read_to_string(report.join("results.md")).expect("results.md");
    assert!(md.starts_with("# Tiny sweep"), "{md}");
    assert!(
        md.contains("| no-pa | PA off") && md.contains("| pa-input | PA input"),
        "{md}"
    );
    assert!(md.contains("| pa-input-s0 | 0 | 6 / 6 |"), "{md}");
}

#[test]
fn bad_sweep_files_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "name = \"x\"\n[[variant]]\nname = \"a\"\ndataset = \"mnist\"\nlearning-rate = 1\n",
            "learning-rate",
        ),
        (
            "name = \"x\"\n[[variant]]\nname = \"a\"\n[[variant]]\nname = \"a\"\n",
            "used twice",
        ),
        ("name = \"x\"\n[[variant]]\nname = \"a/b\"\n", "a/b"),
        (
            "name = \"x\"\n[defaults]\nseed = 3\n[[variant]]\nname = \"a\"\n",
            "seeds",
        ),
        ("name = \"x\"\nvariants = 1\n", "variants"),
        (
            "name = \"x\"\n[[variant]]\nname = \"a\"\ndataset = \"mnist\"\npa = \"sideways\"\n",
            "sideways",
        ),
        (
            "name = \"x\"\n[[variant]]\nname = \"a\"\npa = \"off\"\n",
            "--dataset",
        ),
        // Combinations every run accepts flag by flag but the configuration refuses: the
        // dry run says so, not the runs an hour later.
        (
            "name = \"x\"\n[[variant]]\nname = \"a\"\ndataset = \"mnist\"\npa-schedule = \"kid\"\npreset = \"demo\"\n",
            "--eval-every",
        ),
        (
            "name = \"x\"\n[[variant]]\nname = \"a\"\ndataset = \"mnist\"\nloss = \"hinge\"\nlabel-smoothing = 0.1\n",
            "--label-smoothing",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let p = tmp.path().join(format!("bad{i}.toml"));
        std::fs::write(&p, text).expect("write");
        let err = run_exit(
            bin()
                .arg("sweep")
                .arg(&p)
                .arg("--out")
                .arg(tmp.path().join("o"))
                .arg("--dry-run"),
            2,
        );
        assert!(err.contains(needle), "case {i}: expected {needle:?} in\n{err}");
    }
    assert!(!tmp.path().join("o").exists());
}

#[test]
fn sweep_seeds_and_set_override_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("tiny.toml");
    let out = tmp.path().join("o");
    write_sweep(&cfg, 4);
    let plan = run_ok(bin().arg("sweep").arg(&cfg).arg("--out").arg(&out).args([
        "--seeds",
        "3,4",
        "--set",
        "eval-batch=7",
        "--set",
        "iters=6",
        "--dry-run",
    ]));
    for run in ["no-pa-s3", "no-pa-s4", "pa-input-s3", "pa-input-s4"] {
        assert!(
            plan.contains(&format!("{run}: pagan-train train")),
            "{run} missing:\n{plan}"
        );
    }
    assert!(!plan.contains("-s0:"), "{plan}");
    assert_eq!(plan.matches("--eval-batch 7").count(), 4, "{plan}");
    assert_eq!(plan.matches("--iters 6").count(), 4, "{plan}");
    assert!(!plan.contains("--iters 4"), "{plan}");
    for (bad, needle) in [
        ("learning-rate=1", "learning-rate"),
        ("eval-batch", "KEY=VALUE"),
        ("seed=1", "--seeds"),
    ] {
        let err = run_exit(
            bin()
                .arg("sweep")
                .arg(&cfg)
                .arg("--out")
                .arg(&out)
                .args(["--set", bad, "--dry-run"]),
            2,
        );
        assert!(err.contains(needle), "--set {bad}: expected {needle:?} in\n{err}");
    }
    assert!(!out.exists());
}

/// The tiny sweep plus a variant with another batch size, which cannot join the others' stack.
fn write_sweep_with_big_batch(path: &Path, iters: u64) {
    write_sweep(path, iters);
    let text = std::fs::read_to_string(path).expect("read");
    let variant = "[[variant]]\nname = \"big-batch\"\npa = \"off\"\nbatch = 16\n\n[report]";
    std::fs::write(path, text.replace("[report]", variant)).expect("write");
}

/// (d_loss, g_loss) per metrics line of a run.
fn losses(run: &Path) -> Vec<(f64, f64)> {
    let lines = RunDir::at(run).metrics().read().expect("metrics");
    lines.iter().map(|m| (m.d_loss, m.g_loss)).collect()
}

#[test]
fn stacked_sweep_and_train_seeds_train_each_run_as_it_trains_alone() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("tiny.toml");
    let out = tmp.path().join("sweeps/tiny");
    write_sweep_with_big_batch(&cfg, 4);
    let sweep = |extra: &[&str]| {
        let mut c = bin();
        c.arg("sweep").arg(&cfg).arg("--out").arg(&out);
        c.args(["--seeds", "0,1", "--stack"]).args(extra);
        c
    };
    let plan = run_ok(&mut sweep(&["--dry-run"]));
    assert!(
        plan.contains("no-pa-s0 + no-pa-s1 + pa-input-s0 + pa-input-s1: pagan-train train-stack")
            && plan.contains("big-batch-s0 + big-batch-s1: pagan-train train-stack"),
        "{plan}"
    );
    let first = run_ok(&mut sweep(&[]));
    assert!(first.contains("6 trained, 0 skipped, 0 failed"), "{first}");
    assert!(first.contains("(2 job(s))"), "{first}");

    // The same run trained alone, from the flags the sweep recorded, and as one of two
    // stacked seeds of `train --seeds`, writes the same numbers.
    let args: Vec<String> =
        serde_json::from_slice(&std::fs::read(out.join("no-pa-s1/sweep-args.json")).expect("args"))
            .expect("json");
    let alone = tmp.path().join("alone");
    run_ok(bin().arg("train").args(&args).arg("--out").arg(&alone));
    let mut seeds_args = args.clone();
    let at = seeds_args
        .iter()
        .position(|a| a == "--seed")
        .expect("--seed in the args");
    seeds_args[at] = "--seeds".into();
    seeds_args[at + 1] = "0,1".into();
    let prefix = tmp.path().join("pair");
    run_ok(bin().arg("train").args(&seeds_args).arg("--out").arg(&prefix));
    let want = losses(&alone);
    assert_eq!(want.len(), 4);
    assert_eq!(losses(&out.join("no-pa-s1")), want, "sweep --stack");
    assert_eq!(losses(&tmp.path().join("pair-s1")), want, "train --seeds");
    assert_eq!(losses(&tmp.path().join("pair-s0")), losses(&out.join("no-pa-s0")));

    // A longer target continues each stack with one `resume` of all its folders.
    write_sweep_with_big_batch(&cfg, 6);
    let more = run_ok(&mut sweep(&[]));
    let resume = format!(
        "pagan-train resume {} {}",
        out.join("big-batch-s0").display(),
        out.join("big-batch-s1").display()
    );
    assert!(more.contains(&resume) && more.contains("6 trained"), "{more}");
    for run in ["no-pa-s0", "pa-input-s1", "big-batch-s1"] {
        assert_eq!(latest_iter(&out.join(run)), 6, "{run}");
    }
    // Every run of a stack keeps the stack's log.
    let log = std::fs::read_to_string(out.join("pa-input-s1/train.log")).expect("log");
    assert!(
        log.contains("train-stack") && log.contains(&format!("{}", out.join("no-pa-s0").display())),
        "{log}"
    );
}
