use super::*;
use crate::intake::details::{event_details, find_event};
use serde_json::json;
use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/sentry")
}

/// Every secret or personal value that appears in the fixtures, checked after scrubbing.
const FIXTURE_SENSITIVE: &[&str] = &[
    "sentry@example.com",
    "hdrive1999@gmail.com",
    "162.218.85.90",
    "162.217.75.90",
    "127.0.0.1",
    // DSN secret / public keys inside frame variables and source context.
    "f3403f81e12e4c24942d505f086b2cad",
    "ebc35f33e151401f9deac549978bda11",
    "6130e69dc19e426e87deaa54744be1cd",
];

struct Expect {
    request: Option<&'static str>,
    top_frame: Option<&'static str>,
    breadcrumbs: usize,
    release: Option<&'static str>,
}

/// Per-fixture expectations for files that carry an event. Files without an event (issue,
/// metric alert, reference) are listed with `None` so a new fixture forces a decision here.
fn expectations(name: &str) -> Option<Option<Expect>> {
    let e = |request, top_frame| {
        Some(Some(Expect {
            request,
            top_frame,
            breadcrumbs: 0,
            release: None,
        }))
    };
    match name {
        "error.created.1.json" => e(
            Some("https://null.jsbin.com/runner"),
            Some("/runner at line 3"),
        ),
        "event_alert.triggered.1.json" => e(
            Some("https://null.jsbin.com/runner"),
            Some("<anonymous> at line 3"),
        ),
        "event_alert.triggered.2.json" => e(None, None),
        "event_alert.triggered.4.json" | "legacy_webhook.1.json" => e(
            Some("GET http://example.com/foo?foo=bar"),
            Some("raven/scripts/runner.py in main at line 112"),
        ),
        "event_alert.triggered.5.json" => e(None, None),
        "legacy_webhook.2.json" => e(None, Some("sentry/temp.py in <module> at line 6")),
        "issue.assigned.1.json"
        | "issue.created.1.json"
        | "issue.created.2.json"
        | "issue.resolved.1.json"
        | "metric_alert.critical.1.json"
        | "metric_alert.resolved.1.json"
        | "metric_alert.resolved.2.json"
        | "metric_alert.warning.1.json"
        | "reference.alert_rule.apdex.rest-api.json"
        | "reference.alert_rule.p95_transaction_duration.rest-api.json" => Some(None),
        _ => None,
    }
}

#[test]
fn every_fixture_is_extracted_and_scrubbed() {
    let dir = fixtures_dir();
    let mut seen = 0;
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        seen += 1;
        let payload: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

        // Whole-payload scrub: nothing sensitive survives, the structure does.
        let clean = scrubbed(&payload, false);
        let text = clean.to_string();
        for s in FIXTURE_SENSITIVE {
            assert!(!text.contains(s), "{name}: {s} survived scrubbing");
        }
        assert_eq!(
            scrubbed(&clean, false),
            clean,
            "{name}: scrubbing is not idempotent"
        );
        assert_eq!(clean.get("action"), payload.get("action"), "{name}");

        let expect =
            expectations(&name).unwrap_or_else(|| panic!("{name}: add it to expectations()"));
        let event = find_event(&payload);
        assert_eq!(event.is_some(), expect.is_some(), "{name}: find_event");
        let (Some(event), Some(expect)) = (event, expect) else {
            continue;
        };
        for include_pii in [false, true] {
            let d = event_details(event, include_pii);
            assert_eq!(d.request.as_deref(), expect.request, "{name} request");
            assert_eq!(d.top_frame.as_deref(), expect.top_frame, "{name} top_frame");
            assert_eq!(
                d.breadcrumbs.len(),
                expect.breadcrumbs,
                "{name} breadcrumbs"
            );
            assert_eq!(d.release.as_deref(), expect.release, "{name} release");
            // Extraction also works on the scrubbed event (what storage keeps).
            let from_clean = event_details(find_event(&clean).unwrap(), include_pii);
            assert_eq!(from_clean.top_frame, d.top_frame, "{name}");
        }
    }
    assert!(
        seen >= 17,
        "expected at least 17 fixture files in {}, saw {seen}",
        dir.display()
    );
}

