use clap::Parser;
use elkservice_core::program;
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
    run(Cli::parse()).await.unwrap_or_else(|code| code)
}

async fn run(cli: Cli) -> Result<ExitCode, ExitCode> {
    const NAME: &str = "elkservice-writer";
    let settings = program::configured(NAME, Settings::load(cli.config.as_deref()))?;
    elkservice_core::telemetry::init(&settings.log);
    let writer = program::started(NAME, Writer::build(settings))?;
    tracing::info!(port = writer.port(), "metrics listening");
    let shutdown = elkservice_core::shutdown::on_signal();
    Ok(program::ended(NAME, writer.run(shutdown).await))
}
