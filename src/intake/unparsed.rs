//! Sentry payloads we kept but could not read, by resource and shape (`unparsed_shapes`).
//!
//! Sentry's payloads drift. A shape we cannot read is stored (never dropped, never a titleless
//! incident) and announced once: the first sighting of a (resource, shape) inserts its row in the
//! same transaction as the event, and only that insert queues the announcement (an outbox row per
//! channel, `crate::notify::notice`) in that transaction too, so neither a second sighting, nor
//! a retried webhook, nor a restart announces it again, and a crash cannot lose it.

use super::AlertFacts;
use crate::config::RoutingConfig;
use crate::domain::{ChannelKind, EventId, NoticeKind, Severity, UnreadablePayload};
use crate::store::{Reader, WriteTx, on};
use crate::store::{StoreError, deliveries};

/// One unparsed event of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sighting<'a> {
    pub resource: &'a str,
    pub shape: &'a str,
    pub reason: &'a str,
    pub event_id: EventId,
}

impl<'a> Sighting<'a> {
    /// `None` unless `facts` are of an unparsed payload.
    pub(crate) fn of(facts: &'a AlertFacts, event_id: EventId) -> Option<Self> {
        let u = facts.unreadable.as_ref()?;
        Some(Self {
            resource: &facts.resource,
            shape: &u.shape,
            reason: &u.reason,
            event_id,
        })
    }
}

/// A (resource, shape) seen for the first time: what gets announced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewShape {
    pub resource: String,
    pub shape: String,
    pub reason: String,
    pub event_id: EventId,
    pub received_at: i64,
}

/// Counts each sighting against its shape; returns the shapes never seen before. Runs inside
/// the writer's transaction, after the events are inserted. Unparsed payloads are rare, so one
/// statement per sighting is fine.
pub(crate) async fn record(
    conn: &mut WriteTx,
    sightings: &[Sighting<'_>],
    now: i64,
) -> Result<Vec<NewShape>, sqlx::Error> {
    let mut new = Vec::new();
    for s in sightings {
        let seen: i64 = on!(&mut *conn, |c, Db| {
            sqlx::query_scalar(
            "INSERT INTO unparsed_shapes (resource, shape, reason, first_event_id, last_event_id, \
             seen, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7) \
             ON CONFLICT (resource, shape) DO UPDATE SET seen = unparsed_shapes.seen + 1, \
             last_event_id = excluded.last_event_id, last_seen_at = excluded.last_seen_at \
             RETURNING seen",
        )
        .bind(s.resource)
        .bind(s.shape)
        .bind(s.reason)
        .bind(s.event_id)
        .bind(s.event_id)
        .bind(now)
        .bind(now)
        .fetch_one(c)
        .await
        })?;
        if seen == 1 {
            new.push(NewShape {
                resource: s.resource.to_string(),
                shape: s.shape.to_string(),
                reason: s.reason.to_string(),
                event_id: s.event_id,
                received_at: now,
            });
        }
    }
    Ok(new)
}

/// Queues the announcement of each new shape: one `unreadable_payload` outbox row per channel of
/// [`notice_channels`], in the caller's (the intake) transaction. Returns those channels.
pub(crate) async fn queue_announcements(
    conn: &mut WriteTx,
    cfg: &RoutingConfig,
    new: &[NewShape],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let channels = notice_channels(cfg);
    for n in new {
        let detail = UnreadablePayload {
            resource: n.resource.clone(),
            shape: n.shape.clone(),
            reason: n.reason.clone(),
            event_id: n.event_id,
            received_at: n.received_at,
        }
        .to_detail();
        deliveries::insert_notices(conn, &channels, NoticeKind::UnreadablePayload, &detail, now)
            .await?;
    }
    Ok(channels)
}

/// Logs what was queued, once it is committed. Without a channel to announce it on the log line
/// is all there is, so it says how to get one.
pub(crate) fn log_announced(new: &[NewShape], channels: &[String]) {
    for n in new {
        if channels.is_empty() {
            tracing::warn!(
                resource = %n.resource,
                shape = %display_shape(&n.shape),
                reason = %n.reason,
                event_id = n.event_id.get(),
                "Sentry sent an `{}` we could not read; it is stored (status unparsed) and listed on the on-call page, \
                 but no channel announces it: the critical severity notifies no Slack, email or log channel",
                n.resource
            );
        } else {
            tracing::warn!(
                resource = %n.resource,
                shape = %display_shape(&n.shape),
                reason = %n.reason,
                event_id = n.event_id.get(),
                channels = %channels.join(", "),
                "Sentry sent an `{}` we could not read; it is stored (status unparsed), listed on the on-call page and announced",
                n.resource
            );
        }
    }
}

/// How a shape reads to people: its keys, or a note that `data` was empty.
pub(crate) fn display_shape(shape: &str) -> &str {
    if shape.is_empty() {
        "(no fields)"
    } else {
        shape
    }
}

/// One row of `unparsed_shapes`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct ShapeRow {
    pub resource: String,
    pub shape: String,
    pub reason: String,
    pub first_event_id: EventId,
    pub last_event_id: EventId,
    pub seen: i64,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
}

/// The shapes seen most recently first.
pub(crate) async fn recent(pool: &Reader, limit: i64) -> Result<Vec<ShapeRow>, sqlx::Error> {
    on!(pool, |c, Db| sqlx::query_as(
        "SELECT resource, shape, reason, first_event_id, last_event_id, seen, first_seen_at, \
         last_seen_at FROM unparsed_shapes ORDER BY last_seen_at DESC, resource, shape LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await)
}

/// The channels a notice goes to: those the `critical` policy notifies first, except PagerDuty.
/// Critical is where on call looks; a format change is worth their attention but never worth
/// waking someone up. Channels missing from the routing file are left out.
pub(crate) fn notice_channels(cfg: &RoutingConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in cfg.policy(Severity::Critical).notify {
        let kind = cfg.channels.get(&name).map(|c| c.kind);
        if kind.is_some_and(|k| k != ChannelKind::Pagerduty) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}
