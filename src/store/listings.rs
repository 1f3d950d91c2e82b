//! What the API and the web page list: incidents (filtered, newest first), the open ones by
//! urgency and the resolved ones by page (the web page), one incident, its timeline, its last
//! event's details and escalations, and the deliveries that need a person (dead or failing).

use crate::store::on;
use serde::Serialize;
use sqlx::QueryBuilder;

use super::incidents::{IncidentRow, decode_all};
use super::{CorruptRow, CorruptRows, Dialect, Reader, StoreError};
use crate::domain::{
    DeliveryId, DeliveryStatus, Episode, EventId, Incident, IncidentId, IncidentState, ParseError,
    Severity, TimelineKind, Via,
};

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
    let rows: Vec<IncidentRow> = on!(reader, |c, Db| {
        let mut q = QueryBuilder::<Db>::new("SELECT * FROM incidents WHERE 1 = 1");
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
        q.build_query_as().fetch_all(c).await
    })?;
    Ok(rows
        .into_iter()
        .map(|r| r.decode(reader.corrupt()))
        .collect())
}

pub(crate) async fn incident(
    reader: &Reader,
    id: IncidentId,
) -> Result<Option<Incident>, StoreError> {
    let row: Option<IncidentRow> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT * FROM incidents WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?;
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
    let rows: Vec<TimelineRow> = on!(reader, |c, Db| {
        sqlx::query_as(
        "SELECT id, at, kind, actor, via, detail FROM timeline WHERE incident_id = $1 ORDER BY at, id",
    )
    .bind(incident_id)
    .fetch_all(c)
    .await
    })?;
    Ok(rows
        .into_iter()
        .map(|r| r.decode(reader.corrupt()))
        .collect::<Result<_, _>>()?)
}

/// What the web page narrows its lists to. Every field is optional; `search` matches part of the
/// title, case-insensitively, with `%` and `_` taken literally.
#[derive(Debug, Default, Clone)]
pub(crate) struct PageFilter {
    pub state: Option<IncidentState>,
    pub severity: Option<Severity>,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub search: Option<String>,
}

impl PageFilter {
    fn push<'a, DB>(&self, q: &mut QueryBuilder<DB>)
    where
        DB: sqlx::Database + Dialect,
        IncidentState: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
        Severity: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    {
        if let Some(s) = self.state {
            q.push(" AND state = ").push_bind(s);
        }
        if let Some(s) = self.severity {
            q.push(" AND severity = ").push_bind(s);
        }
        if let Some(p) = &self.project {
            q.push(" AND project = ").push_bind(p.clone());
        }
        if let Some(e) = &self.environment {
            q.push(" AND environment = ").push_bind(e.clone());
        }
        if let Some(text) = &self.search {
            let escaped = text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            // SQLite's LIKE ignores the case of ASCII letters; PostgreSQL's needs ILIKE.
            q.push(DB::pick(" AND title LIKE ", " AND title ILIKE "))
                .push_bind(format!("%{escaped}%"))
                .push(" ESCAPE '\\'");
        }
    }
}

/// SQL: a severity's rank, most severe highest (the order of [`Severity`]).
const SEVERITY_RANK: &str = "CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 \
     WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END";

/// SQL: the urgency group of an open incident, most urgent lowest: triggered Critical, triggered
/// High, acknowledged (someone is on it), then everything else (triggered Medium, Low and
/// unclassified, muted ones, and ones a silence holds: nobody is paged for those), by severity
/// within.
const URGENCY_GROUP: &str = "CASE WHEN silenced_by IS NOT NULL THEN 3 \
     WHEN state = 'triggered' AND severity = 'critical' THEN 0 \
     WHEN state = 'triggered' AND severity = 'high' THEN 1 \
     WHEN state = 'acknowledged' THEN 2 ELSE 3 END";

/// An open incident and when its last escalation fired (this episode), if one did.
#[derive(Debug)]
pub(crate) struct OpenIncident {
    pub incident: Result<Incident, CorruptRow>,
    pub last_escalated_at: Option<i64>,
}

