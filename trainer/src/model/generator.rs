//! The generator: linear -> BN -> ReLU -> 3 x (deconv 4x4/2 -> BN -> ReLU) -> deconv 3x3/1
//! -> tanh (PAPER.md). Its forward pass is written once, over `crate::ops::Ops`: tch runs
//! it, the exporter records the same code as the ONNX graph.

use tch::{Tensor, nn};

use super::layers::{BatchNorm, Deconv, deconv_padding, g_sizes, normal_init};
use crate::config::Arch;
use crate::ops::{ConvGeometry, Ops, TchOps, run_tch};

/// The generator's variables and shapes.
#[derive(Debug)]
pub struct Generator {
    /// The architecture it was built from.
    pub arch: Arch,
    /// Linear weight [F, latent] with F = c0 * s0h * s0w.
    pub fc_weight: Tensor,
    /// Linear bias [F].
    pub fc_bias: Tensor,
    /// BN over the F linear outputs (before the reshape).
    pub bn0: BatchNorm,
    /// The three upsampling deconvs.
    pub ups: Vec<Deconv>,
    /// BN after each upsampling deconv.
    pub bns: Vec<BatchNorm>,
    /// Final 3x3 stride-1 deconv to the image channels.
    pub out: Deconv,
    /// Start feature map [c0, s0h, s0w].
    pub start: [i64; 3],
}

impl Generator {
    /// Builds G under `p` (variables `fc.*`, `bn0.*`, `up{1,2,3}.*`, `bn{1,2,3}.*`, `out.*`).
    pub fn new(p: &nn::Path, arch: &Arch) -> Self {
        let [c, h, w] = arch.image;
        let (hs, ws) = (g_sizes(h), g_sizes(w));
        let gw = arch.g_widths;
        let f = gw[0] * hs[0] * ws[0];
        let fc_weight = (p / "fc").var("weight", &[f, arch.latent], normal_init());
        let fc_bias = (p / "fc").zeros("bias", &[f]);
        let bn0 = BatchNorm::new(&(p / "bn0"), f);
        let mut ups = Vec::new();
        let mut bns = Vec::new();
        for i in 0..3 {
            let (ph, oph) = deconv_padding(hs[i], hs[i + 1]);
            let (pw, opw) = deconv_padding(ws[i], ws[i + 1]);
            ups.push(Deconv {
                weight: (p / format!("up{}", i + 1)).var("weight", &[gw[i], gw[i + 1], 4, 4], normal_init()),
                bias: None,
                geometry: ConvGeometry {
                    stride: 2,
                    padding: [ph, pw],
                    output_padding: [oph, opw],
                },
            });
            bns.push(BatchNorm::new(&(p / format!("bn{}", i + 1)), gw[i + 1]));
        }
        let out = Deconv {
            weight: (p / "out").var("weight", &[gw[3], c, 3, 3], normal_init()),
            bias: Some((p / "out").zeros("bias", &[c])),
            geometry: ConvGeometry {
                stride: 1,
                padding: [1, 1],
                output_padding: [0, 0],
            },
        };
        Self {
            arch: arch.clone(),
            fc_weight,
            fc_bias,
            bn0,
            ups,
            bns,
            out,
            start: [gw[0], hs[0], ws[0]],
        }
    }

    /// The forward pass on backend `o`: latents [N, latent] -> images [N, C, H, W] in [-1, 1].
    pub fn forward_with<O: Ops>(&self, o: &mut O, z: &O::V) -> Result<O::V, O::E> {
        let x = o.linear("fc", z, &self.fc_weight, Some(&self.fc_bias))?;
        // BN over [N, F]: the BN1d before the reshape.
        let x = self.bn0.apply(o, "bn0", &x)?;
        let x = o.relu(&x)?;
        let mut x = o.reshape(&x, &self.start)?;
        for (i, (up, bn)) in self.ups.iter().zip(&self.bns).enumerate() {
            let y = up.apply(o, &format!("up{}", i + 1), &x)?;
            let y = bn.apply(o, &format!("bn{}", i + 1), &y)?;
            x = o.relu(&y)?;
        }
        let x = self.out.apply(o, "out", &x)?;
        o.tanh(&x)
    }

    /// Images in [-1, 1], shape [N, C, H, W], from latents [N, latent] (BN in training
    /// mode when `train`).
    pub fn forward(&self, z: &Tensor, train: bool) -> Tensor {
        run_tch(self.forward_with(&mut TchOps { train }, z))
    }
}
