//! Daily digest and weekly summary against a real SMTP server (scripts/smtp_sink.py), a
//! temporary SQLite file and a manual clock. A "restart" or a "second instance" is a second
//! `Store` + `DigestRunner` on the same database file.

#[path = "support/smtp.rs"]
mod smtp;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use paiid_alerts::testing::clock::{ManualClock, SharedClock};
use paiid_alerts::testing::config::RoutingConfig;
use paiid_alerts::testing::digest::{
    DigestError, DigestKind, DigestRunner, DigestStatus, SkipReason,
};
use paiid_alerts::testing::notify::registry::{ChannelEnv, Channels};
use paiid_alerts::testing::notify::render::Templates;
use paiid_alerts::testing::store::digests::{self, ClaimResult, ClaimRules, PeriodKey};
use paiid_alerts::testing::store::{Durability, Store};
use smtp::{ReceivedMail, SmtpSink};
use tokio_util::sync::CancellationToken;

const PUBLIC_URL: &str = "https://alerts.test";
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn utc(y: i32, mo: u32, d: u32, h: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0)
        .unwrap()
        .timestamp_millis()
}

/// Wednesday 2026-11-25 08:00 UTC: a daily fire. Its period is [Tue 08:00, Wed 08:00).
fn t0() -> i64 {
    utc(2026, 11, 25, 8)
}

fn dt(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

struct Options {
    weekly: bool,
    send_when_empty: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            weekly: false,
            send_when_empty: true,
        }
    }
}

fn config(o: &Options) -> Arc<RoutingConfig> {
    let mut text = String::from(
        r#"
channels:
  ops-email:
    type: email
    to: ["trading-ops@paiid.ai"]
severities:
  medium: { digest: daily }
digest:
  schedule: "0 0 8 * * *"
  timezone: "UTC"
  to: [ops-email]
  empty_note: "Nothing medium today."
"#,
    );
    if o.weekly {
        text.push_str("  weekly_schedule: \"0 0 9 * * MON\"\n");
    }
    if !o.send_when_empty {
        text.push_str("  send_when_empty: false\n");
    }
    Arc::new(RoutingConfig::parse(Path::new("t.yaml"), &text, &|_| None).expect("test config"))
}

fn channels(cfg: &RoutingConfig, smtp_url: String) -> Arc<Channels> {
    let env = ChannelEnv {
        smtp_url: Some(smtp_url),
        email_from: "alerts@paiid.ai".into(),
        slack_api_url: String::new(),
        pagerduty_events_url: String::new(),
    };
    Arc::new(Channels::build(cfg, &env, Arc::new(Templates::defaults())).expect("channels"))
}

struct Env {
    dir: tempfile::TempDir,
    sink: SmtpSink,
    clock: Arc<ManualClock>,
    cfg: Arc<RoutingConfig>,
    channels: Arc<Channels>,
}

impl Env {
    async fn new(o: Options, now_ms: i64) -> Self {
        let sink = SmtpSink::start().await;
        let cfg = config(&o);
        let channels = channels(&cfg, sink.url());
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            sink,
            clock: Arc::new(ManualClock::new(now_ms)),
            cfg,
            channels,
        }
    }

    /// A new connection set on the same database file: what a restart or another instance has.
    async fn store(&self) -> Store {
        let url = format!("sqlite://{}/digest.db", self.dir.path().display());
        Store::open(&url, Durability::Normal).await.expect("store")
    }

    fn runner_with(&self, store: Store, channels: Arc<Channels>) -> DigestRunner {
        let clock: SharedClock = self.clock.clone();
        DigestRunner::new(
            store,
            self.cfg.clone(),
            channels,
            clock,
            Arc::from(PUBLIC_URL),
        )
    }

    async fn runner(&self) -> DigestRunner {
        self.runner_with(self.store().await, self.channels.clone())
    }

    /// The mails received so far, which must be exactly `n`. Call it once the step that sends
    /// (`run_due`, `send_now`) has returned, or the loops that send have stopped: the sink
    /// stores a message before it accepts it, so nothing more of theirs can arrive later.
    async fn exactly(&self, n: usize) -> Vec<ReceivedMail> {
        let mails = self.sink.received();
        assert_eq!(
            mails.len(),
            n,
            "expected exactly {n} mail(s), got: {:#?}",
            mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
        );
        mails
    }
}

/// An incident row as the writer would leave it; only what the scenario needs is set.
struct Row {
    severity: &'static str,
    state: &'static str,
    title: String,
    project: Option<&'static str>,
    rule: Option<&'static str>,
    metric: Option<f64>,
    /// `events.details` of its alerts, as intake stores them.
    details: Option<&'static str>,
    events: i64,
    opened_at: i64,
    last_seen: i64,
    acked: Option<i64>,
    resolved: Option<i64>,
}

