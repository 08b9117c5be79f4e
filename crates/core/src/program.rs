//! How each program's `main` ends, in one place, so that scripts and
//! supervisors get the same exit codes from every program: 2 for a bad
//! configuration (nothing was started), 1 for any other failure, 0 for a
//! clean stop. Each step returns the code to exit with as its error, so a
//! `main` reads as its steps joined by `?`.

use std::fmt::Display;
use std::process::ExitCode;

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
