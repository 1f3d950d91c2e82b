//! The outbox: claims take a lease with one `UPDATE ... RETURNING`, so a crash mid-send leaves a
//! row that is claimed again once the lease runs out (at-least-once; Slack updates and PagerDuty
//! dedup keys make a repeat harmless). No transaction is ever held across a send.

use crate::store::{WriteTx, dialect_sql, on};
use serde::Serialize;
use sqlx::Row;

pub(crate) mod bundles;

use super::{CorruptRow, CorruptRows, Reader, Store, StoreError};
use crate::domain::{
    DeliveryId, DeliveryKind, DeliveryStatus, Episode, IncidentId, NoticeKind, Policy, RemoteRef,
    RemoteState,
};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Delivery {
    pub id: DeliveryId,
    pub incident_id: Option<IncidentId>,
    /// 0 for a notice (no incident).
    pub episode: Episode,
    pub channel: String,
    /// An unknown word is kept as the row's error rather than failing the whole claim or
    /// listing it is in: the worker buries that row with the reason, the API shows the word.
    #[serde(skip)]
    pub kind: Result<DeliveryKind, CorruptRow>,
    pub detail: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub response: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    /// The stored `kind` word, as read (for logs and the API, also when it does not decode).
    #[serde(rename = "kind")]
    pub kind_word: String,
}

/// One text for both backends' rows (a generic impl would spell out a bound per column type).
macro_rules! delivery_from_row {
    ($row:ty) => {
        impl<'r> sqlx::FromRow<'r, $row> for Delivery {
            fn from_row(row: &'r $row) -> Result<Self, sqlx::Error> {
                let id: DeliveryId = row.try_get("id")?;
                let kind_word: String = row.try_get("kind")?;
                // Logged and counted by the read that asked for the row (see `noted`).
                let kind = kind_word.parse::<DeliveryKind>().map_err(|e| CorruptRow {
                    table: "deliveries",
                    id: id.get(),
                    field: "kind",
                    reason: e.to_string(),
                });
                Ok(Self {
                    id,
                    incident_id: row.try_get("incident_id")?,
                    episode: row.try_get("episode")?,
                    channel: row.try_get("channel")?,
                    kind,
                    detail: row.try_get("detail")?,
                    status: row.try_get("status")?,
                    attempts: row.try_get("attempts")?,
                    next_attempt_at: row.try_get("next_attempt_at")?,
                    lease_until: row.try_get("lease_until")?,
                    last_status_code: row.try_get("last_status_code")?,
                    last_error: row.try_get("last_error")?,
                    response: row.try_get("response")?,
                    created_at: row.try_get("created_at")?,
                    delivered_at: row.try_get("delivered_at")?,
                    kind_word,
                })
            }
        }
    };
}
delivery_from_row!(sqlx::sqlite::SqliteRow);
delivery_from_row!(sqlx::postgres::PgRow);

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub(crate) struct Attempt {
    pub delivery_id: DeliveryId,
    pub attempt: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub outcome: String,
    pub response: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DeliveryWithAttempts {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempt_log: Vec<Attempt>,
}

/// SQL: the statuses of rows still waiting. Word for word the `WHERE` of the partial indexes
/// `deliveries_live_due` and `deliveries_live_turn` (migration 0008): SQLite uses a partial
/// index only when the query repeats its condition as one of its own `AND` terms.
macro_rules! live {
    () => {
        "status IN ('pending', 'failed', 'sending')"
    };
}

/// SQL: row `d` is in its turn, i.e. no earlier row of its incident waits on its channel.
macro_rules! in_turn {
    () => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.incident_id = d.incident_id \
             AND e.channel = d.channel AND e.id < d.id AND e.",
            live!(),
            ")"
        )
    };
}

/// The claim (see [`claim_due`]): $1 lease_until, $2 channel, $3 now, $4 limit.
///
/// `d.next_attempt_at <= $3` holds for every claimable row, leased ones too (a lease starts
/// after the row fell due and `lease_until <= now` is checked besides), and bounds the walk of
/// `deliveries_live_due`: the channel's rows are read in claim order and only up to now, so the
/// cost does not grow with other channels' rows nor with rows not yet due.
const CLAIM_SQL: &str = concat!(
    "UPDATE deliveries SET status = 'sending', lease_until = $1 \
     WHERE id IN (SELECT d.id FROM deliveries d WHERE d.channel = $2 AND d.",
    live!(),
    " AND d.next_attempt_at <= $3 AND (d.status <> 'sending' OR d.lease_until <= $3) AND ",
    in_turn!(),
    " ORDER BY d.next_attempt_at, d.id LIMIT $4) RETURNING *"
);