fn row(severity: &'static str, title: &str, last_seen: i64) -> Row {
    Row {
        severity,
        state: "triggered",
        title: title.to_string(),
        project: Some("paiid-backend"),
        rule: None,
        metric: None,
        details: None,
        events: 1,
        opened_at: last_seen,
        last_seen,
        acked: None,
        resolved: None,
    }
}

fn apdex(title: &str, project: &'static str, value: f64, events: i64, last_seen: i64) -> Row {
    Row {
        project: Some(project),
        rule: Some("apdex-regression"),
        metric: Some(value),
        details: Some(r#"{"metric":{"kind":"apdex","value":0.5}}"#),
        events,
        ..row("medium", title, last_seen)
    }
}

/// An incident with its acknowledgement and resolution times; the state follows from them.
fn tracked(
    severity: &'static str,
    title: &str,
    opened_at: i64,
    last_seen: i64,
    events: i64,
    acked: Option<i64>,
    resolved: Option<i64>,
) -> Row {
    let state = match (acked, resolved) {
        (_, Some(_)) => "resolved",
        (Some(_), None) => "acknowledged",
        (None, None) => "triggered",
    };
    Row {
        state,
        events,
        opened_at,
        acked,
        resolved,
        ..row(severity, title, last_seen)
    }
}

/// `s` as an SQL string literal (the tests' own text, quoted for the statement's text).
fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `v` as an SQL literal, `NULL` for `None`.
fn or_null<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

/// The next event id, as SQLite would give it (the service numbers events and incidents
/// itself, so PostgreSQL's schema gives none).
const NEXT_EVENT_ID: &str = "(SELECT COALESCE(MAX(id), 0) + 1 FROM events)";

async fn insert(store: &Store, r: Row) -> i64 {
    let key = format!("test:{}", r.title);
    let id = paiid_alerts::testing::scalar(store, "SELECT COALESCE(MAX(id), 0) + 1 FROM incidents")
        .await
        .expect("next incident id");
    paiid_alerts::testing::execute(
        store,
        &format!(
            "INSERT INTO incidents (id, incident_key, severity, state, title, project, rule, \
             metric_value, event_count, first_seen, last_seen, opened_at, acknowledged_at, \
             resolved_at, sentry_url, updated_at) \
             VALUES ({id}, {key}, {severity}, {state}, {title}, {project}, {rule}, {metric}, \
             {events}, {opened_at}, {last_seen}, {opened_at}, {acked}, {resolved}, {url}, \
             {last_seen})",
            key = text(&key),
            severity = text(r.severity),
            state = text(r.state),
            title = text(&r.title),
            project = or_null(r.project.map(text)),
            rule = or_null(r.rule.map(text)),
            metric = or_null(r.metric),
            events = r.events,
            opened_at = r.opened_at,
            last_seen = r.last_seen,
            acked = or_null(r.acked),
            resolved = or_null(r.resolved),
            url = text(&format!(
                "https://sentry.io/organizations/paiid/issues/{}/",
                key.len()
            )),
        ),
    )
    .await
    .expect("insert incident");
    // The alerts it received, as the writer records them (what digests count).
    for n in 0..r.events {
        paiid_alerts::testing::execute(
            store,
            &format!(
                "INSERT INTO events (id, received_at, dedup_key, source, resource, action, \
                 status, incident_id, severity, details) VALUES ({NEXT_EVENT_ID}, {}, {}, \
                 'sentry', 'metric_alert', 'critical', 'processed', {id}, {}, {})",
                r.last_seen,
                text(&format!("{key}:{n}")),
                text(r.severity),
                or_null(r.details.map(text)),
            ),
        )
        .await
        .expect("insert event");
    }
    id
}

async fn insert_escalation(store: &Store, incident_id: i64, fired_at: i64, lateness_ms: i64) {
    paiid_alerts::testing::execute(
        store,
        &format!(
            "INSERT INTO escalations (incident_id, episode, step, due_at, fired_at, lateness_ms) \
             VALUES ({incident_id}, 1, 1, {}, {fired_at}, {lateness_ms})",
            fired_at - lateness_ms
        ),
    )
    .await
    .expect("insert escalation");
}

fn sent(statuses: &[paiid_alerts::testing::digest::DigestOutcome]) -> usize {
    statuses
        .iter()
        .filter(|o| matches!(o.status, DigestStatus::Sent { .. }))
        .count()
}

#[tokio::test]
async fn daily_digest_lists_the_periods_medium_incidents_by_project() {
    let env = Env::new(Options::default(), t0() + 5 * MIN).await;
    let store = env.store().await;
    let start = t0() - DAY;
    let orders = insert(
        &store,
        Row {
            state: "acknowledged",
            ..apdex(
                "Apdex regression: POST /orders",
                "paiid-backend",
                0.61,
                14,
                t0() - HOUR,
            )
        },
    )
    .await;
    // On the period's first millisecond: inside (the period is [start, end)).
    let quotes = insert(
        &store,
        Row {
            state: "resolved",
            ..apdex(
                "Apdex regression: GET /quotes",
                "paiid-backend",
                0.74,
                3,
                start,
            )
        },
    )
    .await;
    let web = insert(
        &store,
        apdex(
            "Apdex <beta> & /dashboard",
            "paiid-web",
            0.55,
            5,
            t0() - 5 * HOUR,
        ),
    )
    .await;
    // Excluded: seen before the period, seen at its (exclusive) end, not medium.
    insert(
        &store,
        apdex("Seen the day before", "paiid-backend", 0.3, 99, start - 1),
    )
    .await;
    insert(
        &store,
        apdex("Seen at the end", "paiid-backend", 0.3, 99, t0()),
    )
    .await;
    insert(&store, row("high", "Slow transactions", t0() - HOUR)).await;
    insert(&store, row("critical", "ZeroDivisionError", t0() - HOUR)).await;

    let runner = env.runner_with(store.clone(), env.channels.clone());
    let outcomes = runner.run_due().await.expect("run_due");
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let o = &outcomes[0];
    assert_eq!(o.status, DigestStatus::Sent { attempt: 1 });
    assert_eq!(
        (o.kind, o.manual, o.incidents),
        (DigestKind::Daily, false, 3)
    );
    assert_eq!((o.period_start, o.period_end), (dt(start), dt(t0())));
    assert_eq!(o.recipient, "ops-email");

    let mail = env.exactly(1).await.remove(0);
    assert_eq!(mail.rcpt_tos, vec!["trading-ops@paiid.ai".to_string()]);
    assert_eq!(
        mail.subject,
        "Medium incidents digest: 3 medium incidents in 2 projects \
         (Tue 24 Nov 08:00 – Wed 25 Nov 2026 08:00 UTC)"
    );
    let text = mail.text();
    for absent in [
        "Seen the day before",
        "Seen at the end",
        "Slow transactions",
        "ZeroDivisionError",
    ] {
        assert!(
            !text.contains(absent),
            "{absent} must not be listed:\n{text}"
        );
    }
    // Grouped by project, noisiest first, with the worst (lowest) Apdex and the event count.
    let pos = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s:?} missing:\n{text}"))
    };
    assert!(pos("== paiid-backend (2) ==") < pos("POST /orders"));
    assert!(pos("POST /orders") < pos("GET /quotes"));
    assert!(pos("GET /quotes") < pos("== paiid-web (1) =="));
    assert!(pos("== paiid-web (1) ==") < pos("Apdex <beta> & /dashboard"));
    assert!(
        text.contains("lowest Apdex 0.61 · 14 events · acknowledged"),
        "{text}"
    );
    assert!(
        text.contains("lowest Apdex 0.74 · 3 events · resolved"),
        "{text}"
    );
    assert!(
        text.contains("lowest Apdex 0.55 · 5 events · triggered"),
        "{text}"
    );
    for id in [orders, quotes, web] {
        assert!(
            text.contains(&format!("Incident: {PUBLIC_URL}/incidents/{id}\n")),
            "{text}"
        );
    }
    assert!(text.contains("Sentry:   https://sentry.io/organizations/paiid/issues/"));
    let html = mail.html();
    assert!(
        html.contains("Apdex &lt;beta&gt; &amp; /dashboard"),
        "{html}"
    );
    assert!(!html.contains("<beta>"));
    assert!(html.contains(&format!(
        "<a href=\"{PUBLIC_URL}/incidents/{web}\">incident</a>"
    )));
    assert!(html.contains("<h3>paiid-web (1)</h3>"));

    let rows = digests::recent(&store, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.kind.as_str(), r.recipient.as_str()),
        ("daily", "ops-email")
    );
    assert_eq!((r.period_start, r.period_end), (start, t0()));
    assert_eq!(
        (r.claimed_at, r.sent_at),
        (t0() + 5 * MIN, Some(t0() + 5 * MIN))
    );
    assert_eq!((r.incidents, r.attempts, r.error.as_deref()), (3, 1, None));
    assert!(r.response.as_deref().unwrap_or("").contains("250"), "{r:?}");
}

