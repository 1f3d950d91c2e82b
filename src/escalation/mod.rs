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
use crate::incidents::model::Incident;
use crate::incidents::transitions::{self, Effects};
use crate::incidents::writer::Wakers;
use crate::metrics::Metrics;
use crate::signal::Signal;
use crate::store::escalations as sql;
use crate::store::incidents::apply_effects;
use crate::store::{Store, StoreError};

/// Incidents fired per transaction: bounded so that intake never waits long on the writer.
const BATCH: i64 = 500;
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
    /// Fires every escalation due now. Returns how many fired.
    #[tracing::instrument(skip_all, fields(fired = tracing::field::Empty, incidents = tracing::field::Empty))]
    pub async fn fire_due(&self) -> Result<usize, StoreError> {
        let mut fired = 0;
        let mut fired_ids = Vec::new();
        loop {
            let mut tx = self.store.begin_write().await?;
            // After the lock, so that lateness and timeline times follow commit order.
            let now = self.clock.now_ms();
            let due = sql::due(&mut tx, now, BATCH).await?;
            let n = due.len();
            let mut changed = Vec::with_capacity(n);
            let mut fx = Effects::default();
            let mut lateness = Vec::with_capacity(n);
            for row in due {
                let mut inc = match row {
                    Ok(inc) => inc,
                    Err(corrupt) => {
                        // Logged when read; looked at again in a minute, not in a busy loop.
                        // Read from `incidents`, so the row id is an incident id.
                        let id = IncidentId(corrupt.id);
                        sql::postpone(&mut tx, id, now.saturating_add(UNREADABLE_RETRY_MS)).await?;
                        continue;
                    }
                };
                let Some(due_at) = inc.next_escalation_at else {
                    continue;
                };
                match transitions::fire_escalation(&mut inc, due_at, now) {
                    Some(e) => {
                        let first = sql::record(
                            &mut tx,
                            inc.id,
                            inc.episode,
                            inc.escalation_step,
                            due_at,
                            now,
                        )
                        .await?;
                        if first {
                            fired_ids.push(inc.id);
                            lateness.push((now - due_at) as f64 / 1000.0);
                            fx.extend(e);
                        } else {
                            // Only restored or hand-edited data gets here. Firing again would
                            // page twice; failing the batch would stall every escalation.
                            tracing::warn!(
                                incident = inc.id.get(),
                                episode = inc.episode.get(),
                                step = inc.escalation_step,
                                "escalation step already on record: not paging again"
                            );
                        }
                    }
                    // Not ours to fire (state changed): clear the stale deadline.
                    None => inc.next_escalation_at = None,
                }
                changed.push(inc);
            }
            let rows: Vec<&Incident> = changed.iter().collect();
            apply_effects(&mut tx, &rows, &fx, now).await?;
            tx.commit().await?;
            self.wakers.after_commit(&fx);
            for l in &lateness {
                self.metrics.escalation_fired(*l);
            }
            if !lateness.is_empty() {
                tracing::warn!(
                    count = lateness.len(),
                    "escalated incidents nobody acknowledged in time"
                );
            }
            fired += lateness.len();
            if (n as i64) < BATCH {
                let span = tracing::Span::current();
                span.record("fired", fired);
                span.record("incidents", tracing::field::debug(&fired_ids));
                return Ok(fired);
            }
        }
    }

    /// Recovery (escalations that fell due while the service was down fire once), then mark the
    /// service ready, then sleep until the earliest deadline or a wake-up, until `cancel`.
    pub fn spawn(
        self,
        wake: Signal,
        ready: Arc<AtomicBool>,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let mut waiter = wake.subscribe();
        tokio::spawn(async move {
            loop {
                match self.fire_due().await {
                    Ok(n) if n > 0 && !ready.load(Ordering::SeqCst) => {
                        tracing::info!(
                            fired = n,
                            "fired escalations that fell due while the service was down"
                        );
                    }
                    Ok(_) => {}
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
                ready.store(true, Ordering::SeqCst);
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
