//! Storage faults: a write that fails must never silence the pager. Intake answers 503 with
//! `Retry-After` while the database cannot be written, `/readyz` fails, nothing answered 2xx is
//! lost, and intake, escalations and the outbox resume by themselves once the cause is gone.
//!
//! The tests that need a real file system fault (a full tmpfs, an ext4 image forced read-only
//! by the kernel's error trigger) mount one, so they need root; elsewhere they say so and pass.
//! CI runs as root.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use paiid_alerts::testing::settings::{Secret, Secrets};
use serde_json::Value;
use support::fake_pagerduty::FakePagerDuty;
use support::fake_slack::{self, FakeSlack};
use support::smtp::SmtpSink;
use support::*;

const MIN: Duration = Duration::from_secs(60);

/// A signed-off critical alert for its own Sentry issue, `pad` bytes larger than the fixture so
/// that storing it needs fresh database pages.
fn critical(issue: &str, pad: usize) -> Vec<u8> {
    let mut v = fixture_json("event_alert.triggered.4.json");
    v["data"]["event"]["issue_id"] = issue.into();
    v["data"]["event"]["event_id"] = format!("evt-{issue}").into();
    // Random text: bodies are stored compressed, and a run of one letter would shrink to a few
    // bytes and no longer need the pages these tests take away.
    let mut rng = fastrand::Rng::with_seed(pad as u64 ^ issue.len() as u64);
    let padding: String = (0..pad).map(|_| rng.alphanumeric()).collect();
    v["data"]["event"]["extra"] = serde_json::json!({ "padding": padding });
    serde_json::to_vec(&v).unwrap()
}

async fn status_of(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.client.get(app.url(path)).send().await.expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn metrics(app: &TestApp) -> String {
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

async fn stored(app: &TestApp, issue: &str) -> bool {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE dedup_key LIKE ?")
        .bind(format!("%evt-{issue}%"))
        .fetch_one(paiid_alerts::testing::read_pool(&app.state.store))
        .await
        .expect("count");
    n == 1
}

#[tokio::test]
async fn a_write_sqlite_rolled_back_by_itself_does_not_wedge_intake() {
    let app = spawn_app().await;
    let r = app
        .post_sentry(Some("event_alert"), &critical("910001", 0))
        .await;
    assert_eq!(r.status(), 200);

    // Cap the database at its size on the one write connection: the next write that needs a
    // page fails with SQLITE_FULL, and SQLite rolls the transaction back by itself (as on a
    // full disk). sqlx's ROLLBACK then fails, which used to leave the connection unusable.
    let mut tx = app.state.store.begin_write().await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(paiid_alerts::testing::sqlite_conn(&mut tx))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA max_page_count = {pages}"
    )))
    .execute(paiid_alerts::testing::sqlite_conn(&mut tx))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let r = app
        .post_sentry(Some("event_alert"), &critical("910002", 200_000))
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");

    let (ready, why) = status_of(&app, "/readyz").await;
    assert_eq!(ready, 503, "{why}");
    assert!(
        why["detail"]
            .as_str()
            .unwrap_or("")
            .contains("cannot be written"),
        "{why}"
    );
    assert_eq!(
        status_of(&app, "/healthz").await.0,
        200,
        "liveness stays up"
    );
    assert!(metrics(&app).await.contains("paiid_storage_writable 0"));

    // The failed connection was replaced (and its page cap with it): the very next write works.
    let r = app
        .post_sentry(Some("event_alert"), &critical("910003", 200_000))
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(status_of(&app, "/readyz").await.0, 200);
    let m = metrics(&app).await;
    assert!(m.contains("paiid_storage_writable 1"), "{m}");
    assert!(
        !m.contains("paiid_storage_write_failures_total 0"),
        "the failure is counted: {m}"
    );
    assert!(stored(&app, "910001").await && stored(&app, "910003").await);
    assert!(!stored(&app, "910002").await, "a 503 stored nothing");
}

// ---- real file system faults (root) ----

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A mount made by a test, lazily unmounted when dropped (even after a failed assertion).
struct Mounted {
    dir: Arc<tempfile::TempDir>,
    image: Option<PathBuf>,
    /// Loop devices attached for the image, detached on drop.
    loops: std::sync::Mutex<Vec<String>>,
}

