//! Records a forward pass written over `crate::ops::Ops` as ONNX nodes (opset 17):
//! weights become f32 initializers named after their layer, batch norm uses the running
//! statistics (inference mode), and the batch axis stays dynamic.

use tch::{Device, Kind, Tensor};

use super::{AttrValue, GraphBuilder, OnnxError};
use crate::ops::{BatchNormParams, ConvGeometry, Ops, Pool};

/// Values of a tensor as f32, row-major, copied to the CPU.
pub fn values(t: &Tensor) -> Result<Vec<f32>, tch::TchError> {
    let flat = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .flatten(0, -1);
    Vec::<f32>::try_from(&flat)
}

/// The [`Ops`] backend that writes nodes into a [`GraphBuilder`].
pub struct OnnxRecorder<'a> {
    b: &'a mut GraphBuilder,
    unnamed: usize,
}

impl<'a> OnnxRecorder<'a> {
    /// Records into `b`.
    pub fn new(b: &'a mut GraphBuilder) -> Self {
        Self { b, unnamed: 0 }
    }

    /// The builder (to add inputs, outputs and nodes outside the recorded forward).
    pub fn builder(&mut self) -> &mut GraphBuilder {
        self.b
    }

    fn weight(&mut self, name: &str, t: &Tensor) -> Result<String, OnnxError> {
        self.b.initializer_f32(name, &t.size(), &values(t)?)
    }

    fn fresh(&mut self, op: &str) -> String {
        self.unnamed += 1;
        format!("{op}_{}", self.unnamed)
    }

    fn simple(&mut self, op: &str, x: &str, attrs: &[(&str, AttrValue)]) -> Result<String, OnnxError> {
        let name = self.fresh(&op.to_lowercase());
        self.b.node(&name, op, &[x], attrs)
    }

    fn conv_like(
        &mut self,
        op: &str,
        name: &str,
        x: &str,
        w: &Tensor,
        bias: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<String, OnnxError> {
        let shape = w.size();
        if shape.len() != 4 {
            return Err(OnnxError::WeightShape {
                name: name.into(),
                what: "4-D kernel",
                got: shape,
            });
        }
        let wn = self.weight(&format!("{name}.weight"), w)?;
        let mut inputs = vec![x.to_owned(), wn];
        if let Some(b) = bias {
            inputs.push(self.weight(&format!("{name}.bias"), b)?);
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let [ph, pw] = g.padding;
        let mut attrs = vec![
            ("kernel_shape", AttrValue::Ints(vec![shape[2], shape[3]])),
            ("strides", AttrValue::Ints(vec![g.stride, g.stride])),
            ("pads", AttrValue::Ints(vec![ph, pw, ph, pw])),
            ("dilations", AttrValue::Ints(vec![1, 1])),
            ("group", AttrValue::Int(1)),
        ];
        if op == "ConvTranspose" {
            attrs.push(("output_padding", AttrValue::Ints(g.output_padding.to_vec())));
        }
        self.b
            .node(&format!("{name}/{}", op.to_lowercase()), op, &inputs, &attrs)
    }
}

impl Ops for OnnxRecorder<'_> {
    type V = String;
    type E = OnnxError;

    fn linear(
        &mut self,
        name: &str,
        x: &String,
        w: &Tensor,
        b: Option<&Tensor>,
    ) -> Result<String, OnnxError> {
        if w.size().len() != 2 {
            return Err(OnnxError::WeightShape {
                name: name.into(),
                what: "2-D matrix",
                got: w.size(),
            });
        }
        let wn = self.weight(&format!("{name}.weight"), w)?;
        let mut inputs = vec![x.clone(), wn];
        if let Some(b) = b {
            inputs.push(self.weight(&format!("{name}.bias"), b)?);
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        // Gemm with transB computes x W^T + b, exactly torch's linear.
        self.b.node(
            &format!("{name}/gemm"),
            "Gemm",
            &inputs,
            &[("transB", AttrValue::Int(1))],
        )
    }

    fn conv(
        &mut self,
        name: &str,
        x: &String,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<String, OnnxError> {
        self.conv_like("Conv", name, x, w, b, g)
    }

    fn conv_transpose(
        &mut self,
        name: &str,
        x: &String,
        w: &Tensor,
        b: Option<&Tensor>,
        g: ConvGeometry,
    ) -> Result<String, OnnxError> {
        self.conv_like("ConvTranspose", name, x, w, b, g)
    }

    fn batch_norm(&mut self, name: &str, x: &String, p: BatchNormParams<'_>) -> Result<String, OnnxError> {
        let c = p.shift.size().first().copied().unwrap_or(0);
        let scale = match p.scale {
            Some(s) => self.weight(&format!("{name}.scale"), s)?,
            // No scale (TF's Inception): a constant 1, which ORT folds into the conv.
            None => self
                .b
                .initializer_f32(&format!("{name}.scale"), &[c], &vec![1.0; c as usize])?,
        };
        let shift = self.weight(&format!("{name}.shift"), p.shift)?;
        let mean = self.weight(&format!("{name}.mean"), p.mean)?;
        let var = self.weight(&format!("{name}.var"), p.var)?;
        self.b.node(
            &format!("{name}/bn"),
            "BatchNormalization",
            &[x, &scale, &shift, &mean, &var],
            &[("epsilon", AttrValue::Float(p.eps as f32))],
        )
    }

    fn relu(&mut self, x: &String) -> Result<String, OnnxError> {
        self.simple("Relu", x, &[])
    }

    fn tanh(&mut self, x: &String) -> Result<String, OnnxError> {
        self.simple("Tanh", x, &[])
    }

    fn reshape(&mut self, x: &String, shape: &[i64]) -> Result<String, OnnxError> {
        let name = self.fresh("reshape");
        // -1 keeps the batch axis dynamic.
        let mut dims = vec![-1];
        dims.extend_from_slice(shape);
        let s = self
            .b
            .initializer_i64(&format!("{name}.shape"), &[dims.len() as i64], &dims)?;
        self.b.node(&name, "Reshape", &[x, &s], &[])
    }

    fn pool(&mut self, x: &String, p: Pool) -> Result<String, OnnxError> {
        let (k, s, pad) = (p.kernel, p.stride, p.padding);
        let mut attrs = vec![
            ("kernel_shape", AttrValue::Ints(vec![k, k])),
            ("strides", AttrValue::Ints(vec![s, s])),
            ("pads", AttrValue::Ints(vec![pad; 4])),
        ];
        if p.max {
            self.simple("MaxPool", x, &attrs)
        } else {
            attrs.push(("count_include_pad", AttrValue::Int(0)));
            self.simple("AveragePool", x, &attrs)
        }
    }

    fn append_rows(
        &mut self,
        name: &str,
        x: &String,
        table: &Tensor,
        labels: &String,
    ) -> Result<String, OnnxError> {
        let t = self.weight(&format!("{name}.weight"), table)?;
        let rows = self.b.node(
            &format!("{name}/gather"),
            "Gather",
            &[&t, labels],
            &[("axis", AttrValue::Int(0))],
        )?;
        self.b.node(
            &format!("{name}/concat"),
            "Concat",
            &[x, &rows],
            &[("axis", AttrValue::Int(1))],
        )
    }

    fn concat(&mut self, xs: &[String]) -> Result<String, OnnxError> {
        let name = self.fresh("concat");
        let inputs: Vec<&str> = xs.iter().map(String::as_str).collect();
        self.b
            .node(&name, "Concat", &inputs, &[("axis", AttrValue::Int(1))])
    }
}
