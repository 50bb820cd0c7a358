//! `pagan-server`: the HTTP service over the ONNX artifacts in `models/` (generators, the
//! Inception feature extractor, reference statistics). Modules from the bottom up:
//! `config` (settings), `metrics`, `models` (ONNX Runtime sessions, the registry,
//! generation and its encodings), `oip` (the KServe V2 protocol's
//! tensors), `scoring` (uploads to images, FID/KID jobs), `state`
//! (what handlers share) and `http` (routes, error mapping, uploads, OpenAPI). Domain
//! modules return their own errors; only `http` turns them into statuses and codes.
//! `pagan-serve` is its binary; see docs/ARCHITECTURE.md.

// The OpenAPI document is one `json!` literal, deeper than the default limit.
#![recursion_limit = "512"]

pub mod config;
pub mod http;
pub mod metrics;
pub mod models;
pub mod oip;
pub mod scoring;
pub mod state;

pub use config::Config;
pub use http::app;
pub use state::AppState;
