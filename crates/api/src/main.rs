use clap::{Parser, Subcommand};
use elkservice_api::settings::Settings;
use elkservice_api::startup::Application;
use elkservice_api::{keys, openapi};
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

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::NewKey => {
            let (key, digest) = keys::new_key();
            println!("key:    {key}\ndigest: {digest}");
            println!(
                "Give the key to the client; add the digest to ELK_API__KEYS (comma-separated)."
            );
            ExitCode::SUCCESS
        }
        Command::Openapi => {
            println!(
                "{}",
                openapi::spec().to_pretty_json().expect("spec serialises")
            );
            ExitCode::SUCCESS
        }
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
    }
}

/// The settings, with logging set up by them; a bad one is exit code 2.
fn configure(config: Option<PathBuf>) -> Result<Settings, ExitCode> {
    let settings = Settings::load(config.as_deref()).map_err(|e| {
        eprintln!("elkservice-api: configuration error: {e}");
        ExitCode::from(2)
    })?;
    elkservice_core::telemetry::init(&settings.log);
    Ok(settings)
}

async fn migrate(config: Option<PathBuf>) -> ExitCode {
    let settings = match configure(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match elkservice_core::db::connect_and_migrate(&settings.database).await {
        Ok(pool) => {
            pool.close().await;
            tracing::info!("the schema is up to date");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("elkservice-api: migration failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<PathBuf>) -> ExitCode {
    let settings = match configure(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let listen = settings.api.listen;
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "start-up failed");
            eprintln!("elkservice-api: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%listen, port = app.port(), "listening");
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
