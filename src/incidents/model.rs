//! The incident row and its states.

use serde::Serialize;

use crate::classification::Severity;
use crate::config::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Triggered,
    Acknowledged,
    Resolved,
    Muted,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Muted => "muted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "triggered" => Self::Triggered,
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            "muted" => Self::Muted,
            _ => return None,
        })
    }

    /// Open means it still wants attention (or is muted but not over).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved)
    }
}

/// One row of `incidents`. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Incident {
    pub id: i64,
    pub incident_key: String,
    pub episode: i64,
    pub severity: String,
    pub state: String,
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
    pub last_event_id: Option<i64>,
    pub assignee: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_via: Option<String>,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolved_via: Option<String>,
    pub root_cause: Option<String>,
    #[serde(skip)]
    pub policy: String,
    pub next_escalation_at: Option<i64>,
    pub escalation_step: i64,
    pub escalation_version: i64,
    pub pagerduty_incident_id: Option<String>,
    pub notified_count: i64,
    pub count_updated_at: Option<i64>,
    pub updated_at: i64,
}

impl Incident {
    pub fn state(&self) -> IncidentState {
        IncidentState::parse(&self.state).unwrap_or(IncidentState::Triggered)
    }

    pub fn severity(&self) -> Severity {
        Severity::parse(&self.severity).unwrap_or(Severity::Unclassified)
    }

    /// The policy frozen onto this episode when it opened.
    pub fn frozen_policy(&self) -> Policy {
        serde_json::from_str(&self.policy).unwrap_or_default()
    }

    /// PagerDuty dedup key: one PagerDuty incident per episode of ours.
    pub fn dedup_key(&self) -> String {
        dedup_key(self.id, self.episode)
    }
}

/// `paiid-alerts-{id}-{episode}`: the PagerDuty dedup key of one episode of an incident.
pub fn dedup_key(incident_id: i64, episode: i64) -> String {
    format!("paiid-alerts-{incident_id}-{episode}")
}

/// An episode as it stood when it was resolved: what its post-mortem reports. Stored in the
/// `detail` of the resolve and post-mortem deliveries, because the incident row may have moved on
/// (reopened, resolved again) by the time the outbox sends them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedEpisode {
    pub opened_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: i64,
    pub resolved_by: Option<String>,
    pub escalations_fired: i64,
    pub root_cause: Option<String>,
}

impl ResolvedEpisode {
    pub fn of(inc: &Incident) -> Option<Self> {
        Some(Self {
            opened_at: inc.opened_at,
            acknowledged_at: inc.acknowledged_at,
            acknowledged_by: inc.acknowledged_by.clone(),
            resolved_at: inc.resolved_at?,
            resolved_by: inc.resolved_by.clone(),
            escalations_fired: inc.escalation_step,
            root_cause: inc.root_cause.clone(),
        })
    }

    /// The `detail` JSON a delivery carries it in.
    pub fn to_detail(&self) -> String {
        serde_json::json!({ "resolved_episode": self }).to_string()
    }

    pub fn from_detail(detail: &str) -> Option<Self> {
        let mut v: serde_json::Value = serde_json::from_str(detail).ok()?;
        serde_json::from_value(v.get_mut("resolved_episode")?.take()).ok()
    }
}

/// [`dedup_key`] -> (incident id, episode).
pub fn parse_dedup_key(key: &str) -> Option<(i64, i64)> {
    let (id, episode) = key.strip_prefix("paiid-alerts-")?.split_once('-')?;
    Some((id.parse().ok()?, episode.parse().ok()?))
}
