//! Helpers for tests that run the `pagan-train` binary.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::Command;

/// The binary under test, logging warnings and errors only.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pagan-train"));
    c.env("RUST_LOG", "warn");
    c
}

/// Runs `cmd`, asserts success, returns stdout followed by stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn pagan-train");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "command failed: {cmd:?}\n{text}");
    text
}

/// Runs `cmd`, asserts a clean failure (no panic), returns stderr.
pub fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn pagan-train");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure: {cmd:?}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The workspace root.
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Fails with the fix when `make setup` has not installed Fashion-MNIST.
pub fn require_fashion_mnist() {
    let fm = repo().join("data/fashion-mnist/train-images-idx3-ubyte.gz");
    assert!(
        fm.exists(),
        "Fashion-MNIST missing at {}: run `make setup`",
        fm.display()
    );
}

/// libtorch's generator is process-wide and tests run on parallel threads: every test that
/// seeds or draws from it holds this lock, or a reproducibility check could see another
/// test's draws in between its own.
pub fn torch_rng() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
