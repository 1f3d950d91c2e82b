//! What each channel has been told stays consistent when sends fail, retry and race: messages to
//! one channel about one incident go out in order, every episode keeps its own Slack card and
//! PagerDuty incident, and every Slack channel of a policy keeps its own card. Workers are stepped
//! by hand (`run_workers: false`) against the loopback Slack and PagerDuty fakes.

mod support;

use std::time::Duration;

use paiid_alerts::testing::clock::Clock;
use paiid_alerts::testing::settings::Secrets;
use serde_json::{Value, json};
use support::fake_pagerduty::{self, FakePagerDuty};
use support::fake_slack::{self, FakeSlack};
use support::*;

const ONCALL_ID: &str = "C0ONCALL01";

/// Critical goes to two Slack channels (bot mode) and PagerDuty.
fn routing(slack: &FakeSlack, pd: &FakePagerDuty) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", bot_token: "{token}" }}
  slack-oncall: {{ type: slack, channel: "#oncall", bot_token: "{token}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts, slack-oncall, pagerduty-oncall] }}
delivery:
  retry_schedule: [1s, 2s]
  max_attempts: 6
  send_timeout: 2s
  slack_update_interval: 1s
"##,
        token = slack.bot_token(),
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    )
}

struct World {
    app: TestApp,
    slack: FakeSlack,
    pd: FakePagerDuty,
}

async fn world() -> World {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    slack.add_channel("#oncall", ONCALL_ID);
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing(&slack, &pd),
        secrets: Secrets::default(),
        run_workers: false,
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
        ..AppOptions::default()
    })
    .await;
    World { app, slack, pd }
}

/// A production error for Sentry issue 4711; `n` makes each event distinct.
async fn error_event(app: &TestApp, n: u32) -> i64 {
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = "4711".into();
    v["data"]["event"]["event_id"] = format!("evt-4711-{n}").into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap()
}

