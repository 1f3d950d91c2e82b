//! Intake against the real app: real fixture bytes over HTTP into a temporary SQLite file.

mod support;

use std::sync::Arc;

use paiid_alerts::testing::intake::signature::sign;
use paiid_alerts::testing::settings::Secrets;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn every_fixture_is_accepted_and_classified() {
    let app = spawn_app().await;
    let mut posted = 0;
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json") && !n.starts_with("reference."))
        .collect();
    names.sort();
    for name in &names {
        let r = app.post_sentry(resource_of(name), &fixture(name)).await;
        assert!(r.status().is_success(), "{name}: {}", r.status());
        let body: Value = r.json().await.unwrap();
        assert!(body["event_id"].as_i64().is_some(), "{name}: {body}");
        posted += 1;
    }
    assert!(posted >= 15);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, posted);
    let incidents = app.incidents().await;
    let by_issue = |id: &str| {
        incidents
            .iter()
            .find(|i| i["sentry_issue_id"] == id)
            .unwrap_or_else(|| panic!("incident for issue {id}"))
            .clone()
    };
    // prod + error (event_alert.triggered.4 and legacy_webhook.1 share Sentry issue 4218258981).
    let prod = by_issue("4218258981");
    assert_eq!(prod["severity"], "critical");
    assert_eq!(prod["event_count"], 2);
    // info-level message: stored and listed, unclassified.
    assert_eq!(by_issue("1638844654")["severity"], "unclassified");
    // critical -> resolved (resolved.2) -> warning: the alert fired again, a second episode.
    let metric = incidents
        .iter()
        .find(|i| i["title"] == "metric alert")
        .expect("metric incident");
    let id = metric["id"].as_i64().unwrap();
    let timeline = app.incident(id).await["timeline"].clone();
    let kinds: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["opened", "resolved", "reopened"]);
    assert_eq!(metric["episode"], 2);
}

#[tokio::test]
async fn signature_is_enforced_and_failures_store_nothing() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            sentry_client_secret: secret("s3cret"),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await;
    let body = fixture("event_alert.triggered.4.json");
    let post = |sig: Option<String>| {
        let mut req = app
            .client
            .post(app.url("/webhooks/sentry"))
            .header("Sentry-Hook-Resource", "event_alert")
            .body(body.clone());
        if let Some(s) = sig {
            req = req.header("Sentry-Hook-Signature", s);
        }
        req.send()
    };
    for bad in [
        None,
        Some("deadbeef".to_string()),
        Some(sign(b"other", &body)),
        Some(String::new()),
    ] {
        let r = post(bad.clone()).await.unwrap();
        assert_eq!(r.status(), 401, "{bad:?}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["code"], "unauthorized");
        assert!(
            err["detail"]
                .as_str()
                .unwrap()
                .contains("Sentry-Hook-Signature")
        );
    }
    // The legacy plugin cannot skip the signature by dropping the Sentry headers.
    let r = app
        .post_sentry(None, &fixture("legacy_webhook.1.json"))
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events").await,
        0,
        "nothing stored"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM incidents").await, 0);

    let r = post(Some(sign(b"s3cret", &body))).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, 1);
}

