//! Sends each digest period once: claim in the database, then send, then record the outcome.
//!
//! Which period is due comes from the schedule alone: at any instant the due period of a kind is
//! the one ending at the latest fire at or before now. The loop and the start-up catch-up are the
//! same call ([`DigestRunner::run_due`]), so a period missed while the service was down is sent
//! once at start, as one digest: three missed daily digests become one mail covering the three
//! days (see [`DigestRunner::catch_up`]), not three mails of stale news and not one that drops
//! two days. Whether a period was already sent is decided by the
//! claim in `digests` (see `store::digests`), never by in-memory state, so a restart or a second
//! instance on the same database sends nothing twice.
//!
//! Delivery is at-least-once: a crash after the SMTP server accepted a digest but before
//! `sent_at` is written leaves a claim whose lease expires, and the digest is sent again.
//!
//! All time comes from the injected clock; tests step through days with a manual clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::render::DigestTemplates;
use super::report::{DailyDigest, Links, Period, RenderedMail, WeeklySummary};
use super::schedule::DigestSchedule;
use crate::clock::{SharedClock, ms_to_datetime, sleep_until};
use crate::config::{DigestConfig, Live, RoutingConfig};
use crate::notify::registry::Channels;
use crate::notify::{Mailer, SendOutcome, truncate_body};
use crate::signal::Signal;
use crate::store::digests::{self, ClaimResult, ClaimRules, DigestRecord, PeriodKey};
use crate::store::{Store, StoreError};

/// A claim with no recorded outcome is presumed dead (crashed holder) after this long.
pub(crate) const LEASE: Duration = Duration::from_secs(10 * 60);

/// The longest one send may take. Well under [`LEASE`], so a live holder is never mistaken for
/// a dead one and its period sent a second time by somebody else.
pub(crate) const SEND_BUDGET: Duration = Duration::from_secs(4 * 60);

/// Claims per scheduled period (first attempt, retries, crash recoveries), so that a mail
/// server that keeps failing, or a digest that keeps crashing the process, is not retried
/// without end.
pub(crate) const MAX_ATTEMPTS: i64 = 5;

/// Wait before retry n (1-based) of a failed send; the last value repeats.
pub(crate) const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
];

/// How many missed periods a catch-up digest reaches back (a week of dailies).
const MAX_CATCH_UP_PERIODS: i32 = 7;

/// Bytes of the mail server's answer kept on the digest row.
const MAX_RESPONSE: usize = 1000;

/// After a database error the loop tries again this much later.
const ERROR_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestKind {
    /// Medium incidents seen in the period, on `digest.schedule`.
    Daily,
    /// Ops review figures, on `digest.weekly_schedule`.
    Weekly,
}

impl DigestKind {
    pub const ALL: [DigestKind; 2] = [DigestKind::Daily, DigestKind::Weekly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }

    /// The `digests.kind` value. Sends by hand are recorded under their own kind so that they
    /// can never occupy the key (kind, period_end, recipient) of a scheduled period: a manual
    /// send at exactly a fire time would otherwise block that period's real digest.
    fn record_kind(self, manual: bool) -> &'static str {
        match (self, manual) {
            (Self::Daily, false) => "daily",
            (Self::Weekly, false) => "weekly",
            (Self::Daily, true) => "daily:manual",
            (Self::Weekly, true) => "weekly:manual",
        }
    }
}

