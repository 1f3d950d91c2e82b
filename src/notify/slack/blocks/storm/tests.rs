use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::super::*;
use crate::domain::{IncidentId, IncidentState};
use crate::notify::message::sample_storm;
use crate::notify::{Notification, NotificationKind};

fn storm(kind: NotificationKind, members: i64, projects: i64) -> Notification {
    let t = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let mut n = Notification::test_message(t);
    n.kind = kind;
    n.incident_id = IncidentId(42);
    n.dedup_key = "paiid-alerts-42-1".into();
    n.culprit = None;
    n.incident_url = "https://alerts.paiid.ai/incidents/42".into();
    n.ack_url = Some("https://alerts.paiid.ai/ack/abc.def".into());
    n.set_storm(sample_storm(members, projects));
    n
}

/// Slack's Block Kit limits, as the fake Slack server of the integration tests checks them.
fn assert_within_limits(blocks: &[Value]) {
    assert!(!blocks.is_empty() && blocks.len() <= MAX_BLOCKS);
    for b in blocks {
        let text = b["text"]["text"].as_str().unwrap_or_default();
        match b["type"].as_str().unwrap_or_default() {
            "header" => assert!(text.chars().count() <= MAX_HEADER_CHARS, "{b}"),
            "section" => {
                assert!(text.chars().count() <= MAX_SECTION_CHARS, "{b}");
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                assert!(fields.len() <= MAX_FIELDS, "{b}");
                for f in fields {
                    let t = f["text"].as_str().unwrap_or_default();
                    assert!(!t.is_empty() && t.chars().count() <= MAX_FIELD_CHARS, "{b}");
                }
            }
            "actions" | "context" => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    let label = e["text"]["text"].as_str().unwrap_or_default();
                    assert!(label.chars().count() <= MAX_BUTTON_TEXT_CHARS, "{e}");
                    let url = e["url"].as_str().unwrap_or_default();
                    assert!(url.chars().count() <= MAX_URL_CHARS, "{e}");
                }
            }
            other => panic!("unexpected block type {other}"),
        }
    }
}

fn text_of(blocks: &[Value]) -> String {
    serde_json::to_string(blocks).unwrap_or_default()
}

fn buttons(blocks: &[Value]) -> Vec<(String, String)> {
    blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["action_id"].as_str().unwrap_or_default().to_string(),
                e["text"]["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_storm_card_says_how_many_where_and_the_noisiest_within_limits() {
    for (members, projects, header, more) in [
        (1, 1, "Storm: 1 critical incident in project-0", None),
        (5, 1, "Storm: 5 critical incidents in project-0", None),
        (
            300,
            14,
            "Storm: 300 critical incidents across 14 projects",
            Some("_and 295 more_"),
        ),
    ] {
        let n = storm(NotificationKind::Opened, members, projects);
        let blocks = full_blocks(&n, true);
        assert_within_limits(&blocks);
        let head = blocks[0]["text"]["text"].as_str().unwrap_or_default();
        assert_eq!(head, format!(":red_circle: [CRITICAL] {header}"));
        let all = text_of(&blocks);
        // Every named member links its own page; no more than five are named.
        let named = members.min(5);
        for i in 0..named {
            let id = 100 + i;
            assert!(
                all.contains(&format!("<https://alerts.paiid.ai/incidents/{id}|#{id}>")),
                "{members}: member {id} missing: {all}"
            );
        }
        assert!(
            !all.contains(&format!("incidents/{}|", 100 + named)),
            "{all}"
        );
        assert!(all.contains(&format!("*Incidents*\\n{members}")), "{all}");
        match more {
            Some(m) => assert!(all.contains(m), "{all}"),
            None => assert!(!all.contains("more_"), "{all}"),
        }
        // Titles of members are escaped like any title.
        assert!(!all.contains("<!channel>") && all.contains("&lt;!channel&gt;"));
        assert_eq!(
            buttons(&blocks),
            [
                ("ack".to_string(), "Acknowledge all".to_string()),
                ("resolve".to_string(), "Resolve all".to_string()),
                ("ack_link".to_string(), "Acknowledge (web)".to_string()),
                ("open_incident".to_string(), "Incident #42".to_string()),
            ]
        );
    }
}

#[test]
fn a_storm_of_many_projects_lists_ten_and_counts_the_rest() {
    let n = storm(NotificationKind::Opened, 300, 14);
    let all = text_of(&full_blocks(&n, true));
    assert!(all.contains("project-9 and 4 more"), "{all}");
    assert!(!all.contains("project-10"), "{all}");
}

#[test]
fn a_count_update_shows_the_current_count() {
    let mut n = storm(NotificationKind::CountUpdate, 12, 1);
    n.set_storm(sample_storm(37, 1));
    let blocks = full_blocks(&n, true);
    let head = blocks[0]["text"]["text"].as_str().unwrap_or_default();
    assert!(head.contains("Storm: 37 critical incidents"), "{head}");
    assert!(text_of(&blocks).contains("_and 32 more_"));
}

#[test]
fn acknowledged_storm_keeps_only_resolve_all_and_replies_count_incidents() {
    let mut n = storm(NotificationKind::Acknowledged, 37, 1);
    n.state = IncidentState::Acknowledged;
    n.acknowledged_by = Some("ana".into());
    let blocks = full_blocks(&n, true);
    assert_within_limits(&blocks);
    let ids: Vec<String> = buttons(&blocks).into_iter().map(|b| b.1).collect();
    assert_eq!(ids, ["Resolve all", "Incident #42"]);
    let reply = reply_text(&n);
    assert!(reply.contains("· 37 incidents ·"), "{reply}");
    assert!(reply.contains("Acknowledged"), "{reply}");
}

#[test]
fn an_issue_card_is_unchanged() {
    let mut n = storm(NotificationKind::Opened, 3, 1);
    n.storm = None;
    n.title = "KeyError".into();
    let blocks = full_blocks(&n, true);
    let labels: Vec<String> = buttons(&blocks).into_iter().map(|b| b.1).collect();
    assert_eq!(
        labels,
        [
            "Acknowledge",
            "Resolve",
            "Acknowledge (web)",
            "Incident #42"
        ]
    );
    assert!(!text_of(&blocks).contains("Noisiest"));
}
