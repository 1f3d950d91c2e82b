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
    pub post_mortem: Option<PostMortem>,
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
            post_mortem: None,
            delivery: None,
        }
    }

    /// A short one-line summary, e.g. `[CRITICAL] ZeroDivisionError: division by zero (paiid-backend)`.
    pub fn headline(&self) -> String {
        let mut s = format!("[{}] {}", self.severity.as_str().to_uppercase(), self.title);
        if let Some(p) = &self.project {
            s.push_str(&format!(" ({p})"));
        }
        s
    }
}
