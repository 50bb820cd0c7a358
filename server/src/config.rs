//! The service's settings: where models live, where to listen, which execution provider
//! to use, and every limit the service enforces. Plain types; `pagan-serve`'s command
//! line (the binary's `cli` module) fills them.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

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
/// Default bound of the feature cache, bytes (1 GiB: ~125k images' features).
pub const DEFAULT_FEATURE_CACHE_BYTES: u64 = 1 << 30;
/// Feature cache folder inside the models folder unless configured.
pub const FEATURE_CACHE_DIR: &str = ".feature-cache";
/// Default number of jobs that may wait in the queue.
pub const DEFAULT_JOB_QUEUE: usize = 8;
/// Default seconds an upload may send no body bytes before it is answered 408.
pub const DEFAULT_BODY_IDLE_TIMEOUT_S: u64 = 30;

/// Which ONNX Runtime execution provider sessions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderChoice {
    /// CUDA when compiled in and usable, else CPU (the provider in use is reported).
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA or fail (needs the `cuda` cargo feature).
    Cuda,
}

impl std::str::FromStr for ProviderChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            _ => Err(format!("unknown provider `{s}` (valid: auto, cpu, cuda)")),
        }
    }
}

/// Every limit the service enforces on client input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum request body in bytes (uploads stream to disk up to this size).
    pub max_body_bytes: u64,
    /// Maximum images in one scoring request.
    pub max_images: usize,
    /// Maximum pixels (width x height) per uploaded image, checked from the header before decoding.
    pub max_pixels: u64,
    /// Maximum entries in an uploaded zip or tar archive.
    pub max_archive_entries: usize,
    /// Maximum total uncompressed bytes read from one archive.
    pub max_archive_bytes: u64,
    /// Maximum `n` for generation and grids.
    pub max_generate_n: usize,
    /// Maximum `n` for scoring a served model in-process.
    pub max_score_n: usize,
    /// Image count above which scoring runs as a background job (202 + /v1/jobs/{id}).
    pub job_threshold: usize,
    /// Jobs that may wait in the queue before requests get 429.
    pub job_queue: usize,
    /// How long a request body may send nothing before it is refused with 408 (a client
    /// that stops sending would otherwise hold its upload slot and temp files forever; one
    /// that trickles a byte now and then is not caught by this).
    pub body_idle_timeout: std::time::Duration,
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
            body_idle_timeout: std::time::Duration::from_secs(DEFAULT_BODY_IDLE_TIMEOUT_S),
        }
    }
}

/// The service's settings (the binary fills them from flags and environment variables).
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder with exported models (manifest.json + ONNX per subfolder, references/*.npz).
    pub models: PathBuf,
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Execution provider: auto (CUDA if compiled in and usable, else CPU), cpu or cuda.
    pub provider: ProviderChoice,
    /// Intra-op threads per ONNX Runtime session (0: ONNX Runtime's default).
    pub threads: usize,
    /// HTTP worker threads (0: one per CPU core).
    pub workers: usize,
    /// ONNX Runtime sessions per model (concurrent runs of one model).
    pub sessions: usize,
    /// Images per generator run (large n is split into batches of this size).
    pub generate_batch: usize,
    /// Images per feature-extractor run when scoring.
    pub score_batch: usize,
    /// Inline scoring requests that decode and extract at once (0: one per session).
    pub scoring_concurrency: usize,
    /// Limits on client input.
    pub limits: Limits,
    /// Folder of the feature cache (None: `<models>/.feature-cache`).
    pub feature_cache_dir: Option<PathBuf>,
    /// Bound of the feature cache in bytes (0: no cache).
    pub feature_cache_bytes: u64,
    /// Bearer token every write and compute-heavy route requires (None: no authentication).
    pub token: Option<Secret>,
    /// Serve a non-loopback address without a token (otherwise start-up refuses).
    pub allow_unauthenticated: bool,
}

/// A value that must not reach logs: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself (compare it; never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// Why a configuration must not be served.
#[derive(Debug, thiserror::Error)]
pub enum ExposureError {
    /// A non-loopback address without a token: anyone who can reach it could write.
    #[error(
        "refusing to listen on {0} without a token: every client that can reach it could upload references \
         and run scoring jobs. Set --token (PAGAN_TOKEN) or --token-file, bind 127.0.0.1, or pass \
         --allow-unauthenticated if something in front of the service authenticates"
    )]
    Unauthenticated(SocketAddr),
    /// An empty token would let every request through.
    #[error("the token is empty (check --token, PAGAN_TOKEN or the token file)")]
    EmptyToken,
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
            scoring_concurrency: 0,
            limits: Limits::default(),
            feature_cache_dir: None,
            feature_cache_bytes: DEFAULT_FEATURE_CACHE_BYTES,
            token: None,
            allow_unauthenticated: false,
        }
    }

    /// Refuses a non-loopback address without a token (unless allowed) and an empty token.
    pub fn check_exposure(&self) -> Result<(), ExposureError> {
        match &self.token {
            Some(t) if t.expose().trim().is_empty() => Err(ExposureError::EmptyToken),
            Some(_) => Ok(()),
            None if self.bind.ip().is_loopback() || self.allow_unauthenticated => Ok(()),
            None => Err(ExposureError::Unauthenticated(self.bind)),
        }
    }
}