#[tokio::test]
async fn a_digest_built_late_still_lists_an_incident_that_kept_firing() {
    // The mail server was down at the fire; the retry comes 20 minutes later.
    let env = Env::new(Options::default(), t0() + 20 * MIN).await;
    let store = env.store().await;
    let id = insert(
        &store,
        apdex(
            "Apdex regression: POST /orders",
            "paiid-backend",
            0.61,
            6,
            t0() - HOUR,
        ),
    )
    .await;
    // It kept firing after the period ended: 4 alerts since, and `last_seen` moved on.
    for n in 0..4 {
        paiid_alerts::testing::execute(
            &store,
            &format!(
                "INSERT INTO events (id, received_at, dedup_key, source, resource, action, \
                 status, incident_id, severity) VALUES ({NEXT_EVENT_ID}, {}, 'after:{n}', \
                 'sentry', 'metric_alert', 'critical', 'processed', {id}, 'medium')",
                t0() + (n + 1) * 4 * MIN
            ),
        )
        .await
        .unwrap();
    }
    paiid_alerts::testing::execute(
        &store,
        &format!(
            "UPDATE incidents SET last_seen = {}, event_count = 10 WHERE id = {id}",
            t0() + 16 * MIN
        ),
    )
    .await
    .unwrap();

    let runner = env.runner_with(store.clone(), env.channels.clone());
    assert_eq!(sent(&runner.run_due().await.unwrap()), 1);
    let text = env.exactly(1).await.remove(0).text();
    assert!(
        text.contains("POST /orders") && text.contains("lowest Apdex 0.61 · 6 events"),
        "listed, with the period's own count:\n{text}"
    );
}

