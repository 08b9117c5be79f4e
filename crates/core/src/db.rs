//! The MySQL/MariaDB pool and the schema migrations that the api and the writer
//! both run at start.

use crate::config::DatabaseSettings;
use crate::retry::Retry;
use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Connection, MySql, MySqlConnection};
use std::str::FromStr;
use std::time::Duration;

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The backoff while the database does not answer: 0.2 s doubling to 10 s,
/// until `shutdown` says stop.
pub fn retry(shutdown: &tokio::sync::watch::Receiver<bool>) -> Retry {
    Retry::new(
        "database not ready",
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(10),
        shutdown,
    )
}

/// [`connect_and_migrate`], again and again with [`retry`]'s backoff while
/// the database is not ready (a program may start before it); None once
/// `shutdown` says stop.
pub async fn connect_and_migrate_retrying(
    settings: &DatabaseSettings,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Option<MySqlPool> {
    let mut retry = retry(shutdown);
    loop {
        match connect_and_migrate(settings).await {
            Ok(pool) => return Some(pool),
            Err(e) => {
                if !retry.wait_after(&format!("{e:#}")).await {
                    return None;
                }
            }
        }
    }
}

/// Connect (creating the database if it does not exist yet) and bring the schema
/// up to date. Safe when several processes start at once: the migrator holds a
/// database lock while it runs.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> anyhow::Result<MySqlPool> {
    let url = &settings.url;
    let shown = redact(url);
    if !MySql::database_exists(url)
        .await
        .with_context(|| format!("cannot reach the database at {shown}"))?
    {
        // Two processes may race here; the second one's "exists" error is harmless.
        if let Err(e) = MySql::create_database(url).await {
            if !MySql::database_exists(url).await.unwrap_or(false) {
                return Err(e).with_context(|| format!("cannot create the database {shown}"));
            }
        }
    }
    let options = MySqlConnectOptions::from_str(url)
        .with_context(|| format!("DATABASE_URL is not a MySQL URL: {shown}"))?
        .statement_cache_capacity(STATEMENT_CACHE);
    let pool = MySqlPoolOptions::new()
        .after_connect(|conn, _| Box::pin(announce(conn)))
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to {shown}"))?;
    migrate(&pool)
        .await
        .with_context(|| format!("migrations failed on {shown}"))?;
    Ok(pool)
}

/// Prepared statements each connection keeps: the multi-row statements come
/// in up to 73 shapes per table (see `store::columns::statement_chunks`).
pub const STATEMENT_CACHE: usize = 512;

/// A connection of the caller's own, outside `pool` but with its options,
/// made within the pool's acquire timeout (so it fails as a wait for the
/// pool would): for work that must not queue behind the pool's other users.
pub async fn connect_like(pool: &MySqlPool) -> Result<MySqlConnection, sqlx::Error> {
    let wait = pool.options().get_acquire_timeout();
    let mut conn =
        tokio::time::timeout(wait, MySqlConnection::connect_with(&pool.connect_options()))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
    announce(&mut conn).await?;
    Ok(conn)
}

/// Mark a connection as elkservice's own: its programs record their changes
/// in the feed themselves, so the table's triggers leave them to it (see
/// `store::unannounced`). Every connection that writes the table is made by
/// [`connect_and_migrate`]'s pool or by [`connect_like`], which both do this.
async fn announce(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET @elkservice_announced = 1")
        .execute(conn)
        .await
        .map(drop)
}

