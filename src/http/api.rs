//! `/api/incidents`: list, show (with timeline), acknowledge, resolve, root-cause note.
//! `API_TOKEN` (bearer, or Basic password) when set.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Json as JsonBody, Path, Query};
use crate::clock::ms_to_datetime;
use crate::domain::{
    Action, Episode, IncidentId, IncidentKind, IncidentState, Severity, SilenceId, Via,
};
use crate::incidents::model::Incident;
use crate::incidents::transitions::Actor;
use crate::store::listings::{self, IncidentFilter};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/incidents", get(list))
        .route("/api/incidents/{id}", get(show))
        .route("/api/incidents/{id}/ack", post(ack))
        .route("/api/incidents/{id}/resolve", post(resolve))
        .route("/api/incidents/{id}/note", post(note))
}

/// Reading (`GET`): the API token in constant time, when one is configured, as `Authorization:
/// Bearer <API_TOKEN>` or as HTTP Basic with the token as password (what a browser signed in to
/// the web pages sends, so their JSON links work).
pub(crate) fn require_api_reader(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_token(state, presented_token(headers).map(|(token, _)| token))
}

/// Acting (`POST`): the bearer token only. A browser re-sends Basic credentials on any request
/// to this host, including one a hostile page makes (cross-site request forgery); it never
/// invents an `Authorization: Bearer` header.
pub(crate) fn require_api_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let bearer = presented_token(headers).and_then(|(token, user)| user.is_none().then_some(token));
    check_token(state, bearer)
}

fn check_token(state: &AppState, given: Option<String>) -> Result<(), ApiError> {
    let Some(expected) = &state.secrets.api_token else {
        return Ok(());
    };
    crate::intake::signature::verify_token(expected.expose(), given.as_deref()).map_err(|_| {
        ApiError::Unauthorized(
            "missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)".into(),
        )
    })
}

/// The token a request presents, and the Basic user name if it came that way.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((credentials.to_string(), None));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(credentials).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((password.to_string(), Some(user.trim().to_string())))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    severity: Option<String>,
    limit: Option<i64>,
    before: Option<IncidentId>,
}

/// The API view of an incident: times as RFC 3339.
#[derive(Serialize)]
pub(crate) struct IncidentView {
    id: IncidentId,
    severity: Severity,
    state: IncidentState,
    episode: Episode,
    title: String,
    project: Option<String>,
    environment: Option<String>,
    level: Option<String>,
    culprit: Option<String>,
    rule: Option<String>,
    sentry_rule: Option<String>,
    sentry_issue_id: Option<String>,
    sentry_url: Option<String>,
    release: Option<String>,
    metric_value: Option<f64>,
    event_count: i64,
    first_seen: String,
    last_seen: String,
    opened_at: String,
    assignee: Option<String>,
    acknowledged_at: Option<String>,
    acknowledged_by: Option<String>,
    acknowledged_via: Option<Via>,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    resolved_via: Option<Via>,
    root_cause: Option<String>,
    /// Sentry's Seer: the root cause it found and the pull request it opened.
    seer_root_cause: Option<String>,
    seer_pr_url: Option<String>,
    /// When the escalation fires (a triggered incident).
    next_escalation_at: Option<String>,
    /// When the acknowledgement expires (an acknowledged one, under `ack_timeout`).
    ack_expires_at: Option<String>,
    /// When no notification of this episode was confirmed delivered in time (`confirm_within`)
    /// and the escalation targets were paged early.
    delivery_degraded_at: Option<String>,
    escalations_fired: i64,
    policy: Value,
    /// The silence holding its notifications and escalation (`/api/silences/{id}`).
    silenced_by: Option<SilenceId>,
    /// `issue`, or `storm`: a group standing for many incidents (its `members`).
    kind: IncidentKind,
    /// The storm this incident belongs to, which pages for it.
    storm_id: Option<IncidentId>,
}

