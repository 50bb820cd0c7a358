//! The generator: linear -> BN -> ReLU -> 3 x (deconv 4x4/2 -> BN -> ReLU) -> deconv 3x3/1
//! -> tanh (PAPER.md). Its forward pass is written once, over `crate::ops::Ops`: tch runs
//! it, the exporter records the same code as the ONNX graph. A stacked generator holds
//! `models` generators side by side (model k owns the k-th block of every axis 0), run by
//! the same forward in one set of kernels.

use tch::{Tensor, nn};

use super::layers::{BatchNorm, Deconv, deconv_padding, g_sizes, normal_init};
use crate::config::{Arch, EMBED_DIM, GCond};
use crate::native::lanes::Lanes;
use crate::ops::{ConvGeometry, Ops, StackKernels, TchOps, block, run_tch};
use pagan_shared::manifest::cycle_labels;

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
    /// Start feature map of one model [c0, s0h, s0w].
    pub start: [i64; 3],
    /// Generators side by side (1: a plain generator).
    pub models: i64,
    /// How a stack runs its layers.
    pub kernels: StackKernels,
    /// Per-run CUDA streams of a stack with [`StackKernels::Streams`] (else none).
    pub lanes: Lanes,
    /// A class-conditional generator's class input (`None`: unconditional).
    pub classes: Option<ClassInput>,
}

/// How a class-conditional G takes its labels: the label's row of `table`, concatenated
/// to z before the linear layer (one-hot rows of the identity, or a learned embedding).
#[derive(Debug)]
pub struct ClassInput {
    /// [classes, width]: the identity (one-hot) or the embedding (variable `embed.weight`).
    pub table: Tensor,
    /// One-hot or learned.
    pub kind: GCond,
}

/// Labels of a grid with one row per class and `cols` columns: image i shows class
/// `i / cols` (the column picks the latent, so each column is one z across the classes).
pub fn class_row_labels(classes: i64, cols: i64) -> Vec<i64> {
    (0..classes * cols).map(|i| i / cols).collect()
}

impl Generator {
    /// Builds G under `p` (variables `fc.*`, `bn0.*`, `up{1,2,3}.*`, `bn{1,2,3}.*`, `out.*`).
    pub fn new(p: &nn::Path, arch: &Arch) -> Self {
        Self::stacked(p, arch, 1)
    }

    /// A class-conditional G under `p` for `classes` classes (one model; `embed.weight` when
    /// the class input is learned).
    pub fn conditional(p: &nn::Path, arch: &Arch, kind: GCond, classes: i64) -> Self {
        let table = match kind {
            GCond::Onehot => Tensor::eye(classes, (tch::Kind::Float, p.device())),
            // N(0, 1): the embedding starts on the scale of z's uniform(-1, 1) values.
            GCond::Embed => (p / "embed").var(
                "weight",
                &[classes, EMBED_DIM],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            ),
        };
        let width = table.size()[1];
        Self::build(p, arch, 1, Some(ClassInput { table, kind }), width)
    }

    /// `k` generators side by side under `p`: every variable's axis 0 holds `k` blocks
    /// (zero-initialised; `model::stack` copies each model's own initial weights in).
    pub fn stacked(p: &nn::Path, arch: &Arch, k: i64) -> Self {
        Self::build(p, arch, k, None, 0)
    }

    /// `k` generators whose linear layer takes `extra` inputs beside z (the class input).
    fn build(p: &nn::Path, arch: &Arch, k: i64, classes: Option<ClassInput>, extra: i64) -> Self {
        let [c, h, w] = arch.image;
        let (hs, ws) = (g_sizes(h), g_sizes(w));
        let gw = arch.g_widths;
        let f = gw[0] * hs[0] * ws[0];
        let fc_weight = (p / "fc").var("weight", &[k * f, arch.latent + extra], normal_init());
        let fc_bias = (p / "fc").zeros("bias", &[k * f]);
        let bn0 = BatchNorm::new(&(p / "bn0"), k * f);
        let mut ups = Vec::new();
        let mut bns = Vec::new();
        for i in 0..3 {
            let (ph, oph) = deconv_padding(hs[i], hs[i + 1]);
            let (pw, opw) = deconv_padding(ws[i], ws[i + 1]);
            ups.push(Deconv {
                weight: (p / format!("up{}", i + 1)).var(
                    "weight",
                    &[k * gw[i], gw[i + 1], 4, 4],
                    normal_init(),
                ),
                bias: None,
                geometry: ConvGeometry {
                    stride: 2,
                    padding: [ph, pw],
                    output_padding: [oph, opw],
                },
            });
            bns.push(BatchNorm::new(&(p / format!("bn{}", i + 1)), k * gw[i + 1]));
        }
        let out = Deconv {
            weight: (p / "out").var("weight", &[k * gw[3], c, 3, 3], normal_init()),
            bias: Some((p / "out").zeros("bias", &[k * c])),
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
            models: k,
            kernels: StackKernels::PerModel,
            lanes: Lanes::default(),
            classes,
        }
    }

