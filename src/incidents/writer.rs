//! The intake writer: one task takes whatever webhooks are queued, classifies them and commits
//! them in one transaction with a handful of multi-row statements (group commit), then answers
//! every waiting request. A webhook is answered 2xx only after its commit.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::classification::{
    Classification, Classifier, RateKeys, Severity, decode_rate_keys, encode_rate_keys,
};
use crate::clock::SharedClock;
use crate::config::{Live, RoutingConfig};
use crate::domain::{EventId, IncidentId, IngestStatus, Via};
use crate::intake::{AlertFacts, Meaning};
use crate::store::body::StoredBody;
use crate::store::incidents::{self as sql, NewEvent};
use crate::store::{CorruptRows, Store, StoreError, WriteTx};

use super::model::{Incident, IncidentState};
use super::storms::{self, StormBook};
use super::transitions::{self, Actor, Effects, lifecycle};

/// Most webhooks committed together. Larger batches amortize the commit further but hold the
/// earliest request longer.
const MAX_BATCH: usize = 512;

/// How long an identical body counts as a retry of the earlier one (when nothing happened to its
/// incident in between). Sentry retries within minutes; a day leaves a wide margin.
const RETRY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// `IngestRequest::source` of synthetic alerts from `POST /api/test-alert`.
pub(crate) const TEST_SOURCE: &str = "test";
/// `IngestRequest::source` of the pipeline watch's alerts (`crate::watch`).
pub(crate) const WATCH_SOURCE: &str = "watch";

#[derive(Debug)]
pub struct IngestRequest {
    pub facts: AlertFacts,
    pub body: Bytes,
    /// `body` as `events.body` keeps it: compressed where the request is built, so that the
    /// single writer does not spend its time on it.
    pub(crate) stored_body: StoredBody,
    pub dedup_key: String,
    pub request_id: Option<String>,
    /// `sentry`, `sentry-legacy`, `test` or `watch`.
    pub source: &'static str,
    /// Set by the pipeline watch: the severity, rule and channels of its alert, which no rule of
    /// `routing.yaml` classifies.
    pub forced: Option<Forced>,
}

/// What the pipeline watch's alerts are, decided by the watch rather than by the rules.
#[derive(Debug, Clone)]
pub struct Forced {
    pub severity: Severity,
    pub rule: String,
    /// Channels told instead of the severity policy's `notify` (empty: the policy's).
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// Stored. `incident_id` is set when the payload opened, updated or changed an incident.
    Accepted {
        event_id: EventId,
        incident_id: Option<IncidentId>,
        severity: Severity,
        status: IngestStatus,
    },
    /// Seen before (a Sentry retry): counted once.
    Duplicate { event_id: EventId },
}

type Reply = oneshot::Sender<Result<IngestOutcome, Arc<StoreError>>>;

#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<(IngestRequest, Reply)>,
}

impl WriterHandle {
    pub async fn ingest(&self, req: IngestRequest) -> Result<IngestOutcome, Arc<StoreError>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((req, reply))
            .await
            .map_err(|_| Arc::new(StoreError::WriterGone))?;
        rx.await.map_err(|_| Arc::new(StoreError::WriterGone))?
    }
}

pub(crate) use crate::signal::Wakers;

pub(crate) struct Writer {
    store: Store,
    /// The routing file in force; read at the start of each batch.
    live: Live<RoutingConfig>,
    /// The snapshot the classifier's rules came from: a reload replaces it (and the classifier)
    /// before the next batch.
    cfg: Arc<RoutingConfig>,
    classifier: Classifier,
    clock: SharedClock,
    wakers: Wakers,
    next_event_id: EventId,
    next_incident_id: IncidentId,
}

/// The details a message will show about this webhook, extracted (and scrubbed) once, as the
/// JSON stored with the event. Not serializable (never expected): logged, and the event is
/// stored without them, to be filled in from its body at the next start.
fn event_details(facts: &AlertFacts, body: &[u8], include_pii: bool) -> Option<String> {
    crate::intake::details::extract(facts, body, include_pii)
        .to_json()
        .inspect_err(|e| tracing::error!(error = %e, "event details not stored"))
        .ok()
}

/// Rows read at once for their bodies when their rate facts must be derived from them.
const DERIVE_BATCH: usize = 500;

