//! `pagan-train sample`: images from a run's newest checkpoint, as a grid or raw arrays.

use std::path::Path;

use anyhow::{Context, Result, bail};
use tch::{Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::train::{Gan, load_gan};

/// Generated images as f32 NCHW in [-1, 1] with their shape.
pub struct Images {
    /// Values, row-major.
    pub data: Vec<f32>,
    /// [N, C, H, W].
    pub shape: [usize; 4],
}

/// Runs a loaded generator (eval mode) on the given latents [n, latent].
pub fn generate(cfg: &TrainConfig, gan: &Gan, device: Device, z: &[f32], n: usize) -> Result<Images> {
    let latent = cfg.arch.latent as usize;
    if n == 0 || z.len() != n * latent {
        bail!(
            "latents must have shape [N, {latent}] with N >= 1; got {} values for N = {n}",
            z.len()
        );
    }
    let mut out = Vec::with_capacity(n * cfg.arch.image.iter().product::<i64>() as usize);
    // Batches of 256 keep memory flat for large N.
    for chunk in z.chunks(256 * latent) {
        let zt = Tensor::from_slice(chunk)
            .view([-1, latent as i64])
            .to_device(device);
        let x = tch::no_grad(|| gan.g.forward(&zt, false))
            .to_device(Device::Cpu)
            .to_kind(Kind::Float);
        out.extend(Vec::<f32>::try_from(x.flatten(0, -1))?);
    }
    let [c, h, w] = cfg.arch.image.map(|v| v as usize);
    Ok(Images {
        data: out,
        shape: [n, c, h, w],
    })
}

/// Writes an 8-column grid PNG of `n` images drawn with `seed` (shared latent sampler).
pub fn sample_grid(run: &Path, device: Device, n: usize, seed: u64, out: &Path) -> Result<()> {
    let (cfg, _meta, gan) = load_gan(run, device)?;
    let z = pagan_shared::latent::uniform(seed, n, cfg.arch.latent as usize);
    let imgs = generate(&cfg, &gan, device, &z, n)?;
    let cols = (n as f64).sqrt().ceil() as usize;
    pagan_shared::grid::save_grid(out, &imgs.data, imgs.shape, cols)
        .with_context(|| format!("writing {}", out.display()))
}

/// Reads latents from `z_path` ([N, latent] f32 .npy) and writes raw images [N, C, H, W] f32 to `out`.
pub fn sample_npy(run: &Path, device: Device, z_path: &Path, out: &Path) -> Result<()> {
    let (z, shape) = pagan_shared::npy::read(z_path)?;
    if shape.len() != 2 {
        bail!(
            "{}: latents must be 2-D [N, latent], found shape {shape:?}",
            z_path.display()
        );
    }
    let (cfg, _meta, gan) = load_gan(run, device)?;
    let imgs = generate(&cfg, &gan, device, &z, shape[0])?;
    pagan_shared::npy::write(out, &imgs.data, &imgs.shape)?;
    Ok(())
}

/// Writes `n` latents drawn with `seed` as an .npy file (for reproducible pipelines).
pub fn write_latents(path: &Path, seed: u64, n: usize, latent: usize) -> Result<()> {
    let z = pagan_shared::latent::uniform(seed, n, latent);
    pagan_shared::npy::write(path, &z, &[n, latent])?;
    Ok(())
}
