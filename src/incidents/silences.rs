//! Silences over time: creating one, expiring one by hand, and the worker that releases the
//! incidents a silence held once it ends. Releasing is one write transaction that notifies the
//! held incidents still unacknowledged, starts their escalation windows and marks the silence
//! released, so it happens exactly once whatever restarts around it.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, sleep_until};
use crate::config::{Live, RoutingConfig};
use crate::domain::{
    Effects, EventId, IncidentId, Matchers, NewSilence, Silence, SilenceError, SilenceId,
};
use crate::store::silences as sql;
use crate::store::{Store, StoreError, WriteTx};

use super::model::Incident;
use super::transitions;
use super::writer::Wakers;

/// Silences released per transaction.
const BATCH: i64 = 100;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SilenceServiceError {
    #[error(transparent)]
    Invalid(#[from] SilenceError),
    #[error("silence {0} not found")]
    NotFound(SilenceId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `expire` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expired {
    pub silence: Silence,
    /// False when it had already ended (nothing changed).
    pub changed: bool,
    /// Incidents notified because the silence ended.
    pub notified: Vec<IncidentId>,
}

/// A silence just stored, and why it may never hold anything (see [`never_matches`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Created {
    pub silence: Silence,
    pub warnings: Vec<String>,
}

/// What may make a valid silence hold nothing in the routing file in force: said back to its
/// author (API, page, CLI) rather than refused, because the file can change (a reload may add
/// the rule it names). A silence that can never hold anything whatever the file says (its own
/// severity let through, a window already over) is refused by [`NewSilence::validate`].
pub(crate) fn never_matches(matchers: &Matchers, cfg: &RoutingConfig) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rule) = &matchers.rule
        && !cfg.rules.iter().any(|r| &r.name == rule)
    {
        let known: Vec<&str> = cfg.rules.iter().map(|r| r.name.as_str()).collect();
        out.push(format!(
            "rule `{rule}` is not in {} (rules: {}): this silence holds nothing until a rule of that name is added",
            cfg.path.display(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ));
    }
    out
}

#[derive(Clone)]
pub struct Silences {
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) wakers: Wakers,
    /// The routing file in force: what a silence's `environment` means (its aliases), and the
    /// rules a silence may name.
    pub(crate) cfg: Live<RoutingConfig>,
}

impl Silences {
    /// Stores a silence and, when it is already in force, holds the triggered incidents it
    /// matches (their escalation stops until it ends), in one transaction.
    pub(crate) async fn create(&self, new: NewSilence) -> Result<Created, SilenceServiceError> {
        let cfg = self.cfg.load();
        let mut tx = self.store.begin_write().await?;
        let now = self.clock.now_ms();
        new.validate(now)?;
        let warnings = never_matches(&new.matchers, &cfg);
        let silence = sql::insert(&mut tx, &new, now).await?;
        let mut fx = Effects::default();
        if silence.is_active(now) {
            let mut changed: Vec<Incident> = Vec::new();
            for row in sql::unheld_triggered(&mut tx).await? {
                // Logged and counted when read; left as it is.
                let Ok(mut inc) = row else { continue };
                let tags = match (silence.matchers.tags.is_empty(), inc.last_event_id) {
                    (false, Some(event)) => last_tags(&mut tx, event).await?,
                    _ => Vec::new(),
                };
                let e = transitions::hold_open(&mut inc, &silence, &tags, &*cfg, now);
                if !e.timeline.is_empty() {
                    fx.extend(e);
                    changed.push(inc);
                }
            }
            let rows: Vec<&Incident> = changed.iter().collect();
            crate::store::incidents::apply_effects(&mut tx, &rows, &fx, now).await?;
        }
        tx.commit().await?;
        self.wakers.after_commit(&fx);
        self.wakers.wake(crate::signal::Wake::Silences);
        tracing::info!(silence = silence.id.get(), author = %silence.author, matchers = %silence.matchers.describe(), warnings = ?warnings, "silence created");
        Ok(Created { silence, warnings })
    }

    /// Ends a silence now (kept in the history) and, in the same transaction, notifies the
    /// incidents it held.
    pub(crate) async fn expire(&self, id: SilenceId) -> Result<Expired, SilenceServiceError> {
        let mut tx = self.store.begin_write().await?;
        let now = self.clock.now_ms();
        let seen = tx.corrupt().clone();
        if sql::get(&mut tx, &seen, id).await?.is_none() {
            return Err(SilenceServiceError::NotFound(id));
        }
        let changed = sql::expire(&mut tx, id, now).await?;
        let (fx, notified) = release_ended(&mut tx, &self.cfg.load(), now).await?;
        let silence = sql::get(&mut tx, &seen, id)
            .await?
            .ok_or(SilenceServiceError::NotFound(id))?;
        tx.commit().await?;
        self.wakers.after_commit(&fx);
        if changed {
            tracing::info!(
                silence = id.get(),
                notified = notified.len(),
                "silence expired"
            );
        }
        Ok(Expired {
            silence,
            changed,
            notified,
        })
    }

