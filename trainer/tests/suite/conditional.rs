//! The class-conditional GAN: G's class input and D's two heads against the same networks
//! computed another way, a tiny run that learns the class, the ONNX export with its
//! `labels` input, intra-class FID's per-class plumbing, and the CLI's refusals.

use pagan_shared::features::{ExtractorError, FeatureExtractor, FeatureSink, KeepRows};
use pagan_shared::manifest::LABELS_INPUT;
use pagan_trainer::config::{Arch, CondConfig, DCond, GCond, LossKind, PaMode, TrainConfig, TrainOverrides};
use pagan_trainer::data::ImageSet;
use pagan_trainer::export::generator::{self as export, INPUT_NAME, TOLERANCE};
use pagan_trainer::fid::ExtractOptions;
use pagan_trainer::fid::intra::{IntraOptions, intra_class_fid};
use pagan_trainer::model::{Discriminator, Gan, Generator};
use pagan_trainer::onnx::runtime as ort_run;
use pagan_trainer::train::Trainer;
use tch::{Device, Kind, Tensor, nn::VarStore};

use crate::common::{bin, torch_rng};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Scales G's linear and (de)conv weights so that its images spread over (-1, 1): with
/// the DCGAN init they are ~0, where any two computations agree trivially.
fn spread(vs: &VarStore) {
    tch::no_grad(|| {
        for (name, t) in vs.variables() {
            let layer = name.contains(".fc.") || name.contains(".up") || name.contains(".out.");
            if layer && name.ends_with(".weight") {
                let _ = t.shallow_clone().g_mul_scalar_(9.0);
            }
        }
    });
}

/// Mean |value|: how far from the trivial 0 a compared output is.
fn mean_abs(t: &Tensor) -> f64 {
    t.abs().mean(Kind::Float).double_value(&[])
}

fn cond(g: GCond, d: DCond, k: usize) -> CondConfig {
    CondConfig {
        g,
        d,
        classes: (0..k).map(|i| format!("c{i}")).collect(),
    }
}

/// A conditional G's class input is the label's row appended to z before the linear layer,
/// so for one class it is an unconditional G whose linear bias absorbed that row's weights:
/// `b + W[:, latent..] row(y)` (one-hot: the column `latent + y`).
#[test]
fn a_class_input_equals_an_unconditional_generator_with_the_class_folded_into_its_bias() {
    let _rng = torch_rng();
    for kind in [GCond::Onehot, GCond::Embed] {
        tch::manual_seed(5);
        let arch = Arch::narrowed([1, 28, 28], 16);
        let vs = VarStore::new(Device::Cpu);
        let g = Generator::conditional(&(vs.root() / "g"), &arch, kind, 4);
        spread(&vs);
        let plain_vs = VarStore::new(Device::Cpu);
        let plain = Generator::new(&(plain_vs.root() / "g"), &arch);
        let z = Tensor::rand([5, arch.latent], CPU) * 2.0 - 1.0;
        let table = &g.classes.as_ref().expect("conditional").table;
        for y in 0..4i64 {
            tch::no_grad(|| {
                let mut named = vs.variables();
                for (name, t) in plain_vs.variables() {
                    let src = named.remove(&name).expect("same variable names");
                    let v = if name == "g.fc.weight" {
                        src.narrow(1, 0, arch.latent)
                    } else {
                        src
                    };
                    t.shallow_clone().copy_(&v);
                }
                let w_class = g.fc_weight.narrow(1, arch.latent, table.size()[1]);
                let folded = &g.fc_bias + w_class.mv(&table.get(y));
                plain.fc_bias.shallow_clone().copy_(&folded);
            });
            let labels = Tensor::from_slice(&[y; 5]);
            let got = tch::no_grad(|| g.forward_labelled(&z, Some(&labels), false));
            let want = tch::no_grad(|| plain.forward(&z, false));
            let d = max_diff(&got, &want);
            let m = mean_abs(&got);
            println!("{kind:?} class {y}: max |conditional - folded| = {d:e} (mean |image value| {m:.3})");
            assert!(m > 0.1, "outputs too close to 0 for a meaningful comparison: {m}");
            assert!(d < 1e-5, "{kind:?} class {y}: {d}");
        }
        // The classes really differ.
        let a = tch::no_grad(|| g.forward_labelled(&z, Some(&Tensor::from_slice(&[0i64; 5])), false));
        let b = tch::no_grad(|| g.forward_labelled(&z, Some(&Tensor::from_slice(&[1i64; 5])), false));
        assert!(max_diff(&a, &b) > 1e-5, "{kind:?}: {}", max_diff(&a, &b));
    }
}

