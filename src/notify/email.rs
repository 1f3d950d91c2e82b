//! Email channel: SMTP through lettre (async, rustls), one multipart text + HTML message.
//!
//! Each recipient gets its own SMTP transaction. In one transaction a single rejected address
//! (a typo, a departed manager) aborts delivery to everybody, which would silently drop an
//! escalation; separately, the others still get paged and the rejection is reported.
//!
//! Every transaction is wrapped in [`tokio::time::timeout`]: lettre's own timeout only covers
//! the connect, and a server that accepts the connection and then stalls would otherwise hold
//! the delivery worker forever.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::message::DeliveryRef;
use super::render::Templates;
use super::{
    Channel, ChannelKind, Notice, Notification, NotificationKind, Outgoing, SendFuture,
    SendOutcome, truncate_body,
};
use crate::domain::IncidentId;

mod bundle;

/// Bytes of SMTP replies kept per attempt.
const MAX_RESPONSE: usize = 2000;

/// A configuration problem, reported when the channel is built. Never contains the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum EmailConfigError {
    #[error("email channel {channel}: invalid SMTP URL {url}: {reason}")]
    InvalidUrl {
        channel: String,
        /// The URL with its password replaced by `[REDACTED]`.
        url: String,
        reason: String,
    },
    #[error("email channel {channel}: invalid {field} address {address:?}: {reason}")]
    InvalidAddress {
        channel: String,
        /// `from` or `to`.
        field: &'static str,
        address: String,
        reason: String,
    },
    #[error("email channel {channel}: no recipients")]
    NoRecipients { channel: String },
}

pub struct EmailChannel {
    name: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The SMTP URL with its password removed, for logs and `Debug`.
    server: String,
    send_timeout: Duration,
    templates: Arc<Templates>,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written: lettre's transport holds the credentials.
        f.debug_struct("EmailChannel")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .field("send_timeout", &self.send_timeout)
            .finish()
    }
}

