//! `pagan-train ssgan`: the semi-supervised GAN (D classifies K classes + fake) on a few
//! labelled images, or the same classifier trained on those labels alone (the baseline).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use pagan_trainer::config::{AdamConfig, Preset};
use pagan_trainer::data::{self, DatasetSpec, Split};
use pagan_trainer::semi::{self, SemiConfig, SemiGLoss};

use super::{Common, choice, usage};

/// G's objective in `ssgan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GLossArg {
    /// Feature matching on D's last conv features (Salimans et al.'s choice for classification).
    Fm,
    /// Non-saturating: -log D(G(z)) with D = Z / (Z + 1).
    Ns,
}

/// `ssgan` arguments.
#[derive(Args)]
pub struct SemiArgs {
    /// Labelled dataset: mnist, fashion-mnist or cifar10.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Labelled training images, the same number per class (e.g. 100 = 10 per class).
    #[arg(long, default_value_t = 100)]
    labels: usize,
    /// Network widths: paper (SN-DCGAN as in the paper) or demo (quarter width, for CPUs).
    #[arg(long, default_value = "demo", value_parser = choice::<Preset>())]
    preset: Preset,
    /// Iterations (one D and one G update each).
    #[arg(long, default_value_t = 3000)]
    iters: u64,
    /// Images per batch (labelled, unlabelled and generated alike).
    #[arg(long, default_value_t = 64)]
    batch: i64,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Adam beta1.
    #[arg(long, default_value_t = 0.5)]
    beta1: f64,
    /// Seed of the labelled subset, the weights and every draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Iterations between test-set accuracy evaluations.
    #[arg(long, default_value_t = 500)]
    eval_every: u64,
    /// Only the first N test images for the accuracy (default: the whole test split).
    #[arg(long)]
    test_limit: Option<usize>,
    /// G's objective.
    #[arg(long, value_enum, default_value = "fm")]
    g_loss: GLossArg,
    /// Train the classifier on the labelled images alone (the baseline; no G, no unlabelled data).
    #[arg(long)]
    supervised_only: bool,
    /// Output folder (config.json, metrics.jsonl: one line per evaluation).
    #[arg(long)]
    out: PathBuf,
    /// Data folder (default: $PAGAN_DATA, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// Runs `ssgan`.
pub fn ssgan(a: SemiArgs) -> Result<()> {
    let spec: DatasetSpec = a.dataset.parse().map_err(usage)?;
    if !matches!(
        spec,
        DatasetSpec::Mnist | DatasetSpec::FashionMnist | DatasetSpec::Cifar10
    ) {
        return Err(usage(format!(
            "ssgan needs a labelled dataset (mnist, fashion-mnist, cifar10), got {spec}"
        )));
    }
    if a.batch < 1 || a.iters == 0 || a.eval_every == 0 {
        return Err(usage("--batch, --iters and --eval-every must be at least 1"));
    }
    if !(a.lr > 0.0 && a.lr.is_finite() && (0.0..1.0).contains(&a.beta1)) {
        return Err(usage(format!(
            "--lr must be positive and --beta1 in [0, 1), got {} and {}",
            a.lr, a.beta1
        )));
    }
    if a.labels == 0 || !a.labels.is_multiple_of(10) {
        return Err(usage(format!(
            "--labels must be a positive multiple of the 10 classes (the same number per class), got {}",
            a.labels
        )));
    }
    if a.test_limit == Some(0) {
        return Err(usage(
            "--test-limit must be at least 1 (test images to measure accuracy on)",
        ));
    }
    if a.out.join("metrics.jsonl").exists() {
        bail!("{} already holds a run; choose another --out", a.out.display());
    }
    let dev = a.common.setup()?;
    let data_dir = data::resolve_data_dir(a.data_dir.as_deref());
    let train = data::load(&spec, Split::Train, &data_dir, None)?;
    let test = data::load(&spec, Split::Test, &data_dir, a.test_limit)?;
    if let Some(labels) = &train.labels {
        let per_class = a.labels / 10;
        if let Some(c) = (0u8..10).find(|&c| labels.iter().filter(|&&l| l == c).count() < per_class) {
            return Err(usage(format!(
                "--labels {} asks for {per_class} labelled images of class {c}, and the training split has fewer",
                a.labels
            )));
        }
    }
    let [_, c, h, w] = train.shape();
    let cfg = SemiConfig {
        arch: a.preset.arch([c as i64, h as i64, w as i64]),
        classes: 10,
        labels: a.labels,
        iters: a.iters,
        batch: a.batch,
        adam: AdamConfig {
            lr: a.lr,
            beta1: a.beta1,
            ..AdamConfig::default()
        },
        seed: a.seed,
        eval_every: a.eval_every,
        g_loss: match a.g_loss {
            GLossArg::Fm => SemiGLoss::FeatureMatching,
            GLossArg::Ns => SemiGLoss::NonSaturating,
        },
        supervised_only: a.supervised_only,
    };
    let lines = semi::train(&cfg, &train, &test, dev, &a.out, a.common.quiet)?;
    let what = if a.supervised_only {
        "supervised only"
    } else {
        "semi-supervised GAN"
    };
    println!(
        "{what}, {} labels of {spec}; test accuracy over training:",
        a.labels
    );
    println!("| iteration | test accuracy | seconds |");
    println!("|---|---|---|");
    for l in &lines {
        println!("| {} | {:.4} | {:.0} |", l.iter, l.test_accuracy, l.seconds);
    }
    println!("wrote {}/metrics.jsonl", a.out.display());
    Ok(())
}