/// The connection in `slot`, for a program's serial transactions outside its
/// pool (the api's committer, the writer's batches): made first if there is
/// none ([`connect_like`]), with autocommit off, so that the first statement
/// opens a transaction with no `BEGIN` round trip. After a failed
/// transaction, [`roll_back_or_drop`].
///
/// Foreign-key checks are off on it too. Its users lock a service's row
/// (`FOR UPDATE`) before they write that service's history, so the one thing
/// the history's foreign key checks, that the row exists, holds until commit;
/// InnoDB would look the row up again for every history row, about a tenth
/// of what inserting one costs. Nothing on this connection deletes a row, so
/// no cascade is lost.
pub async fn own_connection<'a>(
    slot: &'a mut Option<MySqlConnection>,
    pool: &MySqlPool,
) -> Result<&'a mut MySqlConnection, sqlx::Error> {
    if slot.is_none() {
        let mut c = connect_like(pool).await?;
        sqlx::query("SET autocommit = 0, foreign_key_checks = 0")
            .execute(&mut c)
            .await?;
        *slot = Some(c);
    }
    Ok(slot.as_mut().expect("just made"))
}

/// Commit the transaction open on [`own_connection`]'s connection (with
/// autocommit off, nothing else ends it).
pub async fn commit(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::query("COMMIT").execute(conn).await.map(drop)
}

/// End the failed transaction on [`own_connection`]'s connection; one that
/// cannot even roll back is dropped, and the next use connects afresh.
pub async fn roll_back_or_drop(slot: &mut Option<MySqlConnection>) {
    if let Some(c) = slot {
        if sqlx::query("ROLLBACK").execute(c).await.is_err() {
            *slot = None;
        }
    }
}

/// How long a starting process waits for another one's migrations.
const MIGRATION_LOCK_SECS: u32 = 120;

/// Run the migrations while holding a server-wide named lock for this database.
///
/// sqlx's own migration lock is `GET_LOCK(name, -1)` with the result ignored;
/// MariaDB answers a negative timeout with NULL at once instead of waiting, so
/// two processes starting together would both apply the same migration.
pub async fn migrate(pool: &MySqlPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    anyhow::ensure!(
        lock(&mut conn, "migrate", MIGRATION_LOCK_SECS).await?,
        "another process held the migration lock for over {MIGRATION_LOCK_SECS} s"
    );
    // run_direct, not run: run's `Acquire` bound makes this future not provably
    // Send (a known sqlx limitation), and the writer runs it on a spawned task.
    let result = MIGRATOR.run_direct(&mut *conn).await;
    unlock(&mut conn, "migrate").await?;
    Ok(result?)
}

/// The name of this database's lock for `purpose`. Lock names are
/// server-wide and at most 64 characters: they are keyed by a digest of the
/// database's name, so that deployments sharing a server do not wait for
/// each other. (The notifier's lock has had this name from the start, so
/// old and new notifiers exclude each other during an upgrade.)
fn lock_name(purpose: &str) -> String {
    debug_assert!(purpose.len() <= 13, "a lock name has at most 64 characters");
    format!("CONCAT('elkservice-{purpose}-', SHA1(DATABASE()))")
}

/// Take this database's named lock for `purpose` (MariaDB's `GET_LOCK`,
/// held by the connection until [`unlock`] or until it closes), waiting up
/// to `wait_secs`; false if another connection kept it.
pub async fn lock(
    conn: &mut MySqlConnection,
    purpose: &'static str,
    wait_secs: u32,
) -> Result<bool, sqlx::Error> {
    let got: Option<i64> =
        sqlx::query_scalar(&format!("SELECT GET_LOCK({}, ?)", lock_name(purpose)))
            .bind(wait_secs)
            .fetch_one(conn)
            .await?;
    Ok(got == Some(1))
}

/// Release what [`lock`] took.
pub async fn unlock(conn: &mut MySqlConnection, purpose: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DO RELEASE_LOCK({})", lock_name(purpose)))
        .execute(conn)
        .await
        .map(drop)
}

/// The URL with its password hidden, for logs and error messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((cred, host)) => {
                let user = cred.split(':').next().unwrap_or("");
                let hidden = if cred.contains(':') { ":***" } else { "" };
                format!("{scheme}://{user}{hidden}@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("mysql://u:secret@h:3306/db"),
            "mysql://u:***@h:3306/db"
        );
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact("mysql://h/db"), "mysql://h/db");
    }
}
