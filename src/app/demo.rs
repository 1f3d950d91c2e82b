//! `paiid-alerts demo`: the real service on a temporary database with a clock 60 times faster
//! (a 15-minute escalation window passes in 15 seconds), fed by a simulated PaiiD trading
//! backend through signed webhooks, narrating what happens: classified, notified, escalated,
//! acknowledged, resolved with a post-mortem, digest.
//!
//! Everything goes through the public surface (signed `POST /webhooks/sentry`, `/api/...`) except
//! the digest, which is sent now rather than at 08:00. Channels whose secrets are unset (all of
//! them, unless the environment sets some) are delivered to the log channel.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Application;
use crate::clock::{Clock, ScaledClock, SharedClock};
use crate::digest::{DigestKind, DigestRunner};
use crate::domain::IncidentId;
use crate::settings::{Secret, Secrets, Settings};

/// 15 minutes in 15 seconds.
const SPEED: f64 = 60.0;
/// The shipped routing file: the demo shows the product as it is configured out of the box.
const ROUTING: &str = include_str!("../../routing.yaml");
/// Longest the demo waits for one thing to happen (real time).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the demo; with `keep`, the service stays up (and the page reachable) until Ctrl-C.
pub async fn run_demo(keep: bool) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let routing = dir.join("routing.yaml");
    std::fs::write(&routing, ROUTING).with_context(|| format!("writing {}", routing.display()))?;
    let clock = Arc::new(ScaledClock::new(
        chrono::Utc::now().timestamp_millis(),
        SPEED,
    ));
    let mut settings = Settings::new(
        "127.0.0.1:0".parse()?,
        format!("sqlite://{}", dir.join("demo.db").display()),
        routing.clone(),
    );
    // Real channel secrets in the environment are used; everything else reaches the log.
    let mut secrets = Secrets::from_env();
    // Signed webhooks, as Sentry sends them, with a secret made up for this run.
    let webhook_secret = hex::encode(crate::auth::ack_token::AckKeys::generate_secret()?);
    secrets.sentry_client_secret = Some(Secret::new(webhook_secret.clone()));
    secrets.sentry_webhook_token = None;
    let api_token = secrets.api_token.as_ref().map(|t| t.expose().to_string());
    settings.secrets = secrets;
    settings.clock = Some(clock.clone() as SharedClock);
    let app = Application::build(settings).await?;
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let demo = Demo {
        http: crate::http_client::client()?,
        base: base.clone(),
        secret: webhook_secret,
        token: api_token,
        clock: clock.clone(),
    };
    println!(
        "paiid-alerts demo: the real service on a temporary database, clock x{} \
         (15 minutes pass in 15 seconds)",
        clock.factor()
    );
    println!("  web page:  {base}/");
    println!(
        "  routing:   the shipped routing.yaml (copied to {})",
        routing.display()
    );
    let logged: Vec<String> = state
        .channels
        .load()
        .log_only()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    if !logged.is_empty() {
        println!("  log only:  {}", logged.join("; "));
    }
    println!();

    // Ctrl-C or SIGTERM, during the story or after it, ends the demo through the same clean-up
    // as its end: the service stops and the temporary directory goes.
    let stop_signal = stop_signal();
    tokio::pin!(stop_signal);
    let result = tokio::select! {
        r = demo.play(&state) => r,
        () = &mut stop_signal => Err(anyhow::anyhow!("interrupted")),
    };
    if let Err(e) = &result {
        println!("demo failed: {e:#}");
    }
    if !keep && result.is_ok() {
        println!("(`paiid-alerts demo --keep` leaves the service up to look at them.)");
    }
    if keep && result.is_ok() {
        println!();
        println!(
            "The service keeps running at {base}/ (clock x{SPEED}); Ctrl-C or SIGTERM to stop."
        );
        stop_signal.await;
    }
    let _ = stop.send(());
    let served = server.await;
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
    served.context("service task")??;
    result
}

/// Ctrl-C, or SIGTERM where there is one (`kill`, `docker stop`, a service manager).
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// A fresh directory under the system's temporary directory (removed at the end).
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).map_err(|e| anyhow::anyhow!("random name: {e}"))?;
    let dir = std::env::temp_dir().join(format!("paiid-alerts-demo-{}", hex::encode(name)));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

