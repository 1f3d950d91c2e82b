//! Digest claims, and the read queries behind the daily digest and the weekly ops summary.
//!
//! # Claiming a period
//!
//! A digest is sent only by whoever claims its `(kind, period_end, recipient)` row, and the claim
//! is one `INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING` statement: SQLite runs it
//! atomically, so of two runs racing the same period (a second process, a second instance on the
//! same file, a tick racing the start-up catch-up) exactly one gets a row back. The claim is
//! committed before anything is sent and no transaction is held across the send.
//!
//! A claimed row may be claimed again only when
//! - its send failed with a retryable error and `retry_at` has come (bounded by
//!   `max_attempts`), or
//! - its holder vanished: no outcome recorded and `claimed_at` older than the lease (the process
//!   crashed or was killed mid-send).
//!
//! This is at-least-once, not exactly-once: if a process crashes after the SMTP server accepted
//! the message but before [`mark_sent`] committed, the lease runs out and the digest is sent a
//! second time. Nothing on the SMTP side can make that idempotent, and a duplicate digest is
//! far better than a lost one.

use super::{Store, StoreError};
use crate::domain::IncidentId;
use crate::store::{Reader, WriteTx, dialect_sql, on};

/// Identifies one digest row: one kind, one period, one recipient channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodKey<'a> {
    /// `daily`, `weekly`, or `daily:manual` / `weekly:manual` for sends by hand.
    pub kind: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    /// The channel name in `routing.yaml` (not an address: a channel may have several).
    pub recipient: &'a str,
}

/// One row of `digests`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct DigestRecord {
    pub kind: String,
    pub period_start: i64,
    pub period_end: i64,
    pub recipient: String,
    pub claimed_at: i64,
    pub sent_at: Option<i64>,
    pub incidents: i64,
    pub error: Option<String>,
    pub attempts: i64,
    pub retry_at: Option<i64>,
    pub response: Option<String>,
}

/// When a held claim may be taken over.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRules {
    pub now: i64,
    /// A claim with no recorded outcome older than this is presumed dead (crashed holder).
    pub lease_ms: i64,
    /// No claim (first or later) beyond this many attempts.
    pub max_attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// This caller owns the period now and must send, then record the outcome.
    /// `claimed_at` is the fencing token for [`mark_failed`].
    Claimed { claimed_at: i64, attempt: i64 },
    /// Someone else holds or settled it; the row as it stands.
    Held(DigestRecord),
}

/// Claims a period for sending (see the module docs for when a held claim can be taken over).
pub async fn claim(
    store: &Store,
    key: &PeriodKey<'_>,
    rules: ClaimRules,
) -> Result<ClaimResult, StoreError> {
    let mut tx = store.begin_write().await?;
    let claimed: Option<(i64, i64)> = on!(&mut tx, |c, Db| {
        sqlx::query_as(
        "INSERT INTO digests (kind, period_start, period_end, recipient, claimed_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, 1) \
         ON CONFLICT (kind, period_end, recipient) DO UPDATE SET \
             claimed_at = excluded.claimed_at, attempts = digests.attempts + 1, \
             error = NULL, retry_at = NULL \
         WHERE digests.sent_at IS NULL AND digests.attempts < $7 AND ( \
             (digests.error IS NOT NULL AND digests.retry_at IS NOT NULL AND digests.retry_at <= $5) \
             OR (digests.error IS NULL AND digests.claimed_at <= $5 - $6)) \
         RETURNING claimed_at, attempts",
    )
    .bind(key.kind)
    .bind(key.period_start)
    .bind(key.period_end)
    .bind(key.recipient)
    .bind(rules.now)
    .bind(rules.lease_ms)
    .bind(rules.max_attempts)
    .fetch_optional(c)
    .await
    })?;
    if let Some((claimed_at, attempt)) = claimed {
        tx.commit().await?;
        return Ok(ClaimResult::Claimed {
            claimed_at,
            attempt,
        });
    }
    // Read back in the same transaction: it sees the row that just refused the claim.
    let held = record(&mut tx, key.kind, key.period_end, key.recipient).await?;
    tx.commit().await?;
    match held {
        Some(row) => Ok(ClaimResult::Held(row)),
        None => Err(StoreError::Corrupt(format!(
            "digest claim for {} ending {} to {} neither inserted nor found",
            key.kind, key.period_end, key.recipient
        ))),
    }
}