#[test]
fn fixture_pii_is_kept_only_when_allowed() {
    let path = fixtures_dir().join("event_alert.triggered.4.json");
    let payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let with = scrubbed(&payload, true);
    assert_eq!(with["data"]["event"]["user"]["email"], "sentry@example.com");
    assert_eq!(with["data"]["event"]["user"]["ip_address"], "127.0.0.1");
    let without = scrubbed(&payload, false);
    assert!(without["data"]["event"]["user"].get("email").is_none());
    assert!(without["data"]["event"]["user"].get("ip_address").is_none());
    assert_eq!(without["data"]["event"]["user"]["username"], "sentry");
    // Secrets go regardless of the PII setting.
    let vars = &with["data"]["event"]["stacktrace"]["frames"][4]["vars"];
    assert_eq!(vars["'dsn'"], REDACTED);
    assert_eq!(vars["'args'"][1], "'https://[REDACTED]@sentry.io/1'");
    assert_eq!(with["data"]["event"]["request"]["cookies"], REDACTED);
    assert_eq!(with["data"]["event"]["extra"]["unauthorized"], false);
}

#[test]
fn sensitive_headers_redacted_in_pair_lists_and_objects() {
    let pairs = json!({"headers": [
        ["Authorization", "Bearer abc.def.ghi"],
        ["Cookie", "sessionid=s3cr3t; csrftoken=zzz"],
        ["Set-Cookie", "sid=777; HttpOnly"],
        ["Proxy-Authorization", "Basic dXNlcjpwYXNzd29yZA=="],
        ["X-Api-Key", "k-123"],
        ["X-Forwarded-For", "203.0.113.9"],
        ["User-Agent", "curl/8.0"]
    ]});
    let c = scrubbed(&pairs, false);
    let h = c["headers"].as_array().unwrap();
    assert_eq!(h.len(), 6, "X-Forwarded-For dropped: {h:?}");
    for pair in &h[..5] {
        assert_eq!(pair[1], REDACTED, "{pair:?}");
    }
    assert_eq!(h[5], json!(["User-Agent", "curl/8.0"]));

    let obj = json!({"headers": {
        "authorization": "Bearer abc", "COOKIE": "a=b", "set-cookie": "c=d",
        "Proxy-Authorization": "x", "REMOTE_ADDR": "10.1.2.3", "Accept": "*/*"
    }});
    let c = scrubbed(&obj, false);
    assert_eq!(
        c,
        json!({"headers": {
            "authorization": REDACTED, "COOKIE": REDACTED, "set-cookie": REDACTED,
            "Proxy-Authorization": REDACTED, "Accept": "*/*"
        }})
    );
    let c = scrubbed(&obj, true);
    assert_eq!(c["headers"]["REMOTE_ADDR"], "10.1.2.3");
}

#[test]
fn every_secret_key_kind_is_redacted() {
    let v = json!({
        "password": "hunter2", "user_passwd": "p2", "secret": "s", "client_secret": "cs",
        "token": "t", "refresh_token": "rt", "api_key": "ak", "apiKey": "ak2", "X-API-KEY": "ak3",
        "auth": "a", "credentials": {"user": "u", "pass": "p"}, "sessionid": "sid",
        "session_id": "sid2", "cookie": "c", "dsn": "https://pub:priv@o1.ingest.sentry.io/1",
        "SENTRY_DSN": "https://pub@o1.ingest.sentry.io/1", "credit_card": "4111111111111111",
        "cardNumber": 4_111_111_111_111_111u64, "cvv": 123, "private_key": "-----BEGIN",
        "nested": [{"db": {"PASSWORD": "pw"}}],
        "safe": "visible"
    });
    let c = scrubbed(&v, false);
    let obj = c.as_object().unwrap();
    for (k, val) in obj {
        if k == "safe" {
            assert_eq!(val, "visible");
        } else if k == "nested" {
            assert_eq!(val[0]["db"]["PASSWORD"], REDACTED);
        } else {
            assert_eq!(val, REDACTED, "{k}");
        }
    }
}

