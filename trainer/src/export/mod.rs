//! Exports to ONNX for the server: the generator of a run (`generator`) and the FID
//! Inception with its resize and normalisation inside (`inception`). Both graphs are
//! recorded from the same forward code tch runs, and each is checked in ONNX Runtime
//! against tch before anything is written.

pub mod generator;
pub mod inception;

pub use generator::{ExportReport, export_run, generator_onnx};
pub use inception::{InceptionExport, export_inception, inception_onnx};

use crate::onnx::OnnxError;
use crate::onnx::runtime::OrtRunError;

/// Errors of the export library functions.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The graph could not be built.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// Reading weights or running the tch forward failed.
    #[error("tch: {0}")]
    Tch(#[from] tch::TchError),
    /// ONNX Runtime failed to load, build or run the model.
    #[error(transparent)]
    Ort(#[from] OrtRunError),
    /// An output with an unexpected shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// What was checked.
        what: String,
        /// Expected shape.
        expected: Vec<i64>,
        /// Actual shape.
        got: Vec<i64>,
    },
    /// A resize convention an ONNX `Resize` cannot hold exactly.
    #[error(
        "the {0} resize is not put in the graph (PIL's bicubic is not an ONNX Resize that ONNX Runtime \
         is known to reproduce); export the asymmetric or half_pixel graph: scoring against {0} \
         references resizes before it"
    )]
    ResizeNotInGraph(pagan_shared::ResizeMode),
}
