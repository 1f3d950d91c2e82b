//! Small server-rendered pages: the on-call page at `/`, an incident page, and the pages behind
//! acknowledge links. No JavaScript: a page must never act by itself.
//!
//! The HTML comes from the templates under `src/templates/pages/` (HTML-autoescaped), compiled
//! once into [`Pages`] when the router is built and shared by every request (and by the
//! ack-link pages). Handlers gather the data; [`Pages`] turns it into a [`Page`]; the page's
//! headers (CSP, no framing) are set in one place, [`Page::into_response`].

mod view;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::AppState;
use super::api::{presented_token, require_api_reader};
use super::extract::Path;
use crate::domain::{Action, Episode, IncidentId, Via};
use crate::incidents::service::ActOutcome;
use crate::incidents::transitions::{AckOutcome, Actor, ResolveOutcome};
use crate::intake::unparsed;
use crate::store::listings::{self, IncidentFilter};
pub(crate) use view::{Page, Pages, when};

pub(crate) fn router(pages: Pages) -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/ack", post(web_ack))
        .route("/incidents/{id}/resolve", post(web_resolve))
        .layer(Extension(pages))
}

/// The web pages' sign-in: when `API_TOKEN` is set, HTTP Basic with the token as password (any
/// user name, which then fills in the actor's name). Browsers ask for it and resend it on
/// every form post, so the pages need no script and no session, and reading them is exactly as
/// protected as `GET /api/incidents`. `Ok(None)` when no token is configured.
pub(crate) fn web_login(
    state: &AppState,
    pages: &Pages,
    headers: &HeaderMap,
) -> Result<Option<String>, Box<Response>> {
    if state.secrets.api_token.is_none() {
        return Ok(None);
    }
    if require_api_reader(state, headers).is_ok() {
        return Ok(presented_token(headers).and_then(|(_, user)| user));
    }
    let mut r = pages
        .message(
            StatusCode::UNAUTHORIZED,
            "Sign in",
            "Sign in with your name and the API token as password.",
        )
        .into_response();
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"paiid-alerts\", charset=\"UTF-8\""),
    );
    Err(Box::new(r))
}

async fn index(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = web_login(&state, &pages, &headers) {
        return *r;
    }
    let filter = IncidentFilter {
        limit: 200,
        ..IncidentFilter::default()
    };
    let rows = match listings::list_incidents(state.store.reader(), &filter).await {
        Ok(r) => r,
        Err(e) => {
            return pages
                .message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    &e.to_string(),
                )
                .into_response();
        }
    };
    // Sentry payloads we kept but could not read, one row per resource and shape.
    let unparsed = unparsed::recent(state.store.reader(), 50)
        .await
        .map_err(|e| e.to_string());
    pages
        .index(&rows, unparsed.as_deref().map_err(Clone::clone))
        .into_response()
}

async fn incident_page(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let user = match web_login(&state, &pages, &headers) {
        Ok(user) => user.unwrap_or_default(),
        Err(r) => return *r,
    };
    let inc = match listings::incident(state.store.reader(), id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return pages
                .message(StatusCode::NOT_FOUND, "Not found", "No such incident.")
                .into_response();
        }
        Err(e) => {
            return pages
                .message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    &e.to_string(),
                )
                .into_response();
        }
    };
    // Logged and counted by the read; the page says so instead of showing an empty timeline.
    let timeline = listings::timeline(state.store.reader(), id)
        .await
        .map_err(|e| e.to_string());
    pages.incident(&inc, timeline, &user).into_response()
}

/// Who acts from a web form: signed in (see [`web_login`]), or, for scripts, the token given as
/// the form field `api_token`.
///
/// A browser attaches Basic credentials (and reaches an intranet host) for any form post,
/// including one that a hostile page submits (cross-site request forgery), so a post that relies
/// on the browser must come from one of our own pages. A post carrying the token in the form
/// needs no such check: a hostile page cannot know the token.
fn web_actor(
    state: &AppState,
    pages: &Pages,
    headers: &HeaderMap,
    form: &str,
) -> Result<Actor, Box<Response>> {
    let token_in_form = state.secrets.api_token.as_ref().is_some_and(|expected| {
        let given = super::form::field(form, "api_token");
        crate::intake::signature::verify_token(expected.expose(), given.as_deref()).is_ok()
    });
    if !token_in_form {
        web_login(state, pages, headers)?;
        if !same_origin(headers, &state.public_url) {
            return Err(Box::new(
                pages
                    .message(
                        StatusCode::FORBIDDEN,
                        "Not allowed",
                        "This form was sent from another site. Use the incident page here.",
                    )
                    .into_response(),
            ));
        }
    }
    let by = super::form::field(form, "by")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if by.is_empty() || by.len() > 200 {
        return Err(Box::new(
            pages
                .message(
                    StatusCode::BAD_REQUEST,
                    "Name needed",
                    "Say who you are (up to 200 characters).",
                )
                .into_response(),
        ));
    }
    Ok(Actor::new(by, Via::Web))
}

