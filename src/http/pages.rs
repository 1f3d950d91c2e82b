//! Small server-rendered pages: the on-call page at `/`, an incident page, and the pages behind
//! acknowledge links. No JavaScript: a page must never act by itself.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use super::api::{presented_token, require_api_reader};
use super::extract::Path;
use crate::clock::ms_to_datetime;
use crate::incidents::model::Incident;
use crate::incidents::service::ServiceError;
use crate::incidents::transitions::{AckOutcome, Actor, ResolveOutcome};
use crate::store::misc::{self, IncidentFilter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/ack", post(web_ack))
        .route("/incidents/{id}/resolve", post(web_resolve))
}

pub use crate::text::html_escape as esc;

pub fn when(ms: i64) -> String {
    ms_to_datetime(ms)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{t} · paiid-alerts</title><style>\
         body{{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}}\
         table{{border-collapse:collapse;width:100%}}td,th{{padding:.35rem .5rem;border-bottom:1px solid #e3e6ec;text-align:left;vertical-align:top}}\
         .sev{{font-weight:700;text-transform:uppercase}}.critical{{color:#b3261e}}.high{{color:#c25e00}}.medium{{color:#7a6400}}\
         button{{font-size:1rem;padding:.5rem 1.2rem;border-radius:6px;border:0;background:#1d4ed8;color:#fff;cursor:pointer}}\
         input{{font-size:1rem;padding:.4rem;margin-right:.5rem}}.muted{{color:#5b6475}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    // Never framed (a framed page could be clicked into acknowledging), no scripts at all, and
    // links and forms only to http(s).
    let headers = [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ];
    (status, headers, Html(html)).into_response()
}

pub fn summary_table(inc: &Incident) -> String {
    let row = |k: &str, v: Option<String>| {
        v.map(|v| format!("<tr><th>{k}</th><td>{}</td></tr>", esc(&v)))
            .unwrap_or_default()
    };
    let mut rows = String::new();
    rows.push_str(&format!(
        "<tr><th>Severity</th><td class=\"sev {s}\">{s}</td></tr>",
        s = esc(&inc.severity)
    ));
    rows.push_str(&row("State", Some(inc.state.clone())));
    rows.push_str(&row("Project", inc.project.clone()));
    rows.push_str(&row("Environment", inc.environment.clone()));
    rows.push_str(&row("Level", inc.level.clone()));
    rows.push_str(&row("Culprit", inc.culprit.clone()));
    rows.push_str(&row("Events", Some(inc.event_count.to_string())));
    rows.push_str(&row("Opened", Some(when(inc.opened_at))));
    rows.push_str(&row("Last seen", Some(when(inc.last_seen))));
    rows.push_str(&row("Rule", inc.rule.clone()));
    if let (Some(by), Some(at)) = (&inc.acknowledged_by, inc.acknowledged_at) {
        rows.push_str(&row(
            "Acknowledged",
            Some(format!("by {by} at {}", when(at))),
        ));
    }
    if let (Some(by), Some(at)) = (&inc.resolved_by, inc.resolved_at) {
        rows.push_str(&row("Resolved", Some(format!("by {by} at {}", when(at)))));
    }
    if let Some(url) = &inc.sentry_url {
        rows.push_str(&format!(
            "<tr><th>Sentry</th><td><a href=\"{u}\">{u}</a></td></tr>",
            u = esc(url)
        ));
    }
    format!("<h2>{}</h2><table>{rows}</table>", esc(&inc.title))
}

/// The web pages' sign-in: when `API_TOKEN` is set, HTTP Basic with the token as password (any
/// user name, which then fills in the actor's name). Browsers ask for it and resend it on
/// every form post, so the pages need no script and no session, and reading them is exactly as
/// protected as `GET /api/incidents`. `Ok(None)` when no token is configured.
fn web_login(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    if state.secrets.api_token.is_none() {
        return Ok(None);
    }
    if require_api_reader(state, headers).is_ok() {
        return Ok(presented_token(headers).and_then(|(_, user)| user));
    }
    let mut r = page(
        StatusCode::UNAUTHORIZED,
        "Sign in",
        "<p>Sign in with your name and the API token as password.</p>",
    );
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"paiid-alerts\", charset=\"UTF-8\""),
    );
    Err(Box::new(r))
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = web_login(&state, &headers) {
        return *r;
    }
    let filter = IncidentFilter {
        limit: 200,
        ..IncidentFilter::default()
    };
    let rows = match misc::list_incidents(&state.store.read, &filter).await {
        Ok(r) => r,
        Err(e) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                &esc(&e.to_string()),
            );
        }
    };
    let mut open = String::new();
    let mut closed = String::new();
    for inc in &rows {
        let line = format!(
            "<tr><td class=\"sev {s}\">{s}</td><td><a href=\"/incidents/{id}\">{t}</a><div class=\"muted\">{p}</div></td>\
             <td>{st}</td><td>{c}</td><td>{ls}</td></tr>",
            s = esc(&inc.severity),
            id = inc.id,
            t = esc(&inc.title),
            p = esc(inc.project.as_deref().unwrap_or("")),
            st = esc(&inc.state),
            c = inc.event_count,
            ls = when(inc.last_seen)
        );
        if inc.state == "resolved" {
            closed.push_str(&line)
        } else {
            open.push_str(&line)
        }
    }
    let head = "<tr><th>Severity</th><th>Incident</th><th>State</th><th>Events</th><th>Last seen</th></tr>";
    let body = format!(
        "<h2>Open</h2><table>{head}{}</table><h2>Recently resolved</h2><table>{head}{}</table>{}\
         <p class=\"muted\">JSON: <a href=\"/api/incidents\">/api/incidents</a> · <a href=\"/metrics\">/metrics</a></p>",
        if open.is_empty() {
            "<tr><td colspan=5>Nothing open. 🎉</td></tr>".to_string()
        } else {
            open
        },
        closed,
        unparsed_section(&state).await
    );
    page(StatusCode::OK, "paiid-alerts on call", &body)
}

/// Sentry payloads we kept but could not read, one row per resource and shape; nothing when
/// there are none.
async fn unparsed_section(state: &AppState) -> String {
    use crate::intake::unparsed;
    let rows = match unparsed::recent(&state.store.read, 50).await {
        Ok(rows) if rows.is_empty() => return String::new(),
        Ok(rows) => rows,
        Err(e) => {
            return format!(
                "<h2>Payloads we could not read</h2><p class=\"muted\">Not available: {}</p>",
                esc(&e.to_string())
            );
        }
    };
    let mut out = String::from(
        "<h2>Payloads we could not read</h2><p class=\"muted\">Sentry's envelope, but not the \
         content we know: stored with status <code>unparsed</code>, no incident opened.</p>\
         <table><tr><th>Resource</th><th>Fields of <code>data</code></th><th>Why</th>\
         <th>Seen</th><th>Last seen</th></tr>",
    );
    for r in &rows {
        out.push_str(&format!(
            "<tr><td>{res}</td><td><code>{shape}</code></td><td>{why}</td><td>{n} \
             <span class=\"muted\">(event #{first} first, #{last} last)</span></td><td>{at}</td></tr>",
            res = esc(&r.resource),
            shape = esc(unparsed::display_shape(&r.shape)),
            why = esc(&r.reason),
            n = r.seen,
            first = r.first_event_id,
            last = r.last_event_id,
            at = when(r.last_seen_at),
        ));
    }
    out.push_str("</table>");
    out
}

fn action_form(action: &str, label: &str, name: &str, episode: i64) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"episode\" value=\"{episode}\">\
         <input name=\"by\" placeholder=\"Your name\" value=\"{}\" required maxlength=\"200\">\
         <button type=\"submit\">{label}</button></form>",
        esc(name)
    )
}

/// The page for a failed acknowledge or resolve, with a status that says why.
pub fn service_error_page(title: &str, e: &ServiceError) -> Response {
    let status = match e {
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::StaleEpisode { .. } => StatusCode::CONFLICT,
        ServiceError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    page(status, title, &format!("<p>{}</p>", esc(&e.to_string())))
}

async fn incident_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let user = match web_login(&state, &headers) {
        Ok(user) => user.unwrap_or_default(),
        Err(r) => return *r,
    };
    let inc = match misc::incident(&state.store.read, id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                "<p>No such incident.</p>",
            );
        }
        Err(e) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                &esc(&e.to_string()),
            );
        }
    };
    let timeline = misc::timeline(&state.store.read, id)
        .await
        .unwrap_or_default();
    let mut body = summary_table(&inc);
    if matches!(inc.state.as_str(), "triggered" | "muted") {
        body.push_str(&action_form(
            &format!("/incidents/{id}/ack"),
            "Acknowledge",
            &user,
            inc.episode,
        ));
    }
    if inc.state != "resolved" {
        body.push_str(&action_form(
            &format!("/incidents/{id}/resolve"),
            "Resolve",
            &user,
            inc.episode,
        ));
    }
    body.push_str("<h2>Timeline</h2><table>");
    for t in timeline {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(t.at),
            esc(&t.kind),
            esc(&[
                t.actor.unwrap_or_default(),
                t.via.map(|v| format!("via {v}")).unwrap_or_default()
            ]
            .join(" ")),
            esc(t.detail.as_deref().unwrap_or(""))
        ));
    }
    body.push_str("</table>");
    page(StatusCode::OK, &format!("Incident #{id}"), &body)
}

