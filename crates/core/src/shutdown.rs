//! Graceful shutdown: one `watch` flag that SIGTERM or Ctrl-C raises, passed to
//! every task, which finishes what it has in hand when it sees it.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// A flag raised on SIGTERM or Ctrl-C. Call from inside the runtime.
pub fn on_signal() -> watch::Receiver<bool> {
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping");
        let _ = stop.send(true);
    });
    shutdown
}

/// Resolves once shutdown has been asked for (or its sender is gone).
pub async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
