//! `POST /webhooks/sentry`: integration-platform webhooks and the legacy WebHooks plugin.
//!
//! Order matters: read the raw body (bounded), authenticate it, parse the few fields we need,
//! then wait for the group commit. Nothing is stored for a request that fails any step, and a
//! 2xx is only sent once the event is on disk.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::error::ApiError;
use super::{AppState, BODY_LIMIT};
use crate::domain::IngestStatus;
use crate::incidents::writer::{IngestOutcome, IngestRequest};
use crate::intake::envelope::Rejection;
use crate::intake::signature::{verify_sentry_signature, verify_token};
use crate::intake::{self, sentry};
use crate::store::body::StoredBody;

/// Sentry gives a webhook about a second; past this we answer 503 and let its retry (which our
/// dedup key recognizes) finish the job.
const COMMIT_WAIT: Duration = Duration::from_secs(5);

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/webhooks/sentry", post(receive))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    super::form::parse(query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Reads at most `BODY_LIMIT` bytes; a larger body is a 413, not a crash or a partial read.
pub(crate) async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::PayloadTooLarge { limit: BODY_LIMIT }
        } else {
            ApiError::bad_request(
                "unreadable_body",
                format!("could not read the request body: {e}"),
            )
        }
    })
}

/// Answers a webhook, and counts an answer slower than Sentry's 1 s timeout or a 5xx against
/// Sentry's contract (the pipeline watch raises a Critical before Sentry gives up on us).
async fn receive(
    State(state): State<AppState>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let response = answer(&state, query, headers, body).await.into_response();
    state.metrics.intake_answered(
        response.status().as_u16(),
        started.elapsed(),
        state.clock.now_ms(),
    );
    response
}

async fn answer(
    state: &AppState,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(len) = header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok())
        && len > BODY_LIMIT
    {
        return Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT });
    }
    let body = read_body(body).await?;
    let resource = header(&headers, "sentry-hook-resource");
    authenticate(state, resource, &headers, query.as_deref(), &body)?;

    let facts = sentry::parse(resource, &body).map_err(parse_error)?;
    // Told back to Sentry (and whoever reads its delivery log) with the 202.
    let unreadable = facts.unreadable.as_ref().map(|u| u.reason.clone());
    let metric_resource = metric_label(&facts.resource);
    let dedup_key = intake::dedup_key(&facts, &body);
    let request = IngestRequest {
        forced: None,
        facts,
        stored_body: StoredBody::compress(&body),
        body,
        dedup_key,
        request_id: header(&headers, "request-id").map(str::to_string),
        source: if resource.is_some() {
            "sentry"
        } else {
            "sentry-legacy"
        },
    };
    let outcome = tokio::time::timeout(COMMIT_WAIT, state.writer.ingest(request))
        .await
        .map_err(|_| ApiError::Unavailable("storage is slow; retry later".into()))??;
    let label = match &outcome {
        IngestOutcome::Duplicate { .. } => "duplicate",
        IngestOutcome::Accepted { status, .. } => status.as_str(),
    };
    state.metrics.webhook(label);
    if let IngestOutcome::Accepted {
        status: IngestStatus::Unparsed,
        ..
    } = outcome
    {
        state.metrics.intake_unparsed(metric_resource);
    }
    Ok(match outcome {
        IngestOutcome::Duplicate { event_id } => (
            StatusCode::OK,
            Json(json!({ "status": "duplicate", "event_id": event_id })),
        )
            .into_response(),
        IngestOutcome::Accepted {
            event_id,
            incident_id,
            severity,
            status,
        } => {
            let mut answer = json!({
                "status": status.answer_word(),
                "event_id": event_id,
                "incident_id": incident_id,
                "severity": severity.as_str(),
            });
            if status == IngestStatus::Unparsed
                && let Some(reason) = unreadable
            {
                answer["detail"] = format!("stored, but not read: {reason}").into();
            }
            (status.http_status(), Json(answer)).into_response()
        }
    })
}

/// A body that is not Sentry's says what it lacks; malformed JSON says where it breaks.
pub(crate) fn parse_error(e: sentry::ParseError) -> ApiError {
    match e {
        sentry::ParseError::NotSentry(r @ Rejection::TooDeep) => {
            ApiError::bad_request("too_deep", r.to_string())
        }
        sentry::ParseError::NotSentry(r @ Rejection::NotSentry { .. }) => {
            ApiError::bad_request("not_a_sentry_payload", r.to_string())
        }
        e => ApiError::bad_request(
            "invalid_json",
            format!("the body is not a Sentry webhook payload: {e}"),
        ),
    }
}

/// The resources Sentry documents; anything else shares one label, so a metric cannot grow a
/// series per made-up header value.
fn metric_label(resource: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "event_alert",
        "metric_alert",
        "issue",
        "error",
        "installation",
        "comment",
        "legacy",
    ];
    KNOWN
        .iter()
        .find(|k| **k == resource)
        .copied()
        .unwrap_or("other")
}

fn authenticate(
    state: &AppState,
    resource: Option<&str>,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    let secrets = &state.secrets;
    match resource {
        Some(_) => match &secrets.sentry_client_secret {
            Some(secret) => verify_sentry_signature(secret.expose().as_bytes(), header(headers, "sentry-hook-signature"), body)
                .map_err(|e| ApiError::Unauthorized(e.to_string())),
            None if secrets.sentry_webhook_token.is_some() => verify_token(
                secrets.sentry_webhook_token.as_ref().map(|s| s.expose()).unwrap_or_default(),
                query_param(query, "token").as_deref(),
            )
            .map_err(|e| ApiError::Unauthorized(e.to_string())),
            None => Ok(()),
        },
        // The legacy plugin signs nothing: only the URL token can vouch for it. With a client
        // secret but no token, accepting it would let anyone skip the signature by dropping
        // the Sentry headers.
        None => match (&secrets.sentry_webhook_token, &secrets.sentry_client_secret) {
            (Some(token), _) => verify_token(token.expose(), query_param(query, "token").as_deref())
                .map_err(|e| ApiError::Unauthorized(e.to_string())),
            (None, Some(_)) => Err(ApiError::Unauthorized(
                "unsigned webhook without Sentry-Hook-Resource: legacy WebHooks plugin requests need SENTRY_WEBHOOK_TOKEN (?token=)".into(),
            )),
            (None, None) => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(
            query_param(Some("a=1&token=ab%2Fc"), "token").as_deref(),
            Some("ab/c")
        );
        assert_eq!(query_param(Some("token="), "token").as_deref(), Some(""));
        assert_eq!(query_param(None, "token"), None);
    }
}
