//! Notification channels and the durable outbox that feeds them.
//!
//! A notification is first an outbox row (`deliveries`), written in the same transaction as the
//! incident change that caused it. The [`worker`] claims due rows with a lease, renders the
//! [`Notification`] for the row's channel and calls that channel's [`Channel::send`]. Channels are
//! small clients of the real protocols (Slack, PagerDuty Events v2, SMTP) plus a log channel that
//! stands in for any channel whose secret is unset.
//!
//! Rows without an incident are [`notice`]s (a Sentry payload we could not read): the worker
//! builds a [`Notice`] for them and calls [`Channel::announce`] instead.

pub(crate) mod build;
pub(crate) mod bundle;
pub(crate) mod email;
pub(crate) mod log;
pub(crate) mod message;
pub(crate) mod notice;
pub(crate) mod pagerduty;
pub(crate) mod ratelimit;
pub(crate) mod registry;
pub(crate) mod reload;
pub(crate) mod render;
pub(crate) mod retry;
pub(crate) mod sentry;
pub(crate) mod slack;
pub(crate) mod transport;
pub(crate) mod worker;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub(crate) use crate::domain::{ChannelKind, RemoteRef, RemoteState};
pub(crate) use message::{Notification, NotificationKind};
pub(crate) use notice::Notice;

/// One send attempt's input.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub notification: &'a Notification,
    pub remote: &'a RemoteState,
}

/// The result of one attempt, as the outbox needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    Delivered {
        status: Option<u16>,
        response: String,
        remote: Option<RemoteRef>,
    },
    /// Try again later (5xx, 429, timeouts, connection errors).
    Retry {
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Never retried (Slack `invalid_payload`, `channel_not_found`, PagerDuty 400, ...).
    Permanent { status: Option<u16>, reason: String },
    /// Nothing to do for this notification on this channel (e.g. PagerDuty `acknowledge` for an
    /// incident that was never triggered there). Counts as delivered.
    Skipped { reason: String },
}

pub(crate) type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// A configured destination. Implementations hold their HTTP/SMTP client and secrets; they never
/// log secrets and never panic on a bad response.
pub trait Channel: Send + Sync {
    /// The channel's name in `routing.yaml` (e.g. `slack-alerts`).
    fn name(&self) -> &str;
    /// `slack`, `pagerduty`, `email` or `log`.
    fn kind(&self) -> ChannelKind;
    /// Key for per-destination rate limiting (Slack channel, PagerDuty routing key hash, ...).
    fn rate_key(&self) -> String;
    /// True when a real destination is configured (the log fallback returns false).
    fn is_real(&self) -> bool {
        true
    }
    fn send<'a>(&'a self, out: Outgoing<'a>) -> SendFuture<'a>;
    /// Sends a [`Notice`]: a short plain message about no incident. PagerDuty skips it.
    fn announce<'a>(&'a self, notice: &'a Notice) -> SendFuture<'a>;
    /// The channel's way of sending several incidents as one message, if it has one.
    fn bundler(&self) -> Option<&dyn bundle::Bundler> {
        None
    }
}

/// A channel that can send a whole mail of our own making (digests, weekly summaries):
/// email channels, and the log channel standing in for one.
pub trait Mailer: Send + Sync {
    fn name(&self) -> &str;
    fn is_real(&self) -> bool;
    fn send_mail<'a>(&'a self, subject: &'a str, text: &'a str, html: &'a str) -> SendFuture<'a>;
}

/// Truncate a response body for storage (bytes, on a char boundary).
pub(crate) fn truncate_body(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
