use super::*;

const REPO_ROUTING: &str = include_str!("../../routing.yaml");

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<RoutingConfig, ConfigError> {
    RoutingConfig::parse(Path::new("routing.yaml"), text, &no_env)
}

#[test]
fn repository_routing_file_is_valid_and_reproduces_the_matrix() {
    let cfg = parse(REPO_ROUTING).expect("routing.yaml must be valid");
    assert_eq!(cfg.rules.len(), 5);
    // First, so that no other rule pages on the service's own errors (the loop guard).
    assert_eq!(cfg.rules[0].name, "paiid-alerts-self-monitoring");
    assert_eq!(cfg.rules[0].severity, Severity::Low);
    assert_eq!(
        cfg.rules[0].when.tags.get("service").map(String::as_str),
        Some("paiid-alerts")
    );
    assert!(cfg.policy(Severity::Low).notify.is_empty());
    assert!(cfg.policy(Severity::Low).escalate_to.is_empty());
    assert_eq!(cfg.rules[1].severity, Severity::Critical);
    assert_eq!(
        cfg.rules[1].when.environments.as_deref(),
        Some(&["prod".to_string(), "production".to_string()][..])
    );
    let critical = cfg.policy(Severity::Critical);
    assert_eq!(critical.notify, vec!["slack-alerts"]);
    assert_eq!(critical.escalate_after_ms, Some(15 * 60_000));
    assert_eq!(
        critical.escalate_to,
        vec!["pagerduty-oncall", "eng-manager-email"]
    );
    let high = cfg.policy(Severity::High);
    assert_eq!(high.escalate_after_ms, Some(60 * 60_000));
    assert_eq!(
        cfg.policy(Severity::Medium).digest,
        Some(DigestCadence::Daily)
    );
    // No secrets in the environment: Slack and PagerDuty are unconfigured, not errors.
    let missing: Vec<_> = cfg
        .unconfigured_channels()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(missing.contains(&"slack-alerts".to_string()));
    assert!(missing.contains(&"pagerduty-oncall".to_string()));
}

#[test]
fn env_interpolation_configures_channels() {
    let env = |n: &str| match n {
        "SLACK_WEBHOOK_URL" => Some("http://127.0.0.1:9/hook".to_string()),
        _ => None,
    };
    let cfg = RoutingConfig::parse(Path::new("r.yaml"), REPO_ROUTING, &env).unwrap();
    let slack = &cfg.channels["slack-alerts"];
    assert!(slack.is_configured());
    assert_eq!(
        slack.webhook_url.as_deref(),
        Some("http://127.0.0.1:9/hook")
    );
    assert!(
        !format!("{slack:?}").contains("127.0.0.1:9/hook"),
        "Debug must not print secrets"
    );
}

fn expect_error(text: &str, line: Option<u64>, needle: &str) {
    let e = parse(text).expect_err("should be invalid");
    let shown = e.to_string();
    assert!(shown.starts_with("routing.yaml:"), "{shown}");
    assert!(
        shown.contains(needle),
        "`{shown}` should mention `{needle}`"
    );
    if line.is_some() {
        assert_eq!(e.line, line, "{shown}");
    }
}

#[test]
fn unknown_key_names_the_line() {
    let text = "channels:\n  a: { type: log }\nrules: []\nseverities: {}\nbogus: 1\n";
    expect_error(text, Some(5), "bogus");
}

#[test]
fn bad_duration_names_the_line() {
    let text = "channels:\n  a: { type: log }\nseverities:\n  critical:\n    notify: [a]\n    escalate_after: 15x\n    escalate_to: [a]\n";
    expect_error(text, Some(6), "bad duration");
}

#[test]
fn missing_channel_names_the_line() {
    let text = "channels:\n  a: { type: log }\nseverities:\n  critical:\n    notify: [a, nope]\n";
    expect_error(text, Some(5), "nope");
}

#[test]
fn severity_without_policy_names_the_rule() {
    let text = "channels:\n  a: { type: log }\nrules:\n  - name: r\n    severity: high\n    when: { level: error }\nseverities:\n  critical: { notify: [a] }\n";
    expect_error(text, Some(5), "no policy");
}

