//! Email recipients paged for an incident hear that it was resolved: a short "Resolved" mail to
//! the email channels that got a delivery for the episode (trigger or a fired escalation), and
//! nothing to an email channel that was never told. Real SMTP (scripts/smtp_sink.py).

mod support;

use std::time::Duration;

use paiid_alerts::testing::settings::{Secret, Secrets};
use serde_json::{Value, json};
use support::smtp::{ReceivedMail, SmtpSink};
use support::*;

/// High: mail to trading-ops (two addresses); after an hour, mail to the engineering manager.
const ROUTING: &str = r#"
channels:
  trading-ops-email: { type: email, to: ["trading-ops@paiid.ai", "desk@paiid.ai"] }
  eng-manager-email: { type: email, to: ["eng-manager@paiid.ai"] }
rules:
  - name: every-error
    severity: high
    when: { level: [error, fatal] }
severities:
  high: { notify: [trading-ops-email], escalate_after: 60m, escalate_to: [eng-manager-email] }
"#;

async fn app(smtp: &SmtpSink) -> TestApp {
    spawn_with(AppOptions {
        routing: ROUTING.to_string(),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            ..Secrets::default()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await
}

async fn open_high(app: &TestApp) -> i64 {
    let r = app
        .post_sentry(
            Some("event_alert"),
            &fixture("event_alert.triggered.4.json"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["severity"], "high", "{body}");
    body["incident_id"].as_i64().unwrap()
}

async fn resolve(app: &TestApp, id: i64) {
    let r = app
        .client
        .post(app.url(&format!("/api/incidents/{id}/resolve")))
        .json(&json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

fn kind(m: &ReceivedMail) -> &str {
    m.header("X-PaiiD-Kind").unwrap_or_default()
}

fn recipients(mails: &[ReceivedMail], kind_word: &str) -> Vec<String> {
    let mut r: Vec<String> = mails
        .iter()
        .filter(|m| kind(m) == kind_word)
        .flat_map(|m| m.rcpt_tos.clone())
        .collect();
    r.sort();
    r
}

#[tokio::test]
async fn recipients_paged_by_mail_get_a_resolved_mail_and_the_others_nothing() {
    let smtp = SmtpSink::start().await;
    let app = app(&smtp).await;
    let id = open_high(&app).await;
    assert_eq!(app.workers.outbox.drain().await.unwrap(), 1);
    let opened = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        recipients(&opened, "opened"),
        ["desk@paiid.ai", "trading-ops@paiid.ai"]
    );

    resolve(&app, id).await;
    assert_eq!(app.workers.outbox.drain().await.unwrap(), 1);
    let mails = smtp.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(
        recipients(&mails, "resolved"),
        ["desk@paiid.ai", "trading-ops@paiid.ai"],
        "the same recipients as the page"
    );
    for m in mails.iter().filter(|m| kind(m) == "resolved") {
        assert!(m.subject.starts_with("[HIGH] Resolved: "), "{}", m.subject);
        assert!(m.text().contains("Resolved by ana"), "{}", m.text());
        assert_eq!(m.header("X-PaiiD-Incident"), Some(id.to_string().as_str()));
    }
    // The manager's channel was never told about this episode (no escalation fired).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = smtp.received();
    assert_eq!(
        all.len(),
        4,
        "{:?}",
        all.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(
        all.iter()
            .all(|m| !m.rcpt_tos.contains(&"eng-manager@paiid.ai".to_string()))
    );
    let dead_or_pending = app
        .scalar("SELECT COUNT(*) FROM deliveries WHERE status <> 'delivered'")
        .await;
    assert_eq!(dead_or_pending, 0);
}

#[tokio::test]
async fn an_escalation_by_mail_is_followed_by_a_resolved_mail_too() {
    let smtp = SmtpSink::start().await;
    let app = app(&smtp).await;
    let id = open_high(&app).await;
    app.workers.outbox.drain().await.unwrap();
    app.clock.advance(Duration::from_secs(61 * 60));
    assert_eq!(app.workers.scheduler.fire_due().await.unwrap(), 1);
    app.workers.outbox.drain().await.unwrap();
    let before = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(recipients(&before, "escalation"), ["eng-manager@paiid.ai"]);

    resolve(&app, id).await;
    assert_eq!(app.workers.outbox.drain().await.unwrap(), 2);
    let mails = smtp.wait_for(6, Duration::from_secs(10)).await;
    assert_eq!(
        recipients(&mails, "resolved"),
        [
            "desk@paiid.ai",
            "eng-manager@paiid.ai",
            "trading-ops@paiid.ai"
        ]
    );
}
