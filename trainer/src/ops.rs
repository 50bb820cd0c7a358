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
}

/// The tch backend: computes on tensors; batch norm in training or inference mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct TchOps {
    /// Batch norm uses (and updates) batch statistics.
    pub train: bool,
}

impl TchOps {
    /// Inference mode (running statistics).
    pub fn eval() -> Self {
        Self { train: false }
    }

    /// Training mode (batch statistics, running statistics updated).
    pub fn train() -> Self {
        Self { train: true }
    }
}

impl Ops for TchOps {
    type V = Tensor;
    type E = std::convert::Infallible;

    fn linear(&mut self, _: &str, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor, Self::E> {
        Ok(x.linear(w, b))
    }

    fn conv(
        &mut self,
        _: &str,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<Tensor, Self::E> {
        Ok(x.conv2d(w, b, [g.stride, g.stride], g.padding, [1, 1], 1))
    }

    fn conv_transpose(
        &mut self,
        _: &str,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<Tensor, Self::E> {
        Ok(x.conv_transpose2d(w, b, [g.stride, g.stride], g.padding, g.output_padding, 1, [1, 1]))
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
}

/// Runs an infallible tch forward (the error type of [`TchOps`] has no values).
pub fn run_tch<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}
