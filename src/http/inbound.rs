//! Acknowledgements from other tools: Slack buttons (`POST /slack/interactions`) and PagerDuty
//! webhooks v3 (`POST /webhooks/pagerduty`). Both verify a signature over the raw body before
//! reading anything from it.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::sentry::read_body;
use crate::auth::pagerduty_signature::verify_pagerduty_signature;
use crate::auth::slack_signature::verify_slack_request;
use crate::domain::{Action, Episode, IncidentId, Via};
use crate::incidents::service::{PagerDutyAction, PagerDutyEvent, PagerDutyOutcome, ServiceError};
use crate::incidents::transitions::Actor;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/slack/interactions", post(slack_interaction))
        .route("/webhooks/pagerduty", post(pagerduty_webhook))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A Slack interaction (`block_actions` and the kinds we ignore), as read from the form body.
#[derive(Debug, Deserialize)]
pub struct SlackPayload {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub user: SlackUser,
    #[serde(default)]
    pub actions: Vec<SlackAction>,
}

#[derive(Debug, Deserialize, Default)]
pub struct SlackUser {
    pub id: Option<String>,
    pub username: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SlackAction {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// Reads a Slack interaction body (already signature-checked): the `payload` form field holds
/// the JSON. Public, and apart from the handler, so fuzzing and property tests reach exactly
/// what hostile bodies reach.
pub fn parse_slack_interaction(body: &[u8]) -> Result<SlackPayload, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("invalid_form", "the body is not UTF-8"))?;
    let payload = super::form::field(text, "payload")
        .ok_or_else(|| ApiError::bad_request("invalid_form", "no `payload` field"))?;
    serde_json::from_str(&payload)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("payload: {e}")))
}

/// Slack wants an answer within 3 s; an acknowledgement is one short transaction, and the
/// message update and thread reply go through the outbox.
async fn slack_interaction(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Some(secret) = &state.secrets.slack_signing_secret else {
        return Err(ApiError::Unavailable(
            "Slack interactivity needs SLACK_SIGNING_SECRET".into(),
        ));
    };
    let body = read_body(body).await?;
    verify_slack_request(
        secret.expose().as_bytes(),
        header(&headers, "x-slack-request-timestamp"),
        header(&headers, "x-slack-signature"),
        &body,
        state.clock.now_ms() / 1000,
    )
    .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let payload = parse_slack_interaction(&body)?;
    if payload.kind != "block_actions" {
        return Ok(Json(json!({ "ok": true, "ignored": payload.kind })));
    }
    let who = payload
        .user
        .name
        .or(payload.user.username)
        .or(payload.user.id)
        .unwrap_or_else(|| "someone on Slack".into());
    let actor = Actor::new(who, Via::Slack);
    let mut done = Vec::new();
    for action in payload.actions {
        // Link buttons (open Sentry, the ack page) also report clicks: only ours act. Their
        // value is `{incident}:{episode}` (just `{incident}` on messages from before episodes
        // were named).
        let Some((id, episode)) = action.value.as_deref().and_then(button_target) else {
            continue;
        };
        let (act, word) = match action.action_id.as_str() {
            "ack" => (Action::ACKNOWLEDGE, "acknowledged"),
            "resolve" => (Action::RESOLVE, "resolved"),
            _ => continue,
        };
        let result = state
            .incidents
            .act(id, episode, act, &actor)
            .await
            .map(|_| word);
        // A button on a card from an earlier occurrence (or about an incident this database does
        // not have) does nothing; Slack is still answered 200, or it shows the person an error
        // they cannot act on.
        let result = match result {
            Err(ServiceError::StaleEpisode { .. }) => "stale",
            Err(ServiceError::NotFound(_)) => "unknown_incident",
            other => other?,
        };
        done.push(json!({ "incident": id, "action": action.action_id, "result": result }));
    }
    Ok(Json(json!({ "ok": true, "handled": done })))
}

