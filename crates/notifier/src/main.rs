use clap::{Parser, Subcommand};
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
    let cli = Cli::parse();
    if let Some(Command::Receive { listen }) = cli.command {
        return match elkservice_notifier::receive::serve(listen).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("elkservice-notifier: cannot receive on {listen}: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
