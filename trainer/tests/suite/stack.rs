//! Stacked training: K runs in one set of kernels equal the same runs trained one by one
//! (same seeds), through level-ups, fade-ins and a stop/resume; each run's folder is in
//! today's format; what cannot be stacked is refused with the reason.

use std::path::{Path, PathBuf};

use pagan_trainer::config::{
    GpKind, LossKind, PaMode, ScheduleSpec, TrainConfig, TrainOverrides, check_stackable,
};
use pagan_trainer::model::Gan;
use pagan_trainer::ops::StackKernels;
use pagan_trainer::run_dir::RunDir;
use pagan_trainer::train::{RunOptions, Trainer};
use tch::{Device, Kind, Tensor};

use crate::common::{synthetic_set, tiny_config, torch_rng};

const ITERS: u64 = 30;

fn run_cfg(pa: PaMode, seed: u64, schedule: ScheduleSpec, shared: &TrainOverrides) -> TrainConfig {
    tiny_config(TrainOverrides {
        pa: Some(pa),
        seed: Some(seed),
        schedule: Some(schedule),
        start_level: Some(if pa == PaMode::Feat { 1 } else { 0 }),
        fade_iters: Some(5),
        ..shared.clone()
    })
}

fn shared(loss: LossKind, gp: GpKind) -> TrainOverrides {
    TrainOverrides {
        batch: Some(6),
        iters: Some(ITERS),
        max_level: Some(3),
        log_every: Some(1),
        sample_every: Some(10),
        checkpoint_every: Some(15),
        loss: Some(loss),
        gp: Some(gp),
        ..TrainOverrides::default()
    }
}

