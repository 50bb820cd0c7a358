//! A small builder for ONNX graphs: typed inputs/outputs (symbolic dims allowed),
//! constant initializers, and nodes with typed attributes. Wiring is checked as the graph
//! grows: a node may only read values defined before it, so the node list is always in
//! topological order, as ONNX requires.

use std::collections::HashSet;

use prost::Message;

use super::OnnxError;
use super::proto::{
    AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, tensor_shape_proto,
    type_proto,
};

/// One axis of a declared input/output shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size, e.g. "N" for a dynamic batch.
    Sym(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(s: &str) -> Self {
        Dim::Sym(s.to_owned())
    }
}

/// A node attribute value (only the kinds our exporters use).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A single integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A single float.
    Float(f32),
    /// A list of floats.
    Floats(Vec<f32>),
    /// A UTF-8 string.
    String(String),
}

impl AttrValue {
    fn to_proto(&self, name: &str) -> AttributeProto {
        let mut a = AttributeProto {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let ty = match self {
            AttrValue::Int(v) => {
                a.i = Some(*v);
                AttributeType::Int
            }
            AttrValue::Ints(v) => {
                a.ints = v.clone();
                AttributeType::Ints
            }
            AttrValue::Float(v) => {
                a.f = Some(*v);
                AttributeType::Float
            }
            AttrValue::Floats(v) => {
                a.floats = v.clone();
                AttributeType::Floats
            }
            AttrValue::String(s) => {
                a.s = Some(s.as_bytes().to_vec());
                AttributeType::String
            }
        };
        a.r#type = Some(ty as i32);
        a
    }
}

/// Builds one ONNX graph and serialises it as a model.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    name: String,
    doc: Option<String>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    metadata: Vec<StringStringEntryProto>,
    /// Every value name defined so far (inputs, initializers, node outputs).
    defined: HashSet<String>,
    /// Node names in use (node names must be unique too).
    node_names: HashSet<String>,
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Sym(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        doc_string: None,
    }
}

