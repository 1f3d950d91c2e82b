//! Webhooks that come back in (PagerDuty, Slack): which ones were handled already, and which of
//! our incidents a vendor's incident id belongs to.

use sqlx::SqliteConnection;

use super::StoreError;
use crate::domain::IncidentId;

/// Whether an inbound webhook id was recorded (handled) before.
pub(crate) async fn webhook_seen(
    conn: &mut SqliteConnection,
    source: &str,
    webhook_id: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT 1 FROM inbound_webhooks WHERE source = ? AND webhook_id = ?",
    )
    .bind(source)
    .bind(webhook_id)
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// Records an inbound webhook id; false when it was seen before.
pub(crate) async fn first_sighting(
    conn: &mut SqliteConnection,
    source: &str,
    webhook_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query("INSERT INTO inbound_webhooks (source, webhook_id, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(source)
        .bind(webhook_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Our incident for a PagerDuty incident id remembered from an earlier event.
pub(crate) async fn incident_for_pagerduty(
    conn: &mut SqliteConnection,
    pagerduty_id: &str,
) -> Result<Option<IncidentId>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM incidents WHERE pagerduty_incident_id = ?")
            .bind(pagerduty_id)
            .fetch_optional(conn)
            .await?,
    )
}
