//! The Slack and PagerDuty channels against loopback fakes that enforce the vendors' contracts.

#[path = "support/fake_slack.rs"]
mod fake_slack;

#[path = "support/fake_pagerduty.rs"]
mod fake_pagerduty;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::Value;

use fake_pagerduty::FakePagerDuty;
use fake_slack::{Behaviour, FakeSlack};
use paiid_alerts::testing::domain::{IncidentId, IncidentState, Severity};
use paiid_alerts::testing::notify::message::Breadcrumb;
use paiid_alerts::testing::notify::pagerduty::PagerDutyChannel;
use paiid_alerts::testing::notify::render::Templates;
use paiid_alerts::testing::notify::slack::SlackChannel;
use paiid_alerts::testing::notify::{
    Channel, Notification, NotificationKind, Outgoing, RemoteRef, RemoteState, SendOutcome,
};

fn notification(kind: NotificationKind) -> Notification {
    let first = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    Notification {
        kind,
        incident_id: IncidentId(42),
        dedup_key: "paiid-alerts-42-1".into(),
        severity: Severity::Critical,
        state: IncidentState::Triggered,
        title: "ZeroDivisionError: division by zero <!channel> & co".into(),
        project: Some("paiid-backend".into()),
        environment: Some("production".into()),
        level: Some("error".into()),
        culprit: Some("app.routers.orders in place_order".into()),
        event_count: 3,
        first_seen: first,
        last_seen: first + chrono::Duration::minutes(2),
        rule: Some("critical-production".into()),
        sentry_rule: Some("Errors in production".into()),
        release: Some("paiid-backend@1.4.2".into()),
        request: Some("POST https://api.paiid.ai/orders?x=1&y=2".into()),
        top_frame: Some("app/routers/orders.py in place_order at line 42".into()),
        breadcrumbs: (0..6)
            .map(|i| Breadcrumb {
                timestamp: Some(format!("2026-03-01T11:59:5{i}Z")),
                category: Some("http".into()),
                level: Some("info".into()),
                message: format!("GET /api/quotes/{i} -> 200"),
            })
            .collect(),
        metric: None,
        sentry_url: Some("https://paiid.sentry.io/issues/4711/?project=1&referrer=alert".into()),
        incident_url: "https://alerts.paiid.ai/incidents/42".into(),
        ack_url: Some("https://alerts.paiid.ai/ack/eyJrIjoxfQ.c2ln".into()),
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

fn acknowledged(mut n: Notification) -> Notification {
    n.kind = NotificationKind::Acknowledged;
    n.state = IncidentState::Acknowledged;
    n.acknowledged_by = Some("alice@paiid.ai".into());
    n.acknowledged_at = Some(n.last_seen + chrono::Duration::minutes(3));
    n
}

fn resolved(mut n: Notification) -> Notification {
    n.kind = NotificationKind::Resolved;
    n.state = IncidentState::Resolved;
    n.resolved_by = Some("bob@paiid.ai".into());
    n.resolved_at = Some(n.last_seen + chrono::Duration::minutes(30));
    n
}

fn http() -> reqwest::Client {
    paiid_alerts::testing::http_client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn templates() -> Arc<Templates> {
    Arc::new(Templates::defaults())
}

fn webhook_channel(slack: &FakeSlack) -> SlackChannel {
    SlackChannel::webhook(
        "slack-alerts".into(),
        "#paiid-alerts".into(),
        slack.webhook_url(),
        http(),
        templates(),
    )
}

fn bot_channel(slack: &FakeSlack) -> SlackChannel {
    SlackChannel::bot(
        "slack-alerts".into(),
        "#paiid-alerts".into(),
        slack.bot_token().into(),
        format!("{}/", slack.api_base()),
        http(),
        templates(),
    )
}

fn pd_channel(pd: &FakePagerDuty) -> PagerDutyChannel {
    PagerDutyChannel::new(
        "pagerduty-oncall".into(),
        pd.routing_key().into(),
        pd.enqueue_url(),
        http(),
        templates(),
    )
}

async fn send(ch: &dyn Channel, n: &Notification, remote: &RemoteState) -> SendOutcome {
    ch.send(Outgoing {
        notification: n,
        remote,
    })
    .await
}

/// Every string a channel hands back (stored on the delivery row, shown in the UI).
fn outcome_strings(o: &SendOutcome) -> Vec<String> {
    match o {
        SendOutcome::Delivered {
            response, remote, ..
        } => vec![response.clone(), format!("{remote:?}"), format!("{o:?}")],
        SendOutcome::Retry { reason, .. }
        | SendOutcome::Permanent { reason, .. }
        | SendOutcome::Skipped { reason } => vec![reason.clone(), format!("{o:?}")],
    }
}

fn assert_no_secret(o: &SendOutcome, secrets: &[&str]) {
    for s in outcome_strings(o) {
        for secret in secrets {
            assert!(!s.contains(secret), "secret {secret:?} leaked in {s:?}");
        }
    }
}

fn slack_ref(o: &SendOutcome) -> (String, String) {
    match o {
        SendOutcome::Delivered {
            remote: Some(RemoteRef::SlackMessage { channel, ts }),
            ..
        } => (channel.clone(), ts.clone()),
        other => panic!("expected a Slack message ref, got {other:?}"),
    }
}

fn block_texts(blocks: &Value) -> String {
    serde_json::to_string(blocks).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Slack, webhook mode
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn slack_webhook_posts_a_valid_card() {
    let slack = FakeSlack::start().await;
    let ch = webhook_channel(&slack);
    let n = notification(NotificationKind::Opened);
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert_eq!(
        out,
        SendOutcome::Delivered {
            status: Some(200),
            response: "ok".into(),
            remote: None
        }
    );
    assert_no_secret(&out, &["/services/T000/B000/XXXX"]);
    assert!(!format!("{ch:?}").contains("XXXX"));

    let reqs = slack.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].accepted);
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    let body = reqs[0].json.clone().unwrap();
    assert_eq!(body["unfurl_links"], false);
    assert_eq!(body["unfurl_media"], false);
    assert!(
        body.get("channel").is_none(),
        "a webhook is bound to its channel"
    );
    assert!(!body["text"].as_str().unwrap().is_empty());
    assert!(!body["text"].as_str().unwrap().contains("<!channel>"));

    let msgs = slack.messages();
    let blocks = msgs[0].blocks.clone().unwrap();
    assert!(blocks.as_array().unwrap().len() <= 50);
    assert_eq!(blocks[0]["type"], "header");
    // The header is plain_text (never parsed for mentions); every mrkdwn block is escaped.
    let all = block_texts(&blocks);
    let mrkdwn = block_texts(&Value::Array(blocks.as_array().unwrap()[1..].to_vec()));
    assert!(!mrkdwn.contains("<!channel>"), "user data must be escaped");
    assert!(all.contains("orders?x=1&amp;y=2"));
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("&lt;!channel&gt; &amp; co")
    );
    assert!(all.contains("GET /api/quotes/5"));
    assert!(
        !all.contains("GET /api/quotes/0"),
        "only the last 5 breadcrumbs"
    );
    // Webhook mode: link buttons only; no interactive ack/resolve.
    assert_eq!(
        msgs[0].action_ids(),
        ["ack_link", "open_sentry", "open_incident"]
    );
    assert!(all.contains("https://alerts.paiid.ai/ack/eyJrIjoxfQ.c2ln"));
}

#[tokio::test]
async fn slack_webhook_5xx_is_retried() {
    let slack = FakeSlack::start().await;
    slack.fail_next(1, Behaviour::Status(500));
    let out = send(
        &webhook_channel(&slack),
        &notification(NotificationKind::Opened),
        &RemoteState::default(),
    )
    .await;
    assert!(
        matches!(
            out,
            SendOutcome::Retry {
                status: Some(500),
                retry_after: None,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(slack.messages().is_empty());
}

#[tokio::test]
async fn slack_webhook_429_honours_retry_after() {
    let slack = FakeSlack::start().await;
    slack.fail_next(
        1,
        Behaviour::RateLimited {
            retry_after_secs: 2,
        },
    );
    let out = send(
        &webhook_channel(&slack),
        &notification(NotificationKind::Opened),
        &RemoteState::default(),
    )
    .await;
    match out {
        SendOutcome::Retry {
            status,
            retry_after,
            ..
        } => {
            assert_eq!(status, Some(429));
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slack_webhook_rate_limit_is_enforced_per_channel() {
    let slack = FakeSlack::start().await;
    let ch = webhook_channel(&slack);
    let n = notification(NotificationKind::Opened);
    let first = send(&ch, &n, &RemoteState::default()).await;
    assert!(matches!(first, SendOutcome::Delivered { .. }));
    let second = send(&ch, &n, &RemoteState::default()).await;
    match second {
        SendOutcome::Retry {
            status: Some(429),
            retry_after,
            ..
        } => assert_eq!(retry_after, Some(Duration::from_secs(1))),
        other => panic!("{other:?}"),
    }
    assert_eq!(ch.rate_key(), "slack:#paiid-alerts");
}

#[tokio::test]
async fn slack_webhook_errors_are_permanent() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let ch = webhook_channel(&slack);
    let n = notification(NotificationKind::Opened);
    for (error, status) in [
        ("invalid_payload", 400),
        ("no_text", 400),
        ("action_prohibited", 403),
        ("channel_not_found", 404),
        ("no_service", 404),
        ("channel_is_archived", 410),
    ] {
        slack.fail_next(1, Behaviour::SlackError(error));
        match send(&ch, &n, &RemoteState::default()).await {
            SendOutcome::Permanent { status: s, reason } => {
                assert_eq!(s, Some(status), "{error}");
                assert!(reason.contains(error), "{reason}");
            }
            other => panic!("{error}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn slack_webhook_unknown_path_is_no_service() {
    let slack = FakeSlack::start().await;
    let ch = SlackChannel::webhook(
        "s".into(),
        "#paiid-alerts".into(),
        format!("{}/services/T000/B000/WRONG", slack.url()),
        http(),
        templates(),
    );
    let out = send(
        &ch,
        &notification(NotificationKind::Opened),
        &RemoteState::default(),
    )
    .await;
    assert!(
        matches!(&out, SendOutcome::Permanent { status: Some(404), reason } if reason.contains("no_service")),
        "{out:?}"
    );
    assert_no_secret(&out, &["WRONG"]);
}

#[tokio::test]
async fn slack_webhook_state_changes_post_short_messages_and_skip_counts() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let ch = webhook_channel(&slack);
    let n = notification(NotificationKind::Opened);

    let count = NotificationKind::CountUpdate;
    let out = send(
        &ch,
        &Notification {
            kind: count,
            ..n.clone()
        },
        &RemoteState::default(),
    )
    .await;
    assert!(matches!(out, SendOutcome::Skipped { .. }), "{out:?}");
    assert_eq!(slack.request_count(), 0);

    let out = send(&ch, &acknowledged(n.clone()), &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let msg = &slack.messages()[0];
    let all = block_texts(msg.blocks.as_ref().unwrap());
    assert!(all.contains("Acknowledged"));
    assert!(all.contains("alice@paiid.ai"));
    assert!(!msg.action_ids().iter().any(|a| a.starts_with("ack")));
}

#[tokio::test]
async fn slack_fallback_text_links_work_and_user_text_is_escaped() {
    let slack = FakeSlack::start().await;
    let ch = webhook_channel(&slack);
    let mut n = notification(NotificationKind::Opened);
    n.title = "boom <https://evil.example|Open in Sentry> <!here> & co".into();
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let body = slack.requests()[0].json.clone().unwrap();
    let text = body["text"].as_str().unwrap();
    // Our own links are Slack links, clickable in notifications and fallback views.
    assert!(
        text.contains(
            "<https://paiid.sentry.io/issues/4711/?project=1&amp;referrer=alert|Open in Sentry>"
        ),
        "{text}"
    );
    assert!(
        text.contains("<https://alerts.paiid.ai/incidents/42|Incident #42>"),
        "{text}"
    );
    assert!(
        text.contains("<https://alerts.paiid.ai/ack/eyJrIjoxfQ.c2ln|Acknowledge>"),
        "{text}"
    );
    assert!(!text.contains("&lt;https://paiid.sentry.io"), "{text}");
    // What came from the event is still inert text.
    assert!(
        text.contains("boom &lt;https://evil.example|Open in Sentry&gt; &lt;!here&gt; &amp; co"),
        "{text}"
    );
    assert!(!text.contains("<https://evil.example"), "{text}");
    assert!(!text.contains("<!here>"), "{text}");
}

#[tokio::test]
async fn slack_timeout_and_outage_are_retried_without_leaking_the_url() {
    let slack = FakeSlack::start().await;
    let ch = webhook_channel(&slack).with_timeout(Duration::from_millis(200));
    let n = notification(NotificationKind::Opened);

    slack.fail_next(1, Behaviour::Hang(Duration::from_secs(2)));
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(
        matches!(&out, SendOutcome::Retry { status: None, reason, .. } if reason.contains("timed out")),
        "{out:?}"
    );
    assert_no_secret(&out, &["XXXX", "B000"]);

    slack.set_down(true);
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(
        matches!(out, SendOutcome::Retry { status: None, .. }),
        "{out:?}"
    );
    assert_no_secret(&out, &["XXXX", "B000"]);
    slack.set_down(false);

    // Nothing listening at all.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = SlackChannel::webhook(
        "s".into(),
        "#c".into(),
        format!("http://127.0.0.1:{port}/services/T9/B9/DEADSECRET"),
        http(),
        templates(),
    );
    let out = send(&dead, &n, &RemoteState::default()).await;
    assert!(
        matches!(out, SendOutcome::Retry { status: None, .. }),
        "{out:?}"
    );
    assert_no_secret(&out, &["DEADSECRET"]);
}

#[tokio::test]
async fn slack_huge_notification_stays_within_block_kit_limits() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let mut n = notification(NotificationKind::Opened);
    n.title = "<&>".repeat(2000);
    n.culprit = Some("é&".repeat(5000));
    n.request = Some(format!("GET https://x/{}", "a&b".repeat(3000)));
    n.top_frame = Some("`".repeat(4000));
    n.project = Some("p<".repeat(3000));
    n.rule = Some("r".repeat(3000));
    n.breadcrumbs
        .iter_mut()
        .for_each(|b| b.message = "```<>&".repeat(2000));
    n.sentry_url = Some(format!("https://sentry.io/{}", "x".repeat(5000)));
    for ch in [webhook_channel(&slack), bot_channel(&slack)] {
        let out = send(&ch, &n, &RemoteState::default()).await;
        assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    }
    assert_eq!(slack.messages().len(), 2);
    assert!(slack.rejected().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Slack, bot mode
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn slack_bot_post_update_and_thread_flow() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let ch = bot_channel(&slack);
    let token = slack.bot_token();
    assert!(!format!("{ch:?}").contains(token));
    let n = notification(NotificationKind::Opened);

    // Opened: a new card, whose channel id and ts come back.
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert_no_secret(&out, &[token]);
    let (channel, ts) = slack_ref(&out);
    assert_eq!(channel, fake_slack::CHANNEL_ID);
    let post = &slack.requests_to("chat.postMessage")[0];
    assert_eq!(
        post.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(
        post.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = post.json.clone().unwrap();
    assert_eq!(body["channel"], "#paiid-alerts");
    assert_eq!(body["unfurl_links"], false);
    assert_eq!(body["unfurl_media"], false);
    assert!(!post.response.contains("missing_charset"));
    let card = slack.message(&ts).unwrap();
    assert_eq!(
        card.action_ids(),
        ["ack", "resolve", "ack_link", "open_sentry", "open_incident"]
    );
    let blocks = card.blocks.clone().unwrap();
    let actions = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(actions["elements"][0]["value"], "42:1", "incident:episode");

    let remote = RemoteState {
        slack_channel: Some(channel.clone()),
        slack_ts: Some(ts.clone()),
        pagerduty_triggered: false,
    };

    // Count update: the card is edited in place, nothing new is posted.
    let mut counted = n.clone();
    counted.kind = NotificationKind::CountUpdate;
    counted.event_count = 1234;
    let out = send(&ch, &counted, &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    assert_eq!(slack.messages().len(), 1);
    let card = slack.message(&ts).unwrap();
    assert_eq!(card.updates, 1);
    assert!(block_texts(card.blocks.as_ref().unwrap()).contains("1234"));

    // Escalation: update + a broadcast thread reply.
    let mut escalated = n.clone();
    escalated.kind = NotificationKind::Escalation;
    escalated.waited_minutes = Some(15);
    let out = send(&ch, &escalated, &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let replies = slack.thread_replies(&ts);
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0]
            .text
            .as_deref()
            .unwrap()
            .contains("not acknowledged after 15m 0s")
    );
    assert_eq!(replies[0].body["reply_broadcast"], true);

    // Acknowledged: card shows who/when, ack buttons gone, thread reply.
    let out = send(&ch, &acknowledged(n.clone()), &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let card = slack.message(&ts).unwrap();
    assert_eq!(card.updates, 3);
    let all = block_texts(card.blocks.as_ref().unwrap());
    assert!(all.contains("alice@paiid.ai"));
    assert!(all.contains("ACKED"));
    assert_eq!(
        card.action_ids(),
        ["resolve", "open_sentry", "open_incident"]
    );
    let replies = slack.thread_replies(&ts);
    assert_eq!(replies.len(), 2);
    assert!(replies[1].text.as_deref().unwrap().contains("Acknowledged"));
    assert_eq!(replies[1].body["reply_broadcast"], false);

    // Resolved: no buttons left but the links.
    let out = send(&ch, &resolved(acknowledged(n.clone())), &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let card = slack.message(&ts).unwrap();
    assert_eq!(card.action_ids(), ["open_sentry", "open_incident"]);
    assert!(block_texts(card.blocks.as_ref().unwrap()).contains("RESOLVED"));
    assert_eq!(slack.thread_replies(&ts).len(), 3);
    assert!(slack.rejected().is_empty(), "{:?}", slack.rejected());

    // Post-mortem: a new top-level message, not tracked.
    let mut pm = resolved(n.clone());
    pm.kind = NotificationKind::PostMortem;
    let out = send(&ch, &pm, &remote).await;
    assert!(
        matches!(out, SendOutcome::Delivered { remote: None, .. }),
        "{out:?}"
    );
    assert_eq!(slack.messages().len(), 5);
}

/// An acknowledgement sent late (Slack was down, or the row was queued) after the incident was
/// also resolved: the card may show the latest state, but the message about the acknowledgement
/// says Acknowledged, by whom.
#[tokio::test]
async fn slack_late_acknowledgement_reports_the_acknowledgement_not_the_current_state() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let n = notification(NotificationKind::Opened);
    let mut late_ack = resolved(acknowledged(n.clone()));
    late_ack.kind = NotificationKind::Acknowledged;

    let bot = bot_channel(&slack);
    let (channel, ts) = slack_ref(&send(&bot, &n, &RemoteState::default()).await);
    let remote = RemoteState {
        slack_channel: Some(channel),
        slack_ts: Some(ts.clone()),
        pagerduty_triggered: false,
    };
    let out = send(&bot, &late_ack, &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let out = send(&bot, &resolved(acknowledged(n.clone())), &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let replies: Vec<String> = slack
        .thread_replies(&ts)
        .iter()
        .map(|m| m.text.clone().unwrap_or_default())
        .collect();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies[0].contains("Acknowledged") && replies[0].contains("alice@paiid.ai"),
        "{replies:?}"
    );
    assert!(!replies[0].contains("Resolved"), "{replies:?}");
    assert!(
        replies[1].contains("Resolved") && replies[1].contains("bob@paiid.ai"),
        "{replies:?}"
    );
    // The card itself shows where the incident stands now.
    let card = slack.message(&ts).unwrap();
    assert!(block_texts(card.blocks.as_ref().unwrap()).contains("RESOLVED"));

    // Without a card (bot) and in webhook mode, the short message reports the event too.
    let short = |m: &fake_slack::Message| block_texts(m.blocks.as_ref().unwrap());
    let out = send(&bot, &late_ack, &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let webhook = webhook_channel(&slack);
    let out = send(&webhook, &late_ack, &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let top: Vec<fake_slack::Message> = slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .collect();
    assert_eq!(top.len(), 3);
    for m in &top[1..] {
        let text = short(m);
        assert!(
            text.contains("Acknowledged") && text.contains("alice@paiid.ai"),
            "{text}"
        );
        assert!(!text.contains("Resolved"), "{text}");
    }
}

#[tokio::test]
async fn slack_bot_without_message_skips_counts_and_posts_short_acks() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let ch = bot_channel(&slack);
    let n = notification(NotificationKind::CountUpdate);
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Skipped { .. }), "{out:?}");
    assert_eq!(slack.request_count(), 0);

    let out = send(&ch, &acknowledged(n), &RemoteState::default()).await;
    assert!(
        matches!(out, SendOutcome::Delivered { remote: None, .. }),
        "{out:?}"
    );
    let msgs = slack.messages();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].thread_ts.is_none());
}

#[tokio::test]
async fn slack_bot_reposts_when_the_card_is_gone() {
    let slack = FakeSlack::start().await;
    let ch = bot_channel(&slack);
    let remote = RemoteState {
        slack_channel: Some(fake_slack::CHANNEL_ID.into()),
        slack_ts: Some("1111111111.000001".into()),
        pagerduty_triggered: false,
    };
    let out = send(&ch, &notification(NotificationKind::Escalation), &remote).await;
    let (_, ts) = slack_ref(&out);
    assert_ne!(ts, "1111111111.000001");
    assert_eq!(slack.requests_to("chat.update")[0].status, 200);
    assert!(
        slack.requests_to("chat.update")[0]
            .response
            .contains("message_not_found")
    );
}

#[tokio::test]
async fn slack_bot_ok_false_is_classified() {
    let slack = FakeSlack::start().await;
    let ch = bot_channel(&slack);
    let n = notification(NotificationKind::Opened);

    slack.fail_next(1, Behaviour::SlackError("ratelimited"));
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(
        matches!(&out, SendOutcome::Retry { status: Some(200), reason, .. } if reason.contains("ratelimited")),
        "{out:?}"
    );

    slack.fail_next(1, Behaviour::SlackError("internal_error"));
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Retry { .. }), "{out:?}");

    for error in [
        "invalid_auth",
        "channel_not_found",
        "is_archived",
        "no_text",
    ] {
        slack.fail_next(1, Behaviour::SlackError(error));
        let out = send(&ch, &n, &RemoteState::default()).await;
        assert!(
            matches!(&out, SendOutcome::Permanent { reason, .. } if reason.contains(error)),
            "{error}: {out:?}"
        );
    }
    assert!(slack.messages().is_empty());
}

#[tokio::test]
async fn slack_bot_wrong_token_and_channel_are_permanent() {
    let slack = FakeSlack::start().await;
    let n = notification(NotificationKind::Opened);
    let wrong = SlackChannel::bot(
        "s".into(),
        "#paiid-alerts".into(),
        "xoxb-wrong-SECRET".into(),
        slack.api_base(),
        http(),
        templates(),
    );
    let out = send(&wrong, &n, &RemoteState::default()).await;
    assert!(
        matches!(&out, SendOutcome::Permanent { reason, .. } if reason.contains("invalid_auth")),
        "{out:?}"
    );
    assert_no_secret(&out, &["xoxb-wrong-SECRET"]);

    let unknown = SlackChannel::bot(
        "s".into(),
        "#nowhere".into(),
        slack.bot_token().into(),
        slack.api_base(),
        http(),
        templates(),
    );
    let out = send(&unknown, &n, &RemoteState::default()).await;
    assert!(
        matches!(&out, SendOutcome::Permanent { reason, .. } if reason.contains("channel_not_found")),
        "{out:?}"
    );
}

#[tokio::test]
async fn slack_bot_http_429_and_5xx_are_retried() {
    let slack = FakeSlack::start().await;
    let ch = bot_channel(&slack);
    let n = notification(NotificationKind::Opened);
    slack.fail_next(
        1,
        Behaviour::RateLimited {
            retry_after_secs: 2,
        },
    );
    match send(&ch, &n, &RemoteState::default()).await {
        SendOutcome::Retry {
            status: Some(429),
            retry_after,
            ..
        } => assert_eq!(retry_after, Some(Duration::from_secs(2))),
        other => panic!("{other:?}"),
    }
    slack.fail_next(1, Behaviour::Status(503));
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(
        matches!(
            out,
            SendOutcome::Retry {
                status: Some(503),
                ..
            }
        ),
        "{out:?}"
    );

    // The real per-channel limit: a second post within the same second.
    let first = send(&ch, &n, &RemoteState::default()).await;
    assert!(matches!(first, SendOutcome::Delivered { .. }), "{first:?}");
    match send(&ch, &n, &RemoteState::default()).await {
        SendOutcome::Retry {
            status: Some(429),
            retry_after,
            ..
        } => assert_eq!(retry_after, Some(Duration::from_secs(1))),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slack_bot_timeout_is_retried() {
    let slack = FakeSlack::start().await;
    let ch = bot_channel(&slack).with_timeout(Duration::from_millis(200));
    slack.fail_next(1, Behaviour::Hang(Duration::from_secs(2)));
    let out = send(
        &ch,
        &notification(NotificationKind::Opened),
        &RemoteState::default(),
    )
    .await;
    assert!(
        matches!(&out, SendOutcome::Retry { reason, .. } if reason.contains("timed out")),
        "{out:?}"
    );
}

#[tokio::test]
async fn slack_bot_update_failure_is_reported() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let ch = bot_channel(&slack);
    let n = notification(NotificationKind::Opened);
    let (channel, ts) = slack_ref(&send(&ch, &n, &RemoteState::default()).await);
    let remote = RemoteState {
        slack_channel: Some(channel),
        slack_ts: Some(ts.clone()),
        pagerduty_triggered: false,
    };
    slack.fail_next_on("chat.update", 1, Behaviour::Status(500));
    let out = send(&ch, &acknowledged(n.clone()), &remote).await;
    assert!(matches!(out, SendOutcome::Retry { .. }), "{out:?}");
    // The retry succeeds: one update, one reply.
    let out = send(&ch, &acknowledged(n), &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    assert_eq!(slack.message(&ts).unwrap().updates, 1);
    assert_eq!(slack.thread_replies(&ts).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// PagerDuty
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pagerduty_trigger_ack_resolve() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd);
    let key = pd.routing_key();
    assert!(!format!("{ch:?}").contains(key));
    assert!(ch.rate_key().starts_with("pagerduty:"));
    assert!(!ch.rate_key().contains(&key[..8]));
    let n = notification(NotificationKind::Opened);

    let out = send(&ch, &n, &RemoteState::default()).await;
    match &out {
        SendOutcome::Delivered {
            status: Some(202),
            remote: Some(RemoteRef::PagerDutyTriggered { dedup_key }),
            response,
        } => {
            assert_eq!(dedup_key, "paiid-alerts-42-1");
            assert!(response.contains("success"));
        }
        other => panic!("{other:?}"),
    }
    assert_no_secret(&out, &[key]);

    let event = &pd.events()[0];
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["dedup_key"], "paiid-alerts-42-1");
    assert_eq!(event["payload"]["severity"], "critical");
    assert_eq!(event["payload"]["source"], "paiid-backend");
    assert_eq!(event["payload"]["component"], "paiid-backend");
    assert_eq!(event["payload"]["group"], "production");
    assert_eq!(event["payload"]["class"], "error");
    assert_eq!(event["payload"]["timestamp"], "2026-03-01T12:02:00Z");
    assert_eq!(event["payload"]["custom_details"]["event_count"], 3);
    assert_eq!(
        event["payload"]["custom_details"]["top_frame"],
        "app/routers/orders.py in place_order at line 42"
    );
    assert_eq!(
        event["payload"]["custom_details"]["breadcrumbs"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(event["client"], "paiid-alerts");
    assert_eq!(event["client_url"], "https://alerts.paiid.ai/incidents/42");
    let links = event["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert!(
        links
            .iter()
            .all(|l| l["href"].is_string() && l["text"].is_string())
    );
    assert_eq!(
        pd.incident("paiid-alerts-42-1").unwrap().status,
        "triggered"
    );

    let remote = RemoteState {
        pagerduty_triggered: true,
        ..RemoteState::default()
    };
    let out = send(&ch, &acknowledged(n.clone()), &remote).await;
    assert!(
        matches!(
            out,
            SendOutcome::Delivered {
                status: Some(202),
                remote: None,
                ..
            }
        ),
        "{out:?}"
    );
    let ack = &pd.events()[1];
    assert_eq!(ack.as_object().unwrap().len(), 3, "{ack}");
    assert_eq!(ack["event_action"], "acknowledge");
    assert_eq!(
        pd.incident("paiid-alerts-42-1").unwrap().status,
        "acknowledged"
    );

    let out = send(&ch, &resolved(n), &remote).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    assert_eq!(pd.events()[2]["event_action"], "resolve");
    assert_eq!(pd.incident("paiid-alerts-42-1").unwrap().status, "resolved");
    assert!(pd.rejected().is_empty());
}

#[tokio::test]
async fn pagerduty_severity_mapping_and_repeat_triggers_share_one_incident() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd);
    for (ours, theirs) in [
        (Severity::Critical, "critical"),
        (Severity::High, "error"),
        (Severity::Medium, "warning"),
        (Severity::Unclassified, "info"),
    ] {
        let mut n = notification(NotificationKind::Escalation);
        n.severity = ours;
        let out = send(&ch, &n, &RemoteState::default()).await;
        assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
        assert_eq!(pd.events().last().unwrap()["payload"]["severity"], theirs);
    }
    let incident = pd.incident("paiid-alerts-42-1").unwrap();
    assert_eq!(incident.triggers, 4);
    assert_eq!(pd.incident_count(), 1);
}

#[tokio::test]
async fn pagerduty_skips_what_it_cannot_act_on() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd);
    let n = notification(NotificationKind::Opened);
    let never = RemoteState::default();
    for n in [
        acknowledged(n.clone()),
        resolved(n.clone()),
        Notification {
            kind: NotificationKind::PostMortem,
            ..n.clone()
        },
        Notification {
            kind: NotificationKind::CountUpdate,
            ..n.clone()
        },
    ] {
        let out = send(&ch, &n, &never).await;
        assert!(matches!(out, SendOutcome::Skipped { .. }), "{out:?}");
    }
    assert_eq!(pd.request_count(), 0);
}

#[tokio::test]
async fn pagerduty_failures_are_classified() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd);
    let n = notification(NotificationKind::Opened);
    let fresh = RemoteState::default();

    pd.fail_next(1, fake_pagerduty::Behaviour::Status(500));
    let out = send(&ch, &n, &fresh).await;
    assert!(
        matches!(
            out,
            SendOutcome::Retry {
                status: Some(500),
                ..
            }
        ),
        "{out:?}"
    );

    pd.fail_next(
        1,
        fake_pagerduty::Behaviour::RateLimited {
            retry_after_secs: 2,
        },
    );
    match send(&ch, &n, &fresh).await {
        SendOutcome::Retry {
            status: Some(429),
            retry_after,
            ..
        } => assert_eq!(retry_after, Some(Duration::from_secs(2))),
        other => panic!("{other:?}"),
    }

    pd.fail_next(1, fake_pagerduty::Behaviour::Status(429));
    let out = send(&ch, &n, &fresh).await;
    assert!(
        matches!(
            out,
            SendOutcome::Retry {
                status: Some(429),
                retry_after: None,
                ..
            }
        ),
        "{out:?}"
    );

    pd.fail_next(1, fake_pagerduty::Behaviour::Status(400));
    let out = send(&ch, &n, &fresh).await;
    assert!(
        matches!(&out, SendOutcome::Permanent { status: Some(400), reason } if reason.contains("scripted failure")),
        "{out:?}"
    );

    pd.fail_next(1, fake_pagerduty::Behaviour::Status(403));
    let out = send(&ch, &n, &fresh).await;
    assert!(
        matches!(
            out,
            SendOutcome::Permanent {
                status: Some(403),
                ..
            }
        ),
        "{out:?}"
    );
    assert!(pd.events().is_empty());
}

#[tokio::test]
async fn pagerduty_wrong_key_is_a_permanent_400_with_errors() {
    let pd = FakePagerDuty::start().await;
    let secret = "WrongKeyWrongKeyWrongKeyWrongKey";
    let ch = PagerDutyChannel::new(
        "pd".into(),
        secret.into(),
        pd.enqueue_url(),
        http(),
        templates(),
    );
    let out = send(
        &ch,
        &notification(NotificationKind::Opened),
        &RemoteState::default(),
    )
    .await;
    match &out {
        SendOutcome::Permanent {
            status: Some(400),
            reason,
        } => {
            assert!(reason.contains("Event object is invalid"), "{reason}");
            assert!(reason.contains("routing_key"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_no_secret(&out, &[secret]);
}

#[tokio::test]
async fn pagerduty_long_summary_is_accepted() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd);
    let mut n = notification(NotificationKind::Opened);
    n.title = "é".repeat(5000);
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let summary = pd.events()[0]["payload"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(summary.chars().count() <= 1024);
}

#[tokio::test]
async fn pagerduty_huge_event_is_cut_to_fit_and_accepted() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd);
    // A 1 MB title fits in a webhook under the 1 MiB intake limit; breadcrumbs can be as big.
    let mut n = notification(NotificationKind::Opened);
    n.title = format!("ValueError: {}", "x".repeat(1_000_000));
    n.culprit = Some("\u{1}".repeat(200_000));
    n.breadcrumbs = (0..5)
        .map(|i| Breadcrumb {
            timestamp: None,
            category: Some("query".into()),
            level: None,
            message: format!("SELECT {i} {}", "\"".repeat(300_000)),
        })
        .collect();
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    let req = &pd.requests()[0];
    assert!(req.accepted);
    assert!(
        req.body.len() < fake_pagerduty::MAX_EVENT_BYTES,
        "{} bytes",
        req.body.len()
    );
    let event = pd.events()[0].clone();
    assert!(
        event["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL] ValueError: xxx")
    );
    let details = &event["payload"]["custom_details"];
    assert!(
        details["truncated"].as_str().unwrap().contains("512 KB"),
        "the cut is said: {details}"
    );
    assert_eq!(
        details["incident_url"],
        "https://alerts.paiid.ai/incidents/42"
    );
    assert!(
        details["title"]
            .as_str()
            .unwrap()
            .starts_with("ValueError: xxx")
    );
    assert_eq!(
        pd.incident("paiid-alerts-42-1").unwrap().status,
        "triggered"
    );
}

#[tokio::test]
async fn pagerduty_timeout_and_outage_are_retried() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd).with_timeout(Duration::from_millis(200));
    let n = notification(NotificationKind::Opened);
    pd.fail_next(1, fake_pagerduty::Behaviour::Hang(Duration::from_secs(2)));
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(
        matches!(&out, SendOutcome::Retry { status: None, reason, .. } if reason.contains("timed out")),
        "{out:?}"
    );
    pd.set_down(true);
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(
        matches!(out, SendOutcome::Retry { status: None, .. }),
        "{out:?}"
    );
    assert_no_secret(&out, &[pd.routing_key()]);
}

#[tokio::test]
async fn pagerduty_rate_limit_is_enforced() {
    let pd = FakePagerDuty::start().await;
    let ch = pd_channel(&pd);
    let n = notification(NotificationKind::Opened);
    for _ in 0..fake_pagerduty::EVENTS_PER_MINUTE {
        let out = send(&ch, &n, &RemoteState::default()).await;
        assert!(matches!(out, SendOutcome::Delivered { .. }), "{out:?}");
    }
    let out = send(&ch, &n, &RemoteState::default()).await;
    assert!(
        matches!(
            out,
            SendOutcome::Retry {
                status: Some(429),
                ..
            }
        ),
        "{out:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The fakes themselves: they must reject what the real services reject, or the tests above
// prove nothing.
// ---------------------------------------------------------------------------------------------

async fn raw_post(
    url: &str,
    content_type: &str,
    auth: Option<&str>,
    body: String,
) -> (u16, String) {
    let mut req = http()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn fake_slack_enforces_the_contract() {
    let slack = FakeSlack::start().await;
    slack.set_rate_limit(false);
    let hook = slack.webhook_url();
    let json = "application/json";
    let header = |n: usize| {
        serde_json::json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(n)}}]})
            .to_string()
    };
    assert_eq!(
        raw_post(&hook, "text/plain", None, "{}".into()).await,
        (400, "invalid_payload".into())
    );
    assert_eq!(
        raw_post(&hook, json, None, "{not json".into()).await,
        (400, "invalid_payload".into())
    );
    assert_eq!(
        raw_post(&hook, json, None, "{}".into()).await,
        (400, "no_text".into())
    );
    assert_eq!(
        raw_post(&hook, json, None, header(151)).await,
        (400, "invalid_blocks".into())
    );
    assert_eq!(
        raw_post(&hook, json, None, header(150)).await,
        (200, "ok".into())
    );
    let many = serde_json::json!({"blocks": vec![serde_json::json!({"type": "divider"}); 51]});
    assert_eq!(
        raw_post(&hook, json, None, many.to_string()).await.1,
        "invalid_blocks"
    );
    let unknown = serde_json::json!({"blocks": [{"type": "marquee"}]});
    assert_eq!(
        raw_post(&hook, json, None, unknown.to_string()).await.1,
        "invalid_blocks"
    );
    let section = serde_json::json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}}]});
    assert_eq!(
        raw_post(&hook, json, None, section.to_string()).await.1,
        "invalid_blocks"
    );

    let post = format!("{}/chat.postMessage", slack.api_base());
    let update = format!("{}/chat.update", slack.api_base());
    let ct = "application/json; charset=utf-8";
    let token = Some(slack.bot_token());
    let msg = serde_json::json!({"channel": "#paiid-alerts", "text": "hi"}).to_string();
    let error = |r: (u16, String)| {
        let v: Value = serde_json::from_str(&r.1).unwrap();
        (r.0, v["error"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        error(raw_post(&post, ct, None, msg.clone()).await),
        (200, "not_authed".into())
    );
    assert_eq!(
        error(raw_post(&post, ct, Some("xoxb-nope"), msg.clone()).await),
        (200, "invalid_auth".into())
    );
    let nowhere = serde_json::json!({"channel": "#nowhere", "text": "hi"}).to_string();
    assert_eq!(
        error(raw_post(&post, ct, token, nowhere).await),
        (200, "channel_not_found".into())
    );
    let orphan = serde_json::json!({"channel": "#paiid-alerts", "text": "hi", "thread_ts": "1.2"});
    assert_eq!(
        error(raw_post(&post, ct, token, orphan.to_string()).await),
        (200, "thread_not_found".into())
    );
    let ghost = serde_json::json!({"channel": "C0PAIID01", "ts": "1.2", "text": "x"});
    assert_eq!(
        error(raw_post(&update, ct, token, ghost.to_string()).await),
        (200, "message_not_found".into())
    );
    // Without the charset Slack still posts, with a warning.
    let (status, body) = raw_post(&post, json, token, msg.clone()).await;
    assert_eq!(status, 200);
    assert!(body.contains("missing_charset"));
    // Rate limit: on again, a second post in the same second is a 429 with Retry-After.
    slack.set_rate_limit(true);
    let _ = raw_post(&post, ct, token, msg.clone()).await;
    let (status, body) = raw_post(&post, ct, token, msg).await;
    assert_eq!(
        (status, error((status, body)).1.as_str()),
        (429, "ratelimited")
    );
}

#[tokio::test]
async fn fake_pagerduty_enforces_the_contract() {
    let pd = FakePagerDuty::start().await;
    let url = pd.enqueue_url();
    let key = pd.routing_key();
    let json = "application/json";
    let errors = |r: (u16, String)| {
        let v: Value = serde_json::from_str(&r.1).unwrap();
        assert_eq!(r.0, 400, "{v}");
        assert_eq!(v["status"], "invalid event");
        v["errors"].to_string()
    };
    let trigger = |payload: Value| {
        serde_json::json!({"routing_key": key, "event_action": "trigger", "payload": payload})
            .to_string()
    };
    let ok_payload = serde_json::json!({"summary": "s", "source": "x", "severity": "error"});
    assert!(
        errors(raw_post(&url, "text/plain", None, trigger(ok_payload.clone())).await)
            .contains("Content-Type")
    );
    let short_key =
        serde_json::json!({"routing_key": "abc", "event_action": "trigger", "payload": ok_payload});
    assert!(
        errors(raw_post(&url, json, None, short_key.to_string()).await).contains("32 characters")
    );
    let e = errors(
        raw_post(
            &url,
            json,
            None,
            trigger(serde_json::json!({"severity": "high"})),
        )
        .await,
    );
    assert!(
        e.contains("summary") && e.contains("source") && e.contains("severity"),
        "{e}"
    );
    let long = serde_json::json!({"summary": "x".repeat(1025), "source": "x", "severity": "info"});
    assert!(errors(raw_post(&url, json, None, trigger(long)).await).contains("1024"));
    let huge = serde_json::json!({
        "summary": "s", "source": "x", "severity": "info",
        "custom_details": { "blob": "x".repeat(fake_pagerduty::MAX_EVENT_BYTES) },
    });
    assert!(errors(raw_post(&url, json, None, trigger(huge)).await).contains("512 KB"));
    let ack = serde_json::json!({"routing_key": key, "event_action": "acknowledge"});
    assert!(errors(raw_post(&url, json, None, ack.to_string()).await).contains("dedup_key"));
    let bad_action =
        serde_json::json!({"routing_key": key, "event_action": "page", "dedup_key": "k"});
    assert!(
        errors(raw_post(&url, json, None, bad_action.to_string()).await).contains("event_action")
    );

    let (status, body) = raw_post(&url, json, None, trigger(ok_payload)).await;
    assert_eq!(status, 202);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert!(v["dedup_key"].is_string());
}
