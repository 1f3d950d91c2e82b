//! What the API and the web page list: incidents (filtered, newest first), one incident, its
//! timeline, the event count.

use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite};

use super::incidents::{IncidentRow, decode_all};
use super::{CorruptRow, CorruptRows, Reader, StoreError};
use crate::domain::{Incident, IncidentId, IncidentState, ParseError, Severity, TimelineKind, Via};

#[derive(Debug, Default)]
pub(crate) struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub severity: Option<Severity>,
    pub limit: i64,
    pub before_id: Option<IncidentId>,
}

/// Newest first. A row that does not decode is listed as its error (logged), so that one bad
/// row shows as unreadable instead of hiding every other incident.
pub(crate) async fn list_incidents(
    reader: &Reader,
    f: &IncidentFilter,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM incidents WHERE 1 = 1");
    if let Some(s) = &f.state {
        q.push(" AND state = ").push_bind(s);
    }
    if let Some(s) = &f.severity {
        q.push(" AND severity = ").push_bind(s);
    }
    if let Some(b) = f.before_id {
        q.push(" AND id < ").push_bind(b);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
    let rows: Vec<IncidentRow> = q.build_query_as().fetch_all(&**reader).await?;
    Ok(rows
        .into_iter()
        .map(|r| r.decode(reader.corrupt()))
        .collect())
}

pub(crate) async fn incident(
    reader: &Reader,
    id: IncidentId,
) -> Result<Option<Incident>, StoreError> {
    let row: Option<IncidentRow> = sqlx::query_as("SELECT * FROM incidents WHERE id = ?")
        .bind(id)
        .fetch_optional(&**reader)
        .await?;
    Ok(decode_all(row.into_iter().collect(), reader.corrupt())?.pop())
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TimelineEntry {
    pub at: i64,
    pub kind: TimelineKind,
    pub actor: Option<String>,
    pub via: Option<Via>,
    pub detail: Option<String>,
}

/// A `timeline` row as stored, before its words are decoded.
#[derive(sqlx::FromRow)]
struct TimelineRow {
    /// `timeline.id`: only named in a [`CorruptRow`], so it has no id type of its own.
    id: i64,
    at: i64,
    kind: String,
    actor: Option<String>,
    via: Option<String>,
    detail: Option<String>,
}

impl TimelineRow {
    fn decode(self, seen: &CorruptRows) -> Result<TimelineEntry, CorruptRow> {
        let id = self.id;
        let bad = |field: &'static str, e: ParseError| {
            seen.found(CorruptRow {
                table: "timeline",
                id,
                field,
                reason: e.to_string(),
            })
        };
        Ok(TimelineEntry {
            at: self.at,
            kind: self.kind.parse().map_err(|e| bad("kind", e))?,
            actor: self.actor,
            via: self
                .via
                .map(|v| v.parse().map_err(|e| bad("via", e)))
                .transpose()?,
            detail: self.detail,
        })
    }
}

/// Oldest first. A row whose words do not decode fails the read (logged and counted).
pub(crate) async fn timeline(
    reader: &Reader,
    incident_id: IncidentId,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let rows: Vec<TimelineRow> = sqlx::query_as(
        "SELECT id, at, kind, actor, via, detail FROM timeline WHERE incident_id = ? ORDER BY at, id",
    )
    .bind(incident_id)
    .fetch_all(&**reader)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.decode(reader.corrupt()))
        .collect::<Result<_, _>>()?)
}
