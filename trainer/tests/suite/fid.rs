//! `pagan-train stats`, `fid` and evaluation during training, end to end on real
//! Fashion-MNIST with the real FID Inception (small image counts: CPU Inception runs at a
//! few images per second). Statistics are checked against numpy on the stored features,
//! a folder's statistics against an independent float64 pipeline (PIL, numpy TF1 resize,
//! the TorchScript module, scipy), and training-time evaluation against `pagan-train fid`.

use std::path::Path;

use crate::common::{bin, json, python, repo, require_fashion_mnist, run_exit, run_ok, weights};

/// Writes test-split statistics of `n` images (seed 0) to `out`.
fn stats(out: &Path, n: usize) {
    require_fashion_mnist();
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
    let mut rng = pagan_shared::rng::SplitMix64::new(0);
    let picked = pagan_shared::rng::sample_without_replacement(&mut rng, set.len(), 10);
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
    let err = run_exit(
        bin()
            .args([
                "fid",
                "fashion-mnist",
                "--n",
                "10",
                "--kid",
                "--quiet",
                "--reference",
            ])
            .arg(&foreign),
        1,
    );
    assert!(err.contains("features"), "{err}");
}

#[test]
fn training_evaluations_drive_the_kid_rule_and_equal_pagan_train_fid() {
    let dir = tempfile::tempdir().expect("tmp");
    let refp = dir.path().join("ref.npz");
    stats(&refp, 8);
    let runp = dir.path().join("run");
    // The KID rule without evaluations is refused up front, as a bad value (exit 2).
    let err = run_exit(
        bin()
            .args([
                "train",
                "--dataset",
                "fashion-mnist",
                "--preset",
                "demo",
                "--iters",
                "2",
            ])
            .args(["--pa-schedule", "kid", "--out"])
            .arg(dir.path().join("bad")),
        2,
    );
    assert!(err.contains("--eval-every"), "{err}");

    let (seed, iters, every, samples) = (3u64, 15u64, 3u64, 8usize);
    run_ok(
        bin()
            .arg("train")
            .args(pagan_e2e::TINY_RUN)
            .args(["--iters", &iters.to_string(), "--log-every", "2"])
            .args([
                "--eval-every",
                &every.to_string(),
                "--eval-samples",
                &samples.to_string(),
            ])
            .args([
                "--seed",
                &seed.to_string(),
                "--pa-schedule",
                "kid",
                "--quiet",
                "--eval-prdc",
            ])
            .args(["--device", "cpu", "--eval-fid-reference"])
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
    let eval_iters: Vec<u64> = evals.iter().filter_map(|l| l["iter"].as_u64()).collect();
    assert_eq!(eval_iters, vec![3, 6, 9, 12, 15], "{lines:?}");
    for e in &evals {
        assert!(e["kid"].as_f64().is_some_and(f64::is_finite));
        assert!(e["kid_std"].as_f64().is_some_and(|s| s >= 0.0));
        assert!(e["fid"].as_f64().is_some_and(|f| f.is_finite() && f > 0.0));
    }
    // Every evaluation line says what its numbers were computed with.
    let weights_sha = pagan_shared::manifest::sha256_hex(
        &std::fs::read(pagan_trainer::config::default_inception_weights()).expect("weights"),
    );
    let ref_sha = pagan_shared::manifest::sha256_hex(&std::fs::read(&refp).expect("reference"));
    for e in &evals {
        let p = &e["provenance"];
        assert_eq!(p["resize_mode"], "asymmetric", "{p}");
        assert_eq!(p["resize_mode_source"], "reference", "{p}");
        assert_eq!(p["reference_sha256"], ref_sha.as_str());
        assert_eq!(p["extractor"]["weights_sha256"], weights_sha.as_str());
        assert_eq!(p["n"], samples as u64);
        assert!(
            e["prdc"]["precision"]
                .as_f64()
                .is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{e}"
        );
    }
    // Lines without an evaluation carry no eval fields.
    assert!(lines.iter().any(|l| l["iter"] == 2 && l.get("kid").is_none()));

    // The rule, replayed on the logged KIDs (pagan_trainer's schedule, fed as the trainer
    // feeds it), gives exactly the level the run reports after each evaluation: the run
    // really consulted it. The run must have levelled up at least once, or this proves
    // nothing (the seed is chosen so that it does: KID of a barely trained G plateaus).
    use pagan_trainer::config::ScheduleSpec;
    use pagan_trainer::objective::schedule::{self, ScheduleInput};
    let mut rule = schedule::build(&ScheduleSpec::Kid);
    let mut level = 0i64;
    let mut ups = 0;
    for e in &evals {
        let input = ScheduleInput {
            iter: e["iter"].as_u64().unwrap_or(0),
            level,
            kid: e["kid"].as_f64(),
        };
        if rule.should_level_up(&input) {
            level += 1;
            ups += 1;
            rule.on_level_up(input.iter);
        }
        let next = lines.iter().find(|l| l["iter"].as_u64() > Some(input.iter));
        if let Some(next) = next {
            assert_eq!(
                next["pa_level"].as_i64(),
                Some(level),
                "after the evaluation at {}: {lines:?}",
                input.iter
            );
        }
    }
    assert!(
        ups >= 1,
        "no level-up in the replay (KIDs {eval_iters:?}): the test would prove nothing; {lines:?}"
    );

    // The last evaluation (iteration 15, the final checkpoint) and `pagan-train fid` on the
    // run with the same latents are one path: the same number.
    let eval_seed = pagan_trainer::rng::derive_seed(seed, pagan_trainer::rng::stream::EVAL_Z, iters);
    let logged = evals.last().and_then(|e| e["fid"].as_f64()).expect("final fid");
    let cli = json(&run_ok(
        bin()
            .arg("fid")
            .arg(&runp)
            .args(["--n", &samples.to_string(), "--seed", &eval_seed.to_string()])
            .args(["--json", "--quiet", "--device", "cpu", "--reference"])
            .arg(&refp),
    ));
    let cli_fid = cli["fid"].as_f64().expect("fid");
    assert!(
        ((cli_fid - logged) / logged).abs() < 1e-9,
        "training-time FID {logged} vs pagan-train fid {cli_fid}"
    );

    // Its precision/recall/density/coverage are against the training subset KID uses: the
    // same eight training images as a folder reference give `pagan-train fid --prdc` the
    // same numbers.
    let picks = pagan_shared::rng::sample_without_replacement(
        &mut pagan_shared::rng::SplitMix64::new(pagan_trainer::rng::derive_seed(
            seed,
            pagan_trainer::rng::stream::EVAL_REAL,
            0,
        )),
        64,
        samples,
    );
    let train = pagan_trainer::data::load(
        &pagan_trainer::data::DatasetSpec::FashionMnist,
        pagan_trainer::data::Split::Train,
        &repo().join("data"),
        Some(64),
    )
    .expect("fashion-mnist train split");
    let subset = dir.path().join("kid-subset");
    std::fs::create_dir_all(&subset).expect("mkdir");
    for &i in &picks {
        let img = image::GrayImage::from_raw(28, 28, train.image(i).to_vec()).expect("image");
        img.save(subset.join(format!("{i:05}.png"))).expect("png");
    }
    let subset_ref = dir.path().join("kid-subset.npz");
    run_ok(
        bin()
            .args(["stats", "--dataset"])
            .arg(format!("folder:{}", subset.display()))
            .args(["--split", "train", "--quiet", "--device", "cpu", "--out"])
            .arg(&subset_ref),
    );
    let cli_prdc = json(&run_ok(
        bin()
            .arg("fid")
            .arg(&runp)
            .args([
                "--n",
                &samples.to_string(),
                "--seed",
                &eval_seed.to_string(),
                "--prdc",
            ])
            .args(["--json", "--quiet", "--device", "cpu", "--reference"])
            .arg(&subset_ref),
    ))["prdc"]
        .clone();
    let logged_prdc = &evals.last().expect("eval")["prdc"];
    assert_eq!(
        &cli_prdc, logged_prdc,
        "training-time PRDC vs pagan-train fid --prdc"
    );

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

/// PNGs of Fashion-MNIST test images `from..from + n` in `dir`.
fn write_pngs(dir: &Path, from: usize, n: usize) {
    require_fashion_mnist();
    let set = pagan_trainer::data::load(
        &pagan_trainer::data::DatasetSpec::FashionMnist,
        pagan_trainer::data::Split::Test,
        &repo().join("data"),
        None,
    )
    .expect("fashion-mnist test split");
    std::fs::create_dir_all(dir).expect("mkdir");
    for i in from..from + n {
        let img = image::GrayImage::from_raw(28, 28, set.image(i).to_vec()).expect("image");
        img.save(dir.join(format!("{i:05}.png"))).expect("png");
    }
}

#[test]
fn folder_statistics_and_fid_match_an_independent_float64_pipeline() {
    // The bug this guards: `stats --dataset folder:` used to resize every image to 64x64
    // before Inception (FID 59.0 where 38.06 was right on 500 images).
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write_pngs(&a, 0, 16);
    write_pngs(&b, 100, 12);
    let script = repo().join("trainer/tests/py/folder_fid_reference.py");
    let w = weights();
    for (folder, out) in [(&a, "a_py.npz"), (&b, "b_py.npz")] {
        let st = python()
            .arg(&script)
            .arg("stats")
            .arg(&w)
            .arg(folder)
            .arg(dir.path().join(out))
            .status()
            .expect("python");
        assert!(
            st.success(),
            "the reference pipeline failed on {}",
            folder.display()
        );
    }
    let ours = dir.path().join("a_ours.npz");
    run_ok(
        bin()
            .arg("stats")
            .arg("--dataset")
            .arg(format!("folder:{}", a.display()))
            .args(["--split", "train", "--quiet", "--device", "cpu", "--out"])
            .arg(&ours),
    );
    // Statistics: ours (tch, float32 resize, f64 accumulation) vs the float64 pipeline.
    let check = "import sys, numpy as np\n\
        a, b = np.load(sys.argv[1]), np.load(sys.argv[2])\n\
        assert int(a['n']) == 16 and a['features'].shape == (16, 2048), a['features'].shape\n\
        rel = lambda x, y: float(np.abs(x - y).max() / np.abs(y).max())\n\
        r = (rel(a['mu'], b['mu']), rel(a['sigma'], b['sigma']))\n\
        print(r)\n\
        assert r[0] < 1e-5 and r[1] < 1e-5, r\n";
    let out = python()
        .args(["-c", check])
        .arg(&ours)
        .arg(dir.path().join("a_py.npz"))
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "folder statistics differ from the independent pipeline: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // FID of folder b against folder a's statistics: ours vs scipy on the reference features.
    let want = python()
        .arg(&script)
        .arg("fid")
        .arg(dir.path().join("a_py.npz"))
        .arg(dir.path().join("b_py.npz"))
        .output()
        .expect("python");
    assert!(want.status.success(), "{}", String::from_utf8_lossy(&want.stderr));
    let want = json(&String::from_utf8_lossy(&want.stdout))["fid"]
        .as_f64()
        .expect("scipy fid");
    let got = json(&run_ok(
        bin()
            .arg("fid")
            .arg(&b)
            .args(["--json", "--quiet", "--device", "cpu", "--reference"])
            .arg(&ours),
    ))["fid"]
        .as_f64()
        .expect("fid");
    println!("folder FID: ours {got}, independent {want}");
    assert!(
        ((got - want) / want).abs() < 1e-4,
        "FID {got} vs the independent {want}"
    );
    // `fid folder:PATH` (a dataset spec) and `fid PATH` (a folder) are the same images.
    let spec = json(&run_ok(
        bin()
            .arg("fid")
            .arg(format!("folder:{}", b.display()))
            .args([
                "--split",
                "train",
                "--json",
                "--quiet",
                "--device",
                "cpu",
                "--reference",
            ])
            .arg(&ours),
    ))["fid"]
        .as_f64()
        .expect("fid");
    assert_eq!(spec, got);
}
