//! `pagan-server`: the HTTP service over the ONNX artifacts in `models/` (generators,
//! the Inception feature extractor, reference statistics). `pagan-serve` is its binary.

pub mod config;
pub mod decode;
pub mod errors;
pub mod generate;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod registry;
pub mod routes;
pub mod runtime;
pub mod scoring;
pub mod state;
pub mod upload;

pub use config::Config;
pub use routes::app;
pub use state::AppState;
