//! Silences over HTTP: the JSON API (`POST/GET /api/silences`, `GET/DELETE
//! /api/silences/{id}`, bearer `API_TOKEN` like the other API routes), the `/silences` page
//! (list, create, expire; POST forms protected like the other pages), and the client behind
//! `paiid-alerts silence add|list|expire` ([`client`]), which talks to this API as `amtool`
//! talks to Alertmanager's.

pub(crate) mod client;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::api::{require_api_reader, require_api_token};
use super::error::ApiError;
use super::extract::{Json as JsonBody, Path, Query};
use super::pages::{Pages, web_actor, web_login, when};
use crate::clock::ms_to_datetime;
use crate::config::HumanDuration;
use crate::domain::{Matchers, NewSilence, Severity, Silence, SilenceId, SilenceState};
use crate::incidents::silences::{Expired, SilenceServiceError, Silences, never_matches};
use crate::store::silences as sql;

/// How long a silence lasts when neither `ends_at` nor `duration` is given.
const DEFAULT_DURATION_MS: i64 = 2 * 60 * 60 * 1000;
/// Silences listed at most (newest first).
const LIST_LIMIT: i64 = 500;
/// Longest author and comment accepted.
const MAX_AUTHOR_CHARS: usize = 200;
const MAX_COMMENT_CHARS: usize = 2_000;

pub(crate) fn router(pages: Pages) -> Router<AppState> {
    Router::new()
        .route("/api/silences", post(create).get(list))
        .route("/api/silences/{id}", get(show).delete(expire))
        .route("/silences", get(silences_page).post(web_create))
        .route("/silences/{id}/expire", post(web_expire))
        .layer(Extension(pages))
}

fn service(state: &AppState) -> Silences {
    Silences {
        store: state.store.clone(),
        clock: state.clock.clone(),
        wakers: state.incidents.wakers.clone(),
        cfg: state.cfg.clone(),
    }
}

impl From<SilenceServiceError> for ApiError {
    fn from(e: SilenceServiceError) -> Self {
        match e {
            SilenceServiceError::Invalid(e) => {
                ApiError::bad_request("invalid_silence", e.to_string())
            }
            SilenceServiceError::NotFound(id) => {
                ApiError::NotFound(format!("silence {id} not found"))
            }
            SilenceServiceError::Store(e) => e.into(),
        }
    }
}

/// The API view of a silence: times as RFC 3339.
#[derive(Debug, Serialize)]
pub(crate) struct SilenceView {
    id: SilenceId,
    state: SilenceState,
    matchers: Matchers,
    /// The matchers in one line (`project=api title~/timeout/`).
    matches: String,
    starts_at: String,
    ends_at: String,
    author: String,
    comment: String,
    let_through: Vec<Severity>,
    created_at: String,
    expired_at: Option<String>,
    /// Incidents it holds now (stored and counted, told to nobody).
    holding: i64,
}

fn rfc3339(ms: i64) -> String {
    ms_to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl SilenceView {
    fn of(s: &Silence, now: i64, holding: i64) -> Self {
        Self {
            id: s.id,
            state: s.state(now),
            matchers: s.matchers.clone(),
            matches: s.matchers.describe(),
            starts_at: rfc3339(s.starts_at),
            ends_at: rfc3339(s.ends_at),
            author: s.author.clone(),
            comment: s.comment.clone(),
            let_through: s.let_through.clone(),
            created_at: rfc3339(s.created_at),
            expired_at: s.expired_at.map(rfc3339),
            holding,
        }
    }
}

/// `POST /api/silences`. Times are RFC 3339 strings or epoch milliseconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// Read on its own, so that a bad matcher is `invalid_matchers`, not `invalid_json`.
    matchers: Option<Value>,
    starts_at: Option<Value>,
    ends_at: Option<Value>,
    /// `30m`, `2h`, `1d` (from `starts_at`); instead of `ends_at`.
    duration: Option<String>,
    author: Option<String>,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    let_through: Vec<String>,
}

/// The fields of a silence as given (API body, form or CLI), before they are checked.
#[derive(Debug, Default)]
pub(crate) struct SilenceInput {
    pub matchers: Matchers,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub duration: Option<String>,
    pub author: String,
    pub comment: String,
    pub let_through: Vec<String>,
}

