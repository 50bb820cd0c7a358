//! The semi-supervised GAN (Salimans et al. 2016; Odena 2016): D is a K-class classifier
//! whose "fake" class is implicit (its logit fixed at 0, so `D(x) = Z / (Z + 1)` with
//! `Z = Σ exp l_k`), trained on a few labelled images (cross-entropy), on every training
//! image as "real" and on G's images as "fake"; G follows D's features (feature matching,
//! as Salimans et al. found best for classification) or the non-saturating loss. The
//! baseline is the same network trained on the labelled images alone. Test-set accuracy is
//! logged at every evaluation.
//!
//! D is the SN-DCGAN discriminator's convolutions (`model::Discriminator::features`) with
//! a spectrally normalised K-way linear head; G is the SN-DCGAN generator.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use pagan_shared::rng::{SplitMix64, sample_without_replacement};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

use crate::config::{AdamConfig, Arch};
use crate::data::ImageSet;
use crate::model::spectral_norm::SpectralWeight;
use crate::model::{Discriminator, Generator};
use crate::objective::tricks::feature_matching;
use crate::rng::{self, derive_seed, stream};
use crate::run_dir::CONFIG_FILE;
use crate::train::adam::Adam;

/// The D conv whose output the head reads (and feature matching compares): the last.
const FEATURE_LAYER: usize = 6;
/// Test images per evaluation forward.
const EVAL_BATCH: usize = 500;

/// G's objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SemiGLoss {
    /// Match the mean of D's features on real data (Salimans et al.'s choice here).
    FeatureMatching,
    /// `-log D(G(z))` with `D = Z / (Z + 1)`.
    NonSaturating,
}

/// One semi-supervised (or supervised-only) run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SemiConfig {
    /// Network sizes (the image shape and the SN-DCGAN widths).
    pub arch: Arch,
    /// Classes (10 for MNIST, Fashion-MNIST, CIFAR-10).
    pub classes: usize,
    /// Labelled training images, the same number per class.
    pub labels: usize,
    /// Iterations (one D and one G update each).
    pub iters: u64,
    /// Images per batch (labelled, unlabelled and generated alike).
    pub batch: i64,
    /// Adam settings of both networks.
    pub adam: AdamConfig,
    /// Seed of the labelled subset, the initial weights and every draw.
    pub seed: u64,
    /// Iterations between test-set evaluations.
    pub eval_every: u64,
    /// G's objective.
    pub g_loss: SemiGLoss,
    /// Train only the classifier on the labelled images (the baseline).
    pub supervised_only: bool,
}

/// One evaluation: test-set accuracy and the losses of the latest step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SemiLine {
    /// Iterations done.
    pub iter: u64,
    /// Fraction of test images classified correctly.
    pub test_accuracy: f64,
    /// D's cross-entropy on the labelled batch.
    pub loss_supervised: f64,
    /// D's real/fake loss (0 for the supervised-only baseline).
    pub loss_unsupervised: f64,
    /// G's loss (0 for the baseline).
    pub g_loss: f64,
    /// Wall seconds since the start.
    pub seconds: f64,
}

/// The unsupervised half of D's loss with the implicit fake class:
/// `-E_real[log D(x)] - E_fake[log(1 - D(x))]`, `log D = LSE(l) - softplus(LSE(l))`,
/// `log(1 - D) = -softplus(LSE(l))`, from logits `[N, K]`.
pub fn unsupervised_loss(real_logits: &Tensor, fake_logits: &Tensor) -> Tensor {
    let lse_r = real_logits.logsumexp([1], false);
    let lse_f = fake_logits.logsumexp([1], false);
    let real = (&lse_r - lse_r.softplus()).mean(Kind::Float);
    let fake = lse_f.softplus().mean(Kind::Float);
    fake - real
}

/// `per_class` training indices of every class (`labels.len()` images, classes
/// `0..classes`), drawn without replacement with `seed`; ascending.
pub fn labelled_subset(labels: &[u8], classes: usize, per_class: usize, seed: u64) -> Result<Vec<usize>> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(classes * per_class);
    for c in 0..classes {
        let of_class: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] as usize == c).collect();
        if of_class.len() < per_class {
            bail!(
                "class {c} has {} training images, fewer than the {per_class} labels per class asked for",
                of_class.len()
            );
        }
        out.extend(
            sample_without_replacement(&mut rng, of_class.len(), per_class)
                .into_iter()
                .map(|i| of_class[i]),
        );
    }
    out.sort_unstable();
    Ok(out)
}

/// D's convolutions and a spectrally normalised K-way head.
struct Classifier {
    convs: Discriminator,
    head: SpectralWeight,
    bias: Tensor,
}

