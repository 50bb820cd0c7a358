//! `pagan-serve`: the HTTP service over the ONNX artifacts in `models/`.
//!
//! Placeholder until the service issue lands: it parses its flags and says plainly that
//! serving is not implemented yet, rather than pretending to serve.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "pagan-serve",
    version,
    about = "PA-GAN service (not implemented yet): will serve generated images and FID/KID scoring over HTTP"
)]
struct Cli {
    /// Folder with exported models (manifest.json + generator.onnx per model).
    #[arg(long, default_value = "models", env = "PAGAN_MODELS")]
    models: std::path::PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "PAGAN_BIND")]
    bind: String,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    eprintln!(
        "pagan-serve: the HTTP service is not implemented yet (it would serve {} on {}); \
         use `pagan-train sample` for images meanwhile",
        cli.models.display(),
        cli.bind
    );
    std::process::ExitCode::from(2)
}
