//! Class-conditional generators: loading (the graph's labels input checked against the
//! manifest), the class parameters of every route that generates (`labels`, `class`, the
//! default cycle), their refusals, KServe V2's second input, and the OpenAPI document.
//! The models are tiny ONNX graphs written by `common::onnx` and computed here in f64.
//! Needs ONNX Runtime (`make setup`). FID of a conditional model: `conditional_fid.rs`.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use actix_web::{test, web};
use common::conditional::{CLASSES, config, write_models};
use common::onnx::{IMAGE, LATENT, PIXELS, Weights};
use common::{assert_error, json};
use pagan_server::{AppState, app};
use serde_json::{Value, json};

struct Fixture {
    models: PathBuf,
    cond: Weights,
    state: web::Data<AppState>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ort = pagan_server::models::runtime::library_path();
        assert!(
            ort.as_ref().is_some_and(|p| p.exists()),
            "ONNX Runtime library not found ({ort:?}): run `make setup`"
        );
        let models = pagan_e2e::process_tempdir().join("models");
        let cond = write_models(&models);
        let state = web::Data::new(AppState::new(config(&models)).expect("state"));
        Fixture { models, cond, state }
    })
}

fn generate(model: &str, body: Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&format!("/v1/models/{model}/generate"))
        .set_json(body)
}

/// The float32 images of an `npy` response.
fn npy_images(bytes: &[u8]) -> Vec<f32> {
    let (data, shape) = pagan_shared::npy::from_bytes(bytes, "response").expect("npy");
    assert_eq!(shape[1..], IMAGE);
    data
}