impl SilenceInput {
    /// The silence asked for, or a 400 naming what is wrong.
    fn into_new(self, now: i64) -> Result<NewSilence, ApiError> {
        let starts_at = self.starts_at.unwrap_or(now);
        let ends_at = match (self.ends_at, self.duration.as_deref().map(str::trim)) {
            (Some(_), Some(d)) if !d.is_empty() => {
                return Err(ApiError::bad_request(
                    "invalid_silence",
                    "give `ends_at` or `duration`, not both",
                ));
            }
            (Some(end), _) => end,
            (None, Some(d)) if !d.is_empty() => {
                let d = HumanDuration::parse(d).map_err(|e| {
                    ApiError::bad_request("invalid_silence", format!("duration: {e}"))
                })?;
                starts_at.saturating_add(d.as_millis_i64())
            }
            (None, _) => starts_at.saturating_add(DEFAULT_DURATION_MS),
        };
        let let_through = self
            .let_through
            .iter()
            .map(|s| {
                s.trim().parse::<Severity>().map_err(|e| {
                    ApiError::bad_request("invalid_silence", format!("let_through: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let author = self.author.trim().to_string();
        if author.chars().count() > MAX_AUTHOR_CHARS {
            return Err(ApiError::bad_request(
                "invalid_silence",
                format!("author is longer than {MAX_AUTHOR_CHARS} characters"),
            ));
        }
        if self.comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(ApiError::bad_request(
                "invalid_silence",
                format!("comment is longer than {MAX_COMMENT_CHARS} characters"),
            ));
        }
        self.matchers
            .validate()
            .map_err(|e| ApiError::bad_request("invalid_matchers", e.to_string()))?;
        let new = NewSilence {
            matchers: self.matchers,
            starts_at,
            ends_at,
            author,
            comment: self.comment.trim().to_string(),
            let_through,
        };
        new.validate(now)
            .map_err(|e| ApiError::bad_request("invalid_silence", e.to_string()))?;
        Ok(new)
    }
}

/// A time given as RFC 3339 text or as epoch milliseconds.
fn time_arg(field: &str, v: Option<&Value>) -> Result<Option<i64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_silence",
                format!("{field}: {n} is not whole epoch milliseconds"),
            )
        }),
        Some(Value::String(s)) => parse_time(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request("invalid_silence", format!("{field}: {e}"))),
        Some(other) => Err(ApiError::bad_request(
            "invalid_silence",
            format!("{field}: expected RFC 3339 text or epoch milliseconds, got {other}"),
        )),
    }
}

/// RFC 3339 (`2026-12-05T18:00:00Z`) or epoch milliseconds as text.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("`{s}` is not an RFC 3339 time (e.g. 2026-12-05T18:00:00Z): {e}"))
}

fn matchers_from(v: Option<Value>) -> Result<Matchers, ApiError> {
    let v = v.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_matchers",
            "`matchers` is required (any of project, environment, rule, severity, level, tags, title_regex)",
        )
    })?;
    serde_json::from_value(v).map_err(|e| ApiError::bad_request("invalid_matchers", e.to_string()))
}

