//! SN-DCGAN generator and discriminator (PAPER.md), with progressive-augmentation bit
//! channels pre-allocated in one discriminator conv.

use tch::{Kind, Tensor, nn};

use crate::config::Arch;
use crate::spectral_norm::SpectralWeight;

/// Weight init: N(0, 0.02), the DCGAN convention.
const INIT_STD: f64 = 0.02;
/// BatchNorm epsilon and momentum (PyTorch defaults; exported to ONNX unchanged).
pub const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;
/// Leaky ReLU slope in D.
pub const LEAK: f64 = 0.1;

/// Spatial size after a stride-2 "SAME" layer: halving rounds up (28 -> 14 -> 7 -> 4).
pub fn half_up(x: i64) -> i64 {
    (x + 1) / 2
}

/// Spatial sizes of G's feature maps: [start, after deconv 1, 2, 3 = image].
pub fn g_sizes(h: i64) -> [i64; 4] {
    let s2 = half_up(h);
    let s1 = half_up(s2);
    [half_up(s1), s1, s2, h]
}

/// (padding, output_padding) of a 4x4 stride-2 transposed conv from `input` to `target`.
/// Doubling uses padding 1; an odd target (7 from 4) uses padding 2 + output padding 1.
pub fn deconv_padding(input: i64, target: i64) -> (i64, i64) {
    if target == 2 * input { (1, 0) } else { (2, 1) }
}

/// A BatchNorm layer's variables.
#[derive(Debug)]
pub struct BatchNorm {
    /// Scale (gamma).
    pub weight: Tensor,
    /// Shift (beta).
    pub bias: Tensor,
    /// Running mean (eval).
    pub running_mean: Tensor,
    /// Running variance (eval).
    pub running_var: Tensor,
}

impl BatchNorm {
    fn new(p: &nn::Path, n: i64) -> Self {
        Self {
            weight: p.ones("weight", &[n]),
            bias: p.zeros("bias", &[n]),
            running_mean: p.zeros_no_train("running_mean", &[n]),
            running_var: p.ones_no_train("running_var", &[n]),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )
    }
}

/// One transposed conv of G with its geometry.
#[derive(Debug)]
pub struct Deconv {
    /// Kernel [in, out, k, k].
    pub weight: Tensor,
    /// Bias [out] (only the last layer has one; BN follows the others).
    pub bias: Option<Tensor>,
    /// Stride.
    pub stride: i64,
    /// Padding.
    pub padding: i64,
    /// Output padding.
    pub output_padding: i64,
}

impl Deconv {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv_transpose2d(
            &self.weight,
            self.bias.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [self.output_padding, self.output_padding],
            1,
            [1, 1],
        )
    }
}

/// The generator: linear -> BN -> ReLU -> 3 x (deconv 4x4/2 -> BN -> ReLU) -> deconv 3x3/1 -> tanh.
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
        let normal = nn::Init::Randn {
            mean: 0.0,
            stdev: INIT_STD,
        };
        let fc_weight = (p / "fc").var("weight", &[f, arch.latent], normal);
        let fc_bias = (p / "fc").zeros("bias", &[f]);
        let bn0 = BatchNorm::new(&(p / "bn0"), f);
        let mut ups = Vec::new();
        let mut bns = Vec::new();
        for i in 0..3 {
            let (ph, oph) = deconv_padding(hs[i], hs[i + 1]);
            let (pw, _) = deconv_padding(ws[i], ws[i + 1]);
            // Non-square images with different paddings per axis are not needed by any dataset here.
            debug_assert_eq!(ph, pw);
            ups.push(Deconv {
                weight: (p / format!("up{}", i + 1)).var("weight", &[gw[i], gw[i + 1], 4, 4], normal),
                bias: None,
                stride: 2,
                padding: ph,
                output_padding: oph,
            });
            bns.push(BatchNorm::new(&(p / format!("bn{}", i + 1)), gw[i + 1]));
        }
        let out = Deconv {
            weight: (p / "out").var("weight", &[gw[3], c, 3, 3], normal),
            bias: Some((p / "out").zeros("bias", &[c])),
            stride: 1,
            padding: 1,
            output_padding: 0,
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

    /// Images in [-1, 1], shape [N, C, H, W], from latents [N, latent].
    pub fn forward(&self, z: &Tensor, train: bool) -> Tensor {
        let n = z.size()[0];
        let x = z.linear(&self.fc_weight, Some(&self.fc_bias));
        let x = self.bn0.forward(&x, train).relu();
        let [c0, h0, w0] = self.start;
        let mut x = x.view([n, c0, h0, w0]);
        for (up, bn) in self.ups.iter().zip(&self.bns) {
            x = bn.forward(&up.forward(&x), train).relu();
        }
        self.out.forward(&x).tanh()
    }
}

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

fn same_padding(input: i64, k: i64, stride: i64) -> (i64, i64) {
    let out = (input + stride - 1) / stride;
    let total = ((out - 1) * stride + k - input).max(0);
    (total / 2, total - total / 2)
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
        let normal = nn::Init::Randn {
            mean: 0.0,
            stdev: INIT_STD,
        };
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
            let weight = lp.var("weight", &[out_c, in_c + extra, k, k], normal);
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
        let fc_w = fp.var("weight", &[1, in_c * hh * ww], normal);
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
    use tch::{Device, nn::VarStore};

    #[test]
    fn geometry_per_resolution() {
        assert_eq!(g_sizes(28), [4, 7, 14, 28]);
        assert_eq!(g_sizes(32), [4, 8, 16, 32]);
        assert_eq!(g_sizes(64), [8, 16, 32, 64]);
        assert_eq!(same_padding(7, 4, 2), (1, 2));
        assert_eq!(same_padding(28, 4, 2), (1, 1));
        assert_eq!(same_padding(14, 3, 1), (1, 1));
    }

    #[test]
    fn output_shapes_for_28_32_64() {
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