/// A classifier whose rate windows hold the occurrences stored within the longest window.
///
/// Read from the rate facts stored with each event (migration 0009), a page at a time, in the
/// order they arrived. Rows whose facts were derived under other rules (stored before that
/// migration, or before a reload: at most one window's worth, and fewer at each restart) are
/// read the old way, from their bodies, a batch at a time. Their facts are not written back:
/// rewriting a row rewrites its body too, which measured slower than re-parsing it.
async fn rebuild_classifier(
    conn: &mut impl crate::store::AsConn,
    corrupt: &CorruptRows,
    cfg: &RoutingConfig,
    now: i64,
) -> Result<Classifier, StoreError> {
    let mut classifier = Classifier::new(cfg.rules.clone());
    let longest = classifier.longest_window_ms();
    if longest <= 0 {
        return Ok(classifier);
    }
    let since = now - longest;
    let fp = classifier.fingerprint();
    let mut derived: HashMap<EventId, RateKeys> = HashMap::new();
    for ids in sql::stale_rate_facts(conn, since, fp)
        .await?
        .chunks(DERIVE_BATCH)
    {
        // A body past retention is skipped, as the old replay skipped it.
        for (id, resource, body) in sql::bodies_of(conn, corrupt, ids).await? {
            // Logged and counted as a corrupt row by the read; it counts toward nothing.
            let Ok(body) = body else { continue };
            let resource = (resource != "legacy").then_some(resource);
            // Unreadable: it counted toward nothing when it arrived either.
            if let Ok(facts) = crate::intake::sentry::parse(resource.as_deref(), &body) {
                derived.insert(id, classifier.rate_keys(&facts));
            }
        }
    }
    let mut after = None;
    loop {
        let page = sql::rate_facts_page(conn, since, after, sql::RATE_FACTS_PAGE).await?;
        let full = page.len() as i64 == sql::RATE_FACTS_PAGE;
        for (id, at, stored_fp, keys) in &page {
            if *stored_fp == Some(fp) {
                classifier.restore(&decode_rate_keys(keys.as_deref()), *at);
            } else if let Some(keys) = derived.get(id) {
                classifier.restore(keys, *at);
            }
            after = Some((*at, *id));
        }
        if !full {
            break;
        }
    }
    Ok(classifier)
}

impl Writer {
    /// Prepares the writer: reads id counters and rebuilds rate windows from stored events.
    pub(crate) async fn new(
        store: Store,
        live: Live<RoutingConfig>,
        clock: SharedClock,
        wakers: Wakers,
    ) -> Result<Self, StoreError> {
        let cfg = live.load();
        let mut tx = store.begin_write().await?;
        let (events, incidents) = sql::max_ids(&mut tx).await?;
        let classifier =
            rebuild_classifier(&mut tx, &store.corrupt_rows, &cfg, clock.now_ms()).await?;
        let filled = crate::intake::details::backfill(
            &mut tx,
            &store.corrupt_rows,
            cfg.delivery.include_pii,
        )
        .await?;
        tx.commit().await?;
        if filled > 0 {
            tracing::info!(
                events = filled,
                "stored the details of events kept from before"
            );
        }
        Ok(Self {
            store,
            live,
            cfg,
            classifier,
            clock,
            wakers,
            next_event_id: events.next(),
            next_incident_id: incidents.next(),
        })
    }

