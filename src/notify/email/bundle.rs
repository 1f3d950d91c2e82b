//! Email bundles (see [`crate::notify::bundle`]): incidents due together for one email channel
//! go out as one mail listing them, text and HTML, instead of one mail each.

use lettre::Message;
use lettre::message::MultiPart;
use lettre::message::header::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::{EmailChannel, header_safe};
use crate::notify::bundle::{Bundle, Bundler, may_join};
use crate::notify::{Notification, RemoteState, SendFuture, SendOutcome};
use crate::text::{html_escape, truncate_chars};

/// A member's headline in the subject and on its line.
const MAX_HEADLINE_CHARS: usize = 300;

impl Bundler for EmailChannel {
    fn joins(&self, n: &Notification, _remote: &RemoteState) -> bool {
        may_join(n)
    }

    fn send_bundle<'a>(&'a self, bundle: Bundle<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            match self.build_bundle(&bundle) {
                Ok(raw) => self.send_to_all(&raw, None).await,
                Err(reason) => SendOutcome::Permanent {
                    status: None,
                    reason,
                },
            }
        })
    }

    /// Mail is never edited: a member's change is the mail it gets today.
    fn report_member<'a>(
        &'a self,
        _bundle: Bundle<'a>,
        change: &'a Notification,
    ) -> SendFuture<'a> {
        Box::pin(self.deliver(change))
    }
}

impl EmailChannel {
    /// The complete RFC 5322 message of a bundle.
    pub(crate) fn build_bundle(&self, b: &Bundle<'_>) -> Result<Vec<u8>, String> {
        let header = |name: &str, value: String| {
            HeaderName::new_from_ascii(name.to_string())
                .map(|h| HeaderValue::new(h, value))
                .map_err(|e| format!("header {name}: {e}"))
        };
        let ids: Vec<String> = b
            .members
            .iter()
            .map(|n| n.incident_id.to_string())
            .collect();
        // Every attempt with the same rows is the same mail (see `message_id`); a retry that
        // lists more rows is a new mail, or a recipient that has the first Message-ID (Gmail,
        // archivers) would drop it and the rows added with it.
        let message_id = b.members.first().and_then(|n| n.delivery).map(|d| {
            let mut rows = Sha256::new();
            for n in b.members.iter().filter_map(|n| n.delivery) {
                rows.update(n.id.to_string().as_bytes());
                rows.update(b",");
            }
            let set = hex::encode(&rows.finalize()[..6]);
            self.message_id(d)
                .replacen("<delivery-", &format!("<bundle-{set}-"), 1)
        });
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(header_safe(&subject(b)))
            .message_id(message_id)
            .raw_header(header("X-PaiiD-Kind", "bundle".to_string())?)
            .raw_header(header("X-PaiiD-Incidents", ids.join(", "))?)
            .raw_header(header("Auto-Submitted", "auto-generated".to_string())?)
            .raw_header(header("X-Auto-Response-Suppress", "All".to_string())?);
        for rcpt in &self.to {
            builder = builder.to(rcpt.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(text(b), html(b)))
            .map(|m| m.formatted())
            .map_err(|e| format!("cannot build the message: {e}"))
    }
}

fn headline(n: &Notification) -> String {
    truncate_chars(&n.headline(), MAX_HEADLINE_CHARS)
}

/// `[paiid-alerts] 10 incidents: [HIGH] first title, and 9 more`.
fn subject(b: &Bundle<'_>) -> String {
    let first = b.members.first().map(headline).unwrap_or_default();
    let others = b.members.len().saturating_sub(1) + b.more;
    format!(
        "[paiid-alerts] {} incidents: {first}, and {others} more",
        b.members.len()
    )
}

/// `triggered`, `acknowledged by ana`, `resolved`; escalations say so.
fn state(n: &Notification) -> String {
    let mut s = n.state.as_str().to_string();
    if let Some(by) = n
        .acknowledged_by
        .as_deref()
        .filter(|_| n.resolved_at.is_none())
    {
        s = format!("{s} (acknowledged by {})", truncate_chars(by, 200));
    }
    if n.kind == crate::notify::NotificationKind::Escalation {
        s.push_str(", escalated: not acknowledged in time");
    }
    s
}

fn text(b: &Bundle<'_>) -> String {
    let mut out = format!(
        "{} incidents need attention (one mail for all of them).\n\n",
        b.members.len()
    );
    for (i, n) in b.members.iter().enumerate() {
        out.push_str(&format!(
            "{}. {} · {} events · {}\n   {}\n",
            i + 1,
            headline(n),
            n.event_count,
            state(n),
            n.incident_url
        ));
        if let Some(url) = n.ack_url.as_deref() {
            out.push_str(&format!("   Acknowledge: {url}\n"));
        }
    }
    if b.more > 0 {
        out.push_str(&format!(
            "\n…and {} more waiting: they follow in the next mail.\n",
            b.more
        ));
    }
    out
}

fn html(b: &Bundle<'_>) -> String {
    let mut out = format!(
        "<p>{} incidents need attention (one mail for all of them).</p>\n<ol>\n",
        b.members.len()
    );
    for n in b.members {
        let url = html_escape(&n.incident_url);
        out.push_str(&format!(
            "<li><a href=\"{url}\">{}</a> · {} events · {}",
            html_escape(&headline(n)),
            n.event_count,
            html_escape(&state(n))
        ));
        if let Some(ack) = n.ack_url.as_deref() {
            out.push_str(&format!(
                " · <a href=\"{}\">Acknowledge</a>",
                html_escape(ack)
            ));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n");
    if b.more > 0 {
        out.push_str(&format!(
            "<p>…and {} more waiting: they follow in the next mail.</p>\n",
            b.more
        ));
    }
    out
}
