//! ONNX Runtime: the process-wide environment (loaded from `libonnxruntime.so` at run
//! time), sessions on the chosen execution provider, and pools of sessions per model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorElementType;
use pagan_shared::onnx_runtime::{self, OrtError};

use crate::config::ProviderChoice;

pub use pagan_shared::onnx_runtime::{DYLIB_ENV, library_path};

/// Errors from loading ONNX Runtime or running a model.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The library is missing or could not be loaded, or a run failed (shared loader).
    #[error(transparent)]
    Loader(#[from] OrtError),
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
    /// Labels missing for a class-conditional model, given to an unconditional one, or not
    /// one per image (callers resolve them first: a fault on our side).
    #[error("{0}")]
    Labels(String),
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

/// The process-wide ORT environment, created on first use (a failed load is cached:
/// it would fail the same way again).
pub fn environment() -> Result<Environment, RuntimeError> {
    Ok(onnx_runtime::environment("pagan-serve")?)
}

/// Rejects a provider choice this build cannot honour, before anything is loaded.
pub fn check_provider_choice(choice: ProviderChoice) -> Result<(), RuntimeError> {
    if choice == ProviderChoice::Cuda && !cfg!(feature = "cuda") {
        return Err(RuntimeError::CudaNotCompiled);
    }
    Ok(())
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
    Ok((onnx_runtime::cpu_session(&env, bytes, threads)?, Provider::Cpu))
}

/// Runs a single-input f32 model; returns the first output's values and shape.
pub fn run_f32(
    session: &mut Session,
    input_name: &str,
    data: &[f32],
    shape: &[i64],
) -> Result<(Vec<f32>, Vec<i64>), RuntimeError> {
    Ok(onnx_runtime::run_f32(session, input_name, data, shape)?)
}

/// Runs a generator on latents `z` of `z_shape` and, for a class-conditional one, int64
/// `labels` (one per row of z) under their input name; returns the first output's values
/// and shape.
pub fn run_generator(
    session: &mut Session,
    z_name: &str,
    z: &[f32],
    z_shape: &[i64],
    labels: Option<(&str, &[i64])>,
) -> Result<(Vec<f32>, Vec<i64>), RuntimeError> {
    Ok(onnx_runtime::run_f32_labelled(
        session, z_name, z, z_shape, labels,
    )?)
}

/// Name and type of each input of a model's graph, as ONNX Runtime reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputInfo {
    /// Input name.
    pub name: String,
    /// Element type of a tensor input (None: not a tensor).
    pub element: Option<TensorElementType>,
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

    /// The inputs of the model's graph.
    pub fn inputs(&self) -> Vec<InputInfo> {
        let session = self.sessions[0].lock().unwrap_or_else(PoisonError::into_inner);
        session
            .inputs()
            .iter()
            .map(|i| InputInfo {
                name: i.name().to_owned(),
                element: i.dtype().tensor_type(),
            })
            .collect()
    }

    /// The graph's custom metadata value under `key`, if it has one.
    pub fn metadata(&self, key: &str) -> Option<String> {
        let session = self.sessions[0].lock().unwrap_or_else(PoisonError::into_inner);
        session.metadata().ok().and_then(|m| m.custom(key))
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