    /// Starts the writer task. On `stop` it refuses new work, commits what is queued, and ends.
    pub(crate) fn spawn(
        self,
        stop: CancellationToken,
    ) -> (WriterHandle, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(self.run(rx, stop));
        (WriterHandle { tx }, task)
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<(IngestRequest, Reply)>,
        stop: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut since_prune = 0usize;
        loop {
            let received = tokio::select! {
                n = rx.recv_many(&mut batch, MAX_BATCH) => n,
                _ = stop.cancelled(), if !rx.is_closed() => {
                    rx.close();
                    continue;
                }
            };
            if received == 0 {
                break;
            }
            let (requests, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
            match self.commit_batch(&requests).await {
                Ok((outcomes, fx)) => {
                    self.store.health.succeeded(self.clock.now_ms());
                    self.wakers.after_commit(&fx);
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    // Logged once per outage by the health tracker, not once per batch.
                    tracing::debug!(error = %e, batch = requests.len(), "intake batch failed to commit; answering 503");
                    self.store.health.failed("intake", &e, self.clock.now_ms());
                    // Counters may have advanced inside the failed transaction, and the rate
                    // windows counted alerts that were not stored (Sentry will send them again):
                    // rebuild both from what the database holds.
                    // Read-only: the reader sees what the failed batch left committed.
                    if let Ok(mut conn) = self.store.reader().acquire().await {
                        if let Ok((ev, inc)) = sql::max_ids(&mut conn).await {
                            self.next_event_id = ev.next();
                            self.next_incident_id = inc.next();
                        }
                        let corrupt = &self.store.corrupt_rows;
                        let now = self.clock.now_ms();
                        match rebuild_classifier(&mut conn, corrupt, &self.cfg, now).await {
                            Ok(c) => self.classifier = c,
                            Err(e) => tracing::error!(error = %e, "rebuilding rate windows failed"),
                        }
                    }
                    let e = Arc::new(e);
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            since_prune += requests.len();
            if since_prune > 10_000 {
                self.classifier.prune(self.clock.now_ms());
                since_prune = 0;
            }
        }
    }

    /// Brings what this writer keeps between batches up to what other replicas wrote since its
    /// last one (a shared database, inside the write lock): the next ids continue after theirs,
    /// and their occurrences count in this replica's rate windows, so ">10 errors in 5 minutes"
    /// counts the errors every replica took in.
    async fn catch_up(
        &mut self,
        tx: &mut crate::store::WriteTx,
        now: i64,
    ) -> Result<(), StoreError> {
        let (events, incidents) = sql::max_ids(&mut *tx).await?;
        if events >= self.next_event_id {
            let fingerprint = self.classifier.fingerprint();
            let facts = sql::rate_facts_from(&mut *tx, self.next_event_id).await?;
            if facts.iter().all(|(_, _, fp, _)| *fp == Some(fingerprint)) {
                for (_, at, _, keys) in &facts {
                    self.classifier
                        .restore(&decode_rate_keys(keys.as_deref()), *at);
                }
            } else {
                // Stored under other rules (a replica with another routing file): derive again.
                self.classifier =
                    rebuild_classifier(&mut *tx, &self.store.corrupt_rows, &self.cfg, now).await?;
            }
            self.next_event_id = events.next();
        }
        if incidents >= self.next_incident_id {
            self.next_incident_id = incidents.next();
        }
        Ok(())
    }

    /// One batch in one transaction: [`dedup`] (what the store holds), [`apply`] (pure), [`write`].
    #[tracing::instrument(skip_all, fields(batch = reqs.len(), incidents = tracing::field::Empty))]
    async fn commit_batch(
        &mut self,
        reqs: &[IngestRequest],
    ) -> Result<(Vec<IngestOutcome>, Effects), StoreError> {
        let mut tx = self.store.begin_intake_write().await?;
        let now = self.clock.now_ms();
        if self.store.shared() {
            self.catch_up(&mut tx, now).await?;
        }
        let latest = self.live.load();
        if !Arc::ptr_eq(&latest, &self.cfg) {
            // Reloaded: new rules need new rate windows, refilled from what is stored. Kept only
            // once built, so a failed rebuild is tried again with the next batch.
            self.classifier =
                rebuild_classifier(&mut tx, &self.store.corrupt_rows, &latest, now).await?;
            self.cfg = latest;
        }
        let known = dedup(&mut tx, reqs, &self.cfg, now).await?;
        let ids = NextIds {
            event: self.next_event_id,
            incident: self.next_incident_id,
        };
        let mut applied = apply(known, reqs, &self.cfg, &mut self.classifier, ids, now);
        let touched: Vec<i64> = applied.incidents.iter().map(|i| i.id.get()).collect();
        tracing::Span::current().record("incidents", tracing::field::debug(&touched));
        let (new_shapes, announced_on) = write(&mut tx, &self.cfg, &applied, now).await?;
        let closed = storms::close_emptied(&mut tx, &self.cfg, &applied.lost_open, now).await?;
        applied.effects.extend(closed);
        tx.commit().await?;
        crate::intake::unparsed::log_announced(&new_shapes, &announced_on);
        // The announcements are outbox rows outside the effects: wake the outbox for them here.
        if !new_shapes.is_empty() && !announced_on.is_empty() {
            self.wakers.wake(crate::signal::Wake::Outbox);
        }
        self.next_event_id = applied.next.event;
        self.next_incident_id = applied.next.incident;
        Ok((applied.outcomes, applied.effects))
    }
}

/// What the store already holds about a batch: read by [`dedup`], used by [`apply`].
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Event keys already stored, with their event ids (forever).
    stored: HashMap<String, EventId>,
    /// Content hashes stored within the retry window (see `sql::body_copies`).
    body_copies: HashMap<String, sql::BodyCopy>,
    /// Sentry events already counted (under another rule or route).
    events_seen: HashSet<String>,
    /// The incidents the batch's payloads belong to, by incident key.
    incidents: HashMap<String, Incident>,
    /// Incident rows that do not decode (logged when read), by key: their webhooks are stored,
    /// not applied.
    unreadable: HashMap<String, IncidentId>,
    /// The silences in force at the batch's time.
    silences: Vec<crate::domain::Silence>,
    /// The open storms, and the recent openings a storm may form from.
    storms: StormBook,
}

/// The next free event and incident ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NextIds {
    event: EventId,
    incident: IncidentId,
}

/// What [`apply`] decided for a batch: everything [`write`] stores, and the answers.
#[derive(Debug)]
pub(crate) struct Applied<'a> {
    /// One per request, in order.
    outcomes: Vec<IngestOutcome>,
    /// Incident rows changed (or opened) by the batch, by key, each once.
    incidents: Vec<Incident>,
    events: Vec<NewEvent>,
    effects: Effects,
    /// Payloads of a shape we cannot read, to be recorded (and announced if new).
    unparsed: Vec<crate::intake::unparsed::Sighting<'a>>,
    /// The counters after this batch, kept only once it commits.
    next: NextIds,
    /// Storms that lost an open member (see `storms::close_emptied`).
    lost_open: std::collections::BTreeSet<IncidentId>,
    /// The latest canary of the batch: its latency in ms, when its event time is known.
    canary: Option<Option<i64>>,
}

