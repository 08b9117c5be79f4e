use clap::Parser;
use elkservice_core::program;
use elkservice_watcher::settings::Settings;
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
    run(Cli::parse()).await.unwrap_or_else(|code| code)
}

async fn run(cli: Cli) -> Result<ExitCode, ExitCode> {
    const NAME: &str = "elkservice-watcher";
    let settings = program::configured(NAME, Settings::load(cli.config.as_deref()))?;
    elkservice_core::telemetry::init(&settings.log);
    let watcher = program::started(NAME, Watcher::build(settings))?;
    tracing::info!(port = watcher.port(), "metrics listening");
    let shutdown = elkservice_core::shutdown::on_signal();
    Ok(program::ended(NAME, watcher.run(shutdown).await))
}
