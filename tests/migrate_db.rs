//! `paiid-alerts migrate-db`: a SQLite database made by this release, copied into an empty
//! PostgreSQL database by the real binary, then the service started on PostgreSQL finds the same
//! incidents open and fires their escalation when it falls due, once.

mod support;

use std::sync::Arc;

use paiid_alerts::testing::clock::{Clock, ManualClock};
use serde_json::Value;
use support::{AppOptions, START_MS, spawn_with};

const BIN: &str = env!("CARGO_BIN_EXE_paiid-alerts");
const MIN: i64 = 60_000;

async fn open_critical(app: &support::TestApp, issue: &str) -> i64 {
    let mut v = support::fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = issue.into();
    v["data"]["event"]["event_id"] = format!("evt-{issue}").into();
    let r = app
        .post_sentry(Some("event_alert"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap()
}

fn migrate(from: &str, to: &str) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["migrate-db", "--from", from, "--to", to])
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_sqlite_database_moves_to_postgres_with_its_incidents_and_their_escalations_due() {
    let Some(admin) = support::postgres_admin_url() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(START_MS));
    let sqlite_dir = Arc::new(tempfile::tempdir().unwrap());
    let sqlite_url = format!("sqlite://{}", sqlite_dir.path().join("alerts.db").display());

    // Today's release on SQLite: two criticals, one acknowledged, one waiting for its window.
    let app = spawn_with(AppOptions {
        run_workers: false,
        dir: Some(sqlite_dir.clone()),
        clock: Some(clock.clone()),
        tweak: Some(Box::new({
            let url = sqlite_url.clone();
            move |s| s.database_url = url
        })),
        ..AppOptions::default()
    })
    .await;
    let waiting = open_critical(&app, "810001").await;
    let acked = open_critical(&app, "810002").await;
    let r = app
        .client
        .post(app.url(&format!("/api/incidents/{acked}/ack")))
        .json(&serde_json::json!({"by": "dana"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    app.workers.outbox.drain().await.unwrap();
    let signing_key: Vec<String> = paiid_alerts::testing::column(
        &app.state.store,
        "SELECT value FROM settings WHERE key = 'ack_signing_key'",
    )
    .await
    .unwrap();
    assert_eq!(signing_key.len(), 1);
    app.stop().await;

    let target = support::fresh_postgres_database(&admin).await;
    let out = migrate(&sqlite_url, &target);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("copied and verified"), "{stdout}");
    for table in ["incidents", "events", "deliveries", "timeline", "settings"] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("{table} counted: {stdout}"));
        let n: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(n[1], n[2], "{line}");
        assert_ne!(n[1], "0", "{line}");
    }

    // A second copy into the same database is refused: a copy never merges.
    let again = migrate(&sqlite_url, &target);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not empty"), "{err}");

    // The same release on PostgreSQL: the same incidents, the same signing key, and the
    // waiting one escalates at its deadline, once.
    let pg_dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_with(AppOptions {
        run_workers: false,
        dir: Some(pg_dir),
        clock: Some(clock.clone()),
        tweak: Some(Box::new(move |s| s.database_url = target)),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(app.incident(waiting).await["state"], "triggered");
    assert_eq!(app.incident(acked).await["state"], "acknowledged");
    let key_after: Vec<String> = paiid_alerts::testing::column(
        &app.state.store,
        "SELECT value FROM settings WHERE key = 'ack_signing_key'",
    )
    .await
    .unwrap();
    assert_eq!(
        key_after, signing_key,
        "ack links signed before still verify"
    );

    let scheduler = &app.workers.scheduler;
    clock.set(START_MS + 14 * MIN);
    assert_eq!(
        scheduler.fire_due().await.unwrap(),
        0,
        "not before the window"
    );
    clock.set(START_MS + 16 * MIN);
    assert_eq!(
        scheduler.fire_due().await.unwrap(),
        1,
        "the waiting one fires"
    );
    clock.set(clock.now_ms() + 60 * MIN);
    assert_eq!(scheduler.fire_due().await.unwrap(), 0, "once");
    assert_eq!(app.incident(waiting).await["escalations_fired"], 1);
    assert_eq!(app.incident(acked).await["escalations_fired"], 0);
    // New rows continue the copied ids instead of colliding with them.
    let id = open_critical(&app, "810003").await;
    assert!(id > acked, "{id} after {acked}");
    app.workers.outbox.drain().await.unwrap();
}

#[tokio::test]
async fn migrate_db_names_a_wrong_source_or_target() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("x.db").display());
    let out = migrate("postgres://a/b", "postgres://c/d");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--from must be a SQLite URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = migrate(&sqlite, &sqlite);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--to must be a PostgreSQL URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
