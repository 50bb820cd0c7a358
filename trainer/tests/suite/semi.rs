//! The semi-supervised GAN on MNIST with 100 labels: a tiny run's test accuracy beats chance
//! and is logged at every evaluation, for the GAN and for the supervised-only baseline.

use pagan_trainer::config::{AdamConfig, Preset};
use pagan_trainer::data::{self, DatasetSpec, Split};
use pagan_trainer::semi::{self, SemiConfig, SemiGLoss};
use tch::Device;

use crate::common::{repo, torch_rng};

#[test]
fn a_tiny_semi_supervised_run_beats_chance_and_logs_its_accuracy() {
    let _rng = torch_rng();
    let dir = repo().join("data");
    assert!(
        dir.join("mnist/train-images-idx3-ubyte.gz").exists(),
        "MNIST is missing under data/: run `make setup`"
    );
    let train = data::load(&DatasetSpec::Mnist, Split::Train, &dir, None).expect("mnist train");
    let test = data::load(&DatasetSpec::Mnist, Split::Test, &dir, Some(1000)).expect("mnist test");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut finals = Vec::new();
    for (supervised_only, g_loss) in [
        (false, SemiGLoss::FeatureMatching),
        (true, SemiGLoss::FeatureMatching),
    ] {
        let cfg = SemiConfig {
            arch: Preset::Demo.arch([1, 28, 28]),
            classes: 10,
            labels: 100,
            iters: 100,
            batch: 64,
            adam: AdamConfig {
                lr: 2e-4,
                beta1: 0.5,
                ..AdamConfig::default()
            },
            seed: 0,
            eval_every: 50,
            g_loss,
            supervised_only,
        };
        let out = tmp
            .path()
            .join(if supervised_only { "baseline" } else { "ssgan" });
        let lines = semi::train(&cfg, &train, &test, Device::Cpu, &out, true).expect("train");
        let logged: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
            .expect("metrics")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(logged.len(), 2, "{logged:?}");
        assert_eq!(logged[1]["iter"], 100);
        let acc = logged[1]["test_accuracy"].as_f64().expect("accuracy");
        assert_eq!(acc, lines[1].test_accuracy);
        finals.push(acc);
        println!(
            "supervised_only = {supervised_only}: test accuracy {acc} after 100 iterations (chance 0.1)"
        );
        assert!(
            acc > 0.2,
            "supervised_only = {supervised_only}: accuracy {acc} does not beat chance (0.1)"
        );
        if !supervised_only {
            assert!(logged[1]["loss_unsupervised"].as_f64().is_some_and(|v| v > 0.0));
        }
    }
    // `pagan-train report` on the two runs: their accuracy curves and table.
    let report = tmp.path().join("report");
    pagan_trainer::experiments::report::run(pagan_trainer::experiments::report::ReportOptions {
        inputs: vec![tmp.path().to_path_buf()],
        out: report.clone(),
        title: None,
    })
    .expect("report");
    let md = std::fs::read_to_string(report.join("results.md")).expect("results.md");
    for run in [
        "| ssgan | 100 | SGAN | 100 |",
        "| baseline | 100 | classifier on the labels alone | 100 |",
    ] {
        assert!(md.contains(run), "{run} missing from:\n{md}");
    }
    for acc in finals {
        assert!(
            md.contains(&format!("**{acc:.4}**")),
            "final accuracy {acc} missing from:\n{md}"
        );
    }
    assert!(report.join("accuracy.png").is_file() && report.join("accuracy.svg").is_file());
    // Labels must split evenly over the classes.
    let bad = SemiConfig {
        arch: Preset::Demo.arch([1, 28, 28]),
        classes: 10,
        labels: 15,
        iters: 1,
        batch: 4,
        adam: AdamConfig::default(),
        seed: 0,
        eval_every: 1,
        g_loss: SemiGLoss::NonSaturating,
        supervised_only: false,
    };
    let err =
        semi::train(&bad, &train, &test, Device::Cpu, &tmp.path().join("bad"), true).expect_err("15 labels");
    assert!(err.to_string().contains("multiple of the 10 classes"), "{err}");
}
