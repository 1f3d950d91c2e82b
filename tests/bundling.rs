//! Bundling in the outbox (issue 10, target 7): messages already due for one Slack channel (or
//! one email channel) go out as one message listing them, not one per second. Workers are
//! stepped by hand on a manual clock against the loopback Slack fake and a real SMTP sink;
//! storm groups are off so that what is measured is bundling alone.

mod support;

use std::time::Duration;

use paiid_alerts::testing::settings::{Secret, Secrets};
use serde_json::{Value, json};
use support::fake_slack::{self, Behaviour, FakeSlack};
use support::smtp::SmtpSink;
use support::*;

/// Most incidents one bundled message lists (`notify::bundle::MAX_MEMBERS`).
const MAX_MEMBERS: usize = 40;

fn routing(slack: &FakeSlack, mode: &str) -> String {
    let slack_line = match mode {
        "bot" => format!("bot_token: \"{}\"", slack.bot_token()),
        _ => format!("webhook_url: \"{}\"", slack.webhook_url()),
    };
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", {slack_line} }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts] }}
storm: {{ enabled: false }}
delivery:
  retry_schedule: [5s, 10s]
  max_attempts: 6
  send_timeout: 2s
  slack_update_interval: 1h
"##
    )
}

async fn slack_app(slack: &FakeSlack, mode: &str) -> TestApp {
    slack_app_routed(slack, routing(slack, mode)).await
}

/// The app with `routing`, its Slack API pointed at `slack` (channel `#paiid-alerts` added).
async fn slack_app_routed(slack: &FakeSlack, routing: String) -> TestApp {
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    spawn_with(AppOptions {
        routing,
        secrets: Secrets::default(),
        run_workers: false,
        tweak: Some(Box::new({
            let api = slack.api_base();
            move |s| s.slack_api_url = api
        })),
        ..AppOptions::default()
    })
    .await
}

/// A title no other incident's contains (`Storm#07#` is not inside `Storm#17#`).
fn title(n: usize) -> String {
    format!("DatabaseDown Storm#{n:02}# connection refused")
}

fn marker(n: usize) -> String {
    format!("Storm#{n:02}#")
}

/// Opens a critical incident for a distinct Sentry issue; its id.
async fn open_critical(app: &TestApp, n: usize) -> i64 {
    let v = seed::critical(&format!("9{n:04}"), &format!("evt-storm-{n}"), &title(n));
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["incident_id"].as_i64().unwrap()
}

/// What the worker loops do, by hand: let retries and rate-limit waits fall due, drain.
async fn settle(app: &TestApp, rounds: usize) {
    for _ in 0..rounds {
        app.clock.advance(Duration::from_secs(1));
        app.workers.outbox.drain().await.unwrap();
    }
}

/// Accepted top-level messages (not thread replies) as they stand now.
fn cards(slack: &FakeSlack) -> Vec<fake_slack::Message> {
    slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .collect()
}

fn body_text(m: &fake_slack::Message) -> String {
    format!(
        "{} {}",
        m.text.clone().unwrap_or_default(),
        m.blocks.clone().unwrap_or(Value::Null)
    )
}

/// Accepted posts (webhook or `chat.postMessage`) and updates.
fn accepted(slack: &FakeSlack, path_suffix: &str) -> usize {
    slack
        .requests_to(path_suffix)
        .iter()
        .filter(|r| r.accepted)
        .count()
}

/// Every incident appears in exactly one card.
fn assert_each_listed_once(slack: &FakeSlack, n: usize) {
    let cards = cards(slack);
    for i in 0..n {
        let holding = cards
            .iter()
            .filter(|m| body_text(m).contains(&marker(i)))
            .count();
        assert_eq!(holding, 1, "incident {i} is in {holding} cards");
    }
}

async fn assert_all_delivered_on_attempt(app: &TestApp, n: usize, attempt: i64) {
    let delivered = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'slack-alerts' \
             AND status = 'delivered' AND attempts = {attempt}"
        ))
        .await;
    assert_eq!(delivered, n as i64, "rows delivered on attempt {attempt}");
    let logged = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM delivery_attempts WHERE attempt = {attempt} \
             AND outcome = 'delivered'"
        ))
        .await;
    assert_eq!(logged, n as i64, "attempt log");
}

#[tokio::test]
async fn thirty_criticals_held_during_an_outage_flush_as_one_webhook_message() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let app = slack_app(&slack, "webhook").await;
    slack.set_down(true);
    for n in 0..30 {
        open_critical(&app, n).await;
    }
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(slack.accepted_count(), 0, "Slack is down");

    slack.set_down(false);
    let before = slack.request_count();
    settle(&app, 60).await;
    let calls = slack.request_count() - before;
    assert!(
        calls <= 30usize.div_ceil(MAX_MEMBERS),
        "{calls} calls to Slack after the outage"
    );
    assert_each_listed_once(&slack, 30);
    assert_all_delivered_on_attempt(&app, 30, 2).await;
    // One Slack message, not one per incident, within Block Kit's limits (the fake checks).
    assert_eq!(slack.rejected().len(), 0, "{:?}", slack.rejected());
}