impl fmt::Display for DigestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one period for one recipient channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestOutcome {
    pub kind: DigestKind,
    /// Sent by hand (`digest --send-now`), for the still-open period.
    pub manual: bool,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Channel name from `digest.to`.
    pub recipient: String,
    pub status: DigestStatus,
    /// Incidents in the digest (daily: medium incidents; weekly: incidents opened).
    pub incidents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStatus {
    /// This call claimed the period and the mail server accepted the digest.
    Sent { attempt: i64 },
    /// This call claimed the period, found nothing to report, and `send_when_empty` is false:
    /// the period is settled without a mail.
    SettledEmpty,
    /// Somebody else holds or settled the claim; nothing was sent by this call.
    Skipped(SkipReason),
    /// This call claimed the period and the send failed. `retry_at` None: no automatic retry.
    Failed {
        reason: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Already settled (sent, or settled empty) at `at`.
    AlreadySent { at: DateTime<Utc> },
    /// Claimed by a run that is (presumably) still sending; reclaimable from `lease_until`.
    InFlight { lease_until: DateTime<Utc> },
    /// An earlier send failed; it will be retried from `at`.
    RetryPending { at: DateTime<Utc>, error: String },
    /// Failed and out of attempts (or failed permanently): `digest --send-now` remains.
    GaveUp { error: String, attempts: i64 },
}

impl DigestOutcome {
    /// When this period wants another look (a retry, or a lease to expire).
    fn revisit_at(&self) -> Option<i64> {
        if self.manual {
            return None;
        }
        let at = match &self.status {
            DigestStatus::Failed {
                retry_at: Some(at), ..
            } => at,
            DigestStatus::Skipped(SkipReason::InFlight { lease_until }) => lease_until,
            DigestStatus::Skipped(SkipReason::RetryPending { at, .. }) => at,
            _ => return None,
        };
        Some(at.timestamp_millis())
    }
}

impl fmt::Display for DigestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        write!(
            f,
            "{} {}digest {} .. {} to {}: ",
            self.kind,
            if self.manual { "manual " } else { "" },
            when(self.period_start),
            when(self.period_end),
            self.recipient
        )?;
        match &self.status {
            DigestStatus::Sent { attempt } => {
                write!(f, "sent ({} incidents, attempt {attempt})", self.incidents)
            }
            DigestStatus::SettledEmpty => {
                write!(f, "nothing to report, not sent (send_when_empty: false)")
            }
            DigestStatus::Skipped(SkipReason::AlreadySent { at }) => {
                write!(f, "already sent at {}", when(*at))
            }
            DigestStatus::Skipped(SkipReason::InFlight { lease_until }) => write!(
                f,
                "being sent by another run (lease until {})",
                when(*lease_until)
            ),
            DigestStatus::Skipped(SkipReason::RetryPending { at, error }) => {
                write!(f, "failed earlier ({error}), retry at {}", when(*at))
            }
            DigestStatus::Skipped(SkipReason::GaveUp { error, attempts }) => {
                write!(f, "gave up after {attempts} attempt(s): {error}")
            }
            DigestStatus::Failed {
                reason,
                retry_at: Some(at),
            } => write!(f, "failed ({reason}), retry at {}", when(*at)),
            DigestStatus::Failed {
                reason,
                retry_at: None,
            } => write!(f, "failed ({reason}), not retried"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("routing file has no `digest:` section")]
    NotConfigured,
    #[error("routing file has no `digest.weekly_schedule`")]
    NoWeeklySchedule,
    #[error("digest: {0}")]
    Store(#[from] StoreError),
}

/// A digest's content, built once per period and shared by its recipients.
struct Content {
    mail: RenderedMail,
    incidents: i64,
    empty: bool,
}

/// One period for one recipient: what this call sends.
struct Target<'a> {
    kind: DigestKind,
    manual: bool,
    period: Period,
    recipient: &'a str,
}

impl Target<'_> {
    fn key(&self) -> PeriodKey<'_> {
        PeriodKey {
            kind: self.kind.record_kind(self.manual),
            period_start: self.period.start_ms(),
            period_end: self.period.end_ms(),
            recipient: self.recipient,
        }
    }

    fn outcome(&self, status: DigestStatus, incidents: i64) -> DigestOutcome {
        DigestOutcome {
            kind: self.kind,
            manual: self.manual,
            period_start: self.period.start,
            period_end: self.period.end,
            recipient: self.recipient.to_string(),
            status,
            incidents,
        }
    }
}

/// A claim this call holds: `claimed_at` fences the failure record, `attempt` counts retries.
#[derive(Debug, Clone, Copy)]
struct Claim {
    claimed_at: i64,
    attempt: i64,
}

/// What the mail channel said.
enum Delivery {
    Accepted { response: String },
    Failed { reason: String, retryable: bool },
}

/// Sends one digest mail within [`SEND_BUDGET`].
async fn deliver(mailer: &dyn Mailer, mail: &RenderedMail) -> Delivery {
    let send = mailer.send_mail(&mail.subject, &mail.text, &mail.html);
    match tokio::time::timeout(SEND_BUDGET, send).await {
        Ok(SendOutcome::Delivered { response, .. })
        | Ok(SendOutcome::Skipped { reason: response }) => Delivery::Accepted {
            // The log stand-in "delivers" by logging the whole mail; the row keeps a note, not
            // a second copy of the digest.
            response: if mailer.is_real() {
                truncate_body(&response, MAX_RESPONSE)
            } else {
                "logged only: the channel has no SMTP settings (set SMTP_URL)".to_string()
            },
        },
        Ok(SendOutcome::Retry { reason, .. }) => Delivery::Failed {
            reason,
            retryable: true,
        },
        Ok(SendOutcome::Permanent { reason, .. }) => Delivery::Failed {
            reason,
            retryable: false,
        },
        Err(_) => Delivery::Failed {
            reason: format!("no result from the mail channel within {SEND_BUDGET:?}"),
            // The server may have accepted it: a retry can duplicate (at-least-once).
            retryable: true,
        },
    }
}

