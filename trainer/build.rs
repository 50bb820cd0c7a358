//! Link fix for tch: cargo drops torch-sys's own link arguments, so the binaries would need
//! LD_LIBRARY_PATH and `--as-needed` would drop libtorch_cuda (CUDA never registered).
//! torch-sys declares `links = "tch"`, so as a direct dependent we see DEP_TCH_LIBTORCH_LIB.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set; binaries will need LD_LIBRARY_PATH");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let has_cuda = std::path::Path::new(&lib).join("libtorch_cuda.so").exists();
    if has_cuda {
        // Keep libtorch_cuda as a NEEDED entry even though no symbol of it is referenced:
        // loading it is what registers the CUDA backend.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    // Defaults for the FID weights and the setup's Python (converting foreign .pth files).
    for (var, default) in [
        ("PAGAN_INCEPTION_WEIGHTS", "PAGAN_INCEPTION_WEIGHTS_DEFAULT"),
        ("PAGAN_PYTHON", "PAGAN_PYTHON_DEFAULT"),
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        let v = std::env::var(var).unwrap_or_default();
        println!("cargo:rustc-env={default}={v}");
    }
}