/// Open incidents (not resolved) by urgency: see [`URGENCY_GROUP`]; within a group the more
/// severe first, then the soonest escalation, then the newest. At most `limit`.
pub(crate) async fn open_by_urgency(
    reader: &Reader,
    f: &PageFilter,
    limit: i64,
) -> Result<Vec<OpenIncident>, StoreError> {
    if f.state == Some(IncidentState::Resolved) {
        return Ok(Vec::new());
    }
    let rows: Vec<IncidentRow> = on!(reader, |c, Db| {
        let mut q = QueryBuilder::<Db>::new("SELECT * FROM incidents WHERE state != 'resolved'");
        f.push(&mut q);
        q.push(format!(
            " ORDER BY {URGENCY_GROUP}, {SEVERITY_RANK} DESC, next_escalation_at IS NULL, \
             next_escalation_at, id DESC LIMIT "
        ))
        .push_bind(limit);
        q.build_query_as().fetch_all(c).await
    })?;
    let fired: Vec<(IncidentId, i64)> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT e.incident_id, MAX(e.fired_at) FROM escalations e \
         JOIN incidents i ON i.id = e.incident_id AND i.episode = e.episode \
         WHERE i.state != 'resolved' GROUP BY e.incident_id",
    )
    .fetch_all(c)
    .await)?;
    let fired: std::collections::HashMap<IncidentId, i64> = fired.into_iter().collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let last_escalated_at = fired.get(&r.id).copied();
            OpenIncident {
                incident: r.decode(reader.corrupt()),
                last_escalated_at,
            }
        })
        .collect())
}

/// One page of resolved incidents, most recently resolved first: up to `per_page` rows from
/// `page` (0-based), and whether a later page has any.
pub(crate) async fn resolved_page(
    reader: &Reader,
    f: &PageFilter,
    page: u32,
    per_page: u32,
) -> Result<(Vec<Result<Incident, CorruptRow>>, bool), StoreError> {
    if f.state.is_some_and(|s| s != IncidentState::Resolved) {
        return Ok((Vec::new(), false));
    }
    let mut rows: Vec<IncidentRow> = on!(reader, |c, Db| {
        let mut q = QueryBuilder::<Db>::new("SELECT * FROM incidents WHERE state = 'resolved'");
        f.push(&mut q);
        q.push(" ORDER BY resolved_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(per_page) + 1)
            .push(" OFFSET ")
            .push_bind(i64::from(page) * i64::from(per_page));
        q.build_query_as().fetch_all(c).await
    })?;
    let more = rows.len() > per_page as usize;
    rows.truncate(per_page as usize);
    Ok((
        rows.into_iter()
            .map(|r| r.decode(reader.corrupt()))
            .collect(),
        more,
    ))
}

/// The distinct projects and environments of stored incidents, for the filter's choices.
pub(crate) async fn filter_choices(
    reader: &Reader,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let projects = on!(reader, |c, Db| {
        sqlx::query_scalar(
        "SELECT DISTINCT project FROM incidents WHERE project IS NOT NULL ORDER BY project LIMIT 200",
    )
    .fetch_all(c)
    .await
    })?;
    let environments = on!(reader, |c, Db| sqlx::query_scalar(
        "SELECT DISTINCT environment FROM incidents WHERE environment IS NOT NULL \
         ORDER BY environment LIMIT 200",
    )
    .fetch_all(c)
    .await)?;
    Ok((projects, environments))
}

/// The stored details (JSON of `intake::details::EventDetails`) of an event, `None` when it has
/// none (past retention before they were extracted) or is gone.
pub(crate) async fn event_details(
    reader: &Reader,
    event_id: EventId,
) -> Result<Option<String>, StoreError> {
    Ok(on!(reader, |c, Db| sqlx::query_scalar::<_, Option<String>>(
        "SELECT details FROM events WHERE id = $1"
    )
    .bind(event_id)
    .fetch_optional(c)
    .await)?
    .flatten())
}

/// An escalation step that fired.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct FiredEscalation {
    pub episode: Episode,
    pub step: i64,
    pub due_at: i64,
    pub fired_at: i64,
}

/// Every escalation step that fired for the incident, oldest first.
pub(crate) async fn escalations(
    reader: &Reader,
    incident_id: IncidentId,
) -> Result<Vec<FiredEscalation>, StoreError> {
    Ok(on!(reader, |c, Db| sqlx::query_as(
        "SELECT episode, step, due_at, fired_at FROM escalations WHERE incident_id = $1 \
         ORDER BY episode, step",
    )
    .bind(incident_id)
    .fetch_all(c)
    .await)?)
}

/// A delivery that needs a person: dead (never retried again) or failing (retrying), with the
/// title of its incident when it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TroubledDelivery {
    pub id: DeliveryId,
    pub incident_id: Option<IncidentId>,
    pub incident_title: Option<String>,
    pub channel: String,
    pub kind: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// Dead and failing deliveries, newest first, at most `limit`.
