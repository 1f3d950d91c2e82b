//! Rendering the pages: [`Pages`] holds the compiled templates (`src/templates/pages/`) and
//! turns what a handler gathered into a [`Page`]; the views below are what the templates see.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use crate::clock::ms_to_datetime;
use crate::domain::IncidentState;
use crate::incidents::model::Incident;
use crate::incidents::service::ServiceError;
use crate::intake::unparsed::{self, ShapeRow};
use crate::store::CorruptRow;
use crate::store::listings::TimelineEntry;
use crate::templates;

pub(crate) fn when(ms: i64) -> String {
    ms_to_datetime(ms)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// A rendered page and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub status: StatusCode,
    pub html: String,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        // Never framed (a framed page could be clicked into acknowledging), no scripts at all,
        // and links and forms only to this service.
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
        (self.status, headers, Html(self.html)).into_response()
    }
}

/// The page templates, compiled once (when the router is built) and shared. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pages {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

/// An incident as the pages show it: times formatted, the summary's optional rows as `none`.
#[derive(Debug, Serialize)]
struct IncidentView<'a> {
    id: i64,
    episode: i64,
    title: std::borrow::Cow<'a, str>,
    severity: &'a str,
    state: &'a str,
    project: Option<&'a str>,
    environment: Option<&'a str>,
    level: Option<&'a str>,
    culprit: Option<&'a str>,
    rule: Option<&'a str>,
    event_count: i64,
    opened: String,
    last_seen: String,
    /// `by ana at 2026-11-29 08:04:10 UTC`
    acknowledged: Option<String>,
    resolved: Option<String>,
    sentry_url: Option<&'a str>,
}

impl<'a> IncidentView<'a> {
    /// A row that does not decode: listed by id with why, so one bad row hides nothing else.
    fn unreadable(e: &CorruptRow) -> Self {
        Self {
            id: e.id,
            episode: 0,
            title: std::borrow::Cow::Owned(format!("Unreadable incident: {e}")),
            severity: "unreadable",
            state: "unreadable",
            project: None,
            environment: None,
            level: None,
            culprit: None,
            rule: None,
            event_count: 0,
            opened: String::new(),
            last_seen: String::new(),
            acknowledged: None,
            resolved: None,
            sentry_url: None,
        }
    }

