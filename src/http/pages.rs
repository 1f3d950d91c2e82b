//! Server-rendered pages: the on-call page at `/` (open incidents by urgency, filters, resolved
//! ones by page), an incident page (the whole story), `/deliveries` (dead letters, Retry), and
//! the pages behind acknowledge links.
//!
//! A little script, `/assets/app.js`, only displays: it ticks the escalation countdowns and
//! reloads `/` every few seconds. It never acts (every change is a form the person submits), it
//! is the only script the Content-Security-Policy allows (no inline script), and every page
//! works without it: the countdowns are rendered by the server and `/` falls back to a
//! `<noscript>` meta refresh.
//!
//! The HTML comes from the templates under `src/templates/pages/` (HTML-autoescaped), compiled
//! once into [`Pages`] when the router is built and shared by every request (and by the
//! ack-link pages). Handlers gather the data; [`Pages`] turns it into a [`Page`]; the page's
//! headers (CSP, no framing) are set in one place, [`Page::into_response`].

mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::header::{CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Deserializer};

use super::AppState;
use super::api::{presented_token, require_api_reader};
use super::extract::Path;
use crate::config::RoutingConfig;
use crate::domain::{
    Action, DeliveryId, Episode, IncidentId, IncidentKind, IncidentState, Severity, Via,
};
use crate::incidents::service::ActOutcome;
use crate::incidents::transitions::{AckOutcome, Actor, ResolveOutcome};
use crate::intake::details::EventDetails;
use crate::intake::unparsed;
use crate::store::deliveries::{self, Requeue};
use crate::store::listings::{self, PageFilter};
use view::{DeliveriesView, IncidentData, IncidentPageView, IndexData, IndexView};
pub(crate) use view::{Page, Pages, when};

pub(crate) fn router(pages: Pages) -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/ack", post(web_ack))
        .route("/incidents/{id}/resolve", post(web_resolve))
        .route("/deliveries", get(deliveries_page))
        .route("/deliveries/{id}/retry", post(web_retry))
        .route("/assets/app.js", get(app_js))
        .layer(Extension(pages))
}

/// The pages' only script (see the module doc): it displays, never acts.
const APP_JS: &str = include_str!("../templates/pages/app.js");

async fn app_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
            (
                axum::http::header::HeaderName::from_static("x-content-type-options"),
                "nosniff",
            ),
        ],
        APP_JS,
    )
        .into_response()
}

/// The routing file in force, for the parts of a page that explain it.
fn routing(state: &AppState) -> Arc<RoutingConfig> {
    state.cfg.load()
}

/// Resolved incidents per page of `/`.
const RESOLVED_PER_PAGE: u32 = 25;
/// Open incidents `/` lists at most (the filter narrows them).
const OPEN_LIMIT: i64 = 500;
/// Members a storm's page lists at most (the page says how many it leaves out).
const STORM_MEMBERS_LIMIT: i64 = 1000;
/// The longest root-cause note a form may carry (as the API's).
const MAX_ROOT_CAUSE_CHARS: usize = 10_000;

/// `/?state=..&severity=..&project=..&environment=..&q=..&page=N`. An empty value (the form's
/// "any") is no filter; a word that names no state or severity, an unknown parameter or a page
/// that is not a positive number is a 400 that says which.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexQuery {
    #[serde(default, deserialize_with = "word")]
    state: Option<IncidentState>,
    #[serde(default, deserialize_with = "word")]
    severity: Option<Severity>,
    #[serde(default, deserialize_with = "word")]
    project: Option<String>,
    #[serde(default, deserialize_with = "word")]
    environment: Option<String>,
    #[serde(default, deserialize_with = "word")]
    q: Option<String>,
    #[serde(default, deserialize_with = "page_number")]
    page: Option<std::num::NonZeroU32>,
}

/// A query value read with its type's `FromStr` (whose error names the allowed words); blank
/// is none.
fn word<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw: Option<String> = Option::deserialize(d)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A page number: a positive whole number; blank is the first page.
fn page_number<'de, D>(d: D) -> Result<Option<std::num::NonZeroU32>, D::Error>
where
    D: Deserializer<'de>,
{
    whole_number(d, "a positive whole number")
}

/// A delivery's number, as `/deliveries?requeued=N` carries it.
fn delivery_number<'de, D>(d: D) -> Result<Option<DeliveryId>, D::Error>
where
    D: Deserializer<'de>,
{
    whole_number(d, "a delivery number")
}

/// A number read with its type's `FromStr`, whose own error ("number would be zero for
/// non-zero type") would not tell a reader what to type instead.
fn whole_number<'de, D, T>(d: D, what: &str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
{
    let raw: Option<String> = Option::deserialize(d)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not {what}"))),
    }
}

