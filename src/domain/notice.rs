//! What a notice row (an outbox row about no incident) carries in its `detail`.

use serde::{Deserialize, Serialize};

use super::{EventId, NoticeKind};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoticeError {
    #[error("the delivery has no detail to build its `{0}` message from")]
    MissingDetail(&'static str),
    #[error("the delivery's detail is not a `{kind}`: {reason}")]
    BadDetail { kind: &'static str, reason: String },
}

/// What an `unreadable_payload` row carries in `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadablePayload {
    /// `Sentry-Hook-Resource` (`event_alert`, `metric_alert`, ...; `legacy` for the plugin).
    pub resource: String,
    /// Sorted top-level field names of `data`, comma-separated; `""` when it had none.
    pub shape: String,
    /// What we looked for and did not find.
    pub reason: String,
    /// `events.id` of the first payload of this shape.
    pub event_id: EventId,
    /// When it was received (ms).
    pub received_at: i64,
}

impl UnreadablePayload {
    pub fn to_detail(&self) -> String {
        serde_json::json!({
            "resource": self.resource,
            "shape": self.shape,
            "reason": self.reason,
            "event_id": self.event_id,
            "received_at": self.received_at,
        })
        .to_string()
    }

    pub fn from_detail(detail: Option<&str>) -> Result<Self, NoticeError> {
        let kind = NoticeKind::UnreadablePayload.as_str();
        let detail = detail.ok_or(NoticeError::MissingDetail(kind))?;
        serde_json::from_str(detail).map_err(|e| NoticeError::BadDetail {
            kind,
            reason: e.to_string(),
        })
    }
}