impl EmailChannel {
    /// `smtp_url` as lettre understands it: `smtp://127.0.0.1:2525` (plain),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465` (TLS).
    pub fn new(
        name: String,
        to: Vec<String>,
        smtp_url: &str,
        from: String,
        send_timeout: Duration,
        templates: Arc<Templates>,
    ) -> Result<Self, EmailConfigError> {
        let server = redact_url_password(smtp_url);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url.trim())
            .map_err(|e| EmailConfigError::InvalidUrl {
                channel: name.clone(),
                url: server.clone(),
                reason: scrub_password(&e.to_string(), smtp_url),
            })?
            .timeout(Some(send_timeout))
            .build();
        let parse = |field: &'static str, address: &str| {
            address
                .trim()
                .parse::<Mailbox>()
                .map_err(|e| EmailConfigError::InvalidAddress {
                    channel: name.clone(),
                    field,
                    address: address.to_string(),
                    reason: e.to_string(),
                })
        };
        let from = parse("from", &from)?;
        let to = to
            .iter()
            .map(|a| parse("to", a))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(EmailConfigError::NoRecipients { channel: name });
        }
        Ok(Self {
            name,
            from,
            to,
            transport,
            server,
            send_timeout,
            templates,
        })
    }

    /// The SMTP URL without its password.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn recipients(&self) -> Vec<String> {
        self.to.iter().map(|m| m.email.to_string()).collect()
    }

    /// The complete RFC 5322 message for `n` (what each recipient receives).
    pub fn build_message(&self, n: &Notification) -> Result<Vec<u8>, String> {
        let subject = self.templates.email_subject(n);
        let text = self.templates.email_text(n);
        let html = self.templates.email_html(n);
        let header = |name: &str, value: String| {
            HeaderName::new_from_ascii(name.to_string())
                .map(|h| HeaderValue::new(h, value))
                .map_err(|e| format!("header {name}: {e}"))
        };
        // One thread per incident in mail clients.
        let thread = format!("<incident-{}@paiid-alerts>", n.incident_id);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(n.delivery.map(|d| self.message_id(d)))
            .references(thread)
            .raw_header(header("X-PaiiD-Incident", n.incident_id.to_string())?)
            .raw_header(header(
                "X-PaiiD-Severity",
                header_safe(n.severity.as_str()),
            )?)
            .raw_header(header("X-PaiiD-Kind", n.kind.as_str().to_string())?)
            .raw_header(header("X-PaiiD-Dedup-Key", header_safe(&n.dedup_key))?)
            // Keep vacation responders and Exchange auto-replies off the alert address.
            .raw_header(header("Auto-Submitted", "auto-generated".to_string())?)
            .raw_header(header("X-Auto-Response-Suppress", "All".to_string())?);
        for rcpt in &self.to {
            builder = builder.to(rcpt.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map(|m| m.formatted())
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    /// The short mail of a notice: no incident headers, no thread.
    pub fn build_notice(&self, notice: &Notice) -> Result<Vec<u8>, String> {
        let header = |name: &str, value: String| {
            HeaderName::new_from_ascii(name.to_string())
                .map(|h| HeaderValue::new(h, value))
                .map_err(|e| format!("header {name}: {e}"))
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(header_safe(&notice.email_subject()))
            .message_id(notice.delivery.map(|d| self.message_id(d)))
            .raw_header(header("X-PaiiD-Kind", notice.kind().as_str().to_string())?)
            .raw_header(header("Auto-Submitted", "auto-generated".to_string())?)
            .raw_header(header("X-Auto-Response-Suppress", "All".to_string())?);
        for rcpt in &self.to {
            builder = builder.to(rcpt.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                notice.email_text(),
                notice.email_html(),
            ))
            .map(|m| m.formatted())
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    /// The same for every attempt of one delivery, so that mail clients show a retried mail once
    /// (a retry resends to the recipients who already got it); without a delivery (send-test),
    /// lettre makes a random one.
    fn message_id(&self, d: DeliveryRef) -> String {
        format!(
            "<delivery-{}.{}@{}>",
            d.id,
            d.created_at,
            self.from.email.domain()
        )
    }

    async fn deliver(&self, n: &Notification) -> SendOutcome {
        if n.kind == NotificationKind::CountUpdate {
            return SendOutcome::Skipped {
                reason: "email does not send live count updates".to_string(),
            };
        }
        let raw = match self.build_message(n) {
            Ok(raw) => raw,
            Err(reason) => {
                return SendOutcome::Permanent {
                    status: None,
                    reason,
                };
            }
        };

        self.send_to_all(&raw, Some(n.incident_id)).await
    }

    /// Sends `raw` to every recipient, one SMTP transaction each, so that one rejected address
    /// does not stop the others from being paged.
    async fn send_to_all(&self, raw: &[u8], incident_id: Option<IncidentId>) -> SendOutcome {
        let mut delivered: Vec<String> = Vec::new();
        let mut rejected: Vec<(Option<u16>, String)> = Vec::new();
        let mut retry: Vec<(Option<u16>, String)> = Vec::new();
        let mut last_code = None;
        for (i, rcpt) in self.to.iter().enumerate() {
            let address = rcpt.email.to_string();
            let envelope =
                match Envelope::new(Some(self.from.email.clone()), vec![rcpt.email.clone()]) {
                    Ok(e) => e,
                    Err(e) => {
                        rejected.push((None, format!("{address}: {e}")));
                        continue;
                    }
                };
            let attempt =
                tokio::time::timeout(self.send_timeout, self.transport.send_raw(&envelope, raw))
                    .await;
            match attempt {
                Ok(Ok(response)) => {
                    let code = u16::from(response.code());
                    last_code = Some(code);
                    let text = response.message().collect::<Vec<_>>().join(" ");
                    delivered.push(format!("{address}: {code} {text}"));
                }
                Ok(Err(e)) => {
                    let code = e.status().map(u16::from);
                    let line = format!("{address}: {e}");
                    if is_permanent(&e) {
                        rejected.push((code, line));
                    } else {
                        let server_down = code.is_none();
                        retry.push((code, line));
                        // The next recipient would wait on the same dead server.
                        if server_down {
                            skip_rest(&self.to[i + 1..], &mut retry);
                            break;
                        }
                    }
                }
                Err(_) => {
                    retry.push((
                        None,
                        format!(
                            "{address}: no answer from {} within {:?}",
                            self.server, self.send_timeout
                        ),
                    ));
                    skip_rest(&self.to[i + 1..], &mut retry);
                    break;
                }
            }
        }
        self.outcome(incident_id, delivered, rejected, retry, last_code)
    }

    fn outcome(
        &self,
        incident_id: Option<IncidentId>,
        delivered: Vec<String>,
        rejected: Vec<(Option<u16>, String)>,
        retry: Vec<(Option<u16>, String)>,
        last_code: Option<u16>,
    ) -> SendOutcome {
        let join = |items: &[(Option<u16>, String)]| {
            items
                .iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !retry.is_empty() {
            // Retrying resends to recipients who already have it: duplicates beat a lost page.
            let mut reason = join(&retry);
            if !rejected.is_empty() {
                reason.push_str(&format!("; rejected: {}", join(&rejected)));
            }
            return SendOutcome::Retry {
                status: retry.iter().find_map(|(c, _)| *c),
                reason: truncate_body(&reason, MAX_RESPONSE),
                retry_after: None,
            };
        }
        if delivered.is_empty() {
            return SendOutcome::Permanent {
                status: rejected.iter().find_map(|(c, _)| *c),
                reason: truncate_body(&join(&rejected), MAX_RESPONSE),
            };
        }
        let mut response = delivered.join("; ");
        if !rejected.is_empty() {
            tracing::warn!(
                channel = %self.name,
                incident_id = ?incident_id.map(IncidentId::get),
                rejected = %join(&rejected),
                "some email recipients were rejected permanently"
            );
            response.push_str(&format!("; rejected: {}", join(&rejected)));
        }
        SendOutcome::Delivered {
            status: last_code,
            response: truncate_body(&response, MAX_RESPONSE),
            remote: None,
        }
    }
}

impl super::Mailer for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_real(&self) -> bool {
        true
    }

    fn send_mail<'a>(&'a self, subject: &'a str, text: &'a str, html: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            let mut builder = Message::builder()
                .from(self.from.clone())
                .subject(subject)
                .message_id(None);
            if let Ok(h) = HeaderName::new_from_ascii("Auto-Submitted".to_string()) {
                builder = builder.raw_header(HeaderValue::new(h, "auto-generated".to_string()));
            }
            for rcpt in &self.to {
                builder = builder.to(rcpt.clone());
            }
            let raw = match builder.multipart(MultiPart::alternative_plain_html(
                text.to_string(),
                html.to_string(),
            )) {
                Ok(m) => m.formatted(),
                Err(e) => {
                    return SendOutcome::Permanent {
                        status: None,
                        reason: format!("cannot build the message: {e}"),
                    };
                }
            };
            self.send_to_all(&raw, None).await
        })
    }
}

fn skip_rest(rest: &[Mailbox], retry: &mut Vec<(Option<u16>, String)>) {
    for m in rest {
        retry.push((None, format!("{}: not attempted", m.email)));
    }
}

/// 5xx replies are permanent (550 mailbox unavailable, 553 bad address, 535 bad credentials);
/// 4xx replies, connection, TLS and I/O failures may pass.
fn is_permanent(e: &SmtpError) -> bool {
    e.is_permanent() || e.status().is_some_and(|c| u16::from(c) >= 500)
}

fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// `smtps://user:secret@host:465` → `smtps://user:[REDACTED]@host:465`. Works on malformed input
/// too (that is exactly when the URL ends up in an error message).
pub(crate) fn redact_url_password(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.find("://") {
        Some(i) => (
            url.get(..i + 3).unwrap_or(""),
            url.get(i + 3..).unwrap_or(""),
        ),
        None => ("", url),
    };
    // The last `@` ends the userinfo even when a password contains an unencoded `@` or `/`.
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    let userinfo = rest.get(..at).unwrap_or("");
    let host = rest.get(at..).unwrap_or("");
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:[REDACTED]"),
        None if scheme.is_empty() => "[REDACTED]".to_string(),
        None => userinfo.to_string(),
    };
    format!("{scheme}{shown}{host}")
}

/// Removes the URL's password (raw or percent-decoded) from a message, should a library echo it.
fn scrub_password(message: &str, url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let Some(userinfo) = rest.rfind('@').and_then(|at| rest.get(..at)) else {
        return message.to_string();
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return message.to_string();
    };
    if password.is_empty() {
        return message.to_string();
    }
    let mut out = message.replace(password, "[REDACTED]");
    let decoded = percent_decode(password);
    if !decoded.is_empty() && decoded != password {
        out = out.replace(&decoded, "[REDACTED]");
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn rate_key(&self) -> String {
        format!("email:{}", self.name)
    }

    fn bundler(&self) -> Option<&dyn super::bundle::Bundler> {
        Some(self)
    }

    fn send<'a>(&'a self, out: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(self.deliver(out.notification))
    }

    fn announce<'a>(&'a self, notice: &'a Notice) -> SendFuture<'a> {
        Box::pin(async move {
            match self.build_notice(notice) {
                Ok(raw) => self.send_to_all(&raw, None).await,
                Err(reason) => SendOutcome::Permanent {
                    status: None,
                    reason,
                },
            }
        })
    }
}

#[cfg(test)]
mod tests;
