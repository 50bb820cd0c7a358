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
use crate::native::lanes::Lanes;
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
        let (g, mut d) = match &cfg.cond {
            None => (
                Generator::new(&(vs.root() / "g"), &cfg.arch),
                Discriminator::new(
                    &(vs.root() / "d"),
                    &cfg.arch,
                    cfg.pa.layer(cfg.pa_feat_layer),
                    cfg.max_level,
                    level,
                ),
            ),
            Some(cond) => (
                Generator::conditional(&(vs.root() / "g"), &cfg.arch, cond.g, cond.n_classes()),
                Discriminator::conditional(
                    &(vs.root() / "d"),
                    &cfg.arch,
                    cfg.pa.layer(cfg.pa_feat_layer),
                    cfg.max_level,
                    level,
                    cond,
                ),
            ),
        };
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
    /// run's layer on its own (bit for bit its single run), on per-run CUDA streams with
    /// `Streams` (where this build or device has none, the log says so and they run in turn).
    pub fn set_kernels(&mut self, kernels: crate::ops::StackKernels) {
        self.g.kernels = kernels;
        self.d.set_kernels(kernels);
        let lanes = match kernels {
            crate::ops::StackKernels::Streams => Lanes::new(self.device(), self.g.models as usize)
                .unwrap_or_else(|e| {
                    tracing::warn!("per-run streams: none ({e}); the runs take turns");
                    Lanes::default()
                }),
            _ => Lanes::default(),
        };
        if self.g.models > 1 {
            let on = if lanes.active() {
                ", one CUDA stream per run"
            } else {
                ""
            };
            let word = crate::config::Choice::word(kernels);
            tracing::info!("stack of {} runs: {word} kernels{on}", self.g.models);
        }
        self.g.lanes = lanes.clone();
        self.d.lanes = lanes;
    }

    /// The per-run CUDA streams of a stack (none unless set by [`Self::set_kernels`]).
    pub fn lanes(&self) -> &Lanes {
        &self.d.lanes
    }

    /// The device the networks live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Runs G in eval mode on latents `z` ([n, latent] row-major) in batches of 256;
    /// returns the images [n, C, H, W] in [-1, 1] as f32 values on the host. A
    /// class-conditional G takes `labels` (n of them, each a class), or cycles through the
    /// classes without them; an unconditional G refuses labels.
    pub fn generate(&self, z: &[f32], n: usize, labels: Option<&[i64]>) -> Result<Vec<f32>> {
        let latent = self.g.arch.latent as usize;
        if n == 0 || z.len() != n * latent {
            bail!(
                "latents must have shape [N, {latent}] with N >= 1; got {} values for N = {n}",
                z.len()
            );
        }
        let labels: Option<Vec<i64>> = match (&self.g.classes, labels) {
            (None, None) => None,
            (None, Some(_)) => bail!("this generator is not class-conditional: it takes no labels"),
            (Some(c), y) => {
                let k = c.table.size()[0];
                let y = y.map_or_else(
                    || pagan_shared::manifest::cycle_labels(0, n, k as usize),
                    <[i64]>::to_vec,
                );
                if y.len() != n {
                    bail!("{} labels for {n} images: give one per image", y.len());
                }
                if let Some(bad) = y.iter().find(|&&l| !(0..k).contains(&l)) {
                    bail!("label {bad} is not a class of this generator (0..{})", k - 1);
                }
                Some(y)
            }
        };
        let mut out = Vec::with_capacity(n * self.g.arch.image.iter().product::<i64>() as usize);
        // Batches of 256 keep memory flat for large N.
        for (i, chunk) in z.chunks(256 * latent).enumerate() {
            let zt = Tensor::from_slice(chunk)
                .view([-1, latent as i64])
                .to_device(self.device());
            let yt = labels.as_ref().map(|y| {
                let start = i * 256;
                Tensor::from_slice(&y[start..(start + 256).min(n)]).to_device(self.device())
            });
            let x = tch::no_grad(|| self.g.forward_labelled(&zt, yt.as_ref(), false))
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