#[tokio::test]
async fn empty_period_sends_the_configured_note() {
    let env = Env::new(Options::default(), t0() + MIN).await;
    let store = env.store().await;
    // Only a non-medium incident in the period.
    insert(&store, row("high", "Slow transactions", t0() - HOUR)).await;
    let outcomes = env.runner().await.run_due().await.unwrap();
    assert_eq!(outcomes[0].status, DigestStatus::Sent { attempt: 1 });
    assert_eq!(outcomes[0].incidents, 0);
    let mail = env.exactly(1).await.remove(0);
    assert!(
        mail.subject
            .starts_with("Medium incidents digest: no medium incidents (Tue 24 Nov 08:00"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text().contains("Nothing medium today."),
        "{}",
        mail.text()
    );
    assert!(mail.html().contains("Nothing medium today."));
}

#[tokio::test]
async fn empty_period_is_settled_silently_when_send_when_empty_is_false() {
    let opts = Options {
        send_when_empty: false,
        ..Options::default()
    };
    let env = Env::new(opts, t0() + MIN).await;
    let runner = env.runner().await;
    let outcomes = runner.run_due().await.unwrap();
    assert_eq!(outcomes[0].status, DigestStatus::SettledEmpty);
    // Settled: the next tick in the same period does not reconsider it.
    env.clock.advance(Duration::from_secs(3600));
    let again = runner.run_due().await.unwrap();
    assert!(
        matches!(
            again[0].status,
            DigestStatus::Skipped(SkipReason::AlreadySent { .. })
        ),
        "{again:?}"
    );
    // Both steps have returned: whatever they sent is in the sink.
    assert!(env.sink.received().is_empty());
    let store = env.store().await;
    let r = &digests::recent(&store, 1).await.unwrap()[0];
    assert!(r.sent_at.is_some());
    assert!(
        r.response
            .as_deref()
            .unwrap_or("")
            .contains("send_when_empty"),
        "{r:?}"
    );

    // A period with a medium incident is still sent.
    insert(
        &store,
        apdex("Apdex drop", "paiid-web", 0.7, 2, t0() + HOUR),
    )
    .await;
    env.clock.set(t0() + DAY);
    let next = runner.run_due().await.unwrap();
    assert_eq!(next[0].status, DigestStatus::Sent { attempt: 1 });
    assert!(env.exactly(1).await[0].text().contains("Apdex drop"));
}

#[tokio::test]
async fn sent_exactly_once_across_a_restart_inside_its_period() {
    let env = Env::new(Options::default(), t0() + MIN).await;
    {
        let store = env.store().await;
        insert(
            &store,
            apdex("Apdex drop", "paiid-web", 0.7, 2, t0() - HOUR),
        )
        .await;
        let first = env.runner_with(store.clone(), env.channels.clone());
        assert_eq!(sent(&first.run_due().await.unwrap()), 1);
        env.exactly(1).await;
        store.close().await;
    }
    // Restarted three hours later, still inside the period that began at t0.
    env.clock.set(t0() + 3 * HOUR);
    let second = env.runner().await;
    let outcomes = second.run_due().await.unwrap();
    assert_eq!(
        outcomes[0].status,
        DigestStatus::Skipped(SkipReason::AlreadySent { at: dt(t0() + MIN) })
    );
    assert_eq!(outcomes[0].incidents, 1);
    env.exactly(1).await;

    // The next fire is a new period: sent once more.
    env.clock.set(t0() + DAY);
    let outcomes = second.run_due().await.unwrap();
    assert_eq!(sent(&outcomes), 1);
    assert_eq!(outcomes[0].period_start, dt(t0()));
    let mails = env.exactly(2).await;
    assert!(
        mails[1]
            .subject
            .contains("(Wed 25 Nov 08:00 – Thu 26 Nov 2026 08:00 UTC)")
    );
}

#[tokio::test]
async fn missed_period_is_sent_once_at_start_and_the_loop_keeps_time() {
    // The service last ran two days before t0, then was down across two daily fires.
    let env = Env::new(Options::default(), t0() - 2 * DAY + MIN).await;
    {
        let runner = env.runner().await;
        assert_eq!(sent(&runner.run_due().await.unwrap()), 1);
        env.exactly(1).await;
    }
    let store = env.store().await;
    insert(
        &store,
        apdex("Seen in the missed day", "paiid-web", 0.6, 4, t0() - HOUR),
    )
    .await;
    insert(
        &store,
        apdex(
            "Seen the day before",
            "paiid-web",
            0.7,
            2,
            t0() - DAY - HOUR,
        ),
    )
    .await;
    env.clock.set(t0() + 3 * HOUR);

    let cancel = CancellationToken::new();
    let task = Arc::new(env.runner().await).spawn(cancel.clone());
    // One mail for both missed days: not two mails, and not one that drops the first day.
    env.sink.wait_for(2, Duration::from_secs(10)).await;
    cancel.cancel();
    task.await.unwrap();
    let mails = env.exactly(2).await;
    assert!(
        mails[1]
            .subject
            .contains("(Mon 23 Nov 08:00 – Wed 25 Nov 2026 08:00 UTC)"),
        "{}",
        mails[1].subject
    );
    assert!(mails[1].text().contains("Seen the day before"));
    assert!(mails[1].text().contains("Seen in the missed day"));

    // Another restart within the period: nothing new. A restarted loop begins with the step
    // below, so the step's answer is the loop's; the loop's own mails are counted once it has
    // stopped, at the end.
    let cancel = CancellationToken::new();
    let task = Arc::new(env.runner().await).spawn(cancel.clone());
    let restarted = env.runner().await;
    let outcomes = restarted.run_due().await.unwrap();
    assert_eq!(sent(&outcomes), 0, "{outcomes:?}");
    assert!(
        matches!(
            outcomes[0].status,
            DigestStatus::Skipped(SkipReason::AlreadySent { .. })
        ),
        "{outcomes:?}"
    );
    env.exactly(2).await;

    // A millisecond before the next fire nothing is due either.
    env.clock.set(t0() + DAY - 1);
    assert_eq!(sent(&restarted.run_due().await.unwrap()), 0);
    env.exactly(2).await;

    // The running loop sleeps until the next fire on the injected clock and sends it.
    env.clock.set(t0() + DAY);
    env.sink.wait_for(3, Duration::from_secs(10)).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop stops on cancel")
        .unwrap();
    // Stopped: nothing more of the loop's can arrive, so this also shows that it sent nothing
    // when it restarted or before the fire.
    let mails = env.exactly(3).await;
    assert!(mails[2].subject.contains("– Thu 26 Nov 2026 08:00 UTC)"));

    let rows = digests::recent(&store, 10).await.unwrap();
    let ends: Vec<i64> = rows.iter().map(|r| r.period_end).collect();
    assert_eq!(ends, vec![t0() + DAY, t0(), t0() - 2 * DAY]);
}

#[tokio::test]
async fn two_instances_racing_the_same_period_send_once() {
    let env = Env::new(Options::default(), t0()).await;
    let a = env.runner().await;
    let b = env.runner().await;
    for day in 0..5 {
        env.clock.set(t0() + day * DAY);
        let (ra, rb) = tokio::join!(a.run_due(), b.run_due());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(sent(&ra) + sent(&rb), 1, "day {day}: {ra:?} {rb:?}");
        let loser = if sent(&ra) == 1 { &rb[0] } else { &ra[0] };
        assert!(
            matches!(
                loser.status,
                DigestStatus::Skipped(SkipReason::InFlight { .. } | SkipReason::AlreadySent { .. })
            ),
            "{loser:?}"
        );
        env.exactly(usize::try_from(day + 1).unwrap()).await;
    }

    // Two whole loops racing through three more fires.
    let cancel = CancellationToken::new();
    let ta = Arc::new(env.runner().await).spawn(cancel.clone());
    let tb = Arc::new(env.runner().await).spawn(cancel.clone());
    for day in 5..8 {
        env.clock.set(t0() + day * DAY);
        env.sink
            .wait_for(usize::try_from(day + 1).unwrap(), Duration::from_secs(10))
            .await;
    }
    cancel.cancel();
    ta.await.unwrap();
    tb.await.unwrap();
    // Both loops have stopped, so the count is final: one mail per period, no duplicate.
    let mails = env.exactly(8).await;
    let store = env.store().await;
    let mut ends: Vec<i64> = digests::recent(&store, 20)
        .await
        .unwrap()
        .iter()
        .map(|r| r.period_end)
        .collect();
    ends.sort();
    assert_eq!(ends, (0..8).map(|d| t0() + d * DAY).collect::<Vec<_>>());
    assert_eq!(mails.len(), ends.len());
}

#[tokio::test]
async fn weekly_summary_figures() {
    // Monday 2026-11-30 09:00 UTC: a weekly fire; the week is [Mon 23 Nov 09:00, Mon 30 Nov 09:00).
    let end = utc(2026, 11, 30, 9);
    let start = end - 7 * DAY;
    let env = Env::new(
        Options {
            weekly: true,
            ..Options::default()
        },
        end + MIN,
    )
    .await;
    let store = env.store().await;
    let s = start + DAY;
    // Acked after 10 min, resolved after 70.
    let c1 = tracked(
        "critical",
        "Orders down",
        s,
        s + HOUR,
        40,
        Some(s + 10 * MIN),
        Some(s + 70 * MIN),
    );
    // Acked after 20 min, still open.
    let c2 = tracked(
        "critical",
        "Quotes 500s",
        s + HOUR,
        s + 2 * HOUR,
        7,
        Some(s + 80 * MIN),
        None,
    );
    // Acked after 30 min, resolved after 90; the noisiest.
    let h1 = tracked(
        "high",
        "Error storm",
        s + 2 * HOUR,
        s + 3 * HOUR,
        10_000,
        Some(s + 150 * MIN),
        Some(s + 210 * MIN),
    );
    let m1 = tracked(
        "medium",
        "Apdex drop",
        s + 3 * HOUR,
        s + 3 * HOUR,
        3,
        None,
        None,
    );
    // Acknowledged only after the week ended: opened this week, not acknowledged in it.
    let late = tracked(
        "high",
        "Late ack",
        end - HOUR,
        end - HOUR,
        2,
        Some(end + HOUR),
        None,
    );
    // Opened the week before (resolved this week): not counted, not in the noisiest.
    let old = tracked(
        "critical",
        "Last week's",
        start - DAY,
        start - DAY,
        50_000,
        Some(start - DAY + MIN),
        Some(s),
    );
    let [_c1, c2, h1, _m1, _late, old] = {
        let mut ids = [0; 6];
        for (i, r) in [c1, c2, h1, m1, late, old].into_iter().enumerate() {
            ids[i] = insert(&store, r).await;
        }
        ids
    };

    insert_escalation(&store, c2, s + HOUR + 15 * MIN, 250).await;
    insert_escalation(&store, h1, s + 3 * HOUR, 1_500).await;
    insert_escalation(&store, old, start - DAY + 15 * MIN, 100).await;

    let outcomes = env.runner().await.run_due().await.unwrap();
    assert_eq!(
        sent(&outcomes),
        2,
        "the daily and the weekly digest: {outcomes:?}"
    );
    let weekly = outcomes
        .iter()
        .find(|o| o.kind == DigestKind::Weekly)
        .expect("weekly outcome");
    assert_eq!(
        (weekly.period_start, weekly.period_end),
        (dt(start), dt(end))
    );
    assert_eq!(weekly.incidents, 5);

    let mails = env.exactly(2).await;
    let mail = mails
        .iter()
        .find(|m| m.subject.starts_with("Weekly ops summary"))
        .expect("weekly mail");
    assert_eq!(
        mail.subject,
        "Weekly ops summary: 5 incidents opened, 2 escalations \
         (Mon 23 Nov 09:00 – Mon 30 Nov 2026 09:00 UTC)"
    );
    let text = mail.text();
    for line in [
        "Incidents opened: 5 (critical 2, high 2, medium 1)",
        // (10 + 20 + 30) / 3 and (70 + 90) / 2 minutes.
        "Mean time to acknowledge: 20m 0s (3 acknowledged)",
        "Mean time to resolve: 1h 20m (2 resolved)",
        "Escalations fired: 2 on 2 incidents (worst lateness 1s)",
        "  critical           2      2         1  15m 0s    1h 10m",
        "  high               2      1         1  30m 0s    1h 30m",
        "  medium             1      0         0  n/a       n/a",
        "  critical: 1 fired on 1 incident (worst lateness 250ms)",
        "  high: 1 fired on 1 incident (worst lateness 1s)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // Noisiest: seen this week, most events first; last week's storm is not among them.
    let pos = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s:?} missing:\n{text}"))
    };
    assert!(
        pos("1.   10000  Error storm [paiid-backend, high, resolved]")
            < pos("2.      40  Orders down")
    );
    assert!(pos("2.      40  Orders down") < pos("3.       7  Quotes 500s"));
    assert!(!text.contains("Last week's"));
    assert!(text.contains(&format!("{PUBLIC_URL}/incidents/{h1}")));
    assert!(mail.html().contains("<h3>Noisiest issues</h3>"));
}

