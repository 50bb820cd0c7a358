//! The Open Inference Protocol (KServe V2, REST) for served generators: model metadata,
//! and inference requests and responses in JSON or with the binary tensor extension
//! (a JSON header of `Inference-Header-Content-Length` bytes followed by raw tensors).
//! A generator has the input `z` (FP32 `[N, latent]`), a class-conditional one also
//! `labels` (INT64 `[N]`, each in `0..K`), and one output `images` (FP32 `[N, C, H, W]`
//! in [-1, 1]). This module decodes and checks (`decode`); `http` moves the bytes.

mod decode;

use pagan_shared::manifest::LABELS_INPUT;
use serde_json::{Value, json};

use crate::models::Generator;

pub use decode::decode;

/// The generator input's name.
pub const INPUT: &str = "z";
/// The class-conditional generator's second input: one label per latent.
pub const LABELS: &str = LABELS_INPUT;
/// The generator output's name.
pub const OUTPUT: &str = "images";
/// The datatype of `z` and `images`.
pub const DATATYPE: &str = "FP32";
/// The datatype of `labels`.
pub const LABELS_DATATYPE: &str = "INT64";
/// The response header (and request header) giving the JSON part's length in bytes.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Why an inference request cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum OipError {
    /// The JSON part does not parse or is not an inference request.
    #[error("inference request: {0}")]
    Json(String),
    /// The tensors do not match the model's inputs.
    #[error("{0}")]
    Input(String),
    /// More images than the server generates at once.
    #[error("{n} latents exceed the limit of {max} (--max-generate-n)")]
    TooMany {
        /// Latents asked for.
        n: usize,
        /// The limit.
        max: usize,
    },
}

/// What a request's inputs are checked against: the model's latent size and, for a
/// class-conditional model, its number of classes.
#[derive(Debug, Clone, Copy)]
pub struct ModelInputs {
    /// Latent size.
    pub latent: usize,
    /// Number of classes (None: unconditional, no `labels` input).
    pub classes: Option<usize>,
}

impl ModelInputs {
    /// The inputs of generator `g`.
    pub fn of(g: &Generator) -> Self {
        Self {
            latent: g.manifest.latent.size,
            classes: g.manifest.classes.as_ref().map(|c| c.names.len()),
        }
    }
}

/// A checked inference request.
#[derive(Debug)]
pub struct Inference {
    /// The client's request id, echoed back.
    pub id: Option<String>,
    /// Latents, `n * latent` values, row-major.
    pub z: Vec<f32>,
    /// A class-conditional model's labels, `n` of them, each in `0..K` (None otherwise).
    pub labels: Option<Vec<i64>>,
    /// Number of latents.
    pub n: usize,
    /// Whether the client wants the output as binary data.
    pub binary_output: bool,
}

/// The model metadata document (`GET /v2/models/{name}`).
pub fn metadata(g: &Generator) -> Value {
    let [c, h, w] = g.image_shape();
    let mut inputs =
        vec![json!({ "name": INPUT, "datatype": DATATYPE, "shape": [-1, g.manifest.latent.size] })];
    if g.manifest.classes.is_some() {
        inputs.push(json!({ "name": LABELS, "datatype": LABELS_DATATYPE, "shape": [-1] }));
    }
    json!({
        "name": g.name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": inputs,
        "outputs": [{ "name": OUTPUT, "datatype": DATATYPE, "shape": [-1, c, h, w] }],
    })
}

/// An encoded inference response: the JSON part, and the raw output when asked for binary.
pub struct Encoded {
    /// The JSON document.
    pub json: Vec<u8>,
    /// Raw little-endian FP32 output to append after the JSON (binary extension).
    pub binary: Option<Vec<u8>>,
}

/// Encodes `images` (`[n, C, H, W]`) as the response to `inf` from model `g`.
pub fn encode(g: &Generator, inf: &Inference, images: &[f32]) -> Result<Encoded, serde_json::Error> {
    let [c, h, w] = g.image_shape();
    let mut output = json!({ "name": OUTPUT, "datatype": DATATYPE, "shape": [inf.n, c, h, w] });
    let binary = if inf.binary_output {
        let bytes: Vec<u8> = images.iter().flat_map(|x| x.to_le_bytes()).collect();
        output["parameters"] = json!({ "binary_data_size": bytes.len() });
        Some(bytes)
    } else {
        output["data"] = json!(images);
        None
    };
    let mut doc = json!({ "model_name": g.name, "model_version": "1", "outputs": [output] });
    if let Some(id) = &inf.id {
        doc["id"] = json!(id);
    }
    Ok(Encoded {
        json: serde_json::to_vec(&doc)?,
        binary,
    })
}
