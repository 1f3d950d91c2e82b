//! The watched pipeline and the clock of trading hours: what no webhook can tell us.
//!
//! - **Heartbeat** (`heartbeat:`): no webhook from Sentry within `expect_within` (while inside
//!   `during`, when set) raises a Critical: "is the webhook still subscribed?".
//! - **Canary** (`canary:`): the backend's SDK sends an event tagged `canary: true` every few
//!   minutes; those never page (the intake writer records them, `store::watch`), and none for
//!   `expect_every` raises a Critical "alert pipeline broken", with the last canary's time and
//!   latency.
//! - **Sentry's contract** (`sentry_contract:`): Sentry unsubscribes a webhook after 1,000
//!   answers slower than 1 s in a day; more than `max_slow_or_failed` slow or 5xx answers
//!   `within` raise a Critical before it gives up on us.
//! - **Interval starts** (`time_intervals.*.renotify_at_start`): at an interval's start (the
//!   market open) the incidents of those severities still open are re-notified; rows due
//!   together go out bundled, one message per channel.
//!
//! The alerts go through the intake writer like a webhook (`WATCH_SOURCE`, severity forced to
//! Critical), so they page, escalate and are acknowledged like any incident: one incident per
//! outage, resolved by the watch when the pipeline is healthy again. Each check reads durable
//! state, so a restart loses nothing but the contract count, which lives in memory.

use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, sleep_on};
use crate::config::{Live, RoutingConfig};
use crate::domain::{Action, Incident, Severity, Via};
use crate::incidents::service::IncidentService;
use crate::incidents::transitions::{Actor, Effects, lifecycle};
use crate::incidents::writer::{Forced, IngestRequest, WATCH_SOURCE, Wakers, WriterHandle};
use crate::intake::sentry::WATCH_RESOURCE;
use crate::intake::{AlertFacts, Meaning};
use crate::metrics::Metrics;
use crate::store::body::StoredBody;
use crate::store::watch::{self as sql, LAST_CANARY, WATCH_STARTED};
use crate::store::{Store, StoreError};
use crate::text::duration;

/// How often the running service checks (tests call [`PipelineWatch::check`] themselves).
const CHECK_EVERY_MS: i64 = 30_000;
/// How late an interval start may still be re-notified (the service was down at the open).
const RENOTIFY_GRACE_MS: i64 = 60 * 60_000;
/// Most incidents one start re-notifies, per severity.
const RENOTIFY_MAX: i64 = 200;

#[derive(Clone)]
pub struct PipelineWatch {
    pub store: Store,
    pub cfg: Live<RoutingConfig>,
    pub clock: SharedClock,
    pub writer: WriterHandle,
    pub incidents: IncidentService,
    pub metrics: Arc<Metrics>,
    pub wakers: Wakers,
}

/// What one [`PipelineWatch::check`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WatchReport {
    /// Watches that raised an alert (`heartbeat`, `canary`, `contract`).
    pub raised: Vec<&'static str>,
    /// Watches whose open alert was resolved, the pipeline healthy again.
    pub resolved: Vec<&'static str>,
    /// Incidents re-notified at interval starts.
    pub renotified: usize,
}

/// The latest start of `interval` at or before `now` (within a week: longer stretches count
/// from a week back, which only makes the heartbeat more patient).
fn stretch_start(interval: &crate::config::intervals::TimeInterval, now: i64) -> Option<i64> {
    const WEEK_MS: i64 = 7 * 86_400_000;
    let mut start = interval
        .next_start_after(now - WEEK_MS)
        .filter(|s| *s <= now)?;
    while let Some(next) = interval.next_start_after(start).filter(|s| *s <= now) {
        start = next;
    }
    Some(start)
}

/// A watch's verdict: `Some(what to say)` while it is failing.
type Verdict = Option<String>;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The intake writer could not take the watch's alert.
    #[error("raising the watch's alert: {0}")]
    Raise(Arc<StoreError>),
}

impl WatchError {
    fn store_error(&self) -> &StoreError {
        match self {
            Self::Store(e) => e,
            Self::Raise(e) => e,
        }
    }
}