impl Classifier {
    fn new(p: &nn::Path, arch: &Arch, classes: usize) -> Self {
        let convs = Discriminator::new(&(p / "d"), arch, None, 0, 0);
        let features = convs.fc.weight.size()[1];
        let hp = p / "head";
        let w = hp.var(
            "weight",
            &[classes as i64, features],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        Classifier {
            convs,
            head: SpectralWeight::new(&hp, w),
            bias: hp.zeros("bias", &[classes as i64]),
        }
    }

    /// Features `[N, F]` and logits `[N, K]`.
    fn forward(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let f = self.convs.features(x, None, None, FEATURE_LAYER, train);
        let l = f.linear(&self.head.normalized(train, None), Some(&self.bias));
        (f, l)
    }
}

/// Images `[N, C, H, W]` in [-1, 1] on `device` for dataset indices `idx`.
fn batch_of(set: &ImageSet, idx: &[usize], device: Device) -> Tensor {
    let [_, c, h, w] = set.shape();
    let mut bytes = Vec::with_capacity(idx.len() * set.image_len());
    for &i in idx {
        bytes.extend_from_slice(set.image(i));
    }
    let x = Tensor::from_slice(&bytes).view([idx.len() as i64, c as i64, h as i64, w as i64]);
    x.to_device(device).to_kind(Kind::Float) / 127.5 - 1.0
}

fn labels_of(set: &ImageSet, idx: &[usize], device: Device) -> Result<Tensor> {
    let y: Vec<i64> = idx
        .iter()
        .map(|&i| set.label(i).map(i64::from).context("the dataset has no labels"))
        .collect::<Result<_>>()?;
    Ok(Tensor::from_slice(&y).to_device(device))
}

/// Test-set accuracy of `clf`.
fn accuracy(clf: &Classifier, test: &ImageSet, device: Device) -> Result<f64> {
    let mut right = 0i64;
    let all: Vec<usize> = (0..test.len()).collect();
    for chunk in all.chunks(EVAL_BATCH) {
        let x = batch_of(test, chunk, device);
        let y = labels_of(test, chunk, device)?;
        let (_, l) = tch::no_grad(|| clf.forward(&x, false));
        right += l.argmax(1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
    }
    Ok(right as f64 / test.len().max(1) as f64)
}

/// File of a run's evaluations, one [`SemiLine`] per line (beside `config.json`).
pub const METRICS_FILE: &str = "metrics.jsonl";

/// A semi-supervised run folder's config and evaluations; `None` when `dir` holds no
/// semi-supervised run (no `config.json`, or a GAN run's).
pub fn read_run(dir: &Path) -> Result<Option<(SemiConfig, Vec<SemiLine>)>> {
    let Ok(text) = std::fs::read(dir.join(CONFIG_FILE)) else {
        return Ok(None);
    };
    let Ok(cfg) = serde_json::from_slice::<SemiConfig>(&text) else {
        return Ok(None);
    };
    let path = dir.join(METRICS_FILE);
    let body = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let lines = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("corrupt line in {}", path.display())))
        .collect::<Result<Vec<SemiLine>>>()?;
    Ok(Some((cfg, lines)))
}

