//! How each program's `main` ends, in one place, so that scripts and
//! supervisors get the same exit codes from every program: 2 for a bad
//! configuration (nothing was started), 1 for any other failure, 0 for a
//! clean stop. Each step returns the code to exit with as its error, so a
//! `main` reads as its steps joined by `?`.

use crate::config::{ConfigError, LogSettings};
use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use tokio::sync::watch;

/// The settings, or exit code 2 with the reason on stderr (logging is not
/// set up before the settings say how).
pub fn configured<S>(program: &str, loaded: Result<S, impl Display>) -> Result<S, ExitCode> {
    loaded.map_err(|e| {
        eprintln!("{program}: configuration error: {e}");
        ExitCode::from(2)
    })
}

/// What start-up built, or exit code 1 with the reason on stderr.
pub fn started<T>(program: &str, built: anyhow::Result<T>) -> Result<T, ExitCode> {
    built.map_err(|e| {
        eprintln!("{program}: {e:#}");
        ExitCode::FAILURE
    })
}

/// The exit code of a run that has ended, which is logged (with the
/// program's name: the log's target is this module, whichever program it is).
pub fn ended(program: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => {
            tracing::info!(program, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(program, error = format!("{e:#}"), "failed");
            ExitCode::FAILURE
        }
    }
}

/// The shape the writer, the watcher and the notifier share: settings from a
/// file and the environment, logging as they say, a start-up that binds the
/// operators' listener, then a run until SIGTERM or SIGINT.
pub trait Program: Sized {
    /// The name on stderr and in the log.
    const NAME: &'static str;
    type Settings;

    fn load(file: Option<&Path>) -> Result<Self::Settings, ConfigError>;
    fn log(settings: &Self::Settings) -> &LogSettings;
    fn build(settings: Self::Settings) -> anyhow::Result<Self>;
    /// The port of the `/healthz` + `/readyz` + `/metrics` listener.
    fn port(&self) -> u16;
    fn run(self, shutdown: watch::Receiver<bool>) -> impl Future<Output = anyhow::Result<()>>;
}

/// A [`Program`]'s whole life, with its exit code.
pub async fn main<P: Program>(config: Option<&Path>) -> ExitCode {
    let life = async {
        let settings = configured(P::NAME, P::load(config))?;
        crate::telemetry::init(P::log(&settings));
        let program = started(P::NAME, P::build(settings))?;
        tracing::info!(port = program.port(), "metrics listening");
        let shutdown = crate::shutdown::on_signal();
        Ok(ended(P::NAME, program.run(shutdown).await))
    };
    life.await.unwrap_or_else(|code| code)
}
