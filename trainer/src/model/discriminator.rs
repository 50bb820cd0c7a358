//! The discriminator: 7 spectrally normalised convs with leaky ReLU 0.1, flatten, an SN
//! linear layer -> 1 logit (PAPER.md). With PA, one conv takes `max_level` pre-allocated
//! bit channels; a level mask multiplies its kernel before spectral normalisation, so a
//! level-up is a mask change (no rebuild, no optimiser reset). D is never exported, so it
//! is written in tch directly.

use tch::{Kind, Tensor, nn};

use super::layers::{normal_init, same_padding};
use super::spectral_norm::SpectralWeight;
use crate::config::Arch;

/// Leaky ReLU slope in D.
pub const LEAK: f64 = 0.1;

/// Geometry of one D conv.
#[derive(Debug, Clone, Copy)]
pub struct ConvGeom {
    /// Kernel size.
    pub k: i64,
    /// Stride.
    pub stride: i64,
    /// SAME padding before / after, per axis (TF puts the odd pixel after).
    pub pad: (i64, i64),
}

/// The discriminator: 7 SN convs with leaky ReLU 0.1, flatten, SN linear -> 1 logit.
/// With PA, conv `pa_layer` takes `max_level` extra input channels for the bits.
#[derive(Debug)]
pub struct Discriminator {
    /// Conv weights with their spectral-norm state.
    pub convs: Vec<SpectralWeight>,
    /// Conv biases.
    pub conv_biases: Vec<Tensor>,
    /// Conv geometry per layer.
    pub geoms: Vec<ConvGeom>,
    /// Final linear layer (spectrally normalised too).
    pub fc: SpectralWeight,
    /// Final bias.
    pub fc_bias: Tensor,
    /// Conv index receiving the bits, if PA is on.
    pub pa_layer: Option<usize>,
    /// Bit channels pre-allocated there.
    pub max_level: i64,
    /// Input channels of the PA layer without bits.
    pa_in: i64,
    /// [1, in + max_level, 1, 1] mask: image channels and active bits 1, the rest 0.
    mask: Option<Tensor>,
    /// Leaky-ReLU slope as a PReLU weight (one fused kernel; tch's leaky_relu is fixed at 0.01).
    leak: Tensor,
    /// Dropout (conv index whose input it drops, probability) in training forwards.
    pub dropout: Option<(usize, f64)>,
}

impl Discriminator {
    /// Builds D under `p`. `pa_layer` = Some(0) is input-space PA, Some(k) feature-space.
    pub fn new(p: &nn::Path, arch: &Arch, pa_layer: Option<usize>, max_level: i64, level: i64) -> Self {
        let [c, h, w] = arch.image;
        let ks = [3, 4, 3, 4, 3, 4, 3];
        let (mut hh, mut ww) = (h, w);
        let mut convs = Vec::new();
        let mut biases = Vec::new();
        let mut geoms = Vec::new();
        let mut in_c = c;
        let mut pa_in = 0;
        for (i, (&k, &out_c)) in ks.iter().zip(arch.d_widths.iter()).enumerate() {
            let stride = if k == 4 { 2 } else { 1 };
            let lp = p / format!("conv{i}");
            let extra = if pa_layer == Some(i) { max_level } else { 0 };
            if extra > 0 {
                pa_in = in_c;
            }
            let weight = lp.var("weight", &[out_c, in_c + extra, k, k], normal_init());
            if extra > 0 {
                // Bit kernels start at zero: a level-up then leaves D's output unchanged.
                tch::no_grad(|| {
                    let _ = weight.narrow(1, in_c, extra).zero_();
                });
            }
            convs.push(SpectralWeight::new(&lp, weight));
            biases.push(lp.zeros("bias", &[out_c]));
            let (ph, pw) = (same_padding(hh, k, stride), same_padding(ww, k, stride));
            debug_assert_eq!(ph, pw);
            geoms.push(ConvGeom { k, stride, pad: ph });
            hh = (hh + stride - 1) / stride;
            ww = (ww + stride - 1) / stride;
            in_c = out_c;
        }
        let fp = p / "fc";
        let fc_w = fp.var("weight", &[1, in_c * hh * ww], normal_init());
        let fc = SpectralWeight::new(&fp, fc_w);
        let fc_bias = fp.zeros("bias", &[1]);
        let leak = Tensor::from_slice(&[LEAK as f32]).to_device(p.device());
        let mut d = Self {
            convs,
            conv_biases: biases,
            geoms,
            fc,
            fc_bias,
            pa_layer: pa_layer.filter(|_| max_level > 0),
            max_level,
            pa_in,
            mask: None,
            leak,
            dropout: None,
        };
        d.set_level(level);
        d
    }