/// Step 1: looks up what the store holds about the requests (stored keys, recent copies of the
/// same body, events already counted, their incidents).
async fn dedup(
    conn: &mut WriteTx,
    reqs: &[IngestRequest],
    cfg: &RoutingConfig,
    now: i64,
) -> Result<Known, StoreError> {
    let (body_keys, event_keys): (Vec<&str>, Vec<&str>) = reqs
        .iter()
        .map(|r| r.dedup_key.as_str())
        .partition(|k| crate::intake::is_content_key(k));
    let stored = sql::existing_dedup_keys(conn, &event_keys).await?;
    let body_copies =
        sql::body_copies(conn, &body_keys, now.saturating_sub(RETRY_WINDOW_MS)).await?;
    let event_prefixes: Vec<String> = reqs
        .iter()
        .filter(|r| r.facts.occurrence)
        .filter_map(|r| {
            r.facts
                .event_id
                .as_deref()
                .map(crate::intake::event_key_prefix)
        })
        .collect();
    let events_seen = sql::events_seen(conn, &event_prefixes).await?;
    let incident_keys: Vec<String> = reqs.iter().filter_map(|r| r.facts.incident_key()).collect();
    let key_refs: Vec<&str> = incident_keys.iter().map(String::as_str).collect();
    let seen = conn.corrupt().clone();
    let silences = crate::store::silences::active(conn, &seen, now).await?;
    let mut known = Known {
        stored,
        body_copies,
        events_seen,
        silences,
        ..Known::default()
    };
    for (key, row) in sql::incidents_by_keys(conn, &key_refs).await? {
        match row {
            Ok(inc) => {
                known.incidents.insert(key, inc);
            }
            Err(corrupt) => {
                // Read from `incidents`, so the row id is an incident id.
                known.unreadable.insert(key, IncidentId(corrupt.id));
            }
        }
    }
    // A batch of known, open incidents opens nothing: no storm can form.
    let may_open = incident_keys.iter().any(|k| {
        known
            .incidents
            .get(k)
            .is_none_or(|i| matches!(i.state(), IncidentState::Resolved | IncidentState::Muted))
    });
    known.storms = StormBook::read(conn, cfg, now, may_open, &mut known.incidents).await?;
    Ok(known)
}

