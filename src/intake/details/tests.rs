use super::*;
use serde_json::json;

#[test]
fn request_line_shapes() {
    let ev = json!({"request": {"method": "post", "url": "https://api.paiid.ai/orders?api_key=zzz",
        "headers": {"Authorization": "Bearer x"}}});
    assert_eq!(
        event_details(&ev, false).request.as_deref(),
        Some("POST https://api.paiid.ai/orders?api_key=[REDACTED]")
    );
    let ev = json!({"request": {"method": "GET", "url": "https://api.paiid.ai/q",
        "query_string": [["symbol", "AAPL"], ["token", "t0k"]]}});
    assert_eq!(
        event_details(&ev, false).request.as_deref(),
        Some("GET https://api.paiid.ai/q?symbol=AAPL&token=[REDACTED]")
    );
    let ev = json!({"request": {"url": "https://x/q", "query_string": "?session=abc&a=1"}});
    assert_eq!(
        event_details(&ev, false).request.as_deref(),
        Some("https://x/q?session=[REDACTED]&a=1")
    );
    let legacy = json!({"sentry.interfaces.Http": {"method": "DELETE", "url": "http://u:p@h/x",
        "query_string": {"password": "p", "b": 2}}});
    assert_eq!(
        event_details(&legacy, false).request.as_deref(),
        Some("DELETE http://[REDACTED]@h/x?b=2&password=[REDACTED]")
    );
}

#[test]
fn top_frame_prefers_innermost_in_app_of_latest_exception() {
    let ev = json!({"exception": {"values": [
        {"type": "Cause", "stacktrace": {"frames": [
            {"filename": "app/cause.py", "function": "c", "lineno": 1, "in_app": true}]}},
        {"type": "Latest", "stacktrace": {"frames": [
            {"filename": "app/routers/orders.py", "function": "place_order", "lineno": 42, "in_app": true},
            {"filename": "app/services/broker.py", "function": "submit", "lineno": 7, "in_app": true},
            {"filename": "site-packages/httpx.py", "function": "send", "lineno": 900, "in_app": false}
        ]}}
    ]}});
    assert_eq!(
        event_details(&ev, false).top_frame.as_deref(),
        Some("app/services/broker.py in submit at line 7")
    );
    let legacy = json!({"sentry.interfaces.Exception": [
        {"stacktrace": {"frames": [{"module": "m", "function": "f", "in_app": 1}]}}]});
    assert_eq!(
        event_details(&legacy, false).top_frame.as_deref(),
        Some("m in f")
    );
    let old_single = json!({"sentry.interfaces.Exception": {"type": "E",
        "stacktrace": {"frames": [{"abs_path": "/srv/a.py", "lineno": "9"}]}}});
    assert_eq!(
        event_details(&old_single, false).top_frame.as_deref(),
        Some("/srv/a.py at line 9")
    );
    let threads =
        json!({"threads": {"values": [{"stacktrace": {"frames": [{"function": "main"}]}}]}});
    assert_eq!(
        event_details(&threads, false).top_frame.as_deref(),
        Some("main")
    );
}

