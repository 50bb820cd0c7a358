//! The discriminator: 7 spectrally normalised convs with leaky ReLU 0.1, flatten, an SN
//! linear layer -> 1 logit (PAPER.md). With PA, one conv takes `max_level` pre-allocated
//! bit channels; a level mask multiplies its kernel before spectral normalisation, so a
//! level-up is a mask change (no rebuild, no optimiser reset). D is never exported, so it
//! is written in tch directly.

use tch::{Tensor, nn};

mod class_head;
mod levels;

pub use class_head::ClassHead;

use super::layers::{MinibatchStd, minibatch_std, normal_init, same_padding};
use super::spectral_norm::{SpectralWeight, normalized_one};
use crate::config::Arch;
use crate::native::lanes::Lanes;
use crate::native::leaky_relu;
use crate::ops::{StackKernels, block, stacked_linear};

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

/// One SAME-padded conv of D (`groups` models side by side).
fn conv_layer(h: &Tensor, w: &Tensor, b: &Tensor, g: ConvGeom, groups: i64) -> Tensor {
    let (a, bpad) = g.pad;
    let (input, pad) = if a == bpad {
        (h.shallow_clone(), a)
    } else {
        (h.constant_pad_nd([a, bpad, a, bpad]), 0)
    };
    input.conv2d(w, Some(b), [g.stride, g.stride], [pad, pad], [1, 1], groups)
}

/// The discriminator: 7 SN convs with leaky ReLU 0.1, flatten, SN linear -> 1 logit.
/// With PA, the bit layers take `max_level` extra input channels for the bits. A stacked
/// discriminator holds `models` of them side by side (grouped convolutions, batched
/// spectral norm and final layer); each model's bits are live at its own PA layer only.
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
    /// Discriminators side by side (1: a plain discriminator).
    pub models: i64,
    /// Conv indices whose input has bit channels (shared by every model of a stack).
    pub bit_layers: Vec<usize>,
    /// Per model: the conv index whose bits it uses (`None`: no PA, bits never live).
    pub pa_layers: Vec<Option<usize>>,
    /// Bit channels pre-allocated at each bit layer.
    pub max_level: i64,
    /// Per model: live bit channels.
    levels: Vec<i64>,
    /// Per bit layer: (layer, input channels without bits, level mask of its kernel).
    /// Level changes write into these tensors (a replayed step reads them in place).
    masks: Vec<(usize, i64, Tensor)>,
    /// Per model: the level mask of its own bit layer's kernel [1, in + max_level, 1, 1],
    /// for per-model kernels; written in place like `masks`.
    model_masks: Vec<Option<Tensor>>,
    /// Input channels of each conv, without bits.
    in_channels: Vec<i64>,
    /// Dropout (conv index whose input it drops, probability) in training forwards.
    pub dropout: Option<(usize, f64)>,
    /// How a stack runs its layers (set with [`Self::set_kernels`]).
    kernels: StackKernels,
    /// Per-run CUDA streams with [`StackKernels::Streams`] (else none).
    pub lanes: Lanes,
    /// The minibatch standard-deviation feature, when on (single discriminators only).
    pub minibatch_std: Option<MinibatchStd>,
    /// A class-conditional D's class head (`None`: unconditional; single discriminators only).
    pub classes: Option<ClassHead>,
}

impl Discriminator {
    /// Builds D under `p`. `pa_layer` = Some(0) is input-space PA, Some(k) feature-space.
    pub fn new(p: &nn::Path, arch: &Arch, pa_layer: Option<usize>, max_level: i64, level: i64) -> Self {
        Self::stacked(p, arch, &[pa_layer], max_level, &[level])
    }

    /// `pa_layers.len()` discriminators side by side under `p`, model k using bits at
    /// `pa_layers[k]` at level `levels[k]`; bit channels exist at every layer any model uses.
    pub fn stacked(
        p: &nn::Path,
        arch: &Arch,
        pa_layers: &[Option<usize>],
        max_level: i64,
        levels: &[i64],
    ) -> Self {
        Self::build(p, arch, pa_layers, max_level, levels, 0)
    }

