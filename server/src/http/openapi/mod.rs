//! The hand-written OpenAPI 3 document served at `/openapi.json`. It declares every
//! constraint the handlers enforce, with this server's limits filled in; a test holds its
//! paths to exactly the routes registered in `http::register`, and schemathesis holds the
//! server to it.

use serde_json::{Value, json};

mod classes;

use pagan_shared::manifest::ClassesSpec;

use crate::config::Config;
use crate::http::routes::{fid, models};

/// Names of models and references: 1-64 letters, digits, `-`, `_` or `.`, not starting with `.`.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$";

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn v2_error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/V2Error" } } } })
}

fn name_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what,
        "schema": { "type": "string", "pattern": NAME_PATTERN } })
}

fn query(name: &str, schema: Value, required: bool, what: &str) -> Value {
    json!({ "name": name, "in": "query", "required": required, "description": what, "schema": schema })
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn seed_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 0 })
}

fn upload_body(what: &str) -> Value {
    let binary = json!({ "schema": { "type": "string", "format": "binary" } });
    json!({
        "description": what,
        "required": true,
        "content": {
            "multipart/form-data": { "schema": { "type": "object", "properties": {
                "file": { "type": "array", "items": { "type": "string", "format": "binary" } } } } },
            "application/octet-stream": binary,
            "application/zip": binary,
            "application/x-tar": binary,
            "image/png": binary,
            "image/jpeg": binary
        }
    })
}

const UNAUTHORIZED: &str = "Missing or wrong bearer token (only when the server has --token)";
/// The description of a 408: an upload that stopped sending.
const BODY_STALLED: &str = "The request body sent nothing for --body-idle-timeout-s seconds";
const NOT_CONDITIONAL: &str =
    "labels or class for a model that is not class-conditional (model_not_conditional)";

const PRDC_DOC: &str = "Also precision/recall (k = 3) and density/coverage (k = 5) on Inception pool3 features (the reference must store features; torch-fidelity's use VGG16 features, so its numbers differ by design)";
const BOOTSTRAP_DOC: &str = "Resamples of a 95% percentile bootstrap interval of FID (the scored set resampled, the reference fixed); 0 = none";
const FID_INF_DOC: &str =
    "Also FID-infinity: FID of subsets of several sizes, extrapolated linearly in 1/N (Chong & Forsyth 2020)";

fn bootstrap_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": fid::MAX_BOOTSTRAP, "default": 0, "not": { "enum": [1] } })
}

fn scoring_responses() -> Value {
    json!({
        "200": json_ok("Scores", schema_ref("Score")),
        "202": { "description": "Accepted as a background job; poll the Location",
            "headers": { "Location": { "schema": { "type": "string" } } },
            "content": { "application/json": { "schema": schema_ref("Accepted") } } },
        "400": error_response("Bad query, corrupt or unsupported input, unsafe archive paths; for a model: bad_labels, bad_class"),
        "401": error_response(UNAUTHORIZED),
        "404": error_response("Unknown model or reference"),
        "408": error_response(BODY_STALLED),
        "413": error_response("Over a limit (body, images, pixels, archive entries or bytes, n)"),
        "415": error_response("Not a PNG, JPEG, zip, tar or .npz"),
        "422": error_response("Empty set, fewer than 2 images, reference without features for KID or PRDC, unusable statistics; \
    labels or class for a model that is not class-conditional (model_not_conditional)"),
        "429": { "description": "Job queue full; retry after Retry-After seconds",
            "headers": { "Retry-After": { "schema": { "type": "integer" } } },
            "content": { "application/json": { "schema": schema_ref("Error") } } },
        "503": error_response("No feature extractor loaded")
    })
}