#[tokio::test]
async fn thirty_criticals_held_by_a_rate_limit_flush_as_one_bot_card() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let app = slack_app(&slack, "bot").await;
    slack.fail_next(
        1,
        Behaviour::RateLimited {
            retry_after_secs: 30,
        },
    );
    for n in 0..30 {
        open_critical(&app, n).await;
    }
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(slack.accepted_count(), 0, "rate limited for 30 s");

    let before = slack.request_count();
    settle(&app, 60).await;
    let calls = slack.request_count() - before;
    assert!(
        calls <= 30usize.div_ceil(MAX_MEMBERS),
        "{calls} calls to Slack after the rate limit"
    );
    assert_each_listed_once(&slack, 30);
    assert_all_delivered_on_attempt(&app, 30, 2).await;
}

#[tokio::test]
async fn more_than_a_bundle_holds_says_how_many_more_and_they_follow_in_the_next() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let app = slack_app(&slack, "webhook").await;
    for n in 0..45 {
        open_critical(&app, n).await;
    }
    settle(&app, 5).await;
    assert_eq!(
        slack.request_count(),
        2,
        "40, then the 5 more a second later"
    );
    let cards = cards(&slack);
    let first = body_text(&cards[0]);
    assert!(first.contains("and 5 more waiting"), "{first}");
    let second = cards[1].blocks.as_ref().unwrap().as_array().unwrap();
    assert_eq!(second.len(), 2 + 5, "header, summary and five members");
    assert_each_listed_once(&slack, 45);
    assert_all_delivered_on_attempt(&app, 45, 1).await;
}

#[tokio::test]
async fn a_bot_bundle_grows_in_place_and_a_lone_message_after_a_quiet_spell_is_not_delayed() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let app = slack_app(&slack, "bot").await;
    for n in 0..3 {
        open_critical(&app, n).await;
    }
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(
        accepted(&slack, "chat.postMessage"),
        1,
        "one card for three"
    );
    let card = cards(&slack).remove(0);
    for n in 0..3 {
        assert!(body_text(&card).contains(&marker(n)), "{n}");
    }

    // More arrive a second later: the same card grows (chat.update), no new post.
    app.clock.advance(Duration::from_secs(1));
    for n in 3..6 {
        open_critical(&app, n).await;
    }
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(accepted(&slack, "chat.postMessage"), 1, "no new post");
    assert_eq!(accepted(&slack, "chat.update"), 1, "the card was updated");
    let grown = slack.message(&card.ts).unwrap();
    for n in 0..6 {
        assert!(body_text(&grown).contains(&marker(n)), "{n} on the card");
    }
    assert_each_listed_once(&slack, 6);
    assert_all_delivered_on_attempt(&app, 6, 1).await;

    // A quiet spell, then one alert: its own card at once, with no clock advance.
    app.clock.advance(Duration::from_secs(600));
    open_critical(&app, 6).await;
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(accepted(&slack, "chat.postMessage"), 2, "posted at once");
    let lone = cards(&slack).pop().unwrap();
    assert!(body_text(&lone).contains(&marker(6)));
    assert!(
        lone.action_ids().contains(&"ack".to_string()),
        "the lone alert gets the normal incident card: {:?}",
        lone.blocks
    );
    assert_eq!(
        slack.message(&card.ts).unwrap().updates,
        1,
        "an old bundle is not grown"
    );
}

#[tokio::test]
async fn acknowledging_a_bundled_incident_updates_its_line_and_replies_in_the_thread() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let app = slack_app(&slack, "bot").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(open_critical(&app, n).await);
    }
    app.workers.outbox.drain().await.unwrap();
    let card = cards(&slack).remove(0);
    assert_eq!(cards(&slack).len(), 1, "one bundle card");

    seed::act(&app, ids[1], "ack", "ana", None).await;
    settle(&app, 3).await;
    let now = slack.message(&card.ts).unwrap();
    let text = body_text(&now);
    // Still the bundle: every member listed, not the acknowledged incident's own card.
    for n in 0..3 {
        assert!(text.contains(&marker(n)), "{n} still listed: {text}");
    }
    let line = member_block(&now, 1);
    assert!(
        line.to_string().contains("Acknowledged") && line.to_string().contains("ana"),
        "{line}"
    );
    assert!(line.get("accessory").is_none(), "no ack button once acked");
    assert!(member_block(&now, 0).get("accessory").is_some());
    let replies = slack.thread_replies(&card.ts);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = replies[0].text.clone().unwrap_or_default();
    assert!(
        reply.contains("Acknowledged") && reply.contains(&format!("#{}", ids[1])),
        "{reply}"
    );
    assert_eq!(cards(&slack).len(), 1, "no separate message");

    seed::act(&app, ids[1], "resolve", "ana", None).await;
    settle(&app, 3).await;
    let now = slack.message(&card.ts).unwrap();
    assert!(member_block(&now, 1).to_string().contains("Resolved"));
    assert_eq!(slack.thread_replies(&card.ts).len(), 2);
    // Besides the bundle only the post-mortem, a stand-alone message as for any incident.
    let others: Vec<_> = cards(&slack)
        .into_iter()
        .filter(|m| m.ts != card.ts)
        .collect();
    assert_eq!(others.len(), 1);
    assert!(body_text(&others[0]).contains("Post-mortem"), "{others:?}");
    let rows = app
        .scalar(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'slack-alerts' \
             AND status = 'delivered' AND kind IN ('opened', 'acknowledged', 'resolved')",
        )
        .await;
    assert_eq!(rows, 5, "3 opened, 1 ack, 1 resolve");
}

