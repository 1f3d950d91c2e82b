use std::path::Path;

use super::*;
use crate::config::RoutingConfig;
use crate::domain::EventId;
use crate::intake::unparsed::notice_channels;

const REPO_ROUTING: &str = include_str!("../../../routing.yaml");
/// 2026-05-28 20:26:40 UTC.
const AT: i64 = 1_780_000_000_000;

fn payload(resource: &str, shape: &str, reason: &str) -> UnreadablePayload {
    UnreadablePayload {
        resource: resource.into(),
        shape: shape.into(),
        reason: reason.into(),
        event_id: EventId(42),
        received_at: AT,
    }
}

fn notice(resource: &str, shape: &str, reason: &str) -> Notice {
    Notice::unreadable_payload(payload(resource, shape, reason), "https://alerts.paiid.ai")
}

fn routing(text: &str) -> RoutingConfig {
    RoutingConfig::parse(Path::new("routing.yaml"), text, &|_| None).expect("valid routing")
}

#[test]
fn kind_round_trips_and_is_not_an_incident_kind() {
    let k = NoticeKind::UnreadablePayload;
    assert_eq!(k.as_str(), "unreadable_payload");
    assert_eq!(NoticeKind::parse(k.as_str()), Some(k));
    assert_eq!(NoticeKind::parse("opened"), None);
    assert_eq!(crate::notify::NotificationKind::parse(k.as_str()), None);
}

#[test]
fn detail_round_trips_with_every_field() {
    let p = payload(
        "event_alert",
        "event,triggered_rule",
        "`data.event` has no `title`",
    );
    let detail = p.to_detail();
    let v: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(v["resource"], "event_alert");
    assert_eq!(v["shape"], "event,triggered_rule");
    assert_eq!(v["reason"], "`data.event` has no `title`");
    assert_eq!(v["event_id"], 42);
    assert_eq!(v["received_at"], AT);
    assert_eq!(UnreadablePayload::from_detail(Some(&detail)), Ok(p));
}

#[test]
fn a_missing_or_foreign_detail_is_an_error_not_a_panic() {
    assert_eq!(
        UnreadablePayload::from_detail(None),
        Err(NoticeError::MissingDetail("unreadable_payload"))
    );
    for bad in [
        "",
        "{}",
        "[]",
        r#"{"acknowledgement":{"at":1}}"#,
        "{\"resource\":1",
    ] {
        assert!(
            matches!(
                UnreadablePayload::from_detail(Some(bad)),
                Err(NoticeError::BadDetail { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn the_page_link_is_the_public_url_root() {
    assert_eq!(notice("issue", "", "").page_url, "https://alerts.paiid.ai/");
    let n = Notice::unreadable_payload(payload("issue", "", ""), "http://127.0.0.1:8080/");
    assert_eq!(n.page_url, "http://127.0.0.1:8080/");
}

#[test]
fn slack_text_is_a_short_plain_message_with_the_link() {
    let n = notice("event_alert", "", "`data.event` is missing");
    assert_eq!(
        n.slack_text(),
        ":warning: *Sentry sent an `event_alert` we could not read*\n\
         Fields of `data`: `(no fields)`. Why: `data.event` is missing.\n\
         Event 42, received 2026-05-28 20:26:40 UTC; stored with status `unparsed`, no incident \
         opened. Later payloads of this shape are only counted.\n\
         <https://alerts.paiid.ai/|Open the on-call page>"
    );
}

#[test]
fn slack_text_escapes_what_came_from_the_payload() {
    let n = notice(
        "event_alert`<!channel>",
        "<!here>,a&b,`x`",
        "<https://evil.example|Sentry> said\nso.",
    );
    let text = n.slack_text();
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(!text.contains("<!here>"), "{text}");
    assert!(!text.contains("<https://evil"), "{text}");
    assert!(text.contains("&lt;!here&gt;,a&amp;b,'x'"), "{text}");
    // The resource stays one code span: its backtick is replaced.
    assert!(text.contains("`event_alert'&lt;!channel&gt;`"), "{text}");
    // Our own link is the only markup left.
    assert_eq!(text.matches('<').count(), 1, "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
}

#[test]
fn long_shapes_are_cut() {
    let shape = (0..200)
        .map(|i| format!("field{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let n = notice("issue", &shape, "`data.issue` is missing");
    assert!(n.slack_text().chars().count() < 800, "{}", n.slack_text());
    assert!(n.log_line().contains('…'));
}

#[test]
fn email_is_a_short_mail_with_the_link() {
    let n = notice("metric_alert", "x", "`data.metric_alert` is missing");
    assert_eq!(
        n.email_subject(),
        "Sentry sent an `metric_alert` we could not read"
    );
    let text = n.email_text();
    assert!(text.starts_with("Sentry sent an `metric_alert` we could not read.\n\n"));
    assert!(text.contains("Fields of data: x\n"), "{text}");
    assert!(
        text.contains("Why: `data.metric_alert` is missing\n"),
        "{text}"
    );
    assert!(
        text.contains("Event: 42, received 2026-05-28 20:26:40 UTC\n"),
        "{text}"
    );
    assert!(
        text.ends_with("On-call page: https://alerts.paiid.ai/\n"),
        "{text}"
    );
    assert!(text.lines().count() < 12, "{text}");
    let html = n.email_html();
    assert!(
        html.contains("<a href=\"https://alerts.paiid.ai/\">"),
        "{html}"
    );
    assert!(html.contains("Sentry sent an `metric_alert` we could not read"));
}

#[test]
fn email_html_escapes_what_came_from_the_payload() {
    let n = notice("issue", "<script>alert(1)</script>", "\"quoted\" & <b>");
    let html = n.email_html();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
}

#[test]
fn a_newline_cannot_split_the_subject_or_the_log_line() {
    let n = notice("event\r\nBcc: x@example.com", "a\nb", "one\ntwo");
    assert!(!n.email_subject().contains('\n'));
    assert!(!n.email_subject().contains('\r'));
    let line = n.log_line();
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(
        notice("event_alert", "", "`data.event` is missing.").log_line(),
        "Sentry sent an `event_alert` we could not read: fields of data (no fields); \
         `data.event` is missing; event 42 received 2026-05-28 20:26:40 UTC; \
         https://alerts.paiid.ai/"
    );
}

#[test]
fn channels_are_the_critical_notify_channels_without_pagerduty() {
    // The shipped file: critical notifies slack-alerts only.
    assert_eq!(notice_channels(&routing(REPO_ROUTING)), ["slack-alerts"]);
    let cfg = routing(
        r##"
channels:
  slack-alerts: { type: slack, channel: "#a", webhook_url: "https://hooks.slack.com/x" }
  pagerduty-oncall: { type: pagerduty, routing_key: "k" }
  ops-email: { type: email, to: ["ops@paiid.ai"] }
  ops-log: { type: log }
rules:
  - name: all
    severity: critical
severities:
  critical: { notify: [pagerduty-oncall, ops-email, slack-alerts, ops-log], escalate_after: 5m, escalate_to: [ops-email] }
  high: { notify: [slack-alerts] }
"##,
    );
    assert_eq!(
        notice_channels(&cfg),
        ["ops-email", "slack-alerts", "ops-log"]
    );
    // Only PagerDuty: nothing to announce on (the writer logs that instead).
    let cfg = routing(
        r#"
channels:
  pagerduty-oncall: { type: pagerduty, routing_key: "k" }
rules:
  - name: all
    severity: critical
severities:
  critical: { notify: [pagerduty-oncall] }
"#,
    );
    assert!(notice_channels(&cfg).is_empty());
}
