use super::*;
use crate::domain::{IncidentId, IncidentState, Severity};
use crate::notify::message::{Breadcrumb, PostMortem};
use crate::text::{slack_escape as escape, truncate_chars};
use chrono::{TimeZone, Utc};

fn notification(kind: NotificationKind) -> Notification {
    let t = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    Notification {
        kind,
        incident_id: IncidentId(42),
        dedup_key: "paiid-alerts-42-1".into(),
        severity: Severity::Critical,
        state: IncidentState::Triggered,
        title: "ZeroDivisionError: <!channel> & friends".into(),
        project: Some("paiid-backend".into()),
        environment: Some("production".into()),
        level: Some("error".into()),
        culprit: Some("app.orders in `place_order`".into()),
        event_count: 3,
        first_seen: t,
        last_seen: t,
        rule: Some("critical-prod".into()),
        sentry_rule: Some("Errors in prod".into()),
        release: Some("1.2.3".into()),
        request: Some("GET https://api.paiid.ai/orders?a=1&b=2".into()),
        top_frame: Some("app/routers/orders.py in place_order at line 42".into()),
        breadcrumbs: (0..7)
            .map(|i| Breadcrumb {
                timestamp: Some(format!("12:00:0{i}")),
                category: Some("http".into()),
                level: Some("info".into()),
                message: format!("GET /api/{i} ```x``` <b>"),
            })
            .collect(),
        metric: None,
        sentry_url: Some("https://sentry.io/issues/1/?a=1&b=2".into()),
        incident_url: "https://alerts.paiid.ai/incidents/42".into(),
        ack_url: Some("https://alerts.paiid.ai/ack/abc.def".into()),
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

fn action_ids(blocks: &[Value]) -> Vec<String> {
    blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["action_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn escape_handles_control_characters() {
    assert_eq!(
        escape("a & <b> <!channel>"),
        "a &amp; &lt;b&gt; &lt;!channel&gt;"
    );
}

#[test]
fn escape_keeping_entities_does_not_double_escape() {
    assert_eq!(
        escape_keeping_entities("a &amp; b & <c>"),
        "a &amp; b &amp; &lt;c&gt;"
    );
    assert_eq!(escape_keeping_entities("&lt;!here&gt;"), "&lt;!here&gt;");
}

#[test]
fn truncation_counts_characters_and_keeps_entities_whole() {
    assert_eq!(truncate_chars("ééééé", 3), "éé…");
    assert_eq!(truncate_chars("abc", 3), "abc");
    let s = truncate_mrkdwn("abcd&amp;efgh", 7);
    assert_eq!(s, "abcd…");
    assert!(truncate_mrkdwn(&"x".repeat(5000), 3000).chars().count() <= 3000);
}

#[test]
fn header_is_truncated_to_slack_limit() {
    let mut n = notification(NotificationKind::Opened);
    n.title = "é".repeat(500);
    let blocks = full_blocks(&n, true);
    let header = blocks[0]["text"]["text"].as_str().unwrap_or_default();
    assert_eq!(header.chars().count(), MAX_HEADER_CHARS);
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
}

#[test]
fn user_data_is_escaped_in_blocks() {
    let n = notification(NotificationKind::Opened);
    let blocks = full_blocks(&n, false);
    // The header is plain_text, which Slack never parses for mentions or links.
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    let all = serde_json::to_string(&blocks[1..]).unwrap_or_default();
    assert!(!all.contains("<!channel>"), "{all}");
    assert!(all.contains("a=1&amp;b=2"), "{all}");
    assert!(!all.contains("<b>"));
    // Breadcrumb triple backticks must not close the code block.
    assert!(!all.contains("```x```"));
}

#[test]
fn sections_respect_limits_even_with_huge_inputs() {
    let mut n = notification(NotificationKind::Opened);
    n.culprit = Some("&".repeat(10_000));
    n.request = Some("<".repeat(10_000));
    n.top_frame = Some("x".repeat(10_000));
    n.breadcrumbs
        .iter_mut()
        .for_each(|b| b.message = "&".repeat(5000));
    n.project = Some("p".repeat(5000));
    n.ack_url = Some(format!("https://x/{}", "a".repeat(4000)));
    let blocks = full_blocks(&n, true);
    assert!(blocks.len() <= MAX_BLOCKS);
    for b in &blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= MAX_SECTION_CHARS);
        }
        for f in b["fields"].as_array().into_iter().flatten() {
            assert!(f["text"].as_str().unwrap_or_default().chars().count() <= MAX_FIELD_CHARS);
        }
        for e in b["elements"].as_array().into_iter().flatten() {
            if let Some(u) = e["url"].as_str() {
                assert!(u.chars().count() <= MAX_URL_CHARS);
            }
        }
    }
    // The over-long ack URL is dropped rather than truncated.
    assert!(!action_ids(&blocks).contains(&"ack_link".to_string()));
}

