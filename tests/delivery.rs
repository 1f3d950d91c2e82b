//! Notification delivery against real loopback servers: fake Slack and PagerDuty that enforce
//! their documented contracts, and a real SMTP server process.

mod support;

use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use paiid_alerts::testing::notify::worker::Step;
use paiid_alerts::testing::settings::Secrets;
use serde_json::Value;
use support::fake_pagerduty::{self, FakePagerDuty};
use support::fake_slack::{self, FakeSlack};
use support::smtp::SmtpSink;
use support::*;

/// Critical pages Slack, PagerDuty and email at once (so one incident exercises all three),
/// with a short retry schedule.
fn routing(slack: &FakeSlack, pd: &FakePagerDuty, slack_mode: &str) -> String {
    let slack_line = match slack_mode {
        "bot" => format!("bot_token: \"{}\"", slack.bot_token()),
        _ => format!("webhook_url: \"{}\"", slack.webhook_url()),
    };
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", {slack_line} }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
  ops-email: {{ type: email, to: ["trading-ops@paiid.ai", "eng-manager@paiid.ai"] }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts, pagerduty-oncall, ops-email] }}
delivery:
  retry_schedule: [1s, 2s]
  max_attempts: 4
  send_timeout: 2s
  slack_update_interval: 1s
"##,
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    )
}

async fn app_with(
    slack: &FakeSlack,
    pd: &FakePagerDuty,
    smtp: Option<&SmtpSink>,
    mode: &str,
    run_workers: bool,
) -> TestApp {
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    spawn_with(AppOptions {
        routing: routing(slack, pd, mode),
        secrets: Secrets {
            smtp_url: smtp.map(|s| paiid_alerts::testing::settings::Secret::new(s.url())),
            ..Secrets::default()
        },
        run_workers,
        tweak: Some(Box::new({
            let api = slack.api_base();
            move |s| s.slack_api_url = api
        })),
        ..AppOptions::default()
    })
    .await
}

async fn open_critical(app: &TestApp) -> i64 {
    let r = app
        .post_sentry(Some("event_alert"), &secret_laden_event())
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap()
}

/// A copy of a real production error, with secrets and PII added where real events carry them.
fn secret_laden_event() -> Vec<u8> {
    let mut v = fixture_json("event_alert.triggered.4.json");
    let e = &mut v["data"]["event"];
    e["request"]["headers"] = serde_json::json!([
        ["Authorization", "Bearer sk_live_SUPERSECRET"],
        ["Cookie", "session=COOKIESECRET"],
        ["Content-Type", "application/json"]
    ]);
    e["request"]["url"] = "https://api.paiid.ai/orders?token=QUERYSECRET".into();
    e["extra"]["password"] = "hunter2-PASSWORD".into();
    e["user"]["email"] = "trader@example.com".into();
    e["user"]["ip_address"] = "203.0.113.77".into();
    serde_json::to_vec(&v).unwrap()
}

const SECRETS: &[&str] = &[
    "sk_live_SUPERSECRET",
    "COOKIESECRET",
    "QUERYSECRET",
    "hunter2-PASSWORD",
    "trader@example.com",
    "203.0.113.77",
];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks {s}: {text}");
    }
}

