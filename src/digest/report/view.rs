//! What the digest templates see: plain data, every value already formatted, so that an
//! override needs no logic beyond loops and conditions. Variables documented in
//! [`crate::digest::render`].

use serde::Serialize;

use crate::domain::IncidentId;

use super::{Totals, fmt_lateness, fmt_mean, plural, to_usize};

/// The daily digest as its templates see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DailyView {
    pub heading: String,
    pub manual: bool,
    /// `Sat 28 Nov 08:00 – Sun 29 Nov 2026 08:00 EST`
    pub period: String,
    /// `3 medium incidents in 2 projects`, `no medium incidents`
    pub summary: String,
    pub empty_note: String,
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct GroupView {
    pub project: String,
    pub incidents: Vec<DailyIncidentView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DailyIncidentView {
    pub id: IncidentId,
    pub title: String,
    /// `lowest Apdex 0.61`
    pub metric: String,
    pub event_count: i64,
    /// `14 events`
    pub events_text: String,
    pub state: String,
    /// On the digest's wall clock: `Sat 28 Nov 14:05`.
    pub last_seen: String,
    pub incident_url: String,
    pub sentry_url: Option<String>,
}

/// The weekly summary as its templates see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WeeklyView {
    pub heading: String,
    pub manual: bool,
    pub period: String,
    /// `Incidents opened: 8 (critical 2, high 1, ...)`, `Mean time to acknowledge: ...`, ...
    pub summary: Vec<String>,
    pub totals: TotalsView,
    pub severities: Vec<SeverityRow>,
    pub escalations: Vec<EscalationRow>,
    pub noisiest: Vec<NoisyRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TotalsView {
    pub opened: i64,
    /// `8 incidents`
    pub opened_text: String,
    pub acknowledged: i64,
    pub resolved: i64,
    /// `20m 0s`, or `n/a`
    pub mtta: String,
    pub mttr: String,
    pub escalations: i64,
    /// `3 escalations`
    pub escalations_text: String,
    pub escalated_incidents: i64,
    /// `250ms`, `1s`
    pub worst_lateness: String,
}

impl TotalsView {
    pub(super) fn of(t: &Totals) -> Self {
        Self {
            opened: t.opened,
            opened_text: plural(to_usize(t.opened), "incident"),
            acknowledged: t.acknowledged,
            resolved: t.resolved,
            mtta: fmt_mean(t.mtta_ms),
            mttr: fmt_mean(t.mttr_ms),
            escalations: t.escalations,
            escalations_text: plural(to_usize(t.escalations), "escalation"),
            escalated_incidents: t.escalated_incidents,
            worst_lateness: fmt_lateness(t.max_lateness_ms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SeverityRow {
    pub severity: String,
    pub opened: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    pub mtta: String,
    pub mttr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct EscalationRow {
    pub severity: String,
    pub fired: i64,
    pub incidents: i64,
    pub worst_lateness: String,
    /// `critical: 3 fired on 2 incidents (worst lateness 1s)`
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NoisyRow {
    /// 1 for the noisiest.
    pub rank: usize,
    pub id: IncidentId,
    pub event_count: i64,
    pub title: String,
    pub project: String,
    pub severity: String,
    pub state: String,
    pub incident_url: String,
    pub sentry_url: Option<String>,
}