/// Step 2, pure: drops retries (stored, or earlier in this batch), classifies each payload and
/// applies its transition to the incidents in `known`. No SQL and no clock: `now` is given.
fn apply<'a>(
    known: Known,
    reqs: &'a [IngestRequest],
    cfg: &RoutingConfig,
    classifier: &mut Classifier,
    ids: NextIds,
    now: i64,
) -> Applied<'a> {
    let mut batch = Applier {
        cfg,
        now,
        known,
        first_in_batch: HashMap::new(),
        changed: Vec::new(),
        out: Applied {
            outcomes: Vec::with_capacity(reqs.len()),
            incidents: Vec::new(),
            events: Vec::with_capacity(reqs.len()),
            effects: Effects::default(),
            unparsed: Vec::new(),
            next: ids,
            lost_open: std::collections::BTreeSet::new(),
            canary: None,
        },
    };
    for req in reqs {
        if let Some(event_id) = batch.retry_of(req) {
            batch
                .out
                .outcomes
                .push(IngestOutcome::Duplicate { event_id });
            continue;
        }
        let event = batch.out.next.event;
        batch.out.next.event = event.next();
        batch.first_in_batch.insert(req.dedup_key.as_str(), event);
        let facts = batch.counted_once(req);
        if facts.is_canary() {
            batch.canary(req, &facts, event);
            continue;
        }
        let (class, counted) = match &req.forced {
            Some(f) => (
                Classification {
                    severity: f.severity,
                    rule: Some(f.rule.clone()),
                },
                Vec::new(),
            ),
            None => classifier.classify_counted(&facts, now),
        };
        let change = batch.change(req, &facts, &class, event);
        let mut row = batch.event_row(req, &facts, &class, event, &change);
        row.rate_fp = classifier.fingerprint();
        row.rate_keys = encode_rate_keys(&counted);
        batch.out.events.push(row);
        batch.out.outcomes.push(IngestOutcome::Accepted {
            event_id: event,
            incident_id: change.touched.map(|(id, _)| id),
            severity: change.touched.map_or(class.severity, |(_, s)| s),
            status: change.status,
        });
    }
    batch.finish()
}

/// The state of [`apply`] while it goes through a batch.
struct Applier<'a, 'c> {
    cfg: &'c RoutingConfig,
    now: i64,
    known: Known,
    /// Event id of the first request of each dedup key in this batch.
    first_in_batch: HashMap<&'a str, EventId>,
    /// Keys of the incidents changed so far (repeats are removed at the end).
    changed: Vec<String>,
    out: Applied<'a>,
}

/// What one payload did to its incident.
struct Change {
    status: IngestStatus,
    /// The incident it changed, with its severity after the change.
    touched: Option<(IncidentId, Severity)>,
    /// Its incident, when that row cannot be read.
    unreadable: Option<IncidentId>,
}

