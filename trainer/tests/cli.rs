//! The `pagan-train` binary end to end: help texts, a tiny training run on real
//! Fashion-MNIST (installed by `make setup`), resume, sampling (grid and --z npy), export.

use std::path::Path;

mod common;
use common::{bin, repo, require_fashion_mnist, run_ok};

#[test]
fn every_subcommand_explains_its_flags() {
    let top = run_ok(bin().arg("--help"));
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
    ] {
        assert!(top.contains(sub), "top-level help lacks {sub}");
    }
    let train = run_ok(bin().args(["train", "--help"]));
    for flag in [
        "--dataset",
        "--preset",
        "--pa",
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
    ] {
        assert!(train.contains(flag), "train --help lacks {flag}");
    }
    let fid = run_ok(bin().args(["fid", "--help"]));
    for flag in [
        "--reference",
        "--n",
        "--kid",
        "--backend",
        "--resize-mode",
        "--json",
    ] {
        assert!(fid.contains(flag), "fid --help lacks {flag}");
    }
    let sample = run_ok(bin().args(["sample", "--help"]));
    assert!(sample.contains("--z") && sample.contains("--format"));
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["train", "--dataset", "imagenet", "--out"])
        .arg(tmp.path().join("r"))
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("imagenet") && !err.contains("panicked"), "{err}");

    let out = bin()
        .args(["train", "--dataset", "cifar10", "--data-dir"])
        .arg(tmp.path())
        .arg("--out")
        .arg(tmp.path().join("c"))
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cifar") && err.contains("fetch") && !err.contains("panicked"),
        "{err}"
    );

    let out = bin()
        .args(["resume"])
        .arg(tmp.path().join("nothing"))
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("config.json") && !err.contains("panicked"),
        "{err}"
    );

    // A missing reference names the file and says why once (the cause is not repeated).
    let missing = tmp.path().join("no-such-reference.npz");
    let out = bin()
        .args(["fid", "nothing", "--reference"])
        .arg(&missing)
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no-such-reference.npz"),
        "{err}"
    );
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
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
                "--pa-schedule",
                "every:2",
            ])
            .arg("--data-dir")
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
            .args(["--iters", "6"])
            .args(common),
    );
    // The resume trains on the same --limit subset as the run it continues.
    assert!(resumed.contains("images=256"), "{resumed}");
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
