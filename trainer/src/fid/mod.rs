//! FID and KID in the trainer: the FID Inception (`inception`), the two extractors (tch,
//! ONNX Runtime), where images come from (`sources`), the run through the shared
//! image-to-feature path (`extract`), model outputs rounded to bytes on the device
//! (`quantize`) and evaluation during training (`evaluate`).
//! Scoring itself is `pagan_shared::score`, the policy the server uses too.

pub mod evaluate;
pub mod extract;
pub mod extractor;
pub mod inception;
pub mod intra;
pub mod quantize;
pub mod sources;

pub use extract::{DEFAULT_BATCH, ExtractOptions, Extracted, extract};
pub use extractor::Extractor;