/// The channels that only reach the log now, with why: their deliveries are shown as logged,
/// never as sent.
pub(crate) fn log_only(state: &AppState) -> BTreeMap<String, String> {
    state
        .channels
        .load()
        .log_only()
        .map(|(name, why)| (name.to_string(), why.to_string()))
        .collect()
}

/// A query string the page cannot read, as a page that says why.
fn bad_query(pages: &Pages, e: &QueryRejection) -> Response {
    pages
        .message(
            StatusCode::BAD_REQUEST,
            "Bad filter",
            &query_problem(&e.body_text()),
        )
        .into_response()
}

/// The query extractor's message in the page's words: which parameter, and what it may be,
/// without the parser's "Failed to deserialize query string" preamble.
fn query_problem(text: &str) -> String {
    let inner = text
        .strip_prefix("Failed to deserialize query string:")
        .unwrap_or(text)
        .trim();
    let unknown = inner
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'));
    if let Some((name, tail)) = unknown {
        let known = tail
            .split_once("expected one of ")
            .or_else(|| tail.split_once("expected "))
            .map(|(_, list)| list.replace('`', ""))
            .unwrap_or_default();
        return format!("There is no filter parameter `{name}`. The parameters are: {known}.");
    }
    match inner.split_once(": ") {
        Some((field, why)) if !field.contains(' ') => {
            format!("Parameter `{field}`: {why}.")
        }
        _ => inner.to_string(),
    }
}

fn unavailable(pages: &Pages, e: &impl std::fmt::Display) -> Response {
    pages
        .message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &e.to_string(),
        )
        .into_response()
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
    query: Result<axum::extract::Query<IndexQuery>, QueryRejection>,
) -> Response {
    let user = match web_login(&state, &pages, &headers) {
        Ok(user) => user.unwrap_or_default(),
        Err(r) => return *r,
    };
    let q = match query {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => return bad_query(&pages, &e),
    };
    let filter = PageFilter {
        state: q.state,
        severity: q.severity,
        project: q.project,
        environment: q.environment,
        search: q.q,
    };
    let page = q.page.map_or(1, std::num::NonZeroU32::get);
    let reader = state.store.reader();
    let open = match listings::open_by_urgency(reader, &filter, OPEN_LIMIT).await {
        Ok(r) => r,
        Err(e) => return unavailable(&pages, &e),
    };
    let (resolved, more_resolved) =
        match listings::resolved_page(reader, &filter, page - 1, RESOLVED_PER_PAGE).await {
            Ok(r) => r,
            Err(e) => return unavailable(&pages, &e),
        };
    let choices = match listings::filter_choices(reader).await {
        Ok(c) => c,
        Err(e) => return unavailable(&pages, &e),
    };
    // Sentry payloads we kept but could not read, one row per resource and shape.
    let unparsed = unparsed::recent(reader, 50)
        .await
        .map_err(|e| e.to_string());
    pages
        .index(IndexView::new(IndexData {
            now: state.clock.now_ms(),
            user: &user,
            open: &open,
            resolved: &resolved,
            filter: &filter,
            page,
            more_resolved,
            choices,
            unparsed: unparsed.as_deref().map_err(Clone::clone),
        }))
        .into_response()
}

async fn incident_page(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
) -> Response {
    let user = match web_login(&state, &pages, &headers) {
        Ok(user) => user.unwrap_or_default(),
        Err(r) => return *r,
    };
    let reader = state.store.reader();
    let inc = match listings::incident(reader, id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return pages
                .message(StatusCode::NOT_FOUND, "Not found", "No such incident.")
                .into_response();
        }
        Err(e) => return unavailable(&pages, &e),
    };
    // Each part that cannot be read (logged and counted by its read) says so on the page
    // instead of showing as empty.
    let timeline = listings::timeline(reader, id)
        .await
        .map_err(|e| e.to_string());
    let details = match inc.last_event_id {
        Some(event) => match listings::event_details(reader, event).await {
            Ok(Some(json)) => EventDetails::from_json(&json)
                .map(Some)
                .map_err(|e| format!("event #{event}: stored details unreadable: {e}")),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        },
        None => Ok(None),
    };
    let deliveries = deliveries::for_incident(reader, id)
        .await
        .map_err(|e| e.to_string());
    let escalations = listings::escalations(reader, id)
        .await
        .map_err(|e| e.to_string());
    let members = match inc.kind {
        IncidentKind::Storm => listings::storm_members(reader, id, STORM_MEMBERS_LIMIT)
            .await
            .map_err(|e| e.to_string()),
        IncidentKind::Issue => Ok(Vec::new()),
    };
    let cfg = routing(&state);
    pages
        .incident(IncidentPageView::new(IncidentData {
            now: state.clock.now_ms(),
            inc: &inc,
            user: &user,
            cfg: &cfg,
            timeline,
            details,
            deliveries,
            escalations,
            log_only: &log_only(&state),
            members: members.as_deref().map_err(Clone::clone),
        }))
        .into_response()
}

