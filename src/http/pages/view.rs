//! Rendering the pages: [`Pages`] holds the compiled templates (`src/templates/pages/`) and
//! turns what a handler gathered into a [`Page`]; the views below are what the templates see.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use crate::clock::ms_to_datetime;
use crate::config::{Conditions, RoutingConfig};
use crate::domain::{
    DeliveryId, DeliveryStatus, Episode, EventId, IncidentId, IncidentKind, IncidentState,
    SilenceId,
};
use crate::incidents::model::Incident;
use crate::incidents::service::ServiceError;
use crate::intake::details::EventDetails;
use crate::intake::unparsed::{self, ShapeRow};
use crate::store::CorruptRow;
use crate::store::deliveries::DeliveryWithAttempts;
use crate::store::listings::{
    FiredEscalation, OpenIncident, PageFilter, TimelineEntry, TroubledDelivery,
};
use crate::templates;
use crate::text::{clock, duration, truncate_chars};

pub(crate) fn when(ms: i64) -> String {
    ms_to_datetime(ms)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// The pages' Content-Security-Policy.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A rendered page and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub status: StatusCode,
    pub html: String,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        // Never framed (a framed page could be clicked into acknowledging), links and forms only
        // to this service, and no inline or foreign script: only `/assets/app.js`, which only
        // displays (see `super::APP_JS`), so injected markup can never run code.
        let headers = [
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
            ("content-security-policy", CSP),
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
    id: IncidentId,
    episode: Episode,
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
    /// The silence holding its notifications, if one does.
    silenced_by: Option<SilenceId>,
    /// `issue`, or `storm` (a group: its `event_count` is how many incidents it holds).
    kind: &'static str,
    /// The storm it belongs to, if it does.
    storm_id: Option<IncidentId>,
}

impl<'a> IncidentView<'a> {
    /// A row that does not decode: listed by id with why, so one bad row hides nothing else.
    fn unreadable(e: &CorruptRow) -> Self {
        Self {
            // Listed from `incidents`, so the row id is an incident id.
            id: IncidentId(e.id),
            episode: Episode::NONE,
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
            silenced_by: None,
            kind: IncidentKind::Issue.as_str(),
            storm_id: None,
        }
    }

    /// A listed row, or why it could not be read.
    fn of_row(row: &'a Result<Incident, CorruptRow>) -> Self {
        match row {
            Ok(inc) => Self::of(inc),
            Err(e) => Self::unreadable(e),
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
            silenced_by: inc.silenced_by,
            kind: inc.kind.as_str(),
            storm_id: inc.storm_id,
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
    first_event_id: EventId,
    last_event_id: EventId,
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

    /// `/`: open incidents by urgency, the filter, one page of resolved ones, then the payloads
    /// we could not read (`Err`: why they could not be listed).
    pub(crate) fn index(&self, view: IndexView<'_>) -> Page {
        self.render(StatusCode::OK, "pages/index.html", &view)
    }

    /// `/incidents/{id}`: the summary, the forms for what is still possible (pre-filled with
    /// the user's name), why it got its severity, its event, deliveries, escalations and
    /// timeline. A part that could not be read says so with the reason, never shows as empty.
    pub(crate) fn incident(&self, view: IncidentPageView<'_>) -> Page {
        self.render(StatusCode::OK, "pages/incident.html", &view)
    }

    /// `/deliveries`: the dead and failing deliveries.
    pub(crate) fn deliveries(&self, view: DeliveriesView<'_>) -> Page {
        self.render(StatusCode::OK, "pages/deliveries.html", &view)
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

/// `escalates in 12:34` (`next`: the next step's deadline, as a ticking clock), `escalation due
/// 5s ago` (the deadline passed, the scheduler is about to fire it), `escalated 3m 0s ago`
/// (`fired`: the last step fired then). `/assets/app.js` ticks the same words from `due_ms` and
/// `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Countdown {
    pub due_ms: i64,
    pub kind: &'static str,
    pub text: String,
}

/// The countdown of an incident at `now`: to its next escalation, else since its last one
/// (this episode), else none.
pub(crate) fn countdown(
    next_escalation_at: Option<i64>,
    last_escalated_at: Option<i64>,
    now: i64,
) -> Option<Countdown> {
    match (next_escalation_at, last_escalated_at) {
        (Some(due), _) => Some(Countdown {
            due_ms: due,
            kind: "next",
            text: if due > now {
                format!("escalates in {}", clock(due - now))
            } else {
                format!("escalation due {} ago", duration(now - due))
            },
        }),
        (None, Some(at)) => Some(Countdown {
            due_ms: at,
            kind: "fired",
            text: format!("escalated {} ago", duration(now - at)),
        }),
        (None, None) => None,
    }
}

/// A row of the lists on `/`.
#[derive(Debug, Serialize)]
pub(crate) struct RowView<'a> {
    #[serde(flatten)]
    inc: IncidentView<'a>,
    /// Since the episode opened: `4m 10s`.
    age: String,
    acknowledged_by: Option<&'a str>,
    countdown: Option<Countdown>,
}

impl<'a> RowView<'a> {
    pub(crate) fn of(
        row: &'a Result<Incident, CorruptRow>,
        last_escalated_at: Option<i64>,
        now: i64,
    ) -> Self {
        match row {
            Ok(inc) => Self {
                inc: IncidentView::of(inc),
                age: duration(now - inc.opened_at),
                acknowledged_by: inc.acknowledged_by.as_deref(),
                countdown: countdown(inc.escalation_due(), last_escalated_at, now),
            },
            Err(e) => Self {
                inc: IncidentView::unreadable(e),
                age: String::new(),
                acknowledged_by: None,
                countdown: None,
            },
        }
    }
}

/// The filter's current values as the form shows them (`""`: any).
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct FilterView {
    pub state: String,
    pub severity: String,
    pub project: String,
    pub environment: String,
    pub q: String,
}

impl FilterView {
    pub(crate) fn of(f: &PageFilter) -> Self {
        Self {
            state: f.state.map(|s| s.as_str().to_string()).unwrap_or_default(),
            severity: f
                .severity
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            project: f.project.clone().unwrap_or_default(),
            environment: f.environment.clone().unwrap_or_default(),
            q: f.search.clone().unwrap_or_default(),
        }
    }

    /// `/?state=..&page=N`: this filter at another page of resolved incidents (1-based).
    pub(crate) fn url(&self, page: u32) -> String {
        let mut pairs: Vec<(&str, String)> = [
            ("state", &self.state),
            ("severity", &self.severity),
            ("project", &self.project),
            ("environment", &self.environment),
            ("q", &self.q),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect();
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        query_url("/", &pairs)
    }

    fn is_set(&self) -> bool {
        [
            &self.state,
            &self.severity,
            &self.project,
            &self.environment,
            &self.q,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }
}

/// `path?k=v&...`, each part percent-encoded (nothing after `path` when `pairs` is empty).
pub(crate) fn query_url(path: &str, pairs: &[(&str, String)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What `/` shows.
#[derive(Debug, Serialize)]
pub(crate) struct IndexView<'a> {
    title: &'static str,
    /// The signed-in name, for the rows' acknowledge forms (empty: the form asks for one).
    user: &'a str,
    /// The server's clock, for the script to tick countdowns from (the browser's clock may be
    /// off, and tests run on a manual clock).
    now_ms: i64,
    refresh_s: u32,
    open: Vec<RowView<'a>>,
    resolved: Vec<RowView<'a>>,
    filter: FilterView,
    filtered: bool,
    projects: Vec<String>,
    environments: Vec<String>,
    states: Vec<&'static str>,
    severities: Vec<&'static str>,
    page: u32,
    prev_url: Option<String>,
    next_url: Option<String>,
    unparsed: Vec<ShapeView<'a>>,
    unparsed_error: Option<String>,
}

/// What the handler of `/` gathered.
pub(crate) struct IndexData<'a> {
    pub now: i64,
    pub user: &'a str,
    pub open: &'a [OpenIncident],
    pub resolved: &'a [Result<Incident, CorruptRow>],
    pub filter: &'a PageFilter,
    /// 1-based page of resolved incidents, and whether there is a next one.
    pub page: u32,
    pub more_resolved: bool,
    pub choices: (Vec<String>, Vec<String>),
    pub unparsed: Result<&'a [ShapeRow], String>,
}

/// How often `/` reloads itself (the script, or a `<noscript>` meta refresh).
pub(crate) const REFRESH_SECONDS: u32 = 15;

impl<'a> IndexView<'a> {
    pub(crate) fn new(d: IndexData<'a>) -> Self {
        let filter = FilterView::of(d.filter);
        let (unparsed, unparsed_error) = match d.unparsed {
            Ok(rows) => (rows.iter().map(ShapeView::of).collect(), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        Self {
            title: "On call",
            user: d.user,
            now_ms: d.now,
            refresh_s: REFRESH_SECONDS,
            open: d
                .open
                .iter()
                .map(|o| RowView::of(&o.incident, o.last_escalated_at, d.now))
                .collect(),
            resolved: d
                .resolved
                .iter()
                .map(|r| RowView::of(r, None, d.now))
                .collect(),
            filtered: filter.is_set(),
            prev_url: (d.page > 1).then(|| filter.url(d.page - 1)),
            next_url: d.more_resolved.then(|| filter.url(d.page + 1)),
            filter,
            projects: d.choices.0,
            environments: d.choices.1,
            states: ["triggered", "acknowledged", "muted", "resolved"].to_vec(),
            severities: ["critical", "high", "medium", "low", "unclassified"].to_vec(),
            page: d.page,
            unparsed,
            unparsed_error,
        }
    }
}

/// Why an incident has its severity: the rule that matched and its conditions, as the routing
/// file in force now states them (it may have changed since), and the policy frozen onto the
/// episode when it opened.
#[derive(Debug, Serialize)]
pub(crate) struct WhyView {
    severity: &'static str,
    rule: Option<String>,
    /// False when the incident names a rule the routing file no longer has.
    rule_in_config: bool,
    /// The severity the rule gives now, when that differs from the incident's.
    rule_severity_now: Option<&'static str>,
    conditions: Vec<String>,
    notify: Vec<String>,
    escalate_after: Option<String>,
    escalate_to: Vec<String>,
    digest: Option<String>,
}

impl WhyView {
    pub(crate) fn of(inc: &Incident, cfg: &RoutingConfig) -> Self {
        let found = inc
            .rule
            .as_deref()
            .and_then(|name| cfg.rules.iter().find(|r| r.name == name));
        let policy = &inc.policy;
        Self {
            severity: inc.severity.as_str(),
            rule: inc.rule.clone(),
            rule_in_config: found.is_some(),
            rule_severity_now: found
                .filter(|r| r.severity != inc.severity)
                .map(|r| r.severity.as_str()),
            conditions: found
                .map(|r| describe_conditions(&r.when))
                .unwrap_or_default(),
            notify: policy.notify.clone(),
            escalate_after: policy.escalate_after_ms.map(duration),
            escalate_to: policy.escalate_to.clone(),
            digest: policy.digest.map(|d| {
                match d {
                    crate::domain::DigestCadence::Daily => "daily",
                    crate::domain::DigestCadence::Weekly => "weekly",
                    crate::domain::DigestCadence::None => "none",
                }
                .to_string()
            }),
        }
    }
}

/// A rule's conditions, one line each, as `routing.yaml` says them.
pub(crate) fn describe_conditions(c: &Conditions) -> Vec<String> {
    let mut out = Vec::new();
    let one_of = |out: &mut Vec<String>, what: &str, list: &Option<Vec<String>>| {
        if let Some(list) = list {
            out.push(format!("{what} is one of: {}", list.join(", ")));
        }
    };
    one_of(&mut out, "environment", &c.environments);
    one_of(&mut out, "level", &c.levels);
    one_of(&mut out, "Sentry alert rule", &c.sentry_rules);
    one_of(&mut out, "project", &c.projects);
    one_of(&mut out, "resource", &c.resources);
    one_of(&mut out, "action", &c.actions);
    one_of(&mut out, "metric", &c.aggregates);
    for (k, v) in &c.tags {
        out.push(format!("tag {k} = {v}"));
    }
    if let Some(rate) = &c.rate {
        let per = match rate.per {
            crate::config::RateGrouping::Project => "project",
            crate::config::RateGrouping::Issue => "issue",
        };
        let alerts = if rate.more_than == 1 {
            "alert"
        } else {
            "alerts"
        };
        out.push(format!(
            "more than {} {alerts} within {} per {per}",
            rate.more_than, rate.within
        ));
    }
    if let Some(ms) = c.transaction_duration_over_ms {
        out.push(format!("transaction duration over {ms} ms"));
    }
    if let Some(score) = c.apdex_below {
        out.push(format!("apdex below {score}"));
    }
    if out.is_empty() {
        out.push("always (the rule has no conditions)".to_string());
    }
    out
}

/// One attempt at a delivery.
#[derive(Debug, Serialize)]
struct AttemptView {
    attempt: i64,
    started: String,
    duration: String,
    status_code: Option<i64>,
    outcome: String,
    response: Option<String>,
}

/// A delivery and its attempts, as the incident page shows them.
#[derive(Debug, Serialize)]
pub(crate) struct DeliveryView {
    id: DeliveryId,
    channel: String,
    kind: String,
    status: &'static str,
    attempts: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    response: Option<String>,
    created: String,
    delivered: Option<String>,
    /// For a row still waiting: when it is (re)tried, and in how long.
    next_retry: Option<String>,
    attempt_log: Vec<AttemptView>,
    /// Why the channel only reaches the log (`SLACK_WEBHOOK_URL is not set`): its "delivered"
    /// means written to the log, and the page must not let it pass for a message sent.
    log_only: Option<String>,
}

/// What a page shows of a channel's answer: enough to tell what went wrong, not a whole message.
const MAX_RESPONSE_CHARS: usize = 160;

fn short(s: Option<&str>) -> Option<String> {
    s.map(|s| truncate_chars(s, MAX_RESPONSE_CHARS))
}

impl DeliveryView {
    /// Marks a row of a channel that only reaches the log (the page says "logged" for its
    /// "delivered").
    fn log_only(mut self, log_only: &BTreeMap<String, String>) -> Self {
        self.log_only = log_only.get(&self.channel).cloned();
        self
    }

    pub(crate) fn of(d: &DeliveryWithAttempts, now: i64) -> Self {
        let row = &d.delivery;
        let waiting = matches!(row.status, DeliveryStatus::Pending | DeliveryStatus::Failed);
        Self {
            id: row.id,
            channel: row.channel.clone(),
            kind: row.kind_word.clone(),
            status: row.status.as_str(),
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_error: short(row.last_error.as_deref()),
            response: short(row.response.as_deref()),
            created: when(row.created_at),
            delivered: row.delivered_at.map(when),
            next_retry: waiting.then(|| {
                let at = row.next_attempt_at;
                if at > now {
                    format!("{} (in {})", when(at), duration(at - now))
                } else {
                    format!("{} (due now)", when(at))
                }
            }),
            attempt_log: d
                .attempt_log
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    started: when(a.started_at),
                    duration: duration(a.duration_ms),
                    status_code: a.status_code,
                    outcome: a.outcome.clone(),
                    response: short(a.response.as_deref()),
                })
                .collect(),
            log_only: None,
        }
    }
}

/// Escalation of the current episode: what is due and what fired (every episode).
#[derive(Debug, Serialize)]
struct EscalationView {
    /// `2026-… (in 12m 0s)` for the next step, if one is scheduled.
    next_due: Option<String>,
    fired: Vec<FiredView>,
}

#[derive(Debug, Serialize)]
struct FiredView {
    episode: Episode,
    step: i64,
    due: String,
    fired: String,
    /// How late it fired after its deadline.
    late: String,
}

/// What `/incidents/{id}` shows.
#[derive(Debug, Serialize)]
pub(crate) struct IncidentPageView<'a> {
    title: String,
    now_ms: i64,
    inc: IncidentView<'a>,
    root_cause: Option<&'a str>,
    /// What Sentry's Seer found, and the pull request it opened.
    seer_root_cause: Option<&'a str>,
    seer_pr_url: Option<&'a str>,
    /// When no notification of the episode was confirmed delivered in time (`confirm_within`).
    delivery_degraded: Option<String>,
    /// When the acknowledgement expires (`ack_timeout`), for an acknowledged incident.
    ack_expires: Option<String>,
    user: &'a str,
    can_acknowledge: bool,
    can_resolve: bool,
    next_escalation: Option<Countdown>,
    why: WhyView,
    details: Option<EventDetails>,
    details_error: Option<String>,
    deliveries: Vec<DeliveryView>,
    deliveries_error: Option<String>,
    escalation: EscalationView,
    escalations_error: Option<String>,
    timeline: Vec<TimelineView>,
    timeline_error: Option<String>,
    silence_url: String,
    /// A storm's members (oldest first); empty for an issue.
    members: Vec<IncidentView<'a>>,
    members_error: Option<String>,
    /// Members the page leaves out (a storm larger than the page lists).
    members_unlisted: i64,
}

/// What the handler of `/incidents/{id}` gathered; each `Err` is why that part is unreadable.
pub(crate) struct IncidentData<'a> {
    pub now: i64,
    pub inc: &'a Incident,
    pub user: &'a str,
    pub cfg: &'a RoutingConfig,
    pub timeline: Result<Vec<TimelineEntry>, String>,
    /// `Ok(None)`: the event has no stored details.
    pub details: Result<Option<EventDetails>, String>,
    pub deliveries: Result<Vec<DeliveryWithAttempts>, String>,
    /// Channels that only reach the log, with why (`Channels::log_only`).
    pub log_only: &'a BTreeMap<String, String>,
    pub escalations: Result<Vec<FiredEscalation>, String>,
    /// A storm's members as listed (`Ok(&[])` for an issue).
    pub members: Result<&'a [Result<Incident, CorruptRow>], String>,
}

fn split<T, V>(r: Result<Vec<T>, String>, f: impl Fn(T) -> V) -> (Vec<V>, Option<String>) {
    match r {
        Ok(rows) => (rows.into_iter().map(f).collect(), None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

impl<'a> IncidentPageView<'a> {
    pub(crate) fn new(d: IncidentData<'a>) -> Self {
        let inc = d.inc;
        let now = d.now;
        let (timeline, timeline_error) = split(d.timeline, TimelineView::of);
        let (deliveries, deliveries_error) = split(d.deliveries, |x| {
            DeliveryView::of(&x, now).log_only(d.log_only)
        });
        let last_fired = d.escalations.as_ref().ok().and_then(|rows| {
            rows.iter()
                .filter(|e| e.episode == inc.episode)
                .map(|e| e.fired_at)
                .max()
        });
        let (fired, escalations_error) = split(d.escalations, |e| FiredView {
            episode: e.episode,
            step: e.step,
            due: when(e.due_at),
            fired: when(e.fired_at),
            late: duration(e.fired_at - e.due_at),
        });
        let (details, details_error) = match d.details {
            Ok(details) => (details, None),
            Err(e) => (None, Some(e)),
        };
        let mut silence = Vec::new();
        for (k, v) in [
            ("project", &inc.project),
            ("environment", &inc.environment),
            ("rule", &inc.rule),
        ] {
            if let Some(v) = v {
                silence.push((k, v.clone()));
            }
        }
        Self {
            title: format!("Incident #{}", inc.id),
            now_ms: now,
            inc: IncidentView::of(inc),
            root_cause: inc.root_cause.as_deref(),
            seer_root_cause: inc.seer_root_cause.as_deref(),
            seer_pr_url: inc.seer_pr_url.as_deref(),
            delivery_degraded: inc.delivery_degraded_at.map(when),
            ack_expires: inc
                .ack_expires_at()
                .map(|at| format!("{} (in {})", when(at), duration(at - now))),
            user: d.user,
            can_acknowledge: matches!(inc.state, IncidentState::Triggered | IncidentState::Muted),
            can_resolve: inc.state != IncidentState::Resolved,
            next_escalation: countdown(inc.escalation_due(), last_fired, now),
            why: WhyView::of(inc, d.cfg),
            details: details.map(|x| x.for_delivery(d.cfg.delivery.include_pii)),
            details_error,
            deliveries,
            deliveries_error,
            escalation: EscalationView {
                next_due: inc.escalation_due().map(|at| {
                    if at > now {
                        format!("{} (in {})", when(at), duration(at - now))
                    } else {
                        format!("{} (due {} ago)", when(at), duration(now - at))
                    }
                }),
                fired,
            },
            escalations_error,
            timeline,
            timeline_error,
            silence_url: query_url("/silences", &silence),
            members_unlisted: match &d.members {
                // A storm's event count is how many incidents it holds.
                Ok(rows) if inc.kind == IncidentKind::Storm => {
                    (inc.event_count - i64::try_from(rows.len()).unwrap_or(i64::MAX)).max(0)
                }
                _ => 0,
            },
            members: d
                .members
                .as_ref()
                .map(|rows| rows.iter().map(IncidentView::of_row).collect())
                .unwrap_or_default(),
            members_error: d.members.err(),
        }
    }
}

/// A row of `/deliveries`.
#[derive(Debug, Serialize)]
struct TroubledView {
    id: DeliveryId,
    incident_id: Option<IncidentId>,
    incident_title: Option<String>,
    channel: String,
    kind: String,
    status: &'static str,
    dead: bool,
    attempts: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created: String,
    next_retry: Option<String>,
    /// Why the channel only reaches the log, if it does.
    log_only: Option<String>,
}

/// What `/deliveries` shows.
#[derive(Debug, Serialize)]
pub(crate) struct DeliveriesView<'a> {
    title: &'static str,
    user: &'a str,
    /// `Delivery #7 is queued again.` after a Retry.
    notice: Option<String>,
    rows: Vec<TroubledView>,
    error: Option<String>,
}

impl<'a> DeliveriesView<'a> {
    pub(crate) fn new(
        rows: Result<Vec<TroubledDelivery>, String>,
        user: &'a str,
        notice: Option<String>,
        now: i64,
        log_only: &BTreeMap<String, String>,
    ) -> Self {
        let (rows, error) = split(rows, |d| TroubledView {
            log_only: log_only.get(&d.channel).cloned(),
            id: d.id,
            incident_id: d.incident_id,
            incident_title: d.incident_title,
            channel: d.channel,
            kind: d.kind,
            status: d.status.as_str(),
            dead: d.status == DeliveryStatus::Dead,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: short(d.last_error.as_deref()),
            created: when(d.created_at),
            next_retry: (d.status == DeliveryStatus::Failed).then(|| {
                if d.next_attempt_at > now {
                    format!("in {}", duration(d.next_attempt_at - now))
                } else {
                    "due now".to_string()
                }
            }),
        });
        Self {
            title: "Deliveries that need a person",
            user,
            notice,
            rows,
            error,
        }
    }
}
