//! JSON request bodies: an object and nothing else. serde reads a struct from a JSON array
//! too (`[1, 7, "png"]`), which the API does not promise; the OpenAPI document says object.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// `body` as a `T`, refusing anything but a JSON object with the reason.
pub fn object<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    if !body.is_object() {
        let kind = match body {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        return Err(ApiError::bad(
            "bad_json",
            format!("the body must be a JSON object, got {kind}"),
        ));
    }
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad("bad_json", format!("Json deserialize error: {e}")))
}
