//! What a digest says: the data of one period (loaded through `store::digests`) and the view
//! its templates render (see [`super::render`]). Building the view is pure so that it is
//! unit-tested without a database; the HTML templates escape every piece of user data (titles,
//! projects, URLs from Sentry).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::classification::Severity;
use crate::clock::ms_to_datetime;
use crate::domain::IncidentId;
use crate::intake::MetricKind;
use crate::store::digests::{
    self, DigestIncident, EscalationTally, NoisyIncident, SeverityTally, StormTally,
};
use crate::store::{Store, StoreError};
use crate::text::duration;

use super::render::DigestTemplates;

mod view;
pub(crate) use view::{
    DailyIncidentView, DailyView, EscalationRow, GroupView, NoisyRow, SeverityRow, TotalsView,
    WeeklyView,
};

/// How many incidents the weekly summary lists as the noisiest.
pub(crate) const NOISIEST_LIMIT: i64 = 5;

/// A half-open period `[start, end)` and the timezone its times are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub tz: Tz,
}

impl Period {
    pub(crate) fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }

    pub(crate) fn end_ms(&self) -> i64 {
        self.end.timestamp_millis()
    }

    /// `Sat 28 Nov 08:00 – Sun 29 Nov 08:00 EST`: the reader's wall clock, not UTC.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} – {}",
            self.local(self.start),
            self.local_with_zone(self.end)
        )
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%a %-d %b %H:%M")
            .to_string()
    }

    fn local_with_zone(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%a %-d %b %Y %H:%M %Z")
            .to_string()
    }
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where the links in a digest point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Links<'a> {
    /// `PUBLIC_URL`, e.g. `https://alerts.paiid.ai` (a trailing slash is tolerated).
    pub public_url: &'a str,
}

impl Links<'_> {
    pub(crate) fn incident(&self, id: IncidentId) -> String {
        format!("{}/incidents/{id}", self.public_url.trim_end_matches('/'))
    }
}

// ---------- daily digest ----------

/// The daily digest: every Medium incident seen in the period.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DailyDigest {
    pub period: Period,
    /// Sent by hand for the still-open period: said so in the mail.
    pub manual: bool,
    pub incidents: Vec<DigestIncident>,
}

/// One project's incidents, in the order the digest lists them.
#[derive(Debug, PartialEq)]
pub(crate) struct ProjectGroup<'a> {
    pub project: &'a str,
    pub incidents: Vec<&'a DigestIncident>,
}

const NO_PROJECT: &str = "(no project)";

impl DailyDigest {
    pub(crate) async fn load(
        store: &Store,
        period: Period,
        manual: bool,
    ) -> Result<Self, StoreError> {
        let incidents = digests::incidents_seen(
            store.reader(),
            Severity::Medium.as_str(),
            period.start_ms(),
            period.end_ms(),
        )
        .await?;
        Ok(Self {
            period,
            manual,
            incidents,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.incidents.is_empty()
    }

    /// Incidents grouped by project: projects by name (incidents without one last), within a
    /// project the noisiest first.
    pub(crate) fn groups(&self) -> Vec<ProjectGroup<'_>> {
        let mut by_project: BTreeMap<(bool, &str), Vec<&DigestIncident>> = BTreeMap::new();
        for inc in &self.incidents {
            let key = match inc.project.as_deref().filter(|p| !p.trim().is_empty()) {
                Some(p) => (false, p),
                None => (true, NO_PROJECT),
            };
            by_project.entry(key).or_default().push(inc);
        }
        by_project
            .into_iter()
            .map(|((_, project), mut incidents)| {
                incidents.sort_by(|a, b| b.event_count.cmp(&a.event_count).then(a.id.cmp(&b.id)));
                ProjectGroup { project, incidents }
            })
            .collect()
    }

    /// What the daily digest templates see.
    pub(crate) fn view(&self, links: Links<'_>, empty_note: &str) -> DailyView {
        let groups = self.groups();
        let summary = match self.incidents.len() {
            0 => "no medium incidents".to_string(),
            n => format!(
                "{} in {}",
                plural(n, "medium incident"),
                plural(groups.len(), "project")
            ),
        };
        let heading = if self.manual {
            "Medium incidents so far (sent by hand)"
        } else {
            "Medium incidents digest"
        };
        DailyView {
            heading: heading.to_string(),
            manual: self.manual,
            period: self.period.describe(),
            summary,
            empty_note: empty_note.to_string(),
            groups: groups
                .iter()
                .map(|g| GroupView {
                    project: g.project.to_string(),
                    incidents: g
                        .incidents
                        .iter()
                        .map(|inc| self.incident_view(inc, links))
                        .collect(),
                })
                .collect(),
        }
    }

    fn incident_view(&self, inc: &DigestIncident, links: Links<'_>) -> DailyIncidentView {
        DailyIncidentView {
            id: inc.id,
            title: inc.title.clone(),
            metric: describe_metric(
                inc.metric_value,
                inc.metric_kind.as_deref().and_then(MetricKind::parse),
            ),
            event_count: inc.event_count,
            events_text: plural(to_usize(inc.event_count), "event"),
            state: inc.state.clone(),
            last_seen: self.period.local(ms_to_datetime(inc.last_seen)),
            incident_url: links.incident(inc.id),
            sentry_url: inc.sentry_url.clone(),
        }
    }

    pub(crate) fn render(
        &self,
        templates: &DigestTemplates,
        links: Links<'_>,
        empty_note: &str,
    ) -> RenderedMail {
        templates.daily(&self.view(links, empty_note))
    }
}

/// `lowest Apdex 0.62`, `worst value 2300 ms`. Same conventions as the incident messages: an
/// Apdex metric (by its aggregate) or a value within [0, 1] is a score, anything else a duration
/// in milliseconds.
pub(crate) fn describe_metric(value: Option<f64>, kind: Option<MetricKind>) -> String {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return "no metric value".to_string();
    };
    if kind == Some(MetricKind::Apdex) {
        format!("lowest Apdex {v:.2}")
    } else if (0.0..=1.0).contains(&v) {
        format!("worst value {v:.2}")
    } else {
        format!("worst value {v:.0} ms")
    }
}

