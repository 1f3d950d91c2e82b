//! Silences (`silences`) and the incidents they hold (`incidents.silenced_by`).

use super::incidents::IncidentRow;
use super::{CorruptRow, CorruptRows, StoreError, WriteTx};
use crate::domain::{
    EventId, Incident, IncidentId, Matchers, NewSilence, Severity, Silence, SilenceId,
};
use crate::store::{AsConn, dialect_sql, on};

/// `silences` as stored; [`SilenceRow::decode`] reads the JSON columns.
#[derive(Debug, Clone, sqlx::FromRow)]
struct SilenceRow {
    id: SilenceId,
    matchers: String,
    starts_at: i64,
    ends_at: i64,
    author: String,
    comment: String,
    let_through: String,
    created_at: i64,
    expired_at: Option<i64>,
}

impl SilenceRow {
    fn decode(self, seen: &CorruptRows) -> Result<Silence, CorruptRow> {
        let bad = |field: &'static str, reason: String| {
            seen.found(CorruptRow {
                table: "silences",
                id: self.id.get(),
                field,
                reason,
            })
        };
        let matchers: Matchers =
            serde_json::from_str(&self.matchers).map_err(|e| bad("matchers", e.to_string()))?;
        let let_through: Vec<Severity> = serde_json::from_str(&self.let_through)
            .map_err(|e| bad("let_through", e.to_string()))?;
        Ok(Silence {
            id: self.id,
            matchers,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            author: self.author,
            comment: self.comment,
            let_through,
            expired_at: self.expired_at,
            created_at: self.created_at,
        })
    }
}

/// Decodes the rows that decode; the others are logged and counted by `decode` and left out, so
/// that one damaged silence neither stops intake nor hides the rest. Leaving it out lets alerts
/// through: a page too many, never one lost.
fn decode_readable(rows: Vec<SilenceRow>, seen: &CorruptRows) -> Vec<Silence> {
    rows.into_iter()
        .filter_map(|r| r.decode(seen).ok())
        .collect()
}

