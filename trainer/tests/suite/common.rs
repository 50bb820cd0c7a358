//! Helpers shared by the suite's modules.
//!
//! The policy for prerequisites: what `make setup` installs (the venv's Python with torch,
//! numpy, scipy and onnx; the FID weights; MNIST and Fashion-MNIST under data/) is required.
//! A test that needs it and does not find it fails, naming the file and the fix; nothing
//! skips silently or passes without running its assertions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pagan_trainer::config::{Arch, Preset, ScheduleSpec, TrainConfig, TrainOverrides};
use pagan_trainer::data::ImageSet;

/// The workspace root.
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Fails with the fix when a prerequisite `make setup` installs is missing.
pub fn require(path: &Path, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} missing at {}: run `make setup` (it installs every prerequisite of `make test`)",
        path.display()
    );
    path.to_path_buf()
}

/// The setup's Python (torch, numpy, scipy, onnx, torchvision).
pub fn python() -> Command {
    Command::new(require(
        &repo().join(".venv/bin/python"),
        "the project venv's Python",
    ))
}

/// Fashion-MNIST as `make setup` installs it.
pub fn require_fashion_mnist() {
    require(
        &repo().join("data/fashion-mnist/train-images-idx3-ubyte.gz"),
        "Fashion-MNIST",
    );
}

/// The FID Inception weights as `make setup` installs them.
pub fn weights() -> PathBuf {
    require(
        &pagan_trainer::config::default_inception_weights(),
        "the FID Inception weights",
    )
}

/// The binary under test, logging warnings and errors only, with no `PAGAN_*` variable
/// inherited from the caller's shell (they would change defaults under the test's feet).
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pagan-train"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PAGAN_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd`, asserts success, returns stdout followed by stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn pagan-train");
    assert!(out.status.success(), "command failed: {cmd:?}\n{}", text(&out));
    text(&out)
}

/// Runs `cmd`, asserts it exits with `code` without a panic, returns stderr.
pub fn run_exit(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().expect("spawn pagan-train");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{cmd:?}\n{}", text(&out));
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The last stdout line as JSON.
pub fn json(text: &str) -> serde_json::Value {
    let line = text.lines().rfind(|l| l.starts_with('{')).unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// libtorch's generator is process-wide and the suite's tests run on parallel threads:
/// every test that seeds or draws from it holds this lock (the library's own), or a
/// reproducibility check could see another test's draws in between its own.
pub fn torch_rng() -> std::sync::MutexGuard<'static, ()> {
    pagan_trainer::rng::torch_rng_lock()
}

/// A narrow 1x28x28 architecture for fast tests.
pub fn tiny_arch() -> Arch {
    Arch::narrowed([1, 28, 28], 16)
}

/// `n` deterministic 1x28x28 images.
pub fn synthetic_set(n: usize) -> ImageSet {
    let data: Vec<u8> = (0..n * 784)
        .map(|i| ((i * 37 + i / 784 * 11) % 256) as u8)
        .collect();
    ImageSet {
        data,
        labels: None,
        n,
        channels: 1,
        height: 28,
        width: 28,
        source: "synthetic".into(),
    }
}

/// A tiny run configuration through the one resolver: the demo preset with `o` applied and
/// the tiny architecture.
pub fn tiny_config(o: TrainOverrides) -> TrainConfig {
    let o = TrainOverrides {
        preset: o.preset.or(Some(Preset::Demo)),
        ..o
    };
    let mut cfg = TrainConfig::resolve("synthetic", [1, 28, 28], Path::new(""), &o);
    cfg.arch = tiny_arch();
    cfg.validate().expect("a valid test configuration");
    cfg
}

/// The usual tiny PA run: batch 8, start level 1 of 3, fade-in 4, level-ups every 5.
pub fn tiny_overrides(iters: u64) -> TrainOverrides {
    TrainOverrides {
        batch: Some(8),
        iters: Some(iters),
        seed: Some(11),
        start_level: Some(1),
        max_level: Some(3),
        fade_iters: Some(4),
        schedule: Some(ScheduleSpec::Every(5)),
        log_every: Some(1),
        sample_every: Some(4),
        checkpoint_every: Some(7),
        ..TrainOverrides::default()
    }
}
