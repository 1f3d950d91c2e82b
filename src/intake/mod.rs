//! Webhook intake: authenticate, parse, and hand over to the incident writer.

pub mod lenient;
pub mod sentry;
pub mod signature;

use sha2::{Digest, Sha256};

pub use sentry::{AlertFacts, Meaning, MetricFacts};

/// The content key Sentry's retries collide on. Retries resend the identical body with a new
/// `Request-ID`, so the body hash catches them; an event id (plus the rule that fired) also
/// catches the same event delivered through two paths.
pub fn dedup_key(facts: &AlertFacts, body: &[u8]) -> String {
    match (&facts.event_id, facts.occurrence) {
        (Some(event_id), true) => format!(
            "event:{}:{}:{}",
            facts.resource,
            event_id,
            facts.sentry_rule.as_deref().unwrap_or("")
        ),
        _ => format!("body:{}", hex::encode(Sha256::digest(body))),
    }
}