/// Stores a validated silence and returns it with its id.
pub(crate) async fn insert(
    tx: &mut WriteTx,
    new: &NewSilence,
    now: i64,
) -> Result<Silence, StoreError> {
    let matchers = serde_json::to_string(&new.matchers)
        .map_err(|e| StoreError::Corrupt(format!("matchers not serializable: {e}")))?;
    let let_through = serde_json::to_string(&new.let_through)
        .map_err(|e| StoreError::Corrupt(format!("let_through not serializable: {e}")))?;
    let id: SilenceId = on!(&mut *tx, |c, Db| {
        sqlx::query_scalar(
        "INSERT INTO silences (matchers, starts_at, ends_at, author, comment, let_through, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(matchers)
    .bind(new.starts_at)
    .bind(new.ends_at)
    .bind(&new.author)
    .bind(&new.comment)
    .bind(let_through)
    .bind(now)
    .fetch_one(c)
    .await
    })?;
    Ok(Silence {
        id,
        matchers: new.matchers.clone(),
        starts_at: new.starts_at,
        ends_at: new.ends_at,
        author: new.author.clone(),
        comment: new.comment.clone(),
        let_through: new.let_through.clone(),
        expired_at: None,
        created_at: now,
    })
}

/// Every silence, newest first (at most `limit`).
pub(crate) async fn list(
    conn: &mut impl AsConn,
    seen: &CorruptRows,
    limit: i64,
) -> Result<Vec<Silence>, StoreError> {
    let rows: Vec<SilenceRow> = on!(&mut *conn, |c, Db| sqlx::query_as(
        "SELECT * FROM silences ORDER BY id DESC LIMIT $1"
    )
    .bind(limit)
    .fetch_all(c)
    .await)?;
    Ok(decode_readable(rows, seen))
}

pub(crate) async fn get(
    conn: &mut impl AsConn,
    seen: &CorruptRows,
    id: SilenceId,
) -> Result<Option<Silence>, StoreError> {
    let row: Option<SilenceRow> = on!(&mut *conn, |c, Db| sqlx::query_as(
        "SELECT * FROM silences WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|r| r.decode(seen)).transpose()?)
}

/// The silences in force at `now` (started, not ended, not expired), lowest id first.
pub(crate) async fn active(
    conn: &mut impl AsConn,
    seen: &CorruptRows,
    now: i64,
) -> Result<Vec<Silence>, StoreError> {
    let rows: Vec<SilenceRow> = on!(&mut *conn, |c, Db| sqlx::query_as(
        "SELECT * FROM silences WHERE released_at IS NULL AND starts_at <= $1 \
         AND ends_at > $1 AND (expired_at IS NULL OR expired_at > $1) ORDER BY id",
    )
    .bind(now)
    .fetch_all(c)
    .await)?;
    Ok(decode_readable(rows, seen))
}

/// Ends a silence now: kept in the history with `expired_at`. False when it had already ended.
pub(crate) async fn expire(tx: &mut WriteTx, id: SilenceId, now: i64) -> Result<bool, StoreError> {
    let r = on!(&mut *tx, |c, Db| {
        sqlx::query(
        "UPDATE silences SET expired_at = $1 WHERE id = $2 AND expired_at IS NULL AND ends_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(c)
    .await.map(|r| r.rows_affected())
    })?;
    Ok(r == 1)
}

/// Ids of silences that have ended by `now` and whose held incidents are not yet released.
pub(crate) async fn ended_unreleased(
    tx: &mut WriteTx,
    now: i64,
    limit: i64,
) -> Result<Vec<SilenceId>, StoreError> {
    let ids: Vec<SilenceId> = on!(&mut *tx, |c, Db| sqlx::query_scalar(dialect_sql!(Db:
        "SELECT id FROM silences WHERE released_at IS NULL AND "
        [sqlite: "MIN", postgres: "LEAST"]
        "(ends_at, COALESCE(expired_at, ends_at)) <= $1 ORDER BY id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(c)
    .await)?;
    Ok(ids)
}

/// Records that the incidents a silence held were released (in the transaction that released
/// them): the once-only proof.
pub(crate) async fn mark_released(
    tx: &mut WriteTx,
    id: SilenceId,
    now: i64,
) -> Result<(), StoreError> {
    on!(&mut *tx, |c, Db| sqlx::query(
        "UPDATE silences SET released_at = $1 WHERE id = $2 AND released_at IS NULL"
    )
    .bind(now)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The incidents a silence holds. One that does not decode is its error, so the caller can
/// release the others and unhold it.
pub(crate) async fn held_incidents(
    tx: &mut WriteTx,
    id: SilenceId,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| sqlx::query_as(
        "SELECT * FROM incidents WHERE silenced_by = $1 ORDER BY id"
    )
    .bind(id)
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(|r| r.decode(tx.corrupt())).collect())
}

/// Triggered incidents no silence holds: what a new silence may hold at once. One that does not
/// decode is its error (logged and counted), left alone.
pub(crate) async fn unheld_triggered(
    tx: &mut WriteTx,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| sqlx::query_as(
        "SELECT * FROM incidents WHERE state = 'triggered' AND silenced_by IS NULL ORDER BY id",
    )
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(|r| r.decode(tx.corrupt())).collect())
}

/// Clears `silenced_by` of an incident row that cannot be read (it cannot be notified: its
/// policy is unknown), so that it is not looked at again.
pub(crate) async fn unhold(tx: &mut WriteTx, incident_id: IncidentId) -> Result<(), StoreError> {
    on!(&mut *tx, |c, Db| sqlx::query(
        "UPDATE incidents SET silenced_by = NULL WHERE id = $1"
    )
    .bind(incident_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The stored details (JSON of `intake::details::EventDetails`) of an event, if any.
pub(crate) async fn event_details(
    tx: &mut WriteTx,
    event_id: EventId,
) -> Result<Option<String>, StoreError> {
    Ok(
        on!(&mut *tx, |c, Db| sqlx::query_scalar::<_, Option<String>>(
            "SELECT details FROM events WHERE id = $1"
        )
        .bind(event_id)
        .fetch_optional(c)
        .await)?
        .flatten(),
    )
}

/// How many incidents each silence holds now.
pub(crate) async fn held_counts(
    conn: &mut impl AsConn,
) -> Result<Vec<(SilenceId, i64)>, StoreError> {
    let rows: Vec<(SilenceId, i64)> = on!(&mut *conn, |c, Db| {
        sqlx::query_as(
        "SELECT silenced_by, COUNT(*) FROM incidents WHERE silenced_by IS NOT NULL GROUP BY silenced_by",
    )
    .fetch_all(c)
    .await
    })?;
    Ok(rows)
}

/// The earliest end of a silence still to release: when the expiry worker must look next.
pub(crate) async fn next_end(conn: &mut impl AsConn) -> Result<Option<i64>, StoreError> {
    Ok(on!(&mut *conn, |c, Db| {
        sqlx::query_scalar(dialect_sql!(Db:
            "SELECT MIN(" [sqlite: "MIN", postgres: "LEAST"]
            "(ends_at, COALESCE(expired_at, ends_at))) FROM silences WHERE released_at IS NULL"
        ))
        .fetch_one(c)
        .await
    })?)
}