#[test]
fn escalation_needs_both_window_and_targets() {
    let text = "channels:\n  a: { type: log }\nseverities:\n  critical: { notify: [a], escalate_after: 5m }\n";
    expect_error(text, None, "escalate_to");
}

#[test]
fn digest_must_target_email_and_have_valid_cron() {
    let text = "channels:\n  s: { type: slack, channel: \"#x\", webhook_url: \"http://x\" }\nseverities: {}\ndigest:\n  schedule: \"0 0 8 * * *\"\n  to: [s]\n";
    expect_error(text, Some(6), "not an email channel");
    let text = "channels:\n  e: { type: email, to: [a@b.io] }\nseverities: {}\ndigest:\n  schedule: \"not a cron\"\n  to: [e]\n";
    expect_error(text, Some(5), "digest");
    let text = "channels:\n  e: { type: email, to: [a@b.io] }\nseverities: {}\ndigest:\n  schedule: \"0 0 8 * * *\"\n  to: []\n";
    expect_error(text, Some(5), "digest.to is empty");
}

#[test]
fn bad_email_and_unknown_type_are_rejected() {
    expect_error(
        "channels:\n  e: { type: email, to: [nobody] }\n",
        None,
        "not an email address",
    );
    expect_error(
        "channels:\n  e: { type: carrier-pigeon }\n",
        Some(2),
        "carrier-pigeon",
    );
}

#[test]
fn digest_schedules_are_parsed_once_and_kept() {
    let text = "channels:\n  e: { type: email, to: [a@b.io] }\nseverities: {}\ndigest:\n  schedule: \"0 0 8 * * *\"\n  timezone: America/New_York\n  weekly_schedule: \"0 0 9 * * MON\"\n  to: [e]\n";
    let cfg = parse(text).unwrap();
    let digest = cfg.digest.unwrap();
    assert_eq!(digest.schedule.expression(), "0 0 8 * * *");
    assert_eq!(digest.schedule.timezone(), chrono_tz::America::New_York);
    let weekly = digest.weekly_schedule.unwrap();
    assert_eq!(weekly.expression(), "0 0 9 * * MON");
    assert_eq!(weekly.timezone(), chrono_tz::America::New_York);
}

#[test]
fn notification_templates_are_compiled_once_and_kept() {
    let text = "channels:\n  s: { type: slack, channel: \"#x\", webhook_url: \"http://x\" }\nseverities: {}\ntemplates:\n  slack_text: \"{{ headline }}\"\n";
    let cfg = parse(text).unwrap();
    assert!(cfg.templates.is_overridden("slack_text"));
    assert!(!cfg.templates.is_overridden("email_text"));
}

const BASE: &str = r##"
channels:
  slack: { type: slack, channel: "#a", webhook_url: "https://hooks.slack.com/services/T/B/x" }
  pd: { type: pagerduty, routing_key: "k" }
"##;

fn with(extra: &str) -> Result<RoutingConfig, ConfigError> {
    parse(&format!("{BASE}{extra}"))
}

#[test]
fn the_default_file_holds_nyse_hours_and_watches_the_pipeline() {
    let cfg = parse(REPO_ROUTING).unwrap();
    let nyse = &cfg.intervals["nyse-regular"];
    assert_eq!(
        nyse.renotify_at_start,
        vec![Severity::Critical, Severity::High]
    );
    // Friday 2026-05-29 10:00 in New York is inside, 16:00 is not; the 4th of July (observed
    // on Friday the 3rd) is a holiday.
    assert!(nyse.contains(1_780_063_200_000));
    assert!(!nyse.contains(1_780_063_200_000 + 6 * 3_600_000));
    assert!(!nyse.contains(1_783_087_200_000));
    let h = cfg.watch.heartbeat.as_ref().unwrap();
    assert_eq!(h.expect_within_ms, 6 * 3_600_000);
    assert_eq!(h.during.as_ref().unwrap().name, "nyse-regular");
    assert_eq!(cfg.watch.contract.as_ref().unwrap().max_slow_or_failed, 500);
    assert!(
        cfg.watch.canary.is_none(),
        "on once the backend sends canaries"
    );
}

