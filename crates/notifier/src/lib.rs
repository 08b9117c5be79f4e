//! `elkservice-notifier`: follows the change feed in the database and tells
//! webhooks when a service's problem begins and when it ends.
//!
//! Two steps, each a transaction on the notifier's tables (SQL in
//! `elkservice_core::store::notifications`):
//! - planning ([`plan`]): the feed entries after the notifier's cursor become
//!   notifications in an outbox, with the per-service tracks and the cursor
//!   moved in the same transaction, so a crash neither loses nor repeats one;
//! - delivering ([`deliver`]): each due notification is POSTed with an
//!   `Idempotency-Key` (its entry's Seq), retried with backoff, and marked
//!   sent or, after the last attempt, failed. A crash between a webhook's
//!   answer and the mark sends it again with the same key, which a receiver
//!   uses to drop the repeat.
//!
//! Several notifiers may run: a MySQL named lock, held on a connection of its
//! own, makes one of them the one that plans and delivers; the others wait to
//! take over.

pub mod channels;
pub mod deliver;
pub mod metrics;
pub mod plan;
pub mod receive;
pub mod settings;

use chrono::Utc;
use elkservice_core::config::{ConfigError, LogSettings};
use elkservice_core::ops::{self, Ready};
use elkservice_core::program::Program;
use elkservice_core::shutdown::stopping;
use elkservice_core::store::{feed, notifications, silences};
use elkservice_core::{db, ServiceName};
use metrics::Metrics;
use plan::{Action, Track};
use settings::Settings;
use sqlx::{Connection, MySqlPool};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// The named lock ([`db::lock`]) that makes one notifier the one that delivers.
const LOCK: &str = "notifier";
/// Feed entries planned per transaction.
const PLAN_BATCH: u32 = 500;

pub struct Notifier {
    settings: Settings,
    listener: TcpListener,
    metrics: Metrics,
}

impl Program for Notifier {
    const NAME: &'static str = "elkservice-notifier";
    type Settings = Settings;

    fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load(file)
    }

    fn log(settings: &Settings) -> &LogSettings {
        &settings.log
    }

    fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = elkservice_core::ops::bind(settings.notifier.listen)?;
        Ok(Notifier {
            settings,
            listener,
            metrics: Metrics::new(),
        })
    }

    fn port(&self) -> u16 {
        elkservice_core::ops::port(&self.listener)
    }

    /// Run until `shutdown` turns true.
    async fn run(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let Notifier {
            settings,
            listener,
            metrics,
        } = self;
        if settings.notifier.webhooks.is_empty() {
            // Legal (the feed is still followed), but surely not what was meant.
            tracing::warn!("no [[notifier.webhooks]] configured: nothing will be sent");
        }
        let database = metrics.database_connected.clone();
        let leader = metrics.leader.clone();
        let ready = Ready::default()
            .needs("database", &database)
            .and(move |detail| {
                let role = if leader.get() == 1 {
                    "delivering"
                } else {
                    "standing by"
                };
                detail.insert("role".into(), role.into());
                true
            });
        let server = ops::start(listener, metrics.registry.clone(), ready)?;
        let Some(pool) = db::connect_and_migrate_retrying(&settings.database, &shutdown).await
        else {
            server.stop(true).await;
            return Ok(());
        };
        database.set(1);
        let mut retry = db::retry(&shutdown);
        let lead = Lead {
            webhooks: settings
                .notifier
                .webhooks
                .iter()
                .map(|w| (w.id(), w.clone()))
                .collect(),
            settings,
            metrics,
        };
        let mut shutdown = shutdown;
        loop {
            let outcome = tokio::select! {
                _ = stopping(&mut shutdown) => break,
                outcome = lead.run(&pool) => outcome,
            };
            lead.metrics.leader.set(0);
            match outcome {
                // Another process delivers: ask again in a while.
                Ok(()) => {
                    retry.succeeded();
                    tokio::select! {
                        _ = stopping(&mut shutdown) => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                Err(e) => {
                    database.set(0);
                    if !retry.wait_after(&e).await {
                        break;
                    }
                    database.set(1);
                }
            }
        }
        pool.close().await;
        server.stop(true).await;
        Ok(())
    }
}

/// What the process that holds the lock does.
struct Lead {
    settings: Settings,
    /// The webhooks by their id in the outbox, made once.
    webhooks: HashMap<String, settings::Webhook>,
    metrics: Metrics,
}

impl Lead {
    /// Take the lock and, while it is held, plan and deliver. Returns Ok when
    /// another process holds the lock.
    async fn run(&self, pool: &MySqlPool) -> Result<(), sqlx::Error> {
        let mut lock = pool.acquire().await?.detach();
        if !db::lock(&mut lock, LOCK, 0).await? {
            let _ = lock.close().await;
            return Ok(());
        }
        self.metrics.leader.set(1);
        tracing::info!("delivering (this process holds the notifier lock)");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(self.settings.notifier.timeout_secs))
            .build()
            .expect("an HTTP client");
        let mut deliverer = deliver::Deliverer::new(
            pool.clone(),
            client,
            self.webhooks.clone(),
            self.settings.notifier.clone(),
            self.metrics.clone(),
        );
        let mut tick = tokio::time::interval(Duration::from_millis(self.settings.notifier.poll_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.plan(pool).await?;
                    deliverer.round().await?;
                }
                // The lock lives as long as its connection: a lost connection
                // is a lost lock, and another process may already deliver.
                _ = beat.tick() => { lock.ping().await?; }
            }
        }
    }

    /// Turn the feed entries after the cursor into notifications.
    async fn plan(&self, pool: &MySqlPool) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        let end = feed::last_seq(&mut tx).await?;
        let cursor = notifications::cursor(&mut tx, end).await?;
        let changes = feed::after(&mut tx, cursor, PLAN_BATCH).await?;
        let Some(last) = changes.last() else {
            self.wake(&mut tx).await?;
            return tx.commit().await;
        };
        let from = changes[0].at;
        let silences = silences::active(&mut tx, from).await?;
        let mut tracks: HashMap<(String, ServiceName), Track> = HashMap::new();
        for change in &changes {
            let silenced = silences.iter().any(|s| {
                s.pattern.matches(change.name.as_str())
                    && s.created_at <= change.at
                    && change.at < s.until
            });
            for (id, w) in &self.webhooks {
                if !w.services.matches(change.name.as_str()) {
                    continue;
                }
                let key = (id.clone(), change.name.clone());
                if !tracks.contains_key(&key) {
                    let stored = notifications::track(&mut tx, &key.0, key.1.as_str()).await?;
                    let track = stored
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or_default();
                    tracks.insert(key.clone(), track);
                }
                let track = tracks.get_mut(&key).expect("just loaded");
                for action in plan::plan(w, track, change, silenced) {
                    match action {
                        Action::Queue(n) => notifications::queue(&mut tx, &n).await?,
                        Action::Cancel(k) => notifications::cancel(&mut tx, &key.0, &k).await?,
                    }
                }
            }
        }
        for ((webhook, name), track) in &tracks {
            // An empty track is what a missing one reads as: its row goes
            // (a deleted service's, and one whose problems are all over).
            if *track == Track::default() {
                notifications::forget_track(&mut tx, webhook, name.as_str()).await?;
                continue;
            }
            let json = serde_json::to_string(track).expect("a track serialises");
            let wake_at = self.webhooks.get(webhook).and_then(|w| track.wake_at(w));
            notifications::save_track(&mut tx, webhook, name.as_str(), &json, wake_at).await?;
        }
        notifications::advance(&mut tx, last.seq).await?;
        self.wake(&mut tx).await?;
        tx.commit().await?;
        self.metrics.planned.inc_by(changes.len() as u64);
        tracing::debug!(entries = changes.len(), through = last.seq, "planned");
        Ok(())
    }

    /// Send the stable messages of services that stopped flapping.
    async fn wake(&self, tx: &mut sqlx::MySqlConnection) -> Result<(), sqlx::Error> {
        let now = Utc::now();
        for (webhook, service, stored) in notifications::waking(tx, now).await? {
            let mut track: Track = serde_json::from_str(&stored).unwrap_or_default();
            let Some(w) = self.webhooks.get(&webhook) else {
                // A webhook no longer configured: nothing will wake it.
                notifications::save_track(tx, &webhook, &service, &stored, None).await?;
                continue;
            };
            if let Some(Action::Queue(n)) = plan::wake(w, &mut track, &service, now) {
                notifications::queue(tx, &n).await?;
            }
            let json = serde_json::to_string(&track).expect("a track serialises");
            notifications::save_track(tx, &webhook, &service, &json, track.wake_at(w)).await?;
        }
        Ok(())
    }
}
