//! ONNX export of the generator: ORT against the tch eval forward, the official ONNX
//! checker, the model folder written by `export_run`, and the manifest contract.

use std::path::Path;

use pagan_shared::manifest::{ManifestError, ModelManifest};
use pagan_trainer::config::{Arch, PaMode, ScheduleSpec, TrainConfig, TrainOverrides};
use pagan_trainer::export::generator::{self as export, INPUT_NAME, OUTPUT_NAME, TOLERANCE};
use pagan_trainer::model::layers::BatchNorm;
use pagan_trainer::model::{Gan, Generator};
use pagan_trainer::objective::pa::PaState;
use pagan_trainer::onnx::proto::tensor_shape_proto::dimension as type_proto_dim;
use pagan_trainer::onnx::proto::{ModelProto, type_proto};
use pagan_trainer::onnx::runtime as ort_run;
use pagan_trainer::onnx::{IR_VERSION, OPSET};
use pagan_trainer::run_dir::checkpoint;
use pagan_trainer::run_dir::{CheckpointMeta, MetricsLine, RunDir};
use prost::Message;
use tch::{Device, Kind, Tensor, nn::VarStore};

use crate::common::{python, torch_rng};

/// Uniform values in [lo, hi) shaped like `t`, from our own seeded generator: the weights
/// of these tests must not depend on libtorch's process-wide generator, which a test
/// running at the same time can draw from (this test once saw a near-zero image that way).
fn seeded(t: &Tensor, seed: u64, lo: f64, hi: f64) -> Tensor {
    let n = t.numel();
    let u = pagan_shared::latent::uniform(seed, 1, n);
    let v = Tensor::from_slice(&u).view(t.size().as_slice());
    // latent::uniform draws in [-1, 1).
    (v + 1.0) * ((hi - lo) / 2.0) + lo
}

/// Gives every BN layer non-trivial running statistics (a few train-mode passes) and
/// affine parameters, and the biases non-zero values, so eval mode is really exercised.
fn perturb(g: &Generator, vs: &VarStore) {
    // Every trained weight from our own generator, at the DCGAN init's scale (std 0.02);
    // BN running statistics keep their (0, 1) start.
    let a = 0.02 * 3f64.sqrt();
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|x, y| x.0.cmp(&y.0));
    for (i, (_, t)) in vars.iter().enumerate() {
        let v = seeded(t, 1000 + i as u64, -a, a);
        tch::no_grad(|| t.shallow_clone().copy_(&v));
    }
    // Enough passes (momentum 0.1) for the running stats to approach the batch stats.
    for pass in 0..30 {
        let z = seeded(
            &Tensor::zeros([16, g.arch.latent], (Kind::Float, Device::Cpu)),
            pass,
            -1.0,
            1.0,
        );
        let _ = tch::no_grad(|| g.forward(&z, true));
    }
    let mut seed = 100;
    let mut set = |t: &Tensor, lo: f64, hi: f64| {
        seed += 1;
        let v = seeded(t, seed, lo, hi);
        tch::no_grad(|| t.shallow_clone().copy_(&v));
    };
    let mut bn = |b: &BatchNorm| {
        set(&b.weight, 0.5, 1.5);
        set(&b.bias, -0.3, 0.3);
    };
    bn(&g.bn0);
    g.bns.iter().for_each(&mut bn);
    set(&g.fc_bias, -0.1, 0.1);
    if let Some(b) = &g.out.bias {
        set(b, -0.1, 0.1);
    }
    // DCGAN init (std 0.02) leaves tanh's input near 0, where any two implementations agree
    // trivially; a larger last layer spreads the images over most of (-1, 1).
    let _ = tch::no_grad(|| g.out.weight.shallow_clone().g_mul_scalar_(30.0));
    // Running stats really moved away from (0, 1).
    let mean_abs = g.bns[0].running_mean.abs().mean(Kind::Float).double_value(&[]);
    assert!(mean_abs > 1e-4, "BN running mean did not move: {mean_abs}");
}

fn tiny_generator(image: [i64; 3]) -> (VarStore, Generator) {
    let vs = VarStore::new(Device::Cpu);
    let arch = Arch::narrowed(image, 16);
    let g = Generator::new(&(vs.root() / "g"), &arch);
    perturb(&g, &vs);
    (vs, g)
}

