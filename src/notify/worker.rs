//! The outbox worker. One loop per channel, so a Slack outage (or a slow SMTP server) never
//! delays PagerDuty. Each loop runs [`OutboxWorker::step`]: claim due rows with a lease, send,
//! record the attempt; tests call `step` directly to drive it deterministically.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::build::NotificationBuilder;
use super::bundle::MAX_MEMBERS;
use super::message::DeliveryRef;
use super::ratelimit::{Limit, RateLimiter};
use super::registry::Channels;
use super::retry::RetryPolicy;
use super::{Channel, Notice, Notification, Outgoing, RemoteState, SendOutcome, truncate_body};
use crate::clock::{SharedClock, sleep_on, sleep_until};
use crate::config::{ChannelKind, Live, Policy, RoutingConfig};
use crate::domain::IncidentId;
use crate::domain::{DeliveryKind, DeliveryStatus};
use crate::metrics::Metrics;
use crate::signal::{Signal, Waiter};
use crate::store::deliveries::{self, AttemptOutcome, AttemptResult, Delivery};
use crate::store::{Store, StoreError, budgets, retention};

mod bundling;

/// Rows claimed per step: small, so that a shutdown or a newly due row is not kept waiting.
const CLAIM_BATCH: i64 = 16;
/// Stored response bodies are cut to this many bytes.
const MAX_RESPONSE: usize = 2_000;
/// A rate-limit wait longer than this gives the row back instead of holding its lease.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Rows were claimed and attempted.
    Executed(usize),
    /// Nothing due for this channel.
    Idle,
}

/// A claimed row on its way to [`OutboxWorker::deliver`]: its message when it was already built
/// (while looking for rows to bundle), and whether the channel's rate-limit token is already
/// taken for it.
struct Claimed {
    d: Delivery,
    built: Option<Result<Message, SendOutcome>>,
    token: bool,
}

impl Claimed {
    fn plain(d: Delivery) -> Self {
        Self {
            d,
            built: None,
            token: false,
        }
    }
}

/// What one row sends.
enum Message {
    Incident(Box<Notification>, RemoteState),
    /// A row without an incident (see [`super::notice`]).
    Notice(Notice),
}

pub struct OutboxWorker {
    store: Store,
    cfg: Live<RoutingConfig>,
    channels: Live<Channels>,
    builder: NotificationBuilder,
    clock: SharedClock,
    limiter: Mutex<RateLimiter>,
    metrics: Arc<Metrics>,
}

