//! Contracts both binaries rely on: the model and extractor manifests, images and grids,
//! the latent prior and the one random generator, the one path from images to features,
//! feature statistics, Frechet distance, KID and the scoring policy, `.npy`/`.npz` files,
//! atomic writes, and the ONNX Runtime loader (no tch: the server links this crate).

pub mod error;
pub mod features;
pub mod frechet;
pub mod fs;
pub mod grid;
pub mod images;
pub mod inception;
pub mod install_paths;
pub mod kid;
pub mod latent;
pub mod manifest;
pub mod npy;
pub mod npz;
pub mod npz_inputs;
pub mod onnx_runtime;
pub mod prdc;
pub mod provenance;
pub mod resize;
pub mod rng;
pub mod score;
pub mod stats;
pub mod uncertainty;

pub use error::StatsError;
pub use frechet::{FrechetTerms, fid_of_rows, frechet_distance, frechet_terms, frechet_terms_from_features};
pub use inception::{InceptionManifest, ResizeMode};
pub use kid::{KidConfig, KidResult, kid, mmd2_unbiased};
pub use npz::{NpzStats, read_features_npz, read_stats_npz, write_stats_npz, write_stats_npz_with_features};
pub use npz_inputs::{NpzKind, npz_kind, read_feats_npz, read_images_npz};
pub use stats::{FeatureStats, Gaussian, StatsWarning};
