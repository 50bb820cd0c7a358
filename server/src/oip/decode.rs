//! Inference requests: the JSON part (and, with the binary tensor extension, the raw
//! tensors after it, in the order of the inputs that declare `binary_data_size`) checked
//! against the model's inputs and decoded into latents and labels.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use super::{DATATYPE, INPUT, Inference, LABELS, LABELS_DATATYPE, ModelInputs, OUTPUT, OipError};

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

fn flag(params: Option<&Map<String, Value>>, key: &str) -> Result<bool, OipError> {
    match params.and_then(|p| p.get(key)) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(OipError::Json(format!(
            "parameter `{key}` must be a boolean, got {other}"
        ))),
    }
}

/// An element type a tensor can hold: how JSON numbers and little-endian bytes read as it.
trait Element: Sized {
    /// The protocol's name of the type.
    const DATATYPE: &'static str;
    /// Bytes per value in binary data.
    const BYTES: usize;
    /// The value of a JSON number, if this type holds it.
    fn from_json(x: &Number) -> Option<Self>;
    /// The value of `BYTES` little-endian bytes.
    fn from_le(b: &[u8]) -> Self;
}

impl Element for f32 {
    const DATATYPE: &'static str = DATATYPE;
    const BYTES: usize = 4;
    fn from_json(x: &Number) -> Option<Self> {
        x.as_f64().map(|f| f as f32)
    }
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for i64 {
    const DATATYPE: &'static str = LABELS_DATATYPE;
    const BYTES: usize = 8;
    fn from_json(x: &Number) -> Option<Self> {
        x.as_i64()
    }
    fn from_le(b: &[u8]) -> Self {
        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

/// Appends the numbers of a (possibly nested) JSON array, row-major.
fn flatten<T: Element>(v: &Value, out: &mut Vec<T>) -> Result<(), OipError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten(x, out)),
        Value::Number(x) => {
            let value = T::from_json(x)
                .ok_or_else(|| OipError::Input(format!("`{x}` is not a number {} holds", T::DATATYPE)))?;
            out.push(value);
            Ok(())
        }
        other => Err(OipError::Input(format!(
            "tensor data must be numbers, got {other}"
        ))),
    }
}

/// The binary data of the request still unread, and whether the request declared it.
struct Binary<'a> {
    rest: &'a [u8],
    declared: bool,
}

/// The `count` values of `input` (its datatype and shape already checked): its JSON `data`,
/// or its `binary_data_size` bytes taken from the front of `binary`.
fn values<T: Element>(input: &InputTensor, count: usize, binary: &mut Binary) -> Result<Vec<T>, OipError> {
    let name = &input.name;
    let binary_size = match input.parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            OipError::Json(format!(
                "`binary_data_size` must be a non-negative integer, got {v}"
            ))
        })? as usize),
    };
    let values = match (binary_size, &input.data) {
        (Some(_), Some(_)) => {
            return Err(OipError::Input(format!(
                "input `{name}` has both `data` and `binary_data_size`"
            )));
        }
        (None, None) => return Err(OipError::Input(format!("input `{name}` has no `data`"))),
        (None, Some(data)) => {
            let mut out = Vec::with_capacity(count);
            flatten(data, &mut out)?;
            out
        }
        (Some(size), None) => {
            if !binary.declared {
                return Err(OipError::Json(
                    "binary tensor data needs the Inference-Header-Content-Length header".into(),
                ));
            }
            let want = count * T::BYTES;
            if size != want || binary.rest.len() < size {
                return Err(OipError::Input(format!(
                    "input `{name}` {:?} {} is {want} bytes; binary_data_size is {size} and the body holds {} \
                     bytes after the JSON header (and earlier inputs)",
                    input.shape,
                    T::DATATYPE,
                    binary.rest.len()
                )));
            }
            let (mine, rest) = binary.rest.split_at(size);
            binary.rest = rest;
            mine.chunks_exact(T::BYTES).map(T::from_le).collect()
        }
    };
    if values.len() != count {
        return Err(OipError::Input(format!(
            "input `{name}` has shape {:?} ({count} values) but {} values",
            input.shape,
            values.len()
        )));
    }
    Ok(values)
}