#[tokio::test]
async fn legacy_plugin_token() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            sentry_webhook_token: secret("tok3n"),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await;
    let body = fixture("legacy_webhook.2.json");
    for q in ["", "?token=wrong", "?token="] {
        let r = app
            .client
            .post(app.url(&format!("/webhooks/sentry{q}")))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{q}");
    }
    let r = app
        .client
        .post(app.url("/webhooks/sentry?token=tok3n"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let app = spawn_app().await;
    let r = app.post_sentry(Some("event_alert"), b"{\"action\": ").await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "invalid_json");
    assert!(err["detail"].as_str().unwrap().contains("EOF"), "{err}");

    // serde would read a struct from an array; no Sentry payload is one.
    for (resource, body) in [(Some("event_alert"), &b"[]"[..]), (None, b" [{}]")] {
        let r = app.post_sentry(resource, body).await;
        assert_eq!(r.status(), 400);
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["code"], "invalid_json");
        assert!(
            err["detail"]
                .as_str()
                .unwrap()
                .contains("expected a JSON object"),
            "{err}"
        );
    }

    let big = vec![b' '; 1024 * 1024 + 10];
    let r = app.post_sentry(Some("event_alert"), &big).await;
    assert_eq!(r.status(), 413);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "payload_too_large");

    let r = app
        .post_sentry(Some("spaceship"), br#"{"action":"launched","data":{}}"#)
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ignored");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events WHERE status = 'ignored'")
            .await,
        1,
        "kept for inspection"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events").await,
        1,
        "nothing else stored"
    );

    let r = app
        .client
        .get(app.url("/api/incidents/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .get(app.url("/api/incidents/999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "not_found");
    let r = app
        .client
        .get(app.url("/api/incidents?state=sleepy"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = app
        .client
        .get(app.url("/webhooks/sentry"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "method_not_allowed");
    assert_eq!(err["detail"], "GET is not allowed on /webhooks/sentry");

    // The JSON API has the same 1 MiB limit as the webhooks.
    let big_note = serde_json::json!({ "by": "ana", "note": "x".repeat(1_500_000) });
    let r = app
        .client
        .post(app.url("/api/incidents/1/note"))
        .json(&big_note)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "payload_too_large"
    );

    // A web form that is not UTF-8 still gets a page, not a plain-text rejection.
    let r = app
        .client
        .post(app.url("/incidents/999/ack"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(&b"by=\xff"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events").await,
        1,
        "bad input stored nothing"
    );
}

#[tokio::test]
async fn retries_are_counted_once() {
    let app = spawn_app().await;
    let body = fixture("event_alert.triggered.4.json");
    for request_id in ["a", "b", "c"] {
        let r = app
            .client
            .post(app.url("/webhooks/sentry"))
            .header("Sentry-Hook-Resource", "event_alert")
            .header("Request-ID", request_id)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["status"],
            if request_id == "a" {
                "accepted"
            } else {
                "duplicate"
            }
        );
    }
    let incidents = app.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["event_count"], 1);
}

#[tokio::test]
async fn a_thousand_events_for_one_issue_make_one_incident() {
    let app = Arc::new(spawn_app().await);
    let template = fixture_json("event_alert.triggered.4.json");
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..1000 {
        let mut v = template.clone();
        v["data"]["event"]["event_id"] = format!("evt{i:05}").into();
        let body = serde_json::to_vec(&v).unwrap();
        let app = app.clone();
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let r = app.post_sentry(Some("event_alert"), &body).await;
            drop(permit);
            r.status().as_u16()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let incidents = app.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["event_count"], 1000);
    assert_eq!(incidents[0]["severity"], "critical");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM deliveries").await,
        1,
        "one page, not a thousand"
    );
}

#[tokio::test]
async fn sentry_lifecycle_resolve_assign_reopen() {
    let app = spawn_app().await;
    // issue.resolved.1 is for Sentry issue 1638821441; open it with a copy of a real event.
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = "1638821441".into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    let id = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();

    let mut assigned = fixture_json("issue.assigned.1.json");
    assigned["data"]["issue"]["id"] = "1638821441".into();
    app.post_sentry(Some("issue"), &serde_json::to_vec(&assigned).unwrap())
        .await;
    app.post_sentry(Some("issue"), &fixture("issue.resolved.1.json"))
        .await;
    let inc = app.incident(id).await;
    assert_eq!(inc["state"], "resolved");
    assert_eq!(inc["assignee"], "Hemanth V. Alluri");
    let kinds: Vec<&str> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["opened", "assigned", "resolved"]);

    // Sentry reopens it: a new episode of the same incident.
    let mut unresolved = fixture_json("issue.resolved.1.json");
    unresolved["action"] = "unresolved".into();
    unresolved["data"]["issue"]["status"] = "unresolved".into();
    app.post_sentry(Some("issue"), &serde_json::to_vec(&unresolved).unwrap())
        .await;
    let inc = app.incident(id).await;
    assert_eq!(inc["state"], "triggered");
    assert_eq!(inc["episode"], 2);
    assert!(inc["next_escalation_at"].is_string(), "escalates again");

    // Resolved again: byte for byte the first resolve (Sentry's issue bodies carry no time), but
    // the incident changed since, so it is a new resolve, not a retry.
    let r = app
        .post_sentry(Some("issue"), &fixture("issue.resolved.1.json"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "accepted");
    let inc = app.incident(id).await;
    assert_eq!(inc["state"], "resolved");
    assert!(inc["next_escalation_at"].is_null());
    // Its retry, though, is one.
    let r = app
        .post_sentry(Some("issue"), &fixture("issue.resolved.1.json"))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events WHERE resource = 'issue' AND action = 'resolved'")
            .await,
        2
    );

    // New events reopen it; a late resend of that resolve must not close the new episode.
    v["data"]["event"]["event_id"] = "after-resolve".into();
    app.post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(app.incident(id).await["episode"], 3);
    let r = app
        .post_sentry(Some("issue"), &fixture("issue.resolved.1.json"))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(app.incident(id).await["state"], "triggered");
}

