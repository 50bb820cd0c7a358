//! FID of a class-conditional model (`/v1/models/{name}/fid`): the labels asked for are the
//! ones generated, the default cycles through the classes, and the class parameters are
//! refused as on the other routes. Needs ONNX Runtime (`make setup`) and the Inception
//! extractor (`models/inception`, else exported by the trainer binary).

mod common;

use std::path::Path;

use actix_web::{test, web};
use common::conditional::{config, write_models};
use common::{assert_error, json};
use pagan_server::{AppState, app};

/// models/inception: the workspace's (linked), else exported by the trainer binary.
fn add_inception(models: &Path) {
    let inc = models.join("inception");
    std::fs::create_dir_all(&inc).expect("mkdir");
    let have = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/inception");
    if have.join("inception.onnx").is_file() {
        for f in ["manifest.json", "inception.onnx"] {
            let src = have.join(f).canonicalize().expect("canonical path");
            std::os::unix::fs::symlink(src, inc.join(f)).expect("symlink");
        }
        return;
    }
    let exe = std::env::current_exe().expect("test exe");
    let trainer = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .join("pagan-train");
    assert!(
        trainer.is_file(),
        "no models/inception and no {} to export it: run `make test` or `cargo build -p pagan-trainer`",
        trainer.display()
    );
    let out = std::process::Command::new(trainer)
        .args(["export-inception", "--out"])
        .arg(&inc)
        .output()
        .expect("spawn pagan-train");
    assert!(
        out.status.success(),
        "export-inception: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The synthetic reference `synth` (8 random feature rows).
fn add_reference(models: &Path) {
    let refs = models.join("references");
    std::fs::create_dir_all(&refs).expect("mkdir");
    let (_, g) = common::synthetic_reference();
    pagan_shared::write_stats_npz(&refs.join("synth.npz"), &g, None).expect("synth.npz");
}

#[actix_web::test]
async fn model_fid_generates_the_classes_asked_for() {
    let tmp = tempfile::tempdir().expect("tmp");
    let models = tmp.path().join("models");
    write_models(&models);
    add_inception(&models);
    add_reference(&models);
    let state = web::Data::new(AppState::new(config(&models)).expect("state"));
    let svc = test::init_service(app(state)).await;
    let fid = |query: &str| {
        let uri = format!("/v1/models/cond/fid?reference=synth&seed=2&{query}");
        let svc = &svc;
        async move {
            let res = test::call_service(svc, test::TestRequest::post().uri(&uri).to_request()).await;
            assert_eq!(res.status(), 200, "{uri}");
            json(res).await["fid"].as_f64().expect("fid")
        }
    };
    let square = fid("n=4&class=square").await;
    assert_eq!(
        fid("labels=1,1,1,1").await,
        square,
        "the same images, the same FID"
    );
    assert_ne!(
        fid("n=4&class=circle").await,
        square,
        "another class, other images"
    );
    assert_eq!(
        fid("n=5").await,
        fid("labels=0,1,2,0,1").await,
        "the default cycles"
    );
    for (uri, status, code) in [
        (
            "/v1/models/cond/fid?reference=synth&n=4&class=hexagon",
            400,
            "bad_class",
        ),
        (
            "/v1/models/cond/fid?reference=synth&n=4&labels=0,1",
            400,
            "bad_labels",
        ),
        (
            "/v1/models/cond/fid?reference=synth&labels=1",
            422,
            "too_few_images",
        ),
        (
            "/v1/models/plain/fid?reference=synth&n=4&class=0",
            422,
            "model_not_conditional",
        ),
    ] {
        let res = test::call_service(&svc, test::TestRequest::post().uri(uri).to_request()).await;
        assert_error(res, status, code).await;
    }
}