/// Input PA levelling up at 10 and 20, feature PA (start level 1) at 12 and 24, no PA.
fn three_runs(loss: LossKind, gp: GpKind) -> Vec<TrainConfig> {
    let s = shared(loss, gp);
    vec![
        run_cfg(PaMode::Input, 1, ScheduleSpec::Every(10), &s),
        run_cfg(PaMode::Feat, 2, ScheduleSpec::Every(12), &s),
        run_cfg(PaMode::Off, 3, ScheduleSpec::Never, &s),
    ]
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Trains `cfgs` one by one and as one stack stopped at 15 and resumed; compares every
/// run's metrics and final weights.
fn stacked_equals_solo(root: &Path, cfgs: Vec<TrainConfig>) {
    let set = synthetic_set(40);
    let solo_dirs: Vec<PathBuf> = (0..cfgs.len()).map(|k| root.join(format!("solo{k}"))).collect();
    for (cfg, dir) in cfgs.iter().zip(&solo_dirs) {
        let mut t = Trainer::create(cfg.clone(), dir, Device::Cpu, &set).expect("solo");
        t.run(RunOptions {
            quiet: true,
            ..Default::default()
        })
        .expect("solo run");
    }
    let stack_dirs: Vec<PathBuf> = (0..cfgs.len()).map(|k| root.join(format!("stack{k}"))).collect();
    let refs: Vec<&Path> = stack_dirs.iter().map(PathBuf::as_path).collect();
    let half: Vec<TrainConfig> = cfgs
        .iter()
        .map(|c| TrainConfig {
            iters: 15,
            ..c.clone()
        })
        .collect();
    let mut t = Trainer::create_stack(half, &refs, Device::Cpu, &set).expect("stack");
    t.run(RunOptions {
        quiet: true,
        ..Default::default()
    })
    .expect("first half");
    drop(t);
    for (cfg, dir) in cfgs.iter().zip(&stack_dirs) {
        RunDir::at(dir).write_config(cfg).expect("longer target");
    }
    let mut t = Trainer::open_stack(&refs, Device::Cpu, &set).expect("reopen");
    assert_eq!(t.iter, 15);
    t.run(RunOptions {
        quiet: true,
        ..Default::default()
    })
    .expect("second half");

    for (k, (s, st)) in solo_dirs.iter().zip(&stack_dirs).enumerate() {
        let (a, b) = (
            RunDir::at(s).metrics().read().expect("solo"),
            RunDir::at(st).metrics().read().expect("stack"),
        );
        assert_eq!(a.len(), ITERS as usize, "run {k}");
        assert_eq!(a.len(), b.len(), "run {k}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.iter, x.pa_level), (y.iter, y.pa_level), "run {k}");
            let d = max_diff(
                &[x.d_loss, x.g_loss, x.d_acc_real, x.d_acc_fake],
                &[y.d_loss, y.g_loss, y.d_acc_real, y.d_acc_fake],
            );
            assert!(
                d <= 1e-4,
                "run {k} iteration {}: solo {x:?} vs stacked {y:?}",
                x.iter
            );
        }
        // The losses move, so agreeing is not trivial.
        assert!(
            a.iter().any(|m| (m.d_loss - a[0].d_loss).abs() > 1e-3),
            "run {k}: constant losses"
        );
        let (_, ma, ga) = RunDir::at(s).load_gan(Device::Cpu).expect("solo gan");
        let (_, mb, gb) = RunDir::at(st).load_gan(Device::Cpu).expect("stacked run's gan");
        assert_eq!(ma.pa, mb.pa, "run {k}: PA state");
        for ((na, ta), (nb, tb)) in ga.named().iter().zip(gb.named().iter()) {
            assert_eq!(
                (na, ta.size()),
                (nb, tb.size()),
                "run {k}: the folder holds the run's own tensors"
            );
            let d = (ta - tb).abs().max().to_kind(Kind::Double).double_value(&[]);
            assert!(d <= 1e-4, "run {k} {na}: max |solo - stacked| = {d:e}");
        }
    }
    // Each run levelled up as its own rule says: input at 10, 20, 30; feat (from 1) at 12
    // and 24; no PA never.
    let levels: Vec<i64> = stack_dirs
        .iter()
        .map(|d| {
            RunDir::at(d)
                .latest_checkpoint()
                .expect("meta")
                .expect("checkpoint")
                .pa
                .level
        })
        .collect();
    assert_eq!(levels, vec![3, 3, 0]);
}

#[test]
fn three_stacked_runs_equal_three_solo_runs_through_level_ups_and_a_resume() {
    let _rng = torch_rng();
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().expect("tmp");
    stacked_equals_solo(&tmp.path().join("ns"), three_runs(LossKind::Ns, GpKind::None));
    // The 1-centred penalty draws per run; the stack draws each run's in its own stream.
    stacked_equals_solo(
        &tmp.path().join("hinge-gp"),
        three_runs(LossKind::Hinge, GpKind::OneCentred),
    );
}

#[test]
fn what_cannot_be_stacked_is_refused_with_the_reason() {
    let base = three_runs(LossKind::Ns, GpKind::None);
    assert!(check_stackable(&base).is_ok());
    let mut cases: Vec<(Vec<TrainConfig>, &str)> = Vec::new();
    let mut wide = base.clone();
    wide[1].arch.d_widths[0] *= 2;
    cases.push((wide, "arch"));
    let mut batch = base.clone();
    batch[2].batch = 12;
    cases.push((batch, "batch"));
    let mut loss = base.clone();
    loss[0].loss = LossKind::Hinge;
    cases.push((loss, "loss"));
    let mut dropout = base.clone();
    dropout[0].reg.dropout = 0.2;
    cases.push((dropout, "--d-dropout"));
    let mut reset = base.clone();
    reset[1].reset_g_adam_on_level_up = true;
    cases.push((reset, "--reset-g-adam"));
    let mut layers = base;
    layers[0].pa = PaMode::Feat;
    layers[0].pa_feat_layer = 4;
    cases.push((layers, "different layers"));
    for (cfgs, needle) in cases {
        let err = check_stackable(&cfgs).err().map(|e| e.0).unwrap_or_default();
        assert!(
            err.contains(needle) && err.contains("cannot be stacked"),
            "{needle}: {err}"
        );
    }
}

/// A GPU trains a stack with grouped kernels (one convolution per layer for all runs,
/// batched spectral norm); the CPU default runs each model's own kernels. Both compute the
/// same images, logits, gradients and power-iteration updates, up to float rounding.
/// `streams` (per-model on per-run CUDA streams) is per-model on the CPU: bit for bit.
#[test]
fn grouped_kernels_compute_what_per_model_kernels_compute() {
    let _rng = torch_rng();
    let cfgs = three_runs(LossKind::Ns, GpKind::None);
    let (latent, bits_per_run) = (cfgs[0].arch.latent, cfgs[0].max_level);
    let mut results = Vec::new();
    let all = [
        StackKernels::PerModel,
        StackKernels::Grouped,
        StackKernels::Streams,
    ];
    for kernels in all {
        let (mut gan, _) = Gan::stacked(&cfgs, Device::Cpu, &[2, 2, 0]).expect("stack");
        gan.set_kernels(kernels);
        tch::manual_seed(5);
        let z = Tensor::rand([6, 3 * latent], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let bits = Tensor::rand([6, 3 * bits_per_run], (Kind::Float, Device::Cpu)).round();
        let fake = gan.g.forward(&z, true);
        let logits = gan.d.forward(&fake, Some(&bits), true);
        // A loss that weighs every model's logits and images differently.
        let w = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
        let loss = (logits.square() * &w).sum(Kind::Float) + fake.square().mean(Kind::Float);
        let params: Vec<(String, Tensor)> = gan.params("g.").into_iter().chain(gan.params("d.")).collect();
        let inputs: Vec<&Tensor> = params.iter().map(|(_, t)| t).collect();
        let grads = Tensor::run_backward(&[&loss], &inputs, false, false);
        let mut named: Vec<(String, Tensor)> =
            vec![("fake".into(), fake.detach()), ("logits".into(), logits.detach())];
        named.extend(
            params
                .iter()
                .zip(grads)
                .map(|((n, _), g)| (format!("grad {n}"), g)),
        );
        // Buffers after the forward: spectral norm's u, BatchNorm's running statistics.
        named.extend(
            gan.named()
                .into_iter()
                .filter(|(n, _)| n.ends_with(".u") || n.contains("running")),
        );
        results.push(named);
    }
    let a = &results[0];
    for (kernels, b) in all.iter().zip(&results).skip(1) {
        assert_eq!(a.len(), b.len());
        let exact = *kernels == StackKernels::Streams;
        for ((name, x), (_, y)) in a.iter().zip(b) {
            // The floor covers gradients that are zero in exact arithmetic (a bias that feeds
            // a BatchNorm), where both sides hold rounding noise only.
            let scale = x.abs().max().double_value(&[]).max(1e-3);
            let d = (x - y).abs().max().double_value(&[]);
            let tol = if exact { 0.0 } else { 1e-5 * scale };
            assert!(
                d <= tol,
                "{name}: max |per-model - {kernels:?}| = {d:e} (scale {scale:e})"
            );
        }
    }
    assert!(a.len() > 40, "compared {} tensors", a.len());
}

/// A stack evaluates all its runs with shared Inception calls, on the device; each run's
/// KID equals the KID of the same run trained and evaluated alone.
#[test]
fn a_stacks_evaluation_equals_each_runs_own() {
    let _weights = crate::common::weights();
    let _rng = torch_rng();
    tch::set_num_threads(1);
    let set = synthetic_set(40);
    let mut runs = three_runs(LossKind::Ns, GpKind::None);
    // A fourth run with run 0's seed: the two share their training-image subset, whose
    // features the stack computes once for both.
    let same_seed = run_cfg(
        PaMode::Off,
        1,
        ScheduleSpec::Never,
        &shared(LossKind::Ns, GpKind::None),
    );
    runs.push(same_seed);
    let cfgs: Vec<TrainConfig> = runs
        .into_iter()
        .map(|c| {
            let mut c = c;
            c.eval.samples = 8;
            c.eval.batch = 6;
            c
        })
        .collect();
    let mut stack = Trainer::ephemeral_stack(cfgs.clone(), Device::Cpu, &set).expect("stack");
    stack.steps(3).expect("steps");
    let stacked = stack.evaluate_all().expect("stacked evaluation");
    for (k, cfg) in cfgs.into_iter().enumerate() {
        let mut solo = Trainer::ephemeral(cfg, Device::Cpu, &set).expect("solo");
        solo.steps(3).expect("steps");
        let alone = solo.evaluate().expect("solo evaluation");
        let d = (stacked[k].kid - alone.kid).abs();
        println!(
            "run {k}: KID stacked {} alone {} (|d| = {d:e})",
            stacked[k].kid, alone.kid
        );
        assert!(
            d <= 1e-6 * alone.kid.abs().max(1e-3),
            "run {k}: stacked {:?} vs alone {alone:?}",
            stacked[k]
        );
    }
    // The runs differ, so agreeing run by run is not trivial.
    assert!((stacked[0].kid - stacked[2].kid).abs() > 1e-4, "{stacked:?}");
}
