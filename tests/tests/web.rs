//! The web page in a real browser: headless Chromium (Debian `chromium`, `chromium-driver`,
//! installed by `make setup`) driven by selenium from the setup's Python
//! (`tests/py/browser_check.py`) against the real `pagan-serve`. What it checks is listed
//! in that script; every check must pass. `PAGAN_SCREENSHOTS=DIR` keeps the screenshots
//! (docs/screenshots/ holds the README's).

use pagan_e2e::{Server, post_json, python, repo, run_ok, tiny_models};

#[test]
fn the_page_works_in_a_real_browser() {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} missing: run `make setup` (installs the Debian packages chromium and chromium-driver)"
        );
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (models, _) = tiny_models(tmp.path());
    // A job threshold under the 6 images: the page's upload runs as a job, so its polling
    // and progress are what gives the result.
    let server = Server::start(&models, &["--job-threshold", "4"]);
    // The walk the page draws: its ends are the images of the two seeds, bit for bit.
    let npy = |body: serde_json::Value| {
        let r = post_json(server.port, "/v1/models/tiny/generate", &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        pagan_shared::npy::from_bytes(&r.body, "npy").expect("npy")
    };
    let (walk, shape) =
        npy(serde_json::json!({"interpolate": {"from": 4, "to": 9, "steps": 5}, "format": "npy"}));
    assert_eq!(shape, vec![5, 1, 28, 28]);
    let per = 28 * 28;
    let (a, _) = npy(serde_json::json!({"n": 1, "seed": 4, "format": "npy"}));
    let (b, _) = npy(serde_json::json!({"n": 1, "seed": 9, "format": "npy"}));
    assert_eq!(walk[..per], a[..], "first frame = seed 4");
    assert_eq!(walk[4 * per..], b[..], "last frame = seed 9");
    let both = post_json(
        server.port,
        "/v1/models/tiny/generate",
        &serde_json::json!({"interpolate": {"from": 1, "to": 2, "steps": 3}, "n": 3, "format": "npy"}),
    );
    both.assert_error(400, "bad_interpolate");

    let zip = post_json(
        server.port,
        "/v1/models/tiny/generate",
        &serde_json::json!({"n": 6, "seed": 1, "format": "zip"}),
    );
    assert_eq!(zip.status, 200);
    let zip_path = tmp.path().join("six.zip");
    std::fs::write(&zip_path, &zip.body).expect("zip");
    let shots = std::env::var_os("PAGAN_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("shots"));
    std::fs::create_dir_all(&shots).expect("shots");
    // The same models behind a token: the page must ask for it.
    let guarded = Server::start(&models, &["--token", "browser-check-token"]);
    let out = run_ok(
        python()
            .arg(repo().join("tests/py/browser_check.py"))
            .arg(format!("http://127.0.0.1:{}", server.port))
            .args(["tiny", "fm12"])
            .arg(&zip_path)
            .arg(&shots)
            .arg(format!("http://127.0.0.1:{}", guarded.port))
            .arg("browser-check-token"),
    );
    println!("{out}");
    assert!(out.contains("16 of 16 browser checks passed"), "{out}");
}
