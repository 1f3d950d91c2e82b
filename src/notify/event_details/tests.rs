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
