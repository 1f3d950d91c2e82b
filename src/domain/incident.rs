//! The incident row, its states and the policy frozen onto it.

use serde::{Deserialize, Serialize};

use super::{Episode, EventId, IncidentId, Severity, SilenceId, Via, text_enum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Triggered,
    Acknowledged,
    Resolved,
    Muted,
}

text_enum!(pub IncidentState, "incident state", {
    Triggered => "triggered",
    Acknowledged => "acknowledged",
    Resolved => "resolved",
    Muted => "muted",
});

impl IncidentState {
    /// The state this word names, `None` for any other word.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Open means it still wants attention (or is muted but not over).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved)
    }
}

/// What an incident row stands for: one Sentry issue (or metric alert), or a storm group that
/// pages once for many of them (its members point at it with `storm_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentKind {
    Issue,
    Storm,
}

text_enum!(pub IncidentKind, "incident kind", {
    Issue => "issue",
    Storm => "storm",
});

/// How a member joined its storm, which says whether it was ever told about on its own: one that
/// joined as it opened had its own notifications dropped (the storm's card tells of it), so it
/// gets no follow-ups of its own either; one that joined later already had its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StormJoin {
    AtOpen,
    Later,
}

text_enum!(pub StormJoin, "storm join", {
    AtOpen => "at_open",
    Later => "later",
});

/// How often incidents of a severity are reported in a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestCadence {
    Daily,
    Weekly,
    None,
}

/// What happens for incidents of one severity; frozen onto each incident when it opens (stored
/// as JSON in `incidents.policy`), so a later change of `routing.yaml` does not change the
/// escalation of an episode already open.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Policy {
    pub notify: Vec<String>,
    pub escalate_after_ms: Option<i64>,
    pub escalate_to: Vec<String>,
    pub digest: Option<DigestCadence>,
    /// An acknowledgement older than this, of an incident still open, expires: the incident
    /// returns to triggered and its escalation window starts again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_timeout_ms: Option<i64>,
    /// An acknowledged incident whose event rate since the acknowledgement exceeds this many
    /// times the rate before it pages again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reack_on_rate: Option<f64>,
    /// Some notification of a new episode must be confirmed delivered within this, or the
    /// escalation targets are paged at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_within_ms: Option<i64>,
}

impl Policy {
    /// The stored form (`incidents.policy`).
    pub fn to_json(&self) -> String {
        // Serializing strings, numbers and a fieldless enum cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Reads the stored form back; anything else (including `{}`, the column's default) is an
    /// error: a policy read as empty would notify nobody and never escalate.
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// One row of `incidents`. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: IncidentId,
    pub incident_key: String,
    pub episode: Episode,
    pub severity: Severity,
    pub state: IncidentState,
    pub title: String,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub level: Option<String>,
    pub culprit: Option<String>,
    pub rule: Option<String>,
    pub sentry_rule: Option<String>,
    pub sentry_issue_id: Option<String>,
    pub sentry_url: Option<String>,
    pub release: Option<String>,
    pub metric_value: Option<f64>,
    pub event_count: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub opened_at: i64,
    pub last_event_id: Option<EventId>,
    pub assignee: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_via: Option<Via>,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolved_via: Option<Via>,
    pub root_cause: Option<String>,
    /// The policy frozen onto this episode when it opened.
    #[serde(skip)]
    pub policy: Policy,
    pub next_escalation_at: Option<i64>,
    pub escalation_step: i64,
    pub escalation_version: i64,
    pub pagerduty_incident_id: Option<String>,
    pub notified_count: i64,
    pub count_updated_at: Option<i64>,
    pub updated_at: i64,
    /// The silence holding this episode's notifications and escalation (`silences.id`).
    pub silenced_by: Option<SilenceId>,
    /// The escalation deadline that was running when a silence held this incident while it
    /// paged: restored when the silence ends instead of paging again.
    #[serde(skip)]
    pub held_escalation_at: Option<i64>,
    /// An issue, or a storm group standing for many.
    pub kind: IncidentKind,
    /// The storm group this incident belongs to: while set, the storm pages for it (its own
    /// notifications and escalation are held by the storm).
    pub storm_id: Option<IncidentId>,
    /// How it joined `storm_id` (set with it).
    #[serde(skip)]
    pub storm_join: Option<StormJoin>,
    /// Events counted when the current acknowledgement was made: the rate since it is compared
    /// with the rate before it (`reack_on_rate`).
    #[serde(skip)]
    pub ack_event_count: Option<i64>,
    /// Events counted before the current episode opened (none: the first episode).
    #[serde(skip)]
    pub episode_event_count: Option<i64>,
    /// The episode's `confirm_within` deadline: by then some notification of it must have been
    /// confirmed delivered, or the escalation targets are paged at once.
    pub confirm_by: Option<i64>,
    /// When that fail-over fired: no notification of this episode was confirmed in time.
    pub delivery_degraded_at: Option<i64>,
    /// The root cause Sentry's Seer (Autofix) found for the issue.
    pub seer_root_cause: Option<String>,
    /// The pull request Seer opened for it.
    pub seer_pr_url: Option<String>,
    /// The episode whose resolution we sent to Sentry: the `issue.resolved` webhook Sentry
    /// sends back for it is our own echo, not a second resolution.
    #[serde(skip)]
    pub sentry_echo_episode: Option<Episode>,
    /// Why the next escalation comes before its window (Sentry marked the issue escalating, no
    /// notification was confirmed in time): said in the escalation's message.
    #[serde(skip)]
    pub escalation_reason: Option<String>,
}

impl Incident {
    /// A brand-new, triggered first episode opened at `now` with no events yet, no facts from
    /// Sentry and nothing sent: what an issue's first alert or a storm's formation fills in.
    pub fn opening(
        id: IncidentId,
        incident_key: String,
        kind: IncidentKind,
        severity: Severity,
        title: String,
        policy: Policy,
        now: i64,
    ) -> Self {
        Self {
            id,
            incident_key,
            episode: Episode::FIRST,
            severity,
            state: IncidentState::Triggered,
            title,
            project: None,
            environment: None,
            level: None,
            culprit: None,
            rule: None,
            sentry_rule: None,
            sentry_issue_id: None,
            sentry_url: None,
            release: None,
            metric_value: None,
            event_count: 0,
            first_seen: now,
            last_seen: now,
            opened_at: now,
            last_event_id: None,
            assignee: None,
            acknowledged_at: None,
            acknowledged_by: None,
            acknowledged_via: None,
            resolved_at: None,
            resolved_by: None,
            resolved_via: None,
            root_cause: None,
            policy,
            next_escalation_at: None,
            escalation_step: 0,
            escalation_version: 0,
            pagerduty_incident_id: None,
            notified_count: 0,
            count_updated_at: None,
            updated_at: now,
            silenced_by: None,
            held_escalation_at: None,
            kind,
            storm_id: None,
            storm_join: None,
            ack_event_count: None,
            episode_event_count: None,
            confirm_by: None,
            delivery_degraded_at: None,
            seer_root_cause: None,
            seer_pr_url: None,
            sentry_echo_episode: None,
            escalation_reason: None,
        }
    }

