//! Progressive augmentation and training-loop properties: masked bit weights get no gradient,
//! a level-up leaves D's output unchanged, PA off is plain NS-GAN, resume is exact, and every
//! loss, regulariser and Salimans technique trains with PA and changes what D learns.

use pagan_trainer::config::{GpKind, LossKind, PaMode, TrainConfig, TrainOverrides};
use pagan_trainer::model::Discriminator;
use pagan_trainer::objective::loss;
use pagan_trainer::objective::pa::{self, PaState};
use pagan_trainer::run_dir::RunDir;
use pagan_trainer::train::{RunOptions, Trainer};
use tch::{Device, Kind, Tensor, nn::VarStore};

use crate::common::{synthetic_set, tiny_arch, tiny_config as resolve, tiny_overrides, torch_rng};

/// The usual tiny PA run with `pa` at D conv `feat_layer`, for `iters` iterations.
fn tiny_config(pa: PaMode, feat_layer: usize, iters: u64) -> TrainConfig {
    resolve(TrainOverrides {
        pa: Some(pa),
        pa_feat_layer: Some(feat_layer),
        ..tiny_overrides(iters)
    })
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn masked_bit_kernels_receive_zero_gradient() {
    let _rng = torch_rng();
    tch::manual_seed(1);
    let vs = VarStore::new(Device::Cpu);
    let d = Discriminator::new(&vs.root(), &tiny_arch(), Some(0), 4, 1);
    let x = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    // All bits set, including the inactive ones: the mask alone must silence them.
    let bits = Tensor::ones([6, 4], (Kind::Float, Device::Cpu));
    let out = d.forward(&x, Some(&bits), true).sum(Kind::Float);
    let g = Tensor::run_backward(&[&out], &[&d.convs[0].weight], false, false);
    let g = &g[0];
    assert_eq!(g.size(), vec![8, 1 + 4, 3, 3]);
    assert_eq!(
        max_abs(&g.narrow(1, 2, 3)),
        0.0,
        "inactive bit kernels got a gradient"
    );
    assert!(
        max_abs(&g.narrow(1, 1, 1)) > 0.0,
        "the live bit kernel must learn"
    );
    assert!(max_abs(&g.narrow(1, 0, 1)) > 0.0);
}

#[test]
fn level_up_leaves_discriminator_output_unchanged() {
    let _rng = torch_rng();
    tch::manual_seed(2);
    let cfg = tiny_config(PaMode::Feat, 6, 40);
    let set = synthetic_set(64);
    let mut t = Trainer::ephemeral(cfg, Device::Cpu, &set).expect("trainer");
    // Train a little at level 1 so live weights move away from their init.
    t.steps(5).expect("steps");
    let x = Tensor::rand([5, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let bits = Tensor::ones([5, 3], (Kind::Float, Device::Cpu));
    let before = tch::no_grad(|| t.gan.d.forward(&x, Some(&bits), false));
    t.gan.d.set_level(2);
    let after = tch::no_grad(|| t.gan.d.forward(&x, Some(&bits), false));
    assert_eq!(max_abs(&(&before - &after)), 0.0, "a level-up changed D's output");
    // Once the new kernel has trained, the new bit does change the output.
    let iter = t.iter;
    t.runs[0].pa.level_up(iter);
    t.runs[0].pa.fade_iters = 0;
    t.steps(5).expect("steps");
    let trained = tch::no_grad(|| t.gan.d.forward(&x, Some(&bits), false));
    let zero2 = Tensor::cat(
        &[
            bits.narrow(1, 0, 1),
            Tensor::zeros([5, 2], (Kind::Float, Device::Cpu)),
        ],
        1,
    );
    let without = tch::no_grad(|| t.gan.d.forward(&x, Some(&zero2), false));
    assert!(max_abs(&(&trained - &without)) > 0.0);
}

#[test]
fn pa_off_is_plain_ns_gan() {
    let _rng = torch_rng();
    // Reference: the NS-GAN losses written out in f64: -log s(r) - log(1 - s(f)), and -log s(f).
    let r = [1.5f64, -0.3, 0.0, 2.2];
    let f = [-1.0f64, 0.4, 3.0, -2.5];
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let d_ref = r.iter().map(|&x| -sig(x).ln()).sum::<f64>() / 4.0
        + f.iter().map(|&x| -(1.0 - sig(x)).ln()).sum::<f64>() / 4.0;
    let g_ref = f.iter().map(|&x| -sig(x).ln()).sum::<f64>() / 4.0;
    let tg = pa::targets(None, 4, Device::Cpu);
    let (rt, ft) = (
        Tensor::from_slice(&r).to_kind(Kind::Float),
        Tensor::from_slice(&f).to_kind(Kind::Float),
    );
    let d = loss::d_loss(LossKind::Ns, &rt, &ft, &tg).double_value(&[]);
    let g = loss::g_loss(LossKind::Ns, &ft, &tg).double_value(&[]);
    assert!((d - d_ref).abs() < 1e-6, "{d} vs {d_ref}");
    assert!((g - g_ref).abs() < 1e-6, "{g} vs {g_ref}");
    // With PA on but all bits 0, the targets are the plain ones too.
    let zeros = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
    let tz = pa::targets(Some(&zeros), 4, Device::Cpu);
    assert!((loss::d_loss(LossKind::Ns, &rt, &ft, &tz).double_value(&[]) - d_ref).abs() < 1e-6);
    // And PA off builds a D without bit channels.
    let vs = VarStore::new(Device::Cpu);
    let plain = Discriminator::new(&vs.root(), &tiny_arch(), PaMode::Off.layer(6), 4, 0);
    assert_eq!(plain.convs[0].weight.size()[1], 1);
    assert!(plain.mask().is_none());
}

#[test]
fn resume_continues_exactly() {
    let _rng = torch_rng();
    tch::set_num_threads(1);
    let set = synthetic_set(40);
    let root = tempfile::tempdir().expect("tempdir");
    let (a_dir, b_dir) = (root.path().join("a"), root.path().join("b"));

    // A: 16 uninterrupted iterations (level-ups at 5, 10, 15; fade-in in between).
    let mut a = Trainer::create(tiny_config(PaMode::Input, 6, 16), &a_dir, Device::Cpu, &set).expect("a");
    a.run(RunOptions {
        quiet: true,
        ..Default::default()
    })
    .expect("run a");

    // B: stop at 7 (a checkpoint), reopen from disk, continue to 16.
    let mut b = Trainer::create(tiny_config(PaMode::Input, 6, 7), &b_dir, Device::Cpu, &set).expect("b");
    b.run(RunOptions {
        quiet: true,
        ..Default::default()
    })
    .expect("run b");
    drop(b);
    let mut b = Trainer::open(&b_dir, Device::Cpu, &set).expect("reopen");
    assert_eq!(b.iter, 7);
    b.runs[0].cfg.iters = 16;
    b.run(RunOptions {
        quiet: true,
        ..Default::default()
    })
    .expect("resume b");

    let ma = RunDir::at(&a_dir).metrics().read().expect("metrics a");
    let mb = RunDir::at(&b_dir).metrics().read().expect("metrics b");
    assert_eq!(ma.len(), 16);
    assert_eq!(mb.len(), 16);
    for (x, y) in ma.iter().zip(&mb) {
        assert_eq!(x.iter, y.iter);
        assert_eq!(x.pa_level, y.pa_level);
        assert!(
            (x.d_loss - y.d_loss).abs() <= 1e-5,
            "iter {}: d {} vs {}",
            x.iter,
            x.d_loss,
            y.d_loss
        );
        assert!(
            (x.g_loss - y.g_loss).abs() <= 1e-5,
            "iter {}: g {} vs {}",
            x.iter,
            x.g_loss,
            y.g_loss
        );
    }
    assert_eq!(
        ma.last().map(|m| m.pa_level),
        Some(3),
        "levels 1 -> 3 capped by max_level"
    );
    // The losses are not trivially constant (the comparison above could fail).
    assert!(ma.iter().any(|m| (m.d_loss - ma[0].d_loss).abs() > 1e-3));
    // Final weights agree too.
    let wa = a.gan.g.out.weight.copy();
    let b_final = RunDir::at(&b_dir).load_gan(Device::Cpu).expect("load b");
    assert!(max_abs(&(&wa - &b_final.2.g.out.weight)) <= 1e-5);
    assert!(b_dir.join("samples/latest.png").exists());
    assert!(b_dir.join("config.json").exists());
}

#[test]
fn refuses_to_overwrite_a_run() {
    let _rng = torch_rng();
    let set = synthetic_set(16);
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("r");
    let mut t = Trainer::create(tiny_config(PaMode::Off, 6, 2), &dir, Device::Cpu, &set).expect("create");
    t.run(RunOptions {
        quiet: true,
        ..Default::default()
    })
    .expect("run");
    let again = Trainer::create(tiny_config(PaMode::Off, 6, 2), &dir, Device::Cpu, &set);
    let msg = again.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("already holds a run"), "{msg}");
}

#[test]
fn pa_state_counts_levels_and_targets_flip_with_parity() {
    let _rng = torch_rng();
    let mut s = PaState::new(0, 2, 0);
    assert!(s.level_up(3) && s.level_up(9) && !s.level_up(12));
    assert_eq!(s.history, vec![(3, 1), (9, 2)]);
}

/// D's weights after `steps` iterations of `cfg` from its seed.
fn d_after(cfg: TrainConfig, steps: u64) -> (Tensor, f64) {
    let set = synthetic_set(24);
    let mut t = Trainer::ephemeral(cfg, Device::Cpu, &set).expect("trainer");
    let d = t.steps(steps).expect("steps");
    let w = t.gan.d.convs[3].weight.detach().copy();
    (w, d)
}

/// A change to the plain configuration.
type Variant = fn(&mut TrainConfig);

#[test]
fn every_loss_and_regulariser_trains_with_pa_and_changes_what_d_learns() {
    let _rng = torch_rng();
    tch::set_num_threads(1);
    let base = || tiny_config(PaMode::Feat, 6, 3);
    let (plain, plain_loss) = d_after(base(), 3);
    assert!(plain_loss.is_finite());
    let variants: Vec<(&str, Variant)> = vec![
        ("hinge", |c| c.loss = LossKind::Hinge),
        ("lsgan + smoothing", |c| {
            c.loss = LossKind::Lsgan;
            c.reg.label_smoothing = 0.1;
        }),
        ("wgan-gp (implied one-centred penalty)", |c| {
            c.loss = LossKind::WganGp
        }),
        ("ns + zero-centred GP", |c| c.reg.gp = GpKind::ZeroCentred),
        ("ns + one-centred GP", |c| c.reg.gp = GpKind::OneCentred),
        ("ns + label smoothing", |c| c.reg.label_smoothing = 0.1),
        ("ns + dropout", |c| {
            c.reg.dropout = 0.3;
            c.reg.dropout_layer = 6;
        }),
        ("feature matching beside the adversarial loss", |c| {
            c.tricks.feature_matching = 1.0
        }),
        ("feature matching alone, at conv 3", |c| {
            c.tricks.feature_matching = 1.0;
            c.tricks.fm_adversarial = 0.0;
            c.tricks.fm_layer = 3;
        }),
        ("historical averaging on G", |c| c.tricks.hist_avg_g = 0.5),
        ("historical averaging on D", |c| c.tricks.hist_avg_d = 0.5),
        ("minibatch standard deviation", |c| c.tricks.minibatch_std = true),
    ];
    for (name, change) in variants {
        let mut cfg = base();
        change(&mut cfg);
        cfg.validate().expect("valid variant");
        let (w, d) = d_after(cfg, 3);
        assert!(d.is_finite(), "{name}: D loss {d}");
        // Same seed, same data, same initial weights: only the variant differs, so D must
        // have learned something else (a variant silently ignored would be identical).
        let moved = (&w - &plain).abs().max().double_value(&[]);
        assert!(
            moved > 1e-7,
            "{name}: D's weights equal the plain NS run's ({moved:e})"
        );
    }
    // The gradient penalty's weight matters: zero weight is the plain run, exactly.
    let mut zero_gp = base();
    zero_gp.reg.gp = GpKind::ZeroCentred;
    zero_gp.reg.gp_weight = 0.0;
    let (w, _) = d_after(zero_gp, 3);
    assert_eq!(
        (&w - &plain).abs().max().double_value(&[]),
        0.0,
        "a zero-weight penalty changed D"
    );

    // Dropout really is in D's training forward only.
    let mut cfg = tiny_config(PaMode::Input, 6, 1);
    cfg.reg.dropout = 0.5;
    let t = Trainer::ephemeral(cfg, Device::Cpu, &synthetic_set(24)).expect("trainer");
    let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let bits = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
    let e1 = t.gan.d.forward(&x, Some(&bits), false);
    let e2 = t.gan.d.forward(&x, Some(&bits), false);
    assert_eq!(max_abs(&(&e1 - &e2)), 0.0);
    tch::manual_seed(1);
    let t1 = t.gan.d.forward(&x, Some(&bits), true);
    tch::manual_seed(2);
    let t2 = t.gan.d.forward(&x, Some(&bits), true);
    assert!(max_abs(&(&t1 - &t2)) > 0.0);
}

#[test]
fn salimans_techniques_are_refused_where_they_cannot_work() {
    let mut a = tiny_config(PaMode::Input, 6, 2);
    a.tricks.minibatch_std = true;
    let mut b = a.clone();
    b.seed = 1;
    let err = pagan_trainer::config::check_stackable(&[a.clone(), b]).expect_err("a stack refuses them");
    assert!(err.to_string().contains("single runs"), "{err}");
    a.tricks.hist_avg_d = -1.0;
    assert!(
        a.validate()
            .expect_err("negative weight")
            .to_string()
            .contains("--hist-avg-d")
    );
    let mut c = tiny_config(PaMode::Input, 6, 2);
    c.tricks.fm_layer = 7;
    assert!(
        c.validate()
            .expect_err("no conv 7")
            .to_string()
            .contains("--fm-layer")
    );
}
