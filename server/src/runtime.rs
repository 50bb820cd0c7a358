//! ONNX Runtime: the process-wide environment (loaded from `libonnxruntime.so` at run
//! time), sessions on the chosen execution provider, and pools of sessions per model.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::ProviderChoice;

/// Environment variable that overrides where `libonnxruntime.so` is loaded from.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Errors from loading ONNX Runtime or running a model.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No library path is configured, or the file is not there.
    #[error(
        "ONNX Runtime library not found{}; run `make setup` or set {DYLIB_ENV} to a libonnxruntime.so 1.31",
        .0.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default()
    )]
    MissingLibrary(Option<PathBuf>),
    /// The library exists but could not be loaded.
    #[error("loading ONNX Runtime from {path}: {message}")]
    Load {
        /// Library path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `--provider cuda` in a build without the `cuda` feature.
    #[error("--provider cuda needs a build with the `cuda` feature (cargo build --features cuda)")]
    CudaNotCompiled,
    /// The model's output is not what its manifest promises.
    #[error("model output has shape {got:?}, expected {expected:?}")]
    OutputShape {
        /// Shape the manifest implies.
        expected: Vec<i64>,
        /// Shape the session returned.
        got: Vec<i64>,
    },
    /// Anything ONNX Runtime reports.
    #[error("ONNX Runtime: {0}")]
    Ort(String),
}

impl From<ort::Error> for RuntimeError {
    fn from(e: ort::Error) -> Self {
        RuntimeError::Ort(e.to_string())
    }
}

/// The execution provider a session actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA provider.
    Cuda,
}

impl Provider {
    /// Lower-case name for JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

/// Where `libonnxruntime.so` is taken from: `$ORT_DYLIB_PATH` if set, else the path
/// `make setup` prepared, baked in at build time (server/build.rs).
pub fn library_path() -> Option<PathBuf> {
    std::env::var_os(DYLIB_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            option_env!("PAGAN_ORT_DYLIB_DEFAULT")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
}

#[derive(Debug, Clone)]
enum EnvFailure {
    Missing(Option<PathBuf>),
    Load(PathBuf, String),
}

/// The process-wide ORT environment, created on first use (ONNX Runtime allows one per
/// process; a failed load is cached because it would fail the same way again).
pub fn environment() -> Result<Environment, RuntimeError> {
    static ENV: OnceLock<Result<Environment, EnvFailure>> = OnceLock::new();
    let cached = ENV.get_or_init(|| {
        let path = library_path().ok_or(EnvFailure::Missing(None))?;
        if !path.exists() {
            return Err(EnvFailure::Missing(Some(path)));
        }
        ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| b.with_name("pagan-serve").build().map_err(|e| e.to_string()))
            .map_err(|message| EnvFailure::Load(path, message))
    });
    match cached {
        Ok(env) => Ok(env.clone()),
        Err(EnvFailure::Missing(p)) => Err(RuntimeError::MissingLibrary(p.clone())),
        Err(EnvFailure::Load(path, message)) => Err(RuntimeError::Load {
            path: path.clone(),
            message: message.clone(),
        }),
    }
}

/// Rejects a provider choice this build cannot honour, before anything is loaded.
pub fn check_provider_choice(choice: ProviderChoice) -> Result<(), RuntimeError> {
    if choice == ProviderChoice::Cuda && !cfg!(feature = "cuda") {
        return Err(RuntimeError::CudaNotCompiled);
    }
    Ok(())
}

/// Builds in its own function: `ort::Error<SessionBuilder>` is not Send/Sync.
fn build_cpu(env: &Environment, bytes: &[u8], threads: usize) -> ort::Result<Session> {
    let mut builder = Session::builder(env)?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads)?.with_inter_threads(1)?;
    }
    builder.commit_from_memory(bytes)
}

#[cfg(feature = "cuda")]
fn build_cuda(env: &Environment, bytes: &[u8], threads: usize) -> ort::Result<Session> {
    let mut builder = Session::builder(env)?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads)?.with_inter_threads(1)?;
    }
    // error_on_failure: ORT would otherwise fall back to CPU silently.
    let cuda = ort::ep::CUDA::default().build().error_on_failure();
    builder = builder.with_execution_providers([cuda])?;
    builder.commit_from_memory(bytes)
}

/// One session for the model `bytes` on the provider `choice` asks for; returns the
/// provider actually in use. `auto` falls back to CPU with a warning, never silently.
pub fn build_session(
    bytes: &[u8],
    choice: ProviderChoice,
    threads: usize,
    what: &str,
) -> Result<(Session, Provider), RuntimeError> {
    check_provider_choice(choice)?;
    let env = environment()?;
    #[cfg(feature = "cuda")]
    if choice != ProviderChoice::Cpu {
        match build_cuda(&env, bytes, threads) {
            Ok(s) => return Ok((s, Provider::Cuda)),
            Err(e) if choice == ProviderChoice::Auto => {
                tracing::warn!(model = what, error = %e, "CUDA provider unavailable; using CPU");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let _ = what;
    Ok((build_cpu(&env, bytes, threads)?, Provider::Cpu))
}

/// Runs a single-input f32 model; returns the first output's values and shape.
pub fn run_f32(
    session: &mut Session,
    input_name: &str,
    data: &[f32],
    shape: &[i64],
) -> Result<(Vec<f32>, Vec<i64>), RuntimeError> {
    let input = TensorRef::from_array_view((shape.to_vec(), data))?;
    let outputs = session.run(ort::inputs![input_name => input])?;
    let first = outputs
        .values()
        .next()
        .ok_or_else(|| RuntimeError::Ort("the model produced no outputs".into()))?;
    let (out_shape, values) = first.try_extract_tensor::<f32>()?;
    Ok((values.to_vec(), out_shape.to_vec()))
}

/// A few sessions of one model; a run takes whichever is free (Session::run needs `&mut`).
pub struct SessionPool {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl SessionPool {
    /// `count` sessions (at least one) of the model `bytes`; all on the same provider.
    pub fn new(
        bytes: &[u8],
        count: usize,
        choice: ProviderChoice,
        threads: usize,
        what: &str,
    ) -> Result<(Self, Provider), RuntimeError> {
        let (first, provider) = build_session(bytes, choice, threads, what)?;
        let mut sessions = vec![Mutex::new(first)];
        // Later sessions must land on the provider the first one got.
        let pinned = match provider {
            Provider::Cpu => ProviderChoice::Cpu,
            Provider::Cuda => ProviderChoice::Cuda,
        };
        for _ in 1..count.max(1) {
            sessions.push(Mutex::new(build_session(bytes, pinned, threads, what)?.0));
        }
        Ok((
            SessionPool {
                sessions,
                next: AtomicUsize::new(0),
            },
            provider,
        ))
    }

    /// A free session, or (all busy) the next one in turn, waiting for it.
    pub fn get(&self) -> MutexGuard<'_, Session> {
        for s in &self.sessions {
            if let Ok(guard) = s.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        // A panic while holding a session leaves it usable: ORT state is not Rust state.
        self.sessions[i].lock().unwrap_or_else(PoisonError::into_inner)
    }
}