async fn act(app: &TestApp, id: i64, action: &str) {
    let r = app
        .client
        .post(app.url(&format!("/api/incidents/{id}/{action}")))
        .json(&json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{action}");
}

/// Lets every retry (and live count refresh) fall due, then runs the outbox until nothing is
/// left to do: what the worker loops do, stepped by hand.
async fn settle(app: &TestApp) {
    for _ in 0..5 {
        app.clock.advance(Duration::from_secs(10));
        app.workers.outbox.enqueue_count_updates().await.unwrap();
        app.workers.outbox.drain().await.unwrap();
    }
}

fn pd_status(pd: &FakePagerDuty, dedup_key: &str) -> String {
    pd.incident(dedup_key)
        .map(|i| i.status)
        .unwrap_or_else(|| "none".into())
}

#[tokio::test]
async fn a_resolve_waits_for_the_trigger_it_follows() {
    let w = world().await;
    w.pd.fail_next(1, fake_pagerduty::Behaviour::Status(500));
    let id = error_event(&w.app, 1).await;
    w.app.workers.outbox.drain().await.unwrap();
    assert_eq!(
        pd_status(&w.pd, "paiid-alerts-1-1"),
        "none",
        "the trigger failed"
    );

    // Resolved here while the trigger waits for its retry.
    act(&w.app, id, "resolve").await;
    w.app.workers.outbox.drain().await.unwrap();
    assert_eq!(
        w.app.workers.outbox.step("pagerduty-oncall").await.unwrap(),
        paiid_alerts::testing::notify::worker::Step::Idle,
        "the resolve does not overtake the trigger"
    );
    // Nor does it keep the worker awake: the next wake-up is the trigger's retry.
    let next =
        paiid_alerts::testing::store::deliveries::next_due(&w.app.state.store, "pagerduty-oncall")
            .await
            .unwrap()
            .unwrap();
    assert!(
        next > w.app.clock.now_ms(),
        "due {next}, now {}",
        w.app.clock.now_ms()
    );

    settle(&w.app).await;
    let actions: Vec<String> =
        w.pd.events()
            .iter()
            .map(|e| e["event_action"].as_str().unwrap_or_default().to_string())
            .collect();
    assert_eq!(actions, vec!["trigger", "resolve"], "in order");
    assert_eq!(pd_status(&w.pd, "paiid-alerts-1-1"), "resolved");
}

#[tokio::test]
async fn a_late_resolve_of_an_earlier_episode_still_closes_it() {
    let w = world().await;
    let id = error_event(&w.app, 1).await;
    w.app.workers.outbox.drain().await.unwrap();
    assert_eq!(pd_status(&w.pd, "paiid-alerts-1-1"), "triggered");
    let first_card = w
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == fake_slack::CHANNEL_ID && m.thread_ts.is_none())
        .expect("episode 1 card");

    // The resolve reaches Slack but PagerDuty is briefly unavailable...
    w.pd.fail_next(1, fake_pagerduty::Behaviour::Status(503));
    act(&w.app, id, "resolve").await;
    w.app.workers.outbox.drain().await.unwrap();
    assert_eq!(pd_status(&w.pd, "paiid-alerts-1-1"), "triggered");
    // ...and Sentry reopens the issue before the retry.
    assert_eq!(error_event(&w.app, 2).await, id);
    assert_eq!(w.app.incident(id).await["episode"], 2);

    settle(&w.app).await;
    assert_eq!(
        pd_status(&w.pd, "paiid-alerts-1-1"),
        "resolved",
        "episode 1's PagerDuty incident is closed"
    );
    assert_eq!(pd_status(&w.pd, "paiid-alerts-1-2"), "triggered");
    // Episode 1's card shows it was resolved; episode 2 got a card of its own.
    let first = w.slack.message(&first_card.ts).unwrap();
    assert!(
        !first.action_ids().contains(&"ack".to_string()),
        "episode 1's card lost its Acknowledge button: {:?}",
        first.action_ids()
    );
    let live_cards: Vec<_> = w
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == fake_slack::CHANNEL_ID && m.thread_ts.is_none())
        .filter(|m| m.action_ids().contains(&"ack".to_string()))
        .collect();
    assert_eq!(live_cards.len(), 1, "episode 2's card");
    assert_ne!(live_cards[0].ts, first_card.ts);
}

#[tokio::test]
async fn each_slack_channel_keeps_its_own_card() {
    let w = world().await;
    let id = error_event(&w.app, 1).await;
    w.app.workers.outbox.drain().await.unwrap();
    let cards = |channel: &str| -> Vec<fake_slack::Message> {
        w.slack
            .messages()
            .into_iter()
            .filter(|m| m.channel == channel && m.thread_ts.is_none())
            .collect()
    };
    assert_eq!(cards(fake_slack::CHANNEL_ID).len(), 1);
    assert_eq!(cards(ONCALL_ID).len(), 1, "#oncall got its own message");

    act(&w.app, id, "ack").await;
    // A second after the cards: our Slack limit (one message a second per channel) follows the
    // injected clock.
    w.app.clock.advance(Duration::from_secs(1));
    w.app.workers.outbox.drain().await.unwrap();
    for channel in [fake_slack::CHANNEL_ID, ONCALL_ID] {
        let card = &cards(channel)[0];
        assert_eq!(card.updates, 1, "{channel}: its own card was updated once");
        assert_eq!(
            w.slack.thread_replies(&card.ts).len(),
            1,
            "{channel}: one thread reply"
        );
    }
}

