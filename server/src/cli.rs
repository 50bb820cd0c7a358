//! `pagan-serve`'s command line (binary only): every flag also reads an environment
//! variable; the values fill the library's plain `Config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser};
use pagan_server::config::{self as c, Config, Limits, ProviderChoice};

/// `pagan-serve` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pagan-serve",
    version,
    about = "PA-GAN service: generated images and FID/KID scoring over HTTP",
    long_about = "PA-GAN service: generated images and FID/KID scoring over HTTP.\n\n\
Serves the models `pagan-train export` and `export-inception` wrote, and reference statistics in \
MODELS/references/*.npz. Every flag also reads the environment variable shown. \
Exit status: 0 stopped, 1 could not start (the reason is printed), 2 bad flags."
)]
pub struct Cli {
    /// Folder with exported models (manifest.json + ONNX per subfolder, references/*.npz); must exist.
    #[arg(long, default_value = "models", env = "PAGAN_MODELS")]
    pub models: PathBuf,
    /// Address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, default_value = c::DEFAULT_BIND, env = "PAGAN_BIND")]
    pub bind: SocketAddr,
    /// Execution provider: auto (CUDA if compiled in and usable, else CPU), cpu or cuda.
    #[arg(long, default_value = "auto", env = "PAGAN_PROVIDER", value_parser = ["auto", "cpu", "cuda"])]
    pub provider: String,
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
    /// Bearer token required by every write and compute-heavy route (clients send
    /// `Authorization: Bearer TOKEN`); health, readiness, metrics and listings stay open.
    #[arg(
        long,
        env = "PAGAN_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the token (its first line; keeps it out of the process list).
    #[arg(long, env = "PAGAN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Listen on a non-loopback address without a token (only behind something that authenticates).
    /// The environment variable takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = "PAGAN_ALLOW_UNAUTHENTICATED", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_unauthenticated: bool,
    /// Scoring requests that decode and run the extractor at once (0: one per session,
    /// --sessions); more only add memory, since each session runs one batch at a time.
    #[arg(long, default_value_t = 0, env = "PAGAN_SCORING_CONCURRENCY")]
    pub scoring_concurrency: usize,
    /// Folder of the feature cache (default: <models>/.feature-cache).
    #[arg(long, env = "PAGAN_FEATURE_CACHE_DIR")]
    pub feature_cache_dir: Option<PathBuf>,
    /// Bound of the feature cache in bytes (8 KiB per cached image; 0 turns the cache off). A
    /// repeated upload with the same pixels, extractor and resize convention reuses its features.
    #[arg(long, env = "PAGAN_FEATURE_CACHE_BYTES", default_value_t = c::DEFAULT_FEATURE_CACHE_BYTES)]
    pub feature_cache_bytes: u64,
    /// Limits on client input.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Every limit the service enforces on client input.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Maximum request body in bytes (uploads stream to disk up to this size).
    #[arg(long, env = "PAGAN_MAX_BODY_BYTES", default_value_t = c::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: u64,
    /// Maximum images in one scoring request.
    #[arg(long, env = "PAGAN_MAX_IMAGES", default_value_t = c::DEFAULT_MAX_IMAGES)]
    pub max_images: usize,
    /// Maximum pixels (width x height) per uploaded image, checked from the header before decoding.
    #[arg(long, env = "PAGAN_MAX_PIXELS", default_value_t = c::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Maximum entries in an uploaded zip or tar archive.
    #[arg(long, env = "PAGAN_MAX_ARCHIVE_ENTRIES", default_value_t = c::DEFAULT_MAX_ARCHIVE_ENTRIES)]
    pub max_archive_entries: usize,
    /// Maximum total uncompressed bytes read from one archive.
    #[arg(long, env = "PAGAN_MAX_ARCHIVE_BYTES", default_value_t = c::DEFAULT_MAX_ARCHIVE_BYTES)]
    pub max_archive_bytes: u64,
    /// Maximum `n` for generation and grids.
    #[arg(long, env = "PAGAN_MAX_GENERATE_N", default_value_t = c::DEFAULT_MAX_GENERATE_N,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_generate_n: usize,
    /// Maximum `n` for scoring a served model in-process.
    #[arg(long, env = "PAGAN_MAX_SCORE_N", default_value_t = c::DEFAULT_MAX_SCORE_N,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..))]
    pub max_score_n: usize,
    /// Image count above which scoring runs as a background job (202 + /v1/jobs/{id}).
    #[arg(long, env = "PAGAN_JOB_THRESHOLD", default_value_t = c::DEFAULT_JOB_THRESHOLD)]
    pub job_threshold: usize,
    /// Jobs that may wait in the queue before requests get 429.
    #[arg(long, env = "PAGAN_JOB_QUEUE", default_value_t = c::DEFAULT_JOB_QUEUE)]
    pub job_queue: usize,
    /// Seconds a request body may send no bytes before the request is answered 408.
    #[arg(long, env = "PAGAN_BODY_IDLE_TIMEOUT_S", default_value_t = c::DEFAULT_BODY_IDLE_TIMEOUT_S,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub body_idle_timeout_s: u64,
}