/// Records a settled period: sent, or deliberately not sent (`response` says which).
///
/// Not fenced on `claimed_at`: the mail is out, so the period is settled whoever holds the
/// claim now. Returns false when the row was already settled, i.e. another holder took over an
/// expired lease and also sent (a duplicate, which the caller logs).
pub(crate) async fn mark_sent(
    store: &Store,
    key: &PeriodKey<'_>,
    sent_at: i64,
    incidents: i64,
    response: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let done = on!(&mut tx, |c, Db| sqlx::query(
        "UPDATE digests SET sent_at = $1, incidents = $2, response = $3, error = NULL, \
         retry_at = NULL \
         WHERE kind = $4 AND period_end = $5 AND recipient = $6 AND sent_at IS NULL",
    )
    .bind(sent_at)
    .bind(incidents)
    .bind(response)
    .bind(key.kind)
    .bind(key.period_end)
    .bind(key.recipient)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Records a failed send of the claim taken at `claimed_at`; `retry_at` None means give up.
///
/// Fenced on `claimed_at`: if our lease ran out and another holder re-claimed the period, its
/// attempt is the live one and our failure must not overwrite it. Returns false in that case.
pub(crate) async fn mark_failed(
    store: &Store,
    key: &PeriodKey<'_>,
    claimed_at: i64,
    error: &str,
    retry_at: Option<i64>,
    incidents: i64,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let done = on!(&mut tx, |c, Db| sqlx::query(
        "UPDATE digests SET error = $1, retry_at = $2, incidents = $3 \
         WHERE kind = $4 AND period_end = $5 AND recipient = $6 AND sent_at IS NULL \
           AND claimed_at = $7",
    )
    .bind(error)
    .bind(retry_at)
    .bind(incidents)
    .bind(key.kind)
    .bind(key.period_end)
    .bind(key.recipient)
    .bind(claimed_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(done == 1)
}

pub(crate) async fn record(
    conn: &mut WriteTx,
    kind: &str,
    period_end: i64,
    recipient: &str,
) -> Result<Option<DigestRecord>, StoreError> {
    Ok(on!(conn, |c, Db| sqlx::query_as(
        "SELECT kind, period_start, period_end, recipient, claimed_at, sent_at, incidents, \
         error, attempts, retry_at, response \
         FROM digests WHERE kind = $1 AND period_end = $2 AND recipient = $3",
    )
    .bind(kind)
    .bind(period_end)
    .bind(recipient)
    .fetch_optional(c)
    .await)?)
}

/// The end of the latest period of `kind` settled for `recipient` (sent, or deliberately not
/// sent because it was empty).
pub(crate) async fn last_settled_end(
    pool: &Reader,
    kind: &str,
    recipient: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(on!(pool, |c, Db| {
        sqlx::query_scalar(
        "SELECT MAX(period_end) FROM digests WHERE kind = $1 AND recipient = $2 AND sent_at IS NOT NULL",
    )
    .bind(kind)
    .bind(recipient)
    .fetch_one(c)
    .await
    })?)
}

/// The newest digest rows first (for the API, the web page and tests).
pub(crate) async fn recent(pool: &Reader, limit: i64) -> Result<Vec<DigestRecord>, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_as(
        "SELECT kind, period_start, period_end, recipient, claimed_at, sent_at, incidents, \
         error, attempts, retry_at, response \
         FROM digests ORDER BY period_end DESC, kind, recipient LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

// ---------- what the digests report ----------

/// An incident as the daily digest lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct DigestIncident {
    pub id: IncidentId,
    pub title: String,
    pub project: Option<String>,
    pub state: String,
    pub rule: Option<String>,
    /// Worst value seen over the incident's life (lowest Apdex, highest duration).
    pub metric_value: Option<f64>,
    /// What the metric measures, from the details stored with its alerts (`intake::MetricKind`
    /// by its stored word); `None` when they carry none.
    pub metric_kind: Option<String>,
    /// Alerts received for it in the period, and the first and last of them.
    pub event_count: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub sentry_url: Option<String>,
}

/// Incidents of `severity` that received alerts in `[start, end)`, in any state, with the
/// period's count of alerts. Ordered by project, then noisiest first.
///
/// Read from the stored events, not from `incidents.last_seen`: a digest built late (a retry
/// after the mail server was down, a catch-up at start) must still list an incident that kept
/// firing after the period ended.
pub(crate) async fn incidents_seen(
    pool: &Reader,
    severity: &str,
    start: i64,
    end: i64,
) -> Result<Vec<DigestIncident>, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_as(dialect_sql!(Db:
        "SELECT i.id, i.title, i.project, i.state, i.rule, i.metric_value, MAX("
        [sqlite: "json_extract(e.details, '$.metric.kind')",
         postgres: "e.details::json #>> '{metric,kind}'"]
        ") AS metric_kind, \
           COUNT(*) AS event_count, MIN(e.received_at) AS first_seen, \
           MAX(e.received_at) AS last_seen, i.sentry_url \
         FROM events e JOIN incidents i ON i.id = e.incident_id \
         WHERE i.severity = $1 AND e.received_at >= $2 AND e.received_at < $3 \
           AND e.severity IS NOT NULL \
         GROUP BY i.id \
         ORDER BY COALESCE(i.project, ''), event_count DESC, i.id"
    ))
    .bind(severity)
    .bind(start)
    .bind(end)
    .fetch_all(c)
    .await)?)
}

/// Per severity: incidents whose current episode opened in the period, and how fast they were
/// acknowledged and resolved. Only acks and resolutions before the period's end count, so the
/// figures do not depend on when the summary happens to be built (a late catch-up included).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct SeverityTally {
    pub severity: String,
    pub opened: i64,
    pub acknowledged: i64,
    /// Sum of `acknowledged_at - opened_at` over the acknowledged ones.
    pub ack_ms_total: i64,
    pub resolved: i64,
    /// Sum of `resolved_at - opened_at` over the resolved ones.
    pub resolve_ms_total: i64,
}

