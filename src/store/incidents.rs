//! SQL for events, incidents, timeline and enqueuing deliveries. Batch writers use multi-row
//! statements so that a group commit costs a handful of statements whatever its size.

use crate::store::{AsConn, Reader, dialect_sql, on};
use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::body::{self, StoredBody};
use super::{CorruptRow, CorruptRows, StoreError, WriteTx};
use crate::domain::{
    DeliveryStatus, Effects, Episode, EventId, Incident, IncidentId, NewDelivery, NewTimeline,
    Policy, SilenceId,
};

/// SQLite allows 32766 bound parameters per statement; stay well below it.
const MAX_PARAMS: usize = 30_000;

fn chunk_size(columns: usize) -> usize {
    (MAX_PARAMS / columns).max(1)
}

#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub id: EventId,
    pub received_at: i64,
    pub dedup_key: String,
    pub request_id: Option<String>,
    pub source: &'static str,
    pub resource: String,
    pub action: String,
    pub status: &'static str,
    pub incident_id: Option<IncidentId>,
    pub severity: Option<&'static str>,
    pub rule: Option<String>,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub level: Option<String>,
    pub occurrence: bool,
    /// Compressed on the request task (`StoredBody::compress`), not by the writer.
    pub body: StoredBody,
    /// JSON of `intake::details::EventDetails`, extracted and scrubbed at intake.
    pub details: Option<String>,
    /// Fingerprint of the rules `rate_keys` was derived under (`Classifier::fingerprint`).
    pub rate_fp: i64,
    /// The rate windows this event counted toward (`classification::encode_rate_keys`).
    pub rate_keys: Option<String>,
}

pub(crate) async fn max_ids(conn: &mut impl AsConn) -> Result<(EventId, IncidentId), StoreError> {
    let events: EventId = on!(&mut *conn, |c, Db| sqlx::query_scalar(
        "SELECT COALESCE(MAX(id), 0) FROM events"
    )
    .fetch_one(c)
    .await)?;
    let incidents: IncidentId = on!(&mut *conn, |c, Db| sqlx::query_scalar(
        "SELECT COALESCE(MAX(id), 0) FROM incidents"
    )
    .fetch_one(c)
    .await)?;
    Ok((events, incidents))
}

/// Which of `keys` are already stored, with their event ids.
pub(crate) async fn existing_dedup_keys(
    conn: &mut WriteTx,
    keys: &[&str],
) -> Result<HashMap<String, EventId>, StoreError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(chunk_size(1)) {
        let rows: Vec<(String, EventId)> = on!(&mut *conn, |c, Db| {
            let mut q =
                QueryBuilder::<Db>::new("SELECT dedup_key, id FROM events WHERE dedup_key IN (");
            let mut sep = q.separated(", ");
            for k in chunk {
                sep.push_bind(*k);
            }
            q.push(")");
            q.build_query_as().fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// What the stored copies of a content-hashed payload (`body:{sha256}`) say about a new copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyCopy {
    /// Never seen.
    New,
    /// A retry of the latest copy (event id): answered `duplicate`.
    Retry(EventId),
    /// The same bytes again, but meant again: the latest copy is older than the retry window,
    /// or its incident's state has changed since (resolve, unresolve, resolve: Sentry's `issue`
    /// bodies carry no timestamp, so the second resolve is byte-identical to the first).
    Repeat,
}

/// Classifies content-hashed keys against their latest stored copy. Repeats are stored under
/// `{key}:{event id}`, so the range `[key, key;)` holds every copy of one body.
pub(crate) async fn body_copies(
    conn: &mut WriteTx,
    keys: &[&str],
    retry_window_starts: i64,
) -> Result<HashMap<String, BodyCopy>, StoreError> {
    let mut out = HashMap::new();
    for key in keys {
        let latest: Option<(EventId, i64, Option<IncidentId>)> =
            on!(&mut *conn, |c, Db| sqlx::query_as(
                "SELECT id, received_at, incident_id FROM events \
             WHERE dedup_key >= $1 AND dedup_key < $1 || ';' ORDER BY id DESC LIMIT 1",
            )
            .bind(*key)
            .fetch_optional(c)
            .await)?;
        let copy = match latest {
            None => BodyCopy::New,
            Some((_, received_at, _)) if received_at < retry_window_starts => BodyCopy::Repeat,
            Some((id, _, Some(incident_id))) => {
                // A later state change (unresolve, mute, ...; alerts carry a severity, changes
                // do not), not a later alert: Sentry reports a regression as `unresolved`, and
                // a late resend of a resolve must not close an episode an alert just reopened.
                let changed_since: bool = on!(&mut *conn, |c, Db| sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE incident_id = $1 AND id > $2 \
                     AND severity IS NULL AND status = 'processed')",
                )
                .bind(incident_id)
                .bind(id)
                .fetch_one(c)
                .await)?;
                if changed_since {
                    BodyCopy::Repeat
                } else {
                    BodyCopy::Retry(id)
                }
            }
            Some((id, _, None)) => BodyCopy::Retry(id),
        };
        out.insert((*key).to_string(), copy);
    }
    Ok(out)
}

