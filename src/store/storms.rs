//! SQL for storm groups: the open storms, the incidents of a severity opened within a window,
//! and a storm's members. Each is an index range (migration 0010), not a scan.

use super::incidents::IncidentRow;
use super::{CorruptRow, StoreError, WriteTx};
use crate::domain::{Incident, IncidentId, Severity};
use crate::store::on;

/// Rows that decode; one that does not is logged and counted by its decode, and left out: a
/// storm then speaks for one fewer, which is better than stopping intake.
fn decoded(tx: &WriteTx, rows: Vec<IncidentRow>) -> Vec<Incident> {
    rows.into_iter()
        .filter_map(|r| r.decode(tx.corrupt()).ok())
        .collect()
}

/// Every storm not resolved yet: read by each intake batch that may open an incident, so a walk
/// of the partial index `incidents_open_storms` (migration 0013), never of `incidents`.
pub(crate) const OPEN_STORMS: &str =
    "SELECT * FROM incidents WHERE kind = 'storm' AND state <> 'resolved' ORDER BY id";

/// Every storm not resolved yet.
pub(crate) async fn open_storms(tx: &mut WriteTx) -> Result<Vec<Incident>, StoreError> {
    let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| sqlx::query_as(OPEN_STORMS)
        .fetch_all(c)
        .await)?;
    Ok(decoded(tx, rows))
}

/// How many issues of `severity` opened (or opened again) at or after `since` and are in no
/// storm. The members of a storm that stopped gathering (acknowledged, paged) are in hand: they
/// must not make the next incident a storm of one.
pub(crate) async fn opened_since(
    tx: &mut WriteTx,
    severity: Severity,
    since: i64,
) -> Result<i64, StoreError> {
    Ok(on!(&mut *tx, |c, Db| sqlx::query_scalar(
        "SELECT COUNT(*) FROM incidents WHERE severity = $1 AND opened_at >= $2 AND kind = 'issue' \
         AND storm_id IS NULL",
    )
    .bind(severity)
    .bind(since)
    .fetch_one(c)
    .await)?)
}

/// The issues of `severity` opened at or after `since` that a storm forming now takes in: still
/// triggered, in no storm, not silenced, not escalated on their own.
pub(crate) async fn join_candidates(
    tx: &mut WriteTx,
    severity: Severity,
    since: i64,
) -> Result<Vec<Incident>, StoreError> {
    let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| sqlx::query_as(
        "SELECT * FROM incidents WHERE severity = $1 AND opened_at >= $2 AND kind = 'issue' \
         AND state = 'triggered' AND storm_id IS NULL AND silenced_by IS NULL \
         AND escalation_step = 0 ORDER BY opened_at, id",
    )
    .bind(severity)
    .bind(since)
    .fetch_all(c)
    .await)?;
    Ok(decoded(tx, rows))
}

/// How many members of a storm are not resolved: an index-only count (`incidents_storm_open`,
/// migration 0014).
pub(crate) const OPEN_MEMBERS: &str =
    "SELECT COUNT(*) FROM incidents WHERE storm_id = $1 AND state <> 'resolved'";

/// How many members of a storm are not resolved.
pub(crate) async fn open_members(tx: &mut WriteTx, storm: IncidentId) -> Result<i64, StoreError> {
    Ok(on!(&mut *tx, |c, Db| sqlx::query_scalar(OPEN_MEMBERS)
        .bind(storm)
        .fetch_one(c)
        .await)?)
}

/// The members of a storm, in the order they opened (index `incidents_storm_members`).
pub(crate) async fn members(
    tx: &mut WriteTx,
    storm: IncidentId,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| sqlx::query_as(
        "SELECT * FROM incidents WHERE storm_id = $1 ORDER BY opened_at, id"
    )
    .bind(storm)
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(|r| r.decode(tx.corrupt())).collect())
}

#[cfg(test)]
mod tests;
