//! Inception-v3 with the TF 2015-12-05 weights, the network every comparable FID uses:
//! our own tch module (names equal the TorchScript's), its preprocessing and weight
//! loading. Its ONNX export lives in the `export` module.

pub mod arch;
pub mod preprocess;
pub mod weights;

use std::path::{Path, PathBuf};

use pagan_shared::inception::{FEATURE_DIM, INPUT_SIDE, ResizeMode};
use tch::{Device, Kind, Tensor, nn};

pub use arch::InceptionNet;
pub use preprocess::preprocess;
pub use weights::WeightsError;

/// The feature extractor on one device.
#[derive(Debug)]
pub struct Inception {
    vs: nn::VarStore,
    net: InceptionNet,
    mode: ResizeMode,
    source: PathBuf,
    sha256: String,
    channels_last: bool,
}

impl Inception {
    /// Loads the weights at `path` (TorchScript module or pytorch-fid state dict) onto
    /// `device`; `mode` is the resize applied by [`Self::features`].
    pub fn load(path: &Path, device: Device, mode: ResizeMode) -> Result<Self, WeightsError> {
        let named = weights::read_named(path)?;
        // For provenance: which exact weights file every score came from.
        let sha256 = std::fs::read(path)
            .map(|b| pagan_shared::manifest::sha256_hex(&b))
            .map_err(|e| WeightsError::Mismatch {
                path: path.to_path_buf(),
                message: format!("reading it again for its sha256: {e}"),
            })?;
        let vs = nn::VarStore::new(Device::Cpu);
        let net = InceptionNet::new(&vs.root());
        weights::assign(path, &vs.variables(), named)?;
        let mut vs = vs;
        // set_device swaps each variable's data in place, so the net's handles follow.
        vs.set_device(device);
        Ok(Self {
            vs,
            net,
            mode,
            source: path.to_path_buf(),
            sha256,
            channels_last: true,
        })
    }

    /// The resize convention of [`Self::features`].
    pub fn mode(&self) -> ResizeMode {
        self.mode
    }

    /// The device the network lives on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The weights file.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// sha256 of the weights file.
    pub fn weights_sha256(&self) -> &str {
        &self.sha256
    }

    /// The network (for export).
    pub fn net(&self) -> &InceptionNet {
        &self.net
    }

    /// Lays activations out channels-last (the default) or channels-first (for comparing
    /// the two in `bench-inception`).
    pub fn set_channels_last(&mut self, on: bool) {
        self.channels_last = on;
    }

    /// Features of already preprocessed [N, 3, 299, 299] inputs: [N, 2048] f32.
    pub fn features_preprocessed(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let x = x.to_device(self.device()).to_kind(Kind::Float);
            // Channels-last strides (NHWC memory, NCHW shape): every layer after follows
            // the input's layout. On a CPU its convolutions and, above all, its pooling
            // layers run ~1.45x faster than channels-first (bench-inception, 2 threads);
            // features differ only by summation order.
            let x = if self.channels_last {
                x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
            } else {
                x
            };
            let y = crate::ops::run_tch(self.net.forward(&mut crate::ops::TchOps::eval(), &x));
            y.view([-1, FEATURE_DIM as i64])
        })
    }

    /// Features of images [N, C, H, W] in 0..255 (C = 1 or 3, any size): [N, 2048] f32 on
    /// the network's device.
    pub fn features(&self, images: &Tensor) -> Tensor {
        let x = images.to_device(self.device());
        let x = tch::no_grad(|| preprocess(&x, self.mode));
        debug_assert_eq!(x.size()[2], INPUT_SIDE as i64);
        self.features_preprocessed(&x)
    }
}
