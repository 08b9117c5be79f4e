use clap::Parser;
use elkservice_core::program;
use elkservice_watcher::Watcher;
use std::path::PathBuf;
use std::process::ExitCode;

/// Watches container health and publishes status changes to RabbitMQ.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file; the environment (ELK_<SECTION>__<KEY>, DOCKER_HOST, AMQP_URL) overrides it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    program::main::<Watcher>(Cli::parse().config.as_deref()).await
}
