//! The data a notification carries, independent of channel. Templates render it.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub(crate) use crate::domain::{Acknowledgement, NotificationKind};
use crate::domain::{DeliveryId, IncidentId, IncidentState, Severity};
/// Extracted and scrubbed at intake (`intake::details`).
pub use crate::intake::details::Breadcrumb;

/// Everything a message may show. All strings are already scrubbed of secrets and PII
/// (see [`crate::intake::redact`]) before a `Notification` is built.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub incident_id: IncidentId,
    /// Deterministic per incident and episode: `paiid-alerts-{incident_id}-{episode}`.
    pub dedup_key: String,
    /// Shown to templates as its word (`critical`, ..., `unclassified`).
    pub severity: Severity,
    /// Shown to templates as its word (`triggered`, `acknowledged`, `resolved`, `muted`).
    pub state: IncidentState,
    pub title: String,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub level: Option<String>,
    pub culprit: Option<String>,
    pub event_count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Our routing rule that matched.
    pub rule: Option<String>,
    /// Sentry's alert rule name, if any.
    pub sentry_rule: Option<String>,
    pub release: Option<String>,
    /// `GET https://...` of the failing request.
    pub request: Option<String>,
    /// Top in-app stack frame, e.g. `app/routers/orders.py in place_order at line 42`.
    pub top_frame: Option<String>,
    /// Last (up to) five breadcrumbs, oldest first.
    pub breadcrumbs: Vec<Breadcrumb>,
    /// Metric alert value (ms for durations, 0..1 for apdex), when there is one.
    pub metric: Option<String>,
    pub sentry_url: Option<String>,
    pub incident_url: String,
    /// Signed acknowledge link (GET shows a confirmation page, POST acknowledges).
    pub ack_url: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// For escalations: minutes waited without acknowledgement.
    pub waited_minutes: Option<i64>,
    /// Why this message came when it did, when that is not the usual: an escalation brought
    /// forward (delivery degraded, Sentry marked the issue escalating), an acknowledgement that
    /// expired or that the incident outgrew, an issue that regressed.
    pub reason: Option<String>,
    /// The incident's page, when Seer opened a pull request for it.
    pub seer_pr_url: Option<String>,
    pub post_mortem: Option<PostMortem>,
    /// For a storm (an incident standing for many, see `domain::IncidentKind::Storm`): its
    /// members as they are when the message is built. `None` for an ordinary incident.
    pub storm: Option<StormSummary>,
    /// The outbox row this is sent for; `None` for `send-test` and previews. Not a template
    /// variable: it only lets a channel make every attempt of one delivery the same message.
    #[serde(skip)]
    pub delivery: Option<DeliveryRef>,
}

/// Identifies one outbox row across its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRef {
    pub id: DeliveryId,
    /// The row's `created_at` (ms). Row ids start again at 1 in a new database; with this a
    /// new row is never taken for an old one that shares its id.
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostMortem {
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: DateTime<Utc>,
    /// Human durations, e.g. `4m 10s`.
    pub time_to_acknowledge: Option<String>,
    pub time_to_resolve: String,
    pub acknowledged_by: Option<String>,
    pub escalations_fired: i64,
    pub root_cause: Option<String>,
    /// The root cause Sentry's Seer found, beside the one people recorded.
    pub seer_root_cause: Option<String>,
}

/// A storm's members, summarised for its messages: how many, where, and the noisiest few.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StormSummary {
    /// Incidents in the storm now.
    pub members: i64,
    /// Events received by all of them together.
    pub events: i64,
    /// Their projects in name order, at most [`StormSummary::MAX_PROJECTS`].
    pub projects: Vec<String>,
    /// How many distinct projects they come from (may exceed `projects.len()`).
    pub project_count: i64,
    /// The members with the most events, most first, at most [`StormSummary::TOP`].
    pub top: Vec<StormMember>,
    /// Members not in `top`: the "and N more".
    pub more: i64,
}

impl StormSummary {
    /// How many members a message names.
    pub const TOP: usize = 5;
    /// How many project names a message lists.
    pub const MAX_PROJECTS: usize = 10;

