//! ONNX Runtime for both binaries: where `libonnxruntime.so` comes from, the one
//! process-wide environment (ORT allows one per process), CPU sessions from in-memory
//! models, and a single-input f32 run.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

/// Environment variable that overrides where `libonnxruntime.so` is loaded from.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// Errors from loading ONNX Runtime or running a model.
#[derive(Debug, thiserror::Error)]
pub enum OrtError {
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
    /// Anything ONNX Runtime reports (session creation, run, extraction).
    #[error("ONNX Runtime: {0}")]
    Ort(String),
}

impl From<ort::Error> for OrtError {
    fn from(e: ort::Error) -> Self {
        OrtError::Ort(e.to_string())
    }
}

/// Where `libonnxruntime.so` is taken from: `$ORT_DYLIB_PATH` if set and non-empty, else
/// the path `make setup` prepared, baked in at build time (shared/build.rs).
pub fn library_path() -> Option<PathBuf> {
    crate::install_paths::configured_path(DYLIB_ENV, option_env!("PAGAN_ORT_DYLIB_DEFAULT"))
}

/// Why the environment could not be created (cached: a failed dlopen fails the same way again).
#[derive(Debug, Clone)]
enum EnvFailure {
    Missing(Option<PathBuf>),
    Load(PathBuf, String),
}

/// The process-wide ORT environment, created on first use under the name `name` (later
/// callers get the same one).
pub fn environment(name: &str) -> Result<Environment, OrtError> {
    static ENV: OnceLock<Result<Environment, EnvFailure>> = OnceLock::new();
    let cached = ENV.get_or_init(|| {
        let path = library_path().ok_or(EnvFailure::Missing(None))?;
        if !path.exists() {
            return Err(EnvFailure::Missing(Some(path)));
        }
        ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| b.with_name(name).build().map_err(|e| e.to_string()))
            .map_err(|message| EnvFailure::Load(path, message))
    });
    match cached {
        Ok(env) => Ok(env.clone()),
        Err(EnvFailure::Missing(path)) => Err(OrtError::MissingLibrary(path.clone())),
        Err(EnvFailure::Load(path, message)) => Err(OrtError::Load {
            path: path.clone(),
            message: message.clone(),
        }),
    }
}

/// A CPU session for the serialised model `bytes` with `threads` intra-op threads
/// (0 = ONNX Runtime's default). Its own function because `ort::Error<SessionBuilder>` is
/// not Send/Sync: it becomes a plain `ort::Error` here.
pub fn cpu_session(env: &Environment, bytes: &[u8], threads: usize) -> ort::Result<Session> {
    let mut builder = Session::builder(env)?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads)?.with_inter_threads(1)?;
    }
    builder.commit_from_memory(bytes)
}

/// Runs a single-input model on f32 `data` of `shape`; returns the first output's values
/// (row-major) and shape.
pub fn run_f32(
    session: &mut Session,
    input_name: &str,
    data: &[f32],
    shape: &[i64],
) -> Result<(Vec<f32>, Vec<i64>), OrtError> {
    run_f32_labelled(session, input_name, data, shape, None)
}

/// [`run_f32`] for a model with a second input of int64 labels [N] (`(name, labels)`),
/// such as a class-conditional generator; `None` runs a single-input model.
pub fn run_f32_labelled(
    session: &mut Session,
    input_name: &str,
    data: &[f32],
    shape: &[i64],
    labels: Option<(&str, &[i64])>,
) -> Result<(Vec<f32>, Vec<i64>), OrtError> {
    let expected = shape.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    });
    if expected != Some(data.len()) {
        return Err(OrtError::InputShape {
            name: input_name.to_owned(),
            shape: shape.to_vec(),
            expected,
            got: data.len(),
        });
    }
    let input = TensorRef::from_array_view((shape.to_vec(), data))?;
    let outputs = match labels {
        None => session.run(ort::inputs![input_name => input])?,
        Some((name, y)) => {
            let y = TensorRef::from_array_view((vec![y.len() as i64], y))?;
            session.run(ort::inputs![input_name => input, name => y])?
        }
    };
    let first = outputs.values().next().ok_or(OrtError::NoOutput)?;
    let (out_shape, values) = first.try_extract_tensor::<f32>()?;
    Ok((values.to_vec(), out_shape.to_vec()))
}