    /// Sets how many bit channels are live (mask update only: no rebuild, no optimiser reset).
    pub fn set_level(&mut self, level: i64) {
        self.mask = self.pa_layer.map(|i| {
            let total = self.pa_in + self.max_level;
            let live = self.pa_in + level.clamp(0, self.max_level);
            let dev = self.convs[i].weight.device();
            let m = Tensor::ones([total], (Kind::Float, dev));
            let _ = m.narrow(0, live, total - live).zero_();
            m.view([1, total, 1, 1])
        });
    }

    /// The current level mask of the PA layer, if any.
    pub fn mask(&self) -> Option<&Tensor> {
        self.mask.as_ref()
    }

    /// Logits [N] for images [N, C, H, W] and bits [N, max_level] (0/1; ignored without PA).
    pub fn forward(&self, x: &Tensor, bits: Option<&Tensor>, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        for (i, ((sw, b), g)) in self
            .convs
            .iter()
            .zip(&self.conv_biases)
            .zip(&self.geoms)
            .enumerate()
        {
            let is_pa = self.pa_layer == Some(i);
            if let Some((k, p)) = self.dropout
                && k == i
                && train
            {
                h = h.dropout(p, true);
            }
            if is_pa {
                let (n, hh, ww) = (h.size()[0], h.size()[2], h.size()[3]);
                let bits_map = match bits {
                    Some(b) => b
                        .view([n, self.max_level, 1, 1])
                        .expand([n, self.max_level, hh, ww], false),
                    None => Tensor::zeros([n, self.max_level, hh, ww], (h.kind(), h.device())),
                };
                h = Tensor::cat(&[&h, &bits_map], 1);
            }
            let w = sw.normalized(train, if is_pa { self.mask.as_ref() } else { None });
            let (a, bpad) = g.pad;
            let (input, pad) = if a == bpad {
                (h.shallow_clone(), a)
            } else {
                (h.constant_pad_nd([a, bpad, a, bpad]), 0)
            };
            h = input
                .conv2d(&w, Some(b), [g.stride, g.stride], [pad, pad], [1, 1], 1)
                .prelu(&self.leak);
        }
        let n = h.size()[0];
        let w = self.fc.normalized(train, None);
        h.view([n, -1]).linear(&w, Some(&self.fc_bias)).view([n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Generator;
    use tch::{Device, nn::VarStore};

    #[test]
    fn output_shapes_for_28_32_64() {
        let _rng = crate::rng::torch_rng_lock();
        for (image, n) in [([1, 28, 28], 3), ([3, 32, 32], 2), ([3, 64, 64], 2)] {
            let vs = VarStore::new(Device::Cpu);
            let arch = Arch::narrowed(image, 16);
            let g = Generator::new(&(vs.root() / "g"), &arch);
            let d = Discriminator::new(&(vs.root() / "d"), &arch, Some(0), 3, 1);
            let z = Tensor::rand([n, arch.latent], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
            let x = g.forward(&z, true);
            assert_eq!(x.size(), vec![n, image[0], image[1], image[2]]);
            let bits = Tensor::zeros([n, 3], (Kind::Float, Device::Cpu));
            assert_eq!(d.forward(&x, Some(&bits), true).size(), vec![n]);
        }
    }

    #[test]
    fn paper_widths_and_kernel_shapes() {
        let _rng = crate::rng::torch_rng_lock();
        let vs = VarStore::new(Device::Cpu);
        let arch = Arch::paper([1, 28, 28]);
        let d = Discriminator::new(&(vs.root() / "d"), &arch, Some(6), 4, 0);
        let shapes: Vec<Vec<i64>> = d.convs.iter().map(|c| c.weight.size()).collect();
        assert_eq!(shapes[0], vec![64, 1, 3, 3]);
        assert_eq!(shapes[5], vec![512, 256, 4, 4]);
        assert_eq!(
            shapes[6],
            vec![512, 512 + 4, 3, 3],
            "feat PA adds max_level channels"
        );
        assert_eq!(d.fc.weight.size(), vec![1, 512 * 4 * 4]);
        let g = Generator::new(&(vs.root() / "g"), &arch);
        assert_eq!(g.fc_weight.size(), vec![512 * 4 * 4, 128]);
        assert_eq!(g.ups[0].weight.size(), vec![512, 256, 4, 4]);
        assert_eq!(g.out.weight.size(), vec![64, 1, 3, 3]);
    }
}