/// `/deliveries?requeued=N`: the page a Retry lands on says what it did.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    #[serde(default, deserialize_with = "delivery_number")]
    requeued: Option<DeliveryId>,
}

/// Dead and failing deliveries the page lists at most.
const DELIVERIES_LIMIT: i64 = 200;

async fn deliveries_page(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<DeliveriesQuery>, QueryRejection>,
) -> Response {
    let user = match web_login(&state, &pages, &headers) {
        Ok(user) => user.unwrap_or_default(),
        Err(r) => return *r,
    };
    let q = match query {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => return bad_query(&pages, &e),
    };
    let rows = listings::troubled_deliveries(state.store.reader(), DELIVERIES_LIMIT)
        .await
        .map_err(|e| e.to_string());
    let notice = q
        .requeued
        .map(|id| format!("Delivery #{id} is queued again."));
    pages
        .deliveries(DeliveriesView::new(
            rows,
            &user,
            notice,
            state.clock.now_ms(),
            &log_only(&state),
        ))
        .into_response()
}

/// Retry: a dead delivery back in the queue (see [`deliveries::requeue_dead`]), then back to
/// `/deliveries`, which says so.
async fn web_retry(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    Path(id): Path<DeliveryId>,
    body: Bytes,
) -> Response {
    let body = super::form::text(&body);
    let actor = match web_actor(&state, &pages, &headers, &body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let now = state.clock.now_ms();
    match deliveries::requeue_dead(&state.store, id, &actor.name, actor.via, now).await {
        Ok(Requeue::Requeued {
            incident_id,
            channel,
        }) => {
            tracing::info!(delivery = id.get(), incident = ?incident_id.map(IncidentId::get), %channel, by = %actor.name, "dead delivery queued again by hand");
            state.incidents.wakers.wake(crate::signal::Wake::Outbox);
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(to) = HeaderValue::from_str(&format!("/deliveries?requeued={id}")) {
                r.headers_mut().insert(LOCATION, to);
            }
            r
        }
        Ok(Requeue::NotDead(status)) => pages
            .message(
                StatusCode::CONFLICT,
                "Not queued again",
                &format!(
                    "Delivery #{id} is {status}, not dead: the worker still has it. Only a dead delivery is retried by hand."
                ),
            )
            .into_response(),
        Ok(Requeue::NotFound) => pages
            .message(StatusCode::NOT_FOUND, "Not found", "No such delivery.")
            .into_response(),
        Err(e) => unavailable(&pages, &e),
    }
}

/// Who acts from a web form: signed in (see [`web_login`]), or, for scripts, the token given as
/// the form field `api_token`.
///
/// A browser attaches Basic credentials (and reaches an intranet host) for any form post,
/// including one that a hostile page submits (cross-site request forgery), so a post that relies
/// on the browser must come from one of our own pages. A post carrying the token in the form
/// needs no such check: a hostile page cannot know the token.
pub(crate) fn web_actor(
    state: &AppState,
    pages: &Pages,
    headers: &HeaderMap,
    form: &str,
) -> Result<Actor, Box<Response>> {
    let token_in_form = state.secrets.api_token.as_ref().is_some_and(|expected| {
        let given = super::form::field(form, "api_token");
        crate::intake::signature::verify_token(expected.expose(), given.as_deref()).is_ok()
    });
    // The name signed in with is who acts: a form field (a hidden input the page fills in, or
    // one a user edits) must not let ana record "mallory".
    let login = if token_in_form {
        signed_in_name(state, headers)
    } else {
        let login = web_login(state, pages, headers)?;
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
        login
    };
    let by = login
        .filter(|name| !name.is_empty())
        .or_else(|| super::form::field(form, "by"))
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

/// The user name of valid Basic credentials, if the request carries them.
fn signed_in_name(state: &AppState, headers: &HeaderMap) -> Option<String> {
    state.secrets.api_token.as_ref()?;
    require_api_reader(state, headers).ok()?;
    presented_token(headers).and_then(|(_, user)| user)
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
    let (actor, episode) = match web_form(&state, &pages, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    act_page(&state, &pages, id, episode, Action::ACKNOWLEDGE, &actor).await
}

/// Resolve, with the root cause from the form's `root_cause` (blank: none), written in the
/// same transaction before the resolution.
async fn web_resolve(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    Path(id): Path<IncidentId>,
    body: Bytes,
) -> Response {
    let (actor, episode) = match web_form(&state, &pages, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let root_cause = super::form::field(&super::form::text(&body), "root_cause")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if root_cause
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_ROOT_CAUSE_CHARS)
    {
        return pages
            .message(
                StatusCode::BAD_REQUEST,
                "Root cause too long",
                &format!("Keep the root cause under {MAX_ROOT_CAUSE_CHARS} characters."),
            )
            .into_response();
    }
    let action = Action::Resolve { root_cause };
    act_page(&state, &pages, id, episode, action, &actor).await
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
