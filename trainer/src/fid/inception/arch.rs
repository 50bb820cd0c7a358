//! The FID Inception-v3 topology, written once. Parameter paths equal the TorchScript
//! module's (`net.layers.mixed_4.tower_1.conv_2.weight`), so its weights load by name. The
//! forward pass is generic over `crate::ops::Ops`: tch computes it, the ONNX exporter
//! records it.

use tch::{Tensor, nn};

use crate::ops::{BatchNormParams, ConvGeometry, Ops};

/// Batch-norm epsilon of every layer (TF's default).
pub const BN_EPS: f64 = 0.001;
/// Variable-path prefix of the TorchScript module's layers.
pub const PREFIX: [&str; 2] = ["net", "layers"];

/// Conv (no bias) + batch norm without scale + ReLU, as in the TF graph.
#[derive(Debug)]
pub struct ConvBn {
    /// Path of the layer, e.g. `net.layers.conv_1` (for messages and ONNX names).
    pub name: String,
    /// Kernel [out, in, kh, kw].
    pub weight: Tensor,
    /// BN shift.
    pub beta: Tensor,
    /// BN running mean.
    pub mean: Tensor,
    /// BN running variance.
    pub var: Tensor,
    /// Stride (both axes).
    pub stride: i64,
    /// Zero padding [h, w].
    pub padding: [i64; 2],
}

impl ConvBn {
    fn new(
        p: &nn::Path,
        name: &str,
        cin: i64,
        cout: i64,
        k: [i64; 2],
        stride: i64,
        padding: [i64; 2],
    ) -> Self {
        let p = p / name;
        Self {
            name: p.components().collect::<Vec<_>>().join("."),
            weight: p.zeros_no_train("weight", &[cout, cin, k[0], k[1]]),
            beta: p.zeros_no_train("beta", &[cout]),
            mean: p.zeros_no_train("mean", &[cout]),
            var: p.ones_no_train("var", &[cout]),
            stride,
            padding,
        }
    }

    /// Square kernel `k` with "same" padding `k / 2`, stride 1.
    fn same(p: &nn::Path, name: &str, cin: i64, cout: i64, k: i64) -> Self {
        Self::new(p, name, cin, cout, [k, k], 1, [k / 2, k / 2])
    }

    /// Factorised kernel [kh, kw] with "same" padding, stride 1.
    fn rect(p: &nn::Path, name: &str, cin: i64, cout: i64, kh: i64, kw: i64) -> Self {
        Self::new(p, name, cin, cout, [kh, kw], 1, [kh / 2, kw / 2])
    }

    /// 3x3, stride 2, no padding (the grid reductions).
    fn reduce(p: &nn::Path, name: &str, cin: i64, cout: i64) -> Self {
        Self::new(p, name, cin, cout, [3, 3], 2, [0, 0])
    }

    /// Conv (no bias) -> BN without scale (running statistics) -> ReLU on backend `o`.
    pub fn apply<O: Ops>(&self, o: &mut O, x: &O::V) -> Result<O::V, O::E> {
        let g = ConvGeometry {
            stride: self.stride,
            padding: self.padding,
            output_padding: [0, 0],
        };
        let y = o.conv(&self.name, x, &self.weight, None, g)?;
        let bn = BatchNormParams {
            scale: None,
            shift: &self.beta,
            mean: &self.mean,
            var: &self.var,
            eps: BN_EPS,
            momentum: 0.1,
        };
        let y = o.batch_norm(&self.name, &y, bn)?;
        o.relu(&y)
    }
}

/// Pooling windows used by the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Max, 3x3, stride 2, no padding.
    MaxReduce,
    /// Max, 3x3, stride 1, padding 1 (last block's pool branch in the FID variant).
    MaxSame,
    /// Average, 3x3, stride 1, padding 1, padding not counted.
    AvgSame,
    /// Average 8x8, stride 8: the final 8x8 map to one vector.
    AvgFinal,
}

impl Pool {
    /// The window as a primitive pooling op.
    pub fn op(self) -> crate::ops::Pool {
        let (kernel, stride, padding) = match self {
            Pool::MaxReduce => (3, 2, 0),
            Pool::MaxSame | Pool::AvgSame => (3, 1, 1),
            Pool::AvgFinal => (8, 8, 0),
        };
        crate::ops::Pool {
            max: matches!(self, Pool::MaxReduce | Pool::MaxSame),
            kernel,
            stride,
            padding,
        }
    }
}

/// Applies a chain of layers.
fn chain<O: Ops>(o: &mut O, x: &O::V, layers: &[ConvBn]) -> Result<O::V, O::E> {
    let (first, rest) = layers.split_first().expect("a tower has at least one layer");
    let mut y = first.apply(o, x)?;
    for c in rest {
        y = c.apply(o, &y)?;
    }
    Ok(y)
}

