//! `GET|POST /ack/{token}`: signed acknowledge links from Slack messages and emails.
//!
//! GET only shows a confirmation page: Slack's unfurler and mail scanners fetch every link, and
//! a false acknowledgement would silently stop an escalation. Only the form's POST acts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::AppState;
use super::extract::Path;
use super::pages::{Page, Pages, act_page};
use crate::auth::ack_token::{AckAction, AckClaims, TokenError};
use crate::domain::{Action, Via};
use crate::incidents::model::Incident;
use crate::incidents::transitions::Actor;
use crate::store::listings;

/// `pages`: the page templates, shared with `pages::router`.
pub(crate) fn router(pages: Pages) -> Router<AppState> {
    Router::new()
        .route("/ack/{token}", get(confirm).post(act))
        .layer(Extension(pages))
}

fn token_error_page(pages: &Pages, e: &TokenError) -> Page {
    match e {
        TokenError::Expired => pages.message(
            StatusCode::GONE,
            "This link has expired",
            "Acknowledge links are valid for 7 days. Use the incident page or a newer message.",
        ),
        TokenError::Malformed => pages.message(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            "The link is damaged or incomplete.",
        ),
        TokenError::UnknownKey | TokenError::BadSignature => pages.message(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            "The link's signature does not match. Nothing was changed.",
        ),
    }
}

/// Verifies the token and loads its incident; the page to show when either fails.
async fn load(state: &AppState, pages: &Pages, token: &str) -> Result<(AckClaims, Incident), Page> {
    let now = state.clock.now_ms() / 1000;
    let claims = state
        .ack_keys
        .verify(token, now)
        .map_err(|e| token_error_page(pages, &e))?;
    match listings::incident(state.store.reader(), claims.incident).await {
        Ok(Some(inc)) => Ok((claims, inc)),
        Ok(None) => Err(pages.message(
            StatusCode::NOT_FOUND,
            "Incident not found",
            "This incident no longer exists.",
        )),
        Err(e) => Err(pages.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &e.to_string(),
        )),
    }
}

/// A link from an earlier episode must not act on the reopened incident.
fn stale(pages: &Pages, claims: &AckClaims, inc: &Incident) -> Option<Page> {
    (claims.ver != inc.episode).then(|| pages.stale_link(inc))
}

async fn confirm(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    Path(token): Path<String>,
) -> Response {
    let (claims, inc) = match load(&state, &pages, &token).await {
        Ok(v) => v,
        Err(page) => return page.into_response(),
    };
    if let Some(p) = stale(&pages, &claims, &inc) {
        return p.into_response();
    }
    let (verb, label) = match claims.action {
        AckAction::Acknowledge => ("acknowledge", "Acknowledge"),
        AckAction::Resolve => ("resolve", "Resolve"),
    };
    pages
        .ack_confirm(&inc, verb, label, claims.action == AckAction::Acknowledge)
        .into_response()
}

async fn act(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let body = super::form::text(&body);
    let (claims, inc) = match load(&state, &pages, &token).await {
        Ok(v) => v,
        Err(page) => return page.into_response(),
    };
    if let Some(p) = stale(&pages, &claims, &inc) {
        return p.into_response();
    }
    let typed = super::form::field(&body, "by")
        .map(|s| s.trim().chars().take(200).collect::<String>())
        .unwrap_or_default();
    let name = if typed.is_empty() {
        format!("{} link", claims.recipient)
    } else {
        typed
    };
    let actor = Actor::new(name, Via::Link);
    let action = match claims.action {
        AckAction::Acknowledge => Action::ACKNOWLEDGE,
        AckAction::Resolve => Action::RESOLVE,
    };
    // The episode is checked again inside the transaction: a reopen may land in between.
    let (id, episode) = (inc.id, Some(claims.ver));
    act_page(&state, &pages, id, episode, action, &actor).await
}