impl Mounted {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tmpfs(size: &str) -> Result<Self, String> {
        let dir = Arc::new(tempfile::tempdir().map_err(|e| e.to_string())?);
        let path = dir.path().to_string_lossy().to_string();
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &path],
        )?;
        Ok(Self {
            dir,
            image: None,
            loops: Default::default(),
        })
    }

    /// An ext4 image on a loop device that the kernel turns read-only on its first error.
    fn ext4_remount_ro_on_error(image_dir: &Path) -> Result<Self, String> {
        let image = image_dir.join("fs.ext4");
        run("truncate", &["-s", "64M", &image.to_string_lossy()])?;
        run("mkfs.ext4", &["-q", "-F", &image.to_string_lossy()])?;
        let dir = Arc::new(tempfile::tempdir().map_err(|e| e.to_string())?);
        let me = Self {
            dir,
            image: Some(image),
            loops: Default::default(),
        };
        me.mount_image()?;
        Ok(me)
    }

    /// Mounts the image through a loop device of its own: a new one each time, so a remount
    /// after an error gets a fresh file system instance, not the broken one still held open.
    fn mount_image(&self) -> Result<(), String> {
        let image = self.image.as_ref().ok_or("not an image")?;
        let out = Command::new("losetup")
            .args(["-f", "--show", &image.to_string_lossy()])
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!("losetup: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if let Ok(mut loops) = self.loops.lock() {
            loops.push(dev.clone());
        }
        run(
            "mount",
            &[
                "-o",
                "errors=remount-ro",
                &dev,
                &self.path().to_string_lossy(),
            ],
        )
    }

    /// The kernel's own file system error path (`errors=remount-ro`): the file system turns
    /// read-only under the running service, as on a failing disk.
    fn trigger_fs_error(&self) -> Result<(), String> {
        let out = Command::new("findmnt")
            .args(["-no", "SOURCE", &self.path().to_string_lossy()])
            .output()
            .map_err(|e| e.to_string())?;
        let source = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let dev = source.rsplit('/').next().unwrap_or_default().to_string();
        std::fs::write(
            format!("/sys/fs/ext4/{dev}/trigger_fs_error"),
            "paiid-alerts fault test\n",
        )
        .map_err(|e| format!("trigger_fs_error on {dev}: {e}"))
    }

    /// What an operator does after a disk error: detach the broken mount, check the file
    /// system, mount it again in the same place. The service keeps running throughout.
    fn repair_and_remount(&self) -> Result<(), String> {
        run("umount", &["-l", &self.path().to_string_lossy()])?;
        let image = self.image.as_ref().ok_or("not an image")?;
        // Exit code 1 means "errors corrected": expected after a forced error.
        let _ = Command::new("e2fsck")
            .args(["-fy", &image.to_string_lossy()])
            .output();
        self.mount_image()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", &self.path().to_string_lossy()]);
        if let Ok(loops) = self.loops.lock() {
            for dev in loops.iter() {
                let _ = run("losetup", &["-d", dev]);
            }
        }
    }
}

fn skip(why: &str) {
    eprintln!(
        "SKIPPED: {why} (these fault tests mount file systems and need root; CI runs as root)"
    );
}

fn routing(slack: &FakeSlack, pd: &FakePagerDuty) -> String {
    format!(
        r##"
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", bot_token: "{token}" }}
  pagerduty-oncall: {{ type: pagerduty, routing_key: "{key}", events_url: "{pd_url}" }}
  eng-manager-email: {{ type: email, to: ["eng-manager@paiid.ai"] }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts], escalate_after: 15m, escalate_to: [pagerduty-oncall, eng-manager-email] }}
delivery:
  retry_schedule: [1s]
  send_timeout: 3s
# These tests count one card and one page per incident through an outage: storm groups off
# (tests/storms.rs covers them).
storm:
  enabled: false
"##,
        token = slack.bot_token(),
        key = pd.routing_key(),
        pd_url = pd.enqueue_url(),
    )
}

struct World {
    app: TestApp,
    slack: FakeSlack,
    pd: FakePagerDuty,
    smtp: SmtpSink,
}

