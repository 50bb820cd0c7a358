//! Bakes the default location of libonnxruntime (from .cargo/config.toml, prepared by
//! `make setup`) into the crate, so the trainer and the server run without ORT_DYLIB_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=PAGAN_ORT_DYLIB");
    let ort = std::env::var("PAGAN_ORT_DYLIB").unwrap_or_default();
    println!("cargo:rustc-env=PAGAN_ORT_DYLIB_DEFAULT={ort}");
}
