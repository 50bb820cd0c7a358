//! `pagan-serve`: starts the HTTP service. Flags and environment variables are in `cli`;
//! `--help` lists them with their defaults. A service that cannot start says why and
//! exits with status 1 (bad flags: 2, from clap).

mod cli;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pagan_server::{AppState, app};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        // Colour codes only on a terminal: logs collected by a supervisor stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = cli::Cli::parse();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", pagan_shared::error::chain_message(e.chain()));
            eprintln!("error: {}", pagan_shared::error::chain_message(e.chain()));
            ExitCode::FAILURE
        }
    }
}

fn serve(args: cli::Cli) -> anyhow::Result<()> {
    let config = args.config().map_err(anyhow::Error::msg)?;
    let (bind, workers) = (config.bind, config.workers);
    tracing::info!(models = %config.models.display(), provider = ?config.provider, "loading models");
    let state = actix_web::web::Data::new(AppState::new(config).context("pagan-serve cannot start")?);
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
        let server = server
            .bind(bind)
            .with_context(|| format!("pagan-serve cannot listen on {bind} (is another process using it?)"))?;
        for addr in server.addrs() {
            tracing::info!(bind = %addr, "listening on http://{addr}");
        }
        server.run().await.context("serving")
    })
}
