//! The log channel: stands in for a Slack, PagerDuty or email channel whose secret is unset.
//!
//! A newcomer running the service with no secrets still sees, per delivery, exactly what would
//! have been sent: the rendered text is logged at INFO and stored as the delivery's response, so
//! the API and the web page show it.

use std::fmt;
use std::sync::Arc;

use super::render::Templates;
use super::{
    Channel, ChannelKind, Notice, Notification, NotificationKind, Outgoing, SendFuture, SendOutcome,
};

pub struct LogChannel {
    name: String,
    stands_in_for: &'static str,
    missing_env: Vec<String>,
    templates: Arc<Templates>,
}

impl fmt::Debug for LogChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogChannel")
            .field("name", &self.name)
            .field("stands_in_for", &self.stands_in_for)
            .field("missing_env", &self.missing_env)
            .finish()
    }
}

impl LogChannel {
    /// `stands_in_for_kind`: `slack`, `pagerduty` or `email` (anything else renders the plain
    /// email text). `missing_env`: the variables that would make the real channel work.
    pub fn new(
        name: String,
        stands_in_for_kind: &'static str,
        missing_env: Vec<String>,
        templates: Arc<Templates>,
    ) -> Self {
        Self {
            name,
            stands_in_for: stands_in_for_kind,
            missing_env,
            templates,
        }
    }

    pub fn stands_in_for(&self) -> &'static str {
        self.stands_in_for
    }

    pub fn missing_env(&self) -> &[String] {
        &self.missing_env
    }

    /// What the real channel would have sent for `n`, or why it would have sent nothing.
    pub fn render(&self, n: &Notification) -> Result<String, String> {
        if n.kind == NotificationKind::CountUpdate {
            // Live counts edit an existing message; a log line per event would drown the log.
            return Err("live count updates are not logged".to_string());
        }
        match self.stands_in_for {
            "slack" => Ok(self.templates.slack_text(n)),
            "pagerduty" => {
                let action = match n.kind {
                    NotificationKind::Acknowledged => "acknowledge",
                    NotificationKind::Resolved => "resolve",
                    NotificationKind::PostMortem | NotificationKind::CountUpdate => {
                        return Err("PagerDuty receives no post-mortem".to_string());
                    }
                    _ => "trigger",
                };
                Ok(format!(
                    "event_action: {action}\ndedup_key: {}\nsummary: {}",
                    n.dedup_key,
                    self.templates.pagerduty_summary(n)
                ))
            }
            _ => Ok(format!(
                "Subject: {}\n\n{}",
                self.templates.email_subject(n),
                self.templates.email_text(n)
            )),
        }
    }
}

impl LogChannel {
    /// One line for a notice, or why the real channel would have sent nothing.
    pub fn render_notice(&self, notice: &Notice) -> Result<String, String> {
        match self.stands_in_for {
            "pagerduty" => Err("PagerDuty is not paged for a notice".to_string()),
            _ => Ok(notice.log_line()),
        }
    }
}

impl Channel for LogChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Log
    }

    fn rate_key(&self) -> String {
        format!("log:{}", self.name)
    }

    fn is_real(&self) -> bool {
        false
    }

    fn announce<'a>(&'a self, notice: &'a Notice) -> SendFuture<'a> {
        let outcome = match self.render_notice(notice) {
            Ok(line) => {
                tracing::info!(
                    channel = %self.name,
                    kind = notice.kind().as_str(),
                    stands_in_for = self.stands_in_for,
                    missing_env = %self.missing_env.join(", "),
                    message = %line,
                    "not sent: channel has no credentials; this is what would have been sent"
                );
                SendOutcome::Delivered {
                    status: None,
                    response: line,
                    remote: None,
                }
            }
            Err(reason) => SendOutcome::Skipped { reason },
        };
        Box::pin(async move { outcome })
    }

    fn send<'a>(&'a self, out: Outgoing<'a>) -> SendFuture<'a> {
        let n = out.notification;
        let outcome = match self.render(n) {
            Ok(text) => {
                tracing::info!(
                    channel = %self.name,
                    incident_id = n.incident_id.get(),
                    kind = n.kind.as_str(),
                    stands_in_for = self.stands_in_for,
                    missing_env = %self.missing_env.join(", "),
                    message = %text,
                    "not sent: channel has no credentials; this is what would have been sent"
                );
                SendOutcome::Delivered {
                    status: None,
                    response: text,
                    remote: None,
                }
            }
            Err(reason) => SendOutcome::Skipped { reason },
        };
        Box::pin(async move { outcome })
    }
}

