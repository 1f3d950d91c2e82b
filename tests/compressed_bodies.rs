//! Raw bodies are stored zstd-compressed (migration 0012, issue 10 target 6). Every reader of
//! `events.body` (the details backfill at start, the rate-window rebuild from bodies, explain's
//! recent occurrences) works on compressed rows and on rows stored raw before the migration; a
//! compressed body that does not decode is counted as a corrupt row and left out, never read
//! as some other body.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::*;

const TOKEN: &str = "bodies-t0ken";

async fn app_at(
    dir: Option<Arc<tempfile::TempDir>>,
    clock: Option<Arc<paiid_alerts::testing::clock::ManualClock>>,
) -> TestApp {
    spawn_with(AppOptions {
        dir,
        clock,
        secrets: paiid_alerts::testing::settings::Secrets {
            api_token: secret(TOKEN),
            ..Default::default()
        },
        ..AppOptions::default()
    })
    .await
}

async fn restart(app: TestApp) -> TestApp {
    let (dir, clock) = app.stop().await;
    clock.advance(std::time::Duration::from_secs(30));
    app_at(Some(dir), Some(clock)).await
}

/// `error.created.1` (full size, compact as Sentry sends it) with event id `e{i}`.
fn error_body(i: usize) -> Vec<u8> {
    let mut v = fixture_json("error.created.1.json");
    v["data"]["error"]["event_id"] = format!("e{i}").into();
    serde_json::to_vec(&v).unwrap()
}

async fn post_error(app: &TestApp, i: usize) -> Value {
    let r = app.post_sentry(Some("error"), &error_body(i)).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn exec(app: &TestApp, sql: &'static str, bind: Option<Vec<u8>>) {
    let mut tx = app.state.store.begin_write().await.unwrap();
    let mut q = sqlx::query(sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    q.execute(paiid_alerts::testing::sqlite_conn(&mut tx))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Rows 1-5 back to how rows stored before migration 0012 look: the body as received.
async fn make_first_five_raw(app: &TestApp) {
    exec(
        app,
        "UPDATE events SET body = ?, body_encoding = 0 WHERE id <= 5",
        Some(error_body(0)),
    )
    .await;
}

async fn ten_errors() -> TestApp {
    let app = app_at(None, None).await;
    for i in 0..10 {
        assert_eq!(post_error(&app, i).await["severity"], "unclassified");
    }
    app
}

async fn corrupt_total(app: &TestApp) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("paiid_store_corrupt_rows_total")
                && l.contains("table=\"events\"")
                && l.contains("field=\"body\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn webhook_bodies_are_stored_compressed_with_their_encoding() {
    let app = app_at(None, None).await;
    let raw = fixture("event_alert.triggered.4.json");
    assert_eq!(
        app.post_sentry(Some("event_alert"), &raw).await.status(),
        200
    );
    assert_eq!(app.scalar("SELECT body_encoding FROM events").await, 1);
    let stored = app.scalar("SELECT length(body) FROM events").await;
    assert!(
        stored * 5 < raw.len() as i64,
        "{stored} bytes stored for {}",
        raw.len()
    );
    // A zstd frame (magic 28 b5 2f fd), not JSON.
    assert_eq!(
        app.scalar("SELECT hex(substr(body, 1, 4)) = '28B52FFD' FROM events")
            .await,
        1
    );
}

#[tokio::test]
async fn rate_windows_are_rebuilt_from_compressed_and_raw_bodies() {
    let app = ten_errors().await;
    make_first_five_raw(&app).await;
    // Facts as rows stored before migration 0009 have none: only the bodies can refill the window.
    exec(
        &app,
        "UPDATE events SET rate_fp = NULL, rate_keys = NULL",
        None,
    )
    .await;
    let app = restart(app).await;
    assert_eq!(
        post_error(&app, 10).await["severity"],
        "high",
        "5 raw + 5 compressed counted"
    );
    assert_eq!(corrupt_total(&app).await, 0.0);
}

#[tokio::test]
async fn explain_counts_compressed_and_raw_stored_occurrences() {
    let app = ten_errors().await;
    make_first_five_raw(&app).await;
    let r = app
        .client
        .post(app.url("/api/explain"))
        .bearer_auth(TOKEN)
        .header("Sentry-Hook-Resource", "error")
        .body(error_body(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["severity"], "high", "{e}");
    assert_eq!(e["rule"], "high-error-rate", "{e}");
}

#[tokio::test]
async fn details_are_backfilled_from_compressed_and_raw_bodies() {
    let app = app_at(None, None).await;
    for (i, name) in [
        "event_alert.triggered.4.json",
        "event_alert.triggered.1.json",
    ]
    .iter()
    .enumerate()
    {
        let r = app.post_sentry(Some("event_alert"), &fixture(name)).await;
        assert_eq!(r.status(), 200, "{i}");
    }
    let before: Vec<Option<String>> = details(&app).await;
    assert!(before.iter().all(Option::is_some), "{before:?}");
    // Row 1 raw, as stored before 0012; both without details, as stored before 0005.
    exec(
        &app,
        "UPDATE events SET body = ?, body_encoding = 0 WHERE id = 1",
        Some(fixture("event_alert.triggered.4.json")),
    )
    .await;
    exec(&app, "UPDATE events SET details = NULL", None).await;
    let app = restart(app).await;
    assert_eq!(
        details(&app).await,
        before,
        "the same details from either kind of row"
    );
}

async fn stored_body(app: &TestApp, id: i64) -> Vec<u8> {
    let mut conn = app.state.store.begin_write().await.unwrap();
    sqlx::query_scalar("SELECT body FROM events WHERE id = ?")
        .bind(id)
        .fetch_one(paiid_alerts::testing::sqlite_conn(&mut conn))
        .await
        .unwrap()
}

async fn details(app: &TestApp) -> Vec<Option<String>> {
    let mut conn = app.state.store.begin_write().await.unwrap();
    sqlx::query_scalar("SELECT details FROM events ORDER BY id")
        .fetch_all(paiid_alerts::testing::sqlite_conn(&mut conn))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_damaged_compressed_body_is_a_corrupt_row_not_a_body() {
    let app = ten_errors().await;
    // Row 1: a frame that is not one; row 2: our frame with a byte flipped in the middle.
    exec(
        &app,
        "UPDATE events SET body = X'28b52ffd0000' WHERE id = 1",
        None,
    )
    .await;
    let mut body = stored_body(&app, 2).await;
    let mid = body.len() / 2;
    body[mid] ^= 0x55;
    exec(&app, "UPDATE events SET body = ? WHERE id = 2", Some(body)).await;
    exec(
        &app,
        "UPDATE events SET rate_fp = NULL, rate_keys = NULL",
        None,
    )
    .await;
    let app = restart(app).await;
    // The service started; the two rows counted toward nothing (8 + this one: not over 10).
    assert!(corrupt_total(&app).await >= 2.0);
    assert_eq!(post_error(&app, 10).await["severity"], "unclassified");
    // Explain leaves them out the same way (and counts them again).
    let r = app
        .client
        .post(app.url("/api/explain"))
        .bearer_auth(TOKEN)
        .header("Sentry-Hook-Resource", "error")
        .body(error_body(11))
        .send()
        .await
        .unwrap();
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["severity"],
        json!("unclassified"),
        "9 readable + this one: {e}"
    );
}
