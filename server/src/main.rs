//! `pagan-serve`: starts the HTTP service. Flags and environment variables are in
//! `pagan_server::config`; `--help` lists them with their defaults.

use anyhow::Context;
use clap::Parser;
use pagan_server::{AppState, Config, app};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        // Colour codes only on a terminal: logs collected by a supervisor stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let config = Config::parse();
    let bind = config.bind;
    let workers = config.workers;
    tracing::info!(models = %config.models.display(), provider = ?config.provider, "loading models");
    let state = actix_web::web::Data::new(AppState::new(config).context("starting pagan-serve")?);
    let reg = &state.registry;
    tracing::info!(
        generators = reg.generators.len(),
        extractor = reg.extractor.is_some(),
        references = reg.reference_infos().len(),
        failed = reg.failed.len(),
        "registry ready"
    );
    actix_web::rt::System::new().block_on(async move {
        let mut server = actix_web::HttpServer::new(move || app(state.clone()));
        if workers > 0 {
            server = server.workers(workers);
        }
        // actix handles SIGINT/SIGTERM: stop accepting, let in-flight requests finish.
        let server = server.bind(bind).with_context(|| format!("binding {bind}"))?;
        tracing::info!(%bind, "listening");
        server.run().await.context("serving")
    })
}
