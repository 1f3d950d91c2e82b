//! Daily digest of Medium incidents and the weekly ops summary, each sent once per period.
//!
//! - [`schedule`]: when digests fire and which period each covers (cron + IANA timezone).
//! - [`report`]: what a digest says (queries through `store::digests`, text + HTML rendering).
//! - [`runner`]: claim the period in the database, send, record; the loop and `--send-now`.

pub mod report;
pub mod runner;
pub mod schedule;

pub use runner::{DigestError, DigestKind, DigestOutcome, DigestRunner, DigestStatus, SkipReason};