/// The section listing member `n` (found by its marker).
fn member_block(m: &fake_slack::Message, n: usize) -> Value {
    m.blocks
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|b| b["type"] == "section" && b.to_string().contains(&marker(n)))
        .cloned()
        .unwrap_or_else(|| json!({ "missing": n }))
}

const EMAIL_ROUTING: &str = r#"
channels:
  trading-ops-email: { type: email, to: ["trading-ops@paiid.ai"] }
rules:
  - name: every-error
    severity: high
    when: { level: [error, fatal] }
severities:
  high: { notify: [trading-ops-email] }
storm: { enabled: false }
"#;

#[tokio::test]
async fn ten_high_incidents_due_together_go_out_as_one_mail_listing_them() {
    let smtp = SmtpSink::start().await;
    let app = spawn_with(AppOptions {
        routing: EMAIL_ROUTING.to_string(),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            ..Secrets::default()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(open_critical(&app, n).await);
    }
    app.workers.outbox.drain().await.unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = if smtp.received().len() > mails.len() {
        smtp.received()
    } else {
        mails
    };
    assert_eq!(mails.len(), 1, "one mail for ten incidents");
    let mail = &mails[0];
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(mail.text().matches(&marker(n)).count(), 1, "{n} in text");
        assert!(mail.html().contains(&marker(n)), "{n} in html");
        assert!(mail.text().contains(&format!("/incidents/{id}")), "{id}");
    }
    assert!(mail.subject.contains("10"), "{}", mail.subject);
    let delivered = app
        .scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND attempts = 1")
        .await;
    assert_eq!(delivered, 10);
}

#[tokio::test]
async fn a_lone_mail_is_sent_on_its_own_at_once() {
    let smtp = SmtpSink::start().await;
    let app = spawn_with(AppOptions {
        routing: EMAIL_ROUTING.to_string(),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            ..Secrets::default()
        },
        run_workers: false,
        ..AppOptions::default()
    })
    .await;
    let id = open_critical(&app, 0).await;
    app.workers.outbox.drain().await.unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].header("X-PaiiD-Incident"), Some(&*id.to_string()));
    assert_eq!(mails[0].header("X-PaiiD-Kind"), Some("opened"));
}

#[tokio::test]
async fn an_incident_raised_while_its_card_grows_keeps_one_line_on_it() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    // Warnings are high and tell the same channel: a warning turning into errors is raised.
    let routing = routing(&slack, "bot")
        .replace(
            "severities:\n",
            "  - name: warnings\n    severity: high\n    when: { environment: production, level: [warning] }\nseverities:\n  high: { notify: [slack-alerts] }\n",
        );
    let app = slack_app_routed(&slack, routing).await;
    let post = |n: usize, event: &str, level: &str| {
        let mut v = seed::critical(&format!("9{n:04}"), event, &title(n));
        v["data"]["event"]["level"] = level.into();
        serde_json::to_vec(&v).unwrap()
    };
    for n in 0..3 {
        let r = app
            .post_sentry(
                Some("event_alert"),
                &post(n, &format!("evt-w-{n}"), "warning"),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(
        accepted(&slack, "chat.postMessage"),
        1,
        "one card for three"
    );
    let card = cards(&slack).remove(0);
    let lines = |m: &fake_slack::Message| {
        m.blocks
            .clone()
            .unwrap_or(Value::Null)
            .to_string()
            .matches(&marker(1))
            .count()
    };
    let before = lines(&card);
    assert!(before >= 1);

    // A second later incident 1 turns into errors: raised to critical, told on the same card.
    app.clock.advance(Duration::from_secs(1));
    let r = app
        .post_sentry(Some("event_alert"), &post(1, "evt-w-1-error", "error"))
        .await;
    assert_eq!(r.status(), 200);
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(accepted(&slack, "chat.postMessage"), 1, "no new post");
    let grown = slack.message(&card.ts).unwrap();
    assert_eq!(grown.updates, 1, "the card was updated");
    assert_eq!(
        lines(&grown),
        before,
        "one line for incident 1: {:?}",
        grown.blocks
    );
    let sections = grown
        .blocks
        .clone()
        .unwrap_or(Value::Null)
        .as_array()
        .map_or(0, |b| b.iter().filter(|b| b["type"] == "section").count());
    assert_eq!(sections, 3, "three incidents, three lines");
}
