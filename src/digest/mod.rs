//! Daily digest of Medium incidents and the weekly ops summary, each sent once per period.
//!
//! - [`schedule`]: when digests fire and which period each covers (cron + IANA timezone).
//! - [`report`]: what a digest says (queries through `store::digests`) and the view its templates
//!   see.
//! - [`render`]: the digest templates (defaults in `src/templates/digest/`, overridable from
//!   `routing.yaml`), compiled once when the configuration loads.
//! - [`runner`]: claim the period in the database, send, record; the loop and `--send-now`.

pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod schedule;

pub use runner::{DigestError, DigestKind, DigestOutcome, DigestRunner, DigestStatus, SkipReason};
