//! What the pipeline watch (`crate::watch`) reads and records: when Sentry last called us, when
//! the last canary arrived and how late, and which interval starts were re-notified.

use super::incidents::{IncidentRow, decode_all};
use super::{Reader, StoreError, WriteTx, on};
use crate::domain::{Incident, Severity};

/// `watch_state` rows.
pub(crate) const LAST_CANARY: &str = "last_canary";
pub(crate) const WATCH_STARTED: &str = "watch_started";

/// One `watch_state` row: when, and a value (a canary's latency in ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub at: i64,
    pub value: Option<i64>,
}

/// Records `name` at `at`, unless a later one is on record (replicas' batches may commit out of
/// order).
pub(crate) async fn mark(
    tx: &mut WriteTx,
    name: &str,
    at: i64,
    value: Option<i64>,
) -> Result<(), StoreError> {
    on!(&mut *tx, |c, Db| sqlx::query(
        "INSERT INTO watch_state (name, at, value) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET at = excluded.at, value = excluded.value \
         WHERE excluded.at >= watch_state.at",
    )
    .bind(name)
    .bind(at)
    .bind(value)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records `name` at `at` only if it is not on record: when watching began.
pub(crate) async fn mark_once(tx: &mut WriteTx, name: &str, at: i64) -> Result<(), StoreError> {
    on!(&mut *tx, |c, Db| sqlx::query(
        "INSERT INTO watch_state (name, at, value) VALUES ($1, $2, NULL) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// When Sentry's latest webhook was stored (any resource, either route). Read from `events`,
/// newest first along `events_received_at`: the intake path writes nothing extra for the
/// heartbeat, and the few rows of our own (test alerts, the watch's) are skipped over.
pub(crate) async fn last_webhook(reader: &Reader) -> Result<Option<i64>, StoreError> {
    Ok(on!(reader, |c, Db| sqlx::query_scalar(
        "SELECT received_at FROM events WHERE source IN ('sentry', 'sentry-legacy') \
         ORDER BY received_at DESC LIMIT 1",
    )
    .fetch_optional(c)
    .await)?)
}

pub(crate) async fn read(reader: &Reader, name: &str) -> Result<Option<Mark>, StoreError> {
    let row: Option<(i64, Option<i64>)> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT at, value FROM watch_state WHERE name = $1"
    )
    .bind(name)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(at, value)| Mark { at, value }))
}

/// Whether the start `start_at` of interval `name` was re-notified already.
pub(crate) async fn interval_start_handled(
    reader: &Reader,
    name: &str,
    start_at: i64,
) -> Result<bool, StoreError> {
    let found: Option<i64> = on!(reader, |c, Db| sqlx::query_scalar(
        "SELECT start_at FROM interval_starts WHERE interval = $1 AND start_at = $2"
    )
    .bind(name)
    .bind(start_at)
    .fetch_optional(c)
    .await)?;
    Ok(found.is_some())
}

/// Takes the start `start_at` of interval `name` for re-notifying `incidents` incidents: true
/// for the one caller that records it first, across restarts and replicas.
pub(crate) async fn claim_interval_start(
    tx: &mut WriteTx,
    name: &str,
    start_at: i64,
    now: i64,
    incidents: usize,
) -> Result<bool, StoreError> {
    let taken = on!(&mut *tx, |c, Db| sqlx::query(
        "INSERT INTO interval_starts (interval, start_at, handled_at, incidents) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(start_at)
    .bind(now)
    .bind(i64::try_from(incidents).unwrap_or(i64::MAX))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(taken == 1)
}

/// The open issues (triggered or acknowledged, not muted, not silenced, not in a storm that
/// speaks for them) of these severities, oldest first, at most `limit`.
pub(crate) async fn open_of_severities(
    tx: &mut WriteTx,
    severities: &[Severity],
    limit: i64,
) -> Result<Vec<Incident>, StoreError> {
    let mut out = Vec::new();
    for severity in severities {
        let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| {
            sqlx::query_as(
            "SELECT * FROM incidents WHERE severity = $1 AND state IN ('triggered', 'acknowledged') \
             AND silenced_by IS NULL AND storm_id IS NULL ORDER BY opened_at, id LIMIT $2",
        )
        .bind(severity)
        .bind(limit)
        .fetch_all(c)
        .await
        })?;
        out.extend(decode_all(rows, tx.corrupt())?);
    }
    Ok(out)
}

/// The open incident the watch raised for `kind` (`heartbeat`, `canary`, `contract`), if any.
pub(crate) async fn open_watch_incident(
    reader: &Reader,
    kind: &str,
) -> Result<Option<Incident>, StoreError> {
    // Keys are `watch:{kind}:{outage}`. Open incidents are few and indexed by state; a prefix
    // range on the key would depend on PostgreSQL's collation, `LIKE` does not.
    let rows: Vec<IncidentRow> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT * FROM incidents WHERE state IN ('triggered', 'acknowledged', 'muted') \
         AND incident_key LIKE $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(format!("watch:{kind}:%"))
    .fetch_all(c)
    .await)?;
    Ok(decode_all(rows, reader.corrupt())?.pop())
}