#[tokio::test]
async fn send_now_does_not_block_the_scheduled_send() {
    let env = Env::new(Options::default(), t0() + 4 * HOUR).await;
    let store = env.store().await;
    insert(
        &store,
        apdex("Apdex drop this morning", "paiid-web", 0.7, 2, t0() + HOUR),
    )
    .await;
    let runner = env.runner().await;
    // The period that ended at t0 goes out as usual.
    assert_eq!(sent(&runner.run_due().await.unwrap()), 1);
    env.exactly(1).await;

    // By hand: the still-open period so far.
    let manual = runner.send_now(DigestKind::Daily).await.unwrap();
    assert_eq!(manual[0].status, DigestStatus::Sent { attempt: 1 });
    assert!(manual[0].manual);
    assert_eq!(
        (manual[0].period_start, manual[0].period_end),
        (dt(t0()), dt(t0() + 4 * HOUR))
    );
    let mails = env.exactly(2).await;
    assert!(
        mails[1]
            .subject
            .starts_with("Medium incidents so far (sent by hand): 1 medium incident"),
        "{}",
        mails[1].subject
    );
    assert!(mails[1].text().contains("Apdex drop this morning"));

    // A tick later in the same period: the scheduled one for [t0, t0 + 1 day) is not yet due.
    env.clock.set(t0() + 5 * HOUR);
    let outcomes = runner.run_due().await.unwrap();
    assert!(matches!(
        outcomes[0].status,
        DigestStatus::Skipped(SkipReason::AlreadySent { .. })
    ));
    assert_eq!(outcomes[0].period_end, dt(t0()));

    // Even a send by hand at the very instant of the fire does not take the period's place.
    env.clock.set(t0() + DAY);
    let at_fire = runner.send_now(DigestKind::Daily).await.unwrap();
    assert_eq!(at_fire[0].status, DigestStatus::Sent { attempt: 1 });
    assert_eq!(at_fire[0].period_end, dt(t0() + DAY));
    let outcomes = runner.run_due().await.unwrap();
    assert_eq!(outcomes[0].status, DigestStatus::Sent { attempt: 1 });
    assert_eq!(outcomes[0].period_end, dt(t0() + DAY));
    let mails = env.exactly(4).await;
    assert!(
        mails[3]
            .subject
            .starts_with("Medium incidents digest: 1 medium incident")
    );

    let kinds: Vec<String> = digests::recent(&store, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        vec!["daily", "daily:manual", "daily:manual", "daily"]
    );

    // Weekly by hand needs a weekly schedule.
    assert!(matches!(
        runner.send_now(DigestKind::Weekly).await,
        Err(DigestError::NoWeeklySchedule)
    ));
}