#[test]
fn only_last_five_breadcrumbs_are_shown() {
    let n = notification(NotificationKind::Opened);
    let blocks = full_blocks(&n, false);
    let all = serde_json::to_string(&blocks).unwrap_or_default();
    assert!(!all.contains("/api/1 "));
    assert!(all.contains("/api/2 "));
    assert!(all.contains("/api/6 "));
}

#[test]
fn buttons_follow_mode_and_state() {
    let n = notification(NotificationKind::Opened);
    assert_eq!(
        action_ids(&full_blocks(&n, false)),
        ["ack_link", "open_sentry", "open_incident"]
    );
    assert_eq!(
        action_ids(&full_blocks(&n, true)),
        ["ack", "resolve", "ack_link", "open_sentry", "open_incident"]
    );
    let mut acked = notification(NotificationKind::Acknowledged);
    acked.state = IncidentState::Acknowledged;
    acked.acknowledged_by = Some("alice".into());
    assert_eq!(
        action_ids(&full_blocks(&acked, true)),
        ["resolve", "open_sentry", "open_incident"]
    );
    let mut resolved = notification(NotificationKind::Resolved);
    resolved.state = IncidentState::Resolved;
    assert_eq!(
        action_ids(&full_blocks(&resolved, true)),
        ["open_sentry", "open_incident"]
    );
}

#[test]
fn ack_button_value_names_incident_and_episode() {
    let blocks = full_blocks(&notification(NotificationKind::Opened), true);
    let actions = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .cloned()
        .unwrap_or_default();
    // dedup key paiid-alerts-42-1: incident 42, episode 1.
    assert_eq!(actions["elements"][0]["value"], "42:1");
    assert_eq!(actions["elements"][1]["value"], "42:1");
}

#[test]
fn links_are_escaped() {
    assert_eq!(
        link("https://x/?a=1&b=|", "S<"),
        "<https://x/?a=1&amp;b=%7C|S&lt;>"
    );
}

#[test]
fn post_mortem_section_is_rendered() {
    let mut n = notification(NotificationKind::PostMortem);
    n.post_mortem = Some(PostMortem {
        opened_at: n.first_seen,
        acknowledged_at: None,
        resolved_at: n.last_seen,
        time_to_acknowledge: Some("4m 10s".into()),
        time_to_resolve: "1h 2m".into(),
        acknowledged_by: Some("bob".into()),
        escalations_fired: 1,
        root_cause: Some("bad deploy <oops>".into()),
        seer_root_cause: None,
    });
    let all = serde_json::to_string(&full_blocks(&n, true)).unwrap_or_default();
    assert!(all.contains("4m 10s (by bob)"));
    assert!(all.contains("bad deploy &lt;oops&gt;"));
    assert!(all.contains("Post-mortem"));
}

