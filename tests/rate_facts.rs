//! Rate windows across a restart are rebuilt from the facts stored with each event (migration
//! 0009), not from re-parsed bodies (issue 10, target 4); rows stored without them are read the
//! old way.

mod support;

use serde_json::Value;
use support::*;

async fn post_error(app: &TestApp, i: usize) -> Value {
    let mut v = fixture_json("error.created.1.json");
    v["data"]["error"]["event_id"] = format!("e{i}").into();
    let r = app
        .post_sentry(Some("error"), &serde_json::to_vec(&v).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn exec(app: &TestApp, sql: &'static str) {
    paiid_alerts::testing::execute(&app.state.store, sql)
        .await
        .unwrap();
}

async fn restart(app: TestApp) -> TestApp {
    let (dir, clock) = app.stop().await;
    clock.advance(std::time::Duration::from_secs(30));
    spawn_with(AppOptions {
        dir: Some(dir),
        clock: Some(clock),
        ..AppOptions::default()
    })
    .await
}

/// Ten errors, a restart, the eleventh within 5 minutes: High (`high-error-rate`).
async fn eleventh_after_restart(tamper: &'static str) -> (TestApp, Value) {
    let app = spawn_app().await;
    for i in 0..10 {
        assert_eq!(post_error(&app, i).await["severity"], "unclassified");
    }
    exec(&app, tamper).await;
    let app = restart(app).await;
    let body = post_error(&app, 10).await;
    (app, body)
}

#[tokio::test]
async fn rate_window_is_rebuilt_from_stored_facts_without_reading_bodies() {
    // No body to parse: only the stored facts can refill the window.
    let (_app, body) = eleventh_after_restart("UPDATE events SET body = NULL").await;
    assert_eq!(
        body["severity"], "high",
        "the 11th error in 5 minutes, across a restart, from stored facts"
    );
}

#[tokio::test]
async fn events_stored_without_rate_facts_are_read_from_their_bodies() {
    // As rows written before migration 0009 look.
    let (app, body) =
        eleventh_after_restart("UPDATE events SET rate_fp = NULL, rate_keys = NULL").await;
    assert_eq!(body["severity"], "high", "counted from their bodies");
    let rows: Vec<(Option<i64>, Option<String>)> = paiid_alerts::testing::fetch_all(
        &app.state.store,
        "SELECT rate_fp, rate_keys FROM events ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 11);
    // Not written back (that would rewrite each row with its body); new events carry them.
    assert!(rows[..10].iter().all(|r| *r == (None, None)), "{rows:?}");
    assert!(rows[10].0.is_some());
    let keys: Vec<(usize, String)> = serde_json::from_str(rows[10].1.as_deref().unwrap()).unwrap();
    assert_eq!(keys.len(), 1, "one rate rule: {keys:?}");
}

#[tokio::test]
async fn a_reload_that_renumbers_the_rules_rederives_the_facts_from_bodies() {
    let app = spawn_with(AppOptions {
        secrets: paiid_alerts::testing::settings::Secrets {
            api_token: secret("t0ken"),
            ..Default::default()
        },
        ..AppOptions::default()
    })
    .await;
    for i in 0..10 {
        assert_eq!(post_error(&app, i).await["severity"], "unclassified");
    }
    // A rate rule ahead of high-error-rate that this project never matches: the stored rule
    // indexes now name it, so trusting them would count the errors toward the wrong window.
    let path = app.dir.path().join("routing.yaml");
    let routing = std::fs::read_to_string(&path).unwrap();
    let renumbered = routing.replacen(
        "  - name: high-error-rate\n",
        "  - name: other-project-rate\n    severity: critical\n    \
         when: { project: [no-such-project], rate: { more_than: 1, within: 1m, per: project } }\n  \
         - name: high-error-rate\n",
        1,
    );
    assert_ne!(renumbered, routing, "routing.yaml has high-error-rate");
    std::fs::write(&path, renumbered).unwrap();
    let r = app
        .client
        .post(app.url("/-/reload"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let body = post_error(&app, 10).await;
    assert_eq!(body["severity"], "high", "the 11th error, after a reload");
}