    /// [`Self::stacked`] with `class_maps` one-hot class channels after the image at conv 0.
    fn build(
        p: &nn::Path,
        arch: &Arch,
        pa_layers: &[Option<usize>],
        max_level: i64,
        levels: &[i64],
        class_maps: i64,
    ) -> Self {
        let models = pa_layers.len() as i64;
        let pa_layers: Vec<Option<usize>> = pa_layers.iter().map(|l| l.filter(|_| max_level > 0)).collect();
        let mut bit_layers: Vec<usize> = pa_layers.iter().flatten().copied().collect();
        bit_layers.sort_unstable();
        bit_layers.dedup();
        let [c, h, w] = arch.image;
        let ks = [3, 4, 3, 4, 3, 4, 3];
        let (mut hh, mut ww) = (h, w);
        let mut convs = Vec::new();
        let mut biases = Vec::new();
        let mut geoms = Vec::new();
        let mut bit_in = Vec::new();
        let mut in_channels = Vec::new();
        let mut in_c = c + class_maps;
        for (i, (&k, &out_c)) in ks.iter().zip(arch.d_widths.iter()).enumerate() {
            let stride = if k == 4 { 2 } else { 1 };
            let lp = p / format!("conv{i}");
            let extra = if bit_layers.contains(&i) { max_level } else { 0 };
            if extra > 0 {
                bit_in.push((i, in_c));
            }
            in_channels.push(in_c);
            let weight = lp.var("weight", &[models * out_c, in_c + extra, k, k], normal_init());
            if extra > 0 {
                // Bit kernels start at zero: a level-up then leaves D's output unchanged.
                tch::no_grad(|| {
                    let _ = weight.narrow(1, in_c, extra).zero_();
                });
            }
            convs.push(SpectralWeight::stacked(&lp, weight, models));
            biases.push(lp.zeros("bias", &[models * out_c]));
            let (ph, pw) = (same_padding(hh, k, stride), same_padding(ww, k, stride));
            debug_assert_eq!(ph, pw);
            geoms.push(ConvGeom { k, stride, pad: ph });
            hh = (hh + stride - 1) / stride;
            ww = (ww + stride - 1) / stride;
            in_c = out_c;
        }
        let fp = p / "fc";
        let fc_w = fp.var("weight", &[models, in_c * hh * ww], normal_init());
        let fc = SpectralWeight::stacked(&fp, fc_w, models);
        let fc_bias = fp.zeros("bias", &[models]);
        let mut d = Self {
            convs,
            conv_biases: biases,
            geoms,
            fc,
            fc_bias,
            models,
            bit_layers,
            pa_layers,
            max_level,
            levels: levels.to_vec(),
            masks: Vec::new(),
            model_masks: Vec::new(),
            in_channels,
            dropout: None,
            kernels: StackKernels::PerModel,
            lanes: Lanes::default(),
            minibatch_std: None,
            classes: None,
        };
        d.masks = bit_in
            .iter()
            .map(|&(i, in_c)| (i, in_c, d.layer_mask(i, in_c)))
            .collect();
        d.model_masks = (0..models as usize).map(|m| d.model_mask(m)).collect();
        d
    }

    /// How a stack runs its layers (a single discriminator ignores it).
    pub fn set_kernels(&mut self, kernels: StackKernels) {
        self.kernels = kernels;
        for c in self.convs.iter_mut().chain(std::iter::once(&mut self.fc)) {
            c.kernels = kernels;
        }
    }

    /// True when some model takes PA bits.
    pub fn has_bits(&self) -> bool {
        !self.bit_layers.is_empty()
    }

    /// Logits [N, models] for images [N, models*C, H, W] and bits [N, models*max_level]
    /// (0/1; zeros when `None`; ignored without bit layers).
    pub fn forward(&self, x: &Tensor, bits: Option<&Tensor>, train: bool) -> Tensor {
        self.forward_labelled(x, bits, None, train)
    }

    /// [`Self::forward`] with the images' labels [N] (int64), which a class-conditional D needs.
    pub fn forward_labelled(
        &self,
        x: &Tensor,
        bits: Option<&Tensor>,
        labels: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        if self.models > 1 && self.kernels.per_model() {
            return Tensor::cat(&self.forward_each(x, bits, labels, train), 1);
        }
        self.forward_stacked(x, bits, labels, train)
    }

    /// Each model's logits [N, 1], as separate tensors (so each model's gradient flows back
    /// exactly as in its single run). `labels` [N]: a class-conditional D's (single runs).
    pub fn forward_each(
        &self,
        x: &Tensor,
        bits: Option<&Tensor>,
        labels: Option<&Tensor>,
        train: bool,
    ) -> Vec<Tensor> {
        let k = self.models;
        if k > 1 && self.kernels.per_model() {
            return self.lanes.map(k as usize, |m| {
                let bits_m = bits.map(|b| block(b, 1, m as i64, k).contiguous());
                let x_m = block(x, 1, m as i64, k).contiguous();
                self.forward_model(m, &x_m, bits_m.as_ref(), train)
            });
        }
        self.forward_stacked(x, bits, labels, train).split(1, 1)
    }

    /// Each conv layer: index, spectrally normalised weight, bias, geometry.
    fn conv_layers(&self) -> impl Iterator<Item = (usize, &SpectralWeight, &Tensor, &ConvGeom)> {
        let layers = self.convs.iter().zip(&self.conv_biases).zip(&self.geoms);
        layers.enumerate().map(|(i, ((sw, b), g))| (i, sw, b, g))
    }

