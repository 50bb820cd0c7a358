//! The `pagan-train` binary end to end: help texts, exit codes for bad flags and values, a
//! tiny training run on real Fashion-MNIST, resume, sampling (grid and --z npy), export.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{bin, repo, require_fashion_mnist, run_exit, run_ok};

/// The `--flags` a help text documents, as whole tokens.
fn flags(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
        .filter(|t| t.starts_with("--") && t.len() > 2)
        .map(|t| {
            t.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect()
}

/// The subcommands listed under "Commands:" (the first word of each entry line).
fn subcommands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn every_subcommand_explains_its_flags() {
    let top = subcommands(&run_ok(bin().arg("--help")));
    for sub in [
        "train",
        "resume",
        "sample",
        "export",
        "data",
        "bench",
        "export-inception",
        "stats",
        "fid",
        "sweep",
        "report",
        "bench-inception",
    ] {
        assert!(
            top.contains(sub),
            "top-level help lacks the subcommand {sub}: {top:?}"
        );
    }
    let expect = |sub: &str, want: &[&str]| {
        let have = flags(&run_ok(bin().args([sub, "--help"])));
        for f in want {
            assert!(have.contains(*f), "{sub} --help lacks {f}: {have:?}");
        }
    };
    expect(
        "train",
        &[
            "--dataset",
            "--preset",
            "--pa",
            "--pa-feat-layer",
            "--start-level",
            "--max-level",
            "--iters",
            "--seed",
            "--device",
            "--out",
            "--pa-schedule",
            "--fade-iters",
            "--data-dir",
            "--eval-every",
            "--eval-samples",
            "--eval-fid-reference",
            "--resize-mode",
            "--checkpoint-every",
            "--checkpoint-minutes",
            "--loss",
            "--gp",
        ],
    );
    expect("resume", &["--iters", "--data-dir", "--device"]);
    expect(
        "fid",
        &[
            "--reference",
            "--n",
            "--kid",
            "--backend",
            "--resize-mode",
            "--json",
        ],
    );
    expect("stats", &["--dataset", "--split", "--out", "--no-features"]);
    expect("sample", &["--z", "--format", "--n", "--seed", "--out"]);
    expect("sweep", &["--dry-run", "--jobs", "--seeds", "--set"]);
    // The choices are listed with what they mean.
    let train = run_ok(bin().args(["train", "--help"]));
    for word in ["off", "input", "feat", "hinge", "wgan-gp", "zero-centred"] {
        assert!(train.contains(word), "train --help does not list `{word}`");
    }
}

#[test]
fn bad_flags_and_values_exit_2_with_a_message_and_failures_exit_1() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("r");
    let train = |extra: &[&str]| {
        let mut c = bin();
        c.args(["train", "--dataset", "fashion-mnist", "--out"])
            .arg(&out)
            .args(extra);
        c
    };
    // clap's own checks: unknown flag, unknown choice, not a number.
    let e = run_exit(&mut train(&["--no-such-flag"]), 2);
    assert!(e.contains("--no-such-flag"), "{e}");
    let e = run_exit(&mut train(&["--pa", "sideways"]), 2);
    assert!(e.contains("sideways") && e.contains("input"), "{e}");
    let e = run_exit(&mut train(&["--batch", "many"]), 2);
    assert!(e.contains("many"), "{e}");
    // Values the configuration refuses, before any data is read.
    let e = run_exit(&mut train(&["--batch", "0"]), 2);
    assert!(e.contains("--batch"), "{e}");
    let e = run_exit(&mut train(&["--loss", "hinge", "--label-smoothing", "0.1"]), 2);
    assert!(e.contains("--label-smoothing"), "{e}");
    let e = run_exit(&mut train(&["--start-level", "9", "--max-level", "4"]), 2);
    assert!(e.contains("--start-level"), "{e}");
    let e = run_exit(&mut train(&["--seeds", "3,3"]), 2);
    assert!(e.contains("repeats"), "{e}");
    let e = run_exit(&mut train(&["--seeds", "1,2", "--d-dropout", "0.2"]), 2);
    assert!(
        e.contains("cannot be stacked") && e.contains("--d-dropout"),
        "{e}"
    );
    let e = run_exit(
        bin()
            .args(["train", "--dataset", "imagenet", "--out"])
            .arg(tmp.path().join("i")),
        2,
    );
    assert!(e.contains("imagenet") && e.contains("fashion-mnist"), "{e}");
    let e = run_exit(
        bin().args(["sample", "x", "--format", "npy", "--out", "o.npy"]),
        2,
    );
    assert!(e.contains("--z"), "{e}");
    // An --out that does not say PNG (a typo could name a run's config.json), and a grid
    // too large to be meant, are refused before the run is read.
    let e = run_exit(bin().args(["sample", "x", "--out", "config.json"]), 2);
    assert!(e.contains("must end in .png"), "{e}");
    let e = run_exit(
        bin().args(["sample", "x", "--n", "100000000", "--out", "g.png"]),
        2,
    );
    assert!(e.contains("--n must be 1..=100000"), "{e}");
    // A model name pagan-serve would not load.
    let e = run_exit(bin().args(["export", "x", "--out", "models/my model!"]), 2);
    assert!(e.contains("model folder's name"), "{e}");
    assert!(!out.exists(), "a refused run must not leave a folder");

    // Failures of the work itself exit 1 and say what to do.
    let e = run_exit(
        bin()
            .args(["train", "--dataset", "cifar10", "--data-dir"])
            .arg(tmp.path())
            .arg("--out")
            .arg(tmp.path().join("c")),
        1,
    );
    assert!(e.contains("cifar") && e.contains("fetch"), "{e}");
    let e = run_exit(bin().args(["resume"]).arg(tmp.path().join("nothing")), 1);
    assert!(e.contains("config.json"), "{e}");
    // A missing reference names the file and says why once (the cause is not repeated).
    let missing = tmp.path().join("no-such-reference.npz");
    let e = run_exit(bin().args(["fid", "nothing", "--reference"]).arg(&missing), 1);
    assert!(e.contains("no-such-reference.npz"), "{e}");
    assert_eq!(e.matches("os error 2").count(), 1, "{e}");
}

#[test]
fn train_resume_sample_export_on_fashion_mnist() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let common = ["--device", "cpu", "--quiet"];
    run_ok(
        bin()
            .args([
                "train",
                "--dataset",
                "fashion-mnist",
                "--preset",
                "demo",
                "--pa",
                "input",
                "--limit",
                "256",
            ])
            .args([
                "--batch",
                "8",
                "--iters",
                "4",
                "--log-every",
                "1",
                "--checkpoint-every",
                "2",
            ])
            .args(["--pa-schedule", "every:2", "--data-dir"])
            .arg(repo().join("data"))
            .arg("--out")
            .arg(&run)
            .args(common),
    );
    for f in [
        "config.json",
        "metrics.jsonl",
        "samples/latest.png",
        "checkpoints/latest.json",
    ] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    let resumed = run_ok(
        bin()
            .env("RUST_LOG", "info")
            .arg("resume")
            .arg(&run)
            .args(["--iters", "6", "--cuda-graph"])
            .args(common),
    );
    // The resume trains on the same --limit subset as the run it continues.
    assert!(resumed.contains("images=256"), "{resumed}");
    // A CUDA graph needs a CUDA device: the log says the step ran eager, and why.
    assert!(
        resumed.contains("step mode: eager (CUDA graphs need a CUDA device"),
        "{resumed}"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
    // Each line reports the level its iterations trained at; every:2 raises it after 2, 4 and 6.
    assert_eq!(metrics.lines().count(), 6);
    assert!(
        metrics
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"iter\":6") && l.contains("\"pa_level\":2"))
    );

    let grid = tmp.path().join("grid.png");
    run_ok(
        bin()
            .arg("sample")
            .arg(&run)
            .args(["--n", "16", "--seed", "3", "--out"])
            .arg(&grid)
            .args(common),
    );
    let img = image::open(&grid).expect("grid is a PNG");
    assert_eq!((img.width(), img.height()), (4 * 30 + 2, 4 * 30 + 2));

    let z: Vec<f32> = pagan_shared::latent::uniform(5, 3, 128);
    let zp = tmp.path().join("z.npy");
    pagan_shared::npy::write(&zp, &z, &[3, 128]).expect("z.npy");
    let sample_npy = |out: &Path| {
        run_ok(
            bin()
                .arg("sample")
                .arg(&run)
                .args(["--format", "npy", "--z"])
                .arg(&zp)
                .arg("--out")
                .arg(out)
                .args(common),
        );
        pagan_shared::npy::read(out).expect("x.npy")
    };
    let (x, shape) = sample_npy(&tmp.path().join("x.npy"));
    assert_eq!(shape, vec![3, 1, 28, 28]);
    assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Same latents again: identical output (eval mode, no randomness).
    assert_eq!(sample_npy(&tmp.path().join("x2.npy")).0, x);

    let model = tmp.path().join("models/fm-tiny");
    let text = run_ok(
        bin()
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(&model)
            .args(common),
    );
    assert!(text.contains("max |diff|"), "{text}");
    for f in ["generator.onnx", "manifest.json", "samples.png"] {
        assert!(model.join(f).exists(), "export lacks {f}");
    }
}