#[tokio::test]
async fn failed_send_is_retried_and_a_crashed_claim_is_recovered() {
    let env = Env::new(Options::default(), t0() + MIN).await;
    // Nothing listens on this port: connection refused, a retryable failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let down = env.runner_with(env.store().await, channels(&env.cfg, dead_url));
    let up = env.runner().await;

    let failed = down.run_due().await.unwrap();
    match &failed[0].status {
        DigestStatus::Failed {
            retry_at: Some(at), ..
        } => assert_eq!(*at, dt(t0() + 2 * MIN)),
        other => panic!("expected a retryable failure, got {other:?}"),
    }
    // Another instance respects the retry time...
    let waiting = up.run_due().await.unwrap();
    assert!(
        matches!(
            waiting[0].status,
            DigestStatus::Skipped(SkipReason::RetryPending { .. })
        ),
        "{waiting:?}"
    );
    // ...and retries once it has come.
    env.clock.advance(Duration::from_secs(60));
    let retried = up.run_due().await.unwrap();
    assert_eq!(retried[0].status, DigestStatus::Sent { attempt: 2 });
    env.exactly(1).await;

    // A process that claimed the next period and died before recording anything.
    let store = env.store().await;
    env.clock.set(t0() + DAY + MIN);
    let key = PeriodKey {
        kind: "daily",
        period_start: t0(),
        period_end: t0() + DAY,
        recipient: "ops-email",
    };
    let rules = ClaimRules {
        now: t0() + DAY + MIN,
        lease_ms: 10 * MIN,
        max_attempts: 5,
    };
    assert!(matches!(
        digests::claim(&store, &key, rules).await.unwrap(),
        ClaimResult::Claimed { .. }
    ));
    let held = up.run_due().await.unwrap();
    assert_eq!(
        held[0].status,
        DigestStatus::Skipped(SkipReason::InFlight {
            lease_until: dt(t0() + DAY + 11 * MIN)
        })
    );
    env.exactly(1).await;
    env.clock.set(t0() + DAY + 11 * MIN);
    let recovered = up.run_due().await.unwrap();
    assert_eq!(recovered[0].status, DigestStatus::Sent { attempt: 2 });
    env.exactly(2).await;
}