/// The projection head adds `<V[y] / sigma(V), h>` to the unconditional logit, `h` being the
/// flattened features of D's last conv.
#[test]
fn the_projection_head_adds_the_class_embedding_s_inner_product_with_the_features() {
    let _rng = torch_rng();
    tch::manual_seed(7);
    let arch = Arch::narrowed([1, 28, 28], 16);
    let vs = VarStore::new(Device::Cpu);
    let d = Discriminator::conditional(
        &(vs.root() / "d"),
        &arch,
        Some(0),
        3,
        1,
        &cond(GCond::Onehot, DCond::Project, 3),
    );
    let x = Tensor::rand([4, 1, 28, 28], CPU) * 2.0 - 1.0;
    let bits = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0])
        .view([4, 1])
        .repeat([1, 3]);
    let y = Tensor::from_slice(&[2i64, 0, 1, 2]);
    let got = tch::no_grad(|| d.forward_labelled(&x, Some(&bits), Some(&y), false));
    let base = tch::no_grad(|| d.forward(&x, Some(&bits), false));
    let h = tch::no_grad(|| d.features(&x, Some(&bits), Some(&y), 6, false)).to_kind(Kind::Double);
    let Some(pagan_trainer::model::discriminator::ClassHead::Project(v)) = &d.classes else {
        panic!("a projection head");
    };
    let sigma = v.sigma_estimate(None);
    let rows = v.weight.to_kind(Kind::Double).index_select(0, &y) / sigma;
    let want = base.to_kind(Kind::Double) + (h * rows).sum_dim_intlist(1, true, Kind::Double);
    let diff = max_diff(&got.to_kind(Kind::Double), &want);
    let m = mean_abs(&got);
    println!("projection: max |D(x, y) - (D(x) + <V[y]/sigma, h>)| = {diff:e} (mean |logit| {m:.3e})");
    assert!(diff < 1e-4, "{diff}");
    assert!(max_diff(&got, &base) > 1e-6, "the head must change the logits");
}

/// The concat head equals an unconditional D over images with `classes` more channels, fed
/// the one-hot maps built here pixel by pixel (with input-space PA bits after them).
#[test]
fn the_concat_head_equals_a_discriminator_fed_one_hot_class_channels() {
    let _rng = torch_rng();
    tch::manual_seed(9);
    let k = 3i64;
    let arch = Arch::narrowed([1, 28, 28], 16);
    let vs = VarStore::new(Device::Cpu);
    let d = Discriminator::conditional(
        &(vs.root() / "d"),
        &arch,
        Some(0),
        2,
        2,
        &cond(GCond::Embed, DCond::Concat, 3),
    );
    let wide_arch = Arch {
        image: [1 + k, 28, 28],
        ..arch.clone()
    };
    let wide_vs = VarStore::new(Device::Cpu);
    let wide = Discriminator::new(&(wide_vs.root() / "d"), &wide_arch, Some(0), 2, 2);
    tch::no_grad(|| {
        let mut named = vs.variables();
        for (name, t) in wide_vs.variables() {
            let src = named.remove(&name).expect("same variable names");
            t.shallow_clone().copy_(&src);
        }
    });
    let x = Tensor::rand([4, 1, 28, 28], CPU) * 2.0 - 1.0;
    let bits = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]).view([4, 2]);
    let labels = [2i64, 0, 1, 1];
    let mut maps = vec![0f32; 4 * 3 * 28 * 28];
    for (i, &y) in labels.iter().enumerate() {
        for p in 0..28 * 28 {
            maps[(i * 3 + y as usize) * 784 + p] = 1.0;
        }
    }
    let wide_x = Tensor::cat(
        &[x.shallow_clone(), Tensor::from_slice(&maps).view([4, 3, 28, 28])],
        1,
    );
    let got = tch::no_grad(|| d.forward_labelled(&x, Some(&bits), Some(&Tensor::from_slice(&labels)), false));
    let want = tch::no_grad(|| wide.forward(&wide_x, Some(&bits), false));
    let diff = max_diff(&got, &want);
    println!(
        "concat: max |D(x, y) - D'([x, onehot maps])| = {diff:e} (mean |logit| {:.3e})",
        mean_abs(&got)
    );
    assert!(diff < 1e-5, "{diff}");
}

