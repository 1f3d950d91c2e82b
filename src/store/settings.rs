//! Values the service keeps for itself across restarts (`settings` table), such as the key that
//! signs acknowledgement links.

use crate::store::{WriteTx, on};

use super::{Store, StoreError};

pub(crate) async fn get_setting(
    conn: &mut WriteTx,
    key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(on!(conn, |c, Db| sqlx::query_scalar(
        "SELECT value FROM settings WHERE key = $1"
    )
    .bind(key)
    .fetch_optional(c)
    .await)?)
}

/// Stores `value` unless the key exists; returns the stored value (first writer wins).
pub(crate) async fn get_or_insert_setting(
    store: &Store,
    key: &str,
    value: &str,
) -> Result<String, StoreError> {
    let mut tx = store.begin_write().await?;
    on!(&mut tx, |c, Db| sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING"
    )
    .bind(key)
    .bind(value)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let stored = get_setting(&mut tx, key).await?;
    tx.commit().await?;
    stored.ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
}
