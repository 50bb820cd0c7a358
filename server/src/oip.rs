//! The Open Inference Protocol (KServe V2, REST) for served generators: model metadata,
//! and inference requests and responses in JSON or with the binary tensor extension
//! (a JSON header of `Inference-Header-Content-Length` bytes followed by raw tensors).
//! A generator has one input `z` (FP32 `[N, latent]`) and one output `images` (FP32
//! `[N, C, H, W]` in [-1, 1]). This module decodes and checks; `http` moves the bytes.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::models::Generator;

/// The generator input's name.
pub const INPUT: &str = "z";
/// The generator output's name.
pub const OUTPUT: &str = "images";
/// The only datatype either tensor has.
pub const DATATYPE: &str = "FP32";
/// The response header (and request header) giving the JSON part's length in bytes.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Why an inference request cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum OipError {
    /// The JSON part does not parse or is not an inference request.
    #[error("inference request: {0}")]
    Json(String),
    /// The tensors do not match the model's input.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// A checked inference request.
#[derive(Debug)]
pub struct Inference {
    /// The client's request id, echoed back.
    pub id: Option<String>,
    /// Latents, `n * latent` values, row-major.
    pub z: Vec<f32>,
    /// Number of latents.
    pub n: usize,
    /// Whether the client wants the output as binary data.
    pub binary_output: bool,
}

fn flag(params: Option<&Map<String, Value>>, key: &str) -> Result<bool, OipError> {
    match params.and_then(|p| p.get(key)) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(OipError::Json(format!(
            "parameter `{key}` must be a boolean, got {other}"
        ))),
    }
}

/// Appends the numbers of a (possibly nested) JSON array, row-major.
fn flatten(v: &Value, out: &mut Vec<f32>) -> Result<(), OipError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten(x, out)),
        Value::Number(x) => {
            let f = x
                .as_f64()
                .ok_or_else(|| OipError::Input(format!("`{x}` is not a number FP32 holds")))?;
            out.push(f as f32);
            Ok(())
        }
        other => Err(OipError::Input(format!(
            "tensor data must be numbers, got {other}"
        ))),
    }
}

/// Decodes `body` (its first `header_len` bytes are JSON when the binary extension is
/// used, else all of it) into latents for a generator with `latent` inputs per image.
pub fn decode(
    body: &[u8],
    header_len: Option<usize>,
    latent: usize,
    max_n: usize,
) -> Result<Inference, OipError> {
    let json_len = header_len.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(OipError::Json(format!(
            "Inference-Header-Content-Length is {json_len} but the body has {} bytes",
            body.len()
        )));
    }
    let (head, mut binary) = body.split_at(json_len);
    let value: Value = serde_json::from_slice(head).map_err(|e| OipError::Json(e.to_string()))?;
    // serde reads a struct from a JSON array too; the protocol's request is an object.
    if !value.is_object() {
        return Err(OipError::Json("the request must be a JSON object".into()));
    }
    let req: Request = serde_json::from_value(value).map_err(|e| OipError::Json(e.to_string()))?;
    let [input] = req.inputs.as_slice() else {
        return Err(OipError::Input(format!(
            "a generator takes exactly one input `{INPUT}`, got {}",
            req.inputs.len()
        )));
    };
    if input.name != INPUT {
        return Err(OipError::Input(format!(
            "unknown input `{}` (the input is `{INPUT}`)",
            input.name
        )));
    }
    if input.datatype != DATATYPE {
        return Err(OipError::Input(format!(
            "input `{INPUT}` is {DATATYPE}, not {}",
            input.datatype
        )));
    }
    let n = match input.shape.as_slice() {
        [n, l] if *n >= 1 && *l == latent as i64 => *n as usize,
        _ => {
            return Err(OipError::Input(format!(
                "input `{INPUT}` has shape [N, {latent}] with N >= 1, got {:?}",
                input.shape
            )));
        }
    };
    if n > max_n {
        return Err(OipError::TooMany { n, max: max_n });
    }
    let want = n * latent;
    let binary_size = match input.parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            OipError::Json(format!(
                "`binary_data_size` must be a non-negative integer, got {v}"
            ))
        })? as usize),
    };
    let z = match (binary_size, &input.data) {
        (Some(_), Some(_)) => {
            return Err(OipError::Input(
                "input `z` has both `data` and `binary_data_size`".into(),
            ));
        }
        (None, None) => return Err(OipError::Input("input `z` has no `data`".into())),
        (None, Some(data)) => {
            let mut z = Vec::with_capacity(want);
            flatten(data, &mut z)?;
            z
        }
        (Some(size), None) => {
            if header_len.is_none() {
                return Err(OipError::Json(
                    "binary tensor data needs the Inference-Header-Content-Length header".into(),
                ));
            }
            if size != want * 4 || binary.len() != size {
                return Err(OipError::Input(format!(
                    "input `z` [{n}, {latent}] FP32 is {} bytes; binary_data_size is {size} and the body \
                     holds {} bytes after the JSON header",
                    want * 4,
                    binary.len()
                )));
            }
            let mut z = Vec::with_capacity(want);
            while let [a, b, c, d, rest @ ..] = binary {
                z.push(f32::from_le_bytes([*a, *b, *c, *d]));
                binary = rest;
            }
            z
        }
    };
    if binary_size.is_none() && !binary.is_empty() {
        return Err(OipError::Input(format!(
            "{} bytes follow the JSON header but no input declares binary_data_size",
            binary.len()
        )));
    }
    if z.len() != want {
        return Err(OipError::Input(format!(
            "input `z` has shape [{n}, {latent}] ({want} values) but {} values",
            z.len()
        )));
    }
    if let Some(bad) = z.iter().find(|x| !x.is_finite()) {
        return Err(OipError::Input(format!(
            "input `z` holds {bad}: latents must be finite"
        )));
    }
    let mut binary_output = flag(req.parameters.as_ref(), "binary_data_output")?;
    for o in req.outputs.iter().flatten() {
        if o.name != OUTPUT {
            return Err(OipError::Input(format!(
                "unknown output `{}` (the output is `{OUTPUT}`)",
                o.name
            )));
        }
        binary_output |= flag(o.parameters.as_ref(), "binary_data")?;
    }
    Ok(Inference {
        id: req.id,
        z,
        n,
        binary_output,
    })
}

