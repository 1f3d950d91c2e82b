//! Values the service keeps for itself across restarts (`settings` table), such as the key that
//! signs acknowledgement links.

use sqlx::SqliteExecutor;

use super::{Store, StoreError};

pub(crate) async fn get_setting(
    conn: impl SqliteExecutor<'_>,
    key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(conn)
            .await?,
    )
}

/// Stores `value` unless the key exists; returns the stored value (first writer wins).
pub(crate) async fn get_or_insert_setting(
    store: &Store,
    key: &str,
    value: &str,
) -> Result<String, StoreError> {
    let mut tx = store.begin_write().await?;
    sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    let stored = get_setting(&mut *tx, key).await?;
    tx.commit().await?;
    stored.ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
}
