//! Values the service keeps for itself across restarts (`settings` table), such as the key that
//! signs acknowledgement links.

use sqlx::SqlitePool;

use super::StoreError;

pub async fn get_setting(pool: &SqlitePool, key: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(pool)
            .await?,
    )
}

/// Stores `value` unless the key exists; returns the stored value (first writer wins).
pub async fn get_or_insert_setting(
    pool: &SqlitePool,
    key: &str,
    value: &str,
) -> Result<String, StoreError> {
    sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
    get_setting(pool, key)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
}