/// Two classes that differ only in brightness: a tiny conditional run learns which is which.
fn two_class_set() -> ImageSet {
    let n = 256;
    let mut data = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let y = (i % 2) as u8;
        labels.push(y);
        let base: usize = if y == 0 { 20 } else { 220 };
        data.extend((0..784).map(|p| (base + (p * 7 + i * 13) % 30) as u8));
    }
    ImageSet {
        data,
        labels: Some(labels),
        n,
        channels: 1,
        height: 28,
        width: 28,
        source: "two brightness classes".into(),
    }
}

fn tiny_config(g: GCond, d: DCond) -> TrainConfig {
    let o = TrainOverrides {
        pa: Some(PaMode::Input),
        batch: Some(16),
        loss: Some(LossKind::Hinge),
        iters: Some(300),
        cond: Some((g, d)),
        ..TrainOverrides::default()
    };
    let mut cfg = TrainConfig::resolve("mnist", [1, 28, 28], std::path::Path::new(""), &o);
    cfg.arch = Arch::narrowed([1, 28, 28], 16);
    cfg.cond = Some(cond(g, d, 2));
    cfg.validate().expect("valid");
    cfg
}

/// A toy GAN oscillates, so the test follows the run: every 50 iterations, the mean pixel
/// of G's images of each class; at some point G must give class 1 clearly brighter images
/// than class 0 (a G that ignores its class input never can: both means would be equal).
#[test]
fn a_tiny_conditional_run_learns_which_class_is_bright_with_either_head() {
    let _rng = torch_rng();
    tch::set_num_threads(2);
    let set = two_class_set();
    for (g, d) in [
        (GCond::Onehot, DCond::Concat),
        (GCond::Embed, DCond::Project),
        (GCond::Onehot, DCond::Project),
        (GCond::Embed, DCond::Concat),
    ] {
        let mut t = Trainer::ephemeral(tiny_config(g, d), Device::Cpu, &set).expect("trainer");
        let z = pagan_shared::latent::uniform(1, 32, t.cfg().arch.latent as usize);
        let mut gaps = Vec::new();
        for _ in 0..6 {
            t.steps(50).expect("steps");
            let mean = |y: i64| {
                let img = t.gan.generate(&z, 32, Some(&[y; 32])).expect("generate");
                img.iter().map(|&v| f64::from(v)).sum::<f64>() / img.len() as f64
            };
            gaps.push(mean(1) - mean(0));
        }
        let best = gaps.iter().copied().fold(f64::MIN, f64::max);
        println!("{g:?} + {d:?}: class 1 - class 0 mean pixel every 50 iterations {gaps:.3?} (data: 1.57)");
        assert!(
            best > 0.4,
            "{g:?} + {d:?}: G never made class 1 brighter than class 0: {gaps:?}"
        );
        // The fixed-z grid has one row per class.
        let grid = t.fixed_samples();
        assert_eq!(grid[0].size(), vec![2 * 8, 1, 28, 28]);
    }
}

#[test]
fn a_conditional_generator_exports_with_a_labels_input_that_ort_honours() {
    let _rng = torch_rng();
    for kind in [GCond::Onehot, GCond::Embed] {
        tch::manual_seed(13);
        let vs = VarStore::new(Device::Cpu);
        let g = Generator::conditional(&(vs.root() / "g"), &Arch::narrowed([1, 28, 28], 16), kind, 5);
        spread(&vs);
        let bytes = export::generator_onnx(&g).expect("export");
        let diff = export::max_abs_diff(&g, &bytes, &[1, 7]).expect("check");
        println!("{kind:?}: max |ORT - tch| over batches 1 and 7 = {diff:e}");
        assert!(diff <= TOLERANCE);
        let mut s = ort_run::session_from_bytes(&bytes, 1).expect("session");
        let names: Vec<String> = s.inputs().iter().map(|i| i.name().to_owned()).collect();
        assert_eq!(names, vec![INPUT_NAME.to_owned(), LABELS_INPUT.to_owned()]);
        let z = pagan_shared::latent::uniform(3, 2, 128.min(g.arch.latent as usize));
        let run = |s: &mut ort::session::Session, y: &[i64]| {
            ort_run::run_f32_labelled(s, INPUT_NAME, &z, &[2, g.arch.latent], Some((LABELS_INPUT, y)))
                .expect("run")
                .0
        };
        let (a, b) = (run(&mut s, &[0, 4]), run(&mut s, &[4, 0]));
        let m = a.iter().map(|v| f64::from(v.abs())).sum::<f64>() / a.len() as f64;
        println!("{kind:?}: mean |image value| {m:.3}");
        assert!(m > 0.1, "outputs too close to 0 for a meaningful comparison: {m}");
        let half = a.len() / 2;
        assert_ne!(a[..half], b[..half], "the label must change the image");
    }
}

