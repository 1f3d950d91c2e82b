//! The real binary as an operator runs it: crash recovery with SIGKILL, logs free of secrets,
//! and the CLI's exit codes and messages.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::fake_slack::{self, FakeSlack};
use support::service::{BIN, Service};
use support::{eventually, fixture_json};
use tokio::process::Command;

fn routing(slack: &FakeSlack) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", webhook_url: "${{SLACK_WEBHOOK_URL}}" }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts] }}
delivery:
  retry_schedule: [1s]
  send_timeout: 1s
# {}
"##,
        slack.url()
    )
}

#[tokio::test]
async fn killed_between_claim_and_send_is_delivered_after_restart() {
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routing.yaml"), routing(&slack)).unwrap();
    let envs = [("SLACK_WEBHOOK_URL", slack.webhook_url())];
    // The first send hangs: the worker has claimed the row and is mid-send when we kill it.
    slack.fail_next(1, fake_slack::Behaviour::Hang(Duration::from_secs(30)));
    let mut svc = Service::start(dir.path(), &envs, 1).await;
    let body = serde_json::to_vec(&fixture_json("event_alert.triggered.4.json")).unwrap();
    let client = paiid_alerts::testing::http_client::client().unwrap();
    let r = client
        .post(format!("{}/webhooks/sentry", svc.base))
        .header("Sentry-Hook-Resource", "event_alert")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = format!("{}/api/deliveries", svc.base);
    let attempts_before = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let url = url.clone();
        async move {
            let v: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
            let d = &v["deliveries"][0];
            (d["status"] == "sending").then(|| d["attempts"].as_i64().unwrap_or(0))
        }
    })
    .await;
    svc.kill9();
    let _ = svc.child.wait().await;

    let svc = Service::start(dir.path(), &envs, 2).await;
    // The lease (2 x send timeout + 5 s) runs out, the row is claimed again and sent.
    let url = format!("{}/api/deliveries", svc.base);
    eventually(Duration::from_secs(20), || {
        let client = client.clone();
        let url = url.clone();
        async move {
            let v: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
            (v["deliveries"][0]["status"] == "delivered").then_some(())
        }
    })
    .await;
    // The send cut off by the kill left no attempt behind. The kill may land after the claim but
    // before the request left; then the scripted hang is still queued and times out once more
    // after the restart. Either way the last attempt delivers and no attempt is invented.
    let detail: Value = client
        .get(format!("{}/api/incidents/1", svc.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = detail["deliveries"][0]["attempt_log"]
        .as_array()
        .unwrap()
        .clone();
    let after_restart = &log[attempts_before as usize..];
    let outcomes: Vec<&str> = after_restart
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert!(
        (outcomes == ["delivered"] || outcomes == ["retry", "delivered"])
            && slack.accepted_count() == 1,
        "{}",
        detail["deliveries"]
    );
    svc.stop().await;
}

#[tokio::test]
async fn secrets_never_appear_in_logs_or_messages() {
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routing.yaml"), routing(&slack)).unwrap();
    let client_secret = "SENTRY-CLIENT-SECRET-9f8e7d".to_string();
    let envs = [
        ("SLACK_WEBHOOK_URL", slack.webhook_url()),
        ("SENTRY_CLIENT_SECRET", client_secret.clone()),
        ("API_TOKEN", "API-TOKEN-5a4b3c".to_string()),
        (
            "SMTP_URL",
            "smtp://mailer:SMTP-PASSWORD-1q2w@127.0.0.1:1".to_string(),
        ),
        ("ACK_SIGNING_KEY", "ab".repeat(32)),
    ];
    // One failure so that error paths log too.
    slack.fail_next(1, fake_slack::Behaviour::Status(500));
    let svc = Service::start(dir.path(), &envs, 1).await;
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["request"]["headers"] =
        serde_json::json!([["Authorization", "Bearer sk_live_EVENTSECRET"]]);
    v["data"]["event"]["extra"]["password"] = "EVENT-PASSWORD-xyz".into();
    let body = serde_json::to_vec(&v).unwrap();
    let sig = paiid_alerts::testing::intake::signature::sign(client_secret.as_bytes(), &body);
    let client = paiid_alerts::testing::http_client::client().unwrap();
    let r = client
        .post(format!("{}/webhooks/sentry", svc.base))
        .header("Sentry-Hook-Resource", "event_alert")
        .header("Sentry-Hook-Signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{}/api/incidents", svc.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // First attempt fails (500), the retry 1 s later succeeds.
    eventually(Duration::from_secs(15), || async {
        (slack.accepted_count() == 1).then_some(())
    })
    .await;
    let log = svc.stop().await;
    assert!(
        log.contains("delivery failed; will retry"),
        "the failure was logged: {log}"
    );
    let mut everything = log.clone();
    for r in slack.requests() {
        everything.push_str(&r.body);
    }
    for secret in [
        "SENTRY-CLIENT-SECRET-9f8e7d",
        "API-TOKEN-5a4b3c",
        "SMTP-PASSWORD-1q2w",
        &"ab".repeat(32),
        "/services/T000/B000/XXXX",
        "sk_live_EVENTSECRET",
        "EVENT-PASSWORD-xyz",
    ] {
        assert!(
            !everything.contains(secret),
            "`{secret}` leaked into logs or messages"
        );
    }
}

#[tokio::test]
async fn check_config_names_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "channels:\n  a: { type: log }\nseverities:\n  critical:\n    notify: [a, nope]\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:5:", bad.display())) && err.contains("nope"),
        "{err}"
    );

    // `serve` refuses the same file with the same message.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    let good = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(support::repo_path("routing.yaml"))
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
}

