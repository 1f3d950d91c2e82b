//! Escalation deadlines and the record of escalations fired.

use sqlx::{SqliteConnection, SqlitePool};

use super::incidents::IncidentRow;
use super::{CorruptRow, StoreError, WriteTx};
use crate::domain::{Episode, Incident, IncidentId};

/// Incidents whose escalation is due, oldest deadline first. One that does not decode is its
/// error (logged and counted, see [`IncidentRow::decode`]), so that it cannot hold up the others.
pub(crate) async fn due(
    tx: &mut WriteTx,
    now: i64,
    limit: i64,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let rows: Vec<IncidentRow> = sqlx::query_as(
        "SELECT * FROM incidents WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= ? \
         ORDER BY next_escalation_at LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| r.decode(tx.corrupt())).collect())
}

/// Moves the deadline of an incident that cannot be read to `until`: it cannot be escalated
/// (its policy is unknown) but must not keep the scheduler busy; once the row is repaired it
/// fires at `until`.
pub(crate) async fn postpone(
    conn: &mut SqliteConnection,
    incident_id: IncidentId,
    until: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE incidents SET next_escalation_at = ? WHERE id = ?")
        .bind(until)
        .bind(incident_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The unique (incident, episode, step) key makes a second firing of the same step an error
/// that rolls its transaction back, whatever else went wrong.
/// Records that a step fired; false when that step of that episode is already on record (then
/// it must not fire again).
pub(crate) async fn record(
    conn: &mut SqliteConnection,
    incident_id: IncidentId,
    episode: Episode,
    step: i64,
    due_at: i64,
    fired_at: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "INSERT INTO escalations (incident_id, episode, step, due_at, fired_at, lateness_ms) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(incident_id)
    .bind(episode)
    .bind(step)
    .bind(due_at)
    .bind(fired_at)
    .bind(fired_at - due_at)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub(crate) async fn next_due(pool: &SqlitePool) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(next_escalation_at) FROM incidents WHERE next_escalation_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await?)
}