#[actix_web::test]
async fn conditional_models_load_list_their_classes_and_refuse_mismatched_graphs() {
    let f = fixture();
    let svc = test::init_service(app(f.state.clone())).await;
    let v =
        json(test::call_service(&svc, test::TestRequest::get().uri("/v1/models").to_request()).await).await;
    let classes: Vec<(Value, Value)> = v["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| (m["name"].clone(), m["classes"].clone()))
        .collect();
    assert_eq!(
        classes,
        vec![(json!("cond"), json!(CLASSES)), (json!("plain"), Value::Null)]
    );
    let failed: Vec<(String, String)> = v["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_owned(),
                e["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["cond-extra-class", "cond-no-labels", "plain-two-inputs"],
        "{failed:?}"
    );
    assert!(
        failed[0].1.contains("names 4 classes") && failed[0].1.contains("exported with 3"),
        "{}",
        failed[0].1
    );
    assert!(
        failed[1].1.contains("`labels`") && failed[1].1.contains("is not an input"),
        "{}",
        failed[1].1
    );
    assert!(failed[2].1.contains("needs `classes`"), "{}", failed[2].1);

    let one = test::TestRequest::get().uri("/v1/models/cond").to_request();
    let v = json(test::call_service(&svc, one).await).await;
    assert_eq!(v["manifest"]["classes"]["names"], json!(CLASSES));
    assert_eq!(v["manifest"]["classes"]["input"]["name"], "labels");

    let meta = test::TestRequest::get().uri("/v2/models/cond").to_request();
    let v = json(test::call_service(&svc, meta).await).await;
    assert_eq!(
        v["inputs"],
        json!([{"name": "z", "datatype": "FP32", "shape": [-1, LATENT]},
               {"name": "labels", "datatype": "INT64", "shape": [-1]}])
    );
    let meta = test::TestRequest::get().uri("/v2/models/plain").to_request();
    assert_eq!(
        json(test::call_service(&svc, meta).await).await["inputs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // The document declares the class parameters with the loaded classes.
    let doc =
        json(test::call_service(&svc, test::TestRequest::get().uri("/openapi.json").to_request()).await)
            .await;
    let props = &doc["components"]["schemas"]["GenerateRequest"]["properties"];
    assert_eq!(props["labels"]["items"]["maximum"], 2);
    assert_eq!(props["class"]["anyOf"][0]["enum"], json!(CLASSES));
    for (path, method) in [
        ("/v1/models/{name}/grid.png", "get"),
        ("/v1/models/{name}/fid", "post"),
    ] {
        let names: Vec<&str> = doc["paths"][path][method]["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"labels") && names.contains(&"class"),
            "{path}: {names:?}"
        );
    }
    // Without a conditional model the parameters are not declared (every model refuses them).
    let plain_doc = pagan_server::http::openapi::document(&config(&f.models), &[]);
    assert!(plain_doc["components"]["schemas"]["GenerateRequest"]["properties"]["labels"].is_null());
}

#[actix_web::test]
async fn labels_give_the_images_the_graph_computes_for_them() {
    let f = fixture();
    let svc = test::init_service(app(f.state.clone())).await;
    let bytes = |req: test::TestRequest| {
        let svc = &svc;
        async move {
            let res = test::call_service(svc, req.to_request()).await;
            assert_eq!(res.status(), 200);
            test::read_body(res).await.to_vec()
        }
    };
    // n = 6 in batches of 4: labels follow their latents across batches.
    let labels = [2i64, 0, 1, 2, 1, 0];
    let got = npy_images(
        &bytes(generate(
            "cond",
            json!({"n": 6, "seed": 3, "labels": labels, "format": "npy"}),
        ))
        .await,
    );
    let z = pagan_shared::latent::uniform(3, 6, LATENT);
    let want = f.cond.forward(&z, Some(&labels));
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (f64::from(*g) - w).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-5, "max |onnx - f64| = {worst}");

    // n defaults to the number of labels.
    let implied = bytes(generate(
        "cond",
        json!({"seed": 3, "labels": labels, "format": "npy"}),
    ))
    .await;
    assert_eq!(npy_images(&implied), got);

    // class (by name or label) = the same label for every image; same request, same bytes.
    let square = json!({"n": 4, "seed": 5, "class": "square", "format": "zip"});
    let by_name = bytes(generate("cond", square.clone())).await;
    assert_eq!(bytes(generate("cond", square)).await, by_name);
    let by_label = bytes(generate(
        "cond",
        json!({"n": 4, "seed": 5, "class": 1, "format": "zip"}),
    ))
    .await;
    let by_labels = bytes(generate(
        "cond",
        json!({"n": 4, "seed": 5, "labels": [1, 1, 1, 1], "format": "zip"}),
    ))
    .await;
    assert_eq!(by_name, by_label);
    assert_eq!(by_name, by_labels);
    let triangle = bytes(generate(
        "cond",
        json!({"n": 4, "seed": 5, "class": "triangle", "format": "zip"}),
    ))
    .await;
    assert_ne!(by_name, triangle, "another class, other images");

    // Neither: image i gets label i mod K.
    let cycled = bytes(generate("cond", json!({"n": 5, "seed": 9, "format": "npy"}))).await;
    let explicit = bytes(generate(
        "cond",
        json!({"n": 5, "seed": 9, "labels": [0, 1, 2, 0, 1], "format": "npy"}),
    ))
    .await;
    assert_eq!(cycled, explicit);

    // The grid route takes them as query parameters.
    let grid = bytes(test::TestRequest::get().uri("/v1/models/cond/grid.png?n=4&seed=5&class=square")).await;
    let posted = bytes(generate(
        "cond",
        json!({"n": 4, "seed": 5, "class": "square", "format": "grid"}),
    ))
    .await;
    assert_eq!(grid, posted);
    let grid = bytes(test::TestRequest::get().uri("/v1/models/cond/grid.png?seed=5&labels=1,1,1,1")).await;
    assert_eq!(grid, posted, "labels in a query, n implied");
    let grid = bytes(test::TestRequest::get().uri("/v1/models/cond/grid.png?n=4&seed=5&class=1")).await;
    assert_eq!(grid, posted, "an integer class in a query");

    // A latent walk in one class.
    let walk = npy_images(
        &bytes(generate(
            "cond",
            json!({"interpolate": {"from": 1, "to": 2, "steps": 3}, "class": "circle", "format": "npy"}),
        ))
        .await,
    );
    let z = pagan_shared::latent::walk(1, 2, 3, LATENT);
    let want = f.cond.forward(&z, Some(&[0, 0, 0]));
    assert!(
        walk.iter()
            .zip(&want)
            .all(|(g, w)| (f64::from(*g) - w).abs() < 1e-5)
    );
    assert_eq!(walk.len(), 3 * PIXELS);
}

#[actix_web::test]
async fn bad_classes_are_refused_with_the_reason() {
    let f = fixture();
    let svc = test::init_service(app(f.state.clone())).await;
    for (model, body, status, code, needle) in [
        (
            "cond",
            json!({"n": 2, "class": "hexagon", "format": "npy"}),
            400,
            "bad_class",
            "circle, square, triangle",
        ),
        (
            "cond",
            json!({"n": 2, "class": 3, "format": "npy"}),
            400,
            "bad_class",
            "0..=2",
        ),
        (
            "cond",
            json!({"n": 2, "class": -1, "format": "npy"}),
            400,
            "bad_class",
            "out of range",
        ),
        (
            "cond",
            json!({"n": 2, "labels": [0, 3], "format": "npy"}),
            400,
            "bad_labels",
            "labels[1] = 3",
        ),
        (
            "cond",
            json!({"n": 2, "labels": [-1, 0], "format": "npy"}),
            400,
            "bad_labels",
            "labels[0] = -1",
        ),
        (
            "cond",
            json!({"n": 3, "labels": [0, 1], "format": "npy"}),
            400,
            "bad_labels",
            "2 labels for 3 images",
        ),
        (
            "cond",
            json!({"labels": [0, 1], "class": 0, "format": "npy"}),
            400,
            "bad_labels",
            "not both",
        ),
        (
            "cond",
            json!({"interpolate": {"from": 0, "to": 1, "steps": 3}, "labels": [0, 1], "format": "npy"}),
            400,
            "bad_labels",
            "2 labels for 3 images",
        ),
        ("cond", json!({"labels": [0, 1]}), 400, "bad_n", "png"),
        ("cond", json!({"class": null}), 400, "bad_json", "null"),
        ("cond", json!({"class": 1.5}), 400, "bad_json", "class"),
        (
            "plain",
            json!({"n": 2, "labels": [0, 0], "format": "npy"}),
            422,
            "model_not_conditional",
            "plain",
        ),
        (
            "plain",
            json!({"class": "circle"}),
            422,
            "model_not_conditional",
            "not class-conditional",
        ),
    ] {
        let res = test::call_service(&svc, generate(model, body.clone()).to_request()).await;
        let v = assert_error(res, status, code).await;
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(needle), "{body}: {message}");
    }
    for (uri, status, code) in [
        ("/v1/models/cond/grid.png?labels=0,x", 400, "bad_labels"),
        ("/v1/models/cond/grid.png?labels=", 400, "bad_labels"),
        ("/v1/models/cond/grid.png?n=3&labels=0,1", 400, "bad_labels"),
        ("/v1/models/cond/grid.png?class=hexagon", 400, "bad_class"),
        ("/v1/models/cond/grid.png?class=7", 400, "bad_class"),
        ("/v1/models/cond/grid.png?class=0&labels=0", 400, "bad_labels"),
        ("/v1/models/plain/grid.png?class=0", 422, "model_not_conditional"),
        ("/v1/models/plain/grid.png?labels=0", 422, "model_not_conditional"),
    ] {
        let res = test::call_service(&svc, test::TestRequest::get().uri(uri).to_request()).await;
        assert_error(res, status, code).await;
    }
}

/// A V2 request for `model` with latents of `seed` and `labels` (None: no labels input).
fn infer(model: &str, n: usize, seed: u64, labels: Option<Value>) -> test::TestRequest {
    let z = pagan_shared::latent::uniform(seed, n, LATENT);
    let mut inputs = vec![json!({"name": "z", "shape": [n, LATENT], "datatype": "FP32", "data": z})];
    if let Some(l) = labels {
        inputs.push(json!({"name": "labels", "shape": [l.as_array().map_or(0, Vec::len)], "datatype": "INT64", "data": l}));
    }
    test::TestRequest::post()
        .uri(&format!("/v2/models/{model}/infer"))
        .set_json(json!({ "inputs": inputs }))
}

#[actix_web::test]
async fn v2_takes_the_labels_as_a_second_input() {
    let f = fixture();
    let svc = test::init_service(app(f.state.clone())).await;
    let res = test::call_service(&svc, infer("cond", 3, 4, Some(json!([2, 2, 0]))).to_request()).await;
    assert_eq!(res.status(), 200);
    let v = json(res).await;
    let data: Vec<f32> = serde_json::from_value(v["outputs"][0]["data"].clone()).expect("data");
    let req = generate(
        "cond",
        json!({"n": 3, "seed": 4, "labels": [2, 2, 0], "format": "npy"}),
    )
    .to_request();
    let v1 = test::read_body(test::call_service(&svc, req).await).await;
    assert_eq!(data, npy_images(&v1), "v2 and v1 give the same images");
    for (model, labels, needle) in [
        ("cond", None, "two inputs"),
        ("cond", Some(json!([0, 5, 1])), "labels are 0..=2"),
        ("cond", Some(json!([0, 1])), "2 labels for 3 latents"),
        ("plain", Some(json!([0, 0, 0])), "exactly one input"),
    ] {
        let res = test::call_service(&svc, infer(model, 3, 4, labels).to_request()).await;
        assert_eq!(res.status(), 400);
        let v = json(res).await;
        assert!(v["error"].as_str().is_some_and(|m| m.contains(needle)), "{v}");
    }
}
