//! The primitive operations an exported network's forward pass is written in, once: [`TchOps`]
//! computes them (training, sampling, evaluation) and the ONNX recorder
//! (`onnx::OnnxRecorder`) writes them as graph nodes (export). The generator and the
//! FID Inception are written against [`Ops`], so what runs in tch is what ships as ONNX.

use tch::Tensor;

/// Batch-norm parameters of one layer (per channel, axis 1).
#[derive(Debug, Clone, Copy)]
pub struct BatchNormParams<'a> {
    /// Scale (gamma); `None` = 1 (TF's Inception has no scale).
    pub scale: Option<&'a Tensor>,
    /// Shift (beta).
    pub shift: &'a Tensor,
    /// Running mean.
    pub mean: &'a Tensor,
    /// Running variance.
    pub var: &'a Tensor,
    /// Epsilon.
    pub eps: f64,
    /// Running-statistics momentum (training only).
    pub momentum: f64,
}

/// Geometry of a (transposed) convolution; square strides, per-axis padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Stride on both axes.
    pub stride: i64,
    /// Zero padding [h, w] on both sides of each axis.
    pub padding: [i64; 2],
    /// Extra size added to one side of a transposed convolution's output [h, w].
    pub output_padding: [i64; 2],
}

/// A pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Max (else average, padding not counted).
    pub max: bool,
    /// Square kernel.
    pub kernel: i64,
    /// Stride.
    pub stride: i64,
    /// Padding on every side.
    pub padding: i64,
}

/// What a forward pass needs from its backend. `name` identifies a layer's parameters
/// (ONNX initializer names); parameter-free ops are named by the backend.
pub trait Ops {
    /// A value flowing through the network (a tensor, or a graph value name).
    type V;
    /// Backend error.
    type E;
    /// `x W^T + b` on [N, in].
    fn linear(&mut self, name: &str, x: &Self::V, w: &Tensor, b: Option<&Tensor>)
    -> Result<Self::V, Self::E>;
    /// 2-D convolution, weight [out, in, kh, kw].
    fn conv(
        &mut self,
        name: &str,
        x: &Self::V,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<Self::V, Self::E>;
    /// 2-D transposed convolution, weight [in, out, kh, kw].
    fn conv_transpose(
        &mut self,
        name: &str,
        x: &Self::V,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<Self::V, Self::E>;
    /// Batch norm over axis 1 (running statistics when not training).
    fn batch_norm(&mut self, name: &str, x: &Self::V, p: BatchNormParams<'_>) -> Result<Self::V, Self::E>;
    /// max(x, 0).
    fn relu(&mut self, x: &Self::V) -> Result<Self::V, Self::E>;
    /// tanh(x).
    fn tanh(&mut self, x: &Self::V) -> Result<Self::V, Self::E>;
    /// Reshape to `[N, shape...]` (the batch axis stays as it is).
    fn reshape(&mut self, x: &Self::V, shape: &[i64]) -> Result<Self::V, Self::E>;
    /// Pooling.
    fn pool(&mut self, x: &Self::V, p: Pool) -> Result<Self::V, Self::E>;
    /// Concatenation along channels.
    fn concat(&mut self, xs: &[Self::V]) -> Result<Self::V, Self::E>;
    /// `x` [N, F] with the rows of `table` [K, E] picked by integer labels [N] (an embedding
    /// lookup) appended -> [N, F + E].
    fn append_rows(
        &mut self,
        name: &str,
        x: &Self::V,
        table: &Tensor,
        labels: &Self::V,
    ) -> Result<Self::V, Self::E>;
}

/// The tch backend: computes on tensors; batch norm in training or inference mode. With
/// `models > 1` it computes that many independent networks side by side in one kernel per
/// layer (stacked training): model k owns the k-th block of every channel and feature axis,
/// convolutions are grouped by model and linear layers are batched matrix products.
#[derive(Debug, Clone, Copy)]
pub struct TchOps {
    /// Batch norm uses (and updates) batch statistics.
    pub train: bool,
    /// Networks stacked side by side (1: a plain network).
    pub models: i64,
}

impl TchOps {
    /// Inference mode (running statistics), one network.
    pub fn eval() -> Self {
        Self {
            train: false,
            models: 1,
        }
    }

    /// Training mode (batch statistics, running statistics updated), one network.
    pub fn train() -> Self {
        Self {
            train: true,
            models: 1,
        }
    }
}

/// Model `k`'s block of axis `dim` (`models` equal blocks).
pub fn block(t: &Tensor, dim: i64, k: i64, models: i64) -> Tensor {
    let size = t.size()[dim as usize] / models;
    t.narrow(dim, k * size, size)
}

/// `x W^T + b` for `k` stacked linear layers: `x` [N, k*in], `w` [k*out, in], `b` [k*out]
/// -> [N, k*out], model by model (one batched matrix product).
pub fn stacked_linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, k: i64) -> Tensor {
    let n = x.size()[0];
    let (out, inp) = (w.size()[0] / k, w.size()[1]);
    let xk = x.view([n, k, inp]).transpose(0, 1);
    let wk = w.view([k, out, inp]).transpose(1, 2);
    let y = match b {
        Some(b) => b.view([k, 1, out]).baddbmm(&xk, &wk, 1.0, 1.0),
        None => xk.bmm(&wk),
    };
    y.transpose(0, 1).reshape([n, k * out])
}

impl Ops for TchOps {
    type V = Tensor;
    type E = std::convert::Infallible;

    fn linear(&mut self, _: &str, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor, Self::E> {
        Ok(if self.models == 1 {
            x.linear(w, b)
        } else {
            stacked_linear(x, w, b, self.models)
        })
    }

    fn conv(
        &mut self,
        _: &str,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<Tensor, Self::E> {
        Ok(x.conv2d(w, b, [g.stride, g.stride], g.padding, [1, 1], self.models))
    }

    fn conv_transpose(
        &mut self,
        _: &str,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<Tensor, Self::E> {
        Ok(x.conv_transpose2d(
            w,
            b,
            [g.stride, g.stride],
            g.padding,
            g.output_padding,
            self.models,
            [1, 1],
        ))
    }

    fn batch_norm(&mut self, _: &str, x: &Tensor, p: BatchNormParams<'_>) -> Result<Tensor, Self::E> {
        Ok(x.batch_norm(
            p.scale,
            Some(p.shift),
            Some(p.mean),
            Some(p.var),
            self.train,
            p.momentum,
            p.eps,
            true,
        ))
    }

    fn relu(&mut self, x: &Tensor) -> Result<Tensor, Self::E> {
        Ok(x.relu())
    }

    fn tanh(&mut self, x: &Tensor) -> Result<Tensor, Self::E> {
        Ok(x.tanh())
    }

    fn reshape(&mut self, x: &Tensor, shape: &[i64]) -> Result<Tensor, Self::E> {
        let mut dims = vec![-1];
        dims.extend_from_slice(shape);
        Ok(x.view(dims.as_slice()))
    }

    fn pool(&mut self, x: &Tensor, p: Pool) -> Result<Tensor, Self::E> {
        let (k, s, pad) = (p.kernel, p.stride, p.padding);
        Ok(if p.max {
            x.max_pool2d([k, k], [s, s], [pad, pad], [1, 1], false)
        } else {
            x.avg_pool2d([k, k], [s, s], [pad, pad], false, false, None)
        })
    }

    fn concat(&mut self, xs: &[Tensor]) -> Result<Tensor, Self::E> {
        Ok(Tensor::cat(xs, 1))
    }

    fn append_rows(
        &mut self,
        _: &str,
        x: &Tensor,
        table: &Tensor,
        labels: &Tensor,
    ) -> Result<Tensor, Self::E> {
        Ok(Tensor::cat(&[x, &table.index_select(0, labels)], 1))
    }
}

/// How a stack of networks runs its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StackKernels {
    /// One kernel per layer for all models: grouped convolutions, batched matrix products,
    /// batched spectral norm (the point of stacking on a GPU: the step is launch-bound).
    Grouped,
    /// The models' layers one after another on their own blocks: the same kernels a single
    /// run uses, so a stacked run is bit for bit its single run (on a CPU, where the step
    /// is compute-bound and grouping gains nothing, this is the default).
    #[default]
    PerModel,
    /// Per-model layers, each run on its own CUDA stream, so the device can overlap the
    /// runs' kernels (the CPU, which has no streams, runs them as per-model).
    Streams,
}

impl crate::config::Choice for StackKernels {
    const ALL: &'static [(&'static str, Self)] = &[
        ("grouped", Self::Grouped),
        ("per-model", Self::PerModel),
        ("streams", Self::Streams),
    ];
    const HELP: &'static [&'static str] = &[
        "one kernel per layer for all runs (the GPU default)",
        "each run's layers on their own (the CPU default; bit for bit the single runs)",
        "per-model, each run on its own CUDA stream so the GPU overlaps them (CPU: per-model)",
    ];
}

impl StackKernels {
    /// True when each run's layers run on their own (per-model and streams).
    pub fn per_model(self) -> bool {
        self != Self::Grouped
    }