pub struct DigestRunner {
    store: Store,
    /// Read per run: a reload's digest section is used from the next run on.
    cfg: Live<RoutingConfig>,
    channels: Live<Channels>,
    clock: SharedClock,
    public_url: Arc<str>,
    /// `sleep_until` wants a wake-up signal besides the clock; nothing else needs to interrupt
    /// the digest loop (the schedule is fixed for the life of the config).
    wake: Signal,
}

impl DigestRunner {
    pub fn new(
        store: Store,
        cfg: impl Into<Live<RoutingConfig>>,
        channels: impl Into<Live<Channels>>,
        clock: SharedClock,
        public_url: Arc<str>,
    ) -> Self {
        Self {
            store,
            cfg: cfg.into(),
            channels: channels.into(),
            clock,
            public_url,
            wake: Signal::default(),
        }
    }

    /// Sends the latest due period of each kind if not yet sent (start-up catch-up and each
    /// scheduled tick). Both kinds are attempted even if one fails; the first error is returned.
    pub async fn run_due(&self) -> Result<Vec<DigestOutcome>, DigestError> {
        let routing = self.cfg.load();
        let Some(cfg) = routing.digest.as_ref() else {
            return Ok(Vec::new());
        };
        let now = self.clock.now();
        let mut outcomes = Vec::new();
        let mut first_error = None;
        for kind in DigestKind::ALL {
            let result = async {
                let Some(schedule) = schedule_of(cfg, kind) else {
                    return Ok(Vec::new());
                };
                let Some(fire) = schedule.latest_fire_at_or_before(now) else {
                    return Ok(Vec::new());
                };
                let (start, end) = schedule.period_ending_at(fire);
                let period = Period {
                    start,
                    end,
                    tz: schedule.timezone(),
                };
                self.send_period(cfg, kind, false, period).await
            }
            .await;
            match result {
                Ok(o) => outcomes.extend(o),
                Err(e) => {
                    tracing::error!(kind = %kind, error = %e, "digest run failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }

    /// `paiid-alerts digest --send-now [--weekly]`: the current, still-open period so far
    /// (`[latest fire, now)`), by hand. Recorded under its own kind (`daily:manual`), so it
    /// never blocks the scheduled send of that period, and never retried automatically.
    pub async fn send_now(&self, kind: DigestKind) -> Result<Vec<DigestOutcome>, DigestError> {
        let routing = self.cfg.load();
        let cfg = routing.digest.as_ref().ok_or(DigestError::NotConfigured)?;
        let schedule = schedule_of(cfg, kind).ok_or(DigestError::NoWeeklySchedule)?;
        let now = self.clock.now();
        let start = schedule.latest_fire_at_or_before(now).unwrap_or(now);
        let period = Period {
            start,
            end: now,
            tz: schedule.timezone(),
        };
        self.send_period(cfg, kind, true, period).await
    }

    /// Loop: run_due at start, then sleep until the next fire (either kind), a pending retry or
    /// an expiring lease, on the injected clock, until `cancel`. A send in progress is finished
    /// (at most [`SEND_BUDGET`]) before cancellation is noticed, so its outcome gets recorded.
    pub fn spawn(self: Arc<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(cancel).await })
    }

    async fn run(&self, cancel: CancellationToken) {
        if self.cfg.load().digest.is_none() {
            // Not the end of the loop: a reload may add one (seen within a minute).
            tracing::info!("no `digest:` section in the routing file: no digests are scheduled");
        }
        // None = nothing will ever be due (a schedule that stopped firing): idle until cancel.
        let mut due: Option<i64> = Some(i64::MIN);
        let mut wake = self.wake.subscribe();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let now = self.clock.now_ms();
            if due.is_some_and(|d| now >= d) {
                due = match self.run_due().await {
                    // From the `now` before the run, not after it: if the clock passed a
                    // fire while the run was busy, that fire is then due at once instead of
                    // being skipped over.
                    // Nothing scheduled: look again in a minute, for a reloaded schedule.
                    Ok(outcomes) => self
                        .next_wake(now, &outcomes)
                        .or(Some(now.saturating_add(60_000))),
                    Err(_) => {
                        // Already logged per kind; the claims make a retry safe.
                        Some(now.saturating_add(duration_ms(ERROR_BACKOFF)))
                    }
                };
                if let Some(at) = due {
                    tracing::debug!(next = %ms_to_datetime(at), "digest loop sleeping");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                // Wakes at the deadline, on a manual clock's jump, or after a capped real-time
                // interval; the check above decides whether anything is due.
                _ = sleep_until(&*self.clock, due, &mut wake) => {}
            }
        }
        tracing::debug!("digest loop stopped");
    }

    /// The earliest of: the next fire of either kind, a pending retry, an expiring lease.
    fn next_wake(&self, now: i64, outcomes: &[DigestOutcome]) -> Option<i64> {
        let routing = self.cfg.load();
        let cfg = routing.digest.as_ref()?;
        let now_dt = ms_to_datetime(now);
        let fires = DigestKind::ALL.into_iter().filter_map(|kind| {
            let schedule = schedule_of(cfg, kind)?;
            schedule
                .next_fire_after(now_dt)
                .map(|t| t.timestamp_millis())
        });
        // A revisit in the past would spin the loop; at most once a second is plenty.
        let revisits = outcomes
            .iter()
            .filter_map(DigestOutcome::revisit_at)
            .map(|t| t.max(now.saturating_add(1000)));
        fires.chain(revisits).min()
    }

    /// Periods missed while the service was down across several fires, or given up on while
    /// the mail server stayed down, are reported in the next digest instead of being lost: its
    /// period starts where the last one settled for this recipient ended (at most
    /// [`MAX_CATCH_UP_PERIODS`] periods back; a new database starts with the plain period).
    async fn catch_up(
        &self,
        kind: DigestKind,
        recipient: &str,
        period: Period,
    ) -> Result<Period, StoreError> {
        let Some(settled_end) =
            digests::last_settled_end(self.store.reader(), kind.record_kind(false), recipient)
                .await?
        else {
            return Ok(period);
        };
        let settled_end = ms_to_datetime(settled_end);
        if settled_end >= period.start {
            return Ok(period);
        }
        let span = period.end - period.start;
        let earliest = period.start - span * MAX_CATCH_UP_PERIODS;
        Ok(Period {
            start: settled_end.max(earliest),
            ..period
        })
    }

    /// `period` to each recipient. A scheduled period is widened per recipient back to the end
    /// of the last one they were sent (see [`Self::catch_up`]); a send by hand covers exactly
    /// the open period. Content is built once per distinct period.
    async fn send_period(
        &self,
        cfg: &DigestConfig,
        kind: DigestKind,
        manual: bool,
        period: Period,
    ) -> Result<Vec<DigestOutcome>, DigestError> {
        let mut contents: Vec<(i64, Option<Content>)> = Vec::new();
        let mut outcomes = Vec::with_capacity(cfg.to.len());
        for recipient in &cfg.to {
            let period = if manual {
                period
            } else {
                self.catch_up(kind, recipient, period).await?
            };
            let slot = match contents.iter().position(|(s, _)| *s == period.start_ms()) {
                Some(i) => i,
                None => {
                    contents.push((period.start_ms(), None));
                    contents.len() - 1
                }
            };
            let outcome = self
                .send_one(cfg, kind, manual, period, recipient, &mut contents[slot].1)
                .await?;
            log_outcome(&outcome);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// One period to one recipient, in steps: claim the period, build (or reuse) the content,
    /// settle an empty period without a mail, or send and record the outcome on the claim.
    #[tracing::instrument(skip_all, fields(kind = %kind, manual, channel = %recipient, period_end = %period.end))]
    async fn send_one(
        &self,
        cfg: &DigestConfig,
        kind: DigestKind,
        manual: bool,
        period: Period,
        recipient: &str,
        content: &mut Option<Content>,
    ) -> Result<DigestOutcome, DigestError> {
        let send = Target {
            kind,
            manual,
            period,
            recipient,
        };
        let Some(mailer) = self.channels.load().mailer(recipient) else {
            // Config validation only lets email and log channels into `digest.to`, and the
            // registry builds a mailer for both; this means config and channels disagree.
            return Ok(send.outcome(
                DigestStatus::Failed {
                    reason: format!("no email channel named `{recipient}`"),
                    retry_at: None,
                },
                0,
            ));
        };
        let key = send.key();
        let claim = match self.claim(&send, &key).await? {
            Ok(claim) => claim,
            Err(held) => return Ok(held),
        };
        // The claim is committed; from here every path records an outcome on it (or leaves
        // it to expire, if the process dies).
        let built = match content {
            Some(c) => c,
            None => content.insert(self.build_claimed(cfg, &send, &key, claim).await?),
        };
        // `send_when_empty` applies to both kinds: an empty weekly summary (nothing opened,
        // escalated or seen all week) is as skippable as an empty daily digest.
        if built.empty && !cfg.send_when_empty {
            return self.settle_empty(&send, &key).await;
        }
        match deliver(mailer.as_ref(), &built.mail).await {
            Delivery::Accepted { response } => {
                self.record_sent(&send, &key, claim, built.incidents, &response)
                    .await
            }
            Delivery::Failed { reason, retryable } => {
                self.record_failed(&send, &key, claim, built.incidents, reason, retryable)
                    .await
            }
        }
    }

    /// Claims the period for this run: `Err` is the outcome when somebody else holds it.
    async fn claim(
        &self,
        send: &Target<'_>,
        key: &PeriodKey<'_>,
    ) -> Result<Result<Claim, DigestOutcome>, DigestError> {
        let rules = ClaimRules {
            now: self.clock.now_ms(),
            lease_ms: duration_ms(LEASE),
            // A send by hand is one attempt; the person can run it again.
            max_attempts: if send.manual { 1 } else { MAX_ATTEMPTS },
        };
        Ok(match digests::claim(&self.store, key, rules).await? {
            ClaimResult::Claimed {
                claimed_at,
                attempt,
            } => Ok(Claim {
                claimed_at,
                attempt,
            }),
            ClaimResult::Held(row) => Err(send.outcome(
                DigestStatus::Skipped(skip_reason(&row, rules)),
                row.incidents,
            )),
        })
    }

    /// The content of a claimed period; a failure is recorded on the claim (for a retry).
    async fn build_claimed(
        &self,
        cfg: &DigestConfig,
        send: &Target<'_>,
        key: &PeriodKey<'_>,
        claim: Claim,
    ) -> Result<Content, DigestError> {
        match self.build(cfg, send.kind, send.manual, send.period).await {
            Ok(c) => Ok(c),
            Err(e) => {
                let retry_at = self.retry_at(send.manual, claim.attempt);
                let reason = format!("building the digest: {e}");
                digests::mark_failed(&self.store, key, claim.claimed_at, &reason, retry_at, 0)
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Nothing to report and `send_when_empty: false`: the period is settled without a mail.
    async fn settle_empty(
        &self,
        send: &Target<'_>,
        key: &PeriodKey<'_>,
    ) -> Result<DigestOutcome, DigestError> {
        digests::mark_sent(
            &self.store,
            key,
            self.clock.now_ms(),
            0,
            "not sent: nothing to report and send_when_empty is false",
        )
        .await?;
        Ok(send.outcome(DigestStatus::SettledEmpty, 0))
    }

    /// The mail is out: records it, retrying a passing database error, since losing this
    /// record would send the digest again once the lease expires.
    async fn record_sent(
        &self,
        send: &Target<'_>,
        key: &PeriodKey<'_>,
        claim: Claim,
        incidents: i64,
        response: &str,
    ) -> Result<DigestOutcome, DigestError> {
        let finished = self.clock.now_ms();
        let mut tries = 0;
        let recorded = loop {
            match digests::mark_sent(&self.store, key, finished, incidents, response).await {
                Ok(recorded) => break recorded,
                Err(e) if tries < 4 => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "recording a sent digest failed; trying again");
                    tokio::time::sleep(Duration::from_millis(250 * tries)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if !recorded {
            // Our lease ran out mid-send and another run re-claimed and sent it too.
            tracing::warn!(
                kind = %send.kind,
                recipient = send.recipient,
                period_end = %send.period.end,
                "digest was also sent by another run after this one's lease expired (duplicate)"
            );
        }
        Ok(send.outcome(
            DigestStatus::Sent {
                attempt: claim.attempt,
            },
            incidents,
        ))
    }

    /// The send failed: records why and, if it may be retried, when.
    async fn record_failed(
        &self,
        send: &Target<'_>,
        key: &PeriodKey<'_>,
        claim: Claim,
        incidents: i64,
        reason: String,
        retryable: bool,
    ) -> Result<DigestOutcome, DigestError> {
        let retry_at = if retryable {
            self.retry_at(send.manual, claim.attempt)
        } else {
            None
        };
        let recorded = digests::mark_failed(
            &self.store,
            key,
            claim.claimed_at,
            &reason,
            retry_at,
            incidents,
        )
        .await?;
        if !recorded {
            tracing::warn!(
                kind = %send.kind,
                recipient = send.recipient,
                "digest failure not recorded: another run took over the claim"
            );
        }
        Ok(send.outcome(
            DigestStatus::Failed {
                reason,
                retry_at: retry_at.map(ms_to_datetime),
            },
            incidents,
        ))
    }

    /// When a failed attempt may be retried: never for sends by hand or the last attempt.
    fn retry_at(&self, manual: bool, attempt: i64) -> Option<i64> {
        if manual || attempt >= MAX_ATTEMPTS {
            return None;
        }
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0);
        let delay = RETRY_DELAYS
            .get(index)
            .or(RETRY_DELAYS.last())
            .copied()
            .unwrap_or(LEASE);
        Some(self.clock.now_ms().saturating_add(duration_ms(delay)))
    }

    async fn build(
        &self,
        cfg: &DigestConfig,
        kind: DigestKind,
        manual: bool,
        period: Period,
    ) -> Result<Content, StoreError> {
        let links = Links {
            public_url: &self.public_url,
        };
        // Compiled with the routing file; the wrapper adds the rendering rules.
        let templates = DigestTemplates::from(self.cfg.load().digest_templates.clone());
        Ok(match kind {
            DigestKind::Daily => {
                let d = DailyDigest::load(&self.store, period, manual).await?;
                Content {
                    mail: d.render(&templates, links, &cfg.empty_note),
                    incidents: i64::try_from(d.incidents.len()).unwrap_or(i64::MAX),
                    empty: d.is_empty(),
                }
            }
            DigestKind::Weekly => {
                let w = WeeklySummary::load(&self.store, period, manual).await?;
                Content {
                    mail: w.render(&templates, links),
                    incidents: w.totals().opened,
                    empty: w.is_empty(),
                }
            }
        })
    }
}

/// The schedule of `kind`, parsed when the routing file loaded.
fn schedule_of(cfg: &DigestConfig, kind: DigestKind) -> Option<&DigestSchedule> {
    match kind {
        DigestKind::Daily => Some(&cfg.schedule),
        DigestKind::Weekly => cfg.weekly_schedule.as_ref(),
    }
}

fn skip_reason(row: &DigestRecord, rules: ClaimRules) -> SkipReason {
    if let Some(at) = row.sent_at {
        return SkipReason::AlreadySent {
            at: ms_to_datetime(at),
        };
    }
    let out_of_attempts = row.attempts >= rules.max_attempts;
    match (&row.error, row.retry_at) {
        (Some(error), Some(at)) if !out_of_attempts => SkipReason::RetryPending {
            at: ms_to_datetime(at),
            error: error.clone(),
        },
        (Some(error), _) => SkipReason::GaveUp {
            error: error.clone(),
            attempts: row.attempts,
        },
        (None, _) if out_of_attempts && row.claimed_at <= rules.now - rules.lease_ms => {
            SkipReason::GaveUp {
                error: "the sending process vanished (crash?) on every attempt".to_string(),
                attempts: row.attempts,
            }
        }
        (None, _) => SkipReason::InFlight {
            lease_until: ms_to_datetime(row.claimed_at.saturating_add(rules.lease_ms)),
        },
    }
}

fn log_outcome(o: &DigestOutcome) {
    let (kind, recipient, incidents) = (o.kind.as_str(), o.recipient.as_str(), o.incidents);
    let (start, end) = (o.period_start, o.period_end);
    match &o.status {
        DigestStatus::Sent { .. } | DigestStatus::SettledEmpty => tracing::info!(
            kind, manual = o.manual, recipient, %start, %end, incidents, "{o}"
        ),
        DigestStatus::Skipped(SkipReason::GaveUp { .. }) | DigestStatus::Failed { .. } => {
            tracing::error!(kind, manual = o.manual, recipient, %start, %end, "{o}")
        }
        DigestStatus::Skipped(_) => {
            tracing::debug!(kind, manual = o.manual, recipient, %start, %end, "{o}")
        }
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
