use super::*;

fn gauges() -> Gauges {
    Gauges {
        open_incidents: vec![("triggered".into(), "critical".into(), 2)],
        deliveries: vec![("slack\"x".into(), "pending".into(), 1)],
        outbox_lag_ms: 1_200_000,
        escalations_pending: 3,
        escalation_overdue_ms: 300_500,
    }
}

#[test]
fn renders_prometheus_text() {
    let m = Metrics::default();
    m.delivery_attempt("slack\"x", "delivered");
    m.escalation_fired(0.25);
    let text = m.render(Some(&gauges())).unwrap();
    for line in [
        "# TYPE paiid_deliveries_total counter",
        "paiid_deliveries_total{channel=\"slack\\\"x\",outcome=\"delivered\"} 1",
        "# TYPE paiid_escalation_lateness_seconds histogram",
        "paiid_escalation_lateness_seconds_count 1",
        "paiid_escalation_lateness_seconds_bucket{le=\"0.25\"} 1",
        "paiid_escalation_lateness_seconds_bucket{le=\"0.1\"} 0",
        "paiid_escalations_fired_total 1",
        "paiid_incidents_open{state=\"triggered\",severity=\"critical\"} 2",
        "paiid_outbox_deliveries{channel=\"slack\\\"x\",status=\"pending\"} 1",
        "paiid_outbox_lag_seconds 1200.0",
        "paiid_escalations_pending 3",
        "paiid_escalation_overdue_seconds 300.5",
        "paiid_storage_writable 1",
        "paiid_storage_write_failures_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains("_max"), "{text}");
    assert_eq!(
        m.counter(
            "paiid_deliveries_total",
            &[("channel", "slack\"x"), ("outcome", "delivered")]
        ),
        1
    );
    assert_eq!(m.counter("paiid_escalations_fired_total", &[]), 1);
}

#[test]
fn database_gauges_follow_the_latest_scrape() {
    let m = Metrics::default();
    m.render(Some(&gauges())).unwrap();
    // The critical incidents were resolved and the Slack delivery went out.
    let later = Gauges {
        open_incidents: vec![("acknowledged".into(), "warning".into(), 1)],
        ..Gauges::default()
    };
    let text = m.render(Some(&later)).unwrap();
    assert!(!text.contains("critical"), "{text}");
    assert!(!text.contains("paiid_outbox_deliveries{"), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "paiid_incidents_open{state=\"acknowledged\",severity=\"warning\"} 1"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "paiid_escalations_pending 0"));

    // Database unavailable: no value rather than the last one.
    let text = m.render(None).unwrap();
    assert!(!text.contains("paiid_incidents_open{"), "{text}");
    assert!(!text.contains("paiid_escalations_pending"), "{text}");
    assert!(!text.contains("paiid_outbox_lag_seconds"), "{text}");
    // The in-process families still answer.
    assert!(text.contains("paiid_storage_writable 1"), "{text}");
}

#[test]
fn storage_health_is_read_at_scrape_time() {
    let health = WriteHealth::default();
    let m = Metrics::new(health.clone(), Default::default());
    health.failed("test", &"disk full", 1_000);
    let text = m.render(None).unwrap();
    assert!(
        text.lines().any(|l| l == "paiid_storage_writable 0"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "paiid_storage_write_failures_total 1"),
        "{text}"
    );
    health.succeeded(2_000);
    let text = m.render(None).unwrap();
    assert!(
        text.lines().any(|l| l == "paiid_storage_writable 1"),
        "{text}"
    );
}

#[test]
fn unreadable_rows_are_read_at_scrape_time_by_table_and_field() {
    let corrupt = CorruptRows::default();
    let m = Metrics::new(WriteHealth::default(), corrupt.clone());
    let text = m.render(None).unwrap();
    assert!(!text.contains("paiid_store_corrupt_rows"), "{text}");
    let row = |table, field| crate::store::CorruptRow {
        table,
        id: 7,
        field,
        reason: "unknown word".into(),
    };
    corrupt.found(row("incidents", "state"));
    corrupt.found(row("incidents", "state"));
    corrupt.note(&row("deliveries", "kind"));
    let text = m.render(None).unwrap();
    for line in [
        "# TYPE paiid_store_corrupt_rows_total counter",
        r#"paiid_store_corrupt_rows_total{table="deliveries",field="kind"} 1"#,
        r#"paiid_store_corrupt_rows_total{table="incidents",field="state"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}