/// One mixed block.
// Eleven blocks built once per process: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Block {
    /// 35x35: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1.
    A {
        conv: ConvBn,
        tower: Vec<ConvBn>,
        tower_1: Vec<ConvBn>,
        tower_2: ConvBn,
    },
    /// 35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | maxpool.
    B { conv: ConvBn, tower: Vec<ConvBn> },
    /// 17x17 with factorised 7x7: 1x1 | 1x1-1x7-7x1 | 1x1-(7x1-1x7)x2 | avgpool-1x1.
    C {
        conv: ConvBn,
        tower: Vec<ConvBn>,
        tower_1: Vec<ConvBn>,
        tower_2: ConvBn,
    },
    /// 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool.
    D {
        tower: Vec<ConvBn>,
        tower_1: Vec<ConvBn>,
    },
    /// 8x8 with split 1x3/3x1 heads; `pool` is avg in mixed_9 and max in mixed_10.
    E {
        conv: ConvBn,
        tower_conv: ConvBn,
        tower_mixed: [ConvBn; 2],
        tower_1: [ConvBn; 2],
        tower_1_mixed: [ConvBn; 2],
        tower_2_conv: ConvBn,
        pool: Pool,
    },
}

impl Block {
    fn a(p: &nn::Path, cin: i64, pool_features: i64) -> Self {
        let (t, t1, t2) = (p / "tower", p / "tower_1", p / "tower_2");
        Block::A {
            conv: ConvBn::same(p, "conv", cin, 64, 1),
            tower: vec![
                ConvBn::same(&t, "conv", cin, 48, 1),
                ConvBn::same(&t, "conv_1", 48, 64, 5),
            ],
            tower_1: vec![
                ConvBn::same(&t1, "conv", cin, 64, 1),
                ConvBn::same(&t1, "conv_1", 64, 96, 3),
                ConvBn::same(&t1, "conv_2", 96, 96, 3),
            ],
            tower_2: ConvBn::same(&t2, "conv", cin, pool_features, 1),
        }
    }

    fn b(p: &nn::Path, cin: i64) -> Self {
        let t = p / "tower";
        Block::B {
            conv: ConvBn::reduce(p, "conv", cin, 384),
            tower: vec![
                ConvBn::same(&t, "conv", cin, 64, 1),
                ConvBn::same(&t, "conv_1", 64, 96, 3),
                ConvBn::reduce(&t, "conv_2", 96, 96),
            ],
        }
    }

    fn c(p: &nn::Path, c7: i64) -> Self {
        let (t, t1, t2) = (p / "tower", p / "tower_1", p / "tower_2");
        Block::C {
            conv: ConvBn::same(p, "conv", 768, 192, 1),
            tower: vec![
                ConvBn::same(&t, "conv", 768, c7, 1),
                ConvBn::rect(&t, "conv_1", c7, c7, 1, 7),
                ConvBn::rect(&t, "conv_2", c7, 192, 7, 1),
            ],
            tower_1: vec![
                ConvBn::same(&t1, "conv", 768, c7, 1),
                ConvBn::rect(&t1, "conv_1", c7, c7, 7, 1),
                ConvBn::rect(&t1, "conv_2", c7, c7, 1, 7),
                ConvBn::rect(&t1, "conv_3", c7, c7, 7, 1),
                ConvBn::rect(&t1, "conv_4", c7, 192, 1, 7),
            ],
            tower_2: ConvBn::same(&t2, "conv", 768, 192, 1),
        }
    }

    fn d(p: &nn::Path) -> Self {
        let (t, t1) = (p / "tower", p / "tower_1");
        Block::D {
            tower: vec![
                ConvBn::same(&t, "conv", 768, 192, 1),
                ConvBn::reduce(&t, "conv_1", 192, 320),
            ],
            tower_1: vec![
                ConvBn::same(&t1, "conv", 768, 192, 1),
                ConvBn::rect(&t1, "conv_1", 192, 192, 1, 7),
                ConvBn::rect(&t1, "conv_2", 192, 192, 7, 1),
                ConvBn::reduce(&t1, "conv_3", 192, 192),
            ],
        }
    }

    fn e(p: &nn::Path, cin: i64, pool: Pool) -> Self {
        Block::E {
            conv: ConvBn::same(p, "conv", cin, 320, 1),
            tower_conv: ConvBn::same(p, "tower_conv", cin, 384, 1),
            tower_mixed: [
                ConvBn::rect(p, "tower_mixed_conv", 384, 384, 1, 3),
                ConvBn::rect(p, "tower_mixed_conv_1", 384, 384, 3, 1),
            ],
            tower_1: [
                ConvBn::same(p, "tower_1_conv", cin, 448, 1),
                ConvBn::same(p, "tower_1_conv_1", 448, 384, 3),
            ],
            tower_1_mixed: [
                ConvBn::rect(p, "tower_1_mixed_conv", 384, 384, 1, 3),
                ConvBn::rect(p, "tower_1_mixed_conv_1", 384, 384, 3, 1),
            ],
            tower_2_conv: ConvBn::same(p, "tower_2_conv", cin, 192, 1),
            pool,
        }
    }

