//! The training step's numbers, pinned: per-iteration D and G losses and a weight checksum
//! of tiny runs (PA input with level-ups and fade-in, PA feat, no PA with the R1 penalty,
//! hinge with the 1-centred penalty), recorded in `fixtures/step_golden.json` (one CPU
//! thread). A change to what the step computes shows up here as a difference far above the
//! tolerance, which only allows for other CPUs' kernels rounding differently. Re-recorded
//! when Adam became libtorch's fused kernel (same formula, other rounding: iteration 1
//! identical, then differences growing from ~1e-9 to at most 6e-4 by iteration 12, as
//! float32 rounding does in GAN dynamics); git history has each recording's reason.

use std::path::Path;

use pagan_trainer::config::{GpKind, LossKind, PaMode, ScheduleSpec, TrainConfig, TrainOverrides};
use pagan_trainer::run_dir::RunDir;
use pagan_trainer::train::{RunOptions, Trainer};
use serde_json::{Value, json};
use tch::Device;

use crate::common::{synthetic_set, tiny_config, torch_rng};

const ITERS: u64 = 12;
const FIXTURE: &str = "tests/suite/fixtures/step_golden.json";

fn cases() -> Vec<(&'static str, TrainConfig)> {
    let base = |o: TrainOverrides| {
        tiny_config(TrainOverrides {
            batch: Some(8),
            iters: Some(ITERS),
            seed: Some(21),
            log_every: Some(1),
            sample_every: Some(1000),
            checkpoint_every: Some(1000),
            max_level: Some(3),
            ..o
        })
    };
    vec![
        (
            "pa-input-levels",
            base(TrainOverrides {
                pa: Some(PaMode::Input),
                start_level: Some(1),
                fade_iters: Some(4),
                schedule: Some(ScheduleSpec::Every(4)),
                ..TrainOverrides::default()
            }),
        ),
        (
            "pa-feat",
            base(TrainOverrides {
                pa: Some(PaMode::Feat),
                start_level: Some(2),
                schedule: Some(ScheduleSpec::Never),
                ..TrainOverrides::default()
            }),
        ),
        (
            "off-r1",
            base(TrainOverrides {
                pa: Some(PaMode::Off),
                gp: Some(GpKind::ZeroCentred),
                ..TrainOverrides::default()
            }),
        ),
        (
            "hinge-gp",
            base(TrainOverrides {
                pa: Some(PaMode::Input),
                start_level: Some(1),
                loss: Some(LossKind::Hinge),
                gp: Some(GpKind::OneCentred),
                schedule: Some(ScheduleSpec::Never),
                ..TrainOverrides::default()
            }),
        ),
    ]
}

/// Trains each case in a fresh folder; per case: losses per iteration and the sum of |w|
/// of G's output layer and D's first conv.
fn measure(root: &Path) -> Value {
    let _rng = torch_rng();
    tch::set_num_threads(1);
    let set = synthetic_set(48);
    let mut out = serde_json::Map::new();
    for (name, cfg) in cases() {
        let dir = root.join(name);
        let mut t = Trainer::create(cfg, &dir, Device::Cpu, &set).expect("trainer");
        t.run(RunOptions {
            quiet: true,
            ..Default::default()
        })
        .expect("run");
        let lines = RunDir::at(&dir).metrics().read().expect("metrics");
        let losses: Vec<[f64; 2]> = lines.iter().map(|m| [m.d_loss, m.g_loss]).collect();
        let (_, _, gan) = RunDir::at(&dir).load_gan(Device::Cpu).expect("gan");
        let abs_sum = |t: &tch::Tensor| t.abs().sum(tch::Kind::Double).double_value(&[]);
        let weights = [abs_sum(&gan.g.out.weight), abs_sum(&gan.d.convs[0].weight)];
        out.insert(name.into(), json!({ "losses": losses, "weights": weights }));
    }
    Value::Object(out)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

#[test]
fn the_step_computes_what_it_computed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let got = measure(tmp.path());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let want: Value = serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json");
    for (name, _) in cases() {
        let (g, w) = (&got[name], &want[name]);
        let (gl, wl) = (
            g["losses"].as_array().expect("losses"),
            w["losses"].as_array().expect("losses"),
        );
        assert_eq!(gl.len(), wl.len(), "{name}");
        for (i, (a, b)) in gl.iter().zip(wl).enumerate() {
            for j in 0..2 {
                let (x, y) = (
                    a[j].as_f64().unwrap_or(f64::NAN),
                    b[j].as_f64().unwrap_or(f64::NAN),
                );
                assert!(
                    close(x, y),
                    "{name}: iteration {} loss {j}: {x} vs recorded {y}",
                    i + 1
                );
            }
        }
        for j in 0..2 {
            let (x, y) = (
                g["weights"][j].as_f64().unwrap_or(f64::NAN),
                w["weights"][j].as_f64().unwrap_or(f64::NAN),
            );
            assert!(close(x, y), "{name}: weight checksum {j}: {x} vs recorded {y}");
        }
    }
}

/// Writes the fixture from the current code (run by hand, only when the step's numbers are
/// meant to change: `cargo test -p pagan-trainer --test suite -- --ignored write_step_golden`).
#[test]
#[ignore = "regenerates the fixture from the current code; run by hand"]
fn write_step_golden() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = measure(tmp.path());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    std::fs::write(&path, serde_json::to_vec_pretty(&v).expect("json")).expect("write fixture");
}
