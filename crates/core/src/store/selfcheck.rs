//! The selfcheck's table: the nonces of selfchecks that went through the
//! broker and a writer into the database.

use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

/// Record that the selfchecks `nonces` arrived (a nonce seen twice, after a
/// redelivery, is the same arrival).
pub async fn arrived(conn: &mut MySqlConnection, nonces: &[u64]) -> Result<(), sqlx::Error> {
    if nonces.is_empty() {
        return Ok(());
    }
    let mut q: QueryBuilder<MySql> =
        QueryBuilder::new("INSERT IGNORE INTO elkservice_selfcheck (nonce, applied_at) ");
    q.push_values(nonces, |mut row, nonce| {
        row.push_bind(*nonce).push("NOW(6)");
    });
    q.build().execute(conn).await?;
    Ok(())
}

/// Whether the selfcheck `nonce` has arrived; once it has, it is deleted,
/// with any left by selfchecks that arrived too late to be looked for.
pub async fn take(pool: &MySqlPool, nonce: u64) -> Result<bool, sqlx::Error> {
    let found = sqlx::query("DELETE FROM elkservice_selfcheck WHERE nonce = ?")
        .bind(nonce)
        .execute(pool)
        .await?
        .rows_affected()
        > 0;
    if found {
        sqlx::query("DELETE FROM elkservice_selfcheck WHERE applied_at < NOW(6) - INTERVAL 1 HOUR")
            .execute(pool)
            .await?;
    }
    Ok(found)
}
