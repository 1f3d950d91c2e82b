//! The escalation scheduler. Deadlines are rows (`incidents.next_escalation_at`); the
//! in-process timer is only a wake-up hint. Firing is one transaction per batch that re-checks
//! each incident is still unacknowledged and due, enqueues the secondary deliveries, clears the
//! deadline and records the escalation under a unique key, so a restart, a crash at any point,
//! or two ticks racing can neither lose an escalation nor fire it twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, sleep_until};
use crate::domain::IncidentId;
use crate::domain::IncidentState;
use crate::incidents::model::Incident;
use crate::incidents::transitions::{self, Effects, lifecycle};
use crate::incidents::writer::Wakers;
use crate::metrics::Metrics;
use crate::signal::Signal;
use crate::store::escalations as sql;
use crate::store::incidents::apply_effects;
use crate::store::{CorruptRow, Store, StoreError, WriteTx};

/// Incidents fired per transaction: bounded so that intake never waits long on the writer (each
/// costs some 50-60 us before the commit, so a full batch holds it near 15 ms). Not smaller:
/// under intake load every batch waits its turn behind an intake commit, so a backlog larger
/// than a batch (after a stall) takes several turns to clear.
const BATCH: usize = 256;
/// The shortest real time between two passes. Deadlines that fall this close together fire in
/// one transaction instead of one each: with 100,000 deadlines spread over a minute, a pass per
/// deadline made some 125 write transactions a second (13 escalations each) that intake's
/// commits queued behind. It adds at most this much to an escalation's lateness.
const PASS_GAP: std::time::Duration = std::time::Duration::from_millis(20);
/// How soon the deadline of an incident that cannot be read is looked at again.
const UNREADABLE_RETRY_MS: i64 = 60_000;

#[derive(Clone)]
pub struct Scheduler {
    pub store: Store,
    pub clock: SharedClock,
    pub wakers: Wakers,
    pub metrics: Arc<Metrics>,
}

impl Scheduler {
    /// Fires every escalation due now, a bounded batch per transaction. Returns how many fired.
    #[tracing::instrument(skip_all, fields(fired = tracing::field::Empty, incidents = tracing::field::Empty))]
    pub async fn fire_due(&self) -> Result<usize, StoreError> {
        let mut fired_ids = Vec::new();
        loop {
            let batch = self.fire_batch(BATCH).await?;
            if batch.fired.len() >= BATCH / 4 {
                // A wave: the outbox's next claim must not be planned on statistics from before
                // it (see `Store::refresh_statistics`).
                if let Err(e) = self.store.refresh_statistics().await {
                    tracing::debug!(error = %e, "refreshing the statistics failed");
                }
            }
            fired_ids.extend(batch.fired);
            if batch.read < BATCH {
                let span = tracing::Span::current();
                span.record("fired", fired_ids.len());
                span.record("incidents", tracing::field::debug(&fired_ids));
                return Ok(fired_ids.len());
            }
        }
    }

    /// One transaction: fires at most `limit` of the escalations due now, oldest deadline first.
    /// Each incident is re-read and re-checked under the write lock, and its step recorded under
    /// the unique key in the same commit, so racing schedulers or a crash between two batches
    /// cannot fire a step twice or lose one.
    pub async fn fire_batch(&self, limit: usize) -> Result<Batch, StoreError> {
        let mut tx = self.store.begin_write().await?;
        // After the lock, so that lateness and timeline times follow commit order.
        let now = self.clock.now_ms();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // First the `confirm_within` checks: a fail-over sets its escalation due now, which the
        // read below then fires in this same transaction.
        let (confirm_fx, degraded, confirm_read) = check_confirmations(&mut tx, now, limit).await?;
        let due = sql::due(&mut tx, now, limit).await?;
        let read = due.len().max(confirm_read);
        let mut changed = Vec::with_capacity(due.len());
        let mut firing = Vec::with_capacity(due.len());
        let mut expired = Effects::default();
        let mut expired_count = 0;
        for row in due {
            let Some(mut inc) = readable(&mut tx, row, now).await? else {
                continue;
            };
            let Some(due_at) = inc.next_escalation_at else {
                continue;
            };
            // An acknowledged incident's deadline is the end of its acknowledgement.
            if inc.state() == IncidentState::Acknowledged {
                match lifecycle::expire_acknowledgement(&mut inc, due_at, now) {
                    Some(e) => {
                        expired.extend(e);
                        expired_count += 1;
                    }
                    None => inc.next_escalation_at = None,
                }
                changed.push(inc);
                continue;
            }
            match transitions::fire_escalation(&mut inc, due_at, now) {
                Some(e) => firing.push(((inc.id, inc.episode, inc.escalation_step, due_at), e)),
                // Not ours to fire (state changed): clear the stale deadline.
                None => inc.next_escalation_at = None,
            }
            changed.push(inc);
        }
        let (mut fx, fired, lateness) = keep_first(&mut tx, firing, now).await?;
        fx.extend(expired);
        let rows: Vec<&Incident> = changed.iter().collect();
        apply_effects(&mut tx, &rows, &fx, now).await?;
        tx.commit().await?;
        fx.extend(confirm_fx);
        self.after_commit(&fx, &lateness);
        self.metrics.acknowledgements_expired(expired_count);
        self.metrics.delivery_degraded(degraded);
        Ok(Batch { read, fired })
    }

    fn after_commit(&self, fx: &Effects, lateness: &[f64]) {
        self.wakers.after_commit(fx);
        for l in lateness {
            self.metrics.escalation_fired(*l);
        }
        if !lateness.is_empty() {
            tracing::warn!(
                count = lateness.len(),
                "escalated incidents nobody acknowledged in time"
            );
        }
    }

