//! Incidents: one per Sentry issue or metric alert rule, with episodes when reopened.
//!
//! [`transitions`] holds every state change as a pure function; [`writer`] commits intake in
//! groups; [`service`] runs the other changes (acknowledge, resolve, note) in their own short
//! transactions. All of them share the single write connection, so they never interleave.

pub(crate) mod explain;
pub(crate) mod model;
pub(crate) mod service;
pub(crate) mod silences;
pub(crate) mod storms;
pub(crate) mod transitions;
pub(crate) mod writer;