/// [`CLAIM_SQL`] on PostgreSQL. `id = ANY(ARRAY(...))`: the ids are picked once (an InitPlan)
/// and the rows updated by their key; with `IN (...)` PostgreSQL hash-joins the picked ids
/// against a scan of the whole table, a cost that grows with every row ever delivered.
/// `FOR UPDATE OF d SKIP LOCKED` picks past rows another transaction holds (under the store's
/// write lock there is none; it keeps the claim correct without it).
const CLAIM_SQL_PG: &str = concat!(
    "UPDATE deliveries SET status = 'sending', lease_until = $1 \
     WHERE id = ANY(ARRAY(SELECT d.id FROM deliveries d WHERE d.channel = $2 AND d.",
    live!(),
    " AND d.next_attempt_at <= $3 AND (d.status <> 'sending' OR d.lease_until <= $3) AND ",
    in_turn!(),
    " ORDER BY d.next_attempt_at, d.id LIMIT $4 FOR UPDATE OF d SKIP LOCKED)) RETURNING *"
);

/// Claims up to `limit` due rows of one channel, oldest first, leasing them until `lease_until`.
///
/// Per incident the channel gets its messages in order: a row waits while an earlier row for the
/// same incident and channel is unfinished. Otherwise an `acknowledge` could overtake the
/// `trigger` it follows (retried after a 500), find nothing triggered, and leave PagerDuty
/// paging about an incident that is already acknowledged.
pub(crate) async fn claim_due(
    store: &Store,
    channel: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let mut tx = store.begin_write().await?;
    // PostgreSQL plans from table statistics that autovacuum refreshes up to a minute after a
    // wave of rows (an escalation storm queues thousands at once). Until then it takes the table
    // for small and checks each row's turn by scanning it whole: measured 59 s for one claim of
    // 16 among 40,000 pending rows, with the write lock held. The claim's indexes are always the
    // way, so this transaction does without sequential scans.
    tx.set_local_on_postgres("enable_seqscan = off").await?;
    let claimed: Vec<Delivery> = on!(&mut tx, |c, Db| sqlx::query_as(Db::pick(
        CLAIM_SQL,
        CLAIM_SQL_PG
    ))
    .bind(lease_until)
    .bind(channel)
    .bind(now)
    .bind(limit)
    .fetch_all(c)
    .await)?;
    tx.commit().await?;
    Ok(noted(claimed, &store.corrupt_rows))
}

/// Queues one row per channel that belongs to no incident (a notice, see
/// `crate::notify::notice`), inside the caller's transaction. `episode` is 0: there is none.
/// Such rows never wait on each other (see [`claim_due`]: NULL matches no incident).
pub(crate) async fn insert_notices(
    conn: &mut WriteTx,
    channels: &[String],
    kind: NoticeKind,
    detail: &str,
    now: i64,
) -> Result<(), StoreError> {
    for channel in channels {
        on!(&mut *conn, |c, Db| sqlx::query(
            "INSERT INTO deliveries (incident_id, episode, channel, kind, detail, status, \
             next_attempt_at, created_at) VALUES (NULL, 0, $1, $2, $3, $4, $5, $6)",
        )
        .bind(channel)
        .bind(kind)
        .bind(detail)
        .bind(DeliveryStatus::Pending)
        .bind(now)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Gives a claimed row back without counting an attempt (rate limited, shutting down).
pub(crate) async fn release(
    store: &Store,
    id: DeliveryId,
    next_attempt_at: i64,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    on!(&mut tx, |c, Db| {
        sqlx::query("UPDATE deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = $1 WHERE id = $2 AND status = 'sending'")
        .bind(next_attempt_at)
        .bind(id)
        .execute(c)
        .await.map(|r| r.rows_affected())
    })?;
    tx.commit().await
}

/// How one attempt ended (`delivery_attempts.outcome`, and the metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    Delivered,
    /// Failed in a way worth trying again (the row may still be dead: attempts used up).
    Retry,
    Permanent,
    /// Nothing to send (e.g. the incident is gone): the row counts as delivered.
    Skipped,
}

impl AttemptOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Permanent => "permanent",
            Self::Skipped => "skipped",
        }
    }
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub(crate) struct AttemptResult {
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub outcome: AttemptOutcome,
    pub response: String,
    /// Row status after this attempt: `Delivered`, `Failed` (will retry) or `Dead`.
    pub new_status: DeliveryStatus,
    pub next_attempt_at: i64,
    pub remote: Option<RemoteRef>,
}