async fn delivery_rows(app: &TestApp, channel: &str) -> Vec<Value> {
    let all = app.get_json("/api/deliveries?limit=1000").await;
    all["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == channel)
        .cloned()
        .collect()
}

#[tokio::test]
async fn happy_path_every_channel_without_secrets_or_pii() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let app = app_with(&slack, &pd, Some(&smtp), "webhook", false).await;
    let id = open_critical(&app).await;
    assert_eq!(app.workers.outbox.drain().await.unwrap(), 3);

    let slack_msgs = slack.messages();
    assert_eq!(slack_msgs.len(), 1);
    let body = slack_msgs[0].body.to_string();
    assert!(body.contains("CRITICAL"), "{body}");
    assert!(body.contains("/ack/"), "an Acknowledge link: {body}");
    assert_eq!(slack_msgs[0].body["unfurl_links"], false);
    assert_clean("slack message", &body);

    let events = pd.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(events[0]["payload"]["severity"], "critical");
    assert_eq!(events[0]["dedup_key"], format!("paiid-alerts-{id}-1"));
    assert_clean("pagerduty event", &events[0].to_string());

    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 2, "one SMTP transaction per recipient");
    for m in &mails {
        assert!(
            m.header("Subject").unwrap_or("").starts_with("[CRITICAL]"),
            "{:?}",
            m.header("Subject")
        );
        assert!(
            !m.text().is_empty() && !m.html().is_empty(),
            "text and HTML parts"
        );
        assert_clean("email", &m.everything());
    }

    let inc = app.incident(id).await;
    let deliveries = inc["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3);
    for d in deliveries {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempt_log"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn fail_twice_then_succeed_is_delivered_once_after_three_attempts() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", false).await;
    slack.fail_next(2, fake_slack::Behaviour::Status(500));
    open_critical(&app).await;
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Idle,
        "not due before the backoff"
    );
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    app.clock.advance(Duration::from_secs(3));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Idle
    );

    let rows = delivery_rows(&app, "slack-alerts").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "delivered");
    assert_eq!(rows[0]["attempts"], 3);
    assert_eq!(slack.messages().len(), 1, "delivered once");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", false).await;
    slack.fail_next(
        1,
        fake_slack::Behaviour::RateLimited {
            retry_after_secs: 2,
        },
    );
    open_critical(&app).await;
    app.workers.outbox.step("slack-alerts").await.unwrap();
    let rows = delivery_rows(&app, "slack-alerts").await;
    let next = rows[0]["next_attempt_at"].as_i64().unwrap();
    assert!(
        next - app.clock.now_ms() >= 2000,
        "next attempt not before 2 s: {}",
        next - app.clock.now_ms()
    );
    app.clock.advance(Duration::from_millis(1500));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Idle
    );
    // Our own limiter also holds this destination until Retry-After has passed on the clock.
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    assert_eq!(
        delivery_rows(&app, "slack-alerts").await[0]["status"],
        "delivered"
    );
}

