//! `paiid-alerts demo` as a new user runs it: the real binary, exit 0 within a bounded time,
//! every step of the story printed.

use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_paiid-alerts");

#[tokio::test]
async fn the_demo_tells_the_whole_story_and_exits_0() {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(BIN)
            .arg("demo")
            // Only the log channel: no real Slack, PagerDuty or mail from a test.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMPDIR", std::env::temp_dir())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the demo ended within 120 s")
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The narration reports what the service answered and stored (the incident's rule,
    // severity, event count, policy, acknowledgement, root cause), so these are its findings.
    let expected = [
        "clock x60",
        "web page:  http://127.0.0.1:",
        "[1/8] production error",
        "classified critical by rule `critical-production-errors` -> incident #1",
        "notified slack-alerts",
        "[2/8] error burst",
        "12 events: classified high by rule `high-error-rate`",
        "notified trading-ops-email",
        "[3/8] slow endpoint",
        "classified high by rule `slow-transactions`",
        "[4/8] Apdex regression",
        "classified medium by rule `apdex-regression` -> incident #4: no page, it goes in the daily digest",
        "[5/8] nobody acknowledges #1",
        "escalated at",
        "escalation notified pagerduty-oncall, eng-manager-email",
        "[6/8] the on-call engineer acknowledges",
        "acknowledged #1 by dana (on call): no further escalation",
        "[7/8] fixed: resolved with the root cause",
        "resolved #1; root cause: broker gateway pool exhausted",
        "post-mortem sent to slack-alerts",
        "[8/8] digest",
        "digest: daily manual digest",
        "sent (1 incidents",
        "done: http://127.0.0.1:",
    ];
    let mut from = 0;
    for line in expected {
        let at = stdout[from..]
            .find(line)
            .unwrap_or_else(|| panic!("`{line}` missing (or out of order) in:\n{stdout}"));
        from += at + line.len();
    }
    // The channels' messages went to the log (stderr), not to anyone.
    assert!(
        stderr.contains("this is what would have been sent"),
        "{stderr}"
    );
}

/// `demo --keep` stays up after the story; `SIGTERM` (a `docker stop`, a service manager) stops
/// it like Ctrl-C does, and either way its temporary directory is removed.
#[tokio::test]
async fn demo_keep_stops_on_sigterm_and_removes_its_directory() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let tmp = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--keep"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("The service keeps running at") {
                return;
            }
        }
        panic!("the demo ended without staying up:\n{seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("no `keeps running` line within 120 s:\n{seen}"));
    let dirs: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("paiid-alerts-demo-"))
        .collect();
    assert_eq!(dirs.len(), 1, "its temporary directory while up: {dirs:?}");

    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the demo did not stop within 20 s of SIGTERM")
        .unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(exit.success(), "{exit:?}\n{seen}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
