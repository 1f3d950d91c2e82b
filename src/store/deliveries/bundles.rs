//! Bundle cards of Slack bot mode (migration 0011): which card lists which incident episodes,
//! so that a card can grow while it is recent and a member's acknowledgement re-renders it.
//! Webhook and email bundles are not stored: they cannot be edited after they are sent.

use super::super::StoreError;
use crate::domain::{Episode, IncidentId};
use crate::store::{Reader, WriteTx, on};

/// One incident episode listed on a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Member {
    pub incident_id: IncidentId,
    pub episode: Episode,
}

/// A posted bundle card and its members in card order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: i64,
    pub slack_channel: String,
    pub ts: String,
    pub members: Vec<Member>,
}

/// What a bundle send leaves to store: the card it posted or updated, listing `members`.
#[derive(Debug, Clone)]
pub(crate) struct CardWrite<'a> {
    /// The channel's name in `routing.yaml`.
    pub channel: &'a str,
    pub slack_channel: &'a str,
    pub ts: &'a str,
    /// The card that was grown, when Slack kept its ts (a new post gets a new card row).
    pub grown: Option<&'a Card>,
    pub members: &'a [Member],
    pub now: i64,
}

/// The newest card of `channel` posted at or after `since`, if it can take `adding` more
/// members without listing more than `max`.
pub(crate) async fn growable(
    pool: &Reader,
    channel: &str,
    since: i64,
    adding: usize,
    max: usize,
) -> Result<Option<Card>, StoreError> {
    let row: Option<(i64, String, String)> = on!(pool, |c, Db| {
        sqlx::query_as(
        "SELECT id, slack_channel, slack_ts FROM bundles WHERE channel = $1 AND created_at >= $2 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(channel)
    .bind(since)
    .fetch_optional(c)
    .await
    })?;
    let Some(card) = with_members(pool, row).await? else {
        return Ok(None);
    };
    Ok((card.members.len() + adding <= max).then_some(card))
}

/// The newest card of `channel` that lists this incident episode.
pub(crate) async fn card_of(
    pool: &Reader,
    incident_id: IncidentId,
    episode: Episode,
    channel: &str,
) -> Result<Option<Card>, StoreError> {
    let row: Option<(i64, String, String)> = on!(pool, |c, Db| sqlx::query_as(
        "SELECT b.id, b.slack_channel, b.slack_ts FROM bundle_members m \
         JOIN bundles b ON b.id = m.bundle_id \
         WHERE m.incident_id = $1 AND m.episode = $2 AND b.channel = $3 \
         ORDER BY b.id DESC LIMIT 1",
    )
    .bind(incident_id)
    .bind(episode)
    .bind(channel)
    .fetch_optional(c)
    .await)?;
    with_members(pool, row).await
}

async fn with_members(
    pool: &Reader,
    row: Option<(i64, String, String)>,
) -> Result<Option<Card>, StoreError> {
    let Some((id, slack_channel, ts)) = row else {
        return Ok(None);
    };
    let members: Vec<Member> = on!(pool, |c, Db| {
        sqlx::query_as(
        "SELECT incident_id, episode FROM bundle_members WHERE bundle_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(c)
    .await
    })?;
    Ok(Some(Card {
        id,
        slack_channel,
        ts,
        members,
    }))
}

/// Stores the card a bundle send posted or grew, inside the caller's transaction.
pub(crate) async fn store_card(conn: &mut WriteTx, w: &CardWrite<'_>) -> Result<(), StoreError> {
    let id = match w.grown.filter(|c| c.ts == w.ts) {
        Some(card) => {
            on!(&mut *conn, |c, Db| sqlx::query(
                "UPDATE bundles SET updated_at = $1 WHERE id = $2"
            )
            .bind(w.now)
            .bind(card.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            on!(&mut *conn, |c, Db| sqlx::query(
                "DELETE FROM bundle_members WHERE bundle_id = $1"
            )
            .bind(card.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            card.id
        }
        None => on!(&mut *conn, |c, Db| sqlx::query_scalar(
            "INSERT INTO bundles (channel, slack_channel, slack_ts, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(w.channel)
        .bind(w.slack_channel)
        .bind(w.ts)
        .bind(w.now)
        .bind(w.now)
        .fetch_one(c)
        .await)?,
    };
    for (position, m) in w.members.iter().enumerate() {
        on!(&mut *conn, |c, Db| sqlx::query(
            "INSERT INTO bundle_members (bundle_id, position, incident_id, episode) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(m.incident_id)
        .bind(m.episode)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}
