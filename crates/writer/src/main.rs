use clap::Parser;
use elkservice_core::program;
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
    program::main::<Writer>(Cli::parse().config.as_deref()).await
}
