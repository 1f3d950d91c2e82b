/// A reference a channel hands back after a successful send, stored on the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteRef {
    SlackMessage { channel: String, ts: String },
    PagerDutyTriggered { dedup_key: String },
}

/// What the incident already knows about earlier sends, so that a channel can update instead of
/// posting again (Slack `chat.update` / thread replies, PagerDuty `dedup_key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteState {
    /// Slack channel id and message `ts` returned by `chat.postMessage` (bot mode only).
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
    /// True once a PagerDuty `trigger` was accepted for the current episode.
    pub pagerduty_triggered: bool,
}