#[tokio::test]
async fn serve_refuses_public_listen_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .env_remove("SENTRY_CLIENT_SECRET")
        .env_remove("SENTRY_WEBHOOK_TOKEN")
        .args(["serve", "--listen", "0.0.0.0:0", "--database-url"])
        .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
        .arg("--config")
        .arg(support::repo_path("routing.yaml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-unsigned-webhooks"));
}

#[tokio::test]
async fn serve_names_what_is_wrong_with_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_db = dir.path().join("not-a.db");
    std::fs::write(&not_a_db, "garbage").unwrap();
    for (url, expected) in [
        (
            "mysql://db/alerts".to_string(),
            "the database URL must start with `sqlite:`",
        ),
        (
            format!("sqlite://{}", not_a_db.display()),
            "file is not a database",
        ),
        (
            format!("sqlite://{}/missing/dir/x.db", dir.path().display()),
            "unable to open database file",
        ),
    ] {
        let out = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .arg("--config")
            .arg(support::repo_path("routing.yaml"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: opening database"), "{stderr}");
        assert_eq!(last.matches(expected).count(), 1, "said once: {last}");
    }
}

#[tokio::test]
async fn send_test_reports_the_outcome() {
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    let routing = support::repo_path("routing.yaml");
    let ok = Command::new(BIN)
        .args(["send-test", "--channel", "slack-alerts", "--config"])
        .arg(&routing)
        .env("SLACK_WEBHOOK_URL", slack.webhook_url())
        .output()
        .await
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("delivered"));
    assert_eq!(slack.messages().len(), 1);

    slack.fail_next(1, fake_slack::Behaviour::SlackError("channel_is_archived"));
    let bad = Command::new(BIN)
        .args(["send-test", "--channel", "slack-alerts", "--config"])
        .arg(&routing)
        .env("SLACK_WEBHOOK_URL", slack.webhook_url())
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("channel_is_archived"));

    let unconfigured = Command::new(BIN)
        .args(["send-test", "--channel", "pagerduty-oncall", "--config"])
        .arg(&routing)
        .env_remove("PAGERDUTY_ROUTING_KEY")
        .output()
        .await
        .unwrap();
    assert!(!unconfigured.status.success());
    assert!(String::from_utf8_lossy(&unconfigured.stderr).contains("PAGERDUTY_ROUTING_KEY"));
}