#[tokio::test]
async fn rate_window_survives_a_restart() {
    let app = spawn_app().await;
    for i in 0..10 {
        let mut v = fixture_json("error.created.1.json");
        v["data"]["error"]["event_id"] = format!("e{i}").into();
        let r = app
            .post_sentry(Some("error"), &serde_json::to_vec(&v).unwrap())
            .await;
        assert_eq!(r.json::<Value>().await.unwrap()["severity"], "unclassified");
    }
    let (dir, clock) = app.stop().await;
    clock.advance(std::time::Duration::from_secs(30));
    let app = spawn_with(AppOptions {
        dir: Some(dir),
        clock: Some(clock),
        ..AppOptions::default()
    })
    .await;
    let mut v = fixture_json("error.created.1.json");
    v["data"]["error"]["event_id"] = "e10".into();
    let r = app
        .post_sentry(Some("error"), &serde_json::to_vec(&v).unwrap())
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["severity"], "high",
        "the 11th error in 5 minutes, across a restart"
    );
}

#[tokio::test]
async fn api_token_and_health() {
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            api_token: secret("t0ken"),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await;
    let r = app
        .client
        .get(app.url("/api/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/api/incidents"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/api/incidents"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn one_sentry_event_by_two_routes_is_one_occurrence() {
    let app = spawn_app().await;
    // The same production error as `error.created` and as an alert rule's `event_alert`.
    let mut error = fixture_json("error.created.1.json");
    error["data"]["error"]["event_id"] = "evt-twice".into();
    error["data"]["error"]["issue_id"] = "5550001".into();
    let mut alert = fixture_json("event_alert.triggered.4.json");
    alert["data"]["event"]["event_id"] = "evt-twice".into();
    alert["data"]["event"]["issue_id"] = "5550001".into();
    alert["data"]["triggered_rule"] = "Errors in production".into();
    let r = app
        .post_sentry(Some("error"), &serde_json::to_vec(&error).unwrap())
        .await;
    let id = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&alert).unwrap())
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "accepted", "its rule may route differently");
    assert_eq!(v["incident_id"], id);
    assert_eq!(app.incident(id).await["event_count"], 1, "one event");
    assert_eq!(
        app.scalar("SELECT SUM(occurrence) FROM events").await,
        1,
        "counted once in rate windows"
    );
}