    /// `37 critical incidents` / `1 high incident`.
    pub fn count_text(&self, severity: Severity) -> String {
        let noun = if self.members == 1 {
            "incident"
        } else {
            "incidents"
        };
        format!("{} {} {noun}", self.members, severity.as_str())
    }

    /// Where the members are: ` in paiid-backend`, ` across 3 projects`, or nothing.
    pub fn where_text(&self) -> String {
        match (self.project_count, self.projects.first()) {
            (1, Some(p)) => format!(" in {p}"),
            (0 | 1, _) => String::new(),
            (n, _) => format!(" across {n} projects"),
        }
    }

    /// The storm's title, from its members now: `Storm: 37 critical incidents in paiid-backend`.
    pub fn title(&self, severity: Severity) -> String {
        format!("Storm: {}{}", self.count_text(severity), self.where_text())
    }
}

/// One member a storm's message names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StormMember {
    pub incident_id: IncidentId,
    /// Scrubbed like every title.
    pub title: String,
    pub project: Option<String>,
    pub event_count: i64,
    /// Its own page.
    pub url: String,
}

impl Notification {
    /// The message `paiid-alerts send-test` sends: clearly a test, with every field filled so
    /// that the template can be checked end to end.
    pub fn test_message(now: DateTime<Utc>) -> Self {
        Self {
            kind: NotificationKind::Test,
            incident_id: IncidentId(0),
            dedup_key: format!("paiid-alerts-test-{}", now.timestamp()),
            severity: Severity::Critical,
            state: IncidentState::Triggered,
            title: "Test message from paiid-alerts".into(),
            project: Some("paiid-backend".into()),
            environment: Some("production".into()),
            level: Some("error".into()),
            culprit: Some("paiid-alerts send-test".into()),
            event_count: 1,
            first_seen: now,
            last_seen: now,
            rule: Some("send-test".into()),
            sentry_rule: None,
            release: Some(concat!("paiid-alerts@", env!("CARGO_PKG_VERSION")).into()),
            request: None,
            top_frame: None,
            breadcrumbs: Vec::new(),
            metric: None,
            sentry_url: None,
            incident_url: "http://localhost/".into(),
            ack_url: None,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            waited_minutes: None,
            reason: None,
            seer_pr_url: None,
            post_mortem: None,
            storm: None,
            delivery: None,
        }
    }

    /// Makes this the message of a storm with these members: its title and count follow them.
    pub(crate) fn set_storm(&mut self, storm: StormSummary) {
        self.title = storm.title(self.severity);
        self.event_count = storm.members;
        self.storm = Some(storm);
    }

    /// A short one-line summary, e.g. `[CRITICAL] ZeroDivisionError: division by zero (paiid-backend)`.
    /// A storm's title already says where its members are.
    pub fn headline(&self) -> String {
        let mut s = format!("[{}] {}", self.severity.as_str().to_uppercase(), self.title);
        if let Some(p) = self.project.as_ref().filter(|_| self.storm.is_none()) {
            s.push_str(&format!(" ({p})"));
        }
        s
    }
}

/// A storm of `members` incidents for tests: the noisiest named with long titles full of
/// characters that need escaping, from `projects` projects.
#[cfg(test)]
pub(crate) fn sample_storm(members: i64, projects: i64) -> StormSummary {
    let top: Vec<StormMember> = (0..members.min(StormSummary::TOP as i64))
        .map(|i| StormMember {
            incident_id: IncidentId(100 + i),
            title: format!("OperationalError #{i}: <!channel> & {}", "é".repeat(400)),
            project: Some(format!("project-{}", i % projects.max(1))),
            // The last named member has one event: "1 event", not "1 events".
            event_count: if i == 4 { 1 } else { 1000 - i },
            url: format!("https://alerts.paiid.ai/incidents/{}", 100 + i),
        })
        .collect();
    let listed = projects.min(StormSummary::MAX_PROJECTS as i64);
    StormSummary {
        members,
        events: members * 10,
        projects: (0..listed).map(|i| format!("project-{i}")).collect(),
        project_count: projects,
        more: members - top.len() as i64,
        top,
    }
}