/// Who acts from a web form: signed in (see [`web_login`]), or, for scripts, the token given as
/// the form field `api_token`.
///
/// A browser attaches Basic credentials (and reaches an intranet host) for any form post,
/// including one that a hostile page submits (cross-site request forgery), so a post that relies
/// on the browser must come from one of our own pages. A post carrying the token in the form
/// needs no such check: a hostile page cannot know the token.
fn web_actor(state: &AppState, headers: &HeaderMap, form: &str) -> Result<Actor, Box<Response>> {
    let token_in_form = state.secrets.api_token.as_ref().is_some_and(|expected| {
        let given = super::form::field(form, "api_token");
        crate::intake::signature::verify_token(expected.expose(), given.as_deref()).is_ok()
    });
    if !token_in_form {
        web_login(state, headers)?;
        if !same_origin(headers, &state.public_url) {
            return Err(Box::new(page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "<p>This form was sent from another site. Use the incident page here.</p>",
            )));
        }
    }
    let by = super::form::field(form, "by")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if by.is_empty() || by.len() > 200 {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Name needed",
            "<p>Say who you are (up to 200 characters).</p>",
        )));
    }
    Ok(Actor::new(by, "web"))
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
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Actor, Option<i64>), Box<Response>> {
    let body = super::form::text(body);
    let actor = web_actor(state, headers, &body)?;
    // The occurrence the page showed: a form left open across a reopen must not act on it.
    let episode = super::form::field(&body, "episode").and_then(|e| e.parse().ok());
    Ok((actor, episode))
}