    /// What a training stack uses: `PAGAN_STACK_KERNELS` (grouped, per-model, streams) if
    /// set, else [`Self::for_device`]. A performance setting: it changes no result beyond
    /// float rounding, so it is not part of a run's config.
    pub fn configured(device: tch::Device) -> Result<Self, String> {
        Self::from_setting(std::env::var("PAGAN_STACK_KERNELS").ok().as_deref(), device)
    }

    /// [`Self::configured`] for the variable's value `v` (`None`: unset).
    fn from_setting(v: Option<&str>, device: tch::Device) -> Result<Self, String> {
        use crate::config::Choice;
        match v {
            Some(w) => Self::parse_word(w, "PAGAN_STACK_KERNELS"),
            None => Ok(Self::for_device(device)),
        }
    }

    /// The default for a device: grouped on CUDA, per model on the CPU.
    pub fn for_device(device: tch::Device) -> Self {
        if device.is_cuda() {
            Self::Grouped
        } else {
            Self::PerModel
        }
    }
}

/// Runs an infallible tch forward (the error type of [`TchOps`] has no values).
pub fn run_tch<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::StackKernels;
    use tch::Device;

    #[test]
    fn the_stack_kernels_setting_overrides_the_device_default_or_says_what_is_valid() {
        let pick = |v, d| StackKernels::from_setting(v, d);
        assert_eq!(pick(None, Device::Cpu), Ok(StackKernels::PerModel));
        assert_eq!(pick(None, Device::Cuda(0)), Ok(StackKernels::Grouped));
        assert_eq!(pick(Some("streams"), Device::Cuda(0)), Ok(StackKernels::Streams));
        assert_eq!(pick(Some("grouped"), Device::Cpu), Ok(StackKernels::Grouped));
        let err = pick(Some("fast"), Device::Cpu).err().unwrap_or_default();
        assert!(
            err.contains("PAGAN_STACK_KERNELS") && err.contains("streams"),
            "{err}"
        );
    }
}