struct Demo {
    http: reqwest::Client,
    base: String,
    secret: String,
    token: Option<String>,
    clock: Arc<ScaledClock>,
}

impl Demo {
    async fn play(&self, state: &crate::http::AppState) -> anyhow::Result<()> {
        let id = self.production_error().await?;
        self.error_burst().await?;
        self.slow_endpoint().await?;
        self.apdex_regression().await?;
        self.escalation(id).await?;
        self.acknowledge(id).await?;
        self.resolve(id).await?;
        self.digest(state).await?;
        println!();
        println!(
            "done: {}/ lists the incidents, {}/incidents/{id} tells #{id}'s whole story.",
            self.base, self.base
        );
        Ok(())
    }

    /// 1. A production error in order placement.
    async fn production_error(&self) -> anyhow::Result<IncidentId> {
        step(1, "production error: order placement fails in prod");
        let critical = self
            .send(
                "event_alert",
                &error_event(&ErrorSpec {
                    event_id: "0001",
                    issue_id: "7001",
                    project: "paiid-backend",
                    environment: "production",
                    title: "OrderRejected: broker returned 502 for AAPL buy 10",
                    transaction: "POST /api/orders",
                    now_s: self.now_s(),
                }),
            )
            .await?;
        let id = incident_id(&critical)?;
        let inc = self.incident(id).await?;
        say(&classification(&inc));
        self.notified(id, &["opened"]).await?;
        Ok(id)
    }

    /// 2. An error burst from market data in staging: the 11th in 5 minutes is High.
    async fn error_burst(&self) -> anyhow::Result<()> {
        step(
            2,
            "error burst: market-data quote fetches failing in staging",
        );
        let mut last = Value::Null;
        for n in 0..12 {
            let event_id = format!("1{n:03}");
            last = self
                .send(
                    "event_alert",
                    &error_event(&ErrorSpec {
                        event_id: &event_id,
                        issue_id: "7002",
                        project: "paiid-market-data",
                        environment: "staging",
                        title: "TimeoutError: tradier /markets/quotes took longer than 5 s",
                        transaction: "GET /api/market/quotes",
                        now_s: self.now_s(),
                    }),
                )
                .await?;
        }
        let burst = incident_id(&last)?;
        let inc = self.incident(burst).await?;
        say(&format!(
            "{} events: {}",
            inc["event_count"].as_i64().unwrap_or(0),
            classification(&inc)
        ));
        self.notified(burst, &["opened", "severity_raised"]).await?;
        Ok(())
    }

    /// 3. A slow endpoint: p95 of order placement over 2 s.
    async fn slow_endpoint(&self) -> anyhow::Result<()> {
        step(
            3,
            "slow endpoint: p95(transaction.duration) of POST /api/orders at 2450 ms",
        );
        let slow = self
            .send(
                "metric_alert",
                &metric_alert(
                    "501",
                    "Slow order placement",
                    "p95(transaction.duration)",
                    "2450.0 p95(transaction.duration) in the last 10 minutes",
                    "critical",
                ),
            )
            .await?;
        let slow_id = incident_id(&slow)?;
        say(&classification(&self.incident(slow_id).await?));
        self.notified(slow_id, &["opened"]).await?;
        Ok(())
    }

    /// 4. An Apdex regression: Medium, for the daily digest.
    async fn apdex_regression(&self) -> anyhow::Result<()> {
        step(4, "Apdex regression: apdex(300) at 0.72");
        let apdex = self
            .send(
                "metric_alert",
                &metric_alert(
                    "502",
                    "Apdex regression on the trading API",
                    "apdex(300)",
                    "0.72 apdex(300) in the last 1 hour",
                    "warning",
                ),
            )
            .await?;
        let inc = self.incident(incident_id(&apdex)?).await?;
        say(&format!(
            "{}: {}",
            classification(&inc),
            what_the_policy_does(&inc["policy"])
        ));
        Ok(())
    }