#[tokio::test]
async fn permanent_errors_are_dead_not_retried_and_surfaced() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", false).await;
    slack.fail_next(1, fake_slack::Behaviour::SlackError("channel_not_found"));
    pd.fail_next(1, fake_pagerduty::Behaviour::Status(400));
    open_critical(&app).await;
    app.workers.outbox.drain().await.unwrap();
    app.clock.advance(Duration::from_secs(3600));
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(slack.request_count(), 1, "not retried");
    assert_eq!(pd.request_count(), 1, "not retried");
    let dead = app.get_json("/api/deliveries?status=dead").await;
    let dead = dead["deliveries"].as_array().unwrap();
    assert_eq!(dead.len(), 2);
    let slack_dead = dead
        .iter()
        .find(|d| d["channel"] == "slack-alerts")
        .unwrap();
    assert!(
        slack_dead["last_error"]
            .as_str()
            .unwrap()
            .contains("channel_not_found"),
        "{slack_dead}"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("paiid_deliveries_dead_total{channel=\"slack-alerts\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn slack_down_does_not_delay_pagerduty() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", true).await;
    // Slack hangs longer than our send timeout; PagerDuty answers at once.
    slack.fail_next(5, fake_slack::Behaviour::Hang(Duration::from_secs(10)));
    let started = std::time::Instant::now();
    open_critical(&app).await;
    eventually(Duration::from_secs(5), || async {
        (pd.events().len() == 1).then_some(())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "PagerDuty waited on Slack: {:?}",
        started.elapsed()
    );
    assert!(slack.messages().is_empty());
}

#[tokio::test]
async fn storm_of_ten_thousand_events_is_one_incident_and_a_handful_of_slack_calls() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = std::sync::Arc::new(app_with(&slack, &pd, None, "bot", true).await);
    let template = fixture_json("event_alert.triggered.4.json");
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..32 {
        let app = app.clone();
        let template = template.clone();
        tasks.spawn(async move {
            for i in (worker..10_000).step_by(32) {
                let mut v = template.clone();
                v["data"]["event"]["event_id"] = format!("storm{i:05}").into();
                let r = app
                    .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
                    .await;
                assert_eq!(r.status(), 200);
                if i % 500 == 0 {
                    // Let the manual clock follow real time so live count updates can fall due.
                    app.clock.advance(Duration::from_millis(150));
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let elapsed = started.elapsed();
    let incidents = app.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["event_count"], 10_000, "the count is exact");
    // Past the update interval (and our Slack rate limit, which follows the clock), the running
    // workers send the last count. Then nothing more can happen: the count shown is the count
    // (notified_count), and no delivery is queued or in flight, so the call count is final.
    app.clock.advance(Duration::from_secs(2));
    eventually(Duration::from_secs(10), || async {
        let open: i64 = app
            .scalar(
                "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'failed', 'sending')",
            )
            .await;
        let behind: i64 = app
            .scalar("SELECT COUNT(*) FROM incidents WHERE event_count > notified_count")
            .await;
        (open == 0 && behind == 0).then_some(())
    })
    .await;
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(
        app.workers.outbox.enqueue_count_updates().await.unwrap(),
        0,
        "no count update is owed"
    );
    assert_eq!(
        app.workers.outbox.drain().await.unwrap(),
        0,
        "nothing to send"
    );
    let calls = slack.request_count();
    let posts = slack.requests_to("chat.postMessage").len();
    assert_eq!(
        posts,
        1,
        "one message: {:?}",
        slack
            .requests()
            .iter()
            .map(|r| (r.path.clone(), r.status, r.response.clone()))
            .collect::<Vec<_>>()
    );
    assert!(
        calls <= 12,
        "a handful of Slack calls, got {calls} in {elapsed:?}"
    );
    let msg = &slack.messages()[0];
    assert!(msg.updates >= 1, "the live count was refreshed");
    assert!(
        msg.body.to_string().contains("10,000") || msg.body.to_string().contains("10000"),
        "live count shown: {}",
        msg.body
    );
}

#[tokio::test]
async fn test_alert_needs_a_real_channel_then_goes_through_the_real_path() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/test-alert"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("No notification channel is configured"),
        "{detail}"
    );
    assert!(detail.contains("SLACK_WEBHOOK_URL"), "{detail}");

    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", false).await;
    let r = app
        .client
        .post(app.url("/api/test-alert"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["severity"], "critical");
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(slack.messages().len(), 1);
    let inc = app.incident(body["incident_id"].as_i64().unwrap()).await;
    assert!(
        inc["next_escalation_at"].is_null(),
        "a test alert never escalates"
    );
}

#[tokio::test]
async fn log_channel_records_what_would_have_been_sent() {
    let app = spawn_with(AppOptions {
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let id = open_critical(&app).await;
    app.workers.outbox.drain().await.unwrap();
    let inc = app.incident(id).await;
    let d = &inc["deliveries"][0];
    assert_eq!(d["channel"], "slack-alerts");
    assert_eq!(d["status"], "delivered");
    let response = d["response"].as_str().unwrap();
    assert!(response.contains("CRITICAL"), "{response}");
    assert_clean("logged message", response);
}

async fn act(app: &TestApp, id: i64, action: &str, by: &str) {
    let r = app
        .client
        .post(app.url(&format!("/api/incidents/{id}/{action}")))
        .json(&serde_json::json!({ "by": by }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{action}");
}

/// Bot mode: acknowledged and then resolved while Slack answers 500, the thread replies sent
/// once Slack is back report each event (Acknowledged by whom, then Resolved), not the state the
/// incident is in by the time they are sent.
#[tokio::test]
async fn slack_outage_thread_replies_report_ack_then_resolve() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "bot", false).await;
    let id = open_critical(&app).await;
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    let card = slack.messages()[0].ts.clone();

    // Slack fails the next two calls: the acknowledgement's first two attempts.
    slack.fail_next(2, fake_slack::Behaviour::Status(500));
    act(&app, id, "ack", "ana").await;
    // A second after the card, or our own Slack limit (one message a second per channel, on
    // the injected clock) holds the acknowledgement back before it reaches Slack.
    app.clock.advance(Duration::from_secs(1));
    app.workers.outbox.step("slack-alerts").await.unwrap();
    act(&app, id, "resolve", "ben").await;
    app.clock.advance(Duration::from_secs(5));
    app.workers.outbox.step("slack-alerts").await.unwrap();
    assert!(slack.thread_replies(&card).is_empty(), "Slack was failing");
    assert_eq!(slack.rejected().len(), 2);

    // Slack is back: the queued acknowledgement, then the resolution. Our limit lets one Slack
    // message a second through, so the clock runs a second per step until nothing is left.
    app.clock.advance(Duration::from_secs(10));
    let mut steps = 0;
    while app.workers.outbox.step("slack-alerts").await.unwrap() != Step::Idle {
        steps += 1;
        assert!(steps < 20, "the outbox never emptied");
        app.clock.advance(Duration::from_secs(1));
    }
    let rows = delivery_rows(&app, "slack-alerts").await;
    assert!(rows.iter().all(|d| d["status"] == "delivered"), "{rows:?}");
    let replies: Vec<String> = slack
        .thread_replies(&card)
        .iter()
        .map(|m| m.text.clone().unwrap_or_default())
        .collect();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies[0].contains("Acknowledged") && replies[0].contains("ana"),
        "{replies:?}"
    );
    assert!(!replies[0].contains("Resolved"), "{replies:?}");
    assert!(
        replies[1].contains("Resolved") && replies[1].contains("ben"),
        "{replies:?}"
    );
    // The card ends up showing the incident as it stands.
    let card = slack.message(&card).unwrap();
    assert!(card.body.to_string().contains("RESOLVED"), "{}", card.body);
}

/// A production error for its own Sentry issue, so that each call opens its own incident.
async fn open_critical_issue(app: &TestApp, issue: &str) -> i64 {
    let mut v: Value = serde_json::from_slice(&secret_laden_event()).unwrap();
    v["data"]["event"]["issue_id"] = issue.into();
    v["data"]["event"]["event_id"] = format!("evt-{issue}").into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap()
}

/// A 429's Retry-After holds every message to that Slack channel, not only the one refused, for
/// as long as the injected clock says.
#[tokio::test]
async fn retry_after_pauses_the_channel_on_the_injected_clock() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", false).await;
    slack.fail_next(
        1,
        fake_slack::Behaviour::RateLimited {
            retry_after_secs: 2,
        },
    );
    let start = app.clock.now_ms();
    open_critical_issue(&app, "7001").await;
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    assert_eq!(slack.rejected().len(), 1);

    // A second later our one-a-second limit would allow a message; the pause does not.
    app.clock.advance(Duration::from_secs(1));
    open_critical_issue(&app, "7002").await;
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1),
        "the new alert, claimed and given back"
    );
    assert!(slack.messages().is_empty(), "held by the pause");
    let rows = delivery_rows(&app, "slack-alerts").await;
    let held: Vec<&Value> = rows.iter().filter(|d| d["attempts"] == 0).collect();
    assert_eq!(held.len(), 1, "{rows:?}");
    assert_eq!(held[0]["next_attempt_at"].as_i64(), Some(start + 2000));

    app.clock.set(start + 2000);
    app.workers.outbox.step("slack-alerts").await.unwrap();
    assert_eq!(
        slack.messages().len(),
        1,
        "one message, once the pause is over"
    );
}

/// Our own Slack limit (one message a second per channel) takes its time from the injected
/// clock: while the clock stands still the second alert waits, however long that takes in real
/// time, and it goes out once the clock has moved a second.
#[tokio::test]
async fn our_slack_limit_follows_the_injected_clock() {
    let slack = FakeSlack::start().await;
    // Slack's own limit is not what is tested here.
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", false).await;
    let start = app.clock.now_ms();

    // The first goes out; the second, due while the clock stands still, is given back for a
    // second of clock time. (Two due together would be one bundled message.)
    open_critical_issue(&app, "6001").await;
    app.workers.outbox.step("slack-alerts").await.unwrap();
    open_critical_issue(&app, "6002").await;
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    assert_eq!(slack.messages().len(), 1);
    let rows = delivery_rows(&app, "slack-alerts").await;
    let held: Vec<&Value> = rows.iter().filter(|d| d["status"] == "pending").collect();
    assert_eq!(held.len(), 1, "{rows:?}");
    assert_eq!(held[0]["attempts"], 0, "held back, not attempted: {rows:?}");
    assert_eq!(held[0]["next_attempt_at"].as_i64(), Some(start + 1000));

    app.clock.advance(Duration::from_millis(999));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Idle
    );
    assert_eq!(slack.messages().len(), 1);
    app.clock.advance(Duration::from_millis(1));
    assert_eq!(
        app.workers.outbox.step("slack-alerts").await.unwrap(),
        Step::Executed(1)
    );
    assert_eq!(slack.messages().len(), 2);
}