    fn of(inc: &'a Incident) -> Self {
        let by_at = |by: &Option<String>, at: Option<i64>| match (by, at) {
            (Some(by), Some(at)) => Some(format!("by {by} at {}", when(at))),
            _ => None,
        };
        Self {
            id: inc.id,
            episode: inc.episode,
            title: std::borrow::Cow::Borrowed(&inc.title),
            severity: inc.severity.as_str(),
            state: inc.state.as_str(),
            project: inc.project.as_deref(),
            environment: inc.environment.as_deref(),
            level: inc.level.as_deref(),
            culprit: inc.culprit.as_deref(),
            rule: inc.rule.as_deref(),
            event_count: inc.event_count,
            opened: when(inc.opened_at),
            last_seen: when(inc.last_seen),
            acknowledged: by_at(&inc.acknowledged_by, inc.acknowledged_at),
            resolved: by_at(&inc.resolved_by, inc.resolved_at),
            sentry_url: inc.sentry_url.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
struct TimelineView {
    at: String,
    kind: &'static str,
    /// The actor and the channel: `ana via web`.
    who: String,
    detail: Option<String>,
}

impl TimelineView {
    fn of(t: TimelineEntry) -> Self {
        Self {
            at: when(t.at),
            kind: t.kind.as_str(),
            who: [
                t.actor.unwrap_or_default(),
                t.via.map(|v| format!("via {v}")).unwrap_or_default(),
            ]
            .join(" "),
            detail: t.detail,
        }
    }
}

#[derive(Debug, Serialize)]
struct ShapeView<'a> {
    resource: &'a str,
    shape: &'a str,
    reason: &'a str,
    seen: i64,
    first_event_id: i64,
    last_event_id: i64,
    last_seen: String,
}

impl<'a> ShapeView<'a> {
    fn of(r: &'a ShapeRow) -> Self {
        Self {
            resource: &r.resource,
            shape: unparsed::display_shape(&r.shape),
            reason: &r.reason,
            seen: r.seen,
            first_event_id: r.first_event_id,
            last_event_id: r.last_event_id,
            last_seen: when(r.last_seen_at),
        }
    }
}

#[derive(Serialize)]
struct BylineView {
    by: String,
    at: String,
}

impl Pages {
    /// Compiles the page templates. They are constants covered by the tests; one that does not
    /// compile is logged, and pages that need it answer 500 instead of taking the service down.
    pub(crate) fn new() -> Self {
        let mut env = templates::environment();
        for (name, source) in templates::PAGES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %templates::describe(&e), "page template does not compile");
            }
        }
        Self { env: Arc::new(env) }
    }

    pub(crate) fn render<C: Serialize>(&self, status: StatusCode, name: &str, ctx: &C) -> Page {
        let rendered = self
            .env
            .get_template(name)
            .and_then(|t| t.render(Value::from(Serde(ctx))));
        match rendered {
            Ok(html) => Page { status, html },
            Err(e) => {
                tracing::error!(template = name, error = %templates::describe(&e), "page template failed");
                Page {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    html: "<!doctype html><title>Error · paiid-alerts</title>\
                           <p>This page could not be shown (see the service log).</p>"
                        .to_string(),
                }
            }
        }
    }

    /// A page that only says something (`message` is text, escaped).
    pub(crate) fn message(&self, status: StatusCode, title: &str, message: &str) -> Page {
        #[derive(Serialize)]
        struct Ctx<'a> {
            title: &'a str,
            message: &'a str,
        }
        self.render(status, "pages/message.html", &Ctx { title, message })
    }

    /// `/`: open incidents, then resolved ones, then the payloads we could not read (`Err`:
    /// why they could not be listed).
    pub(crate) fn index(
        &self,
        incidents: &[Result<Incident, CorruptRow>],
        unparsed: Result<&[ShapeRow], String>,
    ) -> Page {
        #[derive(Serialize)]
        struct Ctx<'a> {
            title: &'a str,
            open: Vec<IncidentView<'a>>,
            resolved: Vec<IncidentView<'a>>,
            unparsed: Vec<ShapeView<'a>>,
            unparsed_error: Option<String>,
        }
        let (resolved, open) = incidents
            .iter()
            .map(|r| match r {
                Ok(inc) => IncidentView::of(inc),
                Err(e) => IncidentView::unreadable(e),
            })
            .partition(|i| i.state == "resolved");
        let (unparsed, unparsed_error) = match unparsed {
            Ok(rows) => (rows.iter().map(ShapeView::of).collect(), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let ctx = Ctx {
            title: "paiid-alerts on call",
            open,
            resolved,
            unparsed,
            unparsed_error,
        };
        self.render(StatusCode::OK, "pages/index.html", &ctx)
    }

    /// `/incidents/{id}`: the summary, the forms for what is still possible (pre-filled with
    /// `user`), and the timeline.
    /// A timeline that could not be read is shown as unreadable with the reason, never as an
    /// empty one.
    pub(crate) fn incident(
        &self,
        inc: &Incident,
        timeline: Result<Vec<TimelineEntry>, String>,
        user: &str,
    ) -> Page {
        #[derive(Serialize)]
        struct Ctx<'a> {
            title: String,
            inc: IncidentView<'a>,
            user: &'a str,
            can_acknowledge: bool,
            can_resolve: bool,
            timeline: Vec<TimelineView>,
            timeline_error: Option<String>,
        }
        let (timeline, timeline_error) = match timeline {
            Ok(rows) => (rows.into_iter().map(TimelineView::of).collect(), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let ctx = Ctx {
            title: format!("Incident #{}", inc.id),
            inc: IncidentView::of(inc),
            user,
            can_acknowledge: matches!(inc.state, IncidentState::Triggered | IncidentState::Muted),
            can_resolve: inc.state != IncidentState::Resolved,
            timeline,
            timeline_error,
        };
        self.render(StatusCode::OK, "pages/incident.html", &ctx)
    }

    /// After an acknowledge or resolve: `words` say what happened, then the incident as it is now.
    pub(crate) fn ack_result(&self, inc: &Incident, words: &str) -> Page {
        #[derive(Serialize)]
        struct Ctx<'a> {
            title: &'a str,
            inc: IncidentView<'a>,
        }
        let ctx = Ctx {
            title: words,
            inc: IncidentView::of(inc),
        };
        self.render(StatusCode::OK, "pages/ack_result.html", &ctx)
    }

    /// A failed acknowledge or resolve, with a status that says why.
    pub(crate) fn service_error(&self, title: &str, e: &ServiceError) -> Page {
        let status = match e {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::StaleEpisode { .. } => StatusCode::CONFLICT,
            ServiceError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        self.message(status, title, &e.to_string())
    }

    /// `GET /ack/{token}`: the incident and, unless already done, a form to confirm `verb`.
    pub(crate) fn ack_confirm(
        &self,
        inc: &Incident,
        verb: &str,
        label: &str,
        for_ack: bool,
    ) -> Page {
        #[derive(Serialize)]
        struct Ctx<'a> {
            title: String,
            inc: IncidentView<'a>,
            verb: &'a str,
            label: &'a str,
            already_resolved_by: Option<&'a str>,
            already_acknowledged: Option<BylineView>,
        }
        let already_resolved_by = (inc.state == IncidentState::Resolved)
            .then(|| inc.resolved_by.as_deref().unwrap_or("someone"));
        let already_acknowledged = match (&inc.acknowledged_by, inc.acknowledged_at) {
            (Some(by), Some(at)) if for_ack && inc.state == IncidentState::Acknowledged => {
                Some(BylineView {
                    by: by.clone(),
                    at: when(at),
                })
            }
            _ => None,
        };
        let ctx = Ctx {
            title: format!("{label} incident #{}?", inc.id),
            inc: IncidentView::of(inc),
            verb,
            label,
            already_resolved_by,
            already_acknowledged,
        };
        self.render(StatusCode::OK, "pages/ack_confirm.html", &ctx)
    }

    /// An ack link from an earlier episode of `inc`.
    pub(crate) fn stale_link(&self, inc: &Incident) -> Page {
        #[derive(Serialize)]
        struct Ctx<'a> {
            title: &'a str,
            inc: IncidentView<'a>,
        }
        let ctx = Ctx {
            title: "This link is for an earlier occurrence",
            inc: IncidentView::of(inc),
        };
        self.render(StatusCode::CONFLICT, "pages/stale_link.html", &ctx)
    }
}