#[test]
fn breadcrumbs_last_five_oldest_first_scrubbed_and_summarised() {
    let crumbs: Vec<Value> = (0..7)
        .map(|i| json!({"timestamp": 1_700_000_000.0 + f64::from(i), "category": "log", "message": format!("m{i}")}))
        .chain([
            json!({"timestamp": "2026-11-29T08:00:00Z", "category": "trading", "level": "info",
                   "message": "order submitted",
                   "data": {"symbol": "AAPL", "qty": 100, "side": "buy", "account_token": "tok-1", "email": "t@paiid.ai"}}),
            json!({"type": "http", "category": "httplib",
                   "data": {"method": "GET", "url": "https://md.example/q?apikey=K", "status_code": 502}}),
            json!({"category": "cache", "data": {"key": "quote:AAPL", "hit": false}}),
            json!({"category": "navigation", "data": {"from": "/a", "to": "/b"}}),
            json!({"type": "http", "data": {"method": "POST", "url": "https://x/orders", "status_code": 500}}),
            json!("not an object"),
        ])
        .collect();
    let ev = json!({"breadcrumbs": {"values": crumbs}});
    let d = event_details(&ev, false);
    assert_eq!(d.breadcrumbs.len(), 5);
    let trading = &d.breadcrumbs[0];
    assert_eq!(trading.category.as_deref(), Some("trading"));
    assert_eq!(trading.level.as_deref(), Some("info"));
    assert_eq!(trading.timestamp.as_deref(), Some("2026-11-29T08:00:00Z"));
    assert!(
        trading.message.starts_with("order submitted ("),
        "{}",
        trading.message
    );
    for part in [
        "symbol=AAPL",
        "qty=100",
        "side=buy",
        "account_token=[REDACTED]",
    ] {
        assert!(
            trading.message.contains(part),
            "{part} in {}",
            trading.message
        );
    }
    assert!(!trading.message.contains("t@paiid.ai") && !trading.message.contains("tok-1"));
    assert_eq!(
        d.breadcrumbs[1].message,
        "GET https://md.example/q?apikey=[REDACTED] [502]"
    );
    assert_eq!(d.breadcrumbs[1].category.as_deref(), Some("httplib"));
    assert!(
        d.breadcrumbs[2].message.contains("key=quote:AAPL"),
        "{}",
        d.breadcrumbs[2].message
    );
    assert_eq!(d.breadcrumbs[3].message, "/a → /b");
    assert_eq!(d.breadcrumbs[4].message, "POST https://x/orders [500]");
    assert_eq!(d.breadcrumbs[4].category.as_deref(), Some("http"));

    // Bare list form and epoch timestamps.
    let ev = json!({"breadcrumbs": [{"timestamp": 1_700_000_000.5, "message": "hi"}]});
    let d = event_details(&ev, false);
    assert_eq!(
        d.breadcrumbs[0].timestamp.as_deref(),
        Some("2023-11-14T22:13:20.500Z")
    );
    let legacy = json!({"sentry.interfaces.Breadcrumbs": {"values": [{"message": "Bearer abc"}]}});
    assert_eq!(
        event_details(&legacy, false).breadcrumbs[0].message,
        "Bearer [REDACTED]"
    );
}

#[test]
fn release_from_field_object_or_tags() {
    assert_eq!(
        event_details(&json!({"release": "paiid@1.4.2"}), false)
            .release
            .as_deref(),
        Some("paiid@1.4.2")
    );
    assert_eq!(
        event_details(&json!({"release": {"version": "abc123"}}), false)
            .release
            .as_deref(),
        Some("abc123")
    );
    assert_eq!(
        event_details(
            &json!({"release": null, "tags": [["sentry:release", "r9"]]}),
            false
        )
        .release
        .as_deref(),
        Some("r9")
    );
    assert_eq!(
        event_details(&json!({"tags": {"release": "r10"}}), false)
            .release
            .as_deref(),
        Some("r10")
    );
}

fn facts_for(resource: &str, body: &[u8]) -> AlertFacts {
    crate::intake::sentry::parse(Some(resource), body).unwrap()
}

fn secret_laden_alert() -> Value {
    json!({
        "action": "triggered",
        "data": {
            "triggered_rule": "prod errors",
            "event": {
                "event_id": "abc",
                "title": "Login failed",
                "tags": [["environment", "production"], ["api_key", "AKIA_TAG_KEY"],
                         ["user.email", "jane.doe@paiid.ai"], ["url", "https://x/?token=TAGTOKEN"]],
                "request": {"method": "POST",
                            "url": "https://api.paiid.ai/login?password=hunter2-in-url"},
                "exception": {"values": [{"stacktrace": {"frames": [
                    {"filename": "app/auth.py", "function": "login", "lineno": 12, "in_app": true}
                ]}}]},
                "breadcrumbs": {"values": [
                    {"category": "auth", "message": "login by jane.doe@paiid.ai from 203.0.113.77"},
                    {"category": "trading", "message": "order rejected",
                     "data": {"password": "hunter2-in-crumb", "email": "jane.doe@paiid.ai",
                              "symbol": "AAPL"}}
                ]}
            }
        }
    })
}

