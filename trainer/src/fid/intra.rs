//! Intra-class FID of a class-conditional generator (Miyato & Koyama 2018): for each class,
//! the FID of generated images of that class against the dataset's images of that class,
//! and the mean over classes. Every FID goes the shared path (`pagan_shared::score`).

use anyhow::{Result, bail};
use pagan_shared::features::FeatureExtractor;
use pagan_shared::score;
use serde::Serialize;

use super::extract::{ExtractOptions, extract};
use super::sources::{DatasetImages, GeneratedImages};
use crate::data::ImageSet;
use crate::model::Gan;

/// One class's FID.
#[derive(Debug, Clone, Serialize)]
pub struct ClassFid {
    /// Class label.
    pub label: i64,
    /// Class name.
    pub class: String,
    /// FID of the generated images of this class vs the reference images of this class.
    pub fid: f64,
    /// Generated images.
    pub n: u64,
    /// Reference images of this class.
    pub reference_n: u64,
    /// How the square root was taken (`pagan_shared::score`).
    pub sqrt_method: &'static str,
}

/// Per-class FIDs and their mean.
#[derive(Debug, Clone, Serialize)]
pub struct IntraClassFid {
    /// Mean of the per-class FIDs.
    pub mean: f64,
    /// Each class, in label order.
    pub classes: Vec<ClassFid>,
}

/// How many images intra-class FID compares, per class.
#[derive(Debug, Clone, Copy)]
pub struct IntraOptions {
    /// Generated images per class.
    pub n: usize,
    /// Reference images per class, at most (a seeded subset when the class has more).
    pub reference_n: usize,
    /// Seed of the latents (the same z for every class) and of the reference subsets.
    pub seed: u64,
}

/// Intra-class FID of `gan` (class-conditional, classes named `names`) against `set`'s
/// labelled images, as `o` says.
pub fn intra_class_fid(
    gan: &Gan,
    names: &[String],
    set: &ImageSet,
    o: IntraOptions,
    fx: &mut dyn FeatureExtractor,
    opts: &ExtractOptions,
) -> Result<IntraClassFid> {
    let IntraOptions { n, reference_n, seed } = o;
    let Some(labels) = set.labels.as_deref() else {
        bail!(
            "intra-class FID needs the reference images' labels, and {} has none",
            set.source
        );
    };
    if gan.g.classes.is_none() {
        bail!("intra-class FID needs a class-conditional run (trained with --cond)");
    }
    let mut classes = Vec::with_capacity(names.len());
    for (label, name) in names.iter().enumerate() {
        let of_class: Vec<usize> = (0..set.len())
            .filter(|&i| usize::from(labels[i]) == label)
            .collect();
        if of_class.len() < 2 {
            bail!(
                "class {label} ({name}) has {} reference images in {}; FID needs at least 2 (a larger split: --split train)",
                of_class.len(),
                set.source
            );
        }
        let label = label as i64;
        let picked = DatasetImages::subset_of(set, &of_class, reference_n, seed);
        let step = |what: &str| ExtractOptions {
            label: format!("{} {what} `{name}`", opts.label),
            ..opts.clone()
        };
        let reference = extract(&mut { picked }, fx, &step("reference"))?.features;
        let generated = extract(
            &mut GeneratedImages::of_class(gan, n, seed, label),
            fx,
            &step("generated"),
        )?
        .features;
        let (fid, sqrt_method) = score::fid_with_method(&generated, &reference.stats.finalize()?)?;
        classes.push(ClassFid {
            label,
            class: name.clone(),
            fid,
            n: generated.n(),
            reference_n: reference.n(),
            sqrt_method,
        });
    }
    let mean = classes.iter().map(|c| c.fid).sum::<f64>() / classes.len().max(1) as f64;
    Ok(IntraClassFid { mean, classes })
}