pub(crate) async fn troubled_deliveries(
    reader: &Reader,
    limit: i64,
) -> Result<Vec<TroubledDelivery>, StoreError> {
    Ok(on!(reader, |c, Db| sqlx::query_as(
        "SELECT d.id, d.incident_id, i.title AS incident_title, d.channel, d.kind, d.status, \
         d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at \
         FROM deliveries d LEFT JOIN incidents i ON i.id = d.incident_id \
         WHERE d.status IN ('dead', 'failed') ORDER BY d.status = 'dead' DESC, d.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

/// One of a storm's noisiest members, as its messages name them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct StormTopRow {
    pub id: IncidentId,
    pub title: String,
    pub project: Option<String>,
    pub event_count: i64,
}

/// A storm's members summarised: how many, their events, their projects, the noisiest few.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StormMembers {
    pub members: i64,
    pub events: i64,
    /// Distinct projects in name order, at most the `max_projects` asked for.
    pub projects: Vec<String>,
    pub project_count: i64,
    /// Most events first (then oldest id), at most the `top` asked for.
    pub top: Vec<StormTopRow>,
}

/// `$1` the storm, `$2` how many of the noisiest, `$3` how many projects. The window totals
/// are taken before LIMIT; the project subqueries run once (they do not depend on the outer row).
macro_rules! storm_summary_sql {
    ($projects_json:literal) => {
        concat!(
            "SELECT id, title, project, event_count, \
               COUNT(*) OVER () AS members, CAST(SUM(event_count) OVER () AS BIGINT) AS events, \
               (SELECT ",
            $projects_json,
            " FROM (SELECT DISTINCT project AS p FROM incidents \
                  WHERE storm_id = $1 AND project IS NOT NULL ORDER BY p LIMIT $3) AS names) AS projects, \
               (SELECT COUNT(DISTINCT project) FROM incidents WHERE storm_id = $1) AS project_count \
             FROM incidents WHERE storm_id = $1 \
             ORDER BY event_count DESC, id LIMIT $2"
        )
    };
}
const STORM_SUMMARY_SQL: &str = storm_summary_sql!("json_group_array(p)");
/// [`STORM_SUMMARY_SQL`] on PostgreSQL: `json_agg` for SQLite's `json_group_array`.
const STORM_SUMMARY_SQL_PG: &str = storm_summary_sql!("COALESCE(json_agg(p), '[]')::text");

/// The summary of the storm's members in one statement: every part is a walk of the
/// `incidents_storm_members` index, so its cost follows the storm's size, not the table's.
pub(crate) async fn storm_members_summary(
    reader: &Reader,
    storm_id: IncidentId,
    top: usize,
    max_projects: usize,
) -> Result<StormMembers, StoreError> {
    // (id, title, project, event_count, members, events, projects JSON, project count)
    type Row = (
        IncidentId,
        String,
        Option<String>,
        i64,
        i64,
        i64,
        String,
        i64,
    );
    let rows: Vec<Row> = on!(reader, |c, Db| sqlx::query_as(Db::pick(
        STORM_SUMMARY_SQL,
        STORM_SUMMARY_SQL_PG
    ))
    .bind(storm_id)
    .bind(i64::try_from(top).unwrap_or(i64::MAX))
    .bind(i64::try_from(max_projects).unwrap_or(i64::MAX))
    .fetch_all(c)
    .await)?;
    let Some(first) = rows.first() else {
        return Ok(StormMembers::default());
    };
    let (members, events, project_count) = (first.4, first.5, first.7);
    // Written by json_group_array (json_agg) just above: a list of strings.
    let projects = serde_json::from_str(&first.6).unwrap_or_default();
    Ok(StormMembers {
        members,
        events,
        projects,
        project_count,
        top: rows
            .into_iter()
            .map(|(id, title, project, event_count, ..)| StormTopRow {
                id,
                title,
                project,
                event_count,
            })
            .collect(),
    })
}

/// A storm's members for its page, oldest first, at most `limit` (a row that does not decode
/// is listed as its error).
pub(crate) async fn storm_members(
    reader: &Reader,
    storm_id: IncidentId,
    limit: i64,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let rows: Vec<IncidentRow> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT * FROM incidents WHERE storm_id = $1 ORDER BY opened_at, id LIMIT $2"
    )
    .bind(storm_id)
    .bind(limit)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|r| r.decode(reader.corrupt()))
        .collect())
}

/// The ids of a storm's members, in id order (the API's `members`).
pub(crate) async fn storm_member_ids(
    reader: &Reader,
    storm_id: IncidentId,
) -> Result<Vec<IncidentId>, StoreError> {
    Ok(on!(reader, |c, Db| sqlx::query_scalar(
        "SELECT id FROM incidents WHERE storm_id = $1 ORDER BY id"
    )
    .bind(storm_id)
    .fetch_all(c)
    .await)?)
}

#[cfg(test)]
mod tests;
