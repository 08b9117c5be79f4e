use clap::Parser;
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
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("elkservice-watcher: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    elkservice_core::telemetry::init(&settings.log);
    let watcher = match Watcher::build(settings) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("elkservice-watcher: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = watcher.port(), "metrics listening");
    let shutdown = elkservice_core::shutdown::on_signal();
    match watcher.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "watcher failed");
            ExitCode::FAILURE
        }
    }
}