/// The OpenAPI 3.0 document for a server running with `config` whose class-conditional
/// models have the classes `conditional` (none: the class parameters are left out, as
/// every model refuses them).
pub fn document(config: &Config, conditional: &[&ClassesSpec]) -> Value {
    let l = &config.limits;
    let object = json!({ "type": "object" });
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "pagan-serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "PA-GAN service: generated images and FID/KID scoring, and the KServe V2 (Open Inference \
    Protocol) REST API for the generators. /v1 errors are {\"error\": {\"code\", \"message\"}}; /v2 errors are \
    {\"error\": \"message\"}. A known path with a method it does not serve answers 405 with an Allow header. With \
    --token, writes and compute-heavy routes need Authorization: Bearer <token>."
        },
        "paths": {
            "/": { "get": { "summary": "The web page: models, latent walks, scoring, status", "responses": {
                "200": { "description": "HTML", "content": { "text/html": { "schema": { "type": "string" } } } } } } },
            "/assets/app.js": { "get": { "summary": "The page's script", "responses": {
                "200": { "description": "JavaScript", "content": { "text/javascript": { "schema": { "type": "string" } } } } } } },
            "/assets/app.css": { "get": { "summary": "The page's style", "responses": {
                "200": { "description": "CSS", "content": { "text/css": { "schema": { "type": "string" } } } } } } },
            "/docs/api.md": { "get": { "summary": "The API documentation (server/API.md)", "responses": {
                "200": { "description": "Markdown", "content": { "text/markdown": { "schema": { "type": "string" } } } } } } },
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": json_ok("Up", object.clone()) } } },
            "/readyz": { "get": { "summary": "Readiness with per-model detail", "responses": {
                "200": json_ok("Something can be served", object.clone()),
                "503": json_ok("Nothing loaded", object.clone()) } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": {
                "200": { "description": "Prometheus text format", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": json_ok("OpenAPI 3", object.clone()) } } },
            "/v1/models": { "get": { "summary": "Loaded models (and ones that failed to load)", "responses": {
                "200": json_ok("Models; each model's `classes` lists a class-conditional model's class names in label order (null: unconditional)",
                    json!({ "type": "object", "required": ["models", "failed"] })) } } },
            "/v1/models/{name}": { "get": { "summary": "One model with its manifest",
                "parameters": [name_param("name", "Model name")],
                "responses": { "200": json_ok("Model", json!({ "type": "object", "required": ["name", "manifest"] })),
                    "404": error_response("Unknown model") } } },
            "/v1/models/{name}/generate": { "post": { "summary": "Generate images",
                "parameters": [name_param("name", "Model name")],
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("GenerateRequest") } } },
                "responses": {
                    "200": { "description": "png/grid: image/png; zip: application/zip; npy: float32 [n,C,H,W] .npy",
                        "content": { "image/png": {}, "application/zip": {}, "application/octet-stream": {} } },
                    "400": error_response("Not a JSON object, unknown fields, n = 0, png with n > 1; bad_labels (labels and class, \
    a label outside the model's 0..K-1, labels not one per image), bad_class (a class the model does not have)"),
                    "401": error_response(UNAUTHORIZED),
                    "404": error_response("Unknown model"),
                    "413": error_response("n over --max-generate-n, or a body over 64 KiB"),
                    "415": error_response("The body is not sent as application/json"),
                    "422": error_response(NOT_CONDITIONAL) } } },
            "/v1/models/{name}/grid.png": { "get": { "summary": "A PNG grid for browsers",
                "parameters": [name_param("name", "Model name"),
                    query("n", json!({ "type": "integer", "minimum": 1, "maximum": l.max_generate_n, "default": models::DEFAULT_GRID_N.min(l.max_generate_n) }),
                        false, "Images"),
                    query("seed", seed_schema(), false, "Latent seed")],
                "responses": { "200": { "description": "PNG", "content": { "image/png": {} } },
                    "400": error_response("Bad query, bad_labels, bad_class"), "401": error_response(UNAUTHORIZED),
                    "404": error_response("Unknown model"),
                    "413": error_response("n over --max-generate-n"),
                    "422": error_response(NOT_CONDITIONAL) } } },
            "/v1/models/{name}/fid": { "post": { "summary": "Generate n images in-process and score them",
                "parameters": [name_param("name", "Model name"),
                    query("reference", json!({ "type": "string", "pattern": NAME_PATTERN }), true, "Reference statistics"),
                    query("n", json!({ "type": "integer", "minimum": 2, "maximum": l.max_score_n, "default": fid::DEFAULT_SCORE_N.min(l.max_score_n) }),
                        false, "Images to generate; above the job threshold the request becomes a job"),
                    query("seed", seed_schema(), false, "Latent seed"),
                    query("kid", json!({ "type": "boolean", "default": false }), false, "Also compute KID (the reference must store features)"),
                    query("prdc", json!({ "type": "boolean", "default": false }), false, PRDC_DOC),
                    query("bootstrap", bootstrap_schema(), false, BOOTSTRAP_DOC),
                    query("fid_infinity", json!({ "type": "boolean", "default": false }), false, FID_INF_DOC),
                    query("async", json!({ "type": "boolean", "default": false }), false, "Always run as a job")],
                "responses": scoring_responses() } },
            "/v1/references": { "get": { "summary": "Reference statistics", "responses": {
                "200": json_ok("References", json!({ "type": "object", "required": ["references"],
                    "properties": { "references": { "type": "array", "items": schema_ref("ReferenceInfo") } } })) } } },
            "/v1/references/{name}": { "post": {
                "summary": "Create a reference from statistics (ours, pytorch-fid's, clean-fid's mu/sigma or feats) or from an image set",
                "parameters": [name_param("name", "Reference name"),
                    query("resize_mode", json!({ "type": "string", "enum": ["asymmetric", "half_pixel", "clean"] }), false,
                        "Images: the convention to compute with (default asymmetric). Statistics: the one they were computed with, recorded when the file records none"),
                    query("async", json!({ "type": "boolean", "default": false }), false, "Images: always build as a job")],
                "requestBody": upload_body("One .npz of statistics or feature rows; or images: PNG/JPEG files, a zip, a tar, or an .npz of uint8 images (images or arr_0)"),
                "responses": { "201": json_ok("Stored", schema_ref("ReferenceInfo")),
                    "202": { "description": "An image set above the job threshold: accepted as a job; poll the Location",
                        "headers": { "Location": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema_ref("Accepted") } } },
                    "400": error_response("Bad name or query, not an .npz, corrupt images or archives"), "401": error_response(UNAUTHORIZED),
                    "409": error_response("Name taken (of two concurrent uploads of one name, one wins)"),
                    "408": error_response(BODY_STALLED),
                    "413": error_response("Over a limit (body, images, pixels, archive entries or bytes)"),
                    "415": error_response("Not a PNG, JPEG, zip, tar or .npz"),
                    "422": error_response("NaN, wrong shapes, asymmetric sigma, wrong dimension, a resize mode conflicting with the file's, an .npz that holds no reference, no files, fewer than 2 images"),
                    "429": { "description": "Job queue full; retry after Retry-After seconds",
                        "headers": { "Retry-After": { "schema": { "type": "integer" } } },
                        "content": { "application/json": { "schema": schema_ref("Error") } } },
                    "503": error_response("Images sent and no feature extractor loaded") } } },
            "/v1/fid": { "post": { "summary": "Score uploaded images against a reference",
                "parameters": [query("reference", json!({ "type": "string", "pattern": NAME_PATTERN }), true, "Reference statistics"),
                    query("kid", json!({ "type": "boolean", "default": false }), false, "Also compute KID"),
                    query("prdc", json!({ "type": "boolean", "default": false }), false, PRDC_DOC),
                    query("bootstrap", bootstrap_schema(), false, BOOTSTRAP_DOC),
                    query("fid_infinity", json!({ "type": "boolean", "default": false }), false, FID_INF_DOC),
                    query("async", json!({ "type": "boolean", "default": false }), false, "Always run as a job")],
                "requestBody": upload_body("PNG/JPEG files, a zip, a tar, or an .npz of uint8 images [N,H,W] or [N,H,W,C]"),
                "responses": scoring_responses() } },
            "/v1/jobs/{id}": { "get": { "summary": "Progress and result of a scoring job",
                "parameters": [{ "name": "id", "in": "path", "required": true, "description": "Job id",
                    "schema": { "type": "string" } }],
                "responses": { "200": json_ok("Job", schema_ref("Job")), "401": error_response(UNAUTHORIZED),
                    "404": error_response("Unknown job") } } },
            "/v2": { "get": { "summary": "KServe V2 server metadata", "responses": {
                "200": json_ok("Server metadata", json!({ "type": "object", "required": ["name", "version", "extensions"] })) } } },
            "/v2/health/live": { "get": { "summary": "KServe V2 liveness", "responses": {
                "200": json_ok("Live", json!({ "type": "object", "required": ["live"] })) } } },
            "/v2/health/ready": { "get": { "summary": "KServe V2 readiness: a generator is loaded", "responses": {
                "200": json_ok("Ready", json!({ "type": "object", "required": ["ready"] })),
                "503": json_ok("Not ready", json!({ "type": "object", "required": ["ready"] })) } } },
            "/v2/models/{name}": { "get": { "summary": "KServe V2 model metadata (inputs and outputs)",
                "parameters": [name_param("name", "Model name")],
                "responses": { "200": json_ok("Model metadata", schema_ref("V2ModelMetadata")), "404": v2_error("Unknown model") } } },
            "/v2/models/{name}/ready": { "get": { "summary": "KServe V2 model readiness",
                "parameters": [name_param("name", "Model name")],
                "responses": { "200": json_ok("Ready", json!({ "type": "object", "required": ["name", "ready"] })),
                    "404": v2_error("Unknown model") } } },
            "/v2/models/{name}/infer": { "post": { "summary": "KServe V2 inference: latents z FP32 [N, latent] (and a class-conditional model's labels INT64 [N]) to images FP32 [N, C, H, W]",
                "parameters": [name_param("name", "Model name")],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": schema_ref("V2InferRequest") },
                    "application/octet-stream": { "schema": { "type": "string", "format": "binary",
                        "description": "Binary tensor extension: the JSON request (Inference-Header-Content-Length bytes), then raw little-endian FP32 tensors" } } } },
                "responses": {
                    "200": { "description": "JSON outputs, or (binary_data) the JSON part (Inference-Header-Content-Length bytes) followed by raw FP32",
                        "content": { "application/json": { "schema": schema_ref("V2InferResponse") }, "application/octet-stream": {} } },
                    "400": v2_error("Malformed request: names, datatype, shape vs data, non-finite values; labels missing, out of 0..K-1 or not one per latent (class-conditional models), labels for an unconditional model"),
                    "401": v2_error(UNAUTHORIZED),
                    "404": v2_error("Unknown model"),
                    "408": v2_error(BODY_STALLED),
                    "413": v2_error("N over --max-generate-n, or body too large") } } }
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object",
                "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
            "V2Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
            "GenerateRequest": { "type": "object", "additionalProperties": false,
                "description": "format png returns one image: n must be 1 with png (the default format). interpolate (a latent walk from seed `from`'s latent to seed `to`'s, `steps` images, endpoints included) replaces n and seed.",
                "properties": {
                    "n": { "type": "integer", "minimum": 1, "maximum": l.max_generate_n, "default": 1 },
                    "seed": seed_schema(),
                    "interpolate": { "type": "object", "additionalProperties": false, "required": ["from", "to", "steps"],
                        "properties": { "from": seed_schema(), "to": seed_schema(),
                            "steps": { "type": "integer", "minimum": 2, "maximum": l.max_generate_n } } },
                    "format": { "type": "string", "enum": ["png", "grid", "zip", "npy"], "default": "png" } },
                "allOf": [
                    { "not": { "required": ["interpolate", "n"] } },
                    { "not": { "required": ["interpolate", "seed"] } },
                    { "anyOf": [
                        { "required": ["format"], "properties": { "format": { "enum": ["grid", "zip", "npy"] } } },
                        { "not": { "required": ["interpolate"] }, "properties": { "n": { "maximum": 1 }, "format": { "enum": ["png"] } } } ] } ] },
            "Score": { "type": "object",
                "required": ["fid", "kid", "kid_std", "prdc", "fid_ci", "fid_infinity", "n", "reference_n", "reference",
                    "resize_mode", "provider", "seconds", "cached", "warnings", "provenance"],
                "properties": {
                "fid": { "type": "number" }, "kid": { "type": "number", "nullable": true },
                "kid_std": { "type": "number", "nullable": true },
                "prdc": { "nullable": true, "allOf": [schema_ref("Prdc")] },
                "fid_ci": { "nullable": true, "allOf": [schema_ref("FidInterval")] },
                "fid_infinity": { "nullable": true, "allOf": [schema_ref("FidInfinity")] },
                "n": { "type": "integer" }, "reference_n": { "type": "integer", "nullable": true },
                "reference": { "type": "string" }, "resize_mode": { "type": "string", "enum": ["asymmetric", "half_pixel", "clean"] },
                "provider": { "type": "string" }, "seconds": { "type": "number" },
                "cached": { "type": "boolean", "description": "Features reused from an earlier upload of the same pixels" },
                "warnings": { "type": "array", "items": { "type": "string" } },
                "provenance": schema_ref("Provenance") } },
            "Prdc": { "type": "object", "required": ["precision", "recall", "density", "coverage", "k_precision_recall", "k_density_coverage", "n_real", "n_fake"],
                "properties": { "precision": { "type": "number" }, "recall": { "type": "number" }, "density": { "type": "number" },
                    "coverage": { "type": "number" }, "k_precision_recall": { "type": "integer" }, "k_density_coverage": { "type": "integer" },
                    "n_real": { "type": "integer" }, "n_fake": { "type": "integer" } } },
            "FidInterval": { "type": "object", "required": ["low", "high", "fid", "level", "std", "mean", "resamples", "method", "seed"],
                "description": "Bootstrap spread of FID re-centred on the full-set FID (resamples repeat images, so their own FIDs sit higher: `mean`)",
                "properties": { "low": { "type": "number" }, "high": { "type": "number" }, "fid": { "type": "number" }, "level": { "type": "number" },
                    "std": { "type": "number" }, "mean": { "type": "number" }, "resamples": { "type": "integer" },
                    "method": { "type": "string" }, "seed": { "type": "integer" } } },
            "FidInfinity": { "type": "object", "required": ["fid_infinity", "slope", "r_squared", "points", "seed"],
                "properties": { "fid_infinity": { "type": "number" }, "slope": { "type": "number" }, "r_squared": { "type": "number" },
                    "seed": { "type": "integer" },
                    "points": { "type": "array", "items": { "type": "object", "required": ["n", "fid"],
                        "properties": { "n": { "type": "integer" }, "fid": { "type": "number" } } } } } },
            "Provenance": { "type": "object",
                "required": ["weights", "extractor", "resize_mode", "resize_mode_source", "sqrt_method", "n", "reference_n",
                    "reference_sha256", "feature_dtype", "comparable_with"],
                "properties": { "weights": { "type": "string" },
                    "extractor": { "type": "object", "required": ["implementation", "weights_sha256", "graph_sha256"],
                        "properties": { "implementation": { "type": "string" },
                            "weights_sha256": { "type": "string", "nullable": true }, "graph_sha256": { "type": "string", "nullable": true } } },
                    "resize_mode": { "type": "string", "enum": ["asymmetric", "half_pixel", "clean"] },
                    "resize_mode_source": { "type": "string", "enum": ["reference", "requested", "default"] },
                    "sqrt_method": { "type": "string" }, "n": { "type": "integer" },
                    "reference_n": { "type": "integer", "nullable": true }, "reference_sha256": { "type": "string", "nullable": true },
                    "feature_dtype": { "type": "string" },
                    "comparable_with": { "type": "array", "items": { "type": "string" } } } },
            "Accepted": { "type": "object", "required": ["id", "status", "href", "total"], "properties": {
                "id": { "type": "string" }, "status": { "type": "string" },
                "href": { "type": "string" }, "total": { "type": "integer" } } },
            "Job": { "type": "object", "required": ["id", "status", "done", "total"], "properties": {
                "id": { "type": "string" }, "status": { "type": "string", "enum": ["queued", "running", "done", "failed"] },
                "done": { "type": "integer" }, "total": { "type": "integer" }, "age_seconds": { "type": "number" },
                "result": { "nullable": true, "description": "A Score, or the ReferenceInfo of a reference built from images",
                    "oneOf": [schema_ref("Score"), schema_ref("ReferenceInfo")] },
                "error": { "type": "object", "nullable": true } } },
            "ReferenceInfo": { "type": "object", "required": ["name", "dim"], "properties": {
                "name": { "type": "string" }, "dim": { "type": "integer" },
                "n": { "type": "integer", "nullable": true }, "resize_mode": { "type": "string", "nullable": true },
                "sha256": { "type": "string" },
                "feature_rows": { "type": "integer", "nullable": true } } },
            "V2Tensor": { "type": "object", "required": ["name", "datatype", "shape"], "properties": {
                "name": { "type": "string" }, "datatype": { "type": "string" },
                "shape": { "type": "array", "items": { "type": "integer" } } } },
            "V2ModelMetadata": { "type": "object", "required": ["name", "platform", "inputs", "outputs"], "properties": {
                "name": { "type": "string" }, "versions": { "type": "array", "items": { "type": "string" } },
                "platform": { "type": "string" },
                "inputs": { "type": "array", "items": schema_ref("V2Tensor") },
                "outputs": { "type": "array", "items": schema_ref("V2Tensor") } } },
            "V2InferRequest": { "type": "object", "additionalProperties": false, "required": ["inputs"], "properties": {
                "id": { "type": "string" },
                "parameters": { "type": "object", "properties": { "binary_data_output": { "type": "boolean" } } },
                "inputs": { "type": "array", "minItems": 1, "maxItems": 1, "items": {
                    "type": "object", "additionalProperties": false, "required": ["name", "shape", "datatype"], "properties": {
                        "name": { "type": "string", "enum": ["z"] },
                        "shape": { "type": "array", "minItems": 2, "maxItems": 2, "items": { "type": "integer", "minimum": 1 },
                            "description": "[N, latent]; N at most this server's --max-generate-n (413 above it)" },
                        "datatype": { "type": "string", "enum": ["FP32"] },
                        "parameters": { "type": "object", "properties": { "binary_data_size": { "type": "integer", "minimum": 0 } } },
                        "data": { "type": "array", "description": "N x latent finite numbers, flat or nested row-major" } } } },
                "outputs": { "type": "array", "items": { "type": "object", "additionalProperties": false, "required": ["name"],
                    "properties": { "name": { "type": "string", "enum": ["images"] },
                        "parameters": { "type": "object", "properties": { "binary_data": { "type": "boolean" } } } } } } } },
            "V2InferResponse": { "type": "object", "required": ["model_name", "outputs"], "properties": {
                "model_name": { "type": "string" }, "model_version": { "type": "string" }, "id": { "type": "string" },
                "outputs": { "type": "array", "items": schema_ref("V2Tensor") } } }
        } }
    });
    if !conditional.is_empty() {
        classes::add(&mut doc, l, conditional);
    }
    if config.token.is_some() {
        doc["components"]["securitySchemes"] = json!({ "bearer": { "type": "http", "scheme": "bearer" } });
    }
    doc
}
