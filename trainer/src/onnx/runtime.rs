//! ONNX Runtime in the trainer (checking every export against the tch forward, the ONNX
//! feature extractor): the loader shared with the server, under the trainer's name.

use ort::environment::Environment;
use ort::session::Session;
use pagan_shared::onnx_runtime;

pub use pagan_shared::onnx_runtime::{
    DYLIB_ENV, OrtError as OrtRunError, library_path, run_f32, run_f32_labelled,
};

/// The process-wide ORT environment, created on first use.
pub fn environment() -> Result<Environment, OrtRunError> {
    onnx_runtime::environment("pagan-trainer")
}

/// A CPU session for the serialised model `bytes`, with `threads` intra-op threads
/// (0 = ONNX Runtime's default).
pub fn session_from_bytes(bytes: &[u8], threads: usize) -> Result<Session, OrtRunError> {
    let env = environment()?;
    Ok(onnx_runtime::cpu_session(&env, bytes, threads)?)
}
