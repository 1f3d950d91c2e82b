//! Webhooks that come back in (PagerDuty, Slack): which ones were handled already, and which of
//! our incidents a vendor's incident id belongs to.

use super::StoreError;
use crate::domain::IncidentId;
use crate::store::{WriteTx, on};

/// Whether an inbound webhook id was recorded (handled) before.
pub(crate) async fn webhook_seen(
    conn: &mut WriteTx,
    source: &str,
    webhook_id: &str,
) -> Result<bool, StoreError> {
    Ok(on!(conn, |c, Db| sqlx::query_scalar::<_, i64>(
        "SELECT received_at FROM inbound_webhooks WHERE source = $1 AND webhook_id = $2",
    )
    .bind(source)
    .bind(webhook_id)
    .fetch_optional(c)
    .await)?
    .is_some())
}

/// Records an inbound webhook id; false when it was seen before.
pub(crate) async fn first_sighting(
    conn: &mut WriteTx,
    source: &str,
    webhook_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = on!(conn, |c, Db| {
        sqlx::query("INSERT INTO inbound_webhooks (source, webhook_id, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(source)
        .bind(webhook_id)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected())
    })?;
    Ok(r == 1)
}

/// Our incident for a PagerDuty incident id remembered from an earlier event.
pub(crate) async fn incident_for_pagerduty(
    conn: &mut WriteTx,
    pagerduty_id: &str,
) -> Result<Option<IncidentId>, StoreError> {
    Ok(on!(conn, |c, Db| sqlx::query_scalar(
        "SELECT id FROM incidents WHERE pagerduty_incident_id = $1"
    )
    .bind(pagerduty_id)
    .fetch_optional(c)
    .await)?)
}