impl super::Mailer for LogChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_real(&self) -> bool {
        false
    }

    fn send_mail<'a>(&'a self, subject: &'a str, text: &'a str, _html: &'a str) -> SendFuture<'a> {
        let rendered = format!("Subject: {subject}\n\n{text}");
        tracing::info!(
            channel = %self.name,
            missing_env = %self.missing_env.join(", "),
            message = %rendered,
            "not sent: channel has no credentials; this is the mail that would have been sent"
        );
        Box::pin(async move {
            SendOutcome::Delivered {
                status: None,
                response: rendered,
                remote: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, IncidentId, IncidentState, Severity};
    use crate::notify::RemoteState;
    use chrono::Utc;

    fn notification(kind: NotificationKind) -> Notification {
        let now = Utc::now();
        Notification {
            kind,
            incident_id: IncidentId(3),
            dedup_key: "paiid-alerts-3-1".into(),
            severity: Severity::Critical,
            state: IncidentState::Triggered,
            title: "Broker down".into(),
            project: Some("paiid-backend".into()),
            environment: Some("production".into()),
            level: Some("error".into()),
            culprit: None,
            event_count: 2,
            first_seen: now,
            last_seen: now,
            rule: None,
            sentry_rule: None,
            release: None,
            request: None,
            top_frame: None,
            breadcrumbs: vec![],
            metric: None,
            sentry_url: None,
            incident_url: "http://localhost/incidents/3".into(),
            ack_url: Some("http://localhost/ack/t".into()),
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            waited_minutes: None,
            reason: None,
            seer_pr_url: None,
            post_mortem: None,
            storm: None,
            delivery: None,
        }
    }

    async fn send(c: &LogChannel, n: &Notification) -> SendOutcome {
        let remote = RemoteState::default();
        c.send(Outgoing {
            notification: n,
            remote: &remote,
        })
        .await
    }

    #[tokio::test]
    async fn returns_exactly_what_would_have_been_sent() {
        let templates = Arc::new(Templates::defaults());
        let n = notification(NotificationKind::Opened);
        for (kind, expected) in [
            ("slack", templates.slack_text(&n)),
            (
                "email",
                format!(
                    "Subject: {}\n\n{}",
                    templates.email_subject(&n),
                    templates.email_text(&n)
                ),
            ),
            (
                "pagerduty",
                format!(
                    "event_action: trigger\ndedup_key: paiid-alerts-3-1\nsummary: {}",
                    templates.pagerduty_summary(&n)
                ),
            ),
        ] {
            let c = LogChannel::new(
                "x".into(),
                kind,
                vec!["SLACK_WEBHOOK_URL".into()],
                templates.clone(),
            );
            assert!(!c.is_real());
            assert_eq!(c.kind(), ChannelKind::Log);
            assert_eq!(
                send(&c, &n).await,
                SendOutcome::Delivered {
                    status: None,
                    response: expected,
                    remote: None
                }
            );
        }
        let c = LogChannel::new("x".into(), "slack", vec![], templates);
        assert!(matches!(
            send(&c, &notification(NotificationKind::CountUpdate)).await,
            SendOutcome::Skipped { .. }
        ));
    }

    #[tokio::test]
    async fn a_notice_is_one_line_except_for_pagerduty() {
        use crate::notify::notice::UnreadablePayload;
        let notice = Notice::unreadable_payload(
            UnreadablePayload {
                resource: "event_alert".into(),
                shape: "a,b".into(),
                reason: "`data.event` is missing".into(),
                event_id: EventId(5),
                received_at: 1_780_000_000_000,
            },
            "http://localhost:8080",
        );
        let templates = Arc::new(Templates::defaults());
        for kind in ["slack", "email", "log"] {
            let c = LogChannel::new("x".into(), kind, vec![], templates.clone());
            assert_eq!(
                c.announce(&notice).await,
                SendOutcome::Delivered {
                    status: None,
                    response: notice.log_line(),
                    remote: None
                },
                "{kind}"
            );
        }
        let line = notice.log_line();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("Sentry sent an `event_alert` we could not read"));
        assert!(line.ends_with("http://localhost:8080/"), "{line}");
        let c = LogChannel::new("pd".into(), "pagerduty", vec![], templates);
        assert!(matches!(
            c.announce(&notice).await,
            SendOutcome::Skipped { .. }
        ));
    }
}