    fn forward_stacked(
        &self,
        x: &Tensor,
        bits: Option<&Tensor>,
        labels: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let k = self.models;
        let h = self.trunk(x, bits, labels, train, None);
        let n = h.size()[0];
        let w = self.fc.normalized(train, None);
        if k == 1 {
            let flat = h.view([n, -1]);
            let mut logits = flat.linear(&w, Some(&self.fc_bias));
            if let Some(p) = self.projection(&flat, labels, train) {
                logits += p;
            }
            match &self.minibatch_std {
                Some(m) => logits + minibatch_std(&flat, m.group).matmul(&m.weight),
                None => logits,
            }
        } else {
            stacked_linear(&h.view([n, -1]), &w, Some(&self.fc_bias), k)
        }
    }

    /// D's features after conv `layer` (0..=6), flattened `[N, F]`, of a single
    /// discriminator without dropout (what feature matching compares, and what the
    /// semi-supervised classifier's head reads); `train` refines the spectral norms' `u`.
    pub fn features(
        &self,
        x: &Tensor,
        bits: Option<&Tensor>,
        labels: Option<&Tensor>,
        layer: usize,
        train: bool,
    ) -> Tensor {
        let h = self.trunk(x, bits, labels, train, Some(layer));
        let n = h.size()[0];
        h.view([n, -1])
    }

    /// The conv layers: class maps in front, PA bits where a mask says, conv + leaky ReLU.
    /// `upto`: stop after that conv (features, never dropout); `None`: every conv, with D's
    /// dropout in training (the logits' path).
    fn trunk(
        &self,
        x: &Tensor,
        bits: Option<&Tensor>,
        labels: Option<&Tensor>,
        train: bool,
        upto: Option<usize>,
    ) -> Tensor {
        let mut h = self.with_class_maps(x, labels);
        for (i, sw, b, g) in self.conv_layers() {
            if let Some((layer, p)) = self.dropout
                && upto.is_none()
                && layer == i
                && train
            {
                h = h.dropout(p, true);
            }
            let mask = self.masks.iter().find(|(l, _, _)| *l == i);
            if let Some((_, in_c, _)) = mask {
                h = self.with_bits(&h, *in_c, bits);
            }
            let w = sw.normalized(train, mask.map(|(_, _, m)| m));
            h = leaky_relu(&conv_layer(&h, &w, b, *g, self.models), LEAK);
            if upto == Some(i) {
                break;
            }
        }
        h
    }

    /// Model `m` of a stack run on its own, exactly as its single run's discriminator: its
    /// blocks of the stacked variables, its own input channels (bits only where it uses
    /// them), its own mask. Logits [N, 1].
    fn forward_model(&self, m: usize, x: &Tensor, bits: Option<&Tensor>, train: bool) -> Tensor {
        let (k, l) = (self.models, self.max_level);
        let mut h = x.shallow_clone();
        for (i, sw, b, g) in self.conv_layers() {
            let live = self.pa_layers[m] == Some(i);
            let in_c = self.in_channels[i] + if live { l } else { 0 };
            let weight = block(&sw.weight, 0, m as i64, k).narrow(1, 0, in_c);
            let w = if live {
                let (n, hh, ww) = (h.size()[0], h.size()[2], h.size()[3]);
                let zeros;
                let bits = match bits {
                    Some(b) => b,
                    None => {
                        zeros = Tensor::zeros([n, l], (h.kind(), h.device()));
                        &zeros
                    }
                };
                h = Tensor::cat(&[&h, &bits.view([n, l, 1, 1]).expand([n, l, hh, ww], false)], 1);
                match &self.model_masks[m] {
                    Some(mask) => &weight * mask,
                    None => weight,
                }
            } else {
                weight
            };
            let w = normalized_one(&w, &block(&sw.u, 0, m as i64, k), train);
            h = leaky_relu(&conv_layer(&h, &w, &block(b, 0, m as i64, k), *g, 1), LEAK);
        }
        let n = h.size()[0];
        let w = normalized_one(
            &block(&self.fc.weight, 0, m as i64, k),
            &block(&self.fc.u, 0, m as i64, k),
            train,
        );
        h.view([n, -1])
            .linear(&w, Some(&block(&self.fc_bias, 0, m as i64, k)))
    }

    /// `h` [N, models*in_c, H, W] with each model's bits broadcast into its own bit channels.
    fn with_bits(&self, h: &Tensor, in_c: i64, bits: Option<&Tensor>) -> Tensor {
        let (k, l) = (self.models, self.max_level);
        let (n, hh, ww) = (h.size()[0], h.size()[2], h.size()[3]);
        let bits = match bits {
            Some(b) => b.shallow_clone(),
            None => Tensor::zeros([n, k * l], (h.kind(), h.device())),
        };
        if k == 1 {
            let map = bits.view([n, l, 1, 1]).expand([n, l, hh, ww], false);
            return Tensor::cat(&[h, &map], 1);
        }
        let map = bits.view([n, k, l, 1, 1]).expand([n, k, l, hh, ww], false);
        Tensor::cat(&[&h.view([n, k, in_c, hh, ww]), &map], 2).view([n, k * (in_c + l), hh, ww])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Generator;
    use tch::{Device, Kind, nn::VarStore};

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
            assert_eq!(d.forward(&x, Some(&bits), true).size(), vec![n, 1]);
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
