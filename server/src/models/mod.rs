//! What the service serves: ONNX Runtime sessions on the chosen execution provider
//! (`runtime`), the registry scanned from `models/` (`registry`), the generators and the
//! feature extractor it holds, the class labels of conditional generators (`classes`),
//! reference statistics, and the encodings of generated images (`encode`).

pub mod classes;
pub mod encode;
pub mod extractor;
pub mod generator;
pub mod reference;
pub mod registry;
pub mod runtime;

pub use extractor::Extractor;
pub use generator::Generator;
pub use reference::{Reference, ReferenceError, ReferenceInfo};
pub use registry::Registry;
