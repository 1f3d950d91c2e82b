//! Three replicas of the real binary on one PostgreSQL database, one of them killed with SIGKILL
//! while it holds claims (outbox rows it leased and had not sent yet): every webhook answered 2xx is stored, every escalation fires once
//! (one PagerDuty trigger per dedup key, one manager mail per escalation), each digest period
//! is sent once, and Slack's one message a second per channel holds across the replicas.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::FakeSlack;
use support::fixture_json;
use support::service::{BIN, Service};
use support::smtp::SmtpSink;
use tokio::process::Command;

const SECRET: &str = "replicas-client-secret";
const INCIDENTS: usize = 9;

fn routing(pd: &FakePagerDuty) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", webhook_url: "${{SLACK_WEBHOOK_URL}}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{url}" }}
  manager-email: {{ type: email, to: ["eng-manager@paiid.ai"] }}
  digest-email: {{ type: email, to: ["trading-ops@paiid.ai"] }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 4s, escalate_to: [pagerduty-oncall, manager-email] }}
storm:
  enabled: false
digest:
  schedule: "*/3 * * * * *"
  to: [digest-email]
delivery:
  send_timeout: 1s
"##,
        key = pd.routing_key(),
        url = pd.enqueue_url()
    )
}

async fn start(
    dir: &std::path::Path,
    database_url: &str,
    envs: &[(&str, String)],
    name: &str,
) -> Service {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("ROUTING_CONFIG", dir.join("routing.yaml"))
        .env("REPLICA_NAME", name)
        .env("RUST_LOG", "info,paiid_alerts=debug");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Service::spawn(cmd, dir.join(format!("{name}.log"))).await
}

fn critical(issue: usize) -> Vec<u8> {
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = format!("77{issue:04}").into();
    v["data"]["event"]["event_id"] = format!("evt-77{issue:04}").into();
    v["data"]["event"]["title"] = format!("replica test {issue}").into();
    serde_json::to_vec(&v).unwrap()
}