async fn web_ack(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let (actor, episode) = match web_form(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match state.incidents.acknowledge(id, episode, &actor).await {
        Ok((outcome, inc)) => ack_result_page(&inc, &ack_words(&outcome)),
        Err(e) => service_error_page("Not acknowledged", &e),
    }
}

async fn web_resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let (actor, episode) = match web_form(&state, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match state.incidents.resolve(id, episode, &actor).await {
        Ok((outcome, inc)) => ack_result_page(&inc, &resolve_words(&outcome)),
        Err(e) => service_error_page("Not resolved", &e),
    }
}

pub fn ack_words(outcome: &AckOutcome) -> String {
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

pub fn resolve_words(outcome: &ResolveOutcome) -> String {
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

pub fn ack_result_page(inc: &Incident, words: &str) -> Response {
    page(
        StatusCode::OK,
        words,
        &format!("<p>{}</p>{}", esc(words), summary_table(inc)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_by_fetch_metadata_origin_host_or_public_url() {
        let public = "https://alerts.paiid.ai";
        assert!(same_origin(&headers(&[]), public), "not a browser");
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            public
        ));
        assert!(same_origin(
            &headers(&[
                ("origin", "http://10.0.0.5:8080"),
                ("host", "10.0.0.5:8080")
            ]),
            public
        ));
        // Behind a proxy that rewrote Host: the public URL still matches.
        assert!(same_origin(
            &headers(&[
                ("origin", "https://alerts.paiid.ai"),
                ("host", "127.0.0.1:8080")
            ]),
            public
        ));
        assert!(!same_origin(
            &headers(&[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:8080")
            ]),
            public
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), public));
    }

    #[test]
    fn a_cross_site_referer_without_origin_is_refused() {
        let public = "https://alerts.paiid.ai";
        let host = ("host", "127.0.0.1:8080");
        assert!(!same_origin(
            &headers(&[("referer", "https://evil.example/page?x=1"), host]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("referer", "https://alerts.paiid.ai.evil.example/"), host]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("referer", "garbage"), host]),
            public
        ));
        assert!(same_origin(
            &headers(&[("referer", "https://alerts.paiid.ai/incidents/3"), host]),
            public
        ));
        assert!(same_origin(
            &headers(&[("referer", "http://127.0.0.1:8080/incidents/3"), host]),
            public
        ));
    }

    #[test]
    fn origin_of_keeps_scheme_host_and_port() {
        assert_eq!(origin_of("https://a.b:8443/x?y#z"), "https://a.b:8443");
        assert_eq!(origin_of("http://a.b?q"), "http://a.b");
        assert_eq!(origin_of("https://a.b"), "https://a.b");
        assert_eq!(origin_of("no-scheme"), "");
    }
}
