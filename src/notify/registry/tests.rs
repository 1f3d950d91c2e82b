use std::path::Path;
use std::sync::Arc;

use super::*;

fn env(smtp_url: Option<&str>) -> ChannelEnv {
    ChannelEnv {
        smtp_url: smtp_url.map(str::to_string),
        email_from: "alerts@paiid.ai".into(),
        slack_api_url: "http://127.0.0.1:9/api".into(),
        pagerduty_events_url: "http://127.0.0.1:9/v2/enqueue".into(),
    }
}

fn build(vars: &[(&str, &str)], smtp_url: Option<&str>) -> (RoutingConfig, Channels) {
    let text = include_str!("../../../routing.yaml");
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let cfg = RoutingConfig::parse(Path::new("routing.yaml"), text, &lookup).unwrap();
    let channels = Channels::build(&cfg, &env(smtp_url), Arc::new(Templates::defaults())).unwrap();
    (cfg, channels)
}

#[test]
fn every_log_only_channel_is_listed_with_why() {
    let (_, channels) = build(&[], None);
    let listed: Vec<(&str, &str)> = channels.log_only().collect();
    assert_eq!(
        listed,
        vec![
            ("eng-manager-email", "SMTP_URL is not set"),
            ("pagerduty-oncall", "PAGERDUTY_ROUTING_KEY is not set"),
            (
                "slack-alerts",
                "neither SLACK_WEBHOOK_URL nor SLACK_BOT_TOKEN is set"
            ),
            ("trading-ops-email", "SMTP_URL is not set"),
        ]
    );
}

#[test]
fn configured_channels_are_not_listed() {
    let (cfg, channels) = build(
        &[
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("PAGERDUTY_ROUTING_KEY", "R0UTINGKEY"),
        ],
        Some("smtp://127.0.0.1:2525"),
    );
    assert_eq!(channels.log_only().count(), 0);
    assert!(channels.log_only_in_policies(&cfg).is_empty());
}

#[test]
fn policies_naming_a_log_only_channel_are_found_by_field() {
    let (cfg, channels) = build(
        &[
            ("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("PAGERDUTY_ROUTING_KEY", "R0UTINGKEY"),
        ],
        None,
    );
    let found: Vec<String> = channels
        .log_only_in_policies(&cfg)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        vec![
            "severity high notify trading-ops-email, which only reaches the log (SMTP_URL is not set)",
            "severity high escalate_to eng-manager-email, which only reaches the log (SMTP_URL is not set)",
            "severity critical escalate_to eng-manager-email, which only reaches the log (SMTP_URL is not set)",
        ]
    );
}

#[test]
fn why_names_every_missing_variable() {
    assert_eq!(
        why_log_only(ChannelKind::Log, &[]),
        "it is a log channel (type: log)"
    );
    assert_eq!(
        why_log_only(ChannelKind::Email, &["OPS_TO".into(), "SMTP_URL".into()]),
        "OPS_TO and SMTP_URL are not set"
    );
}