/// The model metadata document (`GET /v2/models/{name}`).
pub fn metadata(g: &Generator) -> Value {
    let [c, h, w] = g.image_shape();
    json!({
        "name": g.name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{ "name": INPUT, "datatype": DATATYPE, "shape": [-1, g.manifest.latent.size] }],
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).expect("json")
    }

    #[test]
    fn json_and_binary_requests_decode_to_the_same_latents() {
        let z = [0.25f32, -1.0, 0.5, 1e-3, 7.0, -0.125];
        let j = body(
            json!({"id": "a", "inputs": [{"name": "z", "shape": [2, 3], "datatype": "FP32",
            "data": [[0.25, -1.0, 0.5], [1e-3, 7.0, -0.125]]}]}),
        );
        let inf = decode(&j, None, 3, 8).expect("json");
        assert_eq!(
            (inf.n, inf.id.as_deref(), inf.binary_output),
            (2, Some("a"), false)
        );
        assert_eq!(inf.z, z);
        let head = body(
            json!({"inputs": [{"name": "z", "shape": [2, 3], "datatype": "FP32",
            "parameters": {"binary_data_size": 24}}], "outputs": [{"name": "images", "parameters": {"binary_data": true}}]}),
        );
        let mut b = head.clone();
        b.extend(z.iter().flat_map(|x| x.to_le_bytes()));
        let inf = decode(&b, Some(head.len()), 3, 8).expect("binary");
        assert_eq!(inf.z, z);
        assert!(inf.binary_output);
    }

    #[test]
    fn malformed_requests_are_refused_with_the_reason() {
        let ok = json!({"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [0.0, 1.0]});
        let cases = [
            (json!({"inputs": []}), "exactly one input"),
            (
                json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [0, 1]}]}),
                "unknown input",
            ),
            (
                json!({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "INT8", "data": [0, 1]}]}),
                "FP32",
            ),
            (
                json!({"inputs": [{"name": "z", "shape": [1, 3], "datatype": "FP32", "data": [0, 1, 2]}]}),
                "shape",
            ),
            (
                json!({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [0]}]}),
                "values",
            ),
            (
                json!({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "data": ["a", 1]}]}),
                "numbers",
            ),
            (
                json!({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [0, 1e39]}]}),
                "finite",
            ),
            (
                json!({"inputs": [{"name": "z", "shape": [9, 2], "datatype": "FP32", "data": [0]}]}),
                "limit",
            ),
            (
                json!({"inputs": [ok], "outputs": [{"name": "logits"}]}),
                "unknown output",
            ),
            (json!({"inputs": [ok], "extra": 1}), "unknown field"),
            (json!([ok]), "must be a JSON object"),
            (
                json!([[{"name": "z"}], null, null, null]),
                "must be a JSON object",
            ),
        ];
        for (req, needle) in cases {
            let e = decode(&body(req.clone()), None, 2, 8).expect_err("refused");
            assert!(e.to_string().contains(needle), "{req}: {e}");
        }
        let head = body(
            json!({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32",
            "parameters": {"binary_data_size": 8}}]}),
        );
        let mut short = head.clone();
        short.extend([0u8; 4]);
        let e = decode(&short, Some(head.len()), 2, 8).expect_err("short binary");
        assert!(e.to_string().contains("bytes"), "{e}");
        assert!(
            decode(&head, Some(head.len() + 1), 2, 8).is_err(),
            "header past the body"
        );
    }
}