// ---------- weekly summary ----------

/// The weekly ops summary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WeeklySummary {
    pub period: Period,
    pub manual: bool,
    /// Most severe first.
    pub severities: Vec<SeverityTally>,
    /// Most severe first.
    pub escalations: Vec<EscalationTally>,
    pub noisiest: Vec<NoisyIncident>,
    /// Storms opened in the period (their members are counted among the incidents).
    pub storms: StormTally,
}

/// Totals over all severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub opened: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    /// Mean time to acknowledge, ms, over the acknowledged incidents.
    pub mtta_ms: Option<i64>,
    /// Mean time to resolve, ms, over the resolved incidents.
    pub mttr_ms: Option<i64>,
    pub escalations: i64,
    pub escalated_incidents: i64,
    pub max_lateness_ms: i64,
}

/// Sorts most severe first; names that are not a known severity go last, alphabetically.
fn severity_rank(s: &str) -> (std::cmp::Reverse<Option<Severity>>, String) {
    (std::cmp::Reverse(Severity::parse(s)), s.to_string())
}

impl WeeklySummary {
    pub(crate) async fn load(
        store: &Store,
        period: Period,
        manual: bool,
    ) -> Result<Self, StoreError> {
        let (start, end) = (period.start_ms(), period.end_ms());
        let severities = digests::severity_tallies(store.reader(), start, end).await?;
        let escalations = digests::escalation_tallies(store.reader(), start, end).await?;
        let noisiest = digests::noisiest(store.reader(), start, end, NOISIEST_LIMIT).await?;
        let storms = digests::storm_tally(store.reader(), start, end).await?;
        Ok(Self {
            storms,
            ..Self::new(period, manual, severities, escalations, noisiest)
        })
    }

    pub(crate) fn new(
        period: Period,
        manual: bool,
        mut severities: Vec<SeverityTally>,
        mut escalations: Vec<EscalationTally>,
        noisiest: Vec<NoisyIncident>,
    ) -> Self {
        // Unknown severities sort after `unclassified` because None < Some under Reverse.
        severities.sort_by_key(|t| severity_rank(&t.severity));
        escalations.sort_by_key(|t| severity_rank(&t.severity));
        Self {
            period,
            manual,
            severities,
            escalations,
            noisiest,
            storms: StormTally::default(),
        }
    }

    /// Nothing opened, escalated or seen in the period.
    pub(crate) fn is_empty(&self) -> bool {
        self.severities.iter().all(|s| s.opened == 0)
            && self.escalations.iter().all(|e| e.fired == 0)
            && self.noisiest.is_empty()
    }

    pub(crate) fn totals(&self) -> Totals {
        let sum = |f: fn(&SeverityTally) -> i64| self.severities.iter().map(f).sum::<i64>();
        let acknowledged = sum(|s| s.acknowledged);
        let resolved = sum(|s| s.resolved);
        Totals {
            opened: sum(|s| s.opened),
            acknowledged,
            resolved,
            mtta_ms: mean_ms(sum(|s| s.ack_ms_total), acknowledged),
            mttr_ms: mean_ms(sum(|s| s.resolve_ms_total), resolved),
            escalations: self.escalations.iter().map(|e| e.fired).sum(),
            escalated_incidents: self.escalations.iter().map(|e| e.incidents).sum(),
            max_lateness_ms: self
                .escalations
                .iter()
                .map(|e| e.max_lateness_ms)
                .max()
                .unwrap_or(0),
        }
    }

