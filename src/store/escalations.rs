//! Escalation deadlines and the record of escalations fired.

use crate::store::{Reader, on};
use std::collections::HashSet;

use sqlx::QueryBuilder;

use super::incidents::IncidentRow;
use super::{CorruptRow, StoreError, WriteTx};
use crate::domain::{Episode, Incident, IncidentId};

/// Incidents whose escalation (or acknowledgement) deadline is due, oldest first. One that does
/// not decode is its error (logged and counted, see [`IncidentRow::decode`]), so that it cannot
/// hold up the others.
pub(crate) async fn due(
    tx: &mut WriteTx,
    now: i64,
    limit: i64,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    read_due(
        tx,
        "SELECT * FROM incidents WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= $1 \
         ORDER BY next_escalation_at LIMIT $2",
        now,
        limit,
    )
    .await
}

/// Incidents whose `confirm_within` deadline passed, earliest first.
pub(crate) async fn confirm_due(
    tx: &mut WriteTx,
    now: i64,
    limit: i64,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    read_due(
        tx,
        "SELECT * FROM incidents WHERE confirm_by IS NOT NULL AND confirm_by <= $1 \
         ORDER BY confirm_by LIMIT $2",
        now,
        limit,
    )
    .await
}

/// The rows a deadline query (`$1`: now, `$2`: the limit) reads, each decoded on its own.
async fn read_due(
    tx: &mut WriteTx,
    sql: &'static str,
    now: i64,
    limit: i64,
) -> Result<Vec<Result<Incident, CorruptRow>>, StoreError> {
    let rows: Vec<IncidentRow> = on!(&mut *tx, |c, Db| {
        sqlx::query_as(sql).bind(now).bind(limit).fetch_all(c).await
    })?;
    Ok(rows.into_iter().map(|r| r.decode(tx.corrupt())).collect())
}

/// Whether some notification of this episode was confirmed delivered: a channel's own answer
/// (Slack `ok`, PagerDuty 202, the SMTP server's acceptance) is on record. The log channel,
/// which stands in for a channel without credentials, answers nothing: it confirms nothing.
/// Only the channels that page (`paging`: the policy's `notify` and `escalate_to`) count: a
/// Sentry sidebar link is not a page.
pub(crate) async fn delivery_confirmed(
    tx: &mut WriteTx,
    incident_id: IncidentId,
    episode: Episode,
    paging: &[String],
) -> Result<bool, StoreError> {
    if paging.is_empty() {
        return Ok(false);
    }
    let found: Option<i64> = on!(&mut *tx, |c, Db| {
        let mut q = QueryBuilder::<Db>::new("SELECT id FROM deliveries WHERE incident_id = ");
        q.push_bind(incident_id)
            .push(" AND episode = ")
            .push_bind(episode)
            .push(
                " AND status = 'delivered' AND last_status_code IS NOT NULL \
                 AND kind IN ('opened', 'severity_raised', 'escalation', 'retriggered') \
                 AND channel IN (",
            );
        let mut names = q.separated(", ");
        for name in paging {
            names.push_bind(name);
        }
        q.push(") LIMIT 1");
        q.build_query_scalar().fetch_optional(c).await
    })?;
    Ok(found.is_some())
}

/// Drops the `confirm_within` deadline of an incident that cannot be read: with its policy
/// unknown there is nobody to fail over to, and it must not keep the scheduler busy.
pub(crate) async fn drop_confirm(
    tx: &mut WriteTx,
    incident_id: IncidentId,
) -> Result<(), StoreError> {
    on!(&mut *tx, |c, Db| sqlx::query(
        "UPDATE incidents SET confirm_by = NULL WHERE id = $1"
    )
    .bind(incident_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves the deadline of an incident that cannot be read to `until`: it cannot be escalated
/// (its policy is unknown) but must not keep the scheduler busy; once the row is repaired it
/// fires at `until`.
pub(crate) async fn postpone(
    conn: &mut WriteTx,
    incident_id: IncidentId,
    until: i64,
) -> Result<(), StoreError> {
    on!(&mut *conn, |c, Db| sqlx::query(
        "UPDATE incidents SET next_escalation_at = $1 WHERE id = $2"
    )
    .bind(until)
    .bind(incident_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Takes the open members out of storm `storm_id`, which cannot be read, and gives each
/// triggered one its own deadline `now` (held, for a silenced one, until its silence ends): a
/// storm whose policy is unknown cannot page for them, and a member nobody pages is the worse
/// failure. Returns how many left the storm.
pub(crate) async fn release_members(
    conn: &mut WriteTx,
    storm_id: IncidentId,
    now: i64,
) -> Result<u64, StoreError> {
    let r = on!(&mut *conn, |c, Db| sqlx::query(
        "UPDATE incidents SET \
           next_escalation_at = CASE WHEN state = 'triggered' AND silenced_by IS NULL \
             THEN COALESCE(next_escalation_at, $1) ELSE next_escalation_at END, \
           held_escalation_at = CASE WHEN state = 'triggered' AND silenced_by IS NOT NULL \
             THEN COALESCE(held_escalation_at, $1) ELSE held_escalation_at END, \
           storm_id = NULL, storm_join = NULL \
         WHERE storm_id = $2 AND state <> 'resolved'",
    )
    .bind(now)
    .bind(storm_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(r)
}

/// A step about to fire: `(incident, episode, step, due_at)`.
pub(crate) type Step = (IncidentId, Episode, i64, i64);

/// Records that these steps fired, in one statement (a firing batch used to pay one statement
/// per incident). Returns the incidents whose step was not on record yet: only those may page.
/// The unique `(incident_id, episode, step)` key turns a second firing of a step into nothing.
pub(crate) async fn record_all(
    conn: &mut WriteTx,
    steps: &[Step],
    fired_at: i64,
) -> Result<HashSet<IncidentId>, StoreError> {
    let mut first = HashSet::with_capacity(steps.len());
    for chunk in steps.chunks(RECORD_CHUNK) {
        let ids: Vec<IncidentId> = on!(&mut *conn, |c, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO escalations (incident_id, episode, step, due_at, fired_at, lateness_ms) ",
            );
            q.push_values(chunk, |mut b, (id, episode, step, due_at)| {
                b.push_bind(*id)
                    .push_bind(*episode)
                    .push_bind(*step)
                    .push_bind(*due_at)
                    .push_bind(fired_at)
                    .push_bind(fired_at - due_at);
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING incident_id");
            q.build_query_scalar().fetch_all(c).await
        })?;
        first.extend(ids);
    }
    Ok(first)
}

/// Six parameters a row, under SQLite's default limit of 32,766 parameters a statement.
const RECORD_CHUNK: usize = 1_000;

/// The scheduler's next deadline: an escalation (or the end of an acknowledgement) or a
/// `confirm_within` check.
pub(crate) async fn next_due(pool: &Reader) -> Result<Option<i64>, StoreError> {
    Ok(on!(pool, |c, Db| sqlx::query_scalar(
        "SELECT MIN(t) FROM (\
           SELECT MIN(next_escalation_at) AS t FROM incidents WHERE next_escalation_at IS NOT NULL \
           UNION ALL SELECT MIN(confirm_by) AS t FROM incidents WHERE confirm_by IS NOT NULL) AS d",
    )
    .fetch_one(c)
    .await)?)
}