/// `bench --profile` writes where an iteration's time goes: per-iteration counts that follow
/// from the step (one fused Adam call per network, however many runs are stacked), the
/// convolutions' backward timed, and a Chrome trace.
#[test]
fn bench_profile_writes_a_table_of_where_the_time_goes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (table, trace) = (tmp.path().join("p.md"), tmp.path().join("t.json"));
    let out = run_ok(
        bin()
            .args([
                "bench",
                "--preset",
                "demo",
                "--iters",
                "1",
                "--warmup",
                "1",
                "--repeats",
                "1",
            ])
            .args([
                "--threads",
                "1",
                "--models",
                "2",
                "--profile-iters",
                "3",
                "--profile",
                table.to_str().expect("utf-8 path"),
                "--profile-trace",
                trace.to_str().expect("utf-8 path"),
            ]),
    );
    assert!(out.contains("\"models\":2"), "{out}");
    let text = std::fs::read_to_string(&table).expect("profile table");
    assert!(text.contains("2 model(s), eager, 3 iterations"), "{text}");
    assert!(
        text.contains("wall: ") && text.contains("host operators (self time): "),
        "{text}"
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.ends_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row {name}: {text}"))
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Columns: ms/iter, share, calls/iter, name.
    assert_eq!(row("aten::_fused_adam_")[2], "2.0", "{text}");
    let conv_back: f64 = row("aten::convolution_backward")[0].parse().expect("ms");
    assert!(conv_back > 0.0, "{text}");
    let trace = std::fs::read_to_string(&trace).expect("trace");
    assert!(trace.contains("traceEvents") && trace.contains("aten::convolution_backward"));
    // --profile-trace without --profile is refused.
    run_exit(bin().args(["bench", "--profile-trace", "x.json"]), 2);
}

