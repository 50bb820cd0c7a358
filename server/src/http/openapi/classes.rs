//! The class parameters of the OpenAPI document: `labels` and `class` on every route that
//! generates from a model, and the second KServe V2 input, declared only when a
//! class-conditional model is loaded (every other model refuses them).

use pagan_shared::manifest::ClassesSpec;
use serde_json::{Value, json};

use super::query;
use crate::config::Limits;

const LABELS_DOC: &str = "Class-conditional models only (422 model_not_conditional otherwise): the label of each image, \
    each in 0..K-1 for the model's K classes (GET /v1/models/{name}: classes; 400 bad_labels otherwise). One per image: \
    n defaults to their count, and a given n (or interpolate.steps) must equal it (400 bad_labels). Not with class. \
    Without labels and class, image i of a class-conditional model gets label i mod K.";
const CLASS_DOC: &str = "Class-conditional models only (422 model_not_conditional otherwise): one class for every image, \
    a class name of the model or an integer label 0..K-1 (400 bad_class otherwise). Not with labels.";
const QUERY_CLASS_DOC: &str = "Class-conditional models only (422 model_not_conditional otherwise): one class for every \
    image, a class name of the model, else an integer label 0..K-1 (400 bad_class otherwise). Not with labels.";
const QUERY_LABELS_DOC: &str = "Class-conditional models only (422 model_not_conditional otherwise): the label of each \
    image, comma-separated, each in 0..K-1 for the model's K classes (400 bad_labels otherwise). n defaults to their \
    count; a given n must equal it (400 bad_labels). Not with class. Without labels and class, image i gets label i mod K.";

/// The `labels`/`class` parameters of the generation routes and the second V2 input, with
/// the classes of the loaded class-conditional models (labels up to the largest K; names
/// of every model: each model checks its own, see the descriptions).
pub(super) fn add(doc: &mut Value, l: &Limits, conditional: &[&ClassesSpec]) {
    let max_label = conditional.iter().map(|c| c.names.len()).max().unwrap_or(1) - 1;
    let mut names: Vec<&str> = Vec::new();
    for n in conditional.iter().flat_map(|c| &c.names) {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let label = json!({ "type": "integer", "minimum": 0, "maximum": max_label });
    let class = json!({ "anyOf": [{ "type": "string", "enum": names }, label] });
    let labels =
        |min: usize, max: usize| json!({ "type": "array", "minItems": min, "maxItems": max, "items": label });
    let g = &mut doc["components"]["schemas"]["GenerateRequest"];
    g["properties"]["labels"] = labels(1, l.max_generate_n);
    g["properties"]["labels"]["description"] = json!(LABELS_DOC);
    g["properties"]["class"] = class.clone();
    g["properties"]["class"]["description"] = json!(CLASS_DOC);
    if let Some(all) = g["allOf"].as_array_mut() {
        all.push(json!({ "not": { "required": ["labels", "class"] } }));
        // png is one image: labels, which set n, hold one label.
        all[2]["anyOf"][1]["properties"]["labels"] = json!({ "maxItems": 1 });
    }
    let query_labels = |min: usize, max: usize| {
        json!({ "name": "labels", "in": "query", "required": false, "style": "form", "explode": false,
            "description": QUERY_LABELS_DOC, "schema": labels(min, max) })
    };
    for (path, method, min, max) in [
        ("/v1/models/{name}/grid.png", "get", 1, l.max_generate_n),
        ("/v1/models/{name}/fid", "post", 2, l.max_score_n),
    ] {
        if let Some(params) = doc["paths"][path][method]["parameters"].as_array_mut() {
            params.push(query_labels(min, max));
            params.push(query("class", class.clone(), false, QUERY_CLASS_DOC));
        }
    }
    let input = &mut doc["components"]["schemas"]["V2InferRequest"]["properties"]["inputs"];
    input["maxItems"] = json!(2);
    input["description"] =
        json!("z, and for a class-conditional model also labels (INT64 [N], each in 0..K-1)");
    let props = &mut input["items"]["properties"];
    props["name"]["enum"] = json!(["z", "labels"]);
    props["datatype"]["enum"] = json!(["FP32", "INT64"]);
    props["shape"]["minItems"] = json!(1);
    props["shape"]["description"] =
        json!("z: [N, latent], labels: [N]; N at most this server's --max-generate-n (413 above it)");
}