async fn world_in(dir: Arc<tempfile::TempDir>) -> World {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let slack = FakeSlack::start().await;
    slack.add_channel("#paiid-alerts", fake_slack::CHANNEL_ID);
    slack.set_rate_limit(false);
    let pd = FakePagerDuty::start().await;
    let smtp = SmtpSink::start().await;
    let api = slack.api_base();
    let app = spawn_with(AppOptions {
        routing: routing(&slack, &pd),
        secrets: Secrets {
            smtp_url: Some(Secret::new(smtp.url())),
            ..Secrets::default()
        },
        dir: Some(dir),
        tweak: Some(Box::new(move |s| s.slack_api_url = api)),
        ..AppOptions::default()
    })
    .await;
    World {
        app,
        slack,
        pd,
        smtp,
    }
}

/// Webhooks posted during a fault: each is answered 2xx (and must be stored) or 503.
#[derive(Default)]
struct Tally {
    accepted: Vec<String>,
    refused: usize,
}

impl Tally {
    async fn post(&mut self, app: &TestApp, issue: String, pad: usize) {
        let r = app
            .post_sentry(Some("event_alert"), &critical(&issue, pad))
            .await;
        match r.status().as_u16() {
            200 => self.accepted.push(issue),
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                self.refused += 1;
            }
            other => panic!("webhook {issue} answered {other}: {:?}", r.text().await),
        }
    }
}

async fn wait_ready(app: &TestApp, want: u16, within: Duration) {
    eventually(within, || async {
        (status_of(app, "/readyz").await.0 == want).then_some(())
    })
    .await;
}

fn triggers(pd: &FakePagerDuty) -> usize {
    pd.events()
        .iter()
        .filter(|e| e["event_action"] == "trigger")
        .count()
}

/// Opens a critical incident, breaks storage with `break_it`, keeps posting and lets its
/// escalation fall due while broken, mends storage with `mend_it`, and checks that everything
/// resumed without a restart and that every 2xx is stored.
async fn survive(
    w: &World,
    break_it: impl FnOnce() -> Result<(), String>,
    mend_it: impl FnOnce() -> Result<(), String>,
) {
    let app = &w.app;
    let r = app
        .post_sentry(Some("event_alert"), &critical("920000", 0))
        .await;
    assert_eq!(r.status(), 200);
    eventually(Duration::from_secs(10), || async {
        (!w.slack.messages().is_empty()).then_some(())
    })
    .await;

    break_it().expect("break storage");
    let mut tally = Tally::default();
    for i in 0..20 {
        tally.post(app, format!("94{i:04}"), 50_000).await;
    }
    assert!(
        tally.refused > 0,
        "storage broke, yet every webhook was taken"
    );
    wait_ready(app, 503, Duration::from_secs(5)).await;
    assert_eq!(status_of(app, "/healthz").await.0, 200);
    assert!(metrics(app).await.contains("paiid_storage_writable 0"));
    // The escalations fall due while storage is broken: the first incident's, and those of the
    // incidents taken before the disk ran out of room (bodies differ in size, so some may fit).
    let escalating = 1 + tally.accepted.len();
    app.clock.advance(16 * MIN);
    tokio::time::sleep(Duration::from_millis(500)).await;

    mend_it().expect("mend storage");
    wait_ready(app, 200, Duration::from_secs(10)).await;
    for i in 0..5 {
        let issue = format!("93{i:04}");
        let r = app
            .post_sentry(Some("event_alert"), &critical(&issue, 1_000))
            .await;
        assert_eq!(r.status(), 200, "after recovery: {:?}", r.text().await);
        tally.accepted.push(issue);
    }
    // Each escalation fires once, and the outbox delivers them and the new incidents' cards.
    eventually(Duration::from_secs(15), || async {
        (triggers(&w.pd) == escalating).then_some(())
    })
    .await;
    let mails = w.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        mails[0]
            .header("To")
            .unwrap_or_default()
            .contains("eng-manager")
    );
    let fired: i64 = app.scalar("SELECT COUNT(*) FROM escalations").await;
    assert_eq!(fired, escalating as i64, "due once, fired once");
    let expected_cards = 1 + tally.accepted.len();
    eventually(Duration::from_secs(20), || async {
        // Slack is paced at one message a second on the service's clock: let it pass.
        app.clock.advance(Duration::from_secs(1));
        // Cards due together go out as one bundle: count the incidents told, not the posts.
        let told: i64 = app
            .scalar(
                "SELECT COUNT(*) FROM deliveries \
                 WHERE channel = 'slack-alerts' AND status = 'delivered'",
            )
            .await;
        (told >= expected_cards as i64).then_some(())
    })
    .await;
    assert_eq!(
        triggers(&w.pd),
        escalating,
        "each escalation paged exactly once"
    );
    let keys: std::collections::HashSet<String> =
        w.pd.events()
            .iter()
            .filter(|e| e["event_action"] == "trigger")
            .map(|e| e["dedup_key"].to_string())
            .collect();
    assert_eq!(keys.len(), escalating, "one trigger per incident");
    for issue in &tally.accepted {
        assert!(
            stored(app, issue).await,
            "webhook {issue} was answered 2xx but is not stored"
        );
    }
    eprintln!(
        "fault survived: {} accepted, {} refused with 503, {escalating} escalations, {} Slack posts",
        tally.accepted.len(),
        tally.refused,
        w.slack.messages().len()
    );
}

