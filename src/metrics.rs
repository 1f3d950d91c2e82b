//! Prometheus metrics: one explicit `prometheus-client` registry per application (no global
//! recorder, so tests can read it), exposed at `/metrics` in the Prometheus text format.
//!
//! Three kinds of source end up in the one exposition:
//! - in-process counters and histograms, updated where things happen (intake, outbox,
//!   escalation) through the typed methods below;
//! - the database gauges (`store::gauges::gauges`), read at scrape time and written into their
//!   families by [`Metrics::render`], which first clears label sets that no longer exist;
//! - the storage write health (`store::health`) and the count of unreadable rows
//!   (`store::CorruptRows`), read at scrape time by collectors.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::CorruptRows;
use crate::store::gauges::Gauges;
use crate::store::health::WriteHealth;

/// The `Content-Type` of what [`Metrics::render`] returns (Prometheus text format 0.0.4).
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Escalations fire on a timer that is woken at the due time: lateness is normally well under a
/// second, and minutes to hours after downtime (fired on start-up).
const LATENESS_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];

/// One HTTP or SMTP exchange, bounded by `delivery.send_timeout` (10 s by default).
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelOutcomeLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateSeverityLabels {
    state: String,
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelStatusLabels {
    channel: String,
    status: String,
}

/// The one label set of an unlabelled database gauge. A family rather than a bare gauge so that
/// a scrape the database does not answer shows no value instead of the previous one.
type NoLabels = [(&'static str, &'static str); 0];

type SecondsGauge = Gauge<f64, AtomicU64>;

type DurationFamily = Family<ChannelLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The families filled from the database at scrape time.
#[derive(Default)]
struct DbGauges {
    open_incidents: Family<StateSeverityLabels, Gauge>,
    outbox: Family<ChannelStatusLabels, Gauge>,
    outbox_lag: Family<NoLabels, SecondsGauge>,
    escalations_pending: Family<NoLabels, Gauge>,
    escalation_overdue: Family<NoLabels, SecondsGauge>,
}

impl DbGauges {
    fn register(&self, r: &mut Registry) {
        r.register(
            "paiid_incidents_open",
            "Incidents not resolved, by state and severity",
            self.open_incidents.clone(),
        );
        r.register(
            "paiid_outbox_deliveries",
            "Deliveries not (yet) delivered, by channel and status",
            self.outbox.clone(),
        );
        r.register(
            "paiid_outbox_lag_seconds",
            "How long the oldest due delivery has waited (0 when the outbox is keeping up)",
            self.outbox_lag.clone(),
        );
        r.register(
            "paiid_escalations_pending",
            "Incidents with an escalation timer set",
            self.escalations_pending.clone(),
        );
        r.register(
            "paiid_escalation_overdue_seconds",
            "How far past its due time the most overdue escalation is (above a few seconds: the \
             scheduler is stuck)",
            self.escalation_overdue.clone(),
        );
    }

    /// Replaces every value with `g`'s; with `None` (database unavailable) the families are left
    /// empty, so the scrape shows no stale value.
    fn set(&self, g: Option<&Gauges>) {
        self.open_incidents.clear();
        self.outbox.clear();
        self.outbox_lag.clear();
        self.escalations_pending.clear();
        self.escalation_overdue.clear();
        let Some(g) = g else { return };
        for (state, severity, n) in &g.open_incidents {
            let labels = StateSeverityLabels {
                state: state.clone(),
                severity: severity.clone(),
            };
            self.open_incidents.get_or_create(&labels).set(*n);
        }
        for (channel, status, n) in &g.deliveries {
            let labels = ChannelStatusLabels {
                channel: channel.clone(),
                status: status.clone(),
            };
            self.outbox.get_or_create(&labels).set(*n);
        }
        self.outbox_lag
            .get_or_create(&[])
            .set(seconds(g.outbox_lag_ms));
        self.escalations_pending
            .get_or_create(&[])
            .set(g.escalations_pending);
        self.escalation_overdue
            .get_or_create(&[])
            .set(seconds(g.escalation_overdue_ms));
    }
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Whether the database takes writes, from the write paths and the probe (`store::health`).
#[derive(Debug)]
struct WriteHealthCollector(WriteHealth);

impl Collector for WriteHealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let writable = ConstGauge::new(i64::from(self.0.failing().is_none()));
        writable.encode(encoder.encode_descriptor(
            "paiid_storage_writable",
            "1 while the database takes writes, 0 while writes fail (readiness fails with it).",
            None,
            writable.metric_type(),
        )?)?;
        let failures = ConstCounter::new(self.0.failures_total());
        failures.encode(encoder.encode_descriptor(
            "paiid_storage_write_failures",
            "Writes that failed (intake batches, workers, probes).",
            None,
            failures.metric_type(),
        )?)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableFieldLabels {
    table: &'static str,
    field: &'static str,
}

/// Stored rows the store's reads found unreadable (`store::CorruptRows`), by table and field.
#[derive(Debug)]
struct CorruptRowsCollector(CorruptRows);

impl Collector for CorruptRowsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self.0.totals();
        // The label values are not known before a row is found: no series until then.
        if totals.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "paiid_store_corrupt_rows",
            "Stored rows found unreadable (a value that does not decode), once per read that \
             found them, by table and field.",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for ((table, field), n) in totals {
            let labels = TableFieldLabels { table, field };
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

pub struct Metrics {
    registry: Registry,
    /// Held from filling the database gauges until they are encoded, so that two concurrent
    /// scrapes never see each other's half-filled families.
    scrape: Mutex<()>,
    webhooks: Family<OutcomeLabels, Counter>,
    intake_unparsed: Family<ResourceLabels, Counter>,
    deliveries: Family<ChannelOutcomeLabels, Counter>,
    deliveries_dead: Family<ChannelLabels, Counter>,
    delivery_duration: DurationFamily,
    escalations_fired: Counter,
    escalation_lateness: Histogram,
    acknowledgements_expired: Counter,
    delivery_degraded: Counter,
    intake_breaches: Family<OutcomeLabels, Counter>,
    /// Intake answers slower than Sentry's 1 s or 5xx, per minute of the injected clock: what
    /// the pipeline watch compares with `sentry_contract` (this replica's, since it started).
    breach_minutes: Mutex<std::collections::BTreeMap<i64, u64>>,
    config_reloads: Family<ResultLabels, Counter>,
    config_last_reload_ok: Gauge,
    db: DbGauges,
}

/// Sentry times a webhook out after 1 s, and unsubscribes it after 1,000 timeouts in a day.
const SENTRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Minutes of contract breaches kept in memory.
const BREACH_MINUTES_KEPT: i64 = 2 * 24 * 60;

impl Default for Metrics {
    fn default() -> Self {
        Self::new(WriteHealth::default(), CorruptRows::default())
    }
}

impl Metrics {
    /// `health` and `corrupt_rows` are the store's: they are read at every scrape.
    /// Names this replica in the scrape: `paiid_replica_info{replica, database} 1`, so that a
    /// dashboard over several replicas tells them apart and sees which backend each runs on.
    pub fn name_replica(&mut self, replica: &str, database: &str) {
        self.registry.register(
            "paiid_replica",
            "This replica's name and its database backend",
            prometheus_client::metrics::info::Info::new(vec![
                ("replica".to_string(), replica.to_string()),
                ("database".to_string(), database.to_string()),
            ]),
        );
    }

    pub fn new(health: WriteHealth, corrupt_rows: CorruptRows) -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            scrape: Mutex::new(()),
            webhooks: Family::default(),
            intake_unparsed: Family::default(),
            deliveries: Family::default(),
            deliveries_dead: Family::default(),
            delivery_duration: Family::new_with_constructor(duration_histogram),
            escalations_fired: Counter::default(),
            escalation_lateness: Histogram::new(LATENESS_BUCKETS),
            acknowledgements_expired: Counter::default(),
            delivery_degraded: Counter::default(),
            intake_breaches: Family::default(),
            breach_minutes: Mutex::default(),
            config_reloads: Family::default(),
            config_last_reload_ok: Gauge::default(),
            db: DbGauges::default(),
        };
        // The file loaded at start-up is the first successful load.
        m.config_last_reload_ok.set(1);
        let r = &mut m.registry;
        // Counter names are registered without `_total`: the encoder appends it.
        r.register(
            "paiid_webhooks",
            "Sentry webhooks answered, by outcome",
            m.webhooks.clone(),
        );
        r.register(
            "paiid_intake_unparsed",
            "Sentry webhooks kept but not read (Sentry's envelope, unexpected content), by \
             resource",
            m.intake_unparsed.clone(),
        );
        r.register(
            "paiid_deliveries",
            "Delivery attempts, by channel and outcome",
            m.deliveries.clone(),
        );
        r.register(
            "paiid_deliveries_dead",
            "Deliveries given up on (permanent error or attempts exhausted), by channel",
            m.deliveries_dead.clone(),
        );
        r.register(
            "paiid_delivery_duration_seconds",
            "Time spent in one delivery attempt, by channel",
            m.delivery_duration.clone(),
        );
        r.register(
            "paiid_escalations_fired",
            "Escalations fired",
            m.escalations_fired.clone(),
        );
        r.register(
            "paiid_acknowledgements_expired",
            "Acknowledgements that outlived their severity's ack_timeout: the incident paged again",
            m.acknowledgements_expired.clone(),
        );
        r.register(
            "paiid_intake_contract_breaches",
            "Webhook answers that count against Sentry's contract (slower than 1 s, or 5xx), by kind",
            m.intake_breaches.clone(),
        );
        r.register(
            "paiid_delivery_degraded",
            "Episodes with no notification confirmed delivered within confirm_within: failed over to the escalation targets",
            m.delivery_degraded.clone(),
        );
        r.register(
            "paiid_escalation_lateness_seconds",
            "How late escalations fired after their due time",
            m.escalation_lateness.clone(),
        );
        r.register(
            "paiid_config_reload",
            "Reloads of the routing file (SIGHUP, POST /-/reload), by result",
            m.config_reloads.clone(),
        );
        r.register(
            "paiid_config_last_reload_successful",
            "1 when the last reload of the routing file was applied, 0 when it was refused (the \
             previous file is still in force)",
            m.config_last_reload_ok.clone(),
        );
        m.db.register(r);
        r.register_collector(Box::new(WriteHealthCollector(health)));
        r.register_collector(Box::new(CorruptRowsCollector(corrupt_rows)));
        m
    }

    /// A webhook answered: `outcome` is the intake status (`processed`, `duplicate`, ...).
    pub fn webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A webhook kept but not read, by Sentry resource.
    pub fn intake_unparsed(&self, resource: &str) {
        self.intake_unparsed
            .get_or_create(&ResourceLabels {
                resource: resource.to_string(),
            })
            .inc();
    }

    /// One delivery attempt and how it ended (`delivered`, `retry`, `dead`, ...).
    pub fn delivery_attempt(&self, channel: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&ChannelOutcomeLabels {
                channel: channel.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A delivery given up on.
    pub fn delivery_dead(&self, channel: &str) {
        self.deliveries_dead
            .get_or_create(&ChannelLabels {
                channel: channel.to_string(),
            })
            .inc();
    }

    /// Time spent in one delivery attempt.
    pub fn delivery_duration(&self, channel: &str, seconds: f64) {
        self.delivery_duration
            .get_or_create(&ChannelLabels {
                channel: channel.to_string(),
            })
            .observe(seconds);
    }

    /// A webhook answered with `status` after `elapsed`, at `now_ms`: counted against Sentry's
    /// contract when slower than 1 s (Sentry's timeout) or a 5xx.
    pub fn intake_answered(&self, status: u16, elapsed: std::time::Duration, now_ms: i64) {
        let kind = if status >= 500 {
            "server_error"
        } else if elapsed > SENTRY_TIMEOUT {
            "slow"
        } else {
            return;
        };
        self.intake_breaches
            .get_or_create(&OutcomeLabels {
                outcome: kind.to_string(),
            })
            .inc();
        let minute = now_ms.div_euclid(60_000);
        let mut minutes = self
            .breach_minutes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *minutes.entry(minute).or_default() += 1;
        // Two days kept: longer than any window the watch is given by default.
        let keep_from = minute - BREACH_MINUTES_KEPT;
        while minutes
            .first_key_value()
            .is_some_and(|(m, _)| *m < keep_from)
        {
            minutes.pop_first();
        }
    }

    /// Breaches of Sentry's contract counted since `since_ms` (to the minute).
    pub fn intake_breaches_since(&self, since_ms: i64) -> u64 {
        let from = since_ms.div_euclid(60_000);
        self.breach_minutes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .range(from..)
            .map(|(_, n)| n)
            .sum()
    }

    /// Acknowledgements that expired in one scheduler pass.
    pub fn acknowledgements_expired(&self, n: usize) {
        self.acknowledgements_expired.inc_by(n as u64);
    }

    /// Episodes whose delivery was not confirmed in time, failed over in one scheduler pass.
    pub fn delivery_degraded(&self, n: usize) {
        self.delivery_degraded.inc_by(n as u64);
    }

    /// An escalation fired `lateness_seconds` after it was due.
    pub fn escalation_fired(&self, lateness_seconds: f64) {
        self.escalations_fired.inc();
        self.escalation_lateness.observe(lateness_seconds);
    }

    /// A reload of the routing file, applied (`ok`) or refused.
    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.config_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
        self.config_last_reload_ok.set(i64::from(ok));
    }

    /// The current value of an in-process counter, by its exposed name and labels (0 when it has
    /// not been counted yet, or is not an in-process counter). For tests and diagnostics.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let label = |key: &str| {
            labels
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        match name {
            "paiid_webhooks_total" => self
                .webhooks
                .get(&OutcomeLabels {
                    outcome: label("outcome"),
                })
                .map_or(0, |c| c.get()),
            "paiid_intake_unparsed_total" => self
                .intake_unparsed
                .get(&ResourceLabels {
                    resource: label("resource"),
                })
                .map_or(0, |c| c.get()),
            "paiid_deliveries_total" => self
                .deliveries
                .get(&ChannelOutcomeLabels {
                    channel: label("channel"),
                    outcome: label("outcome"),
                })
                .map_or(0, |c| c.get()),
            "paiid_deliveries_dead_total" => self
                .deliveries_dead
                .get(&ChannelLabels {
                    channel: label("channel"),
                })
                .map_or(0, |c| c.get()),
            "paiid_escalations_fired_total" => self.escalations_fired.get(),
            "paiid_config_reload_total" => {
                let result = match label("result").as_str() {
                    "success" => "success",
                    _ => "failure",
                };
                self.config_reloads
                    .get(&ResultLabels { result })
                    .map_or(0, |c| c.get())
            }
            _ => 0,
        }
    }

    /// The exposition, with the database gauges set from `db` (`None`: the database did not
    /// answer, and they are left out rather than shown stale).
    pub fn render(&self, db: Option<&Gauges>) -> Result<String, std::fmt::Error> {
        // A panic while holding the lock leaves nothing half-done that the next scrape does not
        // overwrite, so a poisoned lock is used as is.
        let _scrape = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.db.set(db);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
