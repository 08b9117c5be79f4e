use clap::Parser;
use elkservice_writer::settings::Settings;
use elkservice_writer::Writer;
use std::path::PathBuf;
use std::process::ExitCode;

/// Applies status events from RabbitMQ to MySQL, in order, losing none.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file; the environment (ELK_<SECTION>__<KEY>, DATABASE_URL, AMQP_URL) overrides it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("elkservice-writer: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    elkservice_core::telemetry::init(&settings.log);
    let writer = match Writer::build(settings) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("elkservice-writer: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = writer.port(), "metrics listening");

    let shutdown = elkservice_core::shutdown::on_signal();
    match writer.run(shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "writer failed");
            ExitCode::FAILURE
        }
    }
}