impl<'a> Applier<'a, '_> {
    /// The event this request repeats: one stored under its key, one stored with the same
    /// body within the retry window, or one earlier in this batch.
    fn retry_of(&self, req: &IngestRequest) -> Option<EventId> {
        let key = req.dedup_key.as_str();
        if let Some(id) = self.known.stored.get(key) {
            return Some(*id);
        }
        if let Some(sql::BodyCopy::Retry(id)) = self.known.body_copies.get(key) {
            return Some(*id);
        }
        self.first_in_batch.get(key).copied()
    }

    /// A canary: stored as an event and noted for the watch, never an incident nor counted in a
    /// rate window.
    fn canary(&mut self, req: &IngestRequest, facts: &AlertFacts, event: EventId) {
        let change = Change {
            status: IngestStatus::Recorded,
            touched: None,
            unreadable: None,
        };
        let class = Classification::unclassified();
        let row = self.event_row(req, facts, &class, event, &change);
        self.out.events.push(row);
        self.out.canary = Some(facts.event_time_ms.map(|t| (self.now - t).max(0)));
        self.out.outcomes.push(IngestOutcome::Accepted {
            event_id: event,
            incident_id: None,
            severity: class.severity,
            status: change.status,
        });
    }

    /// The facts to apply: a Sentry event already counted (under another rule or route) is
    /// not an occurrence again.
    fn counted_once(&mut self, req: &'a IngestRequest) -> Cow<'a, AlertFacts> {
        let seen_before = req.facts.occurrence
            && req.facts.event_id.as_deref().is_some_and(|id| {
                !self
                    .known
                    .events_seen
                    .insert(crate::intake::event_key_prefix(id))
            });
        if seen_before {
            Cow::Owned(AlertFacts {
                occurrence: false,
                ..req.facts.clone()
            })
        } else {
            Cow::Borrowed(&req.facts)
        }
    }

    /// Applies the transition the payload means to its incident (opening one for a new alert).
    fn change(
        &mut self,
        req: &'a IngestRequest,
        f: &AlertFacts,
        class: &Classification,
        event: EventId,
    ) -> Change {
        let (cfg, now) = (self.cfg, self.now);
        let key = f.incident_key();
        let unreadable = key
            .as_ref()
            .and_then(|k| self.known.unreadable.get(k))
            .copied();
        let mut change = Change {
            status: IngestStatus::Processed,
            touched: None,
            unreadable,
        };
        let fx = &mut self.out.effects;
        match (f.meaning(), key) {
            // Its incident cannot be read, so neither counted, nor reopened, nor opened again
            // under the same key: kept with the incident's id, to be replayed once repaired.
            (_, Some(_)) if unreadable.is_some() => {
                change.status = IngestStatus::UnreadableIncident
            }
            (Meaning::Alert, Some(key)) => {
                let mut before = None;
                match self.known.incidents.get_mut(&key) {
                    Some(inc) => {
                        before = Some(storms::Before::of(inc));
                        let mut e = transitions::record_alert(cfg, inc, f, class, event, now);
                        transitions::hold_if_silenced(
                            inc,
                            &mut e,
                            &self.known.silences,
                            &f.tags,
                            cfg,
                            now,
                        );
                        fx.extend(e);
                        change.touched = Some((inc.id, inc.severity()));
                    }
                    None => {
                        let id = self.out.next.incident;
                        let notify = req.forced.as_ref().map(|f| f.notify.as_slice());
                        let (mut inc, mut opened) = transitions::open_new_notifying(
                            cfg,
                            id,
                            key.clone(),
                            f,
                            class,
                            event,
                            now,
                            notify.filter(|n| !n.is_empty()),
                        );
                        transitions::hold_if_silenced(
                            &mut inc,
                            &mut opened,
                            &self.known.silences,
                            &f.tags,
                            cfg,
                            now,
                        );
                        self.out.next.incident = id.next();
                        change.touched = Some((inc.id, inc.severity()));
                        fx.extend(opened);
                        // A drill of the paging path must never page on-call for real.
                        if req.source == TEST_SOURCE {
                            transitions::disable_escalation(&mut inc, fx, now);
                        }
                        self.known.incidents.insert(key.clone(), inc);
                    }
                }
                self.storm_step(&key, before, req.source == TEST_SOURCE);
                self.changed.push(key);
            }
            (
                meaning @ (Meaning::Resolved
                | Meaning::Unresolved
                | Meaning::Assigned
                | Meaning::Muted
                | Meaning::Comment
                | Meaning::Seer),
                Some(key),
            ) => match self.known.incidents.get_mut(&key) {
                Some(inc) => {
                    let before = Some(storms::Before::of(inc));
                    let actor = Actor::new(
                        f.actor.clone().unwrap_or_else(|| "sentry".into()),
                        Via::Sentry,
                    );
                    let e = match meaning {
                        Meaning::Resolved => match lifecycle::our_echo(inc, now) {
                            Some(e) => e,
                            None => transitions::resolve(cfg, inc, &actor, now).1,
                        },
                        Meaning::Unresolved => lifecycle::sentry_unresolved(
                            cfg,
                            inc,
                            f.substatus,
                            f.status_release.as_deref(),
                            now,
                        ),
                        Meaning::Assigned => {
                            transitions::assign(inc, f.assignee.clone(), &actor, now)
                        }
                        Meaning::Muted => {
                            let reason = f
                                .mute_reason
                                .clone()
                                .unwrap_or_else(|| "archived in Sentry".into());
                            lifecycle::sentry_muted(inc, &actor.name, reason, now)
                        }
                        Meaning::Seer => match &f.seer {
                            Some(seer) => lifecycle::seer(inc, seer, now),
                            None => Effects::default(),
                        },
                        _ => transitions::comment(inc, f.comment.clone(), &actor, now),
                    };
                    change.touched = Some((inc.id, inc.severity()));
                    fx.extend(e);
                    self.storm_step(&key, before, false);
                    self.changed.push(key);
                }
                // A state change for an issue we never paged about: kept, nothing to do.
                None => change.status = IngestStatus::NoIncident,
            },
            (Meaning::Installation, _) => change.status = IngestStatus::Recorded,
            // Sentry's envelope around content we cannot read: kept, never an incident.
            (Meaning::Unparsed, _) => {
                change.status = IngestStatus::Unparsed;
                self.out
                    .unparsed
                    .extend(crate::intake::unparsed::Sighting::of(&req.facts, event));
            }
            _ => change.status = IngestStatus::Ignored,
        }
        change
    }

    /// The `events` row of an accepted payload.
    fn event_row(
        &self,
        req: &IngestRequest,
        f: &AlertFacts,
        class: &Classification,
        event: EventId,
        change: &Change,
    ) -> NewEvent {
        // The same body again after its incident changed is a new event: its key gets the id.
        let dedup_key = match self.known.body_copies.get(req.dedup_key.as_str()) {
            Some(sql::BodyCopy::Repeat) => format!("{}:{event}", req.dedup_key),
            _ => req.dedup_key.clone(),
        };
        NewEvent {
            id: event,
            received_at: self.now,
            dedup_key,
            request_id: req.request_id.clone(),
            source: req.source,
            resource: f.resource.clone(),
            action: f.action.clone(),
            status: change.status.as_str(),
            incident_id: change.touched.map(|(id, _)| id).or(change.unreadable),
            severity: (f.meaning() == Meaning::Alert).then_some(class.severity.as_str()),
            rule: class.rule.clone(),
            project: f.project.clone(),
            environment: f.environment.clone(),
            level: f.level.clone(),
            occurrence: f.occurrence,
            body: req.stored_body.clone(),
            details: event_details(f, &req.body, self.cfg.delivery.include_pii),
            // Filled in by `apply`, which holds the classifier.
            rate_fp: 0,
            rate_keys: None,
        }
    }

    /// Storm groups after the change to `key` (see `StormBook::after_change`).
    fn storm_step(&mut self, key: &str, before: Option<storms::Before>, drill: bool) {
        let mut batch = storms::Batch {
            incidents: &mut self.known.incidents,
            fx: &mut self.out.effects,
            changed: &mut self.changed,
            next_id: &mut self.out.next.incident,
            now: self.now,
        };
        self.known
            .storms
            .after_change(self.cfg, &mut batch, key, before, drill);
    }

    /// The changed incident rows, each once: storms first (members refer to them), then the
    /// rest in key order.
    fn finish(mut self) -> Applied<'a> {
        self.changed.sort();
        self.changed.dedup();
        self.out.incidents = self.known.storms.take_changed();
        self.out.lost_open = self.known.storms.take_lost_open();
        let changed = self
            .changed
            .iter()
            .filter_map(|k| self.known.incidents.remove(k));
        self.out.incidents.extend(changed);
        self.out
    }
}