/// Number of elements for `dims`, or an error for negative or overflowing dims.
fn element_count(name: &str, dims: &[i64]) -> Result<usize, OnnxError> {
    let neg = || OnnxError::NegativeDim {
        name: name.to_owned(),
        dims: dims.to_vec(),
    };
    dims.iter().try_fold(1usize, |acc, &d| {
        let d = usize::try_from(d).map_err(|_| neg())?;
        acc.checked_mul(d).ok_or_else(neg)
    })
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    /// Sets the model's human-readable description.
    pub fn doc(&mut self, text: &str) {
        self.doc = Some(text.to_owned());
    }

    /// Adds a key/value pair to the model's metadata.
    pub fn metadata(&mut self, key: &str, value: &str) {
        self.metadata.push(StringStringEntryProto {
            key: Some(key.to_owned()),
            value: Some(value.to_owned()),
        });
    }

    fn define(&mut self, name: &str) -> Result<(), OnnxError> {
        if name.is_empty() || !self.defined.insert(name.to_owned()) {
            return Err(OnnxError::Duplicate(name.to_owned()));
        }
        Ok(())
    }

    /// Declares a graph input of element type `elem` and shape `dims`; returns its name.
    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> Result<String, OnnxError> {
        self.define(name)?;
        self.inputs.push(value_info(name, elem, dims));
        Ok(name.to_owned())
    }

    /// Declares a graph output; some node must produce `name` before [`Self::finish`].
    pub fn output(&mut self, name: &str, elem: DataType, dims: &[Dim]) {
        self.outputs.push(value_info(name, elem, dims));
    }

    /// Adds an f32 constant (stored as little-endian raw data); returns its name.
    pub fn initializer_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> Result<String, OnnxError> {
        let expected = element_count(name, dims)?;
        if expected != data.len() {
            return Err(OnnxError::DataLength {
                name: name.to_owned(),
                dims: dims.to_vec(),
                expected,
                got: data.len(),
            });
        }
        self.define(name)?;
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            name: Some(name.to_owned()),
            raw_data: Some(raw),
            ..Default::default()
        });
        Ok(name.to_owned())
    }

    /// Adds an i64 constant (shapes, axes); returns its name.
    pub fn initializer_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> Result<String, OnnxError> {
        let expected = element_count(name, dims)?;
        if expected != data.len() {
            return Err(OnnxError::DataLength {
                name: name.to_owned(),
                dims: dims.to_vec(),
                expected,
                got: data.len(),
            });
        }
        self.define(name)?;
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Int64 as i32),
            name: Some(name.to_owned()),
            int64_data: data.to_vec(),
            ..Default::default()
        });
        Ok(name.to_owned())
    }

    /// Adds a node of the default domain. Every non-empty input must already be defined
    /// ("" marks an omitted optional input); outputs become defined.
    pub fn add_node(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[(&str, AttrValue)],
    ) -> Result<(), OnnxError> {
        if let Some(missing) = inputs
            .iter()
            .find(|i| !i.is_empty() && !self.defined.contains(**i))
        {
            return Err(OnnxError::Undefined {
                node: name.to_owned(),
                input: (*missing).to_owned(),
            });
        }
        if !self.node_names.insert(name.to_owned()) {
            return Err(OnnxError::Duplicate(name.to_owned()));
        }
        for o in outputs {
            self.define(o)?;
        }
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name: Some(name.to_owned()),
            op_type: Some(op_type.to_owned()),
            attribute: attrs.iter().map(|(k, v)| v.to_proto(k)).collect(),
            ..Default::default()
        });
        Ok(())
    }

    /// Adds a single-output node whose output value is named like the node; returns that name.
    pub fn node(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: &[(&str, AttrValue)],
    ) -> Result<String, OnnxError> {
        self.add_node(name, op_type, inputs, &[name], attrs)?;
        Ok(name.to_owned())
    }

    /// The model message: IR [`super::IR_VERSION`], the default domain at `opset`.
    pub fn into_model(self, opset: i64, producer: &str) -> Result<ModelProto, OnnxError> {
        for o in &self.outputs {
            let name = o.name.clone().unwrap_or_default();
            if !self.defined.contains(&name) {
                return Err(OnnxError::MissingOutput(name));
            }
        }
        Ok(ModelProto {
            ir_version: Some(super::IR_VERSION),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            producer_name: Some(producer.to_owned()),
            producer_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            doc_string: self.doc,
            graph: Some(GraphProto {
                node: self.nodes,
                name: Some(self.name),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: self.metadata,
            ..Default::default()
        })
    }

    /// The serialised model (see [`Self::into_model`]).
    pub fn finish(self, opset: i64, producer: &str) -> Result<Vec<u8>, OnnxError> {
        Ok(self.into_model(opset, producer)?.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiring_errors_are_caught() {
        let mut b = GraphBuilder::new("t");
        b.input("x", DataType::Float, &["N".into(), 3.into()]).unwrap();
        assert!(matches!(
            b.node("y", "Relu", &["nope"], &[]),
            Err(OnnxError::Undefined { .. })
        ));
        assert!(matches!(
            b.initializer_f32("w", &[2, 2], &[1.0; 3]),
            Err(OnnxError::DataLength {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            b.initializer_i64("x", &[1], &[1]),
            Err(OnnxError::Duplicate(_))
        ));
        b.output("z", DataType::Float, &["N".into(), 3.into()]);
        assert!(matches!(
            b.finish(super::super::OPSET, "t"),
            Err(OnnxError::MissingOutput(_))
        ));
    }

    #[test]
    fn roundtrips_through_prost_with_presence() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", DataType::Float, &["N".into(), 2.into()]).unwrap();
        let w = b.initializer_f32("w", &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = b
            .node("y", "Gemm", &[&x, &w], &[("transB", AttrValue::Int(0))])
            .unwrap();
        b.output(&y, DataType::Float, &["N".into(), 2.into()]);
        let bytes = b.finish(17, "test").unwrap();
        let m = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(m.ir_version, Some(super::super::IR_VERSION));
        assert_eq!(m.opset_import[0].version, Some(17));
        let g = m.graph.unwrap();
        // A zero-valued int attribute must still be present on the wire.
        assert_eq!(g.node[0].attribute[0].i, Some(0));
        assert_eq!(g.node[0].attribute[0].r#type, Some(AttributeType::Int as i32));
        assert_eq!(g.initializer[0].raw_data.as_ref().map(Vec::len), Some(16));
        let dims = match &g.input[0].r#type.as_ref().unwrap().value {
            Some(type_proto::Value::TensorType(t)) => t.shape.clone().unwrap().dim,
            None => panic!("no tensor type"),
        };
        assert_eq!(
            dims[0].value,
            Some(tensor_shape_proto::dimension::Value::DimParam("N".into()))
        );
    }
}