async fn holding_counts(state: &AppState) -> Result<BTreeMap<SilenceId, i64>, ApiError> {
    let mut conn = state.store.reader().acquire().await?;
    Ok(sql::held_counts(&mut conn).await?.into_iter().collect())
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    require_api_token(&state, &headers)?;
    let now = state.clock.now_ms();
    let input = SilenceInput {
        matchers: matchers_from(body.matchers)?,
        starts_at: time_arg("starts_at", body.starts_at.as_ref())?,
        ends_at: time_arg("ends_at", body.ends_at.as_ref())?,
        duration: body.duration,
        author: body.author.unwrap_or_default(),
        comment: body.comment,
        let_through: body.let_through,
    };
    let created = service(&state).create(input.into_new(now)?).await?;
    let view = SilenceView::of(&created.silence, state.clock.now_ms(), 0);
    // `warnings`: why it may hold nothing under the routing file in force (stored all the same).
    Ok((
        StatusCode::CREATED,
        Json(json!({ "silence": view, "warnings": created.warnings })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `active`, `pending` or `expired`; all when absent.
    state: Option<String>,
}

fn state_filter(s: Option<&str>) -> Result<Option<SilenceState>, ApiError> {
    match s.map(str::trim) {
        None | Some("") | Some("all") => Ok(None),
        Some("active") => Ok(Some(SilenceState::Active)),
        Some("pending") => Ok(Some(SilenceState::Pending)),
        Some("expired") => Ok(Some(SilenceState::Expired)),
        Some(other) => Err(ApiError::bad_request(
            "bad_query",
            format!(
                "unknown silence state `{other}` (expected one of: active, pending, expired, all)"
            ),
        )),
    }
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require_api_reader(&state, &headers)?;
    let only = state_filter(q.state.as_deref())?;
    let reader = state.store.reader();
    let rows = {
        let mut conn = reader.acquire().await?;
        sql::list(&mut conn, reader.corrupt(), LIST_LIMIT).await?
    };
    let held = holding_counts(&state).await?;
    let now = state.clock.now_ms();
    let views: Vec<SilenceView> = rows
        .iter()
        .filter(|s| only.is_none_or(|st| s.state(now) == st))
        .map(|s| SilenceView::of(s, now, held.get(&s.id).copied().unwrap_or(0)))
        .collect();
    Ok(Json(json!({ "silences": views })))
}

async fn load(state: &AppState, id: SilenceId) -> Result<Silence, ApiError> {
    let reader = state.store.reader();
    let mut conn = reader.acquire().await?;
    sql::get(&mut conn, reader.corrupt(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("silence {id} not found")))
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<SilenceId>,
) -> Result<Json<Value>, ApiError> {
    require_api_reader(&state, &headers)?;
    let silence = load(&state, id).await?;
    let held = holding_counts(&state).await?;
    let view = SilenceView::of(
        &silence,
        state.clock.now_ms(),
        held.get(&id).copied().unwrap_or(0),
    );
    Ok(Json(json!({ "silence": view })))
}

/// `DELETE /api/silences/{id}`: expires it (kept in the history) and notifies the incidents it
/// held that are still unacknowledged.
async fn expire(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<SilenceId>,
) -> Result<Json<Value>, ApiError> {
    require_api_token(&state, &headers)?;
    let Expired {
        silence,
        changed,
        notified,
    } = service(&state).expire(id).await?;
    let result = if changed { "expired" } else { "already_ended" };
    let view = SilenceView::of(&silence, state.clock.now_ms(), 0);
    Ok(Json(
        json!({ "result": result, "silence": view, "notified_incidents": notified }),
    ))
}

// ---- the web page ----

/// `/silences?created=N|expired=N` (what the last form did) and, to prefill the form (the
/// incident page's "silence alerts like this"), any matcher.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    created: Option<i64>,
    expired: Option<i64>,
    project: Option<String>,
    environment: Option<String>,
    rule: Option<String>,
    severity: Option<String>,
    level: Option<String>,
    title_regex: Option<String>,
    tags: Option<String>,
}

#[derive(Debug, Serialize)]
struct PageRow {
    id: SilenceId,
    state: SilenceState,
    matches: String,
    starts: String,
    ends: String,
    author: String,
    comment: String,
    let_through: String,
    holding: i64,
    can_expire: bool,
    /// Why it may hold nothing under the routing file in force (ended ones: none).
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct PageView<'a> {
    title: &'static str,
    user: &'a str,
    notice: Option<String>,
    error: Option<String>,
    rows: Vec<PageRow>,
    prefill: BTreeMap<&'static str, String>,
    severities: Vec<&'static str>,
}

async fn silences_page(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<PageQuery>, QueryRejection>,
) -> Response {
    let user = match web_login(&state, &pages, &headers) {
        Ok(user) => user.unwrap_or_default(),
        Err(r) => return *r,
    };
    let q = match query {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => {
            return pages
                .message(StatusCode::BAD_REQUEST, "Bad query", &e.body_text())
                .into_response();
        }
    };
    let notice = match (q.created, q.expired) {
        (Some(id), _) => Some(format!("Silence #{id} created.")),
        (None, Some(id)) => Some(format!(
            "Silence #{id} expired; the incidents it held that are still unacknowledged are notified now."
        )),
        (None, None) => None,
    };
    let now = state.clock.now_ms();
    let cfg = state.cfg.load();
    let rows = async {
        let reader = state.store.reader();
        let mut conn = reader.acquire().await?;
        let rows = sql::list(&mut conn, reader.corrupt(), LIST_LIMIT).await?;
        let held: BTreeMap<SilenceId, i64> =
            sql::held_counts(&mut conn).await?.into_iter().collect();
        Ok::<_, crate::store::StoreError>((rows, held))
    }
    .await;
    let (rows, error) = match rows {
        Ok((rows, held)) => (
            rows.iter()
                .map(|s| {
                    let state = s.state(now);
                    PageRow {
                        id: s.id,
                        state,
                        matches: s.matchers.describe(),
                        starts: when(s.starts_at),
                        ends: when(s.effective_end()),
                        author: s.author.clone(),
                        comment: s.comment.clone(),
                        let_through: s
                            .let_through
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        holding: held.get(&s.id).copied().unwrap_or(0),
                        can_expire: state != SilenceState::Expired,
                        warnings: if state == SilenceState::Expired {
                            Vec::new()
                        } else {
                            never_matches(&s.matchers, &cfg)
                        },
                    }
                })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    // Every key present (empty when not given): the templates refuse to print an unknown one.
    let mut prefill = BTreeMap::new();
    for (k, v) in [
        ("project", q.project),
        ("environment", q.environment),
        ("rule", q.rule),
        ("severity", q.severity),
        ("level", q.level),
        ("title_regex", q.title_regex),
        ("tags", q.tags),
    ] {
        prefill.insert(k, v.map(|v| v.trim().to_string()).unwrap_or_default());
    }
    let view = PageView {
        title: "Silences",
        user: &user,
        notice,
        error,
        rows,
        prefill,
        severities: vec!["critical", "high", "medium", "low", "unclassified"],
    };
    pages
        .render(StatusCode::OK, "pages/silences.html", &view)
        .into_response()
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// `tags` as typed in the form: `service=orders, region=eu`.
fn parse_tags(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("tag `{part}` is not key=value"))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// The form's fields as a silence: blank fields are no matcher.
fn input_from_form(form: &[(String, String)], author: String) -> Result<SilenceInput, String> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let severity = field("severity")
        .map(|s| s.parse::<Severity>().map_err(|e| e.to_string()))
        .transpose()?;
    let title_regex = field("title_regex")
        .map(|r| crate::domain::TitleRegex::new(&r).map_err(|e| e.to_string()))
        .transpose()?;
    let matchers = Matchers {
        project: field("project"),
        environment: field("environment"),
        rule: field("rule"),
        severity,
        level: field("level"),
        tags: parse_tags(&field("tags").unwrap_or_default())?,
        title_regex,
    };
    Ok(SilenceInput {
        matchers,
        starts_at: None,
        ends_at: None,
        duration: field("duration"),
        author,
        comment: field("comment").unwrap_or_default(),
        let_through: form
            .iter()
            .filter(|(k, v)| k == "let_through" && !v.trim().is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
    })
}

async fn web_create(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = super::form::text(&body);
    let actor = match web_actor(&state, &pages, &headers, &text) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let form = super::form::parse(&text);
    let bad = |detail: &str| {
        pages
            .message(StatusCode::BAD_REQUEST, "Silence not created", detail)
            .into_response()
    };
    let input = match input_from_form(&form, actor.name) {
        Ok(i) => i,
        Err(e) => return bad(&e),
    };
    let new = match input.into_new(state.clock.now_ms()) {
        Ok(n) => n,
        Err(e) => return bad(&e.to_string()),
    };
    match service(&state).create(new).await {
        Ok(c) => see_other(&format!("/silences?created={}", c.silence.id)),
        Err(SilenceServiceError::Invalid(e)) => bad(&e.to_string()),
        Err(e) => pages
            .message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                &e.to_string(),
            )
            .into_response(),
    }
}

async fn web_expire(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
    Path(id): Path<SilenceId>,
    body: Bytes,
) -> Response {
    let text = super::form::text(&body);
    let actor = match web_actor(&state, &pages, &headers, &text) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match service(&state).expire(id).await {
        Ok(e) => {
            tracing::info!(silence = id.get(), by = %actor.name, notified = e.notified.len(), "silence expired from the web page");
            see_other(&format!("/silences?expired={id}"))
        }
        Err(SilenceServiceError::NotFound(_)) => pages
            .message(StatusCode::NOT_FOUND, "Not found", "No such silence.")
            .into_response(),
        Err(e) => pages
            .message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                &e.to_string(),
            )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_become_matchers_and_blank_ones_none() {
        let form = crate::http::form::parse(
            "project=trading-api&environment=&tags=service%3Dorders%2C+region%3Deu&title_regex=time.*out&duration=30m&let_through=critical&comment=deploy",
        );
        let input = input_from_form(&form, "ana".into()).unwrap();
        assert_eq!(input.matchers.project.as_deref(), Some("trading-api"));
        assert_eq!(input.matchers.environment, None);
        assert_eq!(
            input.matchers.tags.get("region").map(String::as_str),
            Some("eu")
        );
        assert_eq!(input.let_through, vec!["critical".to_string()]);
        let new = input.into_new(1_000).unwrap();
        assert_eq!(new.ends_at, 1_000 + 30 * 60 * 1000);
        assert_eq!(new.let_through, vec![Severity::Critical]);
        assert!(input_from_form(&crate::http::form::parse("title_regex=(x"), "a".into()).is_err());
        assert!(parse_tags("novalue").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_epoch_ms() {
        assert_eq!(parse_time("1000"), Ok(1000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_time("tomorrow").is_err());
    }
}