/// Which of these key prefixes (one per Sentry event, see `intake::event_key_prefix`) have a
/// stored event. One statement per chunk: each prefix is a range on the unique index (the
/// prefix ends with ':', and ';' sorts right after it).
pub(crate) async fn events_seen(
    conn: &mut WriteTx,
    prefixes: &[String],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut out = std::collections::HashSet::new();
    for chunk in prefixes.chunks(chunk_size(2).min(400)) {
        let keys: Vec<String> = on!(&mut *conn, |c, Db| {
            let mut q = QueryBuilder::<Db>::new("SELECT dedup_key FROM events WHERE ");
            for (i, prefix) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push("(dedup_key >= ")
                    .push_bind(prefix)
                    .push(" AND dedup_key < ")
                    .push_bind(format!("{};", &prefix[..prefix.len() - 1]))
                    .push(")");
            }
            q.build_query_scalar().fetch_all(c).await
        })?;
        for prefix in chunk {
            if keys.iter().any(|k| k.starts_with(prefix.as_str())) {
                out.insert(prefix.clone());
            }
        }
    }
    Ok(out)
}

/// `incidents` as stored: the typed columns as text, decoded (or refused) by [`Self::decode`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct IncidentRow {
    pub id: IncidentId,
    pub incident_key: String,
    pub episode: Episode,
    pub severity: String,
    pub state: String,
    pub title: String,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub level: Option<String>,
    pub culprit: Option<String>,
    pub rule: Option<String>,
    pub sentry_rule: Option<String>,
    pub sentry_issue_id: Option<String>,
    pub sentry_url: Option<String>,
    pub release: Option<String>,
    pub metric_value: Option<f64>,
    pub event_count: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub opened_at: i64,
    pub last_event_id: Option<EventId>,
    pub assignee: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_via: Option<String>,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolved_via: Option<String>,
    pub root_cause: Option<String>,
    pub policy: String,
    pub next_escalation_at: Option<i64>,
    pub escalation_step: i64,
    pub escalation_version: i64,
    pub pagerduty_incident_id: Option<String>,
    pub notified_count: i64,
    pub count_updated_at: Option<i64>,
    pub updated_at: i64,
    pub silenced_by: Option<SilenceId>,
    pub held_escalation_at: Option<i64>,
    pub kind: String,
    pub storm_id: Option<IncidentId>,
    pub storm_join: Option<String>,
    pub ack_event_count: Option<i64>,
    pub episode_event_count: Option<i64>,
    pub confirm_by: Option<i64>,
    pub delivery_degraded_at: Option<i64>,
    pub seer_root_cause: Option<String>,
    pub seer_pr_url: Option<String>,
    pub sentry_echo_episode: Option<Episode>,
    pub escalation_reason: Option<String>,
}