    /// What the weekly summary templates see, in named steps: headline figures, then the
    /// per-severity table, the escalations and the noisiest incidents.
    pub(crate) fn view(&self, links: Links<'_>) -> WeeklyView {
        let totals = self.totals();
        let heading = if self.manual {
            "Weekly ops summary so far (sent by hand)"
        } else {
            "Weekly ops summary"
        };
        WeeklyView {
            heading: heading.to_string(),
            manual: self.manual,
            period: self.period.describe(),
            summary: self.summary_lines(&totals),
            totals: TotalsView::of(&totals),
            severities: self.severity_rows(),
            escalations: self.escalation_rows(),
            noisiest: self.noisiest_rows(links),
        }
    }

    pub(crate) fn render(&self, templates: &DigestTemplates, links: Links<'_>) -> RenderedMail {
        templates.weekly(&self.view(links))
    }

    /// The headline figures, one sentence each.
    fn summary_lines(&self, t: &Totals) -> Vec<String> {
        let by_severity = self
            .severities
            .iter()
            .map(|s| format!("{} {}", s.severity, s.opened))
            .collect::<Vec<_>>()
            .join(", ");
        let opened = if by_severity.is_empty() {
            format!("Incidents opened: {}", t.opened)
        } else {
            format!("Incidents opened: {} ({by_severity})", t.opened)
        };
        let escalations = if t.escalations == 0 {
            "Escalations fired: 0".to_string()
        } else {
            format!(
                "Escalations fired: {} on {} (worst lateness {})",
                t.escalations,
                plural(to_usize(t.escalated_incidents), "incident"),
                fmt_lateness(t.max_lateness_ms)
            )
        };
        let mut lines = vec![
            opened,
            format!(
                "Mean time to acknowledge: {} ({} acknowledged)",
                fmt_mean(t.mtta_ms),
                t.acknowledged
            ),
            format!(
                "Mean time to resolve: {} ({} resolved)",
                fmt_mean(t.mttr_ms),
                t.resolved
            ),
            escalations,
        ];
        lines.extend(self.storm_line());
        lines
    }

    /// How many incidents were paged as storms, when some were.
    fn storm_line(&self) -> Option<String> {
        let s = self.storms;
        (s.storms > 0).then(|| {
            format!(
                "Storms: {} grouping {} (each paged once for its members)",
                s.storms,
                plural(to_usize(s.members), "incident")
            )
        })
    }

    fn severity_rows(&self) -> Vec<SeverityRow> {
        self.severities
            .iter()
            .map(|s| SeverityRow {
                severity: s.severity.clone(),
                opened: s.opened,
                acknowledged: s.acknowledged,
                resolved: s.resolved,
                mtta: fmt_mean(mean_ms(s.ack_ms_total, s.acknowledged)),
                mttr: fmt_mean(mean_ms(s.resolve_ms_total, s.resolved)),
            })
            .collect()
    }

    fn escalation_rows(&self) -> Vec<EscalationRow> {
        self.escalations
            .iter()
            .map(|e| {
                let worst_lateness = fmt_lateness(e.max_lateness_ms);
                EscalationRow {
                    line: format!(
                        "{}: {} fired on {} (worst lateness {worst_lateness})",
                        e.severity,
                        e.fired,
                        plural(to_usize(e.incidents), "incident"),
                    ),
                    severity: e.severity.clone(),
                    fired: e.fired,
                    incidents: e.incidents,
                    worst_lateness,
                }
            })
            .collect()
    }

    fn noisiest_rows(&self, links: Links<'_>) -> Vec<NoisyRow> {
        self.noisiest
            .iter()
            .zip(1..)
            .map(|(n, rank)| NoisyRow {
                rank,
                id: n.id,
                event_count: n.event_count,
                title: n.title.clone(),
                project: n.project.as_deref().unwrap_or(NO_PROJECT).to_string(),
                severity: n.severity.clone(),
                state: n.state.clone(),
                incident_url: links.incident(n.id),
                sentry_url: n.sentry_url.clone(),
            })
            .collect()
    }
}

/// Integer mean in milliseconds; None when there is nothing to average.
pub(crate) fn mean_ms(total_ms: i64, count: i64) -> Option<i64> {
    (count > 0).then(|| total_ms / count)
}

fn fmt_mean(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => duration(ms),
        None => "n/a".to_string(),
    }
}

fn fmt_lateness(ms: i64) -> String {
    duration(ms)
}

// ---------- small helpers ----------

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests;
