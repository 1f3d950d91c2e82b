//! Dropping what is kept only for a while.

use sqlx::SqlitePool;

use super::StoreError;

/// Drops raw bodies past the retention period; the event rows stay for counts and history.
pub async fn purge_raw_payloads(pool: &SqlitePool, older_than: i64) -> Result<u64, StoreError> {
    let r = sqlx::query(
        "UPDATE events SET body = NULL, details = NULL WHERE received_at < ? AND body IS NOT NULL",
    )
    .bind(older_than)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
