//! `pagan-train stats`, `fid` and evaluation during training, end to end on real
//! Fashion-MNIST with the real FID Inception (small image counts: CPU Inception runs at a
//! few images per second). Statistics are checked against numpy on the stored features.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pagan-train"));
    c.env("RUST_LOG", "error");
    c
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("spawn pagan-train");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(cmd: &mut Command) -> String {
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "command failed: {cmd:?}\n{stdout}{stderr}");
    stdout
}

fn python() -> Command {
    Command::new(std::env::var("PAGAN_PYTHON").unwrap_or_else(|_| "python3".into()))
}

fn json(text: &str) -> serde_json::Value {
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Writes test-split statistics of `n` images (seed 0) to `out`.
fn stats(out: &Path, n: usize) {
    run_ok(
        bin()
            .args([
                "stats",
                "--dataset",
                "fashion-mnist",
                "--split",
                "test",
                "--n",
                &n.to_string(),
                "--quiet",
                "--out",
            ])
            .arg(out),
    );
}

#[test]
fn stats_file_matches_numpy_on_its_features_and_fid_of_the_same_images_is_zero() {
    let dir = tempfile::tempdir().expect("tmp");
    let refp = dir.path().join("ref.npz");
    stats(&refp, 10);
    // numpy recomputes mean and covariance from the stored features: our f64 streaming
    // accumulation must agree to 1e-6 relative.
    let check = "import sys, numpy as np\n\
        f = np.load(sys.argv[1], allow_pickle=False)\n\
        x = f['features'].astype(np.float64)\n\
        assert x.shape == (10, 2048), x.shape\n\
        assert int(f['n']) == 10 and str(f['resize_mode']) == 'asymmetric'\n\
        mu, sigma = x.mean(0), np.cov(x, rowvar=False)\n\
        rel = lambda a, b: np.abs(a - b).max() / np.abs(b).max()\n\
        assert rel(f['mu'], mu) < 1e-6, rel(f['mu'], mu)\n\
        assert rel(f['sigma'], sigma) < 1e-6, rel(f['sigma'], sigma)\n\
        print('ok', rel(f['mu'], mu), rel(f['sigma'], sigma))\n";
    let out = python().args(["-c", check]).arg(&refp).output().expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The same 10 images scored against their own statistics: FID 0.
    let v = json(&run_ok(
        bin()
            .args([
                "fid",
                "fashion-mnist",
                "--split",
                "test",
                "--n",
                "10",
                "--json",
                "--kid",
                "--quiet",
                "--reference",
            ])
            .arg(&refp),
    ));
    let fid = v["fid"].as_f64().expect("fid");
    assert!(fid.abs() < 1e-6, "FID of a set with itself: {fid}");
    assert_eq!(v["n"], 10);
    assert_eq!(v["resize_mode"], "asymmetric");
    assert!(v["kid"].as_f64().expect("kid").is_finite());

    // The same images as PNG files (a folder target: native size, grey stays grey): FID 0.
    let set = pagan_trainer::data::load(
        &pagan_trainer::data::DatasetSpec::FashionMnist,
        pagan_trainer::data::Split::Test,
        &pagan_trainer::data::resolve_data_dir(None),
        None,
    )
    .expect("fashion-mnist test split (make setup)");
    let mut rng = pagan_shared::kid::SplitMix64::new(0);
    let picked = pagan_shared::kid::sample_without_replacement(&mut rng, set.len(), 10);
    let pngs = dir.path().join("pngs");
    std::fs::create_dir_all(pngs.join("sub")).expect("mkdir");
    for (k, &i) in picked.iter().enumerate() {
        let img = image::GrayImage::from_raw(28, 28, set.image(i).to_vec()).expect("image");
        // A nested folder and sorted names: the order must match the dataset order.
        let sub = if k >= 5 { "sub/" } else { "" };
        img.save(pngs.join(format!("{sub}{k:02}.png"))).expect("png");
    }
    let v = json(&run_ok(
        bin()
            .arg("fid")
            .arg(&pngs)
            .args(["--json", "--quiet", "--reference"])
            .arg(&refp),
    ));
    assert!(v["fid"].as_f64().expect("fid").abs() < 1e-6, "{v}");
    assert_eq!(v["n"], 10);
    // Mixed sizes and channels are batched by shape.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir_all(&mixed).expect("mkdir");
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]))
        .save(mixed.join("a.png"))
        .expect("png");
    image::GrayImage::from_fn(17, 23, |x, y| image::Luma([(x * y) as u8]))
        .save(mixed.join("b.jpg"))
        .expect("jpg");
    image::RgbImage::from_fn(40, 30, |x, _| image::Rgb([200, x as u8, 10]))
        .save(mixed.join("c.png"))
        .expect("png");
    let v = json(&run_ok(
        bin()
            .arg("fid")
            .arg(&mixed)
            .args(["--json", "--quiet", "--reference"])
            .arg(&refp),
    ));
    assert_eq!(v["n"], 3);
    assert!(v["fid"].as_f64().is_some_and(|f| f.is_finite() && f > 0.0), "{v}");

    // Other images: clearly positive, and the text form names mode and count.
    let text = run_ok(
        bin()
            .args([
                "fid",
                "fashion-mnist",
                "--split",
                "train",
                "--n",
                "10",
                "--quiet",
                "--reference",
            ])
            .arg(&refp),
    );
    assert!(
        text.contains("FID ") && text.contains("resize asymmetric") && text.contains("10 images"),
        "{text}"
    );

    // A foreign pytorch-fid file (mu and sigma only) scores FID but cannot give KID.
    let foreign = dir.path().join("foreign.npz");
    let st = python()
        .args([
            "-c",
            "import sys, numpy as np; f = np.load(sys.argv[1]); np.savez(sys.argv[2], mu=f['mu'], sigma=f['sigma'])",
        ])
        .arg(&refp)
        .arg(&foreign)
        .status()
        .expect("python");
    assert!(st.success());
    let v = json(&run_ok(
        bin()
            .args([
                "fid",
                "fashion-mnist",
                "--split",
                "test",
                "--n",
                "10",
                "--json",
                "--quiet",
                "--reference",
            ])
            .arg(&foreign),
    ));
    assert!((v["fid"].as_f64().expect("fid") - fid).abs() < 1e-6);
    let (ok, _, err) = run(bin()
        .args([
            "fid",
            "fashion-mnist",
            "--n",
            "10",
            "--kid",
            "--quiet",
            "--reference",
        ])
        .arg(&foreign));
    assert!(!ok && err.contains("features"), "{err}");
}