#[tokio::test]
async fn a_full_disk_refuses_with_503_and_recovers_without_restart() {
    let mounted = match Mounted::tmpfs("6m") {
        Ok(m) => m,
        Err(e) => return skip(&e),
    };
    let w = world_in(mounted.dir.clone()).await;
    let filler = mounted.path().join("filler");
    let fill = filler.clone();
    survive(
        &w,
        move || {
            use std::io::Write;
            let mut f = std::fs::File::create(&fill).map_err(|e| e.to_string())?;
            let chunk = vec![0u8; 64 * 1024];
            // Until the file system says it is full.
            while f.write_all(&chunk).is_ok() {}
            let _ = f.sync_all();
            Ok(())
        },
        move || std::fs::remove_file(&filler).map_err(|e| e.to_string()),
    )
    .await;
    drop(w);
    drop(mounted);
}

#[tokio::test]
async fn a_file_system_gone_read_only_refuses_with_503_and_recovers_without_restart() {
    let scratch = tempfile::tempdir().unwrap();
    let mounted = match Mounted::ext4_remount_ro_on_error(scratch.path()) {
        Ok(m) => m,
        Err(e) => return skip(&e),
    };
    let w = world_in(mounted.dir.clone()).await;
    survive(
        &w,
        || mounted.trigger_fs_error(),
        || mounted.repair_and_remount(),
    )
    .await;
    drop(w);
    drop(mounted);
}

#[tokio::test]
async fn start_up_on_a_full_disk_waits_for_space_instead_of_wedging_or_exiting() {
    let mounted = match Mounted::tmpfs("6m") {
        Ok(m) => m,
        Err(e) => return skip(&e),
    };
    let first = spawn_with(AppOptions {
        dir: Some(mounted.dir.clone()),
        ..AppOptions::default()
    })
    .await;
    let r = first
        .post_sentry(Some("event_alert"), &critical("950001", 0))
        .await;
    assert_eq!(r.status(), 200);
    first.stop().await;

    let filler = mounted.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
    }
    let dir = mounted.dir.clone();
    let starting = tokio::spawn(async move {
        spawn_with(AppOptions {
            dir: Some(dir),
            ..AppOptions::default()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let app = if starting.is_finished() {
        // SQLite could open without growing a file (its shared-memory file was still there):
        // then the service runs, and says it is not ready until it can write.
        let app = starting.await.expect("join");
        wait_ready(&app, 503, Duration::from_secs(5)).await;
        std::fs::remove_file(&filler).unwrap();
        wait_ready(&app, 200, Duration::from_secs(10)).await;
        app
    } else {
        std::fs::remove_file(&filler).unwrap();
        tokio::time::timeout(Duration::from_secs(20), starting)
            .await
            .expect("starts once space returns")
            .expect("join")
    };
    assert_eq!(status_of(&app, "/readyz").await.0, 200);
    let r = app
        .post_sentry(Some("event_alert"), &critical("950002", 0))
        .await;
    assert_eq!(r.status(), 200);
    assert!(stored(&app, "950001").await && stored(&app, "950002").await);
    drop(app);
    drop(mounted);
}