/// A bad `PAGAN_STACK_KERNELS` is refused with the valid words before any run folder exists.
#[test]
fn a_bad_stack_kernels_setting_is_refused_before_a_run_folder_exists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("r");
    let err = run_exit(
        bin()
            .env("PAGAN_STACK_KERNELS", "fast")
            .args([
                "train",
                "--dataset",
                "fashion-mnist",
                "--seeds",
                "0,1",
                "--iters",
                "2",
                "--quiet",
            ])
            .args(["--device", "cpu", "--out", out.to_str().expect("utf-8 path")]),
        2,
    );
    assert!(
        err.contains("PAGAN_STACK_KERNELS") && err.contains("streams"),
        "{err}"
    );
    assert!(!tmp.path().join("r-s0").exists() && !tmp.path().join("r-s1").exists());
    // A sweep, whose children read it, refuses it before making their folders.
    let sweep_out = tmp.path().join("sweep");
    let file = repo().join("experiments/fmnist-demo.toml");
    let err = run_exit(
        bin()
            .env("PAGAN_STACK_KERNELS", "fast")
            .arg("sweep")
            .arg(&file)
            .args(["--stack", "--out", sweep_out.to_str().expect("utf-8 path")]),
        2,
    );
    assert!(err.contains("PAGAN_STACK_KERNELS"), "{err}");
    assert!(!sweep_out.exists());
}