#[test]
fn extraction_is_scrubbed_before_it_is_stored() {
    let body = serde_json::to_vec(&secret_laden_alert()).unwrap();
    let facts = facts_for("event_alert", &body);
    for include_pii in [false, true] {
        let d = extract(&facts, &body, include_pii);
        let stored = d.to_json().unwrap();
        for secret in ["hunter2", "AKIA_TAG_KEY", "TAGTOKEN"] {
            assert!(!stored.contains(secret), "{secret} stored: {stored}");
        }
        assert_eq!(
            stored.contains("jane.doe@paiid.ai"),
            include_pii,
            "{stored}"
        );
        assert_eq!(stored.contains("203.0.113.77"), include_pii, "{stored}");
        assert_eq!(d.pii_included, include_pii);
        assert_eq!(
            d.top_frame.as_deref(),
            Some("app/auth.py in login at line 12")
        );
        assert_eq!(d.breadcrumbs.len(), 2);
        assert!(d.breadcrumbs[1].message.contains("symbol=AAPL"));
        assert!(
            d.tags
                .contains(&("environment".to_string(), "production".to_string()))
        );
        assert!(
            d.tags
                .contains(&("api_key".to_string(), REDACTED.to_string()))
        );
        assert_eq!(
            d.tags.iter().any(|(k, _)| k == "user.email"),
            include_pii,
            "{:?}",
            d.tags
        );
        assert_eq!(d.metric, None);
        // What is stored reads back as it was written.
        assert_eq!(EventDetails::from_json(&stored).unwrap(), d);
    }
}

#[test]
fn stored_with_pii_but_sent_without_is_scrubbed_again() {
    let body = serde_json::to_vec(&secret_laden_alert()).unwrap();
    let facts = facts_for("event_alert", &body);
    let with_pii = extract(&facts, &body, true);
    let without = extract(&facts, &body, false);
    // The same setting at intake and at send: nothing changes.
    assert_eq!(with_pii.clone().for_delivery(true), with_pii);
    assert_eq!(without.clone().for_delivery(false), without);
    assert_eq!(without.clone().for_delivery(true), without);
    // PII excluded after the event was stored with it: masked at send all the same.
    let sent = with_pii.for_delivery(false);
    let shown = serde_json::to_string(&sent).unwrap();
    assert!(!shown.contains("jane.doe@paiid.ai"), "{shown}");
    assert!(!shown.contains("203.0.113.77"), "{shown}");
    assert!(!sent.tags.iter().any(|(k, _)| k == "user.email"));
    assert!(!sent.pii_included);
    assert_eq!(sent.breadcrumbs[0].message, without.breadcrumbs[0].message);
}

#[test]
fn metric_alerts_carry_their_kind_from_the_aggregate() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/sentry");
    let body = std::fs::read(dir.join("metric_alert.critical.1.json")).unwrap();
    let facts = facts_for("metric_alert", &body);
    let d = extract(&facts, &body, false);
    let metric = d.metric.expect("a metric alert has a metric");
    assert_eq!(Some(metric.kind), facts.metric.as_ref().map(|m| m.kind()));
    assert_eq!(metric.value, facts.metric.as_ref().and_then(|m| m.value));
    assert_eq!(d.top_frame, None);
    assert!(d.breadcrumbs.is_empty());

    let apdex = |aggregate: &str| {
        let body = serde_json::to_vec(&json!({
            "action": "critical",
            "data": {
                "description_text": "0.61 apdex(300) in the last 10 minutes",
                "metric_alert": {"alert_rule": {"id": "7", "name": "whatever",
                                                "aggregate": aggregate}}
            }
        }))
        .unwrap();
        extract(&facts_for("metric_alert", &body), &body, false)
            .metric
            .map(|m| m.kind)
    };
    assert_eq!(apdex("apdex(300)"), Some(MetricKind::Apdex));
    assert_eq!(
        apdex("p95(transaction.duration)"),
        Some(MetricKind::Duration)
    );
    assert_eq!(apdex("count()"), Some(MetricKind::Other));
}

#[test]
fn unreadable_bodies_yield_empty_details_not_a_panic() {
    let facts = AlertFacts::default();
    for body in [
        &b""[..],
        b"{",
        b"[]",
        b"null",
        b"{\"data\": {\"event\": 5}}",
    ] {
        let d = extract(&facts, body, false);
        assert_eq!(
            d,
            EventDetails {
                pii_included: false,
                ..EventDetails::default()
            }
        );
    }
}