pub(crate) async fn severity_tallies(
    pool: &Reader,
    start: i64,
    end: i64,
) -> Result<Vec<SeverityTally>, StoreError> {
    // `>= opened_at` keeps an ack from a previous episode (before a reopen) out of the means.
    Ok(on!(pool, |c, Db| sqlx::query_as(
        "SELECT severity, COUNT(*) AS opened, \
           COUNT(CASE WHEN acknowledged_at >= opened_at AND acknowledged_at < $2 THEN 1 END) \
             AS acknowledged, \
           CAST(COALESCE(SUM(CASE WHEN acknowledged_at >= opened_at AND acknowledged_at < $2 \
             THEN acknowledged_at - opened_at END), 0) AS BIGINT) AS ack_ms_total, \
           COUNT(CASE WHEN resolved_at >= opened_at AND resolved_at < $2 THEN 1 END) \
             AS resolved, \
           CAST(COALESCE(SUM(CASE WHEN resolved_at >= opened_at AND resolved_at < $2 \
             THEN resolved_at - opened_at END), 0) AS BIGINT) AS resolve_ms_total \
         FROM incidents WHERE opened_at >= $1 AND opened_at < $2 AND kind = 'issue' \
         GROUP BY severity",
    )
    .bind(start)
    .bind(end)
    .fetch_all(c)
    .await)?)
}

/// Escalations fired in the period, per severity of their incident.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct EscalationTally {
    pub severity: String,
    pub fired: i64,
    /// Distinct incidents that escalated.
    pub incidents: i64,
    pub max_lateness_ms: i64,
}

pub(crate) async fn escalation_tallies(
    pool: &Reader,
    start: i64,
    end: i64,
) -> Result<Vec<EscalationTally>, StoreError> {
    // The `escalations` table, not `incidents.escalation_step`: it has one row per firing with
    // its time, so a firing is counted in the week it happened, whatever the incident did later.
    Ok(on!(pool, |c, Db| sqlx::query_as(
        "SELECT i.severity AS severity, COUNT(*) AS fired, \
           COUNT(DISTINCT e.incident_id) AS incidents, \
           COALESCE(MAX(e.lateness_ms), 0) AS max_lateness_ms \
         FROM escalations e JOIN incidents i ON i.id = e.incident_id \
         WHERE e.fired_at >= $1 AND e.fired_at < $2 \
         GROUP BY i.severity",
    )
    .bind(start)
    .bind(end)
    .fetch_all(c)
    .await)?)
}

/// An incident in the "noisiest issues" list.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct NoisyIncident {
    pub id: IncidentId,
    pub title: String,
    pub project: Option<String>,
    pub severity: String,
    pub state: String,
    /// Alerts received for it in the period.
    pub event_count: i64,
    pub sentry_url: Option<String>,
}

/// The `limit` incidents with the most alerts received in the period.
pub(crate) async fn noisiest(
    pool: &Reader,
    start: i64,
    end: i64,
    limit: i64,
) -> Result<Vec<NoisyIncident>, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_as(
        "SELECT i.id, i.title, i.project, i.severity, i.state, COUNT(*) AS event_count, \
           i.sentry_url \
         FROM events e JOIN incidents i ON i.id = e.incident_id \
         WHERE e.received_at >= $1 AND e.received_at < $2 \
         GROUP BY i.id ORDER BY event_count DESC, i.id LIMIT $3",
    )
    .bind(start)
    .bind(end)
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

/// Storms opened in the period and the incidents they grouped: a digest counts incidents (a
/// storm is a group, not one more), and says in a line how many were paged as storms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct StormTally {
    pub storms: i64,
    /// Their members now.
    pub members: i64,
}

pub(crate) async fn storm_tally(
    pool: &Reader,
    start: i64,
    end: i64,
) -> Result<StormTally, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_as(
        "SELECT COUNT(DISTINCT s.id) AS storms, COUNT(m.id) AS members \
         FROM incidents s LEFT JOIN incidents m ON m.storm_id = s.id \
         WHERE s.kind = 'storm' AND s.opened_at >= $1 AND s.opened_at < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_one(c)
    .await)?)
}