/// The datatype check every input gets.
fn check_datatype(input: &InputTensor, want: &str) -> Result<(), OipError> {
    if input.datatype != want {
        return Err(OipError::Input(format!(
            "input `{}` is {want}, not {}",
            input.name, input.datatype
        )));
    }
    Ok(())
}

/// Latents `[n, latent]` of input `z`, finite.
fn latents(
    input: &InputTensor,
    latent: usize,
    max_n: usize,
    binary: &mut Binary,
) -> Result<Vec<f32>, OipError> {
    check_datatype(input, DATATYPE)?;
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
    let z: Vec<f32> = values(input, n * latent, binary)?;
    if let Some(bad) = z.iter().find(|x| !x.is_finite()) {
        return Err(OipError::Input(format!(
            "input `{INPUT}` holds {bad}: latents must be finite"
        )));
    }
    Ok(z)
}

/// Labels `[m]` of input `labels`, each in `0..k`.
fn labels(input: &InputTensor, k: usize, max_n: usize, binary: &mut Binary) -> Result<Vec<i64>, OipError> {
    check_datatype(input, LABELS_DATATYPE)?;
    let m = match input.shape.as_slice() {
        [m] if *m >= 1 => *m as usize,
        _ => {
            return Err(OipError::Input(format!(
                "input `{LABELS}` has shape [N] with N >= 1, got {:?}",
                input.shape
            )));
        }
    };
    if m > max_n {
        return Err(OipError::TooMany { n: m, max: max_n });
    }
    let labels: Vec<i64> = values(input, m, binary)?;
    if let Some(bad) = labels.iter().find(|l| !usize::try_from(**l).is_ok_and(|l| l < k)) {
        return Err(OipError::Input(format!(
            "input `{LABELS}` holds {bad}: labels are 0..={}",
            k - 1
        )));
    }
    Ok(labels)
}