impl PipelineWatch {
    /// Checks every configured watch and interval start once.
    pub async fn check(&self) -> Result<WatchReport, WatchError> {
        let cfg = self.cfg.load();
        let now = self.clock.now_ms();
        let mut report = WatchReport::default();
        let reader = self.store.reader();
        let started = self.started(now).await?;
        if let Some(h) = &cfg.watch.heartbeat {
            let last = sql::last_webhook(reader).await?.unwrap_or(started);
            // Silence counts inside `during` only, from the start of its current stretch: a
            // quiet night is no outage at the open. Outside it an open alert stays as it is.
            let counted_from = match &h.during {
                None => Some(last),
                Some(i) if i.contains(now) => {
                    Some(stretch_start(i, now).map_or(last, |s| s.max(last)))
                }
                Some(_) => None,
            };
            if let Some(from) = counted_from {
                let verdict = (now - from > h.expect_within_ms).then(|| {
                    format!(
                        "No alerts received from Sentry for {}: is the webhook still subscribed?",
                        duration(now - last)
                    )
                });
                let open = sql::open_watch_incident(reader, "heartbeat").await?;
                self.settle("heartbeat", last, verdict, open, &h.notify, &mut report)
                    .await?;
            }
        }
        if let Some(c) = &cfg.watch.canary {
            let last = sql::read(reader, LAST_CANARY).await?;
            let since = last.map_or(started, |m| m.at);
            let verdict = (now - since > c.expect_every_ms).then(|| match last {
                Some(m) => format!(
                    "Alert pipeline broken: no canary for {} (the last arrived {}{})",
                    duration(now - m.at),
                    crate::clock::ms_to_datetime(m.at).format("%Y-%m-%d %H:%M:%S UTC"),
                    m.value
                        .map(|l| format!(", {} after it was sent", duration(l)))
                        .unwrap_or_default()
                ),
                None => format!(
                    "Alert pipeline broken: no canary received in {} of watching",
                    duration(now - since)
                ),
            });
            let open = sql::open_watch_incident(reader, "canary").await?;
            self.settle("canary", since, verdict, open, &c.notify, &mut report)
                .await?;
        }
        if let Some(k) = &cfg.watch.contract {
            let breaches = self.metrics.intake_breaches_since(now - k.within_ms);
            let verdict = (breaches > u64::from(k.max_slow_or_failed)).then(|| {
                format!(
                    "Sentry may unsubscribe our webhook: {breaches} answers in {} were slower than 1 s or failed (Sentry gives up after 1,000 timeouts a day)",
                    duration(k.within_ms)
                )
            });
            // Counts are this replica's: one that restarted (or another) sees none, so an alert
            // is resolved only once a whole window passed since it was raised.
            let window = now.div_euclid(k.within_ms) * k.within_ms;
            let open = sql::open_watch_incident(reader, "contract").await?;
            let young = open
                .as_ref()
                .is_some_and(|inc| now - inc.opened_at < k.within_ms);
            if verdict.is_some() || !young {
                self.settle("contract", window, verdict, open, &k.notify, &mut report)
                    .await?;
            }
        }
        report.renotified = self.renotify_at_starts(&cfg, now).await?;
        Ok(report)
    }

    /// When watching began. The first check records it: a service that never heard from Sentry
    /// is as silent as one that stopped hearing. Later checks only read it, so a healthy
    /// pipeline costs the watch no write (on PostgreSQL, no turn at the one write lock).
    async fn started(&self, now: i64) -> Result<i64, StoreError> {
        if let Some(m) = sql::read(self.store.reader(), WATCH_STARTED).await? {
            return Ok(m.at);
        }
        let mut tx = self.store.begin_write().await?;
        sql::mark_once(&mut tx, WATCH_STARTED, now).await?;
        tx.commit().await?;
        Ok(sql::read(self.store.reader(), WATCH_STARTED)
            .await?
            .map_or(now, |m| m.at))
    }