    /// Marks the service ready, then fires the escalations that fell due while it was down (once
    /// each, in bounded batches that intake's commits interleave with), then sleeps until the
    /// earliest deadline or a wake-up, until `cancel`. Ready does not wait for that recovery:
    /// with 100,000 overdue it took seconds, and nothing served meanwhile needs it done.
    pub fn spawn(
        self,
        wake: Signal,
        ready: Arc<AtomicBool>,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let mut waiter = wake.subscribe();
        ready.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut recovering = true;
            loop {
                match self.fire_due().await {
                    Ok(n) => {
                        if n > 0 && recovering {
                            tracing::info!(
                                fired = n,
                                "fired escalations that fell due while the service was down"
                            );
                        }
                        recovering = false;
                    }
                    Err(e) => {
                        // Logged once per outage by the health tracker; retried every second.
                        self.store
                            .health
                            .failed("scheduler", &e, self.clock.now_ms());
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                            _ = cancel.cancelled() => return,
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(PASS_GAP) => {}
                    _ = cancel.cancelled() => return,
                }
                let next = match sql::next_due(self.store.reader()).await {
                    Ok(next) => next,
                    Err(e) => {
                        // Not "nothing scheduled": look again soon rather than in a minute.
                        tracing::error!(error = %e, "reading the next escalation deadline failed; retrying in 1 s");
                        Some(self.clock.now_ms().saturating_add(1000))
                    }
                };
                tokio::select! {
                    _ = sleep_until(&*self.clock, next, &mut waiter) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        })
    }
}

/// What one [`Scheduler::fire_batch`] did.
#[derive(Debug, Default)]
pub struct Batch {
    /// Due rows read (a full batch means more may be due).
    pub read: usize,
    /// Incidents whose escalation fired.
    pub fired: Vec<IncidentId>,
}

/// The incident, or `None` for a row that cannot be read: logged when read, its deadline moved
/// a minute on so that it is looked at again then, not in a busy loop. When that row is a
/// storm, its open members leave it and escalate on their own from the next pass.
async fn readable(
    tx: &mut WriteTx,
    row: Result<Incident, CorruptRow>,
    now: i64,
) -> Result<Option<Incident>, StoreError> {
    match row {
        Ok(inc) => Ok(Some(inc)),
        Err(corrupt) => {
            // Read from `incidents`, so the row id is an incident id.
            let id = IncidentId(corrupt.id);
            sql::postpone(tx, id, now.saturating_add(UNREADABLE_RETRY_MS)).await?;
            let released = sql::release_members(tx, id, now).await?;
            if released > 0 {
                tracing::error!(
                    storm = id.get(),
                    members = released,
                    "a storm that cannot be read fell due: its open members escalate on their own"
                );
            }
            Ok(None)
        }
    }
}

/// The `confirm_within` deadlines due now, in the firing transaction: each incident whose
/// episode has no notification confirmed delivered is marked degraded and its escalation set due
/// now (see `lifecycle::confirm_deadline`); the rows and their notes are written here, before
/// the escalations due are read. Returns `(effects, fail-overs, rows read)`.
async fn check_confirmations(
    tx: &mut WriteTx,
    now: i64,
    limit: i64,
) -> Result<(Effects, usize, usize), StoreError> {
    let due = sql::confirm_due(tx, now, limit).await?;
    let read = due.len();
    let mut fx = Effects::default();
    let mut changed = Vec::with_capacity(read);
    let mut degraded = 0;
    for row in due {
        let mut inc = match row {
            Ok(inc) => inc,
            Err(corrupt) => {
                sql::drop_confirm(tx, IncidentId(corrupt.id)).await?;
                continue;
            }
        };
        let policy = inc.frozen_policy();
        let paging: Vec<String> = policy
            .notify
            .into_iter()
            .chain(policy.escalate_to)
            .collect();
        let confirmed = sql::delivery_confirmed(tx, inc.id, inc.episode, &paging).await?;
        if let Some(e) = lifecycle::confirm_deadline(&mut inc, confirmed, now) {
            degraded += usize::from(inc.delivery_degraded_at == Some(now));
            fx.extend(e);
        }
        changed.push(inc);
    }
    let rows: Vec<&Incident> = changed.iter().collect();
    apply_effects(tx, &rows, &fx, now).await?;
    Ok((fx, degraded, read))
}

/// Records every step about to fire in one statement and keeps the effects of those that were
/// not on record yet: `(effects, fired incidents, lateness in seconds)`.
async fn keep_first(
    tx: &mut WriteTx,
    firing: Vec<(sql::Step, Effects)>,
    now: i64,
) -> Result<(Effects, Vec<IncidentId>, Vec<f64>), StoreError> {
    let steps: Vec<sql::Step> = firing.iter().map(|(step, _)| *step).collect();
    let first = sql::record_all(tx, &steps, now).await?;
    let mut fx = Effects::default();
    let mut fired = Vec::with_capacity(first.len());
    let mut lateness = Vec::with_capacity(first.len());
    for ((id, episode, step, due_at), e) in firing {
        if first.contains(&id) {
            fired.push(id);
            lateness.push((now - due_at) as f64 / 1000.0);
            fx.extend(e);
        } else {
            // Only restored or hand-edited data gets here. Firing again would page twice;
            // failing the batch would stall every escalation.
            tracing::warn!(
                incident = id.get(),
                episode = episode.get(),
                step,
                "escalation step already on record: not paging again"
            );
        }
    }
    Ok((fx, fired, lateness))
}

#[cfg(test)]
mod tests;