impl Cli {
    /// The service configuration these flags describe.
    pub fn config(self) -> Result<Config, String> {
        let token = match (self.token, &self.token_file) {
            (Some(t), _) => Some(t),
            (None, Some(path)) => Some(read_token(path)?),
            (None, None) => None,
        };
        let l = self.limits;
        Ok(Config {
            models: self.models,
            bind: self.bind,
            provider: self.provider.parse::<ProviderChoice>()?,
            threads: self.threads,
            workers: self.workers,
            sessions: self.sessions,
            generate_batch: self.generate_batch,
            score_batch: self.score_batch,
            scoring_concurrency: self.scoring_concurrency,
            feature_cache_dir: self.feature_cache_dir,
            feature_cache_bytes: self.feature_cache_bytes,
            limits: Limits {
                max_body_bytes: l.max_body_bytes,
                max_images: l.max_images,
                max_pixels: l.max_pixels,
                max_archive_entries: l.max_archive_entries,
                max_archive_bytes: l.max_archive_bytes,
                max_generate_n: l.max_generate_n,
                max_score_n: l.max_score_n,
                job_threshold: l.job_threshold,
                job_queue: l.job_queue,
                body_idle_timeout: std::time::Duration::from_secs(l.body_idle_timeout_s),
            },
            token: token.map(Into::into),
            allow_unauthenticated: self.allow_unauthenticated,
        })
    }
}

/// The first line of a token file, trimmed.
fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("token file {}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_library_defaults_agree() {
        let parsed = Cli::try_parse_from(["pagan-serve"])
            .expect("defaults parse")
            .config()
            .expect("config");
        let plain = Config::with_models("models");
        assert_eq!(parsed.models, plain.models);
        assert_eq!(parsed.bind, plain.bind);
        assert_eq!(parsed.provider, plain.provider);
        assert_eq!(parsed.limits.max_body_bytes, plain.limits.max_body_bytes);
        assert_eq!(parsed.limits.max_images, plain.limits.max_images);
        assert_eq!(parsed.limits.job_queue, plain.limits.job_queue);
        assert_eq!(parsed.limits.body_idle_timeout, plain.limits.body_idle_timeout);
        assert_eq!(parsed.generate_batch, plain.generate_batch);
        assert_eq!(parsed.score_batch, plain.score_batch);
        let c = Cli::try_parse_from(["pagan-serve", "--provider", "cpu", "--max-images", "5"])
            .expect("parse")
            .config()
            .expect("config");
        assert_eq!(c.provider, ProviderChoice::Cpu);
        assert_eq!(c.limits.max_images, 5);
        assert!(Cli::try_parse_from(["pagan-serve", "--provider", "tpu"]).is_err());
    }
}
