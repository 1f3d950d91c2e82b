//! Email channel against a real SMTP server (scripts/smtp_sink.py, aiosmtpd).

#[path = "support/smtp.rs"]
mod smtp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use paiid_alerts::testing::domain::{ChannelKind, IncidentId, IncidentState, Severity};
use paiid_alerts::testing::intake::details::event_details;
use paiid_alerts::testing::intake::redact::scrub_text;
use paiid_alerts::testing::notify::email::EmailChannel;
use paiid_alerts::testing::notify::log::LogChannel;
use paiid_alerts::testing::notify::render::Templates;
use paiid_alerts::testing::notify::{
    Channel, Notification, NotificationKind, Outgoing, RemoteState, SendOutcome,
};
use serde_json::json;
use smtp::SmtpSink;

const ACK_URL: &str = "https://alerts.paiid.ai/ack/eyJrIjoiazEiLCJpIjo0Mn0.c2lnbmF0dXJl";

fn notification(kind: NotificationKind) -> Notification {
    let opened = Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap();
    Notification {
        kind,
        incident_id: IncidentId(42),
        dedup_key: "paiid-alerts-42-1".into(),
        severity: Severity::Critical,
        state: IncidentState::Triggered,
        title: "ZeroDivisionError: division by zero".into(),
        project: Some("paiid-backend".into()),
        environment: Some("production".into()),
        level: Some("error".into()),
        culprit: Some("app.routers.orders in place_order".into()),
        event_count: 3,
        first_seen: opened,
        last_seen: opened + chrono::Duration::seconds(90),
        rule: Some("critical-production-errors".into()),
        sentry_rule: Some("Errors in production".into()),
        release: Some("paiid-backend@1.4.2".into()),
        request: Some("POST https://api.paiid.ai/orders".into()),
        top_frame: Some("app/routers/orders.py in place_order at line 42".into()),
        breadcrumbs: vec![],
        metric: None,
        sentry_url: Some("https://sentry.io/organizations/paiid/issues/1/".into()),
        incident_url: "https://alerts.paiid.ai/incidents/42".into(),
        ack_url: Some(ACK_URL.into()),
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

fn channel(sink_url: &str, to: &[&str], timeout: Duration) -> EmailChannel {
    EmailChannel::new(
        "oncall-email".into(),
        to.iter().map(|s| s.to_string()).collect(),
        sink_url,
        "paiid-alerts <alerts@paiid.ai>".into(),
        timeout,
        Arc::new(Templates::defaults()),
    )
    .expect("valid email channel")
}

async fn send(c: &dyn Channel, n: &Notification) -> SendOutcome {
    let remote = RemoteState::default();
    c.send(Outgoing {
        notification: n,
        remote: &remote,
    })
    .await
}

#[tokio::test]
async fn delivers_multipart_mail_with_headers_and_ack_link() {
    let sink = SmtpSink::start().await;
    let c = channel(
        &sink.url(),
        &["trading-ops@paiid.ai", "Manager <em@paiid.ai>"],
        Duration::from_secs(10),
    );
    assert_eq!(c.kind(), ChannelKind::Email);
    assert_eq!(c.rate_key(), "email:oncall-email");
    assert!(c.is_real());

    let n = notification(NotificationKind::Opened);
    let outcome = send(&c, &n).await;
    let SendOutcome::Delivered {
        status,
        response,
        remote,
    } = outcome
    else {
        panic!("expected Delivered, got {outcome:?}");
    };
    assert_eq!(status, Some(250));
    assert!(response.contains("trading-ops@paiid.ai: 250"), "{response}");
    assert_eq!(remote, None);

    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 2);
    let mut rcpts: Vec<&str> = mails.iter().map(|m| m.rcpt_tos[0].as_str()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["em@paiid.ai", "trading-ops@paiid.ai"]);
    for m in &mails {
        assert_eq!(m.rcpt_tos.len(), 1, "one transaction per recipient");
        assert_eq!(m.mail_from, "alerts@paiid.ai");
        assert!(m.subject.starts_with("[CRITICAL] "), "{}", m.subject);
        assert!(
            m.subject.contains("ZeroDivisionError: division by zero"),
            "{}",
            m.subject
        );
        assert_eq!(m.header("X-PaiiD-Incident"), Some("42"));
        assert_eq!(m.header("X-PaiiD-Severity"), Some("critical"));
        assert_eq!(m.header("X-PaiiD-Kind"), Some("opened"));
        assert_eq!(m.header("Auto-Submitted"), Some("auto-generated"));
        assert!(m.header("Message-ID").is_some());
        assert!(
            m.header("Content-Type")
                .unwrap_or_default()
                .starts_with("multipart/alternative"),
            "{:?}",
            m.header("Content-Type")
        );
        let to = m.header("To").unwrap_or_default();
        assert!(
            to.contains("trading-ops@paiid.ai") && to.contains("em@paiid.ai"),
            "{to}"
        );

        let text = m.text();
        let html = m.html();
        assert!(!text.is_empty() && !html.is_empty(), "both parts present");
        assert!(text.contains(&format!("Acknowledge:  {ACK_URL}")), "{text}");
        assert!(html.contains(&format!("href=\"{ACK_URL}\"")), "{html}");
        assert!(html.contains(">Acknowledge</a>"), "{html}");
        for part in [&text, &html] {
            assert!(part.contains("https://alerts.paiid.ai/incidents/42"));
            assert!(part.contains("https://sentry.io/organizations/paiid/issues/1/"));
            assert!(part.contains("app/routers/orders.py in place_order at line 42"));
            assert!(part.contains("POST https://api.paiid.ai/orders"));
        }
    }

    // Once acknowledged, the acknowledge link is gone.
    let mut acked = notification(NotificationKind::Acknowledged);
    acked.state = IncidentState::Acknowledged;
    acked.acknowledged_by = Some("alice".into());
    acked.acknowledged_at = Some(acked.last_seen);
    let c = channel(
        &sink.url(),
        &["trading-ops@paiid.ai"],
        Duration::from_secs(10),
    );
    assert!(matches!(
        send(&c, &acked).await,
        SendOutcome::Delivered { .. }
    ));
    let mails = sink.wait_for(3, Duration::from_secs(10)).await;
    let m = &mails[2];
    assert!(
        m.subject.starts_with("[CRITICAL] Acknowledged: "),
        "{}",
        m.subject
    );
    assert!(m.text().contains("Acknowledged by alice"));
    assert!(!m.everything().contains("/ack/"), "{}", m.everything());
}

#[tokio::test]
async fn secrets_and_pii_from_the_event_never_reach_the_mail() {
    let sink = SmtpSink::start().await;
    // A Sentry event carrying every kind of secret a crash report drags along.
    let event = json!({
        "title": "Login failed for jane.doe@paiid.ai",
        "user": {"id": "7", "email": "jane.doe@paiid.ai", "ip_address": "203.0.113.77"},
        "request": {
            "method": "POST",
            "url": "https://api.paiid.ai/login?password=hunter2-in-url&next=/home",
            "headers": [
                ["Authorization", "Bearer sk_live_BEARER_SECRET"],
                ["Cookie", "sessionid=COOKIE_SECRET_123"],
                ["X-Forwarded-For", "198.51.100.23"]
            ],
            "data": {"username": "jane", "password": "hunter2-in-body"}
        },
        "exception": {"values": [{"stacktrace": {"frames": [
            {"filename": "app/auth.py", "function": "login", "lineno": 12, "in_app": true,
             "vars": {"password": "hunter2-in-vars"}}
        ]}}]},
        "breadcrumbs": {"values": [
            {"category": "auth", "message": "login attempt for jane.doe@paiid.ai from 203.0.113.77"},
            {"category": "http", "message": "upstream call with Authorization: Bearer sk_live_CRUMB_SECRET"},
            {"category": "trading", "message": "order rejected",
             "data": {"password": "hunter2-in-crumb", "api_key": "AKIA_CRUMB_KEY", "symbol": "AAPL",
                      "email": "jane.doe@paiid.ai"}}
        ]}
    });
    let details = event_details(&event, false);
    let mut n = notification(NotificationKind::Opened);
    n.title = scrub_text(event["title"].as_str().unwrap(), false);
    n.request = details.request;
    n.top_frame = details.top_frame;
    n.breadcrumbs = details.breadcrumbs;
    n.release = details.release;

    let c = channel(
        &sink.url(),
        &["trading-ops@paiid.ai"],
        Duration::from_secs(10),
    );
    let outcome = send(&c, &n).await;
    assert!(
        matches!(outcome, SendOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let m = &mails[0];
    let all = m.everything();
    for secret in [
        "hunter2",
        "sk_live_BEARER_SECRET",
        "COOKIE_SECRET_123",
        "sk_live_CRUMB_SECRET",
        "AKIA_CRUMB_KEY",
        "jane.doe@paiid.ai",
        "203.0.113.77",
        "198.51.100.23",
    ] {
        assert!(
            !all.contains(secret),
            "{secret} leaked into the mail:\n{all}"
        );
    }
    // The decoded parts are what was checked, and the context around the secrets survives.
    let text = m.text();
    assert!(
        text.contains("POST https://api.paiid.ai/login?password=[REDACTED]&next=/home"),
        "{text}"
    );
    assert!(text.contains("Login failed for [email]"), "{text}");
    assert!(text.contains("Authorization: [REDACTED]"), "{text}");
    assert!(text.contains("symbol=AAPL"), "{text}");
    assert!(text.contains("app/auth.py in login at line 12"), "{text}");
}

#[tokio::test]
async fn rejected_mailbox_is_permanent() {
    let sink = SmtpSink::start_with(&["--reject-rcpt", "gone@paiid.ai"]).await;
    let c = channel(&sink.url(), &["gone@paiid.ai"], Duration::from_secs(10));
    let outcome = send(&c, &notification(NotificationKind::Opened)).await;
    let SendOutcome::Permanent { status, reason } = outcome else {
        panic!("expected Permanent, got {outcome:?}");
    };
    assert_eq!(status, Some(550));
    assert!(reason.contains("gone@paiid.ai"), "{reason}");

    // One bad address does not stop the others from being paged.
    let c = channel(
        &sink.url(),
        &["gone@paiid.ai", "trading-ops@paiid.ai"],
        Duration::from_secs(10),
    );
    let outcome = send(&c, &notification(NotificationKind::Escalation)).await;
    let SendOutcome::Delivered { response, .. } = outcome else {
        panic!("expected Delivered, got {outcome:?}");
    };
    assert!(response.contains("rejected: gone@paiid.ai"), "{response}");
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].rcpt_tos, ["trading-ops@paiid.ai"]);
}

#[tokio::test]
async fn transient_rejection_is_retried() {
    let sink = SmtpSink::start_with(&["--tempfail-rcpt", "busy@paiid.ai"]).await;
    let c = channel(&sink.url(), &["busy@paiid.ai"], Duration::from_secs(10));
    let outcome = send(&c, &notification(NotificationKind::Opened)).await;
    let SendOutcome::Retry { status, reason, .. } = outcome else {
        panic!("expected Retry, got {outcome:?}");
    };
    assert_eq!(status, Some(450));
    assert!(reason.contains("busy@paiid.ai"), "{reason}");
}

#[tokio::test]
async fn server_slower_than_the_timeout_is_retried() {
    let sink = SmtpSink::start_with(&["--delay", "5"]).await;
    let c = channel(
        &sink.url(),
        &["trading-ops@paiid.ai", "em@paiid.ai"],
        Duration::from_millis(500),
    );
    let started = Instant::now();
    let outcome = send(&c, &notification(NotificationKind::Opened)).await;
    let elapsed = started.elapsed();
    let SendOutcome::Retry { status, reason, .. } = outcome else {
        panic!("expected Retry, got {outcome:?}");
    };
    assert_eq!(status, None);
    assert!(reason.contains("within"), "{reason}");
    // The second recipient is not attempted against a stalled server.
    assert!(reason.contains("em@paiid.ai: not attempted"), "{reason}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test]
async fn unreachable_server_is_retried() {
    // A port that was free a moment ago: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = channel(
        &format!("smtp://127.0.0.1:{port}"),
        &["trading-ops@paiid.ai"],
        Duration::from_secs(5),
    );
    let outcome = send(&c, &notification(NotificationKind::Opened)).await;
    assert!(
        matches!(outcome, SendOutcome::Retry { status: None, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn count_updates_are_skipped() {
    let c = channel(
        "smtp://127.0.0.1:9",
        &["trading-ops@paiid.ai"],
        Duration::from_secs(1),
    );
    let outcome = send(&c, &notification(NotificationKind::CountUpdate)).await;
    assert!(
        matches!(outcome, SendOutcome::Skipped { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn log_channel_returns_the_rendered_text() {
    let templates = Arc::new(Templates::defaults());
    let n = notification(NotificationKind::Opened);

    let log = LogChannel::new(
        "oncall-email".into(),
        "email",
        vec!["SMTP_URL".into()],
        templates.clone(),
    );
    assert_eq!(log.kind(), ChannelKind::Log);
    assert!(!log.is_real());
    let outcome = send(&log, &n).await;
    let expected = format!(
        "Subject: {}\n\n{}",
        templates.email_subject(&n),
        templates.email_text(&n)
    );
    assert_eq!(
        outcome,
        SendOutcome::Delivered {
            status: None,
            response: expected.clone(),
            remote: None
        }
    );
    assert!(expected.starts_with("Subject: [CRITICAL] ZeroDivisionError"));
    assert!(expected.contains(ACK_URL));

    let slack = LogChannel::new(
        "slack-alerts".into(),
        "slack",
        vec!["SLACK_WEBHOOK_URL".into()],
        templates.clone(),
    );
    let SendOutcome::Delivered { response, .. } = send(&slack, &n).await else {
        panic!("log channel must deliver");
    };
    assert_eq!(response, templates.slack_text(&n));
}