    fn forward<O: Ops>(&self, o: &mut O, x: &O::V) -> Result<O::V, O::E> {
        match self {
            Block::A {
                conv,
                tower,
                tower_1,
                tower_2,
            }
            | Block::C {
                conv,
                tower,
                tower_1,
                tower_2,
            } => {
                let b0 = conv.apply(o, x)?;
                let b1 = chain(o, x, tower)?;
                let b2 = chain(o, x, tower_1)?;
                let pooled = o.pool(x, Pool::AvgSame.op())?;
                let b3 = tower_2.apply(o, &pooled)?;
                o.concat(&[b0, b1, b2, b3])
            }
            Block::B { conv, tower } => {
                let b0 = conv.apply(o, x)?;
                let b1 = chain(o, x, tower)?;
                let b2 = o.pool(x, Pool::MaxReduce.op())?;
                o.concat(&[b0, b1, b2])
            }
            Block::D { tower, tower_1 } => {
                let b0 = chain(o, x, tower)?;
                let b1 = chain(o, x, tower_1)?;
                let b2 = o.pool(x, Pool::MaxReduce.op())?;
                o.concat(&[b0, b1, b2])
            }
            Block::E {
                conv,
                tower_conv,
                tower_mixed,
                tower_1,
                tower_1_mixed,
                tower_2_conv,
                pool,
            } => {
                let b0 = conv.apply(o, x)?;
                let a = tower_conv.apply(o, x)?;
                let a0 = tower_mixed[0].apply(o, &a)?;
                let a1 = tower_mixed[1].apply(o, &a)?;
                let b = chain(o, x, tower_1)?;
                let b0m = tower_1_mixed[0].apply(o, &b)?;
                let b1m = tower_1_mixed[1].apply(o, &b)?;
                let pooled = o.pool(x, pool.op())?;
                let c = tower_2_conv.apply(o, &pooled)?;
                o.concat(&[b0, a0, a1, b0m, b1m, c])
            }
        }
    }
}

/// Inception-v3, FID variant: a 299x299 normalised image -> the 2048-d pool3 vector.
#[derive(Debug)]
pub struct InceptionNet {
    stem_a: Vec<ConvBn>,
    stem_b: Vec<ConvBn>,
    blocks: Vec<Block>,
}

impl InceptionNet {
    /// Declares every variable under `root` with the TorchScript's paths (zero-initialised:
    /// weights are loaded afterwards).
    pub fn new(root: &nn::Path) -> Self {
        let p = &(root / PREFIX[0] / PREFIX[1]);
        let stem_a = vec![
            ConvBn::reduce(p, "conv", 3, 32),
            ConvBn::new(p, "conv_1", 32, 32, [3, 3], 1, [0, 0]),
            ConvBn::same(p, "conv_2", 32, 64, 3),
        ];
        let stem_b = vec![
            ConvBn::same(p, "conv_3", 64, 80, 1),
            ConvBn::new(p, "conv_4", 80, 192, [3, 3], 1, [0, 0]),
        ];
        let m = |name: &str| p / name;
        let blocks = vec![
            Block::a(&m("mixed"), 192, 32),
            Block::a(&m("mixed_1"), 256, 64),
            Block::a(&m("mixed_2"), 288, 64),
            Block::b(&m("mixed_3"), 288),
            Block::c(&m("mixed_4"), 128),
            Block::c(&m("mixed_5"), 160),
            Block::c(&m("mixed_6"), 160),
            Block::c(&m("mixed_7"), 192),
            Block::d(&m("mixed_8")),
            Block::e(&m("mixed_9"), 1280, Pool::AvgSame),
            Block::e(&m("mixed_10"), 2048, Pool::MaxSame),
        ];
        Self {
            stem_a,
            stem_b,
            blocks,
        }
    }

    /// The forward pass on backend `o` from a normalised [N, 3, 299, 299] input to the
    /// pooled [N, 2048, 1, 1] map (callers flatten it).
    pub fn forward<O: Ops>(&self, o: &mut O, x: &O::V) -> Result<O::V, O::E> {
        let y = chain(o, x, &self.stem_a)?;
        let y = o.pool(&y, Pool::MaxReduce.op())?;
        let y = chain(o, &y, &self.stem_b)?;
        let mut y = o.pool(&y, Pool::MaxReduce.op())?;
        for b in &self.blocks {
            y = b.forward(o, &y)?;
        }
        o.pool(&y, Pool::AvgFinal.op())
    }
}
