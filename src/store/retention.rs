//! Dropping what is kept only for a while.

use super::{Store, StoreError};

/// Drops raw bodies past the retention period; the event rows stay for counts and history.
pub(crate) async fn purge_raw_payloads(store: &Store, older_than: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let r = sqlx::query(
        "UPDATE events SET body = NULL, details = NULL WHERE received_at < ? AND body IS NOT NULL",
    )
    .bind(older_than)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(r.rows_affected())
}
