use anyhow::Context;
use clap::{Parser, Subcommand};
use elkservice_api::settings::Settings;
use elkservice_api::startup::Application;
use elkservice_api::{keys, openapi};
use elkservice_core::program;
use std::path::PathBuf;
use std::process::ExitCode;

/// The elkservice REST API: a live record of container health over MySQL.
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
    /// Serve the API (the default).
    Serve,
    /// Print a new random API key and the digest to put in ELK_API__KEYS.
    NewKey,
    /// Print the OpenAPI document (what openapi/openapi.json must hold).
    Openapi,
    /// Bring the database's schema up to date, then exit (a deployment's
    /// migration step; serving does it too).
    Migrate,
}

const NAME: &str = "elkservice-api";

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let ran = match cli.command.unwrap_or(Command::Serve) {
        Command::NewKey => {
            let (key, digest) = keys::new_key();
            println!("key:    {key}\ndigest: {digest}");
            println!(
                "Give the key to the client; add the digest to ELK_API__KEYS (comma-separated)."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!(
                "{}",
                openapi::spec().to_pretty_json().expect("spec serialises")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
    };
    ran.unwrap_or_else(|code| code)
}

/// The settings, with logging set up by them.
fn configure(config: Option<PathBuf>) -> Result<Settings, ExitCode> {
    let settings = program::configured(NAME, Settings::load(config.as_deref()))?;
    elkservice_core::telemetry::init(&settings.log);
    Ok(settings)
}

async fn migrate(config: Option<PathBuf>) -> Result<ExitCode, ExitCode> {
    let settings = configure(config)?;
    let migrated = elkservice_core::db::connect_and_migrate(&settings.database).await;
    let pool = program::started(NAME, migrated.context("migration failed"))?;
    pool.close().await;
    tracing::info!("the schema is up to date");
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Option<PathBuf>) -> Result<ExitCode, ExitCode> {
    let settings = configure(config)?;
    let listen = settings.api.listen;
    let app = program::started(NAME, Application::build(settings).await)?;
    tracing::info!(%listen, port = app.port(), "listening");
    let ran = app.run_until_stopped().await;
    Ok(program::ended(NAME, ran.context("the server failed")))
}