/// A replica's warnings, errors and deliveries, for a failure message.
fn noteworthy(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("delivered"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn three_replicas_one_killed_mid_run_fire_each_escalation_once() {
    let Some(admin) = support::postgres_admin_url() else {
        return;
    };
    let database_url = support::fresh_postgres_database(&admin).await;
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routing.yaml"), routing(&pd)).unwrap();
    let envs = [
        ("SLACK_WEBHOOK_URL", slack.webhook_url()),
        ("SENTRY_CLIENT_SECRET", SECRET.to_string()),
        ("SMTP_URL", smtp.url()),
    ];
    let client = paiid_alerts::testing::http_client::client().unwrap();
    let post = |base: String, n: usize| {
        let client = client.clone();
        async move {
            let body = critical(n);
            let sig = paiid_alerts::testing::intake::signature::sign(SECRET.as_bytes(), &body);
            client
                .post(format!("{base}/webhooks/sentry"))
                .header("Sentry-Hook-Resource", "event_alert")
                .header("Sentry-Hook-Signature", sig)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
        }
    };
    // Incident numbers answered 2xx (the issue ids are `77000n`, the titles "replica test n").
    let mut accepted: BTreeSet<usize> = BTreeSet::new();

    // Replica C alone takes the first three and starts sending them; Slack takes its time
    // answering (up to the 1 s send timeout), and C is killed while it holds the lease.
    slack.fail_next(
        1,
        support::fake_slack::Behaviour::Hang(Duration::from_secs(30)),
    );
    let mut c = start(dir.path(), &database_url, &envs, "replica-c").await;
    for n in 0..3 {
        let r = post(c.base.clone(), n).await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        accepted.insert(n);
    }
    let db = || async {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&database_url).await.unwrap()
    };
    let leased = || async {
        let mut db = db().await;
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'")
            .fetch_one(&mut db)
            .await
            .unwrap()
    };
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while leased().await == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "replica C never claimed:\n{}",
            c.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.kill9();
    let _ = c.child.wait().await;
    assert!(leased().await > 0, "killed while holding claims");

    // A and B take the rest; the dead one refuses what is sent to it.
    let (a, b) = tokio::join!(
        start(dir.path(), &database_url, &envs, "replica-a"),
        start(dir.path(), &database_url, &envs, "replica-b"),
    );
    let replicas = [a, b];
    for n in 3..INCIDENTS {
        let r = post(replicas[n % 2].base.clone(), n).await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        accepted.insert(n);
    }
    assert!(
        post(c.base.clone(), 99).await.is_err(),
        "the killed replica answers nothing"
    );

    // Every escalation fires (4 s after its incident opened) and its page and mail go out;
    // the Slack cards the dead replica had claimed are sent by another once its lease ends.
    let pd_keys = || -> BTreeMap<String, usize> {
        let mut keys = BTreeMap::new();
        for e in pd.events() {
            if e["event_action"] == "trigger" {
                *keys
                    .entry(e["dedup_key"].as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
            }
        }
        keys
    };
    // Escalations due together go out as one mail listing them: by incident, how many manager
    // mails named it.
    let manager_mails = || -> BTreeMap<usize, usize> {
        let mut named = BTreeMap::new();
        for m in smtp.received() {
            if !m.header("To").unwrap_or_default().contains("eng-manager") {
                continue;
            }
            let text = m.text();
            for n in &accepted {
                if text.contains(&format!("replica test {n}")) {
                    *named.entry(*n).or_default() += 1;
                }
            }
        }
        named
    };
    let cards = || -> BTreeSet<usize> {
        // A bundle card lists several incidents.
        slack
            .messages()
            .iter()
            .flat_map(|m| {
                let text = m.body.to_string();
                accepted
                    .iter()
                    .filter(|n| text.contains(&format!("replica test {n}")))
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if pd_keys().len() == accepted.len()
            && manager_mails().len() == accepted.len()
            && cards().len() == accepted.len()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "within 60 s: {} PagerDuty keys, manager mails for {:?}, Slack cards for {:?} of {:?}; \
             Slack rejected {:?}\nreplica-a:\n{}\nreplica-b:\n{}",
            pd_keys().len(),
            manager_mails(),
            cards(),
            accepted,
            slack
                .rejected()
                .iter()
                .map(|r| r.status)
                .collect::<Vec<_>>(),
            noteworthy(&replicas[0].log()),
            noteworthy(&replicas[1].log()),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Longer than an escalation window and a lease: nothing fires a second time.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let keys = pd_keys();
    assert_eq!(keys.len(), accepted.len(), "{keys:?}");
    assert!(
        keys.values().all(|n| *n == 1),
        "one trigger per dedup key: {keys:?}"
    );
    let mails = manager_mails();
    assert!(
        mails.len() == accepted.len() && mails.values().all(|n| *n == 1),
        "each escalation in one manager mail: {mails:?}\nreplica-a:\n{}\nreplica-b:\n{}",
        noteworthy(&replicas[0].log()),
        noteworthy(&replicas[1].log()),
    );
    let too_fast: Vec<_> = slack
        .rejected()
        .into_iter()
        .filter(|r| r.status == 429)
        .collect();
    assert!(
        too_fast.is_empty(),
        "Slack's 1/s per channel held: {} rejected",
        too_fast.len()
    );

    // Every webhook answered 2xx is stored, as one incident each.
    let (stored, escalations): (i64, i64) = {
        use sqlx::Connection;
        let mut db = sqlx::PgConnection::connect(&database_url).await.unwrap();
        let issues: Vec<String> = accepted.iter().map(|n| format!("77{n:04}")).collect();
        let stored = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT sentry_issue_id) FROM incidents WHERE sentry_issue_id = ANY($1)",
        )
        .bind(&issues)
        .fetch_one(&mut db)
        .await
        .unwrap();
        let escalations = sqlx::query_scalar("SELECT COUNT(*) FROM escalations")
            .fetch_one(&mut db)
            .await
            .unwrap();
        (stored, escalations)
    };
    assert_eq!(stored as usize, accepted.len(), "every 2xx is stored");
    assert_eq!(
        escalations as usize,
        accepted.len(),
        "each step on record once"
    );

    // Each digest period went out once, whichever replica claimed it.
    let digest_mails = smtp
        .received()
        .iter()
        .filter(|m| m.header("To").unwrap_or_default().contains("trading-ops"))
        .count();
    let periods_sent: i64 = {
        use sqlx::Connection;
        let mut db = sqlx::PgConnection::connect(&database_url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM digests WHERE sent_at IS NOT NULL")
            .fetch_one(&mut db)
            .await
            .unwrap()
    };
    assert!(periods_sent >= 1, "a digest period passed during the run");
    let rows: Vec<(i64, i64, Option<i64>, i64)> = {
        use sqlx::Connection;
        let mut db = sqlx::PgConnection::connect(&database_url).await.unwrap();
        sqlx::query_as(
            "SELECT period_start, period_end, sent_at, attempts FROM digests ORDER BY period_end",
        )
        .fetch_all(&mut db)
        .await
        .unwrap()
    };
    let subjects: Vec<String> = smtp
        .received()
        .iter()
        .filter(|m| m.header("To").unwrap_or_default().contains("trading-ops"))
        .map(|m| {
            format!(
                "{} | {}",
                m.header("Subject").unwrap_or_default(),
                m.header("Date").unwrap_or_default()
            )
        })
        .collect();
    // Each period claimed once (its key), so live replicas never both send one; the killed
    // replica may have had one period's mail accepted before it could record it (the period is
    // then sent again when its claim's lease ends: at least once, as for every delivery).
    let unrecorded = rows.iter().filter(|(_, _, sent, _)| sent.is_none()).count() as i64;
    assert!(
        digest_mails as i64 >= periods_sent
            && (digest_mails as i64) <= periods_sent + unrecorded.min(1),
        "one mail per digest period: {rows:?} {subjects:#?}"
    );

    let [a, b] = replicas;
    let (log_a, log_b) = tokio::join!(a.stop(), b.stop());
    for log in [&log_a, &log_b] {
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// ">10 errors in 5 minutes" counts the errors every replica took in: ten errors split over two
/// replicas of one database, then the eleventh on either is High.
#[tokio::test]
async fn the_rate_window_counts_the_errors_every_replica_took_in() {
    use std::sync::Arc;

    use paiid_alerts::testing::clock::ManualClock;
    use support::{AppOptions, START_MS, spawn_with};

    let Some(admin) = support::postgres_admin_url() else {
        return;
    };
    let url = support::fresh_postgres_database(&admin).await;
    let clock = Arc::new(ManualClock::new(START_MS));
    let replica = |url: String| AppOptions {
        clock: Some(clock.clone()),
        run_workers: false,
        tweak: Some(Box::new(move |s| s.database_url = url)),
        ..AppOptions::default()
    };
    let a = spawn_with(replica(url.clone())).await;
    let b = spawn_with(replica(url.clone())).await;
    let error = |i: usize| {
        let mut v = fixture_json("error.created.1.json");
        v["data"]["error"]["event_id"] = format!("split-{i}").into();
        serde_json::to_vec(&v).unwrap()
    };
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app.post_sentry(Some("error"), &error(i)).await;
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["severity"], "unclassified", "error {i}: {body}");
    }
    let r = a.post_sentry(Some("error"), &error(10)).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["severity"], "high",
        "the 11th error in 5 minutes, five of the ten before taken in by the other replica"
    );
}
