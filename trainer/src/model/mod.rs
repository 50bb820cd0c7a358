//! The SN-DCGAN of PAPER.md: layers and geometry, our spectral norm, the generator (one
//! forward for tch and ONNX), the discriminator with pre-allocated PA bit channels, and
//! [`Gan`], both networks in one variable store.

pub mod discriminator;
pub mod generator;
pub mod layers;
pub mod spectral_norm;
pub mod stack;

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor, nn};

pub use discriminator::Discriminator;
pub use generator::Generator;
pub use layers::MinibatchStd;

use crate::config::TrainConfig;
use crate::rng::{self, stream};

/// G and D in one variable store (names `g.*`, `d.*`).
pub struct Gan {
    /// All variables: parameters and buffers.
    pub vs: nn::VarStore,
    /// Generator.
    pub g: Generator,
    /// Discriminator.
    pub d: Discriminator,
}

impl Gan {
    /// Builds both networks for a config at PA level `level`, initialised from the run's seed.
    pub fn new(cfg: &TrainConfig, device: Device, level: i64) -> Self {
        rng::seed_torch(rng::derive_seed(cfg.seed, stream::INIT, 0));
        let vs = nn::VarStore::new(device);
        let g = Generator::new(&(vs.root() / "g"), &cfg.arch);
        let mut d = Discriminator::new(
            &(vs.root() / "d"),
            &cfg.arch,
            cfg.pa.layer(cfg.pa_feat_layer),
            cfg.max_level,
            level,
        );
        d.dropout = (cfg.reg.dropout > 0.0).then_some((cfg.reg.dropout_layer, cfg.reg.dropout));
        if cfg.tricks.minibatch_std {
            d.minibatch_std = Some(MinibatchStd::new(&(vs.root() / "d" / "mbstd"), cfg.batch));
        }
        Self { vs, g, d }
    }

    /// Every variable with its name, sorted (parameters and buffers).
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Trainable parameters under `prefix` ("g." or "d."), sorted by name.
    pub fn params(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.named()
            .into_iter()
            .filter(|(n, t)| n.starts_with(prefix) && t.requires_grad())
            .collect()
    }

    /// How a stack runs its layers: grouped kernels (one per layer for all runs) or each
    /// run's layer on its own (bit for bit its single run).
    pub fn set_kernels(&mut self, kernels: crate::ops::StackKernels) {
        self.g.kernels = kernels;
        self.d.set_kernels(kernels);
    }

    /// The device the networks live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Runs G in eval mode on latents `z` ([n, latent] row-major) in batches of 256;
    /// returns the images [n, C, H, W] in [-1, 1] as f32 values on the host.
    pub fn generate(&self, z: &[f32], n: usize) -> Result<Vec<f32>> {
        let latent = self.g.arch.latent as usize;
        if n == 0 || z.len() != n * latent {
            bail!(
                "latents must have shape [N, {latent}] with N >= 1; got {} values for N = {n}",
                z.len()
            );
        }
        let mut out = Vec::with_capacity(n * self.g.arch.image.iter().product::<i64>() as usize);
        // Batches of 256 keep memory flat for large N.
        for chunk in z.chunks(256 * latent) {
            let zt = Tensor::from_slice(chunk)
                .view([-1, latent as i64])
                .to_device(self.device());
            let x = tch::no_grad(|| self.g.forward(&zt, false))
                .to_device(Device::Cpu)
                .to_kind(Kind::Float);
            out.extend(Vec::<f32>::try_from(x.flatten(0, -1))?);
        }
        Ok(out)
    }

    /// The image shape [C, H, W] G produces.
    pub fn image_shape(&self) -> [usize; 3] {
        self.g.arch.image.map(|v| v as usize)
    }
}