    pub fn state(&self) -> IncidentState {
        self.state
    }

    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The policy frozen onto this episode when it opened.
    pub fn frozen_policy(&self) -> Policy {
        self.policy.clone()
    }

    /// When its escalation fires: the deadline of a triggered (or held) incident. An
    /// acknowledged incident's deadline is the end of its acknowledgement instead.
    pub fn escalation_due(&self) -> Option<i64> {
        self.next_escalation_at
            .filter(|_| self.state != IncidentState::Acknowledged)
    }

    /// When its acknowledgement expires (`ack_timeout`).
    pub fn ack_expires_at(&self) -> Option<i64> {
        self.next_escalation_at
            .filter(|_| self.state == IncidentState::Acknowledged)
    }

    /// PagerDuty dedup key: one PagerDuty incident per episode of ours.
    pub fn dedup_key(&self) -> String {
        dedup_key(self.id, self.episode)
    }
}

/// `paiid-alerts-{id}-{episode}`: the PagerDuty dedup key of one episode of an incident.
pub(crate) fn dedup_key(incident_id: IncidentId, episode: Episode) -> String {
    format!("paiid-alerts-{incident_id}-{episode}")
}

/// [`dedup_key`] -> (incident id, episode).
pub fn parse_dedup_key(key: &str) -> Option<(IncidentId, Episode)> {
    let (id, episode) = key.strip_prefix("paiid-alerts-")?.split_once('-')?;
    Some((id.parse().ok()?, episode.parse().ok()?))
}

/// An episode as it stood when it was resolved: what its post-mortem reports. Stored in the
/// `detail` of the resolve and post-mortem deliveries, because the incident row may have moved on
/// (reopened, resolved again) by the time the outbox sends them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResolvedEpisode {
    pub opened_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: i64,
    pub resolved_by: Option<String>,
    pub escalations_fired: i64,
    pub root_cause: Option<String>,
    /// What Sentry's Seer found, beside the root cause people recorded.
    #[serde(default)]
    pub seer_root_cause: Option<String>,
    #[serde(default)]
    pub seer_pr_url: Option<String>,
}

impl ResolvedEpisode {
    pub(crate) fn of(inc: &Incident) -> Option<Self> {
        Some(Self {
            opened_at: inc.opened_at,
            acknowledged_at: inc.acknowledged_at,
            acknowledged_by: inc.acknowledged_by.clone(),
            resolved_at: inc.resolved_at?,
            resolved_by: inc.resolved_by.clone(),
            escalations_fired: inc.escalation_step,
            root_cause: inc.root_cause.clone(),
            seer_root_cause: inc.seer_root_cause.clone(),
            seer_pr_url: inc.seer_pr_url.clone(),
        })
    }

    /// The `detail` JSON a delivery carries it in.
    pub(crate) fn to_detail(&self) -> String {
        serde_json::json!({ "resolved_episode": self }).to_string()
    }

    pub(crate) fn from_detail(detail: &str) -> Option<Self> {
        let mut v: serde_json::Value = serde_json::from_str(detail).ok()?;
        serde_json::from_value(v.get_mut("resolved_episode")?.take()).ok()
    }
}

/// The acknowledgement an `acknowledged` delivery reports, carried in the row's `detail`: the
/// row may be sent after the incident was resolved or reopened, and the message must still say
/// who acknowledged it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Acknowledgement {
    pub by: Option<String>,
    pub at: i64,
}

impl Acknowledgement {
    /// The incident's current acknowledgement, if it has one.
    pub(crate) fn of(inc: &Incident) -> Option<Self> {
        Some(Self {
            by: inc.acknowledged_by.clone(),
            at: inc.acknowledged_at?,
        })
    }

    /// The `detail` JSON a delivery carries it in.
    pub(crate) fn to_detail(&self) -> String {
        serde_json::json!({ "acknowledgement": self }).to_string()
    }

    pub(crate) fn from_detail(detail: &str) -> Option<Self> {
        let mut v: serde_json::Value = serde_json::from_str(detail).ok()?;
        serde_json::from_value(v.get_mut("acknowledgement")?.take()).ok()
    }
}
