use clap::Parser;
use elkservice_notifier::settings::Settings;
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("elkservice-notifier: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    elkservice_core::telemetry::init(&settings.log);
    let notifier = match Notifier::build(settings) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("elkservice-notifier: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = notifier.port(), "metrics listening");
    match notifier.run(elkservice_core::shutdown::on_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "notifier failed");
            ExitCode::FAILURE
        }
    }
}