fn rfc3339(ms: i64) -> String {
    ms_to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        Self {
            id: i.id,
            severity: i.severity,
            state: i.state,
            episode: i.episode,
            title: i.title.clone(),
            project: i.project.clone(),
            environment: i.environment.clone(),
            level: i.level.clone(),
            culprit: i.culprit.clone(),
            rule: i.rule.clone(),
            sentry_rule: i.sentry_rule.clone(),
            sentry_issue_id: i.sentry_issue_id.clone(),
            sentry_url: i.sentry_url.clone(),
            release: i.release.clone(),
            metric_value: i.metric_value,
            event_count: i.event_count,
            first_seen: rfc3339(i.first_seen),
            last_seen: rfc3339(i.last_seen),
            opened_at: rfc3339(i.opened_at),
            assignee: i.assignee.clone(),
            acknowledged_at: i.acknowledged_at.map(rfc3339),
            acknowledged_by: i.acknowledged_by.clone(),
            acknowledged_via: i.acknowledged_via,
            resolved_at: i.resolved_at.map(rfc3339),
            resolved_by: i.resolved_by.clone(),
            resolved_via: i.resolved_via,
            root_cause: i.root_cause.clone(),
            seer_root_cause: i.seer_root_cause.clone(),
            seer_pr_url: i.seer_pr_url.clone(),
            next_escalation_at: i.escalation_due().map(rfc3339),
            ack_expires_at: i.ack_expires_at().map(rfc3339),
            delivery_degraded_at: i.delivery_degraded_at.map(rfc3339),
            escalations_fired: i.escalation_step,
            policy: serde_json::to_value(&i.policy).unwrap_or(Value::Null),
            silenced_by: i.silenced_by,
            kind: i.kind,
            storm_id: i.storm_id,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require_api_reader(&state, &headers)?;
    let state_is = match &q.state {
        Some(s) => Some(IncidentState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "bad_query",
                format!("unknown state `{s}` (triggered, acknowledged, resolved, muted)"),
            )
        })?),
        None => None,
    };
    let severity_is = match &q.severity {
        Some(s) => Some(Severity::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "bad_query",
                format!("unknown severity `{s}` (critical, high, medium, low, unclassified)"),
            )
        })?),
        None => None,
    };
    let filter = IncidentFilter {
        state: state_is,
        severity: severity_is,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        before_id: q.before,
    };
    let rows = listings::list_incidents(state.store.reader(), &filter).await?;
    // A row that does not decode is listed by id with why, not dropped and not a default.
    let views: Vec<Value> = rows
        .iter()
        .map(|r| match r {
            Ok(inc) => json!(IncidentView::from(inc)),
            Err(e) => json!({ "id": e.id, "unreadable": e.to_string() }),
        })
        .collect();
    Ok(Json(json!({ "incidents": views })))
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
) -> Result<Json<Value>, ApiError> {
    require_api_reader(&state, &headers)?;
    let inc = listings::incident(state.store.reader(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("incident {id} not found")))?;
    let timeline = listings::timeline(state.store.reader(), id).await?;
    let timeline: Vec<Value> = timeline
        .into_iter()
        .map(|t| json!({ "at": rfc3339(t.at), "kind": t.kind, "actor": t.actor, "via": t.via, "detail": t.detail }))
        .collect();
    let deliveries = crate::store::deliveries::for_incident(state.store.reader(), id).await?;
    let mut body =
        serde_json::to_value(IncidentView::from(&inc)).map_err(|e| ApiError::Internal(e.into()))?;
    body["timeline"] = Value::Array(timeline);
    body["deliveries"] =
        serde_json::to_value(deliveries).map_err(|e| ApiError::Internal(e.into()))?;
    if inc.kind == IncidentKind::Storm {
        let members = listings::storm_member_ids(state.store.reader(), id).await?;
        body["members"] = json!(members);
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ActionBody {
    pub by: Option<String>,
    pub note: Option<String>,
    /// Act only if the incident is still at this occurrence (409 otherwise).
    pub episode: Option<Episode>,
}

fn actor_name(body: &ActionBody) -> Result<String, ApiError> {
    let by = body.by.as_deref().map(str::trim).unwrap_or("");
    if by.is_empty() {
        return Err(ApiError::bad_request(
            "missing_field",
            "`by` (who is acting) is required",
        ));
    }
    if by.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`by` is longer than 200 characters",
        ));
    }
    Ok(by.to_string())
}

/// The root-cause note given with an acknowledgement or resolution (a blank one is none).
fn optional_note(body: &ActionBody) -> Option<String> {
    body.note.clone().filter(|n| !n.trim().is_empty())
}

async fn ack(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&state, &headers)?;
    let action = Action::Acknowledge {
        root_cause: optional_note(&body),
    };
    act(&state, id, &body, action).await
}

async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&state, &headers)?;
    let action = Action::Resolve {
        root_cause: optional_note(&body),
    };
    act(&state, id, &body, action).await
}

async fn note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&state, &headers)?;
    let text = body.note.as_deref().map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "missing_field",
            "`note` (the root-cause note) is required",
        ));
    }
    if text.len() > 10_000 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`note` is longer than 10000 characters",
        ));
    }
    let action = Action::Note {
        root_cause: text.to_string(),
    };
    act(&state, id, &body, action).await
}

async fn act(
    state: &AppState,
    id: IncidentId,
    body: &ActionBody,
    action: Action,
) -> Result<Json<Value>, ApiError> {
    let actor = Actor::new(actor_name(body)?, Via::Api);
    let (outcome, inc) = state
        .incidents
        .act(id, body.episode, action, &actor)
        .await?;
    Ok(Json(
        json!({ "result": outcome.word(), "incident": IncidentView::from(&inc) }),
    ))
}
