//! Listings for the API and web page, settings, and inbound webhook dedupe.

use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::incidents::{IncidentRow, decode_all};
use super::{CorruptRow, StoreError};
use crate::domain::{Incident, IncidentId, IncidentState, Severity};

#[derive(Debug, Default)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub severity: Option<Severity>,
    pub limit: i64,
    pub before_id: Option<i64>,
}

/// Newest first. A row that does not decode is listed as its error (logged), so that one bad
/// row shows as unreadable instead of hiding every other incident.
pub async fn list_incidents(
    pool: &SqlitePool,
    f: &IncidentFilter,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM incidents WHERE 1 = 1");
    if let Some(s) = &f.state {
        q.push(" AND state = ").push_bind(s);
    }
    if let Some(s) = &f.severity {
        q.push(" AND severity = ").push_bind(s);
    }
    if let Some(b) = f.before_id {
        q.push(" AND id < ").push_bind(b);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
    let rows: Vec<IncidentRow> = q.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(IncidentRow::decode).collect())
}

pub async fn incident(pool: &SqlitePool, id: i64) -> Result<Option<Incident>, StoreError> {
    let row: Option<IncidentRow> = sqlx::query_as("SELECT * FROM incidents WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(decode_all(row.into_iter().collect())?.pop())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TimelineEntry {
    pub at: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub via: Option<String>,
    pub detail: Option<String>,
}

pub async fn timeline(
    pool: &SqlitePool,
    incident_id: i64,
) -> Result<Vec<TimelineEntry>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT at, kind, actor, via, detail FROM timeline WHERE incident_id = ? ORDER BY at, id",
    )
    .bind(incident_id)
    .fetch_all(pool)
    .await?)
}

pub async fn count_events(pool: &SqlitePool) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(pool)
        .await?)
}

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

/// Whether an inbound webhook id was recorded (handled) before.
pub async fn webhook_seen(
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
pub async fn first_sighting(
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

/// Our incident for a PagerDuty incident id remembered from an earlier event.
pub async fn incident_for_pagerduty(
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

pub async fn gauges(pool: &SqlitePool, now: i64) -> Result<Gauges, StoreError> {
    let open_incidents = sqlx::query_as(
        "SELECT state, severity, COUNT(*) FROM incidents WHERE state != 'resolved'
         GROUP BY state, severity ORDER BY state, severity",
    )
    .fetch_all(pool)
    .await?;
    let deliveries = sqlx::query_as(
        "SELECT channel, status, COUNT(*) FROM deliveries WHERE status != 'delivered'
         GROUP BY channel, status ORDER BY channel, status",
    )
    .fetch_all(pool)
    .await?;
    let oldest_due: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM deliveries
         WHERE status IN ('pending', 'failed') AND next_attempt_at <= ?",
    )
    .bind(now)
    .fetch_one(pool)
    .await?;
    let (escalations_pending, earliest_due): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(next_escalation_at) FROM incidents WHERE next_escalation_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok(Gauges {
        open_incidents,
        deliveries,
        outbox_lag_ms: oldest_due.map_or(0, |t| (now - t).max(0)),
        escalations_pending,
        escalation_overdue_ms: earliest_due.map_or(0, |t| (now - t).max(0)),
    })
}
