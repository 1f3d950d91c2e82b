//! paiid-alerts: turns Sentry alerts into pages that people act on.
//!
//! # Layout
//! - [`config`]: `routing.yaml` schema, `${ENV}` interpolation, validation with line numbers.
//! - [`intake`]: Sentry webhook verification and typed, borrowing payload parsing.
//! - [`classification`]: the severity matrix (first matching rule wins) and rate windows.
//! - [`incidents`]: the incident model, its states and the group-commit writer.
//! - [`notify`]: channels (Slack, PagerDuty, email, log) and the durable outbox worker.
//! - [`escalation`]: the durable escalation scheduler.
//! - [`auth`]: signed ack links, Slack and PagerDuty signatures.
//! - [`digest`]: daily / weekly digests, claimed per period before sending.
//! - [`store`]: all SQL, SQLite set-up and migrations.
//! - [`http`]: routes, one error type mapped to `{code, detail}` JSON.
//! - [`app`]: wiring: `Application::build(settings)` and `run_until_stopped(shutdown)`.

pub mod auth;
pub mod digest;
pub mod notify;
pub mod classification;
pub mod config;
pub mod intake;

#[cfg(test)]
pub(crate) mod test_support;
pub mod clock;
pub mod incidents;
pub mod store;
pub mod http;
pub mod settings;
pub mod app;
