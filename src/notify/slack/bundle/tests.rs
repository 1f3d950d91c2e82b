use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::*;
use crate::domain::{IncidentId, IncidentState};
use crate::notify::bundle::MAX_MEMBERS;
use crate::notify::slack::blocks::{MAX_BLOCKS, MAX_SECTION_CHARS};

/// A member with everything as long as it gets: the longest title, a long ack link.
fn member(i: i64) -> Notification {
    let now = Utc.timestamp_opt(1_780_000_000, 0).single().unwrap();
    let mut n = Notification::test_message(now);
    n.kind = crate::notify::NotificationKind::Opened;
    n.incident_id = IncidentId(i);
    n.dedup_key = format!("paiid-alerts-{i}-1");
    n.title = format!("<!channel> {}", "x&y".repeat(2_000));
    n.project = Some("p".repeat(500));
    n.ack_url = Some(format!("https://alerts.example/ack/{}", "t".repeat(2_000)));
    n
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

#[test]
fn a_full_bundle_stays_within_block_kit_limits_and_says_how_many_more_wait() {
    let members: Vec<Notification> = (1..=MAX_MEMBERS as i64).map(member).collect();
    for interactive in [false, true] {
        let b = Bundle {
            members: &members,
            more: 25,
            card: None,
        };
        let blocks = bundle_blocks(&b, interactive);
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        for block in &blocks {
            assert!(chars(&block["text"]["text"]) <= MAX_SECTION_CHARS);
            assert!(!block.to_string().contains("<!channel>"), "escaped");
        }
        let sections = blocks.iter().filter(|b| b["type"] == "section").count();
        assert_eq!(sections, MAX_MEMBERS, "every member listed");
        let last = blocks.last().unwrap().to_string();
        assert!(last.contains("and 25 more"), "{last}");
        assert!(bundle_text(&b).chars().count() <= 40_000);
    }
}

#[test]
fn a_member_line_shows_its_state_and_only_open_members_get_a_button() {
    let mut acked = member(2);
    acked.state = IncidentState::Acknowledged;
    acked.acknowledged_by = Some("ana".into());
    let members = [member(1), acked];
    let b = Bundle {
        members: &members,
        more: 0,
        card: None,
    };
    let blocks = bundle_blocks(&b, true);
    let open = &blocks[2];
    let done = &blocks[3];
    assert_eq!(open["accessory"]["action_id"], "ack");
    assert_eq!(open["accessory"]["value"], "1:1");
    assert!(done.get("accessory").is_none());
    assert!(done.to_string().contains("Acknowledged"), "{done}");
    assert!(blocks[1].to_string().contains("1 open · 1 acknowledged"));
    assert!(!blocks.last().unwrap().to_string().contains("more waiting"));
}