/// A retried email is the same message to mail clients (same `Message-ID`), so a recipient who
/// already got it before the failure sees it once; another delivery is another message.
#[tokio::test]
async fn retried_email_keeps_its_message_id() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    // The second recipient's server is busy: every attempt reaches the first one, then fails.
    let smtp = SmtpSink::start_with(&["--tempfail-rcpt", "eng-manager@paiid.ai"]).await;
    let app = app_with(&slack, &pd, Some(&smtp), "webhook", false).await;
    let first = open_critical_issue(&app, "5001").await;
    assert_eq!(
        app.workers.outbox.step("ops-email").await.unwrap(),
        Step::Executed(1)
    );
    app.clock.advance(Duration::from_secs(5));
    assert_eq!(
        app.workers.outbox.step("ops-email").await.unwrap(),
        Step::Executed(1)
    );
    let rows = delivery_rows(&app, "ops-email").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["attempts"], 2, "{rows:?}");
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");

    let second = open_critical_issue(&app, "5002").await;
    assert_ne!(first, second);
    assert_eq!(
        app.workers.outbox.step("ops-email").await.unwrap(),
        Step::Executed(1)
    );

    let mails = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 3);
    let id_of = |m: &support::smtp::ReceivedMail| m.header("Message-ID").unwrap().to_string();
    assert_eq!(
        mails[0].header("X-PaiiD-Incident"),
        Some(first.to_string().as_str())
    );
    assert_eq!(
        mails[1].header("X-PaiiD-Incident"),
        Some(first.to_string().as_str())
    );
    assert_eq!(
        mails[2].header("X-PaiiD-Incident"),
        Some(second.to_string().as_str())
    );
    assert_eq!(
        id_of(&mails[0]),
        id_of(&mails[1]),
        "two attempts, one message"
    );
    assert_ne!(
        id_of(&mails[0]),
        id_of(&mails[2]),
        "two deliveries, two messages"
    );
    for m in &mails {
        assert_eq!(m.rcpt_tos, ["trading-ops@paiid.ai"]);
        let id = id_of(m);
        assert!(
            id.starts_with('<') && id.ends_with("@paiid.ai>"),
            "in EMAIL_FROM's domain: {id}"
        );
    }
}

#[tokio::test]
async fn an_unknown_delivery_status_filter_is_a_400_naming_the_allowed_words() {
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let app = app_with(&slack, &pd, None, "webhook", false).await;
    let r = app
        .client
        .get(app.url("/api/deliveries?status=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "bad_query", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("`bogus`"), "{body}");
    for word in ["pending", "sending", "delivered", "failed", "dead"] {
        assert!(detail.contains(word), "{word}: {body}");
    }
    // A known word still filters.
    let dead = app.get_json("/api/deliveries?status=dead").await;
    assert_eq!(dead["deliveries"], serde_json::json!([]), "{dead}");
}
