//! Logging set-up: JSON lines by default, human-readable on request; the level
//! comes from `RUST_LOG`.

use crate::config::{LogFormat, LogSettings};
use tracing_subscriber::{fmt, EnvFilter};

/// Install the global subscriber. Call once, from `main`; tests leave logging off.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stdout);
    match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // A line logged inside a span (the api's `request`) carries its
            // fields, the request id among them, under "span".
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}