/// `"42:3"` -> (42, Some(3)); `"42"` -> (42, None).
pub fn button_target(value: &str) -> Option<(IncidentId, Option<Episode>)> {
    let value = value.trim();
    match value.split_once(':') {
        Some((id, episode)) => Some((id.parse().ok()?, Some(episode.parse().ok()?))),
        None => Some((value.parse().ok()?, None)),
    }
}

#[derive(Deserialize)]
struct PdEnvelope {
    event: PdEvent,
}

/// One PagerDuty webhook v3 event, as read from the body.
#[derive(Debug, Deserialize)]
pub struct PdEvent {
    #[serde(default)]
    pub id: Option<String>,
    pub event_type: String,
    #[serde(default)]
    pub agent: Option<PdRef>,
    #[serde(default)]
    pub data: Value,
}

#[derive(Debug, Deserialize)]
pub struct PdRef {
    pub summary: Option<String>,
}

impl PdEvent {
    /// The dedup key we gave PagerDuty (`paiid-alerts-{incident}-{episode}`), if any.
    pub fn incident_key(&self) -> Option<&str> {
        self.data["incident_key"].as_str()
    }

    /// PagerDuty's own incident id.
    pub fn pagerduty_incident_id(&self) -> Option<&str> {
        self.data["id"].as_str()
    }
}

/// Reads a PagerDuty webhook body (already signature-checked). Public for the same reason as
/// [`parse_slack_interaction`].
pub fn parse_pagerduty_webhook(body: &[u8]) -> Result<PdEvent, ApiError> {
    let envelope: PdEnvelope = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("not a PagerDuty webhook: {e}"))
    })?;
    Ok(envelope.event)
}

async fn pagerduty_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(secret) = &state.secrets.pagerduty_webhook_secret else {
        return Err(ApiError::Unavailable(
            "PagerDuty webhooks need PAGERDUTY_WEBHOOK_SECRET".into(),
        ));
    };
    let body = read_body(body).await?;
    verify_pagerduty_signature(
        secret.expose().as_bytes(),
        header(&headers, "x-pagerduty-signature"),
        &body,
    )
    .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let event = parse_pagerduty_webhook(&body)?;
    if event.event_type == "pagey.ping" {
        return Ok((StatusCode::OK, Json(json!({ "status": "pong" }))));
    }
    // The signed event id first: the `X-Webhook-Id` header is not covered by the signature, so
    // a replayed body with a fresh header would otherwise pass as new.
    let webhook_id = event
        .id
        .clone()
        .or_else(|| header(&headers, "x-webhook-id").map(str::to_string));
    let action = match event.event_type.as_str() {
        "incident.acknowledged" => Some(PagerDutyAction::Acknowledge),
        "incident.resolved" => Some(PagerDutyAction::Resolve),
        _ => None,
    };
    let request = PagerDutyEvent {
        webhook_id,
        action,
        incident_key: event.incident_key().map(str::to_string),
        pagerduty_id: event.pagerduty_incident_id().map(str::to_string),
        agent: event.agent.and_then(|a| a.summary),
    };
    // Events about incidents this service does not know (another service's, or ones deleted
    // here) are answered 2xx: PagerDuty retries anything else and would eventually disable the
    // subscription.
    let answer = match state.incidents.pagerduty_event(&request).await? {
        PagerDutyOutcome::Duplicate => json!({ "status": "duplicate" }),
        PagerDutyOutcome::Ignored => {
            json!({ "status": "ignored", "event_type": event.event_type })
        }
        PagerDutyOutcome::UnknownIncident => json!({ "status": "unknown_incident" }),
        PagerDutyOutcome::StaleEpisode => json!({ "status": "stale_episode" }),
        PagerDutyOutcome::Acted { incident, action } => {
            let status = match action {
                PagerDutyAction::Acknowledge => "acknowledged",
                PagerDutyAction::Resolve => "resolved",
            };
            json!({ "status": status, "incident_id": incident })
        }
    };
    Ok((StatusCode::OK, Json(answer)))
}