    /// Releases the incidents of every silence that has ended. Returns how many incidents were
    /// notified. The worker calls this; tests call it after moving the clock.
    pub async fn release_due(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let mut tx = self.store.begin_write().await?;
            let now = self.clock.now_ms();
            let (fx, notified, more) = release_batch(&mut tx, &self.cfg.load(), now).await?;
            tx.commit().await?;
            self.wakers.after_commit(&fx);
            if !notified.is_empty() {
                tracing::info!(incidents = ?notified, "silences ended: notified the incidents they held");
            }
            total += notified.len();
            if !more {
                return Ok(total);
            }
        }
    }

    /// Releases what ended while the service was down, then sleeps until the next end (or a
    /// new silence), until `cancel`.
    pub(crate) fn spawn(self, cancel: CancellationToken) -> JoinHandle<()> {
        let mut waiter = self.wakers.silences.subscribe();
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.release_due().await {
                    self.store
                        .health
                        .failed("silences", &e, self.clock.now_ms());
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        _ = cancel.cancelled() => return,
                    }
                }
                let next = {
                    let reader = self.store.reader();
                    match reader.acquire().await {
                        Ok(mut conn) => sql::next_end(&mut conn).await,
                        Err(e) => Err(StoreError::Db(e)),
                    }
                };
                let next = next.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "reading the next silence end failed; retrying in 1 s");
                    Some(self.clock.now_ms().saturating_add(1000))
                });
                tokio::select! {
                    _ = sleep_until(&*self.clock, next, &mut waiter) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        })
    }
}

/// Every silence ended by `now`, in `tx`: see [`release_batch`]. For `expire`, which has ended
/// one silence and must release it in the same transaction.
async fn release_ended(
    tx: &mut WriteTx,
    cfg: &RoutingConfig,
    now: i64,
) -> Result<(Effects, Vec<IncidentId>), StoreError> {
    let mut fx = Effects::default();
    let mut notified = Vec::new();
    loop {
        let (f, n, more) = release_batch(tx, cfg, now).await?;
        fx.extend(f);
        notified.extend(n);
        if !more {
            return Ok((fx, notified));
        }
    }
}

/// The tags of an incident's last event, for matching it against the silences still active.
/// Details that do not read (logged) match no tag matcher: the incident is then notified.
async fn last_tags(tx: &mut WriteTx, event: EventId) -> Result<Vec<(String, String)>, StoreError> {
    let Some(json) = sql::event_details(tx, event).await? else {
        return Ok(Vec::new());
    };
    Ok(crate::intake::details::EventDetails::from_json(&json)
        .map(|d| d.tags)
        .unwrap_or_else(|e| {
            tracing::warn!(event = event.get(), error = %e, "event details unreadable: tags not matched");
            Vec::new()
        }))
}

/// Up to [`BATCH`] silences ended by `now` and not yet released: their held incidents are
/// released ([`transitions::release`]) and written with their effects, and each silence is
/// marked released, all in `tx`. Returns the effects, the incidents notified, and whether
/// more may be waiting.
async fn release_batch(
    tx: &mut WriteTx,
    cfg: &RoutingConfig,
    now: i64,
) -> Result<(Effects, Vec<IncidentId>, bool), StoreError> {
    let ended = sql::ended_unreleased(tx, now, BATCH).await?;
    if ended.is_empty() {
        return Ok((Effects::default(), Vec::new(), false));
    }
    let seen = tx.corrupt().clone();
    let active = sql::active(tx, &seen, now).await?;
    let mut fx = Effects::default();
    let mut notified = Vec::new();
    let mut changed: Vec<Incident> = Vec::new();
    for id in &ended {
        for row in sql::held_incidents(tx, *id).await? {
            match row {
                Ok(mut inc) => {
                    let tags = match (active.is_empty(), inc.last_event_id) {
                        (false, Some(event)) => last_tags(tx, event).await?,
                        _ => Vec::new(),
                    };
                    let e = transitions::release(&mut inc, *id, &active, &tags, cfg, now);
                    // Only what was sent counts: a kept deadline resumed, or a policy that
                    // notifies nobody, is not "notified now".
                    if !e.deliveries.is_empty() {
                        notified.push(inc.id);
                    }
                    fx.extend(e);
                    changed.push(inc);
                }
                // Logged and counted when read; its policy is unknown, so it cannot be notified.
                // Read from `incidents`, so the row id is an incident id.
                Err(corrupt) => sql::unhold(tx, IncidentId(corrupt.id)).await?,
            }
        }
        sql::mark_released(tx, *id, now).await?;
    }
    let rows: Vec<&Incident> = changed.iter().collect();
    crate::store::incidents::apply_effects(tx, &rows, &fx, now).await?;
    Ok((fx, notified, ended.len() as i64 == BATCH))
}