#[test]
fn lifecycle_settings_are_frozen_into_the_policy_and_checked() {
    let cfg = with(
        "severities:\n  critical: { notify: [slack], escalate_after: 15m, escalate_to: [pd], ack_timeout: 30m, reack_on_rate: 3, confirm_within: 2m }\n",
    )
    .unwrap();
    let p = cfg.policy(Severity::Critical);
    assert_eq!(p.ack_timeout_ms, Some(1_800_000));
    assert_eq!(p.reack_on_rate, Some(3.0));
    assert_eq!(p.confirm_within_ms, Some(120_000));
    for (bad, says) in [
        ("ack_timeout: 0s", "zero `ack_timeout`"),
        ("reack_on_rate: 1", "a factor above 1"),
        ("confirm_within: 0s", "zero `confirm_within`"),
    ] {
        let text = format!(
            "severities:\n  critical: {{ notify: [slack], escalate_after: 15m, escalate_to: [pd], {bad} }}\n"
        );
        let e = with(&text).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let e = with("severities:\n  critical: { notify: [slack], confirm_within: 2m }\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no `escalate_to` channels to fail over to"),
        "{e}"
    );
}

#[test]
fn time_conditions_and_windows_name_defined_intervals() {
    let intervals = "time_intervals:\n  hours: { timezone: UTC, times: [{ start: \"09:00\", end: \"17:00\" }] }\n";
    let cfg = with(&format!(
        "{intervals}rules:\n  - name: r\n    severity: critical\n    when: {{ level: error, during: hours }}\nseverities:\n  critical: {{ notify: [slack], escalate_after: 15m, escalate_to: [pd], escalate_after_during: {{ hours: 5m }} }}\n"
    ))
    .unwrap();
    // 2026-05-28 10:00 UTC is inside, 20:00 outside.
    let (inside, outside) = (1_779_962_400_000, 1_779_998_400_000);
    assert!(cfg.rules[0].when.in_time(inside));
    assert!(!cfg.rules[0].when.in_time(outside));
    assert_eq!(
        cfg.policy_at(Severity::Critical, inside).escalate_after_ms,
        Some(300_000)
    );
    assert_eq!(
        cfg.policy_at(Severity::Critical, outside).escalate_after_ms,
        Some(900_000)
    );
    let e = with("rules:\n  - name: r\n    severity: critical\n    when: { during: nope }\nseverities:\n  critical: { notify: [slack] }\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rule `r`: `during: nope` names no interval"),
        "{e}"
    );
    let e = with("time_intervals:\n  x: { timezone: Mars/Olympus }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown timezone `Mars/Olympus`"), "{e}");
    let e = with("heartbeat: { expect_within: 6h, during: nope }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`heartbeat.during: nope`"), "{e}");
}

#[test]
fn a_sentry_channel_needs_its_organization_and_token_but_not_its_installation() {
    let env = |name: &str| (name == "TOKEN").then(|| "t".to_string());
    let cfg = RoutingConfig::parse(
        Path::new("routing.yaml"),
        &format!("{BASE}  s: {{ type: sentry, organization: paiid, api_token: \"${{TOKEN}}\", installation_uuid: \"${{UUID}}\" }}\n"),
        &env,
    )
    .unwrap();
    let sync = cfg.channels["s"].sentry.as_ref().expect("on");
    assert_eq!(sync.api_url, "https://sentry.io");
    assert_eq!(sync.installation_uuid, None);
    let e = with("  s: { type: sentry, organization: paiid }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs `organization` and `api_token`"), "{e}");
}

#[test]
fn a_sentry_channel_pages_nobody_so_no_policy_or_watch_may_name_it() {
    let s = "  s: { type: sentry, organization: paiid, api_token: t }\n";
    let e = with(&format!("{s}severities:\n  critical: {{ notify: [s] }}\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a `type: sentry` channel"), "{e}");
    let e = with(&format!(
        "{s}heartbeat: {{ expect_within: 1h, notify: [s] }}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("pages nobody"), "{e}");
    // A self-hosted URL that is not set keeps the sync off rather than calling sentry.io.
    let cfg = with(
        "  s: { type: sentry, organization: paiid, api_token: t, api_url: \"${SENTRY_URL}\" }\n",
    )
    .unwrap();
    assert!(cfg.channels["s"].sentry.is_none());
}