/// Trains one run on `train` (labelled subset drawn from it), evaluating on `test`; writes
/// `config.json` and `metrics.jsonl` (one [`SemiLine`] per evaluation) to `out`.
pub fn train(
    cfg: &SemiConfig,
    train: &ImageSet,
    test: &ImageSet,
    device: Device,
    out: &Path,
    quiet: bool,
) -> Result<Vec<SemiLine>> {
    let labels = train
        .labels
        .as_deref()
        .context("semi-supervised training needs a labelled dataset")?;
    if test.labels.is_none() {
        bail!("the test split has no labels to measure accuracy with");
    }
    if cfg.labels == 0 || !cfg.labels.is_multiple_of(cfg.classes) {
        bail!(
            "--labels must be a positive multiple of the {} classes (the same number per class), got {}",
            cfg.classes,
            cfg.labels
        );
    }
    if cfg.batch < 1 || cfg.iters == 0 || cfg.eval_every == 0 {
        bail!("--batch, --iters and --eval-every must be at least 1");
    }
    let labelled = labelled_subset(
        labels,
        cfg.classes,
        cfg.labels / cfg.classes,
        derive_seed(cfg.seed, stream::SEMI_LABELS, 0),
    )?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    pagan_shared::fs::write_atomic(
        &out.join(CONFIG_FILE),
        serde_json::to_string_pretty(cfg)?.as_bytes(),
    )?;
    let mut metrics = std::fs::File::create(out.join(METRICS_FILE)).context("creating metrics.jsonl")?;

    rng::seed_torch(derive_seed(cfg.seed, stream::INIT, 0));
    let vs = nn::VarStore::new(device);
    let g = Generator::new(&(vs.root() / "g"), &cfg.arch);
    let clf = Classifier::new(&vs.root(), &cfg.arch, cfg.classes);
    // G's parameters, and everything else (D's convolutions and the head).
    let params = |of_g: bool| -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(n, t)| n.starts_with("g.") == of_g && t.requires_grad())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let mut opt_d = Adam::new(cfg.adam, params(false));
    let mut opt_g = Adam::new(cfg.adam, params(true));

    let b = cfg.batch as usize;
    let bar = crate::progress::bar(cfg.iters, 0, "it", quiet);
    let started = Instant::now();
    let mut lines = Vec::new();
    for iter in 1..=cfg.iters {
        let mut draw = SplitMix64::new(derive_seed(cfg.seed, stream::STEP, iter));
        let lab: Vec<usize> = (0..b)
            .map(|_| labelled[draw.below(labelled.len() as u64) as usize])
            .collect();
        let x_lab = batch_of(train, &lab, device);
        let y_lab = labels_of(train, &lab, device)?;
        rng::seed_torch(derive_seed(cfg.seed, stream::STEP, iter));

        // D: the labelled, unlabelled and generated batches in one forward (D has no BN).
        let (loss_sup, loss_unsup, fake, x_unl) = if cfg.supervised_only {
            let (_, l) = clf.forward(&x_lab, true);
            (
                l.cross_entropy_for_logits(&y_lab),
                Tensor::zeros([], (Kind::Float, device)),
                None,
                None,
            )
        } else {
            let unl: Vec<usize> = (0..b).map(|_| draw.below(train.len() as u64) as usize).collect();
            let x_unl = batch_of(train, &unl, device);
            let z = Tensor::rand([cfg.batch, cfg.arch.latent], (Kind::Float, device)) * 2.0 - 1.0;
            let fake = g.forward(&z, true);
            let (_, l) = clf.forward(&Tensor::cat(&[&x_lab, &x_unl, &fake.detach()], 0), true);
            let parts = l.split(cfg.batch, 0);
            (
                parts[0].cross_entropy_for_logits(&y_lab),
                unsupervised_loss(&parts[1], &parts[2]),
                Some(fake),
                Some(x_unl),
            )
        };
        let d_loss = &loss_sup + &loss_unsup;
        let grads = Tensor::run_backward(&[&d_loss], &opt_d.tensors(), false, false);
        opt_d.advance();
        opt_d.update(&grads);

        let g_loss = match (fake, x_unl) {
            (Some(fake), Some(x_unl)) => {
                let loss = match cfg.g_loss {
                    SemiGLoss::FeatureMatching => {
                        let real_f = tch::no_grad(|| clf.forward(&x_unl, false).0);
                        feature_matching(&real_f, &clf.forward(&fake, false).0)
                    }
                    SemiGLoss::NonSaturating => {
                        let lse = clf.forward(&fake, false).1.logsumexp([1], false);
                        (lse.softplus() - lse).mean(Kind::Float)
                    }
                };
                let grads = Tensor::run_backward(&[&loss], &opt_g.tensors(), false, false);
                opt_g.advance();
                opt_g.update(&grads);
                loss.double_value(&[])
            }
            _ => 0.0,
        };
        bar.inc(1);
        if iter % cfg.eval_every == 0 || iter == cfg.iters {
            let line = SemiLine {
                iter,
                test_accuracy: accuracy(&clf, test, device)?,
                loss_supervised: loss_sup.double_value(&[]),
                loss_unsupervised: loss_unsup.double_value(&[]),
                g_loss,
                seconds: started.elapsed().as_secs_f64(),
            };
            if !line.loss_supervised.is_finite() || !line.loss_unsupervised.is_finite() || !g_loss.is_finite()
            {
                bail!("a loss became non-finite at iteration {iter}: {line:?}");
            }
            writeln!(metrics, "{}", serde_json::to_string(&line)?).context("writing metrics.jsonl")?;
            bar.set_message(format!("test accuracy {:.4}", line.test_accuracy));
            tracing::info!(iter, test_accuracy = line.test_accuracy, "evaluation");
            lines.push(line);
        }
    }
    bar.finish_and_clear();
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupervised_loss_matches_the_formula_in_f64() {
        let real = [[0.3, -1.2, 2.0], [1.0, 0.0, -0.5]];
        let fake = [[-0.7, 0.4, 0.1], [2.5, -3.0, 0.0]];
        let d = |l: &[f64; 3]| {
            let z: f64 = l.iter().map(|v| v.exp()).sum();
            z / (z + 1.0)
        };
        let want = -(real.iter().map(|l| d(l).ln()).sum::<f64>() / 2.0)
            - fake.iter().map(|l| (1.0 - d(l)).ln()).sum::<f64>() / 2.0;
        let t = |v: &[[f64; 3]; 2]| Tensor::from_slice(&v.concat()).view([2, 3]).to_kind(Kind::Float);
        let got = unsupervised_loss(&t(&real), &t(&fake)).double_value(&[]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn labelled_subsets_are_balanced_seeded_and_refuse_too_many() {
        let labels: Vec<u8> = (0..100).map(|i| (i % 4) as u8).collect();
        let a = labelled_subset(&labels, 4, 3, 7).expect("subset");
        assert_eq!(a.len(), 12);
        for c in 0..4 {
            assert_eq!(a.iter().filter(|&&i| labels[i] as usize == c).count(), 3);
        }
        assert_eq!(a, labelled_subset(&labels, 4, 3, 7).expect("subset"));
        assert_ne!(a, labelled_subset(&labels, 4, 3, 8).expect("subset"));
        assert!(labelled_subset(&labels, 4, 26, 7).is_err());
    }
}