/// Runs `onnx.checker.check_model(full_check=True)` from the project venv on `path`.
fn official_check(path: &Path) {
    let out = python()
        .arg("-c")
        .arg("import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True)")
        .arg(path)
        .output()
        .expect("running the venv python");
    assert!(
        out.status.success(),
        "onnx.checker rejected {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exports `g`, checks it with the official checker and compares ORT with tch directly.
fn export_and_compare(image: [i64; 3]) {
    // Seeded weights must not see other tests' draws (this flaked in CI: a near-zero image).
    let _rng = torch_rng();
    let (_vs, g) = tiny_generator(image);
    let bytes = export::generator_onnx(&g).expect("export");

    let m = ModelProto::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(m.ir_version, Some(IR_VERSION));
    assert_eq!(m.opset_import[0].version, Some(OPSET));
    let graph = m.graph.expect("graph");
    assert_eq!(graph.input[0].name.as_deref(), Some(INPUT_NAME));
    assert_eq!(graph.output[0].name.as_deref(), Some(OUTPUT_NAME));
    match &graph.input[0].r#type.as_ref().and_then(|t| t.value.clone()) {
        Some(type_proto::Value::TensorType(t)) => {
            let d = &t.shape.as_ref().expect("shape").dim[0];
            assert!(
                matches!(&d.value, Some(type_proto_dim::Value::DimParam(s)) if s == "N"),
                "batch axis must be symbolic"
            );
        }
        None => panic!("input has no tensor type"),
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generator.onnx");
    std::fs::write(&path, &bytes).unwrap();
    official_check(&path);

    let mut session = ort_run::session_from_bytes(&bytes, 1).expect("ORT session");
    let latent = g.arch.latent;
    let [c, h, w] = image;
    let mut worst = 0.0f32;
    for n in [1usize, 7] {
        let z = pagan_shared::latent::uniform(100 + n as u64, n, latent as usize);
        let (got, shape) =
            ort_run::run_f32(&mut session, INPUT_NAME, &z, &[n as i64, latent]).expect("ORT run");
        assert_eq!(shape, vec![n as i64, c, h, w]);
        let zt = Tensor::from_slice(&z).view([n as i64, latent]);
        let want = Vec::<f32>::try_from(tch::no_grad(|| g.forward(&zt, false)).flatten(0, -1)).unwrap();
        assert_eq!(got.len(), want.len());
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(got.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
        let spread = got.iter().map(|v| v.abs()).sum::<f32>() / got.len() as f32;
        println!("{c}x{h}x{w} batch {n}: mean |image value| = {spread:.3}");
        assert!(spread > 0.1, "outputs too close to 0 for a meaningful comparison");
        println!("{c}x{h}x{w} batch {n}: max |ORT - tch| = {diff:e}");
        assert!(
            diff <= TOLERANCE,
            "{c}x{h}x{w} batch {n}: max abs diff {diff:e} > {TOLERANCE:e}"
        );
        worst = worst.max(diff);
    }
    // The library's own check agrees.
    let lib = export::max_abs_diff(&g, &bytes, &[1, 7]).expect("max_abs_diff");
    println!("{c}x{h}x{w}: export::max_abs_diff = {lib:e} (direct: {worst:e})");
    assert!(lib <= TOLERANCE);
}

#[test]
fn mnist_shape_odd_deconv_path_matches_tch() {
    // 4 -> 7 uses padding 2 + output padding 1.
    export_and_compare([1, 28, 28]);
}

#[test]
fn cifar_shape_matches_tch() {
    export_and_compare([3, 32, 32]);
}

/// A run folder at iteration 10 with perturbed weights, a level-up at 7 and an evaluation
/// (FID 12.5, KID 0.02) logged at iteration 10.
fn tiny_run(dir: &Path, image: [i64; 3]) -> Gan {
    let _rng = torch_rng();
    let o = TrainOverrides {
        batch: Some(8),
        iters: Some(10),
        seed: Some(5),
        max_level: Some(4),
        fade_iters: Some(10),
        schedule: Some(ScheduleSpec::Never),
        pa: Some(PaMode::Input),
        ..TrainOverrides::default()
    };
    let mut cfg = TrainConfig::resolve("synthetic", image, Path::new(""), &o);
    cfg.arch = Arch::narrowed(image, 16);
    let run = RunDir::create(dir, &cfg).expect("run folder");
    let gan = Gan::new(&cfg, Device::Cpu, 1);
    perturb(&gan.g, &gan.vs);
    let mut pa = PaState::new(0, 4, 10);
    pa.level = 1;
    pa.history = vec![(7, 1)];
    let meta = CheckpointMeta {
        iter: 10,
        weights_file: checkpoint::weights_name(10),
        pa,
        schedule_state: serde_json::Value::Null,
        adam_g_step: 10,
        adam_d_step: 10,
        seed: cfg.seed,
        train_seconds: 1.25,
    };
    run.save_checkpoint(&gan.named(), &meta).expect("checkpoint");
    let line = MetricsLine {
        iter: 10,
        d_loss: 1.0,
        g_loss: 1.0,
        d_acc_real: 0.5,
        d_acc_fake: 0.5,
        pa_level: 1,
        pa_p: 0.5,
        sec_per_iter: 0.1,
        kid: Some(0.02),
        kid_std: Some(0.001),
        fid: Some(12.5),
        prdc: None,
        provenance: None,
        eval_seconds: Some(1.0),
    };
    run.metrics()
        .writer()
        .and_then(|mut w| w.append(&line))
        .expect("metrics");
    gan
}

#[test]
fn export_run_writes_a_consistent_model_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    tiny_run(&run, [1, 28, 28]);
    let out = tmp.path().join("models").join("tiny-fmnist");
    let report = export::export_run(&run, &out, Device::Cpu).expect("export_run");
    println!(
        "export_run: max |ORT - tch| = {:e} on batches {:?}",
        report.max_abs_diff, report.batch_sizes
    );
    assert!(report.max_abs_diff <= TOLERANCE);
    assert_eq!(report.batch_sizes, vec![1, 7]);

    let m = ModelManifest::read(&report.manifest_path).expect("manifest reads and validates");
    assert_eq!(m.name, "tiny-fmnist");
    assert_eq!(m.latent.size, 128);
    assert_eq!((m.image.channels, m.image.height, m.image.width), (1, 28, 28));
    assert_eq!(m.training.iterations, 10);
    assert_eq!(m.training.pa_mode, "input");
    assert_eq!(m.training.pa_level_history, vec![(7, 1)]);
    // The run's last evaluation at the exported iteration goes into the manifest.
    assert_eq!(
        (m.training.final_fid, m.training.final_kid),
        (Some(12.5), Some(0.02))
    );
    assert_eq!(m.onnx.opset, OPSET);
    assert_eq!(m.onnx.ir_version, IR_VERSION);
    let bytes = std::fs::read(&report.onnx_path).unwrap();
    m.check_against_onnx_bytes(&bytes)
        .expect("sha matches the written file");
    assert!(out.join("samples.png").exists());
    let png = image::open(out.join("samples.png")).expect("samples.png decodes");
    assert!(png.width() >= 8 * 28 && png.height() >= 8 * 28);
    official_check(&report.onnx_path);
    // No temp files left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "leftovers: {names:?}");
}

#[test]
fn failed_check_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let gan = tiny_run(&run, [1, 28, 28]);
    // NaN weights make both forwards NaN: the comparison must fail, not pass vacuously.
    let _ = tch::no_grad(|| gan.g.out.weight.shallow_clone().fill_(f64::NAN));
    let dir = RunDir::at(&run);
    let meta = dir.latest_checkpoint().expect("meta").expect("a checkpoint");
    dir.save_checkpoint(&gan.named(), &meta).expect("checkpoint");
    let out = tmp.path().join("models").join("broken");
    let err = export::export_run(&run, &out, Device::Cpu).expect_err("a NaN export must fail");
    println!("expected failure: {err:#}");
    assert!(format!("{err:#}").contains("export check failed"));
    assert!(!out.join("manifest.json").exists() && !out.join("generator.onnx").exists());
}

#[test]
fn manifest_roundtrip_and_sha_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    tiny_run(&run, [3, 32, 32]);
    let out = tmp.path().join("cifar-tiny");
    let report = export::export_run(&run, &out, Device::Cpu).expect("export_run");

    let m = ModelManifest::read(&report.manifest_path).unwrap();
    let copy = tmp.path().join("copy.json");
    m.write(&copy).unwrap();
    assert_eq!(ModelManifest::read(&copy).unwrap(), m, "write/read roundtrip");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
    assert_eq!(
        json["onnx"]["output"]["shape"],
        serde_json::json!(["N", 3, 32, 32])
    );
    assert_eq!(json["latent"]["prior"], "uniform(-1,1)");
    assert_eq!(json["kind"], "generator");
    assert_eq!(json["format_version"], 1);

    let mut bytes = std::fs::read(&report.onnx_path).unwrap();
    m.check_against_onnx_bytes(&bytes).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    match m.check_against_onnx_bytes(&bytes) {
        Err(ManifestError::ShaMismatch { expected, actual, .. }) => assert_ne!(expected, actual),
        other => panic!("expected a sha mismatch, got {other:?}"),
    }
}
