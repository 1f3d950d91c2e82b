//! Prometheus metrics in the text exposition format. A handful of labelled counters and
//! summaries kept in one explicit registry (no global recorder), so tests can read them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Default)]
struct Summary {
    count: u64,
    sum: f64,
    max: f64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    summaries: Mutex<BTreeMap<(&'static str, String), Summary>>,
}

const HELP: &[(&str, &str, &str)] = &[
    (
        "paiid_webhooks_total",
        "counter",
        "Sentry webhooks answered, by outcome.",
    ),
    (
        "paiid_intake_unparsed_total",
        "counter",
        "Sentry webhooks kept but not read (Sentry's envelope, unexpected content), by resource.",
    ),
    (
        "paiid_deliveries_total",
        "counter",
        "Delivery attempts, by channel and outcome.",
    ),
    (
        "paiid_deliveries_dead_total",
        "counter",
        "Deliveries given up on (permanent error or attempts exhausted), by channel.",
    ),
    (
        "paiid_escalations_fired_total",
        "counter",
        "Escalations fired.",
    ),
    (
        "paiid_escalation_lateness_seconds",
        "summary",
        "How late escalations fired after their due time.",
    ),
    (
        "paiid_delivery_duration_seconds",
        "summary",
        "Time spent in one delivery attempt, by channel.",
    ),
];

fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', " ")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Metrics {
    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)]) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry((name, labels(pairs))).or_default() += 1;
        }
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        if let Ok(mut s) = self.summaries.lock() {
            let e = s.entry((name, labels(pairs))).or_default();
            e.count += 1;
            e.sum += value;
            e.max = e.max.max(value);
        }
    }

    pub fn counter(&self, name: &'static str, pairs: &[(&str, &str)]) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|c| c.get(&(name, labels(pairs))).copied())
            .unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            if let Ok(c) = self.counters.lock() {
                for ((n, l), v) in c.iter().filter(|((n, _), _)| n == name) {
                    let _ = writeln!(out, "{n}{{{l}}} {v}");
                }
            }
            if let Ok(s) = self.summaries.lock() {
                for ((n, l), v) in s.iter().filter(|((n, _), _)| n == name) {
                    let _ = writeln!(
                        out,
                        "{n}_count{{{l}}} {}\n{n}_sum{{{l}}} {}\n{n}_max{{{l}}} {}",
                        v.count, v.sum, v.max
                    );
                }
            }
        }
        out
    }
}

/// Gauges read from the database at scrape time (see `store::misc::gauges`).
pub fn render_gauges(g: &crate::store::misc::Gauges) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (l, v) in samples {
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
    };
    family(
        "paiid_incidents_open",
        "Incidents not resolved, by state and severity.",
        g.open_incidents
            .iter()
            .map(|(state, sev, n)| {
                (
                    labels(&[("state", state), ("severity", sev)]),
                    n.to_string(),
                )
            })
            .collect(),
    );
    family(
        "paiid_outbox_deliveries",
        "Deliveries not (yet) delivered, by channel and status.",
        g.deliveries
            .iter()
            .map(|(ch, st, n)| (labels(&[("channel", ch), ("status", st)]), n.to_string()))
            .collect(),
    );
    family(
        "paiid_outbox_lag_seconds",
        "How long the oldest due delivery has waited (0 when the outbox is keeping up).",
        vec![(String::new(), seconds(g.outbox_lag_ms))],
    );
    family(
        "paiid_escalations_pending",
        "Incidents with an escalation timer set.",
        vec![(String::new(), g.escalations_pending.to_string())],
    );
    family(
        "paiid_escalation_overdue_seconds",
        "How far past its due time the most overdue escalation is (above a few seconds: the scheduler is stuck).",
        vec![(String::new(), seconds(g.escalation_overdue_ms))],
    );
    out
}

/// Whether the database takes writes, from the write paths and the probe (`store::health`).
pub fn render_write_health(h: &crate::store::health::WriteHealth) -> String {
    let failing = h.failing();
    format!(
        "# HELP paiid_storage_writable 1 while the database takes writes, 0 while writes fail (readiness fails with it).\n\
         # TYPE paiid_storage_writable gauge\n\
         paiid_storage_writable {}\n\
         # HELP paiid_storage_write_failures_total Writes that failed (intake batches, workers, probes).\n\
         # TYPE paiid_storage_write_failures_total counter\n\
         paiid_storage_write_failures_total {}\n",
        u8::from(failing.is_none()),
        h.failures_total(),
    )
}

fn seconds(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_prometheus_text() {
        let m = super::Metrics::default();
        m.inc(
            "paiid_deliveries_total",
            &[("channel", "slack\"x"), ("outcome", "delivered")],
        );
        m.observe("paiid_escalation_lateness_seconds", &[], 0.25);
        let text = m.render();
        assert!(
            text.contains("paiid_deliveries_total{channel=\"slack\\\"x\",outcome=\"delivered\"} 1"),
            "{text}"
        );
        assert!(text.contains("paiid_escalation_lateness_seconds_count{} 1"));
        assert_eq!(
            m.counter(
                "paiid_deliveries_total",
                &[("channel", "slack\"x"), ("outcome", "delivered")]
            ),
            1
        );
    }
}
