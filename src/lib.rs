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
//! - [`templates`]: every template file (notifications, pages, digests) and their shared set-up.
//! - [`http`]: routes, one error type mapped to `{code, detail}` JSON.
//! - [`app`]: wiring: `Application::build(settings)` and `run_until_stopped(shutdown)`.
//! - [`testing`]: what integration tests need beyond the public API (the read pool).

pub mod auth;
pub mod classification;
pub mod config;
pub mod digest;
pub mod domain;
pub mod intake;
pub mod notify;

pub mod app;
pub mod clock;
pub mod escalation;
pub mod http;
pub mod http_client;
pub mod incidents;
pub mod metrics;
pub mod settings;
pub mod signal;
pub mod store;
pub mod templates;
#[cfg(test)]
pub(crate) mod test_support;
pub mod testing;
pub mod text;