#[tokio::test]
async fn escalation_due_while_down_fires_once_after_restart() {
    use support::fake_pagerduty::FakePagerDuty;
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let routing = format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", webhook_url: "${{SLACK_WEBHOOK_URL}}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{url}" }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 2s, escalate_to: [pagerduty-oncall] }}
"##,
        key = pd.routing_key(),
        url = pd.enqueue_url()
    );
    std::fs::write(dir.path().join("routing.yaml"), routing).unwrap();
    let envs = [("SLACK_WEBHOOK_URL", slack.webhook_url())];
    let mut svc = Service::start(dir.path(), &envs, 1).await;
    let body = serde_json::to_vec(&fixture_json("event_alert.triggered.4.json")).unwrap();
    let client = paiid_alerts::testing::http_client::client().unwrap();
    let r = client
        .post(format!("{}/webhooks/sentry", svc.base))
        .header("Sentry-Hook-Resource", "event_alert")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The deadline was set at intake, before this answer: 2 s from here is past it.
    let deadline_passed = tokio::time::Instant::now() + Duration::from_millis(2_100);
    let id = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();
    // Crash well before the deadline; stay down past it. The binary runs on the system clock,
    // so being down past a 2 s deadline takes 2 s of real time: this sleep is the scenario,
    // not a wait for a worker (a dead process fires nothing, as checked first).
    svc.kill9();
    let _ = svc.child.wait().await;
    assert_eq!(pd.events().len(), 0, "not paged before the crash");
    tokio::time::sleep_until(deadline_passed).await;

    let svc = Service::start(dir.path(), &envs, 2).await;
    eventually(Duration::from_secs(10), || async {
        (pd.events().len() == 1).then_some(())
    })
    .await;
    let log = svc.stop().await;
    assert!(log.contains("fell due while the service was down"), "{log}");
    // Another restart finds nothing left to fire: the deadline was cleared in the transaction
    // that fired it, with its deliveries. (Ready no longer waits for start-up recovery, so this
    // reads no later than the scheduler's first pass; the escalation was on record before it.)
    let svc = Service::start(dir.path(), &envs, 3).await;
    let inc: Value = client
        .get(format!("{}/api/incidents/{id}", svc.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inc["escalations_fired"], 1, "{inc}");
    assert!(
        inc["next_escalation_at"].is_null(),
        "nothing left to fire: {inc}"
    );
    let to_pd: Vec<&Value> = inc["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "pagerduty-oncall")
        .collect();
    assert_eq!(to_pd.len(), 1, "one page, already sent: {inc}");
    assert_eq!(to_pd[0]["status"], "delivered", "{inc}");
    svc.stop().await;
    assert_eq!(
        pd.events().len(),
        1,
        "fired exactly once across crash and restarts"
    );
}

/// Opens a connection and sends the start of a request, one header line at a time, never
/// finishing it. Returns how long the server kept the connection open (capped at `limit`).
async fn trickle_headers(base: &str, limit: Duration) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    while started.elapsed() < limit {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                // Closed (possibly after a 408): the server gave up on us.
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return started.elapsed();
                }
            }
        }
    }
    limit
}

#[tokio::test]
async fn slow_clients_neither_hold_connections_nor_block_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("routing.yaml"),
        std::fs::read_to_string(support::repo_path("routing.yaml")).unwrap(),
    )
    .unwrap();
    // 3 s to send the headers (65 s by default: above load balancers' idle timeouts).
    let service = Service::start(dir.path(), &[("HTTP_HEADER_TIMEOUT", "3".into())], 1).await;

    // A client that never finishes its headers is cut off.
    let held = trickle_headers(&service.base, Duration::from_secs(25)).await;
    assert!(held < Duration::from_secs(8), "held for {held:?}");

    // Shutdown does not wait for such a client for ever.
    let base = service.base.clone();
    let slow = tokio::spawn(async move { trickle_headers(&base, Duration::from_secs(60)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let mut service = service;
    let pid = service.child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), service.child.wait())
        .await
        .expect("the service stops within its shutdown grace")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        started.elapsed()
    );
    let _ = slow.await;
}