/// Whether a form post comes from a page of this service, by the headers browsers add to posts
/// (`Sec-Fetch-Site`, else `Origin`, else `Referer`). A client that sends none of them is not a
/// browser, and so not a forgery vector. `Origin` (or the origin part of `Referer`) may name
/// `PUBLIC_URL` or, without a proxy in between, the `Host` asked for (a proxy often rewrites
/// `Host`). Older browsers and some privacy settings drop `Origin` but keep `Referer`, so a
/// cross-site `Referer` is refused as well.
fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let claimed = match (get("origin"), get("referer")) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => origin_of(referer),
        (None, None) => return true,
    };
    let Some((_, claimed_host)) = claimed.split_once("://") else {
        return false;
    };
    claimed.eq_ignore_ascii_case(origin_of(public_url)) || Some(claimed_host) == get("host")
}

/// `scheme://host[:port]` of a URL: what a browser sends as `Origin`.
fn origin_of(url: &str) -> &str {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "";
    };
    let authority = rest.find(['/', '?', '#']).map_or(rest.len(), |i| i);
    &url[..scheme.len() + 3 + authority]
}

/// Who acts from a web form, and on which occurrence of the incident.
fn web_form(
    state: &AppState,
    pages: &Pages,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Actor, Option<Episode>), Box<Response>> {
    let body = super::form::text(body);
    let actor = web_actor(state, pages, headers, &body)?;
    // The occurrence the page showed: a form left open across a reopen must not act on it.
    let episode = super::form::field(&body, "episode").and_then(|e| e.parse().ok());
    Ok((actor, episode))
}

async fn web_ack(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
    body: Bytes,
) -> Response {
    web_act(&state, &pages, &headers, id, &body, Action::ACKNOWLEDGE).await
}

async fn web_resolve(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
    body: Bytes,
) -> Response {
    web_act(&state, &pages, &headers, id, &body, Action::RESOLVE).await
}

async fn web_act(
    state: &AppState,
    pages: &Pages,
    headers: &HeaderMap,
    id: IncidentId,
    body: &[u8],
    action: Action,
) -> Response {
    let (actor, episode) = match web_form(state, pages, headers, body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    act_page(state, pages, id, episode, action, &actor).await
}

/// Acts and shows the result: shared by the incident page's forms and the signed links.
pub(crate) async fn act_page(
    state: &AppState,
    pages: &Pages,
    id: IncidentId,
    episode: Option<Episode>,
    action: Action,
    actor: &Actor,
) -> Response {
    let failed = match action {
        Action::Resolve { .. } => "Not resolved",
        Action::Acknowledge { .. } | Action::Note { .. } => "Not acknowledged",
    };
    match state.incidents.act(id, episode, action, actor).await {
        Ok((outcome, inc)) => pages.ack_result(&inc, &outcome_words(&outcome)),
        Err(e) => pages.service_error(failed, &e),
    }
    .into_response()
}

/// What the page says an action did.
pub(crate) fn outcome_words(outcome: &ActOutcome) -> String {
    match outcome {
        ActOutcome::Acknowledge(o) => ack_words(o),
        ActOutcome::Resolve(o) => resolve_words(o),
        ActOutcome::Noted => "Root-cause note saved.".to_string(),
    }
}

fn ack_words(outcome: &AckOutcome) -> String {
    match outcome {
        AckOutcome::Acknowledged => "Acknowledged. Escalation is stopped.".to_string(),
        AckOutcome::AlreadyAcknowledged { by, at } => format!(
            "Already acknowledged by {} at {}.",
            by.as_deref().unwrap_or("someone"),
            at.map(when).unwrap_or_default()
        ),
        AckOutcome::AlreadyResolved { by, at } => format!(
            "Already resolved by {} at {}.",
            by.as_deref().unwrap_or("someone"),
            at.map(when).unwrap_or_default()
        ),
    }
}

fn resolve_words(outcome: &ResolveOutcome) -> String {
    match outcome {
        ResolveOutcome::Resolved => {
            "Resolved. A post-mortem summary is on its way to the alerts channel.".to_string()
        }
        ResolveOutcome::AlreadyResolved { by, at } => format!(
            "Already resolved by {} at {}.",
            by.as_deref().unwrap_or("someone"),
            at.map(when).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests;
