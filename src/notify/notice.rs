//! Notices: outbox rows about no incident (`deliveries.incident_id` is NULL).
//!
//! One kind so far, `unreadable_payload`: Sentry sent a payload whose envelope is Sentry's but
//! whose `data` we cannot read (see `crate::intake::unparsed`). It is announced once per resource
//! and shape so that on call learns that Sentry's payloads changed before an alert goes missing.
//!
//! A notice is a short plain message: no incident card, no acknowledge link (there is nothing to
//! acknowledge), and never a page: PagerDuty channels are left out when the rows are written and
//! skip a notice should one reach them anyway. What a row says is frozen in its `detail` when
//! it is written, so a retry sends the same message.

use chrono::{DateTime, Utc};

use super::message::DeliveryRef;
use crate::clock::ms_to_datetime;
use crate::text::{html_escape, slack_escape, truncate_chars};

/// Longest resource name a message shows (it comes from a request header).
const MAX_RESOURCE_CHARS: usize = 64;
/// Longest list of field names a message shows; the web page has all of them.
const MAX_SHAPE_CHARS: usize = 300;
const MAX_REASON_CHARS: usize = 300;

pub(crate) use crate::domain::{NoticeError, NoticeKind, UnreadablePayload};

/// One notice, ready for a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub payload: UnreadablePayload,
    /// The on-call web page (`PUBLIC_URL/`), which lists the payloads we could not read.
    pub page_url: String,
    /// The outbox row; lets email give every attempt the same Message-ID.
    pub delivery: Option<DeliveryRef>,
}

impl Notice {
    /// `public_url` without a trailing slash is the usual form; one is tolerated.
    pub fn unreadable_payload(payload: UnreadablePayload, public_url: &str) -> Self {
        Self {
            payload,
            page_url: format!("{}/", public_url.trim_end_matches('/')),
            delivery: None,
        }
    }

    pub fn kind(&self) -> NoticeKind {
        NoticeKind::UnreadablePayload
    }

    fn resource(&self) -> String {
        // Inside a code span: a backtick would end it early.
        let r = one_line(&self.payload.resource).replace('`', "'");
        let r = if r.is_empty() {
            "unnamed".to_string()
        } else {
            r
        };
        truncate_chars(&r, MAX_RESOURCE_CHARS)
    }

    fn shape(&self) -> String {
        let shape = one_line(&self.payload.shape);
        if shape.is_empty() {
            "(no fields)".to_string()
        } else {
            truncate_chars(&shape, MAX_SHAPE_CHARS)
        }
    }

    fn reason(&self) -> String {
        let reason = one_line(&self.payload.reason);
        // The message adds its own full stop.
        let reason = reason.trim_end_matches('.');
        if reason.is_empty() {
            "not given".to_string()
        } else {
            truncate_chars(reason, MAX_REASON_CHARS)
        }
    }

    fn received(&self) -> String {
        let at: DateTime<Utc> = ms_to_datetime(self.payload.received_at);
        at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }

    /// `Sentry sent an `event_alert` we could not read`: the subject and the first line.
    pub fn headline(&self) -> String {
        format!("Sentry sent an `{}` we could not read", self.resource())
    }

    /// Slack mrkdwn: everything from the payload escaped, the page as a link.
    pub fn slack_text(&self) -> String {
        format!(
            ":warning: *{headline}*\nFields of `data`: `{shape}`. Why: {reason}.\n\
             Event {event}, received {received}; stored with status `unparsed`, no incident \
             opened. Later payloads of this shape are only counted.\n<{url}|Open the on-call page>",
            headline = slack_escape(&self.headline()),
            shape = slack_escape(&self.shape().replace('`', "'")),
            reason = slack_escape(&self.reason()),
            event = self.payload.event_id,
            received = self.received(),
            url = slack_escape(&self.page_url),
        )
    }

    pub fn email_subject(&self) -> String {
        self.headline()
    }

    pub fn email_text(&self) -> String {
        format!(
            "{headline}.\n\n\
             Fields of data: {shape}\n\
             Why: {reason}\n\
             Event: {event}, received {received}\n\n\
             It is stored with status `unparsed` and no incident was opened. Later payloads of \
             this shape are stored and counted (paiid_intake_unparsed_total) without another \
             message.\n\n\
             On-call page: {url}\n",
            headline = self.headline(),
            shape = self.shape(),
            reason = self.reason(),
            event = self.payload.event_id,
            received = self.received(),
            url = self.page_url,
        )
    }

    pub fn email_html(&self) -> String {
        format!(
            "<p><strong>{headline}.</strong></p>\
             <p>Fields of <code>data</code>: <code>{shape}</code><br>Why: {reason}<br>\
             Event {event}, received {received}</p>\
             <p>It is stored with status <code>unparsed</code> and no incident was opened. Later \
             payloads of this shape are stored and counted without another message.</p>\
             <p><a href=\"{url}\">Open the on-call page</a></p>",
            headline = html_escape(&self.headline()),
            shape = html_escape(&self.shape()),
            reason = html_escape(&self.reason()),
            event = self.payload.event_id,
            received = self.received(),
            url = html_escape(&self.page_url),
        )
    }

    /// The log channel's one line.
    pub fn log_line(&self) -> String {
        format!(
            "{headline}: fields of data {shape}; {reason}; event {event} received {received}; {url}",
            headline = self.headline(),
            shape = self.shape(),
            reason = self.reason(),
            event = self.payload.event_id,
            received = self.received(),
            url = self.page_url,
        )
    }
}

/// Collapses whitespace (newlines would break a log line, a mail header or the message layout).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
