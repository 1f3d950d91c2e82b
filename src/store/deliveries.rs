//! The outbox: claims take a lease with one `UPDATE ... RETURNING`, so a crash mid-send leaves a
//! row that is claimed again once the lease runs out (at-least-once; Slack updates and PagerDuty
//! dedup keys make a repeat harmless). No transaction is ever held across a send.

use serde::Serialize;
use sqlx::SqlitePool;

use super::StoreError;
use crate::notify::RemoteRef;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub episode: i64,
    pub channel: String,
    pub kind: String,
    pub detail: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub response: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Attempt {
    pub delivery_id: i64,
    pub attempt: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub outcome: String,
    pub response: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeliveryWithAttempts {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempt_log: Vec<Attempt>,
}

/// Claims up to `limit` due rows of one channel, oldest first, leasing them until `lease_until`.
pub async fn claim_due(
    pool: &SqlitePool,
    channel: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    Ok(sqlx::query_as(
        "UPDATE deliveries SET status = 'sending', lease_until = ?1 \
         WHERE id IN (SELECT id FROM deliveries WHERE channel = ?2 AND ( \
             (status IN ('pending', 'failed') AND next_attempt_at <= ?3) \
             OR (status = 'sending' AND lease_until <= ?3)) \
           ORDER BY next_attempt_at, id LIMIT ?4) \
         RETURNING *",
    )
    .bind(lease_until)
    .bind(channel)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Gives a claimed row back without counting an attempt (rate limited, shutting down).
pub async fn release(pool: &SqlitePool, id: i64, next_attempt_at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = ? WHERE id = ? AND status = 'sending'")
        .bind(next_attempt_at)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    /// `delivered`, `retry`, `permanent`, `skipped`.
    pub outcome: &'static str,
    pub response: String,
    /// Row status after this attempt: `delivered`, `failed` (will retry) or `dead`.
    pub new_status: &'static str,
    pub next_attempt_at: i64,
    pub remote: Option<RemoteRef>,
}

/// Records the attempt, moves the row on, and stores what the channel handed back on the
/// incident (only for the episode the delivery belongs to), all in one transaction.
pub async fn record_attempt(
    pool: &SqlitePool,
    d: &Delivery,
    r: &AttemptResult,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let attempt = d.attempts + 1;
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, outcome, response) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(d.id)
    .bind(attempt)
    .bind(r.started_at)
    .bind(r.duration_ms)
    .bind(r.status_code)
    .bind(r.outcome)
    .bind(&r.response)
    .execute(&mut *tx)
    .await?;
    let delivered_at = (r.new_status == "delivered").then_some(r.started_at + r.duration_ms);
    sqlx::query(
        "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, lease_until = NULL, \
         last_status_code = ?, last_error = ?, response = ?, delivered_at = ? WHERE id = ?",
    )
    .bind(r.new_status)
    .bind(attempt)
    .bind(r.next_attempt_at)
    .bind(r.status_code)
    .bind((r.new_status != "delivered").then_some(&r.response))
    .bind(&r.response)
    .bind(delivered_at)
    .bind(d.id)
    .execute(&mut *tx)
    .await?;
    if let (Some(incident_id), Some(remote)) = (d.incident_id, &r.remote) {
        match remote {
            RemoteRef::SlackMessage { channel, ts } => {
                // The new message shows the count as of now: the next live update is due an
                // interval later.
                sqlx::query(
                    "UPDATE incidents SET slack_channel = ?, slack_ts = ?, notified_count = event_count, \
                     count_updated_at = ? WHERE id = ? AND episode = ? AND slack_ts IS NULL",
                )
                .bind(channel)
                .bind(ts)
                .bind(r.started_at)
                    .bind(incident_id)
                    .bind(d.episode)
                    .execute(&mut *tx)
                    .await?;
            }
            RemoteRef::PagerDutyTriggered { .. } => {
                sqlx::query(
                    "UPDATE incidents SET pagerduty_triggered = 1 WHERE id = ? AND episode = ?",
                )
                .bind(incident_id)
                .bind(d.episode)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

pub async fn for_incident(
    pool: &SqlitePool,
    incident_id: i64,
) -> Result<Vec<DeliveryWithAttempts>, StoreError> {
    let deliveries: Vec<Delivery> =
        sqlx::query_as("SELECT * FROM deliveries WHERE incident_id = ? ORDER BY id")
            .bind(incident_id)
            .fetch_all(pool)
            .await?;
    let attempts: Vec<Attempt> = sqlx::query_as(
        "SELECT a.delivery_id, a.attempt, a.started_at, a.duration_ms, a.status_code, a.outcome, a.response \
         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.incident_id = ? ORDER BY a.id",
    )
    .bind(incident_id)
    .fetch_all(pool)
    .await?;
    Ok(deliveries
        .into_iter()
        .map(|d| {
            let attempt_log = attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .cloned()
                .collect();
            DeliveryWithAttempts {
                delivery: d,
                attempt_log,
            }
        })
        .collect())
}

pub async fn list(
    pool: &SqlitePool,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    Ok(match status {
        Some(s) => {
            sqlx::query_as("SELECT * FROM deliveries WHERE status = ? ORDER BY id DESC LIMIT ?")
                .bind(s)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query_as("SELECT * FROM deliveries ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    })
}

/// The earliest moment any row of `channel` becomes due (for the worker's sleep).
pub async fn next_due(pool: &SqlitePool, channel: &str) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(CASE WHEN status = 'sending' THEN lease_until ELSE next_attempt_at END) FROM deliveries \
         WHERE channel = ? AND status IN ('pending', 'failed', 'sending')",
    )
    .bind(channel)
    .fetch_one(pool)
    .await?)
}

/// Open incidents whose Slack message shows a stale event count and was last refreshed at least
/// `interval_ms` ago: `(id, episode, policy)`. Marks them refreshed and enqueues one
/// `count_update` per channel chosen by `channels_for`, all in one transaction.
pub async fn enqueue_count_updates(
    pool: &SqlitePool,
    now: i64,
    interval_ms: i64,
    channels_for: impl Fn(&str) -> Vec<String>,
) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await?;
    let due: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT id, episode, policy FROM incidents WHERE state IN ('triggered', 'acknowledged') \
         AND slack_ts IS NOT NULL AND event_count > notified_count AND COALESCE(count_updated_at, 0) <= ?",
    )
    .bind(now - interval_ms)
    .fetch_all(&mut *tx)
    .await?;
    let mut enqueued = 0;
    for (id, episode, policy) in &due {
        for channel in channels_for(policy) {
            sqlx::query(
                "INSERT INTO deliveries (incident_id, episode, channel, kind, status, next_attempt_at, created_at) \
                 VALUES (?, ?, ?, 'count_update', 'pending', ?, ?)",
            )
            .bind(id)
            .bind(episode)
            .bind(&channel)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            enqueued += 1;
        }
        sqlx::query(
            "UPDATE incidents SET notified_count = event_count, count_updated_at = ? WHERE id = ?",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(enqueued)
}
