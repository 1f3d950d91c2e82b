//! Sentry payloads we cannot read are announced once per resource and shape, through the
//! outbox, to the critical policy's channels except PagerDuty: the real app, a loopback Slack,
//! a real SMTP server, and a restart on the same database.

mod support;

use std::time::Duration;

use paiid_alerts::testing::intake::signature::sign;
use paiid_alerts::testing::settings::{Secret, Secrets};
use serde_json::Value;
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::smtp::SmtpSink;
use support::*;

const HEADLINE: &str = "Sentry sent an `event_alert` we could not read";

/// The shipped routing.yaml, with its Slack channel pointed at the fake Slack's webhook.
fn default_routing_with_slack(slack: &FakeSlack) -> String {
    let routing = std::fs::read_to_string(repo_path("routing.yaml")).unwrap();
    let routing = routing.replace("${SLACK_WEBHOOK_URL}", &slack.webhook_url());
    // Without a bot token the channel posts through its webhook.
    let routing: String = routing
        .lines()
        .filter(|l| !l.contains("${SLACK_BOT_TOKEN}"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(routing.contains(&slack.webhook_url()));
    routing
}

fn options(routing: String, dir: Option<std::sync::Arc<tempfile::TempDir>>) -> AppOptions {
    AppOptions {
        routing,
        secrets: Secrets {
            sentry_client_secret: secret("s3cret"),
            ..Secrets::default()
        },
        // The test drives the outbox itself.
        run_workers: false,
        dir,
        ..AppOptions::default()
    }
}

/// Sentry's envelope around `data`; `uuid` makes each body different.
fn envelope(uuid: &str, data: &str) -> Vec<u8> {
    format!(
        r#"{{"action":"triggered","installation":{{"uuid":"{uuid}"}},"data":{data},"actor":{{"type":"application","name":"Sentry"}}}}"#
    )
    .into_bytes()
}

async fn post_signed(app: &TestApp, resource: &str, body: &[u8]) -> Value {
    let r = app
        .client
        .post(app.url("/webhooks/sentry"))
        .header("content-type", "application/json")
        .header("Sentry-Hook-Resource", resource)
        .header("Sentry-Hook-Signature", sign(b"s3cret", body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "unparsed", "{v}");
    v
}

/// Announcement rows (`kind = unreadable_payload`) as the API lists them, oldest first.
async fn announcements(app: &TestApp) -> Vec<Value> {
    let all = app.get_json("/api/deliveries?limit=1000").await;
    let mut rows: Vec<Value> = all["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "unreadable_payload")
        .cloned()
        .collect();
    rows.reverse();
    rows
}

fn slack_texts(slack: &FakeSlack) -> Vec<String> {
    slack
        .messages()
        .into_iter()
        .map(|m| m.text.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn an_unreadable_shape_is_announced_on_slack_once_across_retries_and_restarts() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let app = spawn_with(options(default_routing_with_slack(&slack), None)).await;

    // Two deliveries of one shape (different bodies), then the outbox runs.
    let first = post_signed(&app, "event_alert", &envelope("u1", "{}")).await;
    post_signed(&app, "event_alert", &envelope("u2", "{}")).await;
    app.workers.outbox.drain().await.unwrap();

    let texts = slack_texts(&slack);
    assert_eq!(texts.len(), 1, "{texts:?}");
    let text = &texts[0];
    assert!(text.contains(HEADLINE), "{text}");
    // A link to the on-call page, which lists the payload.
    assert!(
        text.contains(&format!("<{}/|", app.base)),
        "no link to {}/ in {text}",
        app.base
    );
    // A plain message, not an incident card with acknowledge buttons.
    let message = &slack.messages()[0];
    assert!(message.blocks.is_none(), "{:?}", message.blocks);
    assert!(message.action_ids().is_empty());
    assert_eq!(message.via, fake_slack::Via::Webhook);

    // The row: no incident, and a detail that says what was sent.
    let rows = announcements(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["channel"], "slack-alerts");
    assert_eq!(row["status"], "delivered");
    assert!(row["incident_id"].is_null(), "{row}");
    let detail: Value = serde_json::from_str(row["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["resource"], "event_alert");
    assert_eq!(detail["shape"], "");
    assert!(
        detail["reason"].as_str().unwrap().contains("data.event"),
        "{detail}"
    );
    assert_eq!(detail["event_id"], first["event_id"]);
    assert_eq!(detail["received_at"], START_MS);

    // A retry of the second delivery is a duplicate: nothing new.
    let r = app
        .client
        .post(app.url("/webhooks/sentry"))
        .header("content-type", "application/json")
        .header("Sentry-Hook-Resource", "event_alert")
        .header(
            "Sentry-Hook-Signature",
            sign(b"s3cret", &envelope("u2", "{}")),
        )
        .body(envelope("u2", "{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate");
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(slack.messages().len(), 1);

    // The same shape after a restart on the same database: still once.
    let (dir, clock) = app.stop().await;
    let mut opts = options(default_routing_with_slack(&slack), Some(dir));
    opts.clock = Some(clock);
    let app = spawn_with(opts).await;
    post_signed(&app, "event_alert", &envelope("u3", "{}")).await;
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(slack_texts(&slack).len(), 1, "{:?}", slack_texts(&slack));
    assert_eq!(announcements(&app).await.len(), 1);

    // Another shape is news.
    post_signed(
        &app,
        "event_alert",
        &envelope("u4", r#"{"event":null,"triggered_rule":"r"}"#),
    )
    .await;
    app.workers.outbox.drain().await.unwrap();
    let texts = slack_texts(&slack);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains(HEADLINE), "{}", texts[1]);
    assert!(texts[1].contains("event,triggered_rule"), "{}", texts[1]);
    assert_eq!(announcements(&app).await.len(), 2);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM incidents").await, 0);
}

#[tokio::test]
async fn with_the_shipped_routing_and_no_secrets_the_log_channel_announces_it() {
    let app = spawn_with(options(
        std::fs::read_to_string(repo_path("routing.yaml")).unwrap(),
        None,
    ))
    .await;
    let posted = post_signed(&app, "metric_alert", &envelope("m1", r#"{"x":1}"#)).await;
    // The writer wakes the outbox itself; with run_workers off we step it.
    app.workers.outbox.drain().await.unwrap();
    let rows = announcements(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["channel"], "slack-alerts");
    assert_eq!(rows[0]["status"], "delivered");
    let line = rows[0]["response"].as_str().unwrap();
    assert!(
        line.contains("Sentry sent an `metric_alert` we could not read"),
        "{line}"
    );
    assert!(line.contains(&format!("{}/", app.base)), "{line}");
    assert!(
        line.contains(&format!("event {}", posted["event_id"])),
        "{line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");
}

#[tokio::test]
async fn pagerduty_is_never_paged_for_it_and_email_gets_a_short_mail() {
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let routing = format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", webhook_url: "${{SLACK_WEBHOOK_URL_UNSET_IN_TESTS}}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
  ops-email: {{ type: email, to: ["trading-ops@paiid.ai"] }}
rules:
  - name: everything
    severity: critical
severities:
  critical: {{ notify: [pagerduty-oncall, ops-email, slack-alerts] }}
"##,
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    );
    let mut opts = options(routing, None);
    opts.secrets.smtp_url = Some(Secret::new(smtp.url()));
    let app = spawn_with(opts).await;

    post_signed(&app, "issue", &envelope("i1", r#"{"issue":{"title":"t"}}"#)).await;
    app.workers.outbox.drain().await.unwrap();

    let rows = announcements(&app).await;
    let mut channels: Vec<&str> = rows
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    channels.sort();
    assert_eq!(channels, ["ops-email", "slack-alerts"], "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "delivered"), "{rows:?}");
    assert_eq!(pd.request_count(), 0, "PagerDuty was paged");

    let mail = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    let mail = &mail[0];
    assert!(
        mail.subject
            .contains("Sentry sent an `issue` we could not read"),
        "{}",
        mail.subject
    );
    let text = mail.text();
    assert!(text.contains(&format!("{}/", app.base)), "{text}");
    assert!(text.contains("issue"), "{text}");
    assert!(mail.html().contains(&format!("href=\"{}/\"", app.base)));
    assert_eq!(mail.header("X-PaiiD-Kind"), Some("unreadable_payload"));
    assert!(mail.header("X-PaiiD-Incident").is_none());
}

#[tokio::test]
async fn in_bot_mode_the_running_outbox_is_woken_and_posts_a_plain_message() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let routing = std::fs::read_to_string(repo_path("routing.yaml"))
        .unwrap()
        .replace("${SLACK_BOT_TOKEN}", slack.bot_token());
    let mut opts = options(routing, None);
    // The real workers: the writer must wake the outbox for the announcement (an idle outbox
    // otherwise sleeps up to a minute).
    opts.run_workers = true;
    opts.tweak = Some(Box::new({
        let api = slack.api_base();
        move |s| s.slack_api_url = api
    }));
    let app = spawn_with(opts).await;
    post_signed(&app, "event_alert", &envelope("b1", "{}")).await;

    let messages = eventually(Duration::from_secs(10), || async {
        let m = slack.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.via, fake_slack::Via::Bot);
    assert_eq!(m.channel, fake_slack::CHANNEL_ID);
    assert!(m.blocks.is_none(), "{:?}", m.blocks);
    let text = m.text.as_deref().unwrap_or_default();
    assert!(text.contains(HEADLINE), "{text}");
    assert!(text.contains(&format!("<{}/|", app.base)), "{text}");
    // Nothing tracks it as an incident card.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM remote_refs").await, 0);
}

#[tokio::test]
async fn a_notice_row_whose_detail_cannot_be_read_is_given_up_with_the_reason() {
    let app = spawn_with(options(
        std::fs::read_to_string(repo_path("routing.yaml")).unwrap(),
        None,
    ))
    .await;
    for detail in [None, Some("{\"resource\":\"issue\"}")] {
        let mut tx = app.state.store.begin_write().await.unwrap();
        sqlx::query(
            "INSERT INTO deliveries (incident_id, episode, channel, kind, detail, status, \
             next_attempt_at, created_at) VALUES (NULL, 0, 'slack-alerts', 'unreadable_payload', \
             ?, 'pending', 0, 0)",
        )
        .bind(detail)
        .execute(paiid_alerts::testing::sqlite_conn(&mut tx))
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    app.workers.outbox.drain().await.unwrap();
    let rows = announcements(&app).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["status"], "dead", "{row}");
        assert_eq!(row["attempts"], 1, "{row}");
    }
    assert!(
        rows[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no detail"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1]["last_error"]
            .as_str()
            .unwrap()
            .contains("missing field"),
        "{}",
        rows[1]
    );
}
