//! The vocabulary every other module speaks: severities, states, kinds, statuses, ids and the
//! effects of a state change. Plain data with its text forms; it imports nothing from the crate,
//! so any module may use it (see `ARCHITECTURE.md` and `tests/layering.rs`).
//!
//! Every enum here is stored as text. Its `as_str()` is the stored word, `FromStr` reads it back
//! with a [`ParseError`] naming what was expected, and `sqlx::Type` binds and decodes the same
//! word, so the columns written before these types existed read back unchanged.

mod action;
mod effects;
mod ids;
mod incident;
mod ingest;
mod kinds;
mod notice;
mod remote;
mod severity;

pub use action::Action;
pub use effects::{Effects, NewDelivery, NewTimeline};
pub use ids::{DeliveryId, Episode, EventId, IncidentId};
pub use incident::{
    Acknowledgement, DigestCadence, Incident, IncidentState, Policy, ResolvedEpisode, dedup_key,
    parse_dedup_key,
};
pub use ingest::IngestStatus;
pub use kinds::{ChannelKind, DeliveryKind, DeliveryStatus, NoticeKind, NotificationKind, Via};
pub use notice::{NoticeError, UnreadablePayload};
pub use remote::{RemoteRef, RemoteState};
pub use severity::Severity;

/// A stored or received word that is not one of an enum's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {})", .expected.join(", "))]
pub struct ParseError {
    /// What was being read, e.g. `incident state`.
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

/// `as_str`, `Display` and `FromStr` for a fieldless enum from one table of (variant, word).
macro_rules! text_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stored word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = super::ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($ty::$variant),)+
                    _ => Err(super::ParseError {
                        what: $what,
                        value: s.to_string(),
                        expected: &[$($word),+],
                    }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

#[cfg(test)]
mod tests;
