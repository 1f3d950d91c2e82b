use super::*;
use crate::domain::{EventId, IncidentId, IncidentState, Severity};
use crate::notify::message::Breadcrumb;
use crate::settings::DEFAULT_PAGERDUTY_EVENTS_URL as DEFAULT_EVENTS_URL;
use chrono::{TimeZone, Utc};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn notification(kind: NotificationKind, severity: Severity) -> Notification {
    let t = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    Notification {
        kind,
        incident_id: IncidentId(7),
        dedup_key: "paiid-alerts-7-1".into(),
        severity,
        state: IncidentState::Triggered,
        title: "ZeroDivisionError".into(),
        project: Some("paiid-backend".into()),
        environment: Some("production".into()),
        level: Some("error".into()),
        culprit: Some("orders.place".into()),
        event_count: 12,
        first_seen: t,
        last_seen: t,
        rule: None,
        sentry_rule: None,
        release: None,
        request: Some("GET https://api/orders".into()),
        top_frame: None,
        breadcrumbs: vec![Breadcrumb {
            timestamp: None,
            category: Some("http".into()),
            level: None,
            message: "GET /x".into(),
        }],
        metric: None,
        sentry_url: Some("https://sentry.io/issues/1/".into()),
        incident_url: "https://alerts/incidents/7".into(),
        ack_url: None,
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

#[test]
fn severity_mapping() {
    assert_eq!(pd_severity(Severity::Critical), "critical");
    assert_eq!(pd_severity(Severity::High), "error");
    assert_eq!(pd_severity(Severity::Medium), "warning");
    assert_eq!(pd_severity(Severity::Unclassified), "info");
    assert_eq!(pd_severity(Severity::Low), "info");
}

#[test]
fn actions_per_kind() {
    use NotificationKind as K;
    for k in [K::Opened, K::SeverityRaised, K::Escalation, K::Test] {
        assert_eq!(action_for(k, false), Some(Action::Trigger));
    }
    assert_eq!(action_for(K::Acknowledged, false), None);
    assert_eq!(action_for(K::Acknowledged, true), Some(Action::Acknowledge));
    assert_eq!(action_for(K::Resolved, false), None);
    assert_eq!(action_for(K::Resolved, true), Some(Action::Resolve));
    assert_eq!(action_for(K::PostMortem, true), None);
    assert_eq!(action_for(K::CountUpdate, true), None);
}

#[test]
fn trigger_event_shape() {
    let n = notification(NotificationKind::Opened, Severity::High);
    let e = trigger_event(KEY, &n, "summary");
    assert_eq!(e["routing_key"], KEY);
    assert_eq!(e["event_action"], "trigger");
    assert_eq!(e["dedup_key"], "paiid-alerts-7-1");
    assert_eq!(e["payload"]["severity"], "error");
    assert_eq!(e["payload"]["source"], "paiid-backend");
    assert_eq!(e["payload"]["component"], "paiid-backend");
    assert_eq!(e["payload"]["group"], "production");
    assert_eq!(e["payload"]["class"], "error");
    assert_eq!(e["payload"]["timestamp"], "2026-03-01T12:00:00Z");
    assert_eq!(e["payload"]["custom_details"]["event_count"], 12);
    assert_eq!(
        e["payload"]["custom_details"]["breadcrumbs"][0]["message"],
        "GET /x"
    );
    assert!(e["payload"]["custom_details"].get("top_frame").is_none());
    assert_eq!(e["links"][0]["href"], "https://sentry.io/issues/1/");
    assert_eq!(e["links"][1]["href"], "https://alerts/incidents/7");
    assert_eq!(e["client"], "paiid-alerts");
    assert_eq!(e["client_url"], "https://alerts/incidents/7");
}

#[test]
fn source_defaults_without_project() {
    let mut n = notification(NotificationKind::Opened, Severity::Critical);
    n.project = None;
    let e = trigger_event(KEY, &n, "s");
    assert_eq!(e["payload"]["source"], "paiid-alerts");
    assert!(e["payload"].get("component").is_none());
}

#[test]
fn summary_is_truncated_on_char_boundary() {
    let n = notification(NotificationKind::Opened, Severity::Critical);
    let long = "é".repeat(3000);
    let e = trigger_event(KEY, &n, &long);
    let s = e["payload"]["summary"].as_str().unwrap_or_default();
    assert_eq!(s.chars().count(), MAX_SUMMARY_CHARS);
    assert!(s.ends_with('…'));
    // An empty template result still produces a valid event.
    let e = trigger_event(KEY, &n, "  ");
    assert_eq!(e["payload"]["summary"], n.headline());
}

#[test]
fn state_events_carry_only_identity() {
    let e = state_event(KEY, Action::Resolve, "k");
    let obj = e.as_object().cloned().unwrap_or_default();
    assert_eq!(obj.len(), 3);
    assert_eq!(e["event_action"], "resolve");
    assert_eq!(e["dedup_key"], "k");
}

#[test]
fn responses_are_classified() {
    let ok = r#"{"status":"success","message":"Event processed","dedup_key":"k"}"#;
    assert!(matches!(
        classify_response(202, ok, None),
        SendOutcome::Delivered { .. }
    ));
    let bad = r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#;
    match classify_response(400, bad, None) {
        SendOutcome::Permanent { status, reason } => {
            assert_eq!(status, Some(400));
            assert!(reason.contains("Event object is invalid"));
            assert!(reason.contains("should be 32 characters"));
        }
        other => panic!("{other:?}"),
    }
    match classify_response(429, "", Some(Duration::from_secs(2))) {
        SendOutcome::Retry { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        classify_response(503, "down", None),
        SendOutcome::Retry { .. }
    ));
    assert!(matches!(
        classify_response(403, "", None),
        SendOutcome::Permanent { .. }
    ));
    assert!(matches!(
        classify_response(404, "", None),
        SendOutcome::Permanent { .. }
    ));
}

#[test]
fn rate_key_hashes_and_debug_redacts() {
    let ch = PagerDutyChannel::new(
        "pd".into(),
        KEY.into(),
        DEFAULT_EVENTS_URL.into(),
        crate::http_client::client().unwrap(),
        Arc::new(Templates::defaults()),
    );
    let rk = ch.rate_key();
    assert_eq!(rk.len(), "pagerduty:".len() + 8);
    assert!(rk.starts_with("pagerduty:"));
    assert!(!rk.contains(&KEY[..8]));
    assert_eq!(
        rk,
        format!("pagerduty:{}", &hex::encode(Sha256::digest(KEY))[..8])
    );
    assert!(!format!("{ch:?}").contains(KEY));
    assert_eq!(ch.kind(), ChannelKind::Pagerduty);
}

#[test]
fn json_strings_are_clipped_by_their_encoded_size() {
    assert_eq!(clip_json_str("abc", 5), None);
    assert_eq!(clip_json_str("abcd", 5), Some("…".into()));
    let cut = clip_json_str(&"é\"".repeat(1000), 100).unwrap_or_default();
    assert!(json_len(&json!(cut)) <= 100, "{cut}");
    assert!(cut.ends_with('…'));
    let cut = clip_json_str(&"\u{1}".repeat(1000), 100).unwrap_or_default();
    assert!(json_len(&json!(cut)) <= 100);
}

#[test]
fn a_huge_trigger_is_cut_under_the_event_limit_and_says_so() {
    let mut n = notification(NotificationKind::Opened, Severity::Critical);
    n.title = "x".repeat(1_000_000);
    n.culprit = Some("\u{1}".repeat(300_000));
    n.breadcrumbs = (0..5)
        .map(|_| Breadcrumb {
            timestamp: Some("t".repeat(100_000)),
            category: None,
            level: None,
            message: "\"".repeat(300_000),
        })
        .collect();
    n.sentry_url = Some(format!("https://sentry.io/{}", "a".repeat(100_000)));
    let e = fit_event(trigger_event(KEY, &n, &"s".repeat(1024)));
    assert!(json_len(&e) <= MAX_EVENT_BYTES, "{}", json_len(&e));
    let d = &e["payload"]["custom_details"];
    assert!(
        d["truncated"]
            .as_str()
            .unwrap_or_default()
            .contains("512 KB")
    );
    assert!(d["title"].as_str().unwrap_or_default().starts_with("xxx"));
    assert_eq!(d["breadcrumbs"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        e["payload"]["summary"],
        "s".repeat(1024),
        "the summary is kept"
    );
    assert_eq!(e["dedup_key"], "paiid-alerts-7-1");
    // The over-long Sentry link would be broken if cut: only ours is left.
    assert_eq!(e["links"].as_array().map(Vec::len), Some(1));
    assert_eq!(e["links"][0]["href"], "https://alerts/incidents/7");
}

#[test]
fn an_event_within_the_limit_is_sent_as_built() {
    let n = notification(NotificationKind::Opened, Severity::Critical);
    let e = trigger_event(KEY, &n, "summary");
    assert_eq!(fit_event(e.clone()), e);
    assert!(e["payload"]["custom_details"].get("truncated").is_none());
}

#[tokio::test]
async fn a_notice_never_pages() {
    use crate::notify::notice::{Notice, UnreadablePayload};
    // An events URL nothing listens on: any request would be a Retry, not a Skip.
    let ch = PagerDutyChannel::new(
        "pd".into(),
        KEY.into(),
        "http://127.0.0.1:9/v2/enqueue".into(),
        crate::http_client::client().unwrap(),
        Arc::new(Templates::defaults()),
    );
    let notice = Notice::unreadable_payload(
        UnreadablePayload {
            resource: "issue".into(),
            shape: "issue".into(),
            reason: "`data.issue.id` is missing".into(),
            event_id: EventId(1),
            received_at: 0,
        },
        "http://localhost",
    );
    assert!(matches!(
        ch.announce(&notice).await,
        SendOutcome::Skipped { .. }
    ));
}
