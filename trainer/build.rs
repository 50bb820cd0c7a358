//! Build script:
//! - link fix for tch: cargo drops torch-sys's own link arguments, so the binaries would
//!   need LD_LIBRARY_PATH and `--as-needed` would drop libtorch_cuda (CUDA never registered).
//!   torch-sys declares `links = "tch"`, so as a direct dependent we see DEP_TCH_LIBTORCH_LIB;
//! - the C++ shim in csrc/ (libtorch calls tch does not expose), compiled against the same
//!   libtorch's headers; with the `cuda-graphs` feature also the CUDA graph part, against the
//!   CUDA headers of the torch wheel's nvidia packages (no GPU needed to build it).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=PAGAN_CUDA_INCLUDE");
    println!("cargo:rerun-if-changed=csrc");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("DEP_TCH_LIBTORCH_LIB is not set: torch-sys did not find libtorch (run `make setup`)");
    };
    let lib = PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let has_cuda = lib.join("libtorch_cuda.so").exists();
    let graphs = std::env::var_os("CARGO_FEATURE_CUDA_GRAPHS").is_some();
    if graphs && !has_cuda {
        panic!(
            "the cuda-graphs feature needs a CUDA build of libtorch ({} has no libtorch_cuda.so); \
             build with --no-default-features for a CPU-only libtorch",
            lib.display()
        );
    }
    compile_shim(&lib, graphs);
    if has_cuda {
        // Keep libtorch_cuda as a NEEDED entry even when no symbol of it is referenced:
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

/// Compiles csrc/ into a static library linked before libtorch.
fn compile_shim(lib: &Path, graphs: bool) {
    let torch = lib.parent().unwrap_or(lib);
    let include = torch.join("include");
    if !include.join("ATen/ATen.h").exists() {
        panic!(
            "libtorch headers not found in {} (the torch wheel ships them; run `make setup`)",
            include.display()
        );
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .include(&include)
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .file("csrc/ops.cpp")
        .file("csrc/profile.cpp");
    if graphs {
        let cuda = cuda_include(torch);
        build.include(&cuda).file("csrc/cuda_graph.cpp");
    }
    build.compile("pagan_torch");
    if graphs {
        // After the static library, so the linker keeps what it references.
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}

/// The CUDA runtime headers: $PAGAN_CUDA_INCLUDE, else the torch wheel's
/// `nvidia/cu13/include` (crt/host_config.h comes from the nvidia-cuda-crt wheel).
fn cuda_include(torch: &Path) -> PathBuf {
    let dir = std::env::var_os("PAGAN_CUDA_INCLUDE").map_or_else(
        || {
            let site = torch.canonicalize().unwrap_or_else(|_| torch.to_path_buf());
            site.parent().unwrap_or(&site).join("nvidia/cu13/include")
        },
        PathBuf::from,
    );
    for header in ["cuda_runtime_api.h", "crt/host_config.h"] {
        if !dir.join(header).exists() {
            panic!(
                "cuda-graphs: {} not found. `make setup` installs the CUDA headers (PyPI \
                 nvidia-cuda-runtime with torch, nvidia-cuda-crt); set PAGAN_CUDA_INCLUDE to another \
                 CUDA include folder, or build with --no-default-features to leave CUDA graphs out",
                dir.join(header).display()
            );
        }
    }
    dir
}