    /// Raises `kind`'s alert when it is failing and `open` (its open alert) is none; resolves
    /// the open one when it is healthy again. `outage` names the outage (the last webhook's or canary's time, the
    /// contract's window): replicas checking at once raise the same one, and the writer keeps
    /// one of the two.
    async fn settle(
        &self,
        kind: &'static str,
        outage: i64,
        verdict: Verdict,
        open: Option<Incident>,
        notify: &[String],
        report: &mut WatchReport,
    ) -> Result<(), WatchError> {
        match (verdict, open) {
            (Some(title), None) => {
                self.raise(kind, outage, title, notify).await?;
                report.raised.push(kind);
            }
            (None, Some(inc)) => {
                let actor = Actor::new("paiid-alerts", Via::Scheduler);
                let resolve = Action::Resolve {
                    root_cause: Some(format!("the {kind} watch is healthy again")),
                };
                match self
                    .incidents
                    .act(inc.id, Some(inc.episode), resolve, &actor)
                    .await
                {
                    Ok(_) => report.resolved.push(kind),
                    Err(e) => {
                        tracing::warn!(incident = inc.id.get(), error = %e, "resolving a watch alert failed")
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A Critical through the intake writer: stored as an event, classified by force, paged
    /// by the ordinary machinery.
    async fn raise(
        &self,
        kind: &'static str,
        outage: i64,
        title: String,
        notify: &[String],
    ) -> Result<(), WatchError> {
        let now = self.clock.now_ms();
        let body = serde_json::json!({ "watch": kind, "title": title, "at": now }).to_string();
        let facts = AlertFacts {
            resource: WATCH_RESOURCE.to_string(),
            action: kind.to_string(),
            meaning: Some(Meaning::Alert),
            level: Some("fatal".into()),
            project: Some("paiid-alerts".into()),
            title,
            culprit: Some(format!("pipeline watch: {kind}")),
            issue_id: Some(outage.to_string()),
            ..AlertFacts::default()
        };
        let body = Bytes::from(body);
        let request = IngestRequest {
            stored_body: StoredBody::compress(&body),
            body,
            dedup_key: format!("watch:{kind}:{outage}"),
            request_id: None,
            source: WATCH_SOURCE,
            forced: Some(Forced {
                severity: Severity::Critical,
                rule: format!("pipeline-{kind}"),
                notify: notify.to_vec(),
            }),
            facts,
        };
        self.writer
            .ingest(request)
            .await
            .map_err(WatchError::Raise)?;
        tracing::error!(watch = kind, "the alert pipeline watch raised a Critical");
        Ok(())
    }

    /// For each interval with `renotify_at_start`, its latest start (within the grace period):
    /// taken once, its still-open incidents of those severities re-notified in one
    /// transaction. Returns how many incidents were re-notified.
    async fn renotify_at_starts(&self, cfg: &RoutingConfig, now: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        for (name, interval) in &cfg.intervals {
            if interval.renotify_at_start.is_empty() {
                continue;
            }
            let Some(start) = interval
                .next_start_after(now - RENOTIFY_GRACE_MS)
                .filter(|s| *s <= now)
            else {
                continue;
            };
            // Carried out already (the usual case between two starts): no write transaction.
            if sql::interval_start_handled(self.store.reader(), name, start).await? {
                continue;
            }
            let mut tx = self.store.begin_write().await?;
            let open =
                sql::open_of_severities(&mut tx, &interval.renotify_at_start, RENOTIFY_MAX).await?;
            if !sql::claim_interval_start(&mut tx, name, start, now, open.len()).await? {
                continue;
            }
            let reason = format!(
                "still open at the start of {name} ({})",
                interval.describe()
            );
            let mut fx = Effects::default();
            for inc in &open {
                fx.extend(lifecycle::renotify(inc, &reason));
            }
            crate::store::incidents::apply_effects(&mut tx, &[], &fx, now).await?;
            tx.commit().await?;
            self.wakers.after_commit(&fx);
            if !open.is_empty() {
                tracing::info!(interval = %name, incidents = open.len(), "re-notified open incidents at the interval's start");
            }
            total += open.len();
        }
        Ok(total)
    }

    /// Checks every 30 s of the clock until `cancel`.
    pub(crate) fn spawn(self, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.check().await {
                    self.store
                        .health
                        .failed("watch", e.store_error(), self.clock.now_ms());
                }
                let next = self.clock.now_ms().saturating_add(CHECK_EVERY_MS);
                tokio::select! {
                    _ = sleep_on(&*self.clock, next) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        })
    }
}