    /// The forward pass on backend `o`: latents [N, latent] (and, for a class-conditional
    /// G, integer labels [N], which it needs) -> images [N, C, H, W] in [-1, 1].
    pub fn forward_with<O: Ops>(&self, o: &mut O, z: &O::V, labels: Option<&O::V>) -> Result<O::V, O::E> {
        let conditioned;
        let z = match (&self.classes, labels) {
            (Some(c), Some(y)) => {
                conditioned = o.append_rows("embed", z, &c.table, y)?;
                &conditioned
            }
            _ => z,
        };
        let x = o.linear("fc", z, &self.fc_weight, Some(&self.fc_bias))?;
        // BN over [N, F]: the BN1d before the reshape.
        let x = self.bn0.apply(o, "bn0", &x)?;
        let x = o.relu(&x)?;
        let [c0, h0, w0] = self.start;
        let mut x = o.reshape(&x, &[self.models * c0, h0, w0])?;
        for (i, (up, bn)) in self.ups.iter().zip(&self.bns).enumerate() {
            let y = up.apply(o, &format!("up{}", i + 1), &x)?;
            let y = bn.apply(o, &format!("bn{}", i + 1), &y)?;
            x = o.relu(&y)?;
        }
        let x = self.out.apply(o, "out", &x)?;
        o.tanh(&x)
    }

    /// Images in [-1, 1], shape [N, models*C, H, W], from latents [N, models*latent] (BN
    /// in training mode when `train`); a class-conditional G cycles through the classes
    /// (image i gets class i mod K).
    pub fn forward(&self, z: &Tensor, train: bool) -> Tensor {
        self.forward_cycled(z, 0, train)
    }

    /// [`Self::forward`] for images `start..start + N` of a longer sequence: a
    /// class-conditional G gives image i class (start + i) mod K, so batches of any size
    /// continue one balanced cycle.
    pub fn forward_cycled(&self, z: &Tensor, start: i64, train: bool) -> Tensor {
        match &self.classes {
            Some(c) => {
                let n = z.size()[0];
                let y = cycle_labels(start as usize, n as usize, c.table.size()[0] as usize);
                let y = Tensor::from_slice(&y).to_device(z.device());
                self.forward_labelled(z, Some(&y), train)
            }
            None => self.forward_labelled(z, None, train),
        }
    }

    /// Images from latents and, for a class-conditional G, labels [N] (int64 on G's device).
    pub fn forward_labelled(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        let k = self.models;
        if k > 1 && self.kernels.per_model() {
            let parts = self.lanes.map(k as usize, |m| {
                let m = m as i64;
                self.model_view(m).forward(&block(z, 1, m, k).contiguous(), train)
            });
            return Tensor::cat(&parts, 1);
        }
        run_tch(self.forward_with(&mut TchOps { train, models: k }, z, labels))
    }

    /// The same generator with `f` applied to every tensor (views, copies, moves).
    pub fn map_tensors(&self, f: impl Fn(&Tensor) -> Tensor) -> Generator {
        let bn = |b: &BatchNorm| BatchNorm {
            weight: f(&b.weight),
            bias: f(&b.bias),
            running_mean: f(&b.running_mean),
            running_var: f(&b.running_var),
        };
        let dc = |d: &Deconv| Deconv {
            weight: f(&d.weight),
            bias: d.bias.as_ref().map(&f),
            geometry: d.geometry,
        };
        Generator {
            arch: self.arch.clone(),
            fc_weight: f(&self.fc_weight),
            fc_bias: f(&self.fc_bias),
            bn0: bn(&self.bn0),
            ups: self.ups.iter().map(dc).collect(),
            bns: self.bns.iter().map(bn).collect(),
            out: dc(&self.out),
            start: self.start,
            models: self.models,
            kernels: self.kernels,
            // A mapped copy (one run's views, a host copy) runs without the stack's streams.
            lanes: Lanes::default(),
            classes: self.classes.as_ref().map(|c| ClassInput {
                table: f(&c.table),
                kind: c.kind,
            }),
        }
    }

    /// Model `m` of a stack as a generator of its own: views of its blocks of every
    /// variable (training through it trains the stack; BN statistics update in place).
    pub fn model_view(&self, m: i64) -> Generator {
        let k = self.models;
        let mut g = self.map_tensors(|t| block(t, 0, m, k));
        g.models = 1;
        g.kernels = StackKernels::PerModel;
        g
    }
}