/// Records the attempt, moves the row on, and stores what the channel handed back for the
/// delivery's incident episode and channel, all in one transaction.
pub(crate) async fn record_attempt(
    store: &Store,
    d: &Delivery,
    r: &AttemptResult,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    let attempt = d.attempts + 1;
    insert_attempt(&mut tx, d, attempt, r).await?;
    move_row_on(&mut tx, d, attempt, r).await?;
    if let (Some(incident_id), Some(remote)) = (d.incident_id, &r.remote) {
        match remote {
            RemoteRef::SlackMessage { channel, ts } => {
                store_slack_card(&mut tx, d, incident_id, channel, ts, r.started_at).await?
            }
            RemoteRef::PagerDutyTriggered { .. } => {
                store_pagerduty_triggered(&mut tx, d, incident_id).await?
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Records one attempt of every row a bundled message was sent for, and the card it posted or
/// grew (bot mode), in one transaction. The rows' own `remote_refs` are not written: the card
/// lists them, it is not theirs (see [`bundles`]).
pub(crate) async fn record_bundle(
    store: &Store,
    rows: &[(&Delivery, AttemptResult)],
    card: Option<&bundles::CardWrite<'_>>,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    for (d, r) in rows {
        let attempt = d.attempts + 1;
        insert_attempt(&mut tx, d, attempt, r).await?;
        move_row_on(&mut tx, d, attempt, r).await?;
    }
    if let Some(card) = card {
        bundles::store_card(&mut tx, card).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// SQL: rows of $1 due at $2 and in their turn, not being sent: what a bundle that could not
/// list everything says is still waiting ("and K more").
const WAITING_SQL: &str = concat!(
    "SELECT COUNT(*) FROM deliveries d WHERE d.channel = $1 AND d.",
    live!(),
    " AND d.next_attempt_at <= $2 AND d.status <> 'sending' ",
    // Only what a bundle would list (`notify::bundle::may_join`): "and K more" promises
    // incidents, not the acknowledgements and count updates that go on their own.
    "AND d.kind IN ('opened', 'escalation', 'severity_raised') AND ",
    in_turn!()
);

/// How many rows of `channel` are due at `now` and not claimed (see [`WAITING_SQL`]).
pub(crate) async fn count_waiting(
    pool: &Reader,
    channel: &str,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_scalar(WAITING_SQL)
        .bind(channel)
        .bind(now)
        .fetch_one(c)
        .await)?)
}

/// One row of `delivery_attempts`.
async fn insert_attempt(
    conn: &mut WriteTx,
    d: &Delivery,
    attempt: i64,
    r: &AttemptResult,
) -> Result<(), StoreError> {
    on!(&mut *conn, |c, Db| {
        sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, outcome, response) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(d.id)
    .bind(attempt)
    .bind(r.started_at)
    .bind(r.duration_ms)
    .bind(r.status_code)
    .bind(r.outcome.as_str())
    .bind(&r.response)
    .execute(c)
    .await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The delivery row after the attempt: its status, count, next attempt and last answer.
async fn move_row_on(
    conn: &mut WriteTx,
    d: &Delivery,
    attempt: i64,
    r: &AttemptResult,
) -> Result<(), StoreError> {
    let delivered = r.new_status == DeliveryStatus::Delivered;
    let delivered_at = delivered.then_some(r.started_at + r.duration_ms);
    on!(&mut *conn, |c, Db| {
        sqlx::query(
        "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, lease_until = NULL, \
         last_status_code = $4, last_error = $5, response = $6, delivered_at = $7 WHERE id = $8",
    )
    .bind(r.new_status)
    .bind(attempt)
    .bind(r.next_attempt_at)
    .bind(r.status_code)
    .bind((!delivered).then_some(&r.response))
    .bind(&r.response)
    .bind(delivered_at)
    .bind(d.id)
    .execute(c)
    .await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The Slack card a send posted, for later updates of the same episode's card.
async fn store_slack_card(
    conn: &mut WriteTx,
    d: &Delivery,
    incident_id: IncidentId,
    channel: &str,
    ts: &str,
    started_at: i64,
) -> Result<(), StoreError> {
    // The newest card wins: it replaces one that someone deleted in Slack. Claims
    // are in order per incident and channel, so no older post can land after it.
    let previous: Option<Option<String>> = on!(&mut *conn, |c, Db| {
        sqlx::query_scalar(
        "SELECT slack_ts FROM remote_refs WHERE incident_id = $1 AND episode = $2 AND channel = $3",
    )
    .bind(incident_id)
    .bind(d.episode)
    .bind(&d.channel)
    .fetch_optional(c)
    .await
    })?;
    if previous.flatten().as_deref() != Some(ts) {
        on!(&mut *conn, |c, Db| sqlx::query(
            "INSERT INTO remote_refs (incident_id, episode, channel, slack_channel, slack_ts) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (incident_id, episode, channel) \
             DO UPDATE SET slack_channel = excluded.slack_channel, slack_ts = excluded.slack_ts",
        )
        .bind(incident_id)
        .bind(d.episode)
        .bind(&d.channel)
        .bind(channel)
        .bind(ts)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        // A new card shows the count as of now: the next live update is due an
        // interval later.
        on!(&mut *conn, |c, Db| sqlx::query(
            "UPDATE incidents SET notified_count = event_count, count_updated_at = $1 \
             WHERE id = $2 AND episode = $3",
        )
        .bind(started_at)
        .bind(incident_id)
        .bind(d.episode)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// That PagerDuty was triggered for the episode, so that a resolve is sent there too.
async fn store_pagerduty_triggered(
    conn: &mut WriteTx,
    d: &Delivery,
    incident_id: IncidentId,
) -> Result<(), StoreError> {
    on!(&mut *conn, |c, Db| sqlx::query(
        "INSERT INTO remote_refs (incident_id, episode, channel, pagerduty_triggered) \
         VALUES ($1, $2, $3, 1) ON CONFLICT (incident_id, episode, channel) \
         DO UPDATE SET pagerduty_triggered = 1",
    )
    .bind(incident_id)
    .bind(d.episode)
    .bind(&d.channel)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What earlier sends of one channel left for an incident episode (its Slack card, whether
/// PagerDuty was triggered). Empty when nothing was sent yet.
pub(crate) async fn remote_state(
    pool: &Reader,
    incident_id: IncidentId,
    episode: Episode,
    channel: &str,
) -> Result<RemoteState, StoreError> {
    // The flag is a 0/1 integer on both backends (see migrations/postgres).
    let row: Option<(Option<String>, Option<String>, i64)> = on!(pool, |c, Db| sqlx::query_as(
        "SELECT slack_channel, slack_ts, pagerduty_triggered FROM remote_refs \
         WHERE incident_id = $1 AND episode = $2 AND channel = $3",
    )
    .bind(incident_id)
    .bind(episode)
    .bind(channel)
    .fetch_optional(c)
    .await)?;
    Ok(row
        .map(
            |(slack_channel, slack_ts, pagerduty_triggered)| RemoteState {
                slack_channel,
                slack_ts,
                pagerduty_triggered: pagerduty_triggered != 0,
            },
        )
        .unwrap_or_default())
}

/// Gives up on waiting rows of channels that are no longer in the routing file: no worker
/// serves them, and pending forever would hide them (and hold back later rows of their
/// incidents). Returns how many were marked dead.
pub(crate) async fn bury_unconfigured(
    store: &Store,
    configured: &[&str],
    now: i64,
) -> Result<u64, StoreError> {
    let names =
        serde_json::to_string(configured).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut tx = store.begin_write().await?;
    let r = on!(&mut tx, |c, Db| sqlx::query(dialect_sql!(Db:
        "UPDATE deliveries SET status = 'dead', lease_until = NULL, next_attempt_at = $1, \
         last_error = 'channel `' || channel || '` is no longer in the routing file' \
         WHERE status IN ('pending', 'failed', 'sending') AND channel NOT IN "
        [sqlite: "(SELECT value FROM json_each($2))",
         postgres: "(SELECT json_array_elements_text($2::json))"]
    ))
    .bind(now)
    .bind(names)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(r)
}

pub(crate) async fn for_incident(
    reader: &Reader,
    incident_id: IncidentId,
) -> Result<Vec<DeliveryWithAttempts>, StoreError> {
    let deliveries: Vec<Delivery> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT * FROM deliveries WHERE incident_id = $1 ORDER BY id"
    )
    .bind(incident_id)
    .fetch_all(c)
    .await)?;
    let attempts: Vec<Attempt> = on!(reader, |c, Db| {
        sqlx::query_as(
        "SELECT a.delivery_id, a.attempt, a.started_at, a.duration_ms, a.status_code, a.outcome, a.response \
         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.incident_id = $1 ORDER BY a.id",
    )
    .bind(incident_id)
    .fetch_all(c)
    .await
    })?;
    Ok(noted(deliveries, reader.corrupt())
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

pub(crate) async fn list(
    reader: &Reader,
    status: Option<DeliveryStatus>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = match status {
        Some(s) => on!(reader, |c, Db| sqlx::query_as(
            "SELECT * FROM deliveries WHERE status = $1 ORDER BY id DESC LIMIT $2"
        )
        .bind(s)
        .bind(limit)
        .fetch_all(c)
        .await)?,
        None => on!(reader, |c, Db| sqlx::query_as(
            "SELECT * FROM deliveries ORDER BY id DESC LIMIT $1"
        )
        .bind(limit)
        .fetch_all(c)
        .await)?,
    };
    Ok(noted(rows, reader.corrupt()))
}

/// What a request to send a dead delivery again did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requeue {
    /// Back to `pending`, due now; `incident_id` and `channel` say whom to wake and where the
    /// timeline note went.
    Requeued {
        incident_id: Option<IncidentId>,
        channel: String,
    },
    /// Only a dead row is sent again by hand: any other is still the worker's.
    NotDead(DeliveryStatus),
    NotFound,
}

/// Puts a dead delivery back in the queue, due at `now`, by hand (the Retry button of the web
/// page). Its attempt history stays: the attempts count on, so with its attempts used up the
/// row gets one more try and is dead again if that fails. An incident's delivery gets a
/// timeline note saying who asked, in the same transaction.
pub(crate) async fn requeue_dead(
    store: &Store,
    id: DeliveryId,
    actor: &str,
    via: crate::domain::Via,
    now: i64,
) -> Result<Requeue, StoreError> {
    let mut tx = store.begin_write().await?;
    let row: Option<(Option<IncidentId>, String, String, i64)> =
        on!(&mut tx, |c, Db| sqlx::query_as(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, lease_until = NULL \
         WHERE id = $2 AND status = 'dead' RETURNING incident_id, channel, kind, attempts",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    let Some((incident_id, channel, kind, attempts)) = row else {
        let status: Option<DeliveryStatus> = on!(&mut tx, |c, Db| sqlx::query_scalar(
            "SELECT status FROM deliveries WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?;
        return Ok(status.map_or(Requeue::NotFound, Requeue::NotDead));
    };
    if let Some(incident_id) = incident_id {
        let note = crate::domain::NewTimeline {
            incident_id,
            at: now,
            kind: crate::domain::TimelineKind::Note,
            actor: Some(actor.to_string()),
            via: Some(via),
            detail: Some(format!(
                "delivery #{id} ({kind} to {channel}) queued again by hand after {attempts} attempt(s)"
            )),
        };
        super::incidents::insert_timeline(&mut tx, &[note]).await?;
    }
    tx.commit().await?;
    Ok(Requeue::Requeued {
        incident_id,
        channel,
    })
}

/// Logs and counts the rows whose `kind` does not decode, once per read that finds them.
fn noted(rows: Vec<Delivery>, seen: &CorruptRows) -> Vec<Delivery> {
    for e in rows.iter().filter_map(|d| d.kind.as_ref().err()) {
        seen.note(e);
    }
    rows
}

/// The earliest moment (see [`next_due`]): $1 channel.
///
/// The minimum of two index walks rather than one `MIN(CASE ...)` over every waiting row of the
/// channel: waiting rows in due order from `deliveries_live_due`, stopped at the first one in its
/// turn; and the rows being sent (a handful: a batch per channel) from `deliveries_due`
/// (`+d.channel` keeps SQLite from walking the channel's whole backlog for them instead).
const NEXT_DUE_SQL: &str = concat!(
    "SELECT MIN(t) FROM ( \
     SELECT t FROM (SELECT d.next_attempt_at AS t FROM deliveries d WHERE d.channel = $1 AND d.",
    live!(),
    " AND d.status <> 'sending' AND ",
    in_turn!(),
    " ORDER BY d.next_attempt_at, d.id LIMIT 1) AS first_waiting \
     UNION ALL SELECT d.lease_until FROM deliveries d WHERE d.status = 'sending' \
     AND +d.channel = $1 AND ",
    in_turn!(),
    ") AS due"
);

/// The earliest moment any row of `channel` becomes due (for the worker's sleep). Rows waiting
/// behind an earlier row of their incident (see [`claim_due`]) do not count: they become due
/// when that row is done, which the same worker sees as it finishes it. Counting them would
/// wake the worker in a loop until then.
pub(crate) async fn next_due(pool: &Reader, channel: &str) -> Result<Option<i64>, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_scalar(Db::hinted(
        NEXT_DUE_SQL
    ))
    .bind(channel)
    .fetch_one(c)
    .await)?)
}

/// Incidents whose Slack card shows another event count than they have (an issue's only grows;
/// a storm's goes down when a member leaves). Read every second inside a write transaction, so
/// it walks the partial index `incidents_count_due` (migrations 0013, 0015): only cards already
/// posted, still open, with a changed count. `notified_count > 0` is
/// what makes that index small: it is set together with the card's `slack_ts`
/// ([`store_slack_card`]), so an incident never told in Slack (a backlog while Slack is down)
/// has 0 and is not read at all. `INDEXED BY`: without statistics SQLite would rather walk
/// every open incident by `incidents_state_severity`.
pub(crate) const COUNT_UPDATES_DUE: &str = "SELECT i.id, i.episode, i.policy FROM incidents i \
     INDEXED BY incidents_count_due WHERE i.notified_count > 0 \
     AND i.event_count <> i.notified_count AND i.state IN ('triggered', 'acknowledged') \
     AND COALESCE(i.count_updated_at, 0) <= $1 \
     AND EXISTS (SELECT 1 FROM remote_refs r WHERE r.incident_id = i.id \
         AND r.episode = i.episode AND r.slack_ts IS NOT NULL)";

/// Open incidents whose Slack message shows a stale event count and was last refreshed at least
/// `interval_ms` ago: `(id, episode, policy)`. Marks them refreshed and enqueues one
/// `count_update` per channel chosen by `channels_for`, all in one transaction.
pub(crate) async fn enqueue_count_updates(
    store: &Store,
    now: i64,
    interval_ms: i64,
    channels_for: impl Fn(&Policy) -> Vec<String>,
) -> Result<usize, StoreError> {
    let mut tx = store.begin_write().await?;
    let due: Vec<(IncidentId, Episode, String)> = on!(&mut tx, |c, Db| sqlx::query_as(
        Db::hinted(COUNT_UPDATES_DUE)
    )
    .bind(now - interval_ms)
    .fetch_all(c)
    .await)?;
    let mut enqueued = 0;
    for (id, episode, policy) in &due {
        // An unreadable policy tells us no channel: logged, and the row is not refreshed.
        let Ok(policy) = Policy::from_json(policy).map_err(|e| {
            tx.corrupt().found(CorruptRow {
                table: "incidents",
                id: id.get(),
                field: "policy",
                reason: e.to_string(),
            })
        }) else {
            continue;
        };
        for channel in channels_for(&policy) {
            // One waiting update per card is enough (it shows the count when it is sent): while
            // Slack is down they must not pile up ahead of new alerts. One being sent does not
            // count as waiting: it was built before these events, so without a new row the card
            // would keep the older count while `notified_count` says it is shown.
            let r = on!(&mut tx, |c, Db| {
                sqlx::query(
                "INSERT INTO deliveries (incident_id, episode, channel, kind, status, next_attempt_at, created_at) \
                 SELECT $1, $2, $3, 'count_update', 'pending', $4, $4 WHERE NOT EXISTS ( \
                     SELECT 1 FROM deliveries WHERE incident_id = $1 AND channel = $3 \
                     AND kind = 'count_update' AND status IN ('pending', 'failed')) \
                 AND EXISTS (SELECT 1 FROM remote_refs WHERE incident_id = $1 AND episode = $2 \
                     AND channel = $3 AND slack_ts IS NOT NULL)",
            )
            .bind(id)
            .bind(episode)
            .bind(&channel)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected())
            })?;
            enqueued += r as usize;
        }
        on!(&mut tx, |c, Db| {
            sqlx::query(
            "UPDATE incidents SET notified_count = event_count, count_updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(c)
        .await.map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await?;
    Ok(enqueued)
}

#[cfg(test)]
mod tests;
