//! A realistic mix of incidents, posted as signed webhooks built from the real Sentry fixtures:
//! critical (a production error), high (a slow p95), medium (an apdex drop), unclassified (an
//! info message). The fixtures hold one capture of each kind, so the variants are copies with
//! their ids (and, for the metric alerts, the aggregate and value Sentry would send) edited.

use paiid_alerts::testing::intake::signature::sign;
use paiid_alerts::testing::settings::Secrets;
use serde_json::Value;

use super::{TestApp, fixture_json, secret};

pub const SENTRY_SECRET: &str = "s3cret";

/// Secrets with the Sentry client secret set, so that webhooks must be signed.
pub fn signed_secrets() -> Secrets {
    Secrets {
        sentry_client_secret: secret(SENTRY_SECRET),
        ..Secrets::default()
    }
}

/// Posts `body` with the signature Sentry computes over the exact bytes; the answer's JSON.
pub async fn post_signed(app: &TestApp, resource: &str, body: &Value) -> Value {
    let bytes = serde_json::to_vec(body).expect("json");
    let r = app
        .client
        .post(app.url("/webhooks/sentry"))
        .header("content-type", "application/json")
        .header("Sentry-Hook-Resource", resource)
        .header(
            "Sentry-Hook-Signature",
            sign(SENTRY_SECRET.as_bytes(), &bytes),
        )
        .body(bytes)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200, "{resource}");
    r.json().await.expect("json")
}

/// The real production error (`prod`, `error`): critical under the default routing.
pub fn critical(issue: &str, event: &str, title: &str) -> Value {
    let mut v = fixture_json("event_alert.triggered.4.json");
    let e = &mut v["data"]["event"];
    e["issue_id"] = issue.into();
    e["event_id"] = event.into();
    e["title"] = title.into();
    v
}

/// A metric alert on `p95(transaction.duration)` over 2 s: high (slow-transactions).
pub fn slow_p95(rule_id: &str, title: &str) -> Value {
    metric(
        rule_id,
        title,
        "p95(transaction.duration)",
        0,
        "2450.0 p95(transaction.duration) in the last 10 minutes",
    )
}

/// A metric alert on apdex below 0.8: medium (apdex-regression).
pub fn apdex_drop(rule_id: &str, title: &str) -> Value {
    metric(
        rule_id,
        title,
        "apdex(300)",
        1,
        "0.62 apdex(300) in the last 10 minutes",
    )
}

fn metric(rule_id: &str, title: &str, aggregate: &str, threshold_type: i64, text: &str) -> Value {
    let mut v = fixture_json("metric_alert.critical.1.json");
    let rule = &mut v["data"]["metric_alert"]["alert_rule"];
    rule["id"] = rule_id.into();
    rule["name"] = title.into();
    rule["aggregate"] = aggregate.into();
    rule["threshold_type"] = threshold_type.into();
    v["data"]["description_title"] = title.into();
    v["data"]["description_text"] = text.into();
    v
}

/// The real info-level message (no environment, no issue id): unclassified.
pub fn info_message(event: &str, title: &str) -> Value {
    let mut v = fixture_json("event_alert.triggered.2.json");
    let e = &mut v["data"]["event"];
    e["event_id"] = event.into();
    e["title"] = title.into();
    v
}

/// The incident id and severity from a webhook's answer.
pub fn opened(answer: &Value) -> (i64, String) {
    (
        answer["incident_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{answer}")),
        answer["severity"].as_str().unwrap_or_default().to_string(),
    )
}

/// Acknowledges (or resolves: `action` = `resolve`) through the JSON API, as `by`.
pub async fn act(app: &TestApp, id: i64, action: &str, by: &str, token: Option<&str>) {
    let mut req = app
        .client
        .post(app.url(&format!("/api/incidents/{id}/{action}")))
        .json(&serde_json::json!({ "by": by }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("post");
    assert_eq!(
        r.status(),
        200,
        "{action} #{id}: {}",
        r.text().await.unwrap_or_default()
    );
}