/// An app that checks Sentry's signature, and a way to post bodies signed as Sentry would.
async fn signed_app() -> TestApp {
    spawn_with(AppOptions {
        secrets: Secrets {
            sentry_client_secret: secret("s3cret"),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await
}

async fn post_signed(app: &TestApp, resource: &str, body: &[u8]) -> reqwest::Response {
    app.client
        .post(app.url("/webhooks/sentry"))
        .header("content-type", "application/json")
        .header("Sentry-Hook-Resource", resource)
        .header("Sentry-Hook-Signature", sign(b"s3cret", body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn shapeless_signed_bodies_are_refused_and_store_nothing() {
    let app = signed_app().await;
    // The issue's bodies (correctly signed), and their cousins: no envelope, no Sentry payload.
    for (resource, body, missing) in [
        ("event_alert", r#"{"a":1}"#, &["`action`", "`data`"][..]),
        ("event_alert", r#"{"data":{}}"#, &["`action`"]),
        ("event_alert", r#"{"data":{"event":null}}"#, &["`action`"]),
        ("metric_alert", r#"{"action":"critical"}"#, &["`data`"]),
        ("issue", r#"{"action":"created","data":null}"#, &["`data`"]),
        ("error", r#"{"action":"created","data":"x"}"#, &["`data`"]),
    ] {
        let r = post_signed(&app, resource, body.as_bytes()).await;
        assert_eq!(r.status(), 400, "{body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["code"], "not_a_sentry_payload", "{body}: {err}");
        let detail = err["detail"].as_str().unwrap();
        for m in missing {
            assert!(detail.contains(m), "{body}: {detail}");
        }
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM incidents").await, 0);

    // The legacy plugin signs nothing; its token vouches for the sender, not for the shape.
    let app = spawn_with(AppOptions {
        secrets: Secrets {
            sentry_webhook_token: secret("tok3n"),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await;
    let r = app
        .client
        .post(app.url("/webhooks/sentry?token=tok3n"))
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "not_a_sentry_payload");
    assert!(err["detail"].as_str().unwrap().contains("`event`"), "{err}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM incidents").await, 0);
}

#[tokio::test]
async fn a_400000_deep_body_is_refused_quickly() {
    let app = signed_app().await;
    let deep = format!("{}{}", "[".repeat(400_000), "]".repeat(400_000));
    // Bare, and hidden in a field serde skips (it skips without a depth limit).
    let hidden =
        format!(r#"{{"action":"triggered","data":{{"event":{{"title":"t"}}}},"extra":{deep}}}"#);
    for body in [&deep, &hidden] {
        let started = std::time::Instant::now();
        let r = post_signed(&app, "event_alert", body.as_bytes()).await;
        assert_eq!(r.status(), 400);
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["code"], "too_deep", "{err}");
        assert!(err["detail"].as_str().unwrap().contains("128"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    // 128 levels is still fine (the envelope is the first of them).
    let ok = format!(
        r#"{{"action":"triggered","data":{{"event":{{"title":"t","event_id":"e1"}}}},"extra":{}{}}}"#,
        "[".repeat(127),
        "]".repeat(127)
    );
    let r = post_signed(&app, "event_alert", ok.as_bytes()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let too_deep = ok
        .replacen("\"extra\":[", "\"extra\":[[", 1)
        .replacen("]}", "]]}", 1);
    let r = post_signed(&app, "event_alert", too_deep.as_bytes()).await;
    assert_eq!(r.status(), 400);
    // Still serving, and only the acceptable body was stored.
    let r = post_signed(
        &app,
        "event_alert",
        &fixture("event_alert.triggered.4.json"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, 2);
}

#[tokio::test]
async fn an_envelope_we_cannot_read_is_kept_counted_listed_and_announced_once() {
    let app = signed_app().await;
    let unparsed = || {
        app.state.metrics.counter(
            "paiid_intake_unparsed_total",
            &[("resource", "event_alert")],
        )
    };
    let shapes = || app.scalar("SELECT COUNT(*) FROM unparsed_shapes");
    let envelope = |uuid: &str, data: &str| {
        format!(
            r#"{{"action":"triggered","installation":{{"uuid":"{uuid}"}},"data":{data},"actor":{{"type":"application","name":"Sentry"}}}}"#
        )
    };

    let r = post_signed(&app, "event_alert", envelope("u1", "{}").as_bytes()).await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "unparsed", "{v}");
    assert!(v["incident_id"].is_null(), "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("`data.event`"),
        "{v}"
    );
    assert_eq!(unparsed(), 1);
    assert_eq!(shapes().await, 1, "announced");

    // Same shape, another delivery: stored and counted, not announced again.
    let r = post_signed(&app, "event_alert", envelope("u2", "{}").as_bytes()).await;
    assert_eq!(r.status(), 202);
    assert_eq!(unparsed(), 2);
    assert_eq!(shapes().await, 1, "not announced twice");
    assert_eq!(
        app.scalar(
            "SELECT seen FROM unparsed_shapes WHERE resource = 'event_alert' AND shape = ''"
        )
        .await,
        2
    );
    // Its retry is a duplicate: not counted again.
    let r = post_signed(&app, "event_alert", envelope("u2", "{}").as_bytes()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(unparsed(), 2);

    // Another shape is news.
    let r = post_signed(
        &app,
        "event_alert",
        envelope("u3", r#"{"event":null,"triggered_rule":"r"}"#).as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_eq!(shapes().await, 2);

    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM incidents").await,
        0,
        "no incident"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events WHERE status = 'unparsed' AND incident_id IS NULL")
            .await,
        3
    );
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("paiid_intake_unparsed_total{resource=\"event_alert\"} 3"),
        "{text}"
    );
    let page = app.client.get(app.url("/")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Payloads we could not read"), "{html}");
    assert!(html.contains("event,triggered_rule"), "{html}");
    assert!(html.contains("`data.event` is missing") || html.contains("data.event"));

    // A readable alert next to them still opens its incident.
    let r = post_signed(
        &app,
        "event_alert",
        &fixture("event_alert.triggered.4.json"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM incidents").await, 1);

    // Once per shape also across a restart.
    let (dir, clock) = app.stop().await;
    let app = spawn_with(AppOptions {
        dir: Some(dir),
        clock: Some(clock),
        secrets: Secrets {
            sentry_client_secret: secret("s3cret"),
            ..Secrets::default()
        },
        ..AppOptions::default()
    })
    .await;
    let r = post_signed(&app, "event_alert", envelope("u4", "{}").as_bytes()).await;
    assert_eq!(r.status(), 202);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM unparsed_shapes").await, 2);
    assert_eq!(
        app.scalar(
            "SELECT seen FROM unparsed_shapes WHERE resource = 'event_alert' AND shape = ''"
        )
        .await,
        3
    );
    // Announced through the outbox: one row per shape on the critical policy's Slack channel
    // (tests/unreadable.rs sends them).
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM deliveries WHERE kind = 'unreadable_payload' \
             AND channel = 'slack-alerts' AND incident_id IS NULL"
        )
        .await,
        2
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM deliveries").await, 3);
}