#[tokio::test]
async fn permanent_rejection_is_not_retried() {
    let sink = SmtpSink::start_with(&["--reject-rcpt", "trading-ops@paiid.ai"]).await;
    let env = Env::new(Options::default(), t0() + MIN).await;
    let rejecting = env.runner_with(env.store().await, channels(&env.cfg, sink.url()));
    let out = rejecting.run_due().await.unwrap();
    match &out[0].status {
        DigestStatus::Failed { reason, retry_at } => {
            assert!(reason.contains("550"), "{reason}");
            assert_eq!(*retry_at, None);
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    env.clock.advance(Duration::from_secs(3600));
    let later = env.runner().await.run_due().await.unwrap();
    assert!(
        matches!(
            later[0].status,
            DigestStatus::Skipped(SkipReason::GaveUp { attempts: 1, .. })
        ),
        "{later:?}"
    );
    // The step has returned: whatever it sent is in the sink.
    assert!(env.sink.received().is_empty());
}

#[tokio::test]
async fn without_smtp_the_digest_goes_to_the_log_stand_in_and_is_recorded() {
    let env = Env::new(Options::default(), t0() + MIN).await;
    let env_no_smtp = ChannelEnv {
        smtp_url: None,
        email_from: "alerts@paiid.ai".into(),
        slack_api_url: String::new(),
        pagerduty_events_url: String::new(),
    };
    let logged =
        Arc::new(Channels::build(&env.cfg, &env_no_smtp, Arc::new(Templates::defaults())).unwrap());
    let runner = env.runner_with(env.store().await, logged);
    let out = runner.run_due().await.unwrap();
    assert_eq!(out[0].status, DigestStatus::Sent { attempt: 1 });
    let store = env.store().await;
    let r = &digests::recent(&store, 1).await.unwrap()[0];
    assert!(r.sent_at.is_some());
    assert!(
        r.response.as_deref().unwrap_or("").contains("SMTP_URL"),
        "{r:?}"
    );
    // The step has returned: whatever it sent is in the sink.
    assert!(env.sink.received().is_empty());
}

/// `routing.yaml` with digest template overrides (and the rest as in [`config`]).
fn config_with_templates(templates: &str) -> Result<RoutingConfig, String> {
    let text = format!(
        r#"
channels:
  ops-email:
    type: email
    to: ["trading-ops@paiid.ai"]
severities:
  medium: {{ digest: daily }}
digest:
  schedule: "0 0 8 * * *"
  timezone: "UTC"
  to: [ops-email]
templates:
{templates}"#
    );
    RoutingConfig::parse(Path::new("t.yaml"), &text, &|_| None).map_err(|e| e.to_string())
}

#[tokio::test]
async fn digest_templates_from_the_routing_file_shape_the_mail() {
    let cfg = Arc::new(
        config_with_templates(
            r#"  daily_digest_subject: "[ops] {{ summary }}"
  daily_digest_text: |
    {{ heading }}
    {% for g in groups %}{% for i in g.incidents %}- {{ i.title }} ({{ i.metric }}) {{ i.incident_url }}
    {% endfor %}{% endfor %}
"#,
        )
        .expect("config"),
    );
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &format!("sqlite://{}/digest.db", dir.path().display()),
        Durability::Normal,
    )
    .await
    .expect("store");
    let id = insert(
        &store,
        apdex(
            "Apdex <b> on /orders",
            "paiid-backend",
            0.61,
            3,
            t0() - HOUR,
        ),
    )
    .await;
    let clock: SharedClock = Arc::new(ManualClock::new(t0() + MIN));
    let runner = DigestRunner::new(
        store,
        cfg.clone(),
        channels(&cfg, sink.url()),
        clock,
        Arc::from(PUBLIC_URL),
    );
    assert_eq!(sent(&runner.run_due().await.unwrap()), 1);

    // `run_due` has returned: its mail is in the sink.
    let mails = sink.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "[ops] 1 medium incident in 1 project");
    assert_eq!(
        mails[0].text().trim_end(),
        format!(
            "Medium incidents digest\n\
             - Apdex <b> on /orders (lowest Apdex 0.61) {PUBLIC_URL}/incidents/{id}"
        )
    );
    // The HTML part was not overridden: the default, escaped.
    let html = mails[0].html();
    assert!(
        html.contains("<h2>Medium incidents digest</h2>")
            && html.contains("Apdex &lt;b&gt; on /orders"),
        "{html}"
    );
}

#[test]
fn a_broken_digest_template_is_a_config_error_naming_file_line_and_problem() {
    let e = config_with_templates(
        "  daily_digest_subject: \"ok\"\n  weekly_summary_html: \"{% for s in severities %}\"\n",
    )
    .expect_err("unclosed for");
    assert!(
        e.starts_with("t.yaml:14: templates: template weekly_summary_html: ")
            && e.contains("syntax error"),
        "{e}"
    );
    let e = config_with_templates("  daily_digest_text: \"{{ groups[0].incidents[0].titel }}\"\n")
        .expect_err("unknown field");
    assert!(
        e.starts_with(
            "t.yaml:13: templates: template daily_digest_text: fails on a sample daily digest: "
        ) && e.contains("undefined"),
        "{e}"
    );
}