    /// 5. Nobody acknowledges the Critical: it escalates after 15 (demo) minutes.
    async fn escalation(&self, id: IncidentId) -> anyhow::Result<()> {
        step(
            5,
            &format!("nobody acknowledges #{id}: waiting out the 15-minute window"),
        );
        let fired = self
            .until(|| async {
                let inc = self.get(&format!("/api/incidents/{id}")).await.ok()?;
                timeline_has(&inc, "escalated").then_some(inc)
            })
            .await
            .context("the escalation did not fire")?;
        let to: Vec<String> = fired["deliveries"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .filter(|d| d["kind"] == "escalation")
                    .filter_map(|d| d["channel"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let at = fired["timeline"]
            .as_array()
            .and_then(|t| t.iter().find(|e| e["kind"] == "escalated"))
            .and_then(|e| e["at"].as_str())
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or_else(|| "?".to_string(), |at| at.format("%H:%M").to_string());
        say(&format!(
            "escalated at {at} (demo time) to {}",
            to.join(", ")
        ));
        self.notified(id, &["escalation"]).await?;
        Ok(())
    }

    /// 6. The on-call engineer acknowledges.
    async fn acknowledge(&self, id: IncidentId) -> anyhow::Result<()> {
        step(6, "the on-call engineer acknowledges");
        self.post(
            &format!("/api/incidents/{id}/ack"),
            &json!({ "by": "dana (on call)" }),
        )
        .await?;
        let inc = self.incident(id).await?;
        if inc["state"] != "acknowledged" {
            bail!("#{id} is {} after the acknowledgement", inc["state"]);
        }
        let next = match inc["next_escalation_at"].as_str() {
            None => "no further escalation".to_string(),
            Some(at) => format!("next escalation at {at}"),
        };
        say(&format!(
            "acknowledged #{id} by {}: {next}",
            inc["acknowledged_by"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    /// 7. Fixed: resolved with the root cause; the post-mortem goes to #paiid-alerts.
    async fn resolve(&self, id: IncidentId) -> anyhow::Result<()> {
        step(7, "fixed: resolved with the root cause");
        let root_cause =
            "broker gateway pool exhausted after the 09:30 open; pool size raised from 8 to 32";
        self.post(
            &format!("/api/incidents/{id}/resolve"),
            &json!({ "by": "dana (on call)", "note": root_cause }),
        )
        .await?;
        let inc = self.incident(id).await?;
        if inc["state"] != "resolved" {
            bail!("#{id} is {} after the resolution", inc["state"]);
        }
        say(&format!(
            "resolved #{id}; root cause: {}",
            inc["root_cause"].as_str().unwrap_or("(none stored)")
        ));
        self.notified(id, &["post_mortem"]).await?;
        Ok(())
    }

    /// 8. The daily digest of Medium incidents, sent now instead of at 08:00.
    async fn digest(&self, state: &crate::http::AppState) -> anyhow::Result<()> {
        step(8, "digest: the daily digest of Medium incidents, sent now");
        let runner = DigestRunner::new(
            state.store.clone(),
            state.cfg.clone(),
            state.channels.clone(),
            state.clock.clone(),
            state.public_url.clone(),
        );
        let outcomes = runner.send_now(DigestKind::Daily).await?;
        if outcomes.is_empty() {
            bail!("no digest was sent (is there a `digest:` section?)");
        }
        for o in outcomes {
            say(&format!("digest: {o}"));
        }
        Ok(())
    }

    fn now_s(&self) -> f64 {
        self.clock.now_ms() as f64 / 1000.0
    }

    /// A webhook as Sentry sends it: signed with the client secret.
    async fn send(&self, resource: &str, body: &Value) -> anyhow::Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let signature = crate::intake::signature::sign(self.secret.as_bytes(), &bytes);
        let r = self
            .http
            .post(format!("{}/webhooks/sentry", self.base))
            .header("content-type", "application/json")
            .header("Sentry-Hook-Resource", resource)
            .header("Sentry-Hook-Signature", signature)
            .body(bytes)
            .send()
            .await?;
        let status = r.status();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("webhook answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// The incident as the service stored it (`GET /api/incidents/{id}`): what the narration
    /// reports, rather than what the demo expects.
    async fn incident(&self, id: IncidentId) -> anyhow::Result<Value> {
        self.get(&format!("/api/incidents/{id}")).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status();
        if !status.is_success() {
            bail!("GET {path}: {status}");
        }
        Ok(r.json().await?)
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status}: {answer}");
        }
        Ok(answer)
    }

    /// Waits until every delivery of `kinds` for incident `id` is delivered, and says where.
    async fn notified(&self, id: IncidentId, kinds: &[&str]) -> anyhow::Result<()> {
        let done = self
            .until(|| async {
                let inc = self.get(&format!("/api/incidents/{id}")).await.ok()?;
                let ds: Vec<Value> = inc["deliveries"]
                    .as_array()?
                    .iter()
                    .filter(|d| kinds.iter().any(|k| d["kind"] == *k))
                    .cloned()
                    .collect();
                (!ds.is_empty() && ds.iter().all(|d| d["status"] == "delivered")).then_some(ds)
            })
            .await
            .with_context(|| {
                format!(
                    "the {} deliveries of #{id} were not delivered",
                    kinds.join("/")
                )
            })?;
        let channels: Vec<&str> = done.iter().filter_map(|d| d["channel"].as_str()).collect();
        let word = match kinds.first().copied().unwrap_or_default() {
            "post_mortem" => "post-mortem sent to",
            "escalation" => "escalation notified",
            _ => "notified",
        };
        say(&format!("{word} {}", channels.join(", ")));
        Ok(())
    }

    /// Polls `f` every 100 ms (real time) until it answers, for at most [`STEP_TIMEOUT`].
    async fn until<T, F, Fut>(&self, mut f: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(v) = f().await {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("gave up after {} s", STEP_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn step(n: u32, title: &str) {
    println!("[{n}/8] {title}");
}

fn say(line: &str) {
    println!("      -> {line}");
}

/// "classified high by rule `high-error-rate` -> incident #2", from a stored incident.
fn classification(inc: &Value) -> String {
    let id = inc["id"].as_i64().unwrap_or(0);
    let severity = inc["severity"].as_str().unwrap_or("?");
    match inc["rule"].as_str() {
        Some(rule) => format!("classified {severity} by rule `{rule}` -> incident #{id}"),
        None => format!("{severity}: no rule matched -> incident #{id}"),
    }
}

/// What an incident's frozen policy does with it, for one that pages nobody.
fn what_the_policy_does(policy: &Value) -> String {
    let notify: Vec<&str> = policy["notify"]
        .as_array()
        .map(|n| n.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let digest = policy["digest"].as_str().filter(|d| *d != "none");
    match (notify.is_empty(), digest) {
        (true, Some(d)) => format!("no page, it goes in the {d} digest"),
        (true, None) => "no page and no digest".to_string(),
        (false, _) => format!("pages {}", notify.join(", ")),
    }
}

fn incident_id(answer: &Value) -> anyhow::Result<IncidentId> {
    answer["incident_id"]
        .as_i64()
        .map(IncidentId)
        .with_context(|| format!("no incident in the answer: {answer}"))
}

fn timeline_has(incident: &Value, kind: &str) -> bool {
    incident["timeline"]
        .as_array()
        .is_some_and(|t| t.iter().any(|e| e["kind"] == kind))
}

struct ErrorSpec<'a> {
    event_id: &'a str,
    issue_id: &'a str,
    project: &'a str,
    environment: &'a str,
    title: &'a str,
    transaction: &'a str,
    now_s: f64,
}

/// An issue alert as Sentry sends it for an error of the instrumented backend, with the
/// breadcrumbs PaiiD's middleware leaves (`capture_trading_event`, `capture_market_data_fetch`,
/// `capture_cache_operation`).
fn error_event(s: &ErrorSpec<'_>) -> Value {
    let event_id = format!("{:0>32}", s.event_id);
    let t = s.now_s;
    json!({
        "action": "triggered",
        "installation": { "uuid": "00000000-0000-4000-8000-00000000demo" },
        "data": {
            "triggered_rule": "PaiiD backend errors",
            "event": {
                "event_id": event_id,
                "issue_id": s.issue_id,
                "project": 1,
                "platform": "python",
                "release": "paiid-backend@1.4.2",
                "environment": s.environment,
                "level": "error",
                "title": s.title,
                "culprit": s.transaction,
                "transaction": s.transaction,
                "timestamp": t,
                "url": format!("https://sentry.io/api/0/projects/paiid/{}/events/{event_id}/", s.project),
                "web_url": format!("https://sentry.io/organizations/paiid/issues/{}/events/{event_id}/", s.issue_id),
                "tags": [
                    ["environment", s.environment],
                    ["level", "error"],
                    ["transaction", s.transaction],
                    ["service", "paiid-backend"]
                ],
                "request": { "method": s.transaction.split(' ').next().unwrap_or("GET"),
                             "url": format!("https://api.paiid.ai{}", s.transaction.split(' ').nth(1).unwrap_or("/")) },
                "exception": { "values": [{
                    "type": s.title.split(':').next().unwrap_or("Error"),
                    "value": s.title.split_once(": ").map_or(s.title, |(_, v)| v),
                    "stacktrace": { "frames": [
                        { "filename": "starlette/routing.py", "function": "handle", "lineno": 73, "in_app": false },
                        { "filename": "app/routers/orders.py", "function": "place_order", "lineno": 142, "in_app": true }
                    ]}
                }]},
                "breadcrumbs": { "values": [
                    { "timestamp": t - 3.0, "category": "cache", "level": "info",
                      "message": "cache get market:indices (hit)",
                      "data": { "operation": "get", "key": "market:indices", "hit": true } },
                    { "timestamp": t - 2.0, "category": "market-data", "level": "info",
                      "message": "tradier /markets/quotes ok in 245.3 ms",
                      "data": { "source": "tradier", "endpoint": "/markets/quotes", "success": true, "duration_ms": 245.3 } },
                    { "timestamp": t - 1.0, "category": "trading", "level": "info",
                      "message": "order AAPL buy 10 market",
                      "data": { "symbol": "AAPL", "side": "buy", "quantity": 10, "order_type": "market" } }
                ]}
            }
        }
    })
}

/// A metric alert as Sentry sends it.
fn metric_alert(
    rule_id: &str,
    name: &str,
    aggregate: &str,
    description: &str,
    action: &str,
) -> Value {
    json!({
        "action": action,
        "installation": { "uuid": "00000000-0000-4000-8000-00000000demo" },
        "data": {
            "metric_alert": {
                "id": format!("9{rule_id}"),
                "title": name,
                "status": if action == "critical" { 2 } else { 1 },
                "alert_rule": {
                    "id": rule_id,
                    "name": name,
                    "aggregate": aggregate,
                    "projects": ["paiid-backend"]
                }
            },
            "description_text": description,
            "description_title": name
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_narration_reports_the_stored_rule_severity_and_policy() {
        let inc = json!({ "id": 4, "severity": "medium", "rule": "apdex-regression",
                          "policy": { "notify": [], "escalate_to": [], "digest": "daily" } });
        assert_eq!(
            classification(&inc),
            "classified medium by rule `apdex-regression` -> incident #4"
        );
        assert_eq!(
            what_the_policy_does(&inc["policy"]),
            "no page, it goes in the daily digest"
        );
        let other = json!({ "id": 9, "severity": "low", "rule": null,
                            "policy": { "notify": ["slack-alerts"], "digest": null } });
        assert_eq!(
            classification(&other),
            "low: no rule matched -> incident #9"
        );
        assert_eq!(what_the_policy_does(&other["policy"]), "pages slack-alerts");
    }

    #[test]
    fn the_simulated_payloads_are_read_as_sentry_payloads_with_their_breadcrumbs() {
        let e = error_event(&ErrorSpec {
            event_id: "1",
            issue_id: "42",
            project: "paiid-backend",
            environment: "production",
            title: "OrderRejected: broker returned 502",
            transaction: "POST /api/orders",
            now_s: 1_780_000_000.0,
        });
        let body = serde_json::to_vec(&e).unwrap();
        let f = crate::intake::sentry::parse(Some("event_alert"), &body).unwrap();
        assert_eq!(f.project.as_deref(), Some("paiid-backend"));
        assert_eq!(f.environment.as_deref(), Some("production"));
        assert_eq!(f.level.as_deref(), Some("error"));
        assert_eq!(f.issue_id.as_deref(), Some("42"));
        let d = crate::intake::details::extract(&f, &body, false);
        let categories: Vec<String> = d
            .breadcrumbs
            .iter()
            .filter_map(|b| b.category.clone())
            .collect();
        assert_eq!(categories, vec!["cache", "market-data", "trading"]);

        let m = metric_alert(
            "7",
            "Slow",
            "p95(transaction.duration)",
            "2450.0 p95(transaction.duration) in the last 10 minutes",
            "critical",
        );
        let f =
            crate::intake::sentry::parse(Some("metric_alert"), &serde_json::to_vec(&m).unwrap())
                .unwrap();
        let metric = f.metric.unwrap();
        assert!(metric.is_transaction_duration());
        assert_eq!(metric.value, Some(2450.0));
    }
}