impl IncidentRow {
    /// The typed incident, or which column of which row does not decode (logged and counted in
    /// `seen`).
    pub(crate) fn decode(self, seen: &CorruptRows) -> Result<Incident, CorruptRow> {
        let id = self.id;
        let bad = |field: &'static str, reason: String| {
            seen.found(CorruptRow {
                table: "incidents",
                id: id.get(),
                field,
                reason,
            })
        };
        let via = |field: &'static str, v: Option<String>| {
            v.map(|v| v.parse().map_err(|e| bad(field, format!("{e}"))))
                .transpose()
        };
        Ok(Incident {
            severity: self
                .severity
                .parse()
                .map_err(|e| bad("severity", format!("{e}")))?,
            state: self
                .state
                .parse()
                .map_err(|e| bad("state", format!("{e}")))?,
            policy: Policy::from_json(&self.policy).map_err(|e| bad("policy", e.to_string()))?,
            acknowledged_via: via("acknowledged_via", self.acknowledged_via)?,
            resolved_via: via("resolved_via", self.resolved_via)?,
            id,
            incident_key: self.incident_key,
            episode: self.episode,
            title: self.title,
            project: self.project,
            environment: self.environment,
            level: self.level,
            culprit: self.culprit,
            rule: self.rule,
            sentry_rule: self.sentry_rule,
            sentry_issue_id: self.sentry_issue_id,
            sentry_url: self.sentry_url,
            release: self.release,
            metric_value: self.metric_value,
            event_count: self.event_count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            opened_at: self.opened_at,
            last_event_id: self.last_event_id,
            assignee: self.assignee,
            acknowledged_at: self.acknowledged_at,
            acknowledged_by: self.acknowledged_by,
            resolved_at: self.resolved_at,
            resolved_by: self.resolved_by,
            root_cause: self.root_cause,
            next_escalation_at: self.next_escalation_at,
            escalation_step: self.escalation_step,
            escalation_version: self.escalation_version,
            pagerduty_incident_id: self.pagerduty_incident_id,
            notified_count: self.notified_count,
            count_updated_at: self.count_updated_at,
            updated_at: self.updated_at,
            silenced_by: self.silenced_by,
            held_escalation_at: self.held_escalation_at,
            kind: self.kind.parse().map_err(|e| bad("kind", format!("{e}")))?,
            storm_id: self.storm_id,
            storm_join: self
                .storm_join
                .map(|s| s.parse())
                .transpose()
                .map_err(|e| bad("storm_join", format!("{e}")))?,
            ack_event_count: self.ack_event_count,
            episode_event_count: self.episode_event_count,
            confirm_by: self.confirm_by,
            delivery_degraded_at: self.delivery_degraded_at,
            seer_root_cause: self.seer_root_cause,
            seer_pr_url: self.seer_pr_url,
            sentry_echo_episode: self.sentry_echo_episode,
            escalation_reason: self.escalation_reason,
        })
    }
}

/// Decodes every row; the first that does not decode fails the whole read.
pub(crate) fn decode_all(
    rows: Vec<IncidentRow>,
    seen: &CorruptRows,
) -> Result<Vec<Incident>, StoreError> {
    Ok(rows
        .into_iter()
        .map(|r| r.decode(seen))
        .collect::<Result<_, _>>()?)
}