/// Features = the mean of each image (a 2-d toy extractor), so the expected per-class FIDs
/// can be computed from the images directly.
struct MeanFeatures;

impl FeatureExtractor for MeanFeatures {
    fn dim(&self) -> usize {
        2
    }
    fn features(&mut self, images: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>, ExtractorError> {
        let per = 3 * h * w;
        Ok((0..n)
            .flat_map(|i| {
                let img = &images[i * per..(i + 1) * per];
                let m = img.iter().sum::<f32>() / per as f32;
                let first = img[0];
                [m, first]
            })
            .collect())
    }
}

#[test]
fn intra_class_fid_scores_each_class_against_that_class_s_images_only() {
    let _rng = torch_rng();
    let set = two_class_set();
    let cfg = tiny_config(GCond::Onehot, DCond::Concat);
    let gan = Gan::new(&cfg, Device::Cpu, 0);
    let opts = ExtractOptions {
        batch: 16,
        keep: KeepRows::WhileSmall,
        label: "test".into(),
        quiet: true,
    };
    let names = cfg.cond.as_ref().expect("cond").classes.clone();
    let r = intra_class_fid(
        &gan,
        &names,
        &set,
        IntraOptions {
            n: 12,
            reference_n: 1000,
            seed: 4,
        },
        &mut MeanFeatures,
        &opts,
    )
    .expect("intra");
    for (label, c) in r.classes.iter().enumerate() {
        // Expected, another way: the class's images picked here, the generated ones from
        // `generate` with that label, each through the sink, FID from the two Gaussians.
        let feats = |imgs: Vec<pagan_shared::images::Image>| {
            let mut fx = MeanFeatures;
            let mut sink = FeatureSink::new(&mut fx, 16, KeepRows::WhileSmall).expect("sink");
            for img in imgs {
                sink.push(img).expect("push");
            }
            sink.finish().expect("finish")
        };
        let reference: Vec<_> = (0..set.len())
            .filter(|&i| set.labels.as_ref().expect("labels")[i] as usize == label)
            .map(|i| pagan_shared::images::Image::planar(1, 28, 28, set.image(i).to_vec()).expect("image"))
            .collect();
        assert_eq!(c.reference_n as usize, reference.len());
        let z = pagan_shared::latent::uniform(4, 12, cfg.arch.latent as usize);
        let values = gan.generate(&z, 12, Some(&[label as i64; 12])).expect("generate");
        let generated = pagan_shared::images::from_model_batch(&values, [12, 1, 28, 28]).expect("bytes");
        let want = pagan_shared::score::fid(
            &feats(generated),
            &feats(reference).stats.finalize().expect("gaussian"),
        )
        .expect("fid");
        println!("class {label}: intra {:.6} vs direct {want:.6}", c.fid);
        assert!(
            (c.fid - want).abs() <= 1e-9 * want.abs().max(1.0),
            "class {label}: {} vs {want}",
            c.fid
        );
    }
    let mean = r.classes.iter().map(|c| c.fid).sum::<f64>() / 2.0;
    assert!((r.mean - mean).abs() < 1e-12);
}

#[test]
fn the_cli_refuses_conditioning_it_cannot_train() {
    let dir = tempfile::tempdir().expect("tmp");
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).expect("mkdir");
    let run = |args: &[&str]| {
        let out = bin().args(args).output().expect("run pagan-train");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let out = dir.path().join("run");
    let out = out.to_str().expect("utf8");
    let (code, err) = run(&["train", "--dataset", "celeba", "--cond", "onehot", "--out", out]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--cond needs a labelled dataset"), "{err}");
    let (code, err) = run(&["train", "--dataset", "mnist", "--d-cond", "concat", "--out", out]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--cond"), "{err}");
    let folder = format!("folder:{}", flat.display());
    let (code, err) = run(&["train", "--dataset", &folder, "--cond", "embed", "--out", out]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("0 classes"), "{err}");
}

/// A conditional run stopped at a checkpoint and resumed writes the metrics an
/// uninterrupted one writes (the class embedding and projection head are checkpointed).
#[test]
fn a_conditional_run_resumes_exactly() {
    crate::common::require_fashion_mnist();
    let dir = tempfile::tempdir().expect("tmp");
    let train = |out: &std::path::Path, iters: &str| {
        let mut c = bin();
        c.arg("train")
            .args(pagan_e2e::TINY_RUN)
            .args([
                "--cond",
                "embed",
                "--d-cond",
                "project",
                "--iters",
                iters,
                "--log-every",
                "3",
            ])
            .args([
                "--checkpoint-every",
                "6",
                "--threads",
                "1",
                "--device",
                "cpu",
                "--quiet",
                "--data-dir",
            ])
            .arg(crate::common::repo().join("data"))
            .arg("--out")
            .arg(out);
        c
    };
    let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
    crate::common::run_ok(&mut train(&whole, "12"));
    crate::common::run_ok(&mut train(&parts, "6"));
    crate::common::run_ok(bin().arg("resume").arg(&parts).args([
        "--iters",
        "12",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]));
    let read = |d: &std::path::Path| {
        pagan_trainer::run_dir::RunDir::at(d)
            .metrics()
            .read()
            .expect("metrics")
    };
    let (a, b) = (read(&whole), read(&parts));
    assert_eq!(a.len(), 4);
    assert_eq!(b.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.iter, y.iter);
        assert!(
            (x.d_loss - y.d_loss).abs() <= 1e-6 && (x.g_loss - y.g_loss).abs() <= 1e-6,
            "{x:?} vs {y:?}"
        );
    }
}

/// A folder of class folders trains a conditional run; a class folder added afterwards is
/// refused at resume (every label after it would shift), and `sample --z` wants one label
/// or one per latent.
#[test]
fn class_folders_label_a_run_and_a_changed_class_set_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("shades");
    let write_class = |class: &str, value: u8| {
        std::fs::create_dir_all(data.join(class)).expect("mkdir");
        for i in 0..8u8 {
            let png = pagan_shared::grid::encode_png(16, 16, 1, &[value + i; 256]).expect("png");
            std::fs::write(data.join(format!("{class}/{i}.png")), png).expect("write");
        }
    };
    write_class("bright", 200);
    write_class("dark", 20);
    let run_dir = dir.path().join("run");
    let common = ["--threads", "1", "--device", "cpu", "--quiet"];
    crate::common::run_ok(
        bin()
            .args(["train", "--dataset", &format!("folder:{}", data.display())])
            .args([
                "--preset", "demo", "--batch", "4", "--cond", "onehot", "--iters", "2",
            ])
            .args(common)
            .arg("--out")
            .arg(&run_dir),
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).expect("config.json"))
            .expect("json");
    assert_eq!(cfg["cond"]["classes"], serde_json::json!(["bright", "dark"]));

