//! Contracts both binaries rely on: image grids and conversions, the model manifest,
//! feature statistics, Frechet distance and KID. No tch, no ort.

pub mod error;
pub mod frechet;
pub mod grid;
pub mod inception;
pub mod install_paths;
pub mod kid;
pub mod latent;
pub mod manifest;
pub mod npy;
pub mod npz;
pub mod onnx_runtime;
pub mod stats;

pub use error::StatsError;
pub use frechet::{FrechetTerms, frechet_distance, frechet_terms, frechet_terms_from_features};
pub use inception::{InceptionManifest, ResizeMode};
pub use kid::{KidConfig, KidResult, kid, mmd2_unbiased};
pub use npz::{NpzStats, read_features_npz, read_stats_npz, write_stats_npz, write_stats_npz_with_features};
pub use stats::{FeatureStats, Gaussian, StatsWarning};
