//! What the writer did with one webhook, as stored in `events.status` and as told back to the
//! sender. One table, so the stored word, the HTTP status and the answer's `status` word cannot
//! drift apart between the writer and the handlers.

use axum::http::StatusCode;

/// What became of one stored webhook (a retry of one already stored is not one of these: it is
/// answered `duplicate` and stores nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestStatus {
    /// It opened, updated or changed an incident.
    Processed,
    /// A state change (resolved, assigned, ...) for an issue we never paged about.
    NoIncident,
    /// An installation event: kept for the record, nothing to do.
    Recorded,
    /// Sentry's envelope around content we cannot read: kept, never an incident.
    Unparsed,
    /// Its incident's row does not decode: kept with the incident's id, replayed once repaired.
    UnreadableIncident,
    /// Nothing we act on.
    Ignored,
}

super::text_enum!(pub IngestStatus, "ingest status", {
    Processed => "processed",
    NoIncident => "no_incident",
    Recorded => "recorded",
    Unparsed => "unparsed",
    UnreadableIncident => "unreadable_incident",
    Ignored => "ignored",
});

impl IngestStatus {
    /// 200 when the webhook was acted on or had nothing to act on; 202 when it was kept without
    /// being acted on (so the sender's delivery log shows it was not applied).
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Processed | Self::NoIncident | Self::Recorded => StatusCode::OK,
            Self::Unparsed | Self::UnreadableIncident | Self::Ignored => StatusCode::ACCEPTED,
        }
    }

    /// The answer's `status` word: the stored word, except that a processed webhook is
    /// `accepted`, the word Sentry integrations were told before statuses were stored.
    pub fn answer_word(self) -> &'static str {
        match self {
            Self::Processed => "accepted",
            other => other.as_str(),
        }
    }
}
