//! ONNX Runtime in the trainer: one process-wide environment loaded from the project's
//! `libonnxruntime.so`, CPU sessions from in-memory models, and an f32 run helper. Used to
//! verify every export against the tch forward.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

/// Environment variable that overrides where `libonnxruntime.so` is loaded from.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Errors from loading ONNX Runtime or running a model.
#[derive(Debug, thiserror::Error)]
pub enum OrtRunError {
    /// No library path is configured, or the file is not there.
    #[error(
        "ONNX Runtime library not found{}; run `make setup` (it installs onnxruntime==1.31.1 into .venv \
         and links deps/onnxruntime/), or set {DYLIB_ENV} to a libonnxruntime.so 1.31",
        .0.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default()
    )]
    MissingLibrary(Option<PathBuf>),
    /// The library exists but could not be loaded or initialised.
    #[error("loading ONNX Runtime from {path}: {message}")]
    Load {
        /// Library path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The input does not match its declared shape.
    #[error("input `{name}`: shape {shape:?} needs {expected:?} values, got {got}")]
    InputShape {
        /// Input name.
        name: String,
        /// Declared shape.
        shape: Vec<i64>,
        /// Elements the shape needs (None: a negative dim).
        expected: Option<usize>,
        /// Elements given.
        got: usize,
    },
    /// The model produced no outputs.
    #[error("the model produced no outputs")]
    NoOutput,
    /// Any error reported by ONNX Runtime (session creation, run, extraction).
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
}

/// Where `libonnxruntime.so` is taken from: `$ORT_DYLIB_PATH` if set and non-empty, else
/// the path `make setup` prepared, baked in at build time (see trainer/build.rs).
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

/// Why the environment could not be created (cached: a failed dlopen fails the same way again).
#[derive(Debug, Clone)]
enum EnvFailure {
    Missing(Option<PathBuf>),
    Load(PathBuf, String),
}

/// The process-wide ORT environment, created on first use. ONNX Runtime allows one per
/// process, so everything in the trainer that builds sessions goes through here.
pub fn environment() -> Result<Environment, OrtRunError> {
    static ENV: OnceLock<Result<Environment, EnvFailure>> = OnceLock::new();
    let cached = ENV.get_or_init(|| {
        let path = library_path().ok_or(EnvFailure::Missing(None))?;
        if !path.exists() {
            return Err(EnvFailure::Missing(Some(path)));
        }
        ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| b.with_name("pagan-trainer").build().map_err(|e| e.to_string()))
            .map_err(|message| EnvFailure::Load(path, message))
    });
    match cached {
        Ok(env) => Ok(env.clone()),
        Err(EnvFailure::Missing(path)) => Err(OrtRunError::MissingLibrary(path.clone())),
        Err(EnvFailure::Load(path, message)) => Err(OrtRunError::Load {
            path: path.clone(),
            message: message.clone(),
        }),
    }
}

/// Builds the session in its own function: `ort::Error<SessionBuilder>` is not Send/Sync,
/// so it is converted to a plain `ort::Error` before it can reach an `anyhow` context.
fn build_session(env: &Environment, bytes: &[u8], threads: usize) -> ort::Result<Session> {
    let mut builder = Session::builder(env)?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads)?.with_inter_threads(1)?;
    }
    builder.commit_from_memory(bytes)
}

/// A CPU session for the serialised model `bytes`, with `threads` intra-op threads
/// (0 = ONNX Runtime's default).
pub fn session_from_bytes(bytes: &[u8], threads: usize) -> Result<Session, OrtRunError> {
    let env = environment()?;
    Ok(build_session(&env, bytes, threads)?)
}

/// Runs a single-input model on f32 `data` of `shape`; returns the first output's values
/// (row-major) and shape.
pub fn run_f32(
    session: &mut Session,
    input_name: &str,
    data: &[f32],
    shape: &[i64],
) -> Result<(Vec<f32>, Vec<i64>), OrtRunError> {
    let expected = shape.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    });
    if expected != Some(data.len()) {
        return Err(OrtRunError::InputShape {
            name: input_name.to_owned(),
            shape: shape.to_vec(),
            expected,
            got: data.len(),
        });
    }
    let input = TensorRef::from_array_view((shape.to_vec(), data))?;
    let outputs = session.run(ort::inputs![input_name => input])?;
    let first = outputs.values().next().ok_or(OrtRunError::NoOutput)?;
    let (out_shape, values) = first.try_extract_tensor::<f32>()?;
    Ok((values.to_vec(), out_shape.to_vec()))
}
