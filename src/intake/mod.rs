//! Webhook intake: authenticate, parse, and hand over to the incident writer.

pub(crate) mod details;
pub(crate) mod envelope;
pub(crate) mod lenient;
pub(crate) mod redact;
pub(crate) mod sentry;
pub(crate) mod signature;
pub(crate) mod unparsed;

use sha2::{Digest, Sha256};

pub(crate) use sentry::{AlertFacts, Meaning, MetricKind};

/// The content key Sentry's retries collide on. Retries resend the identical body with a new
/// `Request-ID`, so the body hash catches them; an event id plus the rule that fired also
/// catches the same alert delivered through two paths (the legacy plugin and the integration).
/// The same event under another rule is not a duplicate (its rule may route differently), but
/// it is not a second occurrence either: see [`event_key_prefix`].
pub fn dedup_key(facts: &AlertFacts, body: &[u8]) -> String {
    match (&facts.event_id, facts.occurrence) {
        (Some(event_id), true) => format!(
            "{}{}",
            event_key_prefix(event_id),
            facts.sentry_rule.as_deref().unwrap_or("")
        ),
        _ => format!("{CONTENT_KEY_PREFIX}{}", hex::encode(Sha256::digest(body))),
    }
}

/// What every dedup key of one Sentry event starts with, whichever rule or route it came by.
pub(crate) fn event_key_prefix(event_id: &str) -> String {
    format!("event:{event_id}:")
}

const CONTENT_KEY_PREFIX: &str = "body:";

/// Keys made from the body's hash rather than an event id: they identify a retry only for a
/// while (see `store::incidents::body_copies`).
pub(crate) fn is_content_key(key: &str) -> bool {
    key.starts_with(CONTENT_KEY_PREFIX)
}