/// Step 3: stores what [`apply`] decided, in the batch's transaction: the changed incident rows,
/// the events, the unreadable shapes (announcing new ones) and the effects. Returns the new
/// shapes and the channels they were announced on (logged after the commit).
async fn write(
    conn: &mut crate::store::WriteTx,
    cfg: &RoutingConfig,
    applied: &Applied<'_>,
    now: i64,
) -> Result<(Vec<crate::intake::unparsed::NewShape>, Vec<String>), StoreError> {
    let rows: Vec<&Incident> = applied.incidents.iter().collect();
    if !rows.is_empty() {
        sql::upsert_incidents(conn, &rows).await?;
    }
    if !applied.events.is_empty() {
        sql::insert_events(conn, &applied.events).await?;
    }
    if let Some(latency) = applied.canary {
        crate::store::watch::mark(conn, crate::store::watch::LAST_CANARY, now, latency).await?;
    }
    let new_shapes = crate::intake::unparsed::record(conn, &applied.unparsed, now).await?;
    let announced_on =
        crate::intake::unparsed::queue_announcements(conn, cfg, &new_shapes, now).await?;
    sql::apply_effects(conn, &[], &applied.effects, now).await?;
    Ok((new_shapes, announced_on))
}

#[cfg(test)]
mod tests;
