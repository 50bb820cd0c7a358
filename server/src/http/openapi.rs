//! The hand-written OpenAPI 3 document served at `/openapi.json`. A test holds its paths
//! to exactly the routes registered in `http::register`.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn name_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what, "schema": { "type": "string" } })
}

fn query(name: &str, ty: &str, required: bool, what: &str) -> Value {
    json!({ "name": name, "in": "query", "required": required, "description": what, "schema": { "type": ty } })
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn upload_body(what: &str) -> Value {
    json!({
        "description": what,
        "required": true,
        "content": {
            "multipart/form-data": { "schema": { "type": "object", "properties": {
                "file": { "type": "array", "items": { "type": "string", "format": "binary" } } } } },
            "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
            "application/zip": { "schema": { "type": "string", "format": "binary" } },
            "application/x-tar": { "schema": { "type": "string", "format": "binary" } },
            "image/png": { "schema": { "type": "string", "format": "binary" } },
            "image/jpeg": { "schema": { "type": "string", "format": "binary" } }
        }
    })
}

fn scoring_responses() -> Value {
    json!({
        "200": json_ok("Scores", json!({ "$ref": "#/components/schemas/Score" })),
        "202": json_ok("Accepted as a background job", json!({ "$ref": "#/components/schemas/Accepted" })),
        "400": error_response("Corrupt or unsupported input, unsafe archive paths"),
        "404": error_response("Unknown model or reference"),
        "413": error_response("Over a limit (body, images, pixels, archive entries or bytes, n)"),
        "415": error_response("Not a PNG, JPEG, zip, tar or .npz"),
        "422": error_response("Empty set, fewer than 2 images, reference without features for KID"),
        "429": error_response("Job queue full (see Retry-After)"),
        "503": error_response("No feature extractor loaded")
    })
}

/// The OpenAPI 3.0 document.
pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "pagan-serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "PA-GAN service: generated images and FID/KID scoring. Errors are {\"error\": {\"code\", \"message\"}}."
        },
        "paths": {
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": json_ok("Up", json!({ "type": "object" })) } } },
            "/readyz": { "get": { "summary": "Readiness with per-model detail", "responses": {
                "200": json_ok("Something can be served", json!({ "type": "object" })),
                "503": json_ok("Nothing loaded", json!({ "type": "object" })) } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": {
                "200": { "description": "Prometheus text format", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": json_ok("OpenAPI 3", json!({ "type": "object" })) } } },
            "/v1/models": { "get": { "summary": "Loaded models (and ones that failed to load)", "responses": {
                "200": json_ok("Models", json!({ "type": "object" })) } } },
            "/v1/models/{name}": { "get": { "summary": "One model with its manifest",
                "parameters": [name_param("name", "Model name")],
                "responses": { "200": json_ok("Model", json!({ "type": "object" })), "404": error_response("Unknown model") } } },
            "/v1/models/{name}/generate": { "post": { "summary": "Generate images",
                "parameters": [name_param("name", "Model name")],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GenerateRequest" } } } },
                "responses": {
                    "200": { "description": "png/grid: image/png; zip: application/zip; npy: float32 [n,C,H,W] .npy",
                        "content": { "image/png": {}, "application/zip": {}, "application/octet-stream": {} } },
                    "400": error_response("Bad JSON, n = 0, png with n > 1"),
                    "404": error_response("Unknown model"),
                    "413": error_response("n over --max-generate-n") } } },
            "/v1/models/{name}/grid.png": { "get": { "summary": "A PNG grid for browsers",
                "parameters": [name_param("name", "Model name"),
                    query("n", "integer", false, "Images (default 64)"),
                    query("seed", "integer", false, "Latent seed (default 0)")],
                "responses": { "200": { "description": "PNG", "content": { "image/png": {} } },
                    "400": error_response("Bad query"), "404": error_response("Unknown model"),
                    "413": error_response("n over --max-generate-n") } } },
            "/v1/models/{name}/fid": { "post": { "summary": "Generate n images in-process and score them",
                "parameters": [name_param("name", "Model name"),
                    query("reference", "string", true, "Reference statistics"),
                    query("n", "integer", false, "Images (default 1000)"),
                    query("seed", "integer", false, "Latent seed (default 0)"),
                    query("kid", "boolean", false, "Also compute KID"),
                    query("async", "boolean", false, "Always run as a job")],
                "responses": scoring_responses() } },
            "/v1/references": { "get": { "summary": "Reference statistics", "responses": {
                "200": json_ok("References", json!({ "type": "object" })) } } },
            "/v1/references/{name}": { "post": { "summary": "Upload a pytorch-fid .npz (mu, sigma; optional features)",
                "parameters": [name_param("name", "Reference name")],
                "requestBody": upload_body("One .npz file"),
                "responses": { "201": json_ok("Stored", json!({ "type": "object" })),
                    "400": error_response("Bad name or not an .npz"), "409": error_response("Name taken"),
                    "413": error_response("Body over --max-body-bytes"),
                    "422": error_response("NaN, wrong shapes, asymmetric sigma, wrong dimension") } } },
            "/v1/fid": { "post": { "summary": "Score uploaded images against a reference",
                "parameters": [query("reference", "string", true, "Reference statistics"),
                    query("kid", "boolean", false, "Also compute KID"),
                    query("async", "boolean", false, "Always run as a job")],
                "requestBody": upload_body("PNG/JPEG files, a zip, a tar, or an .npz of uint8 images [N,H,W] or [N,H,W,C]"),
                "responses": scoring_responses() } },
            "/v1/jobs/{id}": { "get": { "summary": "Progress and result of a scoring job",
                "parameters": [name_param("id", "Job id")],
                "responses": { "200": json_ok("Job", json!({ "type": "object" })), "404": error_response("Unknown job") } } }
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object",
                "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
            "GenerateRequest": { "type": "object", "properties": {
                "n": { "type": "integer", "minimum": 1, "default": 1 },
                "seed": { "type": "integer", "minimum": 0, "default": 0 },
                "format": { "type": "string", "enum": ["png", "grid", "zip", "npy"], "default": "png" } } },
            "Score": { "type": "object", "properties": {
                "fid": { "type": "number" }, "kid": { "type": "number", "nullable": true },
                "kid_std": { "type": "number", "nullable": true }, "n": { "type": "integer" },
                "reference": { "type": "string" }, "resize_mode": { "type": "string" },
                "provider": { "type": "string" }, "seconds": { "type": "number" },
                "warnings": { "type": "array", "items": { "type": "string" } } } },
            "Accepted": { "type": "object", "properties": {
                "id": { "type": "string" }, "status": { "type": "string" },
                "href": { "type": "string" }, "total": { "type": "integer" } } }
        } }
    })
}
