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
mod silence;

pub(crate) use action::Action;
pub(crate) use effects::{Effects, NewDelivery, NewTimeline};
pub(crate) use ids::{DeliveryId, EventId};
pub use ids::{Episode, IncidentId};
pub use incident::IncidentState;
pub use incident::parse_dedup_key;
pub(crate) use incident::{
    Acknowledgement, DigestCadence, Incident, Policy, ResolvedEpisode, dedup_key,
};
pub(crate) use incident::{IncidentKind, StormJoin};
pub(crate) use ingest::IngestStatus;
pub use kinds::{ChannelKind, NotificationKind};
pub(crate) use kinds::{DeliveryKind, DeliveryStatus, NoticeKind, TimelineKind, Via};
pub(crate) use notice::{NoticeError, UnreadablePayload};
pub use remote::{RemoteRef, RemoteState};
pub use severity::Severity;
#[allow(unused_imports)] // the explain command and the web page use the rest
pub(crate) use silence::{
    EnvironmentNames, Matchers, NewSilence, Silence, SilenceError, SilenceId, SilenceState,
    SilenceSubject, TitleRegex, holding,
};

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
/// `$vis` is the reach of `as_str` and `ALL`: `pub` for an enum that `testing` (or a public
/// signature) reaches, `pub(crate)` otherwise (`unreachable_pub`).
macro_rules! text_enum {
    ($vis:vis $ty:ident, $what:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            #[cfg(test)]
            $vis const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stored word.
            $vis fn as_str(self) -> &'static str {
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

        // Stored as its word on either backend: `TEXT` in SQLite and PostgreSQL alike, not a
        // PostgreSQL enum type (a new word would then need a migration on one backend only).
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $ty
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<&'r str as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
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
