//! Operator endpoints: `/metrics`, `/api/deliveries`, `/api/test-alert`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::api::{require_api_reader, require_api_token};
use super::error::ApiError;
use super::extract::Query;
use crate::classification::Severity;
use crate::config::{Conditions, RoutingConfig};
use crate::domain::{DeliveryStatus, IngestStatus};
use crate::incidents::writer::{IngestOutcome, IngestRequest, TEST_SOURCE};
use crate::intake::{AlertFacts, Meaning};
use crate::notify::registry::Channels;
use crate::store::{deliveries, gauges};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/deliveries", get(list_deliveries))
        .route("/api/test-alert", post(test_alert))
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    // A scrape must still answer when the database does not: the counters say a lot then.
    let gauges = gauges::gauges(state.store.reader(), state.clock.now_ms())
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "metrics: database gauges unavailable"))
        .ok();
    let body = state
        .metrics
        .render(gauges.as_ref())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("metrics encoding failed: {e}")))?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body))
}

#[derive(Deserialize)]
struct DeliveryQuery {
    status: Option<String>,
    limit: Option<i64>,
}

async fn list_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Value>, ApiError> {
    require_api_reader(&state, &headers)?;
    // The detail names the word given and every allowed word (`ParseError`'s message).
    let status = q
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(|e| ApiError::bad_request("bad_query", format!("status: {e}")))?;
    let rows = deliveries::list(
        state.store.reader(),
        status,
        q.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await?;
    Ok(Json(json!({ "deliveries": rows })))
}

/// Fires a synthetic Critical alert through classification, the outbox and the channels. Its
/// incident never escalates: a test must not page the on-call engineer.
async fn test_alert(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_api_token(&state, &headers)?;
    let cfg = state.cfg.load();
    let channels = state.channels.load();
    let policy = cfg.policy(Severity::Critical);
    if !policy.notify.iter().any(|c| channels.is_real(c)) {
        let detail = no_channel_for_critical(&policy.notify, &channels);
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "code": "unavailable", "detail": detail })),
        ));
    }
    let now = state.clock.now_ms();
    let facts = test_facts(&cfg, now);
    let body =
        serde_json::to_vec(&json!({ "test_alert": true, "at": now, "nonce": fastrand::u64(..) }))
            .map_err(|e| ApiError::Internal(e.into()))?;
    let dedup_key = format!("test:{now}:{}", fastrand::u64(..));
    let outcome = state
        .writer
        .ingest(IngestRequest {
            forced: None,
            facts,
            stored_body: crate::store::body::StoredBody::compress(&body.clone().into()),
            body: body.into(),
            dedup_key,
            request_id: None,
            source: TEST_SOURCE,
        })
        .await?;
    test_alert_answer(outcome, &policy.notify)
}

/// Why no Critical alert can reach anyone: each channel `critical` notifies and what it lacks.
fn no_channel_for_critical(notify: &[String], channels: &Channels) -> String {
    let needs: Vec<String> = notify
        .iter()
        .map(|c| {
            let vars = channels.missing_env(c);
            if vars.is_empty() {
                format!("{c} (not a real channel)")
            } else {
                format!("{c} needs {}", vars.join(" or "))
            }
        })
        .collect();
    if needs.is_empty() {
        "No notification channel is configured to receive a Critical alert: the `critical` severity notifies no channel in routing.yaml.".to_string()
    } else {
        format!(
            "No notification channel is configured to receive a Critical alert: {}. Set the environment variable(s) and restart.",
            needs.join("; ")
        )
    }
}

/// The first value a Critical rule accepts for a list condition, `preferred` if it is one of
/// them; `preferred` when no Critical rule sets the condition.
fn critical_rule_value(
    cfg: &RoutingConfig,
    list: impl Fn(&Conditions) -> Option<&Vec<String>>,
    preferred: &str,
) -> String {
    cfg.rules
        .iter()
        .find(|r| r.severity == Severity::Critical)
        .and_then(|r| list(&r.when))
        .and_then(|e| {
            e.iter()
                .find(|n| n.as_str() == preferred)
                .or(e.first())
                .cloned()
        })
        .unwrap_or_else(|| preferred.to_string())
}

/// The synthetic alert: in an environment and at a level the Critical rule accepts.
fn test_facts(cfg: &RoutingConfig, now: i64) -> AlertFacts {
    let environment = critical_rule_value(cfg, |w| w.environments.as_ref(), "production");
    let level = critical_rule_value(cfg, |w| w.levels.as_ref(), "fatal");
    AlertFacts {
        resource: "test".into(),
        action: "triggered".into(),
        meaning: Some(Meaning::Alert),
        level: Some(level),
        environment: Some(environment),
        project: Some("paiid-alerts".into()),
        title: "Test alert from paiid-alerts: the paging path works".into(),
        culprit: Some("POST /api/test-alert".into()),
        issue_id: Some(format!("test-{now}")),
        ..AlertFacts::default()
    }
}

/// The answer to `POST /api/test-alert` once the writer has taken the alert.
fn test_alert_answer(
    outcome: IngestOutcome,
    notify: &[String],
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match outcome {
        IngestOutcome::Accepted {
            incident_id,
            severity,
            event_id,
            status: IngestStatus::Processed,
        } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "sent",
                "event_id": event_id,
                "incident_id": incident_id,
                "severity": severity.as_str(),
                "channels": notify,
                "detail": "a synthetic Critical alert is on its way; it will not escalate",
            })),
        )),
        // Not applied (it cannot be today: a test alert always opens a fresh incident); said as
        // the Sentry handler would say it rather than claimed as sent.
        IngestOutcome::Accepted {
            incident_id,
            severity,
            event_id,
            status,
        } => Ok((
            status.http_status(),
            Json(json!({
                "status": status.answer_word(),
                "event_id": event_id,
                "incident_id": incident_id,
                "severity": severity.as_str(),
            })),
        )),
        IngestOutcome::Duplicate { .. } => Err(ApiError::Conflict(
            "a test alert was just sent; try again".into(),
        )),
    }
}