#[test]
fn training_evaluates_kid_and_fid_and_the_kid_schedule_runs_on_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let refp = dir.path().join("ref.npz");
    stats(&refp, 8);
    let runp = dir.path().join("run");
    // The KID rule without evaluations is refused up front.
    let (ok, _, err) = run(bin()
        .args([
            "train",
            "--dataset",
            "fashion-mnist",
            "--preset",
            "demo",
            "--iters",
            "2",
            "--pa-schedule",
            "kid",
            "--out",
        ])
        .arg(dir.path().join("bad")));
    assert!(!ok && err.contains("--eval-every"), "{err}");

    run_ok(
        bin()
            .args([
                "train",
                "--dataset",
                "fashion-mnist",
                "--preset",
                "demo",
                "--limit",
                "64",
                "--batch",
                "8",
                "--iters",
                "6",
                "--log-every",
                "2",
                "--eval-every",
                "3",
                "--eval-samples",
                "8",
                "--pa-schedule",
                "kid",
                "--quiet",
                "--eval-fid-reference",
            ])
            .arg(&refp)
            .arg("--out")
            .arg(&runp),
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(runp.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let evals: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("kid").is_some()).collect();
    assert_eq!(
        evals
            .iter()
            .map(|l| l["iter"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>(),
        vec![3, 6],
        "{lines:?}"
    );
    for e in &evals {
        assert!(e["kid"].as_f64().is_some_and(f64::is_finite));
        assert!(e["kid_std"].as_f64().is_some_and(|s| s >= 0.0));
        assert!(e["fid"].as_f64().is_some_and(|f| f.is_finite() && f > 0.0));
    }
    // Lines without an evaluation carry no eval fields.
    assert!(lines.iter().any(|l| l["iter"] == 2 && l.get("kid").is_none()));
    // Two evaluations are too few for the KID rule (it needs two previous values).
    assert!(lines.iter().all(|l| l["pa_level"] == 0));

    // `fid` on the run folder: tch and the exported ONNX graph agree.
    let inc = dir.path().join("inception");
    run_ok(bin().args(["export-inception", "--out"]).arg(&inc));
    let score = |backend: &str| {
        json(&run_ok(
            bin()
                .arg("fid")
                .arg(&runp)
                .args([
                    "--n",
                    "8",
                    "--json",
                    "--quiet",
                    "--backend",
                    backend,
                    "--inception",
                ])
                .arg(&inc)
                .arg("--reference")
                .arg(&refp),
        ))["fid"]
            .as_f64()
            .expect("fid")
    };
    let (t, o) = (score("tch"), score("onnx"));
    assert!(((t - o) / t).abs() < 1e-4, "tch FID {t} vs ONNX FID {o}");
}
