//! What `/metrics` reads from the database at scrape time.

use super::StoreError;
use crate::store::{Reader, on};

/// What a scrape of `/metrics` reads from the database: the state of the service that survives a
/// restart (in-process counters start again from zero), and the two ages that show a stuck
/// worker before anyone misses a page.
#[derive(Debug, Default, PartialEq)]
pub struct Gauges {
    /// (state, severity, count) of incidents not resolved.
    pub open_incidents: Vec<(String, String, i64)>,
    /// (channel, status, count) of deliveries not delivered.
    pub deliveries: Vec<(String, String, i64)>,
    /// How long the oldest due delivery (pending or failed, next attempt in the past) has waited.
    pub outbox_lag_ms: i64,
    /// Incidents with an escalation timer set.
    pub escalations_pending: i64,
    /// How far past its due time the most overdue escalation is (0 when none is overdue).
    pub escalation_overdue_ms: i64,
}

pub(crate) async fn gauges(pool: &Reader, now: i64) -> Result<Gauges, StoreError> {
    let open_incidents = on!(pool, |c, Db| sqlx::query_as(
        "SELECT state, severity, COUNT(*) FROM incidents WHERE state != 'resolved'
         GROUP BY state, severity ORDER BY state, severity",
    )
    .fetch_all(c)
    .await)?;
    let deliveries = on!(pool, |c, Db| sqlx::query_as(
        "SELECT channel, status, COUNT(*) FROM deliveries WHERE status != 'delivered'
         GROUP BY channel, status ORDER BY channel, status",
    )
    .fetch_all(c)
    .await)?;
    let oldest_due: Option<i64> = on!(pool, |c, Db| sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM deliveries
         WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1",
    )
    .bind(now)
    .fetch_one(c)
    .await)?;
    let (escalations_pending, earliest_due): (i64, Option<i64>) = on!(pool, |c, Db| {
        sqlx::query_as(
        // An acknowledged incident's deadline is its acknowledgement's end, not an escalation.
        "SELECT COUNT(*), MIN(next_escalation_at) FROM incidents WHERE next_escalation_at IS NOT NULL \
         AND state <> 'acknowledged'",
    )
    .fetch_one(c)
    .await
    })?;
    Ok(Gauges {
        open_incidents,
        deliveries,
        outbox_lag_ms: oldest_due.map_or(0, |t| (now - t).max(0)),
        escalations_pending,
        escalation_overdue_ms: earliest_due.map_or(0, |t| (now - t).max(0)),
    })
}
