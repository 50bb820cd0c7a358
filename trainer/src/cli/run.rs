//! `pagan-train sample` and `export`: what a trained run gives.

use std::path::PathBuf;

use anyhow::{Result, bail};
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
    /// Seed of the latents (the same seed gives the same z in the server).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Latents [N, latent] as float32 .npy instead of --n/--seed.
    #[arg(long)]
    z: Option<PathBuf>,
    /// Output format: grid (PNG) or npy (raw float32 [N, C, H, W] in [-1, 1]).
    #[arg(long, default_value = "grid", value_parser = ["grid", "npy"])]
    format: String,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// `pagan-train sample`.
pub fn sample(a: SampleArgs) -> Result<()> {
    let z_path = match (a.format.as_str(), &a.z) {
        ("npy", Some(z)) => Some(z.clone()),
        ("npy", None) => return Err(usage("--format npy needs --z z.npy (latents in, raw images out)")),
        (_, Some(_)) => return Err(usage("--z goes with --format npy")),
        _ => None,
    };
    if z_path.is_none() && a.n == 0 {
        return Err(usage("--n must be at least 1"));
    }
    let dev = a.common.setup()?;
    let (cfg, _meta, gan) = RunDir::at(&a.run).load_gan(dev)?;
    let [c, h, w] = gan.image_shape();
    match z_path {
        Some(zp) => {
            let (z, shape) = pagan_shared::npy::read(&zp)?;
            if shape.len() != 2 {
                bail!(
                    "{}: latents must be 2-D [N, latent], found shape {shape:?}",
                    zp.display()
                );
            }
            let images = gan.generate(&z, shape[0])?;
            pagan_shared::npy::write(&a.out, &images, &[shape[0], c, h, w])?;
        }
        None => {
            let z = pagan_shared::latent::uniform(a.seed, a.n, cfg.arch.latent as usize);
            let images = gan.generate(&z, a.n)?;
            let cols = (a.n as f64).sqrt().ceil() as usize;
            pagan_shared::grid::save_grid(&a.out, &images, [a.n, c, h, w], cols)?;
        }
    }
    println!("wrote {}", a.out.display());
    Ok(())
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
