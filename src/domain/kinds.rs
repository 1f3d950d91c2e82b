//! The kinds and statuses matched in several places: what a delivery announces, where it goes,
//! how far it got, and where an action came from.

use serde::{Deserialize, Serialize};

use super::text_enum;

/// What a delivery of an incident announces (`deliveries.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A new incident (or a reopened episode) was opened.
    Opened,
    /// An open incident's severity rose.
    SeverityRaised,
    /// Nobody acknowledged within the window: secondary channels.
    Escalation,
    Acknowledged,
    Resolved,
    /// Post-mortem summary posted on resolution.
    PostMortem,
    /// Live event count refresh of an open incident (Slack `chat.update` only).
    CountUpdate,
    /// `send-test` / `POST /api/test-alert`.
    Test,
    /// An acknowledged incident needs people again: its acknowledgement expired, or it got
    /// worse (its event rate rose, Sentry marked it escalating or regressed). The row's
    /// `detail` says why.
    Retriggered,
}

text_enum!(pub NotificationKind, "notification kind", {
    Opened => "opened",
    SeverityRaised => "severity_raised",
    Escalation => "escalation",
    Acknowledged => "acknowledged",
    Resolved => "resolved",
    PostMortem => "post_mortem",
    CountUpdate => "count_update",
    Test => "test",
    Retriggered => "retriggered",
});

impl NotificationKind {
    /// The kind this word names, `None` for any other word.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// What a delivery that belongs to no incident announces (`deliveries.kind`, beside the
/// [`NotificationKind`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    UnreadablePayload,
}

text_enum!(pub NoticeKind, "notice kind", {
    UnreadablePayload => "unreadable_payload",
});

impl NoticeKind {
    /// The kind this word names, `None` for any other word.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Everything `deliveries.kind` may hold: the two word lists share the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DeliveryKind {
    Notification(NotificationKind),
    Notice(NoticeKind),
}

impl DeliveryKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Notification(k) => k.as_str(),
            Self::Notice(k) => k.as_str(),
        }
    }
}

impl std::fmt::Display for DeliveryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryKind {
    type Err = super::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(k) = s.parse::<NoticeKind>() {
            return Ok(Self::Notice(k));
        }
        s.parse::<NotificationKind>()
            .map(Self::Notification)
            .map_err(|e| super::ParseError {
                what: "delivery kind",
                ..e
            })
    }
}

/// A channel's protocol (`type:` in `routing.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Slack,
    Pagerduty,
    Email,
    Log,
    /// Two-way sync with Sentry's API: resolves and assigns the issue, links the incident in
    /// its sidebar. Delivered through the outbox like any page, so durable and retried.
    Sentry,
}

text_enum!(pub ChannelKind, "channel kind", {
    Slack => "slack",
    Pagerduty => "pagerduty",
    Email => "email",
    Log => "log",
    Sentry => "sentry",
});

/// How far an outbox row got (`deliveries.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeliveryStatus {
    /// Waiting for its first attempt (or given back unattempted).
    Pending,
    /// Claimed by a worker under a lease.
    Sending,
    Delivered,
    /// An attempt failed; retried at `next_attempt_at`.
    Failed,
    /// Never retried again (permanent error or attempts used up).
    Dead,
}

text_enum!(pub(crate) DeliveryStatus, "delivery status", {
    Pending => "pending",
    Sending => "sending",
    Delivered => "delivered",
    Failed => "failed",
    Dead => "dead",
});

/// Where an action on an incident came from (`timeline.via`, `incidents.*_via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A Sentry webhook (resolve, unresolve, ignore).
    Sentry,
    /// `POST /api/incidents/{id}/...`.
    Api,
    /// A signed acknowledgement link from a message.
    Link,
    /// A Slack button.
    Slack,
    /// A PagerDuty webhook.
    Pagerduty,
    /// The web page.
    Web,
    /// The escalation scheduler.
    Scheduler,
    /// A test alert (`send-test`, `POST /api/test-alert`).
    Test,
    /// A silence holding or releasing an incident (`/api/silences`).
    Silence,
}

text_enum!(pub Via, "via", {
    Sentry => "sentry",
    Api => "api",
    Link => "link",
    Slack => "slack",
    Pagerduty => "pagerduty",
    Web => "web",
    Scheduler => "scheduler",
    Test => "test",
    Silence => "silence",
});

/// What a timeline entry records (`timeline.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Opened,
    /// Another alert on an open incident, or a note added by hand.
    Note,
    SeverityRaised,
    Reopened,
    Acknowledged,
    Resolved,
    Muted,
    Assigned,
    /// A comment on the Sentry issue.
    Comment,
    Escalated,
    /// An acknowledged incident returned to triggered (see `NotificationKind::Retriggered`).
    Retriggered,
    /// Sentry's Seer (Autofix) reported on the issue: root cause, solution, pull request.
    Seer,
}

text_enum!(pub TimelineKind, "timeline kind", {
    Opened => "opened",
    Note => "note",
    SeverityRaised => "severity_raised",
    Reopened => "reopened",
    Acknowledged => "acknowledged",
    Resolved => "resolved",
    Muted => "muted",
    Assigned => "assigned",
    Comment => "comment",
    Escalated => "escalated",
    Retriggered => "retriggered",
    Seer => "seer",
});
