//! Command line and environment configuration: where models live, where to listen, which
//! execution provider to use, and every limit the service enforces.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};

/// Default maximum request body, bytes (256 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 256 << 20;
/// Default maximum images in one scoring request.
pub const DEFAULT_MAX_IMAGES: usize = 10_000;
/// Default maximum pixels (width x height) of one uploaded image (2048 x 2048).
pub const DEFAULT_MAX_PIXELS: u64 = 2048 * 2048;
/// Default maximum entries in an uploaded zip or tar.
pub const DEFAULT_MAX_ARCHIVE_ENTRIES: usize = 20_000;
/// Default maximum total uncompressed bytes of an uploaded archive (1 GiB).
pub const DEFAULT_MAX_ARCHIVE_BYTES: u64 = 1 << 30;
/// Default maximum `n` for generation (and grids).
pub const DEFAULT_MAX_GENERATE_N: usize = 1024;
/// Default maximum `n` for in-process model scoring.
pub const DEFAULT_MAX_SCORE_N: usize = 10_000;
/// Default image count above which scoring runs as a background job.
pub const DEFAULT_JOB_THRESHOLD: usize = 256;
/// Default number of jobs that may wait in the queue.
pub const DEFAULT_JOB_QUEUE: usize = 8;

/// Which ONNX Runtime execution provider sessions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderChoice {
    /// CUDA when compiled in and usable, else CPU (the provider in use is reported).
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA or fail (needs the `cuda` cargo feature).
    Cuda,
}

/// Every limit the service enforces on client input.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Maximum request body in bytes (uploads stream to disk up to this size).
    #[arg(long, env = "PAGAN_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: u64,
    /// Maximum images in one scoring request.
    #[arg(long, env = "PAGAN_MAX_IMAGES", default_value_t = DEFAULT_MAX_IMAGES)]
    pub max_images: usize,
    /// Maximum pixels (width x height) per uploaded image, checked from the header before decoding.
    #[arg(long, env = "PAGAN_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Maximum entries in an uploaded zip or tar archive.
    #[arg(long, env = "PAGAN_MAX_ARCHIVE_ENTRIES", default_value_t = DEFAULT_MAX_ARCHIVE_ENTRIES)]
    pub max_archive_entries: usize,
    /// Maximum total uncompressed bytes read from one archive.
    #[arg(long, env = "PAGAN_MAX_ARCHIVE_BYTES", default_value_t = DEFAULT_MAX_ARCHIVE_BYTES)]
    pub max_archive_bytes: u64,
    /// Maximum `n` for generation and grids.
    #[arg(long, env = "PAGAN_MAX_GENERATE_N", default_value_t = DEFAULT_MAX_GENERATE_N)]
    pub max_generate_n: usize,
    /// Maximum `n` for scoring a served model in-process.
    #[arg(long, env = "PAGAN_MAX_SCORE_N", default_value_t = DEFAULT_MAX_SCORE_N)]
    pub max_score_n: usize,
    /// Image count above which scoring runs as a background job (202 + /v1/jobs/{id}).
    #[arg(long, env = "PAGAN_JOB_THRESHOLD", default_value_t = DEFAULT_JOB_THRESHOLD)]
    pub job_threshold: usize,
    /// Jobs that may wait in the queue before requests get 429.
    #[arg(long, env = "PAGAN_JOB_QUEUE", default_value_t = DEFAULT_JOB_QUEUE)]
    pub job_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_images: DEFAULT_MAX_IMAGES,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_archive_entries: DEFAULT_MAX_ARCHIVE_ENTRIES,
            max_archive_bytes: DEFAULT_MAX_ARCHIVE_BYTES,
            max_generate_n: DEFAULT_MAX_GENERATE_N,
            max_score_n: DEFAULT_MAX_SCORE_N,
            job_threshold: DEFAULT_JOB_THRESHOLD,
            job_queue: DEFAULT_JOB_QUEUE,
        }
    }
}

/// `pagan-serve` command line (every flag also reads an environment variable).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pagan-serve",
    version,
    about = "PA-GAN service: generated images and FID/KID scoring over HTTP"
)]
pub struct Config {
    /// Folder with exported models (manifest.json + ONNX per subfolder, references/*.npz).
    #[arg(long, default_value = "models", env = "PAGAN_MODELS")]
    pub models: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "PAGAN_BIND")]
    pub bind: SocketAddr,
    /// Execution provider: auto (CUDA if compiled in and usable, else CPU), cpu or cuda.
    #[arg(long, value_enum, default_value_t = ProviderChoice::Auto, env = "PAGAN_PROVIDER")]
    pub provider: ProviderChoice,
    /// Intra-op threads per ONNX Runtime session (0: ONNX Runtime's default).
    #[arg(long, default_value_t = 0, env = "PAGAN_THREADS")]
    pub threads: usize,
    /// HTTP worker threads (0: one per CPU core).
    #[arg(long, default_value_t = 0, env = "PAGAN_WORKERS")]
    pub workers: usize,
    /// ONNX Runtime sessions per model (concurrent runs of one model).
    #[arg(long, default_value_t = 1, env = "PAGAN_SESSIONS")]
    pub sessions: usize,
    /// Images per generator run (large n is split into batches of this size).
    #[arg(long, default_value_t = 64, env = "PAGAN_GENERATE_BATCH")]
    pub generate_batch: usize,
    /// Images per feature-extractor run when scoring.
    #[arg(long, default_value_t = 16, env = "PAGAN_SCORE_BATCH")]
    pub score_batch: usize,
    /// Limits on client input.
    #[command(flatten)]
    pub limits: Limits,
}

impl Config {
    /// Defaults for everything, serving `models` (what tests and embedders start from).
    pub fn with_models(models: impl Into<PathBuf>) -> Self {
        Config {
            models: models.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            provider: ProviderChoice::Auto,
            threads: 0,
            workers: 0,
            sessions: 1,
            generate_batch: 64,
            score_batch: 16,
            limits: Limits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_defaults_agree() {
        let parsed = Config::try_parse_from(["pagan-serve"]).expect("defaults parse");
        let plain = Config::with_models("models");
        assert_eq!(parsed.models, plain.models);
        assert_eq!(parsed.bind, plain.bind);
        assert_eq!(parsed.limits.max_body_bytes, plain.limits.max_body_bytes);
        assert_eq!(parsed.limits.max_images, plain.limits.max_images);
        assert_eq!(parsed.generate_batch, plain.generate_batch);
        let c =
            Config::try_parse_from(["pagan-serve", "--provider", "cpu", "--max-images", "5"]).expect("parse");
        assert_eq!(c.provider, ProviderChoice::Cpu);
        assert_eq!(c.limits.max_images, 5);
        assert!(Config::try_parse_from(["pagan-serve", "--provider", "tpu"]).is_err());
    }
}
