//! The SN-DCGAN's building blocks and geometry: batch norm and transposed-conv layers of
//! G (written against `crate::ops::Ops`, so tch and ONNX share them), and the "SAME"
//! padding arithmetic that lets 28x28 images halve to 14, 7 and 4.

use tch::{Kind, Tensor, nn};

use crate::ops::{BatchNormParams, ConvGeometry, Ops};

/// Weight init: N(0, 0.02), the DCGAN convention.
pub const INIT_STD: f64 = 0.02;
/// BatchNorm epsilon and momentum (PyTorch defaults; exported to ONNX unchanged).
pub const BN_EPS: f64 = 1e-5;
/// BatchNorm running-statistics momentum.
pub const BN_MOMENTUM: f64 = 0.1;

/// The N(0, 0.02) initialiser.
pub fn normal_init() -> nn::Init {
    nn::Init::Randn {
        mean: 0.0,
        stdev: INIT_STD,
    }
}

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

/// TF "SAME" padding (before, after) of one axis; the odd pixel goes after.
pub fn same_padding(input: i64, k: i64, stride: i64) -> (i64, i64) {
    let out = (input + stride - 1) / stride;
    let total = ((out - 1) * stride + k - input).max(0);
    (total / 2, total - total / 2)
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
    /// Declares `n` channels under `p` (`weight`, `bias`, `running_mean`, `running_var`).
    pub fn new(p: &nn::Path, n: i64) -> Self {
        Self {
            weight: p.ones("weight", &[n]),
            bias: p.zeros("bias", &[n]),
            running_mean: p.zeros_no_train("running_mean", &[n]),
            running_var: p.ones_no_train("running_var", &[n]),
        }
    }

    /// Applies the layer on backend `o`.
    pub fn apply<O: Ops>(&self, o: &mut O, name: &str, x: &O::V) -> Result<O::V, O::E> {
        let p = BatchNormParams {
            scale: Some(&self.weight),
            shift: &self.bias,
            mean: &self.running_mean,
            var: &self.running_var,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        };
        o.batch_norm(name, x, p)
    }
}

/// One transposed conv of G with its geometry.
#[derive(Debug)]
pub struct Deconv {
    /// Kernel [in, out, k, k].
    pub weight: Tensor,
    /// Bias [out] (only the last layer has one; BN follows the others).
    pub bias: Option<Tensor>,
    /// Stride, padding and output padding.
    pub geometry: ConvGeometry,
}

impl Deconv {
    /// Applies the layer on backend `o`.
    pub fn apply<O: Ops>(&self, o: &mut O, name: &str, x: &O::V) -> Result<O::V, O::E> {
        o.conv_transpose(name, x, &self.weight, self.bias.as_ref(), self.geometry)
    }
}

/// The minibatch standard deviation of features `[N, F]`: within each group of `group`
/// consecutive rows (the whole batch when `N` is not a multiple of it), the population
/// std of every feature, averaged over features; one value per row `[N, 1]`. Groups keep
/// reals and fakes apart when D sees them in one batch.
pub fn minibatch_std(h: &Tensor, group: i64) -> Tensor {
    let (n, f) = (h.size()[0], h.size()[1]);
    let g = if group > 0 && n % group == 0 { group } else { n };
    let x = h.view([n / g, g, f]);
    // + 1e-8 keeps the square root differentiable when a group's rows are equal.
    let std = (x.var_dim(1, false, false) + 1e-8).sqrt();
    std.mean_dim(1, true, Kind::Float)
        .repeat_interleave_self_int(g, 0, None)
        .view([n, 1])
}

/// D's minibatch standard-deviation feature: [`minibatch_std`] of the
/// final features, through its own weight into the logit.
#[derive(Debug)]
pub struct MinibatchStd {
    /// Weight of the feature in the logit, [1, 1] (starts at 0: D begins as without it).
    pub weight: Tensor,
    /// Rows per group (the batch: reals and fakes never share one).
    pub group: i64,
}

impl MinibatchStd {
    /// The feature's weight under `p` (`p/weight`), grouping `group` rows.
    pub fn new(p: &nn::Path, group: i64) -> Self {
        MinibatchStd {
            weight: p.zeros("weight", &[1, 1]),
            group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_per_resolution() {
        assert_eq!(g_sizes(28), [4, 7, 14, 28]);
        assert_eq!(g_sizes(32), [4, 8, 16, 32]);
        assert_eq!(g_sizes(64), [8, 16, 32, 64]);
        assert_eq!(same_padding(7, 4, 2), (1, 2));
        assert_eq!(same_padding(28, 4, 2), (1, 1));
        assert_eq!(same_padding(14, 3, 1), (1, 1));
        assert_eq!(deconv_padding(4, 7), (2, 1));
        assert_eq!(deconv_padding(7, 14), (1, 0));
    }

    fn tt(v: &[f64], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape).to_kind(tch::Kind::Float)
    }

    fn rows3(seed: u64, n: usize, f: usize) -> Vec<f64> {
        let mut r = pagan_shared::rng::SplitMix64::new(seed);
        (0..n * f).map(|_| r.next_f64() * 4.0 - 2.0).collect()
    }

    #[test]
    fn minibatch_std_matches_a_float64_computation_per_group() {
        let (n, f, g) = (6, 4, 3);
        let x = rows3(3, n, f);
        let got = minibatch_std(&tt(&x, &[n as i64, f as i64]), g as i64);
        assert_eq!(got.size(), vec![n as i64, 1]);
        for grp in 0..n / g {
            let mut s = 0.0;
            for j in 0..f {
                let vals: Vec<f64> = (0..g).map(|i| x[(grp * g + i) * f + j]).collect();
                let m = vals.iter().sum::<f64>() / g as f64;
                let var = vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / g as f64;
                s += (var + 1e-8).sqrt();
            }
            let want = s / f as f64;
            for i in 0..g {
                let v = got.double_value(&[(grp * g + i) as i64, 0]);
                assert!((v - want).abs() < 1e-5, "group {grp}: {v} vs {want}");
            }
        }
        // A batch that is not a multiple of the group is one group.
        let whole = minibatch_std(&tt(&x[..5 * f], &[5, f as i64]), 3);
        assert_eq!(whole.size(), vec![5, 1]);
    }
}
