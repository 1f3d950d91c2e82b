//! `GET|POST /ack/{token}`: signed acknowledge links from Slack messages and emails.
//!
//! GET only shows a confirmation page: Slack's unfurler and mail scanners fetch every link, and
//! a false acknowledgement would silently stop an escalation. Only the form's POST acts.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::AppState;
use super::extract::Path;
use super::pages::{
    ack_result_page, ack_words, esc, page, resolve_words, service_error_page, summary_table,
};
use crate::auth::ack_token::{AckAction, AckClaims, TokenError};
use crate::incidents::model::Incident;
use crate::incidents::transitions::Actor;
use crate::store::misc;

pub fn router() -> Router<AppState> {
    Router::new().route("/ack/{token}", get(confirm).post(act))
}

fn token_error_page(e: &TokenError) -> Response {
    match e {
        TokenError::Expired => page(
            StatusCode::GONE,
            "This link has expired",
            "<p>Acknowledge links are valid for 7 days. Use the incident page or a newer message.</p>",
        ),
        TokenError::Malformed => page(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            "<p>The link is damaged or incomplete.</p>",
        ),
        TokenError::UnknownKey | TokenError::BadSignature => page(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            "<p>The link's signature does not match. Nothing was changed.</p>",
        ),
    }
}

/// Verifies the token and loads its incident; the page to show when either fails.
async fn load(state: &AppState, token: &str) -> Result<(AckClaims, Incident), Response> {
    let now = state.clock.now_ms() / 1000;
    let claims = state
        .ack_keys
        .verify(token, now)
        .map_err(|e| token_error_page(&e))?;
    match misc::incident(&state.store.read, claims.incident).await {
        Ok(Some(inc)) => Ok((claims, inc)),
        Ok(None) => Err(page(
            StatusCode::NOT_FOUND,
            "Incident not found",
            "<p>This incident no longer exists.</p>",
        )),
        Err(e) => Err(page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &esc(&e.to_string()),
        )),
    }
}

/// A link from an earlier episode must not act on the reopened incident.
fn stale(claims: &AckClaims, inc: &Incident) -> Option<Response> {
    (claims.ver != inc.episode).then(|| {
        page(
            StatusCode::CONFLICT,
            "This link is for an earlier occurrence",
            &format!(
                "<p>The incident was resolved and has fired again since this link was sent. Use the newest message or the \
                 <a href=\"/incidents/{}\">incident page</a>.</p>{}",
                inc.id,
                summary_table(inc)
            ),
        )
    })
}

async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let (claims, inc) = match load(&state, &token).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    if let Some(p) = stale(&claims, &inc) {
        return p;
    }
    let (verb, label) = match claims.action {
        AckAction::Acknowledge => ("acknowledge", "Acknowledge"),
        AckAction::Resolve => ("resolve", "Resolve"),
    };
    let status = match (
        &inc.acknowledged_by,
        inc.acknowledged_at,
        inc.state.as_str(),
    ) {
        (_, _, "resolved") => format!(
            "<p>Already resolved by {}.</p>",
            esc(inc.resolved_by.as_deref().unwrap_or("someone"))
        ),
        (Some(by), Some(at), "acknowledged") if claims.action == AckAction::Acknowledge => {
            format!(
                "<p>Already acknowledged by {} at {}.</p>",
                esc(by),
                super::pages::when(at)
            )
        }
        _ => format!(
            "<form method=\"post\"><input name=\"by\" placeholder=\"Your name\" maxlength=\"200\">\
             <button type=\"submit\">{label}</button></form><p class=\"muted\">Confirm to {verb} incident #{}.</p>",
            inc.id
        ),
    };
    page(
        StatusCode::OK,
        &format!("{label} incident #{}?", inc.id),
        &format!("{}{status}", summary_table(&inc)),
    )
}

async fn act(State(state): State<AppState>, Path(token): Path<String>, body: Bytes) -> Response {
    let body = super::form::text(&body);
    let (claims, inc) = match load(&state, &token).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    if let Some(p) = stale(&claims, &inc) {
        return p;
    }
    let typed = super::form::field(&body, "by")
        .map(|s| s.trim().chars().take(200).collect::<String>())
        .unwrap_or_default();
    let name = if typed.is_empty() {
        format!("{} link", claims.recipient)
    } else {
        typed
    };
    let actor = Actor::new(name, "link");
    match claims.action {
        // The episode is checked again inside the transaction: a reopen may land in between.
        AckAction::Acknowledge => {
            match state
                .incidents
                .acknowledge(inc.id, Some(claims.ver), &actor)
                .await
            {
                Ok((outcome, inc)) => ack_result_page(&inc, &ack_words(&outcome)),
                Err(e) => service_error_page("Not acknowledged", &e),
            }
        }
        AckAction::Resolve => {
            match state
                .incidents
                .resolve(inc.id, Some(claims.ver), &actor)
                .await
            {
                Ok((outcome, inc)) => ack_result_page(&inc, &resolve_words(&outcome)),
                Err(e) => service_error_page("Not resolved", &e),
            }
        }
    }
}
