//! Honest configuration, through the binary: `check-config` lists every channel that will only
//! reach the log and why, `--strict` fails when a severity's policy names one, and `serve` on a
//! public address refuses to start without `PUBLIC_URL` (ack links would be unreachable).

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::repo_path;
use support::service::{BIN, Service};

/// The binary with an empty environment plus `envs`. Every command here should end by itself
/// within seconds: one still running after 20 s (a `serve` that started instead of refusing)
/// is killed and fails the test rather than hanging it.
fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`{}` still running after 20 s:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ALL_SET: &[(&str, &str)] = &[
    ("SMTP_URL", "smtp://127.0.0.1:2525"),
    (
        "SLACK_WEBHOOK_URL",
        "https://hooks.slack.com/services/T0/B0/X",
    ),
    ("PAGERDUTY_ROUTING_KEY", "R0UTINGKEY0000000000000000000000"),
];

#[test]
fn check_config_lists_every_channel_that_only_reaches_the_log() {
    let routing = repo_path("routing.yaml");
    let out = run(&["check-config", routing.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for line in [
        "  trading-ops-email: SMTP_URL is not set",
        "  eng-manager-email: SMTP_URL is not set",
        "  pagerduty-oncall: PAGERDUTY_ROUTING_KEY is not set",
        "  slack-alerts: neither SLACK_WEBHOOK_URL nor SLACK_BOT_TOKEN is set",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }

    // With only SMTP_URL missing, only the email channels are listed.
    let out = run(&["check-config", routing.to_str().unwrap()], &ALL_SET[1..]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("trading-ops-email: SMTP_URL is not set"),
        "{stdout}"
    );
    assert!(!stdout.contains("slack-alerts"), "{stdout}");
    assert!(!stdout.contains("pagerduty-oncall"), "{stdout}");
}

#[test]
fn strict_fails_when_a_policy_names_a_log_only_channel() {
    let routing = repo_path("routing.yaml");
    let path = routing.to_str().unwrap();
    let out = run(&["check-config", "--strict", path], &ALL_SET[1..]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("severity high notify trading-ops-email, which only reaches the log (SMTP_URL is not set)"),
        "{stderr}"
    );
    assert!(stderr.contains("escalate_to eng-manager-email"), "{stderr}");

    let out = run(&["check-config", "--strict", path], ALL_SET);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("only reach the log"), "{stdout}");
}

/// `ok` is the verdict, printed only once nothing is left to fail: not before a channel that
/// does not build (a malformed `SMTP_URL`) or a `--strict` refusal.
#[test]
fn check_config_never_says_ok_before_failing() {
    let routing = repo_path("routing.yaml");
    let path = routing.to_str().unwrap();
    let mut env = ALL_SET.to_vec();
    env[0] = ("SMTP_URL", "not a url");
    let out = run(&["check-config", path], &env);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("invalid SMTP URL not a url"), "{stderr}");
    assert!(
        !stdout.contains("ok"),
        "said ok, then failed:\n{stdout}{stderr}"
    );

    let out = run(&["check-config", "--strict", path], &ALL_SET[1..]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        !stdout.contains(": ok"),
        "said ok, then failed:\n{stdout}{stderr}"
    );
    // What the refusal is about is still listed.
    assert!(
        stdout.contains("trading-ops-email: SMTP_URL is not set"),
        "{stdout}"
    );

    let out = run(&["check-config", path], ALL_SET);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("{path}: ok (")), "{stdout}");
}

#[test]
fn serve_on_a_public_address_without_public_url_refuses_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let routing = repo_path("routing.yaml");
    let args = [
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--database-url",
        &db,
        "--config",
        routing.to_str().unwrap(),
    ];
    let out = run(&args, &[("SENTRY_CLIENT_SECRET", "s3cret")]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: refusing to listen on 0.0.0.0:0 without PUBLIC_URL"),
        "{stderr}"
    );

    // An empty PUBLIC_URL is no better.
    let out = run(
        &args,
        &[("SENTRY_CLIENT_SECRET", "s3cret"), ("PUBLIC_URL", " ")],
    );
    assert!(!out.status.success());
    assert!(text(&out).1.contains("PUBLIC_URL"));
}

#[tokio::test]
async fn serve_on_a_public_address_with_public_url_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--listen", "0.0.0.0:0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
        .arg("--config")
        .arg(repo_path("routing.yaml"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SENTRY_CLIENT_SECRET", "s3cret")
        .env("PUBLIC_URL", "https://alerts.paiid.ai");
    let svc = Service::spawn(cmd, dir.path().join("service.log")).await;
    svc.stop().await;
}

/// An explicit `PUBLIC_URL` naming 0.0.0.0 (copied from the listen address) is accepted, but
/// the log says that links built from it open nowhere.
#[tokio::test]
async fn serve_warns_when_public_url_names_0_0_0_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
        .arg("--config")
        .arg(repo_path("routing.yaml"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PUBLIC_URL", "http://0.0.0.0:8080");
    let svc = Service::spawn(cmd, dir.path().join("service.log")).await;
    let log = svc.stop().await;
    assert!(
        log.contains("PUBLIC_URL names 0.0.0.0"),
        "no warning in:\n{log}"
    );
}