/// The incidents of these keys, each with its key: one that does not decode is its error
/// (logged), so that the writer can refuse just the webhooks about it.
pub(crate) async fn incidents_by_keys(
    tx: &mut WriteTx,
    keys: &[&str],
) -> Result<Vec<(String, Result<Incident, CorruptRow>)>, StoreError> {
    let mut out = Vec::new();
    for chunk in keys.chunks(chunk_size(1)) {
        let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| {
            let mut q = QueryBuilder::<Db>::new("SELECT * FROM incidents WHERE incident_key IN (");
            let mut sep = q.separated(", ");
            for k in chunk {
                sep.push_bind(*k);
            }
            q.push(")");
            q.build_query_as::<IncidentRow>().fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out
        .into_iter()
        .map(|r| (r.incident_key.clone(), r.decode(tx.corrupt())))
        .collect())
}

pub(crate) async fn incident(
    tx: &mut WriteTx,
    id: IncidentId,
) -> Result<Option<Incident>, StoreError> {
    let row = on!(&mut *tx, |c, Db| sqlx::query_as::<_, IncidentRow>(
        "SELECT * FROM incidents WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|r| r.decode(tx.corrupt())).transpose()?)
}

const INCIDENT_COLUMNS: &[&str] = &[
    "id",
    "incident_key",
    "episode",
    "severity",
    "state",
    "title",
    "project",
    "environment",
    "level",
    "culprit",
    "rule",
    "sentry_rule",
    "sentry_issue_id",
    "sentry_url",
    "release",
    "metric_value",
    "event_count",
    "first_seen",
    "last_seen",
    "opened_at",
    "last_event_id",
    "assignee",
    "acknowledged_at",
    "acknowledged_by",
    "acknowledged_via",
    "resolved_at",
    "resolved_by",
    "resolved_via",
    "root_cause",
    "policy",
    "next_escalation_at",
    "escalation_step",
    "escalation_version",
    "pagerduty_incident_id",
    "notified_count",
    "count_updated_at",
    "updated_at",
    "silenced_by",
    "held_escalation_at",
    "kind",
    "storm_id",
    "storm_join",
    "ack_event_count",
    "episode_event_count",
    "confirm_by",
    "delivery_degraded_at",
    "seer_root_cause",
    "seer_pr_url",
    "sentry_echo_episode",
    "escalation_reason",
];

/// Inserts new incidents and updates changed ones in one statement per chunk. Safe to write
/// every column: all writers share one connection, so nothing can change a row between the
/// caller's read and this write inside its transaction.
pub(crate) async fn upsert_incidents(
    conn: &mut WriteTx,
    rows: &[&Incident],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(chunk_size(INCIDENT_COLUMNS.len())) {
        on!(&mut *conn, |c, Db| {
            let mut q = QueryBuilder::<Db>::new("INSERT INTO incidents (");
            q.push(INCIDENT_COLUMNS.join(", "));
            q.push(") ");
            q.push_values(chunk.iter(), |mut b, i| {
                b.push_bind(i.id)
                    .push_bind(&i.incident_key)
                    .push_bind(i.episode)
                    .push_bind(i.severity)
                    .push_bind(i.state)
                    .push_bind(&i.title)
                    .push_bind(&i.project)
                    .push_bind(&i.environment)
                    .push_bind(&i.level)
                    .push_bind(&i.culprit)
                    .push_bind(&i.rule)
                    .push_bind(&i.sentry_rule)
                    .push_bind(&i.sentry_issue_id)
                    .push_bind(&i.sentry_url)
                    .push_bind(&i.release)
                    .push_bind(i.metric_value)
                    .push_bind(i.event_count)
                    .push_bind(i.first_seen)
                    .push_bind(i.last_seen)
                    .push_bind(i.opened_at)
                    .push_bind(i.last_event_id)
                    .push_bind(&i.assignee)
                    .push_bind(i.acknowledged_at)
                    .push_bind(&i.acknowledged_by)
                    .push_bind(i.acknowledged_via)
                    .push_bind(i.resolved_at)
                    .push_bind(&i.resolved_by)
                    .push_bind(i.resolved_via)
                    .push_bind(&i.root_cause)
                    .push_bind(i.policy.to_json())
                    .push_bind(i.next_escalation_at)
                    .push_bind(i.escalation_step)
                    .push_bind(i.escalation_version)
                    .push_bind(&i.pagerduty_incident_id)
                    .push_bind(i.notified_count)
                    .push_bind(i.count_updated_at)
                    .push_bind(i.updated_at)
                    .push_bind(i.silenced_by)
                    .push_bind(i.held_escalation_at)
                    .push_bind(i.kind)
                    .push_bind(i.storm_id)
                    .push_bind(i.storm_join)
                    .push_bind(i.ack_event_count)
                    .push_bind(i.episode_event_count)
                    .push_bind(i.confirm_by)
                    .push_bind(i.delivery_degraded_at)
                    .push_bind(&i.seer_root_cause)
                    .push_bind(&i.seer_pr_url)
                    .push_bind(i.sentry_echo_episode)
                    .push_bind(&i.escalation_reason);
            });
            q.push(" ON CONFLICT(id) DO UPDATE SET ");
            let updates: Vec<String> = INCIDENT_COLUMNS[1..]
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            q.push(updates.join(", "));
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub(crate) async fn insert_events(conn: &mut WriteTx, rows: &[NewEvent]) -> Result<(), StoreError> {
    for chunk in rows.chunks(chunk_size(20)) {
        on!(&mut *conn, |c, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO events (id, received_at, dedup_key, request_id, source, resource, action, \
                 status, incident_id, severity, rule, project, environment, level, occurrence, body, \
                 body_encoding, details, rate_fp, rate_keys) ",
            );
            q.push_values(chunk.iter(), |mut b, e| {
                b.push_bind(e.id)
                    .push_bind(e.received_at)
                    .push_bind(&e.dedup_key)
                    .push_bind(&e.request_id)
                    .push_bind(e.source)
                    .push_bind(&e.resource)
                    .push_bind(&e.action)
                    .push_bind(e.status)
                    .push_bind(e.incident_id)
                    .push_bind(e.severity)
                    .push_bind(&e.rule)
                    .push_bind(&e.project)
                    .push_bind(&e.environment)
                    .push_bind(&e.level)
                    .push_bind(i64::from(e.occurrence))
                    .push_bind(e.body.bytes.as_ref())
                    .push_bind(e.body.encoding.as_i64())
                    .push_bind(&e.details)
                    .push_bind(e.rate_fp)
                    .push_bind(&e.rate_keys);
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// The stored details of one event (JSON of `intake::details::EventDetails`); `None` when the
/// event is gone or has none (its body was past retention before they were extracted).
pub(crate) async fn event_details(
    pool: &Reader,
    event_id: EventId,
) -> Result<Option<String>, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_scalar::<_, Option<String>>(
        "SELECT details FROM events WHERE id = $1"
    )
    .bind(event_id)
    .fetch_optional(c)
    .await)?
    .flatten())
}

/// `(id, resource, body as received)`. A body that does not decode is its row's [`CorruptRow`]
/// (logged and counted by the read), never an empty body: readers leave that row out.
pub(crate) type BodyRow = (EventId, String, Result<Vec<u8>, CorruptRow>);

/// `(id, resource, body_encoding, body)` as stored.
type StoredBodyRow = (EventId, String, i64, Vec<u8>);

fn decode_bodies(rows: Vec<StoredBodyRow>, corrupt: &CorruptRows) -> Vec<BodyRow> {
    rows.into_iter()
        .map(|(id, resource, encoding, stored)| {
            let raw = body::decode_row(id.get(), encoding, stored).map_err(|e| corrupt.found(e));
            (id, resource, raw)
        })
        .collect()
}

/// Events stored without details (before migration 0005) whose body is still kept, by id, the
/// first `limit` after `after_id`: `(id, resource, body)`.
pub(crate) async fn events_without_details(
    conn: &mut WriteTx,
    corrupt: &CorruptRows,
    after_id: EventId,
    limit: i64,
) -> Result<Vec<BodyRow>, StoreError> {
    let rows = on!(&mut *conn, |c, Db| sqlx::query_as(
        "SELECT id, resource, body_encoding, body FROM events \
         WHERE details IS NULL AND body IS NOT NULL AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(c)
    .await)?;
    Ok(decode_bodies(rows, corrupt))
}

/// Stores `(event id, details JSON)` pairs, in one transaction.
pub(crate) async fn set_event_details(
    conn: &mut WriteTx,
    rows: &[(EventId, String)],
) -> Result<(), StoreError> {
    for (id, details) in rows {
        on!(&mut *conn, |c, Db| sqlx::query(
            "UPDATE events SET details = $1 WHERE id = $2"
        )
        .bind(details)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

pub(crate) async fn insert_timeline(
    conn: &mut WriteTx,
    rows: &[NewTimeline],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(chunk_size(6)) {
        on!(&mut *conn, |c, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO timeline (incident_id, at, kind, actor, via, detail) ",
            );
            q.push_values(chunk.iter(), |mut b, t| {
                b.push_bind(t.incident_id)
                    .push_bind(t.at)
                    .push_bind(t.kind)
                    .push_bind(&t.actor)
                    .push_bind(t.via)
                    .push_bind(&t.detail);
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub(crate) async fn insert_deliveries(
    conn: &mut WriteTx,
    rows: &[NewDelivery],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(chunk_size(8)) {
        on!(&mut *conn, |c, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO deliveries (incident_id, episode, channel, kind, detail, status, next_attempt_at, created_at) ",
            );
            q.push_values(chunk.iter(), |mut b, d| {
                b.push_bind(d.incident_id)
                    .push_bind(d.episode)
                    .push_bind(&d.channel)
                    .push_bind(d.kind)
                    .push_bind(&d.detail)
                    .push_bind(DeliveryStatus::Pending)
                    .push_bind(now)
                    .push_bind(now);
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Writes what a transition produced, beside the incident rows it changed.
pub(crate) async fn apply_effects(
    conn: &mut WriteTx,
    incidents: &[&Incident],
    effects: &Effects,
    now: i64,
) -> Result<(), StoreError> {
    if !incidents.is_empty() {
        upsert_incidents(conn, incidents).await?;
    }
    if !effects.timeline.is_empty() {
        insert_timeline(conn, &effects.timeline).await?;
    }
    if !effects.deliveries.is_empty() {
        insert_deliveries(conn, &effects.deliveries, now).await?;
    }
    Ok(())
}

/// Stored occurrences newer than `since`, oldest first, with their bodies:
/// `((id, resource, body), received_at)`.
pub(crate) async fn recent_occurrences(
    conn: &mut impl AsConn,
    corrupt: &CorruptRows,
    since: i64,
) -> Result<Vec<(BodyRow, i64)>, StoreError> {
    let rows: Vec<(EventId, String, i64, Vec<u8>, i64)> = on!(&mut *conn, |c, Db| sqlx::query_as(
        "SELECT id, resource, body_encoding, body, received_at FROM events \
         WHERE occurrence = 1 AND received_at > $1 AND body IS NOT NULL ORDER BY id",
    )
    .bind(since)
    .fetch_all(c)
    .await)?;
    let (stored, at): (Vec<StoredBodyRow>, Vec<i64>) = rows
        .into_iter()
        .map(|(id, resource, enc, body, at)| ((id, resource, enc, body), at))
        .unzip();
    Ok(decode_bodies(stored, corrupt).into_iter().zip(at).collect())
}

/// One occurrence as a rate window needs it: `(id, received_at, rate_fp, rate_keys)`.
pub(crate) type RateFact = (EventId, i64, Option<i64>, Option<String>);

/// Rows per page of [`rate_facts_page`]: memory stays bounded however many events the window holds.
pub(crate) const RATE_FACTS_PAGE: i64 = 10_000;

/// Occurrences received after `since`, in `(received_at, id)` order, the first `limit` after
/// `after` (`(received_at, id)` of the last row of the previous page). Read from the covering
/// index `events_rate_facts` alone (migration 0009): no row's body is touched.
pub(crate) async fn rate_facts_page(
    conn: &mut impl AsConn,
    since: i64,
    after: Option<(i64, EventId)>,
    limit: i64,
) -> Result<Vec<RateFact>, StoreError> {
    // Separate texts, so that each is a plain range on the index. SQLite is told the index
    // (its planner would otherwise pick `events_received_at` and read every row).
    Ok(on!(&mut *conn, |c, Db| {
        let q = match after {
            None => sqlx::query_as(Db::hinted(
                "SELECT id, received_at, rate_fp, rate_keys FROM events INDEXED BY events_rate_facts \
                 WHERE occurrence = 1 AND received_at > $1 ORDER BY received_at, id LIMIT $2",
            ))
            .bind(since),
            Some((at, id)) => sqlx::query_as(Db::hinted(
                "SELECT id, received_at, rate_fp, rate_keys FROM events INDEXED BY events_rate_facts \
                 WHERE occurrence = 1 AND (received_at, id) > ($1, $2) \
                 ORDER BY received_at, id LIMIT $3",
            ))
            .bind(at)
            .bind(id),
        };
        q.bind(limit).fetch_all(c).await
    })?)
}

/// Occurrences stored from id `from` on, in id order: what other replicas stored since this
/// replica's writer last wrote (ids are handed out in order under the database's write lock).
pub(crate) async fn rate_facts_from(
    conn: &mut WriteTx,
    from: EventId,
) -> Result<Vec<RateFact>, StoreError> {
    Ok(on!(&mut *conn, |c, Db| sqlx::query_as(
        "SELECT id, received_at, rate_fp, rate_keys FROM events \
         WHERE id >= $1 AND occurrence = 1 ORDER BY id",
    )
    .bind(from)
    .fetch_all(c)
    .await)?)
}

/// Occurrences received after `since` whose rate facts were derived under rules other than
/// `fingerprint` (stored before migration 0009, or before a reload): their ids, oldest first.
pub(crate) async fn stale_rate_facts(
    conn: &mut impl AsConn,
    since: i64,
    fingerprint: i64,
) -> Result<Vec<EventId>, StoreError> {
    Ok(on!(&mut *conn, |c, Db| {
        sqlx::query_scalar(Db::hinted(dialect_sql!(Db:
            "SELECT id FROM events INDEXED BY events_rate_facts \
             WHERE occurrence = 1 AND received_at > $1 AND rate_fp "
            [sqlite: "IS NOT", postgres: "IS DISTINCT FROM"]
            " $2 ORDER BY received_at, id"
        )))
        .bind(since)
        .bind(fingerprint)
        .fetch_all(c)
        .await
    })?)
}

/// `(id, resource, body)` of those of `ids` whose body is still kept.
pub(crate) async fn bodies_of(
    conn: &mut impl AsConn,
    corrupt: &CorruptRows,
    ids: &[EventId],
) -> Result<Vec<BodyRow>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_PARAMS) {
        let rows: Vec<StoredBodyRow> = on!(&mut *conn, |c, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT id, resource, body_encoding, body FROM events \
                 WHERE body IS NOT NULL AND id IN (",
            );
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            q.build_query_as().fetch_all(c).await
        })?;
        out.extend(decode_bodies(rows, corrupt));
    }
    Ok(out)
}
