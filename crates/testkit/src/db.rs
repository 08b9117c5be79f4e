//! A database of each test's own on the real MariaDB, dropped with its guard.

use crate::{block_on_thread, short_id, unique};
use sqlx::{Connection, MySqlConnection};

/// The server part of DATABASE_URL (default: local MariaDB as root), without a database.
pub fn mysql_server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/elkservice".into());
    let (scheme, rest) = url.split_once("://").expect("DATABASE_URL is scheme://...");
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// A database name that no one uses; dropped with the guard.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// 12 hex digits unique to this database.
    pub fn short_id(&self) -> &str {
        short_id(&self.name)
    }

    /// A name and URL only: the program under test creates the database.
    pub fn new() -> Self {
        let name = unique("elktest");
        let url = format!("{}/{name}", mysql_server_url());
        TestDatabase { name, url }
    }

    pub async fn connect(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                "cannot connect to {}: {e}\nStart the services with: eval \"$(scripts/services)\"",
                self.url
            )
            })
    }
}

impl TestDatabase {
    /// End every connection open on this database, as a database restart or
    /// failover would; returns how many there were.
    pub async fn kill_connections(&self) -> usize {
        let mut admin = MySqlConnection::connect(&mysql_server_url())
            .await
            .expect("the database server");
        kill_connections_to(&mut admin, &self.name)
            .await
            .expect("the process list")
    }
}

/// Kill the connections (other than `admin`) open on the database `name`;
/// returns how many there were.
async fn kill_connections_to(
    admin: &mut MySqlConnection,
    name: &str,
) -> Result<usize, sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
    )
    .bind(name)
    .fetch_all(&mut *admin)
    .await?;
    for id in &ids {
        // One may end by itself meanwhile.
        let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
            .execute(&mut *admin)
            .await;
    }
    Ok(ids.len())
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_thread(async move {
            let Ok(mut conn) = MySqlConnection::connect(&mysql_server_url()).await else {
                return;
            };
            // A connection still in a transaction on this database (a pool of
            // the failing test's, whose runtime is busy here) would hold DROP
            // DATABASE on its metadata lock forever: end those first.
            let _ = kill_connections_to(&mut conn, &name).await;
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                .execute(&mut conn)
                .await;
        });
    }
}

/// Runs SQL statements on the server when dropped: cleanup that must happen
/// even when a test fails (dropping a user it created, say).
pub struct SqlOnDrop(pub Vec<String>);

impl Drop for SqlOnDrop {
    fn drop(&mut self) {
        let statements = std::mem::take(&mut self.0);
        block_on_thread(async move {
            if let Ok(mut conn) = MySqlConnection::connect(&mysql_server_url()).await {
                for sql in statements {
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                }
            }
        });
    }
}
