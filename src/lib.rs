//! paiid-alerts: turns Sentry alerts into pages that people act on.
//!
//! # Layout
//!
//! See `ARCHITECTURE.md` for the layers and the flow of one webhook.
//! - [`domain`]: severities, states, kinds, statuses, ids and effects; imports nothing else.
//! - [`config`]: `routing.yaml` schema, `${ENV}` interpolation, validation with line numbers.
//! - [`intake`]: Sentry webhook verification and typed, borrowing payload parsing.
//! - [`classification`]: the severity matrix (first matching rule wins) and rate windows.
//! - [`incidents`]: the incident model, its states and the group-commit writer.
//! - [`notify`]: channels (Slack, PagerDuty, email, log) and the durable outbox worker.
//! - [`escalation`]: the durable escalation scheduler.
//! - [`auth`]: signed ack links, Slack and PagerDuty signatures.
//! - [`digest`]: daily / weekly digests, claimed per period before sending.
//! - [`store`]: all SQL, SQLite set-up and migrations.
//! - [`telemetry`]: self-monitoring: the service's own errors to Sentry (`SENTRY_DSN`).
//! - [`templates`]: every template file (notifications, pages, digests) and their shared set-up.
//! - [`http`]: routes, one error type mapped to `{code, detail}` JSON.
//! - [`app`]: wiring: `Application::build(settings)` and `run_until_stopped(shutdown)`.
//! - [`testing`]: what integration tests and fuzz targets reach; nothing else is public.
//!
//! # Visibility
//!
//! Every module is private to the crate. The binary gets the few items it needs from the
//! re-exports below; integration tests and fuzz targets get theirs from [`testing`].

#![warn(unreachable_pub)]
// Only `testing` is public, so the docs are read with `cargo doc --document-private-items`,
// where links to crate-private items resolve.
#![allow(rustdoc::private_intra_doc_links)]

mod auth;
mod classification;
mod config;
mod digest;
mod domain;
mod intake;
mod notify;

mod app;
mod clock;
mod escalation;
mod http;
mod http_client;
mod incidents;
mod metrics;
mod settings;
mod signal;
mod store;
mod telemetry;
mod templates;
#[cfg(test)]
pub(crate) mod test_support;
pub mod testing;
mod text;
mod watch;

// The binary's surface (`src/main.rs`): serve, check-config, send-test and digest.
pub use app::demo::run_demo;
pub use app::{Application, channel_env};
pub use clock::{SharedClock, SystemClock};
pub use config::RoutingConfig;
pub use digest::{DigestKind, DigestRunner, DigestStatus};
pub use domain::RemoteState;
pub use http::silences::client::{SilenceCli, run_silence_cli};
pub use incidents::explain::explain_file;
pub use notify::message::Notification;
pub use notify::registry::Channels;
pub use notify::render::Templates;
pub use notify::{Outgoing, SendOutcome};
pub use settings::Settings;
pub use store::migrate::{MigrateDbError, TableCount, migrate_sqlite_to_postgres};
pub use store::{Durability, Store};
pub use telemetry::{TelemetryOptions, init_telemetry};
pub use text::redact_url_password;
