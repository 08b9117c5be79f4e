//! The MySQL/MariaDB pool and the schema migrations that the api and the writer
//! both run at start.

use crate::config::DatabaseSettings;
use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::MySql;
use std::time::Duration;

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

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
    let pool = MySqlPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to {shown}"))?;
    MIGRATOR
        .run(&pool)
        .await
        .with_context(|| format!("migrations failed on {shown}"))?;
    Ok(pool)
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