/// Decodes `body` (its first `header_len` bytes are JSON when the binary extension is
/// used, else all of it) into latents, and labels for a class-conditional model.
pub fn decode(
    body: &[u8],
    header_len: Option<usize>,
    model: &ModelInputs,
    max_n: usize,
) -> Result<Inference, OipError> {
    let json_len = header_len.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(OipError::Json(format!(
            "Inference-Header-Content-Length is {json_len} but the body has {} bytes",
            body.len()
        )));
    }
    let (head, rest) = body.split_at(json_len);
    let value: Value = serde_json::from_slice(head).map_err(|e| OipError::Json(e.to_string()))?;
    // serde reads a struct from a JSON array too; the protocol's request is an object.
    if !value.is_object() {
        return Err(OipError::Json("the request must be a JSON object".into()));
    }
    let req: Request = serde_json::from_value(value).map_err(|e| OipError::Json(e.to_string()))?;
    let names = match model.classes {
        None => format!("exactly one input `{INPUT}`"),
        Some(_) => format!("two inputs, `{INPUT}` and `{LABELS}`"),
    };
    let wanted = 1 + usize::from(model.classes.is_some());
    if req.inputs.len() != wanted {
        return Err(OipError::Input(format!(
            "this generator takes {names}, got {}",
            req.inputs.len()
        )));
    }
    let mut binary = Binary {
        rest,
        declared: header_len.is_some(),
    };
    let (mut z, mut y) = (None, None);
    for input in &req.inputs {
        match (input.name.as_str(), model.classes) {
            (INPUT, _) if z.is_none() => z = Some(latents(input, model.latent, max_n, &mut binary)?),
            (LABELS, Some(k)) if y.is_none() => y = Some(labels(input, k, max_n, &mut binary)?),
            (name, _) => {
                return Err(OipError::Input(format!(
                    "unknown or repeated input `{name}` (this generator takes {names})"
                )));
            }
        }
    }
    let z = z.ok_or_else(|| OipError::Input(format!("input `{INPUT}` is missing")))?;
    let n = z.len() / model.latent.max(1);
    if let Some(y) = &y
        && y.len() != n
    {
        return Err(OipError::Input(format!(
            "input `{LABELS}` has {} labels for {n} latents: give one label per latent",
            y.len()
        )));
    }
    if !binary.rest.is_empty() {
        return Err(OipError::Input(format!(
            "{} bytes follow the JSON header that no input declares (binary_data_size)",
            binary.rest.len()
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
        labels: y,
        n,
        binary_output,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PLAIN: fn(usize) -> ModelInputs = |latent| ModelInputs {
        latent,
        classes: None,
    };

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
        let inf = decode(&j, None, &PLAIN(3), 8).expect("json");
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
        let inf = decode(&b, Some(head.len()), &PLAIN(3), 8).expect("binary");
        assert_eq!(inf.z, z);
        assert!(inf.binary_output);
    }

    #[test]
    fn malformed_requests_are_refused_with_the_reason() {
        let ok = json!({"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [0.0, 1.0]});
        let cases = [
            (json!({"inputs": []}), "exactly one input"),
            (
                json!({"inputs": [ok.clone(), {"name": "labels", "shape": [1], "datatype": "INT64", "data": [0]}]}),
                "exactly one input",
            ),
            (
                json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [0, 1]}]}),
                "unknown or repeated input",
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
            let e = decode(&body(req.clone()), None, &PLAIN(2), 8).expect_err("refused");
            assert!(e.to_string().contains(needle), "{req}: {e}");
        }
        let head = body(
            json!({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32",
            "parameters": {"binary_data_size": 8}}]}),
        );
        let mut short = head.clone();
        short.extend([0u8; 4]);
        let e = decode(&short, Some(head.len()), &PLAIN(2), 8).expect_err("short binary");
        assert!(e.to_string().contains("bytes"), "{e}");
        assert!(
            decode(&head, Some(head.len() + 1), &PLAIN(2), 8).is_err(),
            "header past the body"
        );
    }

    #[test]
    fn a_conditional_model_takes_labels_in_json_or_binary() {
        let cond = ModelInputs {
            latent: 2,
            classes: Some(3),
        };
        let z = json!({"name": "z", "shape": [2, 2], "datatype": "FP32", "data": [0.5, -0.5, 0.25, 1.0]});
        let y = json!({"name": "labels", "shape": [2], "datatype": "INT64", "data": [2, 0]});
        let inf = decode(&body(json!({"inputs": [y.clone(), z.clone()]})), None, &cond, 8).expect("json");
        assert_eq!((inf.n, inf.labels), (2, Some(vec![2, 0])));
        // Binary: the parts follow the JSON in the order of the inputs.
        let head = body(json!({"inputs": [
            {"name": "labels", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
            {"name": "z", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}));
        let mut b = head.clone();
        b.extend([1i64, 2].iter().flat_map(|x| x.to_le_bytes()));
        b.extend([0.5f32, -0.5, 0.25, 1.0].iter().flat_map(|x| x.to_le_bytes()));
        let inf = decode(&b, Some(head.len()), &cond, 8).expect("binary");
        assert_eq!(inf.labels, Some(vec![1, 2]));
        assert_eq!(inf.z, [0.5, -0.5, 0.25, 1.0]);
        let labels = |data: Value, shape: Value| json!({"inputs": [z.clone(), {"name": "labels", "shape": shape, "datatype": "INT64", "data": data}]});
        let cases = [
            (json!({"inputs": [z.clone()]}), "two inputs"),
            (labels(json!([0, 3]), json!([2])), "labels are 0..=2"),
            (labels(json!([0, -1]), json!([2])), "labels are 0..=2"),
            (labels(json!([0]), json!([1])), "1 labels for 2 latents"),
            (labels(json!([0, 1.5]), json!([2])), "INT64"),
            (labels(json!([0, 1]), json!([1, 2])), "shape [N]"),
            (json!({"inputs": [z.clone(), z.clone()]}), "repeated"),
            (
                json!({"inputs": [z.clone(), {"name": "labels", "shape": [2], "datatype": "FP32", "data": [0, 1]}]}),
                "INT64",
            ),
        ];
        for (req, needle) in cases {
            let e = decode(&body(req.clone()), None, &cond, 8).expect_err("refused");
            assert!(e.to_string().contains(needle), "{req}: {e}");
        }
    }
}