/// Bad run settings and folders are refused with exit 2 before any run folder is created
/// or any data is read: `--limit 0`, an FID reference of another feature width, a folder
/// holding another run's metrics, a `--seeds` set where one folder is taken (none of the
/// others is created), `resume` naming one folder twice, a run that evaluates without the
/// Inception weights, and `fid` given dataset flags for a folder of images.
#[test]
fn bad_run_settings_and_taken_folders_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| tmp.path().join(name);
    let train = |out: &Path, extra: &[&str]| {
        let mut c = bin();
        c.args([
            "train",
            "--dataset",
            "fashion-mnist",
            "--iters",
            "2",
            "--device",
            "cpu",
            "--quiet",
        ])
        .args(extra)
        .arg("--out")
        .arg(out);
        c
    };
    let e = run_exit(&mut train(&p("zero"), &["--limit", "0"]), 2);
    assert!(e.contains("--limit must be at least 1"), "{e}");
    assert!(!p("zero").exists());

    let small = p("mu64.npz");
    let g = pagan_shared::stats::Gaussian::new(vec![0.0; 64], identity(64), Some(100)).expect("gaussian");
    pagan_shared::write_stats_npz(&small, &g, None).expect("npz");
    let e = run_exit(
        &mut train(
            &p("ref"),
            &["--eval-fid-reference", small.to_str().expect("utf-8")],
        ),
        2,
    );
    assert!(e.contains("64-d") && e.contains("2048"), "{e}");
    assert!(!p("ref").exists());

    std::fs::create_dir_all(p("stale")).expect("mkdir");
    std::fs::write(p("stale").join("metrics.jsonl"), "{\"iter\":999}\n").expect("write");
    let e = run_exit(&mut train(&p("stale"), &[]), 2);
    assert!(e.contains("metrics.jsonl"), "{e}");
    let kept = std::fs::read_to_string(p("stale").join("metrics.jsonl")).expect("read");
    assert_eq!(kept, "{\"iter\":999}\n");

    std::fs::create_dir_all(p("st-s1")).expect("mkdir");
    std::fs::write(p("st-s1").join("config.json"), "{}").expect("write");
    let e = run_exit(&mut train(&p("st"), &["--seeds", "0,1"]), 2);
    assert!(e.contains("st-s1") && e.contains("already holds a run"), "{e}");
    assert!(!p("st-s0").exists(), "st-s0 created although st-s1 was taken");

    let e = run_exit(bin().arg("resume").arg(p("st-s1")).arg(p("st-s1")), 2);
    assert!(e.contains("named twice"), "{e}");

    // A run that evaluates (the paper preset, every 10k) needs the Inception weights: refused
    // at the start, not at its first evaluation.
    let e = run_exit(
        train(&p("noweights"), &[]).env("PAGAN_INCEPTION_WEIGHTS", p("no-such-inception.pt")),
        2,
    );
    assert!(
        e.contains("no-such-inception.pt") && e.contains("--eval-every 0"),
        "{e}"
    );
    assert!(!p("noweights").exists());
    // `bench` never evaluates: it needs no weights, even at the paper preset's widths (a
    // device call benchmarks before the weights arrive).
    let out = run_ok(
        bin()
            .env("PAGAN_INCEPTION_WEIGHTS", p("no-such-inception.pt"))
            .args([
                "bench", "--preset", "paper", "--image", "1x28x28", "--device", "cpu",
            ])
            .args(["--iters", "1", "--warmup", "1", "--repeats", "1"]),
    );
    assert!(out.contains("\"it_per_s\""), "{out}");

    // `fid` refuses dataset flags for a target that is not a dataset (they would be ignored).
    std::fs::create_dir_all(p("images")).expect("mkdir");
    for flag in [["--split", "test"], ["--data-dir", "data"]] {
        let e = run_exit(
            bin()
                .arg("fid")
                .arg(p("images"))
                .arg("--reference")
                .arg(&small)
                .args(flag),
            2,
        );
        assert!(e.contains(flag[0]) && e.contains("an image folder"), "{e}");
    }
}

fn identity(d: usize) -> Vec<f64> {
    (0..d * d)
        .map(|i| if i % (d + 1) == 0 { 1.0 } else { 0.0 })
        .collect()
}
