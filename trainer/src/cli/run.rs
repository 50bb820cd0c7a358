//! `pagan-train sample` and `export`: what a trained run gives.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use pagan_trainer::run_dir::RunDir;

use super::{Common, usage};

#[derive(Args)]
pub struct SampleArgs {
    /// Run folder.
    run: PathBuf,
    /// Number of images (grid format).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Seed of the latents (the same seed gives the same z in the server; a conditional run's grid
    /// draws one z per column instead).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Latents [N, latent] as float32 .npy instead of --n/--seed.
    #[arg(long)]
    z: Option<PathBuf>,
    /// A class-conditional run's classes, comma-separated, as label numbers (0..K-1) or names (a name wins over a
    /// number): one for every image, or one per image. Without it a conditional run's grid has one row per class (ceil(n / classes)
    /// columns, each column one z) and npy output cycles through the classes.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Output format: grid (PNG) or npy (raw float32 [N, C, H, W] in [-1, 1]).
    #[arg(long, default_value = "grid", value_parser = ["grid", "npy"])]
    format: String,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// The most images `sample` puts in one grid (larger requests are typos, or need `export` and
/// the server, which generates in batches).
const MAX_GRID: usize = 100_000;

/// `pagan-train sample`.
pub fn sample(a: SampleArgs) -> Result<()> {
    let z_path = match (a.format.as_str(), &a.z) {
        ("npy", Some(z)) => Some(z.clone()),
        ("npy", None) => return Err(usage("--format npy needs --z z.npy (latents in, raw images out)")),
        (_, Some(_)) => return Err(usage("--z goes with --format npy")),
        _ => None,
    };
    if z_path.is_none() && !(1..=MAX_GRID).contains(&a.n) {
        return Err(usage(format!(
            "--n must be 1..={MAX_GRID} (the images of one PNG grid), got {}",
            a.n
        )));
    }
    // The extension says what the file holds: a typo'd --out must not overwrite, say, a
    // run's config.json with image bytes.
    let ext = if z_path.is_some() { "npy" } else { "png" };
    if a.out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
        != Some(ext)
    {
        return Err(usage(format!(
            "--out {} must end in .{ext} (--format {} writes {ext})",
            a.out.display(),
            a.format
        )));
    }
    let dev = a.common.setup()?;
    let (cfg, _meta, gan) = RunDir::at(&a.run).load_gan(dev)?;
    let [c, h, w] = gan.image_shape();
    let classes = cfg.cond.as_ref().map(|c| c.classes.as_slice());
    let labels = parse_labels(&a.labels, classes)?;
    let n_images = z_path.as_ref().map_or(Some(a.n), |_| None);
    if let (Some(y), Some(n)) = (&labels, n_images)
        && y.len() != 1
        && y.len() != n
    {
        return Err(usage(format!(
            "--labels gives {} labels for --n {n}: give one, or one per image",
            y.len()
        )));
    }
    match z_path {
        Some(zp) => {
            let (z, shape) = pagan_shared::npy::read(&zp)?;
            let latent = cfg.arch.latent as usize;
            if shape.len() != 2 || shape[1] != latent {
                return Err(usage(format!(
                    "{}: latents must be 2-D [N, {latent}] for this run, found shape {shape:?}",
                    zp.display()
                )));
            }
            if let Some(y) = &labels
                && y.len() != 1
                && y.len() != shape[0]
            {
                return Err(usage(format!(
                    "--labels gives {} labels for the {} latents of {}: give one, or one per latent",
                    y.len(),
                    shape[0],
                    zp.display()
                )));
            }
            let images = gan.generate(&z, shape[0], spread(labels, shape[0]).as_deref())?;
            pagan_shared::npy::write(&a.out, &images, &[shape[0], c, h, w])?;
        }
        None => {
            let latent = cfg.arch.latent as usize;
            let (z, n, labels, cols) = match (classes, labels) {
                // One row per class, each column one z.
                (Some(names), None) => {
                    let k = names.len();
                    let cols = a.n.div_ceil(k);
                    let z = pagan_shared::latent::uniform(a.seed, cols, latent).repeat(k);
                    let y = pagan_trainer::model::generator::class_row_labels(k as i64, cols as i64);
                    (z, k * cols, Some(y), cols)
                }
                (_, y) => {
                    let z = pagan_shared::latent::uniform(a.seed, a.n, latent);
                    (z, a.n, spread(y, a.n), (a.n as f64).sqrt().ceil() as usize)
                }
            };
            let images = gan.generate(&z, n, labels.as_deref())?;
            pagan_shared::grid::save_grid(&a.out, &images, [n, c, h, w], cols)?;
        }
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

/// `--labels` as label numbers, each a class of the run (given by number or by name).
fn parse_labels(given: &[String], classes: Option<&[String]>) -> Result<Option<Vec<i64>>> {
    if given.is_empty() {
        return Ok(None);
    }
    let Some(names) = classes else {
        return Err(usage(
            "--labels needs a class-conditional run (trained with --cond)",
        ));
    };
    given
        .iter()
        .map(|s| {
            let s = s.trim();
            names
                .iter()
                .position(|n| n == s)
                .or_else(|| s.parse::<usize>().ok().filter(|&i| i < names.len()))
                .map(|i| i as i64)
                .ok_or_else(|| {
                    usage(format!(
                        "--labels: `{s}` is not a class of this run (0..{} or one of {names:?})",
                        names.len() - 1
                    ))
                })
        })
        .collect::<Result<Vec<i64>>>()
        .map(Some)
}

/// One label for every image when a single one was given.
fn spread(labels: Option<Vec<i64>>, n: usize) -> Option<Vec<i64>> {
    labels.map(|y| if y.len() == 1 { vec![y[0]; n] } else { y })
}

#[derive(Args)]
pub struct ExportArgs {
    /// Run folder.
    run: PathBuf,
    /// Model folder to write (e.g. models/fmnist-pa); its name is the model's name.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// `pagan-train export`.
pub fn export(a: ExportArgs) -> Result<()> {
    let name = a.out.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !pagan_shared::manifest::is_valid_name(name) {
        return Err(usage(format!(
            "--out {}: the model folder's name must be ASCII letters, digits, `-`, `_` or `.` (not \
             first), at most 64 characters (pagan-serve loads only such names)",
            a.out.display()
        )));
    }
    let dev = a.common.setup()?;
    let r = pagan_trainer::export::export_run(&a.run, &a.out, dev)?;
    println!(
        "wrote {} and {} (ORT vs tch max |diff| {:.2e} at batch sizes {:?})",
        r.onnx_path.display(),
        r.manifest_path.display(),
        r.max_abs_diff,
        r.batch_sizes
    );
    Ok(())
}