    let z = dir.path().join("z.npy");
    pagan_shared::npy::write(&z, &pagan_shared::latent::uniform(1, 2, 128), &[2, 128]).expect("z");
    let sample = |labels: &str| {
        bin()
            .arg("sample")
            .arg(&run_dir)
            .arg("--z")
            .arg(&z)
            .args(["--labels", labels, "--format", "npy", "--out"])
            .arg(dir.path().join("x.npy"))
            .args(common)
            .output()
            .expect("run pagan-train")
    };
    assert!(sample("dark").status.success(), "one label for every latent");
    assert!(sample("1,0").status.success(), "one label per latent");
    let out = sample("0,1,0");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("3 labels for the 2 latents"), "{err}");

    // An empty class folder is a class without images: refused, naming it.
    let empty_set = dir.path().join("with-empty");
    for (class, value) in [("bright", 200u8), ("dark", 20)] {
        std::fs::create_dir_all(empty_set.join(class)).expect("mkdir");
        for i in 0..4u8 {
            let png = pagan_shared::grid::encode_png(16, 16, 1, &[value + i; 256]).expect("png");
            std::fs::write(empty_set.join(format!("{class}/{i}.png")), png).expect("write");
        }
    }
    std::fs::create_dir_all(empty_set.join("grey")).expect("mkdir");
    let out = bin()
        .args(["train", "--dataset", &format!("folder:{}", empty_set.display())])
        .args([
            "--preset", "demo", "--batch", "4", "--cond", "onehot", "--iters", "2",
        ])
        .args(common)
        .arg("--out")
        .arg(dir.path().join("run-empty"))
        .output()
        .expect("run pagan-train");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(r#"no training images of the classes ["grey"]"#),
        "{err}"
    );
    assert!(
        !dir.path().join("run-empty").exists(),
        "a refused run leaves no folder behind"
    );

    write_class("amber", 120);
    let out = bin()
        .arg("resume")
        .arg(&run_dir)
        .args(["--iters", "4"])
        .args(common)
        .output()
        .expect("run pagan-train");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(r#"trained on the classes ["bright", "dark"]"#) && err.contains("amber"),
        "{err}"
    );
}
