use anyhow::Context;
use clap::{Parser, Subcommand};
use elkservice_core::program;
use elkservice_notifier::Notifier;
use std::path::PathBuf;
use std::process::ExitCode;

/// Follows the elkservice change feed and notifies webhooks of problems and their end.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file; the environment (ELK_<SECTION>__<KEY>, DATABASE_URL) overrides it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Follow the feed and notify (the default).
    Run,
    /// Be a webhook receiver that prints what it gets (to try the notifier out).
    Receive {
        #[arg(long, default_value = "127.0.0.1:9190")]
        listen: std::net::SocketAddr,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await.unwrap_or_else(|code| code)
}

async fn run(cli: Cli) -> Result<ExitCode, ExitCode> {
    if let Some(Command::Receive { listen }) = cli.command {
        let served = elkservice_notifier::receive::serve(listen).await;
        program::started(
            "elkservice-notifier",
            served.with_context(|| format!("cannot receive on {listen}")),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    Ok(program::main::<Notifier>(cli.config.as_deref()).await)
}
