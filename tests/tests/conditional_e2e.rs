//! A class-conditional generator through the whole product: `pagan-train train --cond`,
//! `export` (the ONNX graph gains a `labels` input, the manifest the class names), and
//! `pagan-serve` generating each class asked for, equal to `pagan-train sample --labels`
//! (tch) on the same latents; `pagan-train fid` of the model folder scores what it scores of
//! the run.

use std::path::Path;

use pagan_e2e::{Server, TINY_RUN, command, fm12_reference, get, post_json, run_ok};

/// `pagan-train sample --z --labels` of `run` as float32 values.
fn sampled(run: &Path, t: &Path, z: &[f32], latent: usize, labels: &str) -> Vec<f32> {
    let n = z.len() / latent;
    pagan_shared::npy::write(&t.join("z.npy"), z, &[n, latent]).expect("z");
    let mut cmd = command("pagan-train");
    cmd.arg("sample").arg(run).arg("--z").arg(t.join("z.npy"));
    if !labels.is_empty() {
        cmd.args(["--labels", labels]);
    }
    run_ok(
        cmd.args(["--format", "npy", "--device", "cpu", "--out"])
            .arg(t.join("x.npy")),
    );
    pagan_shared::npy::read(&t.join("x.npy")).expect("x").0
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_conditional_model_is_trained_exported_and_served_class_by_class() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let (models, run) = (t.join("models"), t.join("run"));
    run_ok(
        command("pagan-train")
            .arg("train")
            .args(TINY_RUN)
            .args([
                "--cond", "embed", "--d-cond", "project", "--iters", "3", "--quiet", "--out",
            ])
            .arg(&run),
    );
    run_ok(
        command("pagan-train")
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(models.join("cond")),
    );
    let manifest =
        pagan_shared::manifest::ModelManifest::read(&models.join("cond/manifest.json")).expect("manifest");
    let classes = manifest.classes.as_ref().expect("a conditional manifest");
    assert_eq!(classes.names.len(), 10);
    assert_eq!(classes.names[1], "Trouser");
    let latent = manifest.latent.size;

    // `pagan-train fid` of the exported folder (ORT) scores what `fid` of the run (tch)
    // scores: the same latents, the same default labels (image i gets class i mod 10).
    let reference = t.join("ref.npz");
    fm12_reference(&reference);
    let fid_of = |target: &Path| {
        let out = run_ok(
            command("pagan-train")
                .arg("fid")
                .arg(target)
                .args(["--n", "10", "--seed", "5", "--json", "--quiet", "--reference"])
                .arg(&reference),
        );
        let v: serde_json::Value =
            serde_json::from_str(out.lines().last().unwrap_or_default()).expect("fid --json");
        v["fid"].as_f64().expect("fid")
    };
    let (onnx_fid, tch_fid) = (fid_of(&models.join("cond")), fid_of(&run));
    println!("fid of the model folder (ORT) {onnx_fid} vs of the run (tch) {tch_fid}");
    assert!(
        ((onnx_fid - tch_fid) / tch_fid).abs() <= 1e-3,
        "fid {onnx_fid} (model folder) vs {tch_fid} (run)"
    );

    let server = Server::start(&models, &["--workers", "1"]);
    let port = server.port;
    let listed = get(port, "/v1/models/cond").json().to_string();
    assert!(listed.contains("Ankle boot"), "{listed}");

    let z = pagan_shared::latent::uniform(3, 4, latent);
    let served = |body: serde_json::Value| {
        let r = post_json(port, "/v1/models/cond/generate", &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        pagan_shared::npy::from_bytes(&r.body, "served").expect("npy").0
    };
    // One class by name, one label per image, and the default (classes cycle).
    let by_name = served(serde_json::json!({"n": 4, "seed": 3, "format": "npy", "class": "Trouser"}));
    let d = max_diff(&by_name, &sampled(&run, t, &z, latent, "Trouser"));
    println!("class Trouser: max |server (ORT) - sample (tch)| = {d:e}");
    assert!(d <= 1e-4);
    let per_image = served(serde_json::json!({"n": 4, "seed": 3, "format": "npy", "labels": [9, 0, 5, 1]}));
    let d = max_diff(&per_image, &sampled(&run, t, &z, latent, "9,0,5,1"));
    println!("labels [9, 0, 5, 1]: max |server - sample| = {d:e}");
    assert!(d <= 1e-4);
    let cycled = served(serde_json::json!({"n": 4, "seed": 3, "format": "npy"}));
    let d = max_diff(&cycled, &sampled(&run, t, &z, latent, ""));
    println!("default (image i gets class i mod 10): max |server - sample| = {d:e}");
    assert!(d <= 1e-4);
    assert!(
        max_diff(&by_name, &cycled) > 1e-6,
        "the class must change the images"
    );

    let grid = get(port, "/v1/models/cond/grid.png?n=4&seed=1&class=Bag");
    assert!(grid.status == 200 && grid.body.starts_with(b"\x89PNG"));
    let bad = get(port, "/v1/models/cond/grid.png?n=4&class=Hat");
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("Ankle boot"));
}