#[tokio::test]
async fn live_counts_do_not_pile_up_while_slack_is_down() {
    let w = world().await;
    let id = error_event(&w.app, 1).await;
    w.app.workers.outbox.drain().await.unwrap();
    w.slack.set_down(true);
    let before = w.slack.request_count();
    for n in 2..10 {
        error_event(&w.app, n).await;
        w.app.clock.advance(Duration::from_secs(2));
        w.app.workers.outbox.enqueue_count_updates().await.unwrap();
        // Our limiter paces each Slack channel at 1 message/s of real time: this takes a while.
        w.app.workers.outbox.drain().await.unwrap();
    }
    assert_eq!(w.slack.request_count(), before, "Slack was down");
    let count = |statuses: &str| {
        format!(
            "SELECT COUNT(*) FROM deliveries WHERE incident_id = {id} AND kind = 'count_update' \
             AND status IN ({statuses})"
        )
    };
    let waiting = w.app.scalar(&count("'pending', 'failed', 'sending'")).await;
    assert!(
        waiting <= 2,
        "at most one waiting update per card, got {waiting}"
    );
    // Without that rule each of the 8 rounds would have added one per card (16); a new one is
    // only added once the waiting one has given up.
    let all = w
        .app
        .scalar(&count("'pending', 'failed', 'sending', 'dead'"))
        .await;
    assert!(all <= 6, "count updates did not pile up: {all}");
    w.slack.set_down(false);
    // The next event after the outage refreshes the card.
    error_event(&w.app, 10).await;
    settle(&w.app).await;
    let card = w
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == fake_slack::CHANNEL_ID && m.thread_ts.is_none())
        .unwrap();
    assert!(
        card.body.to_string().contains("10 events"),
        "the card shows the live count: {}",
        card.body
    );
}

#[tokio::test]
async fn deliveries_to_a_channel_removed_from_the_config_are_given_up_at_start() {
    let w = world().await;
    error_event(&w.app, 1).await;
    // Stopped before anything was sent; the next version of the file has no #oncall.
    let (dir, clock) = w.app.stop().await;
    let routing = routing(&w.slack, &w.pd).replace(
        "  slack-oncall: {{ type: slack, channel: \"#oncall\", bot_token: \"{token}\" }}\n",
        "",
    );
    let routing = routing
        .lines()
        .filter(|l| !l.contains("slack-oncall:"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(", slack-oncall", "");
    let app = spawn_with(AppOptions {
        routing,
        run_workers: false,
        dir: Some(dir),
        clock: Some(clock),
        tweak: Some(Box::new({
            let api = w.slack.api_base();
            move |s| s.slack_api_url = api
        })),
        ..AppOptions::default()
    })
    .await;
    let dead = app.get_json("/api/deliveries?status=dead").await;
    let dead = dead["deliveries"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["channel"], "slack-oncall");
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no longer in the routing file")
    );
    // The others are still sent.
    app.workers.outbox.drain().await.unwrap();
    assert_eq!(pd_status(&w.pd, "paiid-alerts-1-1"), "triggered");
}

#[tokio::test]
async fn a_post_mortem_sent_late_reports_the_episode_it_belongs_to() {
    let w = world().await;
    let id = error_event(&w.app, 1).await;
    w.app.workers.outbox.drain().await.unwrap();
    w.slack.set_down(true);
    w.app.clock.advance(Duration::from_secs(4 * 60 + 10));
    let r = w
        .app
        .client
        .post(w.app.url(&format!("/api/incidents/{id}/resolve")))
        .json(&json!({ "by": "ana", "note": "Tradier quote cache expired" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    w.app.workers.outbox.drain().await.unwrap();
    // Reopened (and its counters reset) before Slack is back.
    w.app.clock.advance(Duration::from_secs(60));
    error_event(&w.app, 2).await;
    assert_eq!(w.app.incident(id).await["root_cause"], Value::Null);
    w.slack.set_down(false);
    settle(&w.app).await;

    let post_mortems: Vec<String> = w
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == fake_slack::CHANNEL_ID && m.thread_ts.is_none())
        .map(|m| m.body.to_string())
        // The stand-alone summary (the resolved card carries one too).
        .filter(|b| b.contains("Post-mortem:"))
        .collect();
    assert_eq!(post_mortems.len(), 1, "{post_mortems:#?}");
    let pm = &post_mortems[0];
    for expected in ["Tradier quote cache expired", "4m 10s", "ana"] {
        assert!(pm.contains(expected), "post-mortem lacks {expected}: {pm}");
    }
}