impl OutboxWorker {
    pub fn new(
        store: Store,
        live: Live<RoutingConfig>,
        channels: Live<Channels>,
        builder: NotificationBuilder,
        clock: SharedClock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            cfg: live,
            channels,
            builder,
            clock,
            limiter: Mutex::new(RateLimiter::new()),
            metrics,
        }
    }

    /// Claims and attempts the due rows of `channel`.
    pub async fn step(&self, channel: &str) -> Result<Step, StoreError> {
        self.step_until(channel, &CancellationToken::new()).await
    }

    async fn step_until(
        &self,
        channel: &str,
        cancel: &CancellationToken,
    ) -> Result<Step, StoreError> {
        let now = self.clock.now_ms();
        let lease_ms = lease_ms(&self.cfg.load());
        // A channel that bundles claims as many rows as one bundle lists.
        let bundles = self
            .channels
            .load()
            .get(channel)
            .is_some_and(|c| c.bundler().is_some());
        let limit = if bundles {
            i64::try_from(MAX_MEMBERS).unwrap_or(CLAIM_BATCH)
        } else {
            CLAIM_BATCH
        };
        let rows = deliveries::claim_due(&self.store, channel, now, now + lease_ms, limit).await?;
        if rows.is_empty() {
            return Ok(Step::Idle);
        }
        let n = rows.len();
        let full = i64::try_from(n).unwrap_or(i64::MAX) >= limit;
        let rows = if bundles && !cancel.is_cancelled() {
            self.bundle_due(channel, rows, full).await?
        } else {
            rows.into_iter().map(Claimed::plain).collect()
        };
        let mut queue = rows.into_iter();
        while let Some(c) = queue.next() {
            if cancel.is_cancelled() {
                // Shutting down: give back what was not started.
                for d in std::iter::once(c.d).chain(queue.map(|c| c.d)) {
                    deliveries::release(&self.store, d.id, self.clock.now_ms()).await?;
                }
                break;
            }
            self.deliver(c).await?;
        }
        Ok(Step::Executed(n))
    }

    /// Runs every due row of every channel until none is left (tests and `send-test`).
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let mut any = false;
            for name in self
                .channels
                .load()
                .names()
                .map(str::to_string)
                .collect::<Vec<_>>()
            {
                if let Step::Executed(n) = self.step(&name).await? {
                    total += n;
                    any = true;
                }
            }
            if !any {
                return Ok(total);
            }
        }
    }

    fn limit_for(kind: ChannelKind) -> Option<Limit> {
        match kind {
            ChannelKind::Slack => Some(Limit::SLACK_CHANNEL),
            ChannelKind::Pagerduty => Some(Limit::PAGERDUTY_ROUTING_KEY),
            ChannelKind::Email | ChannelKind::Log | ChannelKind::Sentry => None,
        }
    }

    /// Waits on the injected clock for a token of the destination's bucket. `Err(wait)` when
    /// the wait is too long to hold the lease for, or when the clock does not advance by itself
    /// (a manual clock in tests): the row is then given back until the clock reaches the token.
    async fn acquire(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        loop {
            let now = self.clock.now_ms();
            let Err(wait) = self.take_token(key, limit, now).await else {
                return Ok(());
            };
            if wait > MAX_INLINE_WAIT || !self.clock.advances_by_itself() {
                return Err(wait);
            }
            sleep_on(&*self.clock, now.saturating_add(ceil_ms(wait))).await;
        }
    }

    /// A token of the destination's bucket if there is one now, else how long until there is.
    /// On a shared database the bucket is in the database, shared with the other replicas; a
    /// database that cannot be read sends nothing for a second rather than risk the limit.
    async fn take_token(&self, key: &str, limit: Limit, now: i64) -> Result<(), Duration> {
        if self.store.shared() {
            let margin = self.clock.advances_by_itself();
            let taken =
                budgets::try_take(&self.store, key, limit.capacity, limit.per, now, margin).await;
            return match taken {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::debug!(error = %e, key, "the shared send budget could not be read");
                    Err(Duration::from_secs(1))
                }
            };
        }
        match self.limiter.lock() {
            Ok(mut l) => l.try_acquire(key, limit, now),
            Err(_) => Ok(()),
        }
    }

    #[tracing::instrument(skip_all, fields(delivery = c.d.id.get(), incident = ?c.d.incident_id.map(IncidentId::get), channel = %c.d.channel, kind = %c.d.kind_word))]
    async fn deliver(&self, c: Claimed) -> Result<(), StoreError> {
        let Claimed { d, built, token } = c;
        let d = &d;
        let started_at = self.clock.now_ms();
        let channels = self.channels.load();
        let Some(channel) = channels.get(&d.channel) else {
            return self
                .finish(
                    d,
                    started_at,
                    0,
                    SendOutcome::Permanent {
                        status: None,
                        reason: format!("channel `{}` is no longer configured", d.channel),
                    },
                    None,
                )
                .await;
        };
        let built = match built {
            Some(built) => built,
            None => self.message_for(d).await?,
        };
        let message = match built {
            Ok(message) => message,
            Err(outcome) => return self.finish(d, started_at, 0, outcome, None).await,
        };
        let rate_key = channel.rate_key();
        if !token
            && let Some(limit) = Self::limit_for(channel.kind())
            && let Err(wait) = self.acquire(&rate_key, limit).await
        {
            let later = self.clock.now_ms().saturating_add(ceil_ms(wait));
            return deliveries::release(&self.store, d.id, later).await;
        }
        let timer = Instant::now();
        let outcome = self.send(&*channel, d, &message).await?;
        let took = timer.elapsed();
        self.metrics
            .delivery_duration(&d.channel, took.as_secs_f64());
        self.finish(
            d,
            started_at,
            i64::try_from(took.as_millis()).unwrap_or(i64::MAX),
            outcome,
            Some(&rate_key),
        )
        .await
    }

    /// Sends one row's message. A change reported of a member of a bundle card goes to that
    /// card (see [`super::bundle`]).
    async fn send(
        &self,
        channel: &dyn Channel,
        d: &Delivery,
        message: &Message,
    ) -> Result<SendOutcome, StoreError> {
        Ok(match message {
            Message::Incident(notification, remote) => {
                match self.member_card(channel, d, notification, remote).await? {
                    Some((bundler, card, members)) => {
                        let bundle = super::bundle::Bundle {
                            members: &members,
                            more: 0,
                            card: Some(&card),
                        };
                        bundler.report_member(bundle, notification).await
                    }
                    None => {
                        channel
                            .send(Outgoing {
                                notification,
                                remote,
                            })
                            .await
                    }
                }
            }
            Message::Notice(notice) => channel.announce(notice).await,
        })
    }

    /// The notification builder with `delivery.include_pii` as the configuration in force says,
    /// so that a reload changes what the next message shows.
    fn builder_now(&self) -> NotificationBuilder {
        NotificationBuilder {
            include_pii: self.cfg.load().delivery.include_pii,
            ..self.builder.clone()
        }
    }

    /// What row `d` sends, or the outcome of a row that cannot be sent (unknown kind, incident
    /// gone, unreadable notice detail).
    async fn message_for(&self, d: &Delivery) -> Result<Result<Message, SendOutcome>, StoreError> {
        let delivery = DeliveryRef {
            id: d.id,
            created_at: d.created_at,
        };
        let builder = self.builder_now();
        let kind = match &d.kind {
            Ok(DeliveryKind::Notification(kind)) => *kind,
            Ok(DeliveryKind::Notice(kind)) => {
                return Ok(match builder.notice(*kind, d.detail.as_deref(), delivery) {
                    Ok(notice) => Ok(Message::Notice(notice)),
                    Err(e) => Err(SendOutcome::Permanent {
                        status: None,
                        reason: e.to_string(),
                    }),
                });
            }
            // Logged when read; no later version's row is sent by guessing what it meant.
            Err(e) => {
                return Ok(Err(SendOutcome::Permanent {
                    status: None,
                    reason: e.to_string(),
                }));
            }
        };
        let built = match d.incident_id {
            Some(id) => {
                builder
                    .for_delivery(id, d.episode, kind, d.detail.as_deref(), &d.channel)
                    .await?
            }
            None => None,
        };
        let Some((mut notification, remote)) = built else {
            return Ok(Err(SendOutcome::Skipped {
                reason: "the incident no longer exists".into(),
            }));
        };
        notification.delivery = Some(delivery);
        Ok(Ok(Message::Incident(Box::new(notification), remote)))
    }

    async fn finish(
        &self,
        d: &Delivery,
        started_at: i64,
        duration_ms: i64,
        outcome: SendOutcome,
        rate_key: Option<&str>,
    ) -> Result<(), StoreError> {
        if let (
            SendOutcome::Retry {
                retry_after: Some(after),
                ..
            },
            Some(key),
        ) = (&outcome, rate_key)
            && self.store.shared()
        {
            budgets::pause(&self.store, key, self.clock.now_ms(), *after).await?;
        }
        let result = self.attempt_result(
            d,
            started_at,
            duration_ms,
            outcome,
            rate_key,
            fastrand::f64(),
        );
        deliveries::record_attempt(&self.store, d, &result).await?;
        self.log_attempt(d, &result);
        Ok(())
    }

    /// What becomes of row `d` after an attempt that ended in `outcome`; a `Retry-After`
    /// pauses the destination. `jitter` (0..1) spreads the retry (see [`RetryPolicy`]).
    fn attempt_result(
        &self,
        d: &Delivery,
        started_at: i64,
        duration_ms: i64,
        outcome: SendOutcome,
        rate_key: Option<&str>,
        jitter: f64,
    ) -> AttemptResult {
        let attempt = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
        let now = self.clock.now_ms();
        let (status_code, label, response, new_status, next_attempt_at, remote) = match outcome {
            SendOutcome::Delivered {
                status,
                response,
                remote,
            } => (
                status,
                AttemptOutcome::Delivered,
                response,
                DeliveryStatus::Delivered,
                now,
                remote,
            ),
            SendOutcome::Skipped { reason } => (
                None,
                AttemptOutcome::Skipped,
                reason,
                DeliveryStatus::Delivered,
                now,
                None,
            ),
            SendOutcome::Permanent { status, reason } => (
                status,
                AttemptOutcome::Permanent,
                reason,
                DeliveryStatus::Dead,
                now,
                None,
            ),
            SendOutcome::Retry {
                status,
                reason,
                retry_after,
            } => {
                // On a shared database `finish` paused the shared budget already.
                if let (Some(after), Some(key)) = (retry_after, rate_key)
                    && !self.store.shared()
                    && let Ok(mut l) = self.limiter.lock()
                {
                    l.pause(key, now, after);
                }
                // Read now rather than at start-up, so a reloaded schedule applies to the next
                // attempt of a delivery that is already failing.
                let retry = retry_policy(&self.cfg.load());
                match retry.next_delay(attempt, retry_after, jitter) {
                    Some(delay) => {
                        let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
                        (
                            status,
                            AttemptOutcome::Retry,
                            reason,
                            DeliveryStatus::Failed,
                            now + delay,
                            None,
                        )
                    }
                    None => (
                        status,
                        AttemptOutcome::Retry,
                        format!("{reason} (gave up after {attempt} attempts)"),
                        DeliveryStatus::Dead,
                        now,
                        None,
                    ),
                }
            }
        };
        AttemptResult {
            started_at,
            duration_ms,
            status_code: status_code.map(i64::from),
            outcome: label,
            response: truncate_body(&response, MAX_RESPONSE),
            new_status,
            next_attempt_at,
            remote,
        }
    }

    /// Metrics and the log line of a recorded attempt.
    fn log_attempt(&self, d: &Delivery, result: &AttemptResult) {
        let label = result.outcome;
        let status = result.status_code;
        let attempt = d.attempts + 1;
        self.metrics.delivery_attempt(&d.channel, label.as_str());
        match result.new_status {
            DeliveryStatus::Dead => {
                self.metrics.delivery_dead(&d.channel);
                tracing::error!(status = ?status, reason = %result.response, attempt, "delivery is dead: it will not be retried");
                crate::telemetry::report(
                    crate::telemetry::Failure::DeadDelivery,
                    &format!("delivery to {} is dead: {}", d.channel, result.response),
                    &[("channel", d.channel.as_str())],
                );
            }
            DeliveryStatus::Failed => {
                let retry_in_ms = result.next_attempt_at - self.clock.now_ms();
                tracing::warn!(status = ?status, reason = %result.response, attempt, retry_in_ms, "delivery failed; will retry")
            }
            DeliveryStatus::Delivered | DeliveryStatus::Pending | DeliveryStatus::Sending => {
                tracing::info!(outcome = label.as_str(), attempt, "delivered")
            }
        }
    }

    /// Enqueues live event-count refreshes of Slack messages (at most one per incident per
    /// `slack_update_interval`).
    pub async fn enqueue_count_updates(&self) -> Result<usize, StoreError> {
        let cfg = self.cfg.load();
        let interval =
            i64::try_from(cfg.delivery.slack_update_interval.as_millis()).unwrap_or(30_000);
        deliveries::enqueue_count_updates(
            &self.store,
            self.clock.now_ms(),
            interval,
            move |p: &Policy| {
                let mut out: Vec<String> = p
                    .notify
                    .iter()
                    .chain(p.escalate_to.iter())
                    .filter(|c| {
                        cfg.channels
                            .get(*c)
                            .is_some_and(|c| c.kind == ChannelKind::Slack)
                    })
                    .cloned()
                    .collect();
                out.sort();
                out.dedup();
                out
            },
        )
        .await
    }

    /// One loop per channel plus a maintenance loop; all stop on `cancel` after the send in
    /// flight finishes. A channel added by a reload gets its loop from the maintenance loop.
    pub fn spawn(self: Arc<Self>, wake: Signal, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
        let mut handles = Vec::new();
        let names: HashSet<String> = self.channels.load().names().map(str::to_string).collect();
        for name in &names {
            handles.push(tokio::spawn(self.clone().channel_loop(
                name.clone(),
                wake.subscribe(),
                cancel.clone(),
            )));
        }
        let me = self.clone();
        handles.push(tokio::spawn(async move {
            me.maintain(wake, cancel, names).await
        }));
        handles
    }

    async fn channel_loop(
        self: Arc<Self>,
        name: String,
        mut waiter: Waiter,
        cancel: CancellationToken,
    ) {
        while !cancel.is_cancelled() {
            match self.step_until(&name, &cancel).await {
                Ok(Step::Executed(_)) => continue,
                Ok(Step::Idle) => {
                    // On a read error look again soon, not in a minute.
                    let next = match deliveries::next_due(self.store.reader(), &name).await {
                        Ok(next) => next,
                        Err(_) => Some(self.clock.now_ms().saturating_add(1000)),
                    };
                    tokio::select! {
                        _ = sleep_until(&*self.clock, next, &mut waiter) => {}
                        _ = cancel.cancelled() => {}
                    }
                }
                Err(e) => {
                    // Logged once per outage by the health tracker; retried every second.
                    tracing::debug!(channel = %name, error = %e, "outbox step failed; retrying in 1 s");
                    self.store.health.failed("outbox", &e, self.clock.now_ms());
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = cancel.cancelled() => {}
                    }
                }
            }
        }
    }

    async fn maintain(
        self: Arc<Self>,
        wake: Signal,
        cancel: CancellationToken,
        mut running: HashSet<String>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_purge: Option<i64> = None;
        let mut added = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => {
                    while added.join_next().await.is_some() {}
                    return;
                }
            }
            // Channels added by a reload. A removed channel's loop stays: its queued rows are
            // given up on ("no longer configured") rather than left pending.
            for name in self.channels.load().names() {
                if running.insert(name.to_string()) {
                    tracing::info!(
                        channel = name,
                        "channel added by a reload: delivering to it"
                    );
                    added.spawn(self.clone().channel_loop(
                        name.to_string(),
                        wake.subscribe(),
                        cancel.clone(),
                    ));
                }
            }
            match self.enqueue_count_updates().await {
                Ok(0) => {}
                Ok(_) => wake.notify(),
                Err(e) => tracing::warn!(error = %e, "count updates failed"),
            }
            // Waves of intake (a storm) change the tables as much as escalations do.
            if let Err(e) = self.store.refresh_statistics().await {
                tracing::debug!(error = %e, "refreshing the statistics failed");
            }
            let now = self.clock.now_ms();
            if last_purge.is_none_or(|t| now - t > 3_600_000) {
                let keep = i64::try_from(self.cfg.load().raw_payload_retention.as_millis())
                    .unwrap_or(i64::MAX / 2);
                match retention::purge_raw_payloads(&self.store, now - keep).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(purged = n, "dropped raw payloads past retention")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging raw payloads failed"),
                }
                match retention::purge_bundles(&self.store, now - keep).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(purged = n, "dropped bundle cards past retention")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging bundle cards failed"),
                }
                last_purge = Some(now);
            }
        }
    }
}

/// The retry schedule and attempt limit of the `delivery:` section in force.
fn retry_policy(cfg: &RoutingConfig) -> RetryPolicy {
    RetryPolicy {
        schedule: cfg.delivery.retry_schedule.clone(),
        max_attempts: cfg.delivery.max_attempts,
        jitter: 0.2,
    }
}

/// How long a claimed row is safe from other workers: twice the send timeout (plus a margin),
/// so a crash leaves it to be claimed again after that. From the configuration in force when
/// the row is claimed; a row already claimed keeps the lease it was given.
fn lease_ms(cfg: &RoutingConfig) -> i64 {
    i64::try_from(cfg.delivery.send_timeout.as_millis() * 2).unwrap_or(60_000) + 5_000
}

/// `d` in whole milliseconds, rounded up so that waiting that long on the clock is enough.
fn ceil_ms(d: Duration) -> i64 {
    i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX / 2)
}