#[test]
fn free_text_secrets() {
    let cases = [
        (
            "https://api.x.io/cb?token=abc&page=2",
            "https://api.x.io/cb?token=[REDACTED]&page=2",
        ),
        (
            "GET /login?user=bob&password=hunter2",
            "GET /login?user=bob&password=[REDACTED]",
        ),
        // `#` does not end a value: passwords contain it, and OAuth puts tokens in fragments.
        (
            "/x?access_token=a1&api_key=b2#frag",
            "/x?access_token=[REDACTED]&api_key=[REDACTED]",
        ),
        (
            "/cb#access_token=a1&state=s",
            "/cb#access_token=[REDACTED]&state=s",
        ),
        (
            "call failed: Authorization: Bearer eyJhbGciOi.xyz",
            "call failed: Authorization: [REDACTED]",
        ),
        (
            "sent Bearer abc123 upstream",
            "sent Bearer [REDACTED] upstream",
        ),
        ("header Basic dXNlcjpwYXNz", "header Basic [REDACTED]"),
        ("basic auth failed", "basic auth failed"),
        (
            "Cookie: sessionid=abc; theme=dark\nnext",
            "Cookie: [REDACTED]\nnext",
        ),
        (
            r#"{"password": "hunter2", "user": "bob"}"#,
            r#"{"password": "[REDACTED]", "user": "bob"}"#,
        ),
        ("{'secret_key': 'xyz'}", "{'secret_key': '[REDACTED]'}"),
        (
            "dsn https://pub:priv@o1.ingest.sentry.io/1",
            "dsn https://[REDACTED]@o1.ingest.sentry.io/1",
        ),
        (
            "postgres://app:pw@db:5432/x",
            "postgres://[REDACTED]@db:5432/x",
        ),
        ("charged 4111 1111 1111 1111 ok", "charged [REDACTED] ok"),
        ("card 5500-0000-0000-0004", "card [REDACTED]"),
        (
            "order 4111111111111112 (not a card)",
            "order 4111111111111112 (not a card)",
        ),
        (
            "https://sentry.io/api/4505518370586624/",
            "https://sentry.io/api/4505518370586624/",
        ),
        ("token refresh scheduled", "token refresh scheduled"),
        (
            "https://example.com/auth/login",
            "https://example.com/auth/login",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(scrub_text(input, true), want, "input: {input}");
        assert_eq!(scrub_text(want, true), want, "idempotent: {want}");
    }
}

#[test]
fn pii_in_free_text_is_masked_unless_allowed() {
    let input =
        "user jane.doe+x@paiid.ai from 203.0.113.7 and fe80::1ff:fe23:4567:890a via 2001:db8::1";
    assert_eq!(
        scrub_text(input, false),
        "user [email] from [ip] and [ip] via [ip]"
    );
    assert_eq!(scrub_text(input, true), input);
    // Lookalikes survive.
    for keep in [
        "Chrome/75.0.3770.100",
        "at 12:30:45 UTC",
        "std::vector::push_back",
        "mac aa:bb:cc:dd:ee:ff",
        "version 1.2.3",
        "[REDACTED]@o1.ingest.sentry.io",
    ] {
        assert_eq!(scrub_text(keep, false), keep);
    }
    let v = json!({"user": {"id": "1", "email": "a@b.co", "ip_address": "1.2.3.4"},
                   "request": {"env": {"REMOTE_ADDR": "1.2.3.4", "SERVER": "x"}},
                   "tags": [["user", "ip:162.217.75.90"], ["user.email", "a@b.co"]]});
    let c = scrubbed(&v, false);
    assert_eq!(c["user"], json!({"id": "1"}));
    assert_eq!(c["request"]["env"], json!({"SERVER": "x"}));
    assert_eq!(c["tags"], json!([["user", "ip:[ip]"]]));
}

#[test]
fn odd_shapes_never_panic() {
    let odd = [
        json!(null),
        json!([1, 2]),
        json!("event"),
        json!({"request": "GET /", "exception": 5, "breadcrumbs": "x", "release": 3, "tags": 1}),
        json!({"request": {"url": 1, "method": []}, "exception": {"values": [null, {"stacktrace": 1}]}}),
        json!({"exception": [{"stacktrace": {"frames": [null, 1, {"lineno": -1}, {"lineno": 1e300}]}}]}),
        json!({"breadcrumbs": {"values": [{"timestamp": 1e300}, {"timestamp": -1e20}, {"timestamp": null, "data": [1]}]}}),
        json!({"stacktrace": {"frames": {}}, "threads": [1], "sentry.interfaces.Http": {"query_string": [[1, 2], []]}}),
    ];
    for ev in odd {
        let _ = event_details(&ev, false);
        let _ = scrubbed(&ev, false);
    }
    for text in [
        "",
        "@",
        "@@a.b",
        "a@",
        ":::",
        "1.2.3.",
        "=",
        "token=",
        "token:",
        "Bearer",
        "Bearer ",
        "é@ü.com",
        "ключ token=значение",
        "4111 ",
        "::1",
        "\u{0}@\u{0}.co",
    ] {
        let _ = scrub_text(text, false);
    }
    // Deep nesting built in code (beyond what serde_json would parse) is bounded.
    let mut deep = json!("x");
    for _ in 0..300 {
        deep = json!([deep]);
    }
    let _ = scrubbed(&deep, false);
    assert_eq!(
        scrub_text("ключ token=значение x", true),
        "ключ token=[REDACTED] x"
    );
}