#[test]
fn webhook_errors_are_classified() {
    let d = |s: u16, b: &str| classify_webhook(s, b, None);
    assert!(matches!(d(200, "ok"), SendOutcome::Delivered { .. }));
    for (status, body) in [
        (400, "invalid_payload"),
        (400, "no_text"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ] {
        match d(status, body) {
            SendOutcome::Permanent { status: s, reason } => {
                assert_eq!(s, Some(status));
                assert!(reason.contains(body));
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    assert!(matches!(d(500, "rollup_error"), SendOutcome::Retry { .. }));
    match classify_webhook(429, "rate_limited", Some(Duration::from_secs(2))) {
        SendOutcome::Retry { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn api_errors_are_classified() {
    let outcome = |body: &str| match interpret_api_response("chat.postMessage", 200, body, None) {
        Ok(_) => None,
        Err(f) => Some(f.outcome),
    };
    assert!(outcome(r#"{"ok":true,"channel":"C1","ts":"1.2"}"#).is_none());
    for retry in [
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    ] {
        let body = format!(r#"{{"ok":false,"error":"{retry}"}}"#);
        assert!(
            matches!(outcome(&body), Some(SendOutcome::Retry { .. })),
            "{retry}"
        );
    }
    for permanent in [
        "invalid_auth",
        "not_authed",
        "channel_not_found",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "no_text",
        "invalid_arguments",
        "not_in_channel",
        "account_inactive",
        "token_revoked",
        "something_new",
    ] {
        let body = format!(r#"{{"ok":false,"error":"{permanent}"}}"#);
        match outcome(&body) {
            Some(SendOutcome::Permanent { reason, .. }) => assert!(reason.contains(permanent)),
            other => panic!("{permanent}: {other:?}"),
        }
    }
    let blocks = r#"{"ok":false,"error":"invalid_blocks","response_metadata":{"messages":["[ERROR] too long"]}}"#;
    match outcome(blocks) {
        Some(SendOutcome::Permanent { reason, .. }) => assert!(reason.contains("too long")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(outcome("<html>"), Some(SendOutcome::Retry { .. })));
    match interpret_api_response(
        "chat.update",
        429,
        r#"{"ok":false,"error":"ratelimited"}"#,
        Some(Duration::from_secs(3)),
    ) {
        Err(ApiFailure {
            outcome: SendOutcome::Retry { retry_after, .. },
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)));
        }
        _ => panic!("429 must retry"),
    }
    assert!(matches!(
        interpret_api_response("chat.update", 404, "", None),
        Err(ApiFailure {
            outcome: SendOutcome::Permanent { .. },
            ..
        })
    ));
}

#[test]
fn debug_redacts_secrets() {
    let t = Arc::new(Templates::defaults());
    let http = crate::http_client::client().unwrap();
    let w = SlackChannel::webhook(
        "slack".into(),
        "#paiid-alerts".into(),
        "https://hooks.slack.com/services/T1/B1/SECRETPATH".into(),
        http.clone(),
        t.clone(),
    );
    let b = SlackChannel::bot(
        "slack".into(),
        "#paiid-alerts".into(),
        "xoxb-SECRET".into(),
        "https://slack.com/api/".into(),
        http,
        t,
    );
    assert!(!format!("{w:?}").contains("SECRETPATH"));
    assert!(!format!("{b:?}").contains("xoxb-SECRET"));
    assert!(format!("{b:?}").contains("https://slack.com/api\""));
    assert_eq!(w.rate_key(), "slack:#paiid-alerts");
    assert_eq!(b.kind(), ChannelKind::Slack);
}

#[test]
fn fallback_escaping_keeps_our_links_only() {
    assert_eq!(
        escape_keeping_links("see <https://x.io/a?b=1&c=2|Open in Sentry> & <mailto:o@p.ai|mail>"),
        "see <https://x.io/a?b=1&amp;c=2|Open in Sentry> &amp; <mailto:o@p.ai|mail>"
    );
    // Already-escaped user text stays as it is; control sequences are escaped.
    assert_eq!(
        escape_keeping_links("&lt;https://evil|x&gt; <!channel> <@U1> <#C1> <javascript:x|y>"),
        "&lt;https://evil|x&gt; &lt;!channel&gt; &lt;@U1&gt; &lt;#C1&gt; &lt;javascript:x|y&gt;"
    );
    // Unclosed, nested or multi-line: not a link.
    assert_eq!(
        escape_keeping_links("<https://a <https://b|c>"),
        "&lt;https://a <https://b|c>"
    );
    assert_eq!(
        escape_keeping_links("<https://a\n|b>"),
        "&lt;https://a\n|b&gt;"
    );
    assert_eq!(
        escape_keeping_links("<https://|x> a > b"),
        "&lt;https://|x&gt; a &gt; b"
    );
}

#[test]
fn truncation_never_leaves_half_a_link() {
    let s = format!(
        "{} <https://alerts.paiid.ai/incidents/42|Incident #42>",
        "x".repeat(20)
    );
    let cut = truncate_mrkdwn(&s, 40);
    assert_eq!(cut, format!("{} …", "x".repeat(20)));
}

#[test]
fn late_acknowledgement_reply_reports_the_acknowledgement() {
    let mut n = notification(NotificationKind::Acknowledged);
    let t = n.last_seen;
    n.acknowledged_by = Some("ana".into());
    n.acknowledged_at = Some(t);
    // Resolved by the time the acknowledgement goes out.
    n.state = IncidentState::Resolved;
    n.resolved_by = Some("ben".into());
    n.resolved_at = Some(t);
    let reply = reply_text(&n);
    assert!(
        reply.starts_with(":eyes: *Acknowledged* by *ana*"),
        "{reply}"
    );
    assert!(!reply.contains("Resolved"), "{reply}");
    let short = serde_json::to_string(&short_blocks(&n)).unwrap_or_default();
    assert!(short.contains("*Acknowledged* by *ana*"), "{short}");
    assert!(!short.contains("Resolved"), "{short}");
    // The card shows the latest state.
    assert!(header_text(&n).contains("RESOLVED"));
    n.kind = NotificationKind::Resolved;
    assert!(reply_text(&n).starts_with(":white_check_mark: *Resolved* by *ben*"));
}

#[test]
fn a_notice_is_plain_text_without_blocks_or_buttons() {
    let webhook = plain_body(None, "hello <http://x/|page>".into());
    assert_eq!(
        webhook,
        json!({ "text": "hello <http://x/|page>", "unfurl_links": false, "unfurl_media": false })
    );
    let bot = plain_body(Some("#paiid-alerts"), "hello".into());
    assert_eq!(bot["channel"], "#paiid-alerts");
    assert!(bot.get("blocks").is_none());
    assert_eq!(bot["unfurl_links"], false);
}
