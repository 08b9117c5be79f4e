//! Retrying until it works or the program is asked to stop: the one loop
//! behind every reconnect (broker, database, container engine).
//!
//! A caller runs its attempt, calls [`Retry::succeeded`] once it is connected
//! (so the next outage starts from the first delay again), and on a failure
//! calls [`Retry::wait_after`], which logs the error, waits out the backoff and
//! says whether to try again.

use crate::backoff::Backoff;
use crate::shutdown::stopping;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

pub struct Retry {
    what: &'static str,
    backoff: Backoff,
    shutdown: watch::Receiver<bool>,
}

impl Retry {
    /// `what` names the thing retried in the log ("broker session ended", say).
    pub fn new(
        what: &'static str,
        first: Duration,
        max: Duration,
        shutdown: &watch::Receiver<bool>,
    ) -> Self {
        Retry {
            what,
            backoff: Backoff::new(first, max),
            shutdown: shutdown.clone(),
        }
    }

    /// The attempt got through: the next failure waits the first delay again.
    pub fn succeeded(&mut self) {
        self.backoff.reset();
    }

    /// Log `error` and wait out the backoff. False when shutdown came first.
    pub async fn wait_after(&mut self, error: &(dyn Display + Sync)) -> bool {
        self.wait_after_doing(error, std::future::pending()).await
    }

    /// As [`Retry::wait_after`], running `meanwhile` during the wait (it is
    /// dropped when the wait ends): a publisher keeps taking observations, say.
    pub async fn wait_after_doing(
        &mut self,
        error: &(dyn Display + Sync),
        meanwhile: impl Future<Output = ()>,
    ) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        let delay = self.backoff.next_delay();
        tracing::warn!(
            error = %error,
            retry_in_ms = delay.as_millis() as u64,
            "{}", self.what
        );
        let meanwhile = async {
            meanwhile.await;
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stopping(&mut self.shutdown) => false,
            _ = meanwhile => unreachable!("never completes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_the_backoff_and_stops_at_once_on_shutdown() {
        let (stop, shutdown) = watch::channel(false);
        let ms = Duration::from_millis;
        let mut retry = Retry::new("test", ms(100), ms(1000), &shutdown);
        let started = tokio::time::Instant::now();
        assert!(retry.wait_after(&"first").await);
        assert!(retry.wait_after(&"second").await);
        assert_eq!(started.elapsed(), ms(300));
        retry.succeeded();
        let started = tokio::time::Instant::now();
        assert!(retry.wait_after(&"after success").await);
        assert_eq!(started.elapsed(), ms(100));

        let waiting = tokio::spawn(async move { retry.wait_after(&"stopping").await });
        stop.send(true).unwrap();
        assert!(!waiting.await.unwrap());
    }
}
