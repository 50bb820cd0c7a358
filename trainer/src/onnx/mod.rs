//! Our own ONNX writer and runner: prost messages for the subset of `onnx.proto` we need,
//! a small graph builder over them, the recorder that writes a forward pass written over
//! `crate::ops::Ops` as graph nodes, and ONNX Runtime sessions to check what was written.
//! libtorch has no ONNX exporter, so exports are written here.

pub mod builder;
pub mod proto;
pub mod record;
pub mod runtime;

pub use builder::{AttrValue, Dim, GraphBuilder};
pub use record::OnnxRecorder;

/// The one opset every export uses (BatchNormalization-15, ConvTranspose-11, Gemm-13,
/// Reshape-14, Relu-14, Tanh-13 are the versions in force at 17).
pub const OPSET: i64 = 17;

/// IR version written into every model. Set explicitly: the `onnx` package defaults to a
/// newer IR than ONNX Runtime 1.31 accepts (<= 13); IR 8 is the one that introduced opset 17.
pub const IR_VERSION: i64 = 8;

/// Producer name recorded in every model.
pub const PRODUCER: &str = "pagan-trainer";

/// Errors while building a graph.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// A value name is defined twice (input, initializer or node output).
    #[error("ONNX graph: value `{0}` is defined more than once")]
    Duplicate(String),
    /// A node reads a value nothing defines before it.
    #[error("ONNX graph: node `{node}` reads `{input}`, which no earlier node, input or initializer defines")]
    Undefined {
        /// Node name.
        node: String,
        /// The missing value.
        input: String,
    },
    /// A declared graph output is never produced.
    #[error("ONNX graph: output `{0}` is never produced")]
    MissingOutput(String),
    /// An initializer's data length does not match its dims.
    #[error("ONNX initializer `{name}`: dims {dims:?} need {expected} values, got {got}")]
    DataLength {
        /// Initializer name.
        name: String,
        /// Declared dims.
        dims: Vec<i64>,
        /// Product of the dims.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A weight tensor could not be read.
    #[error("reading a weight tensor: {0}")]
    Tensor(#[from] tch::TchError),
    /// A weight with an unexpected shape.
    #[error("weight `{name}`: expected a {what}, got shape {got:?}")]
    WeightShape {
        /// Initializer name.
        name: String,
        /// What shape was expected, in words.
        what: &'static str,
        /// Its shape.
        got: Vec<i64>,
    },
    /// A negative dimension in an initializer or a fixed shape entry.
    #[error("ONNX `{name}`: negative dimension in {dims:?}")]
    NegativeDim {
        /// Value name.
        name: String,
        /// Offending dims.
        dims: Vec<i64>,
    },
}
