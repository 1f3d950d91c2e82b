//! The card of a storm (an incident standing for many, see `notify::message::StormSummary`):
//! how many incidents and where, the noisiest few as links to their pages, and "and N more".
//! Its buttons are the usual ones on the storm incident, which acknowledge or resolve every
//! member with it.

use serde_json::{Value, json};

use super::{
    MAX_FIELD_CHARS, MAX_FIELDS, escape, link, mrkdwn, section, slack_date, truncate_mrkdwn,
};
use crate::notify::Notification;
use crate::notify::message::StormSummary;
use crate::text::truncate_chars;

/// A member's title in the list: five of them, with their links, stay far under a section's
/// 3,000 characters.
const MAX_MEMBER_TITLE_CHARS: usize = 200;

/// The facts of a storm: severity, where, how many incidents and events, when, which rule.
pub(in crate::notify::slack) fn facts_block(n: &Notification, storm: &StormSummary) -> Value {
    let mut fields = Vec::new();
    let mut field = |label: &str, value: String| {
        let text = format!("*{label}*\n{value}");
        fields.push(mrkdwn(truncate_mrkdwn(&text, MAX_FIELD_CHARS)));
    };
    field("Severity", escape(&n.severity.as_str().to_uppercase()));
    if let Some(projects) = projects_text(storm) {
        field("Projects", projects);
    }
    field("Incidents", storm.members.to_string());
    field("Events", storm.events.to_string());
    field("First seen", slack_date(n.first_seen));
    field("Last seen", slack_date(n.last_seen));
    if let Some(rule) = &n.rule {
        field("Rule", escape(rule));
    }
    fields.truncate(MAX_FIELDS);
    json!({ "type": "section", "fields": fields })
}

/// `a, b and 3 more`, escaped; `None` when no member has a project.
fn projects_text(storm: &StormSummary) -> Option<String> {
    if storm.projects.is_empty() {
        return None;
    }
    let listed = storm.projects.join(", ");
    let unlisted = storm.project_count - i64::try_from(storm.projects.len()).unwrap_or(0);
    let more = if unlisted > 0 {
        format!(" and {unlisted} more")
    } else {
        String::new()
    };
    Some(escape(&format!("{listed}{more}")))
}

/// The noisiest members, each a link to its page, then "and N more".
pub(in crate::notify::slack) fn members_block(storm: &StormSummary) -> Option<Value> {
    let mut lines: Vec<String> = storm
        .top
        .iter()
        .map(|m| {
            let title = escape(&truncate_chars(&m.title, MAX_MEMBER_TITLE_CHARS));
            let project = m
                .project
                .as_deref()
                .map(|p| format!(" ({})", escape(&truncate_chars(p, 100))))
                .unwrap_or_default();
            let noun = if m.event_count == 1 {
                "event"
            } else {
                "events"
            };
            format!(
                "• {} {title}{project} · {} {noun}",
                link(&m.url, &format!("#{}", m.incident_id)),
                m.event_count
            )
        })
        .collect();
    if storm.more > 0 {
        lines.push(format!("_and {} more_", storm.more));
    }
    (!lines.is_empty()).then(|| section(format!("*Noisiest*\n{}", lines.join("\n"))))
}

/// The buttons' words on a storm's card: they act on every member.
pub(in crate::notify::slack) fn button_labels(n: &Notification) -> (&'static str, &'static str) {
    if n.storm.is_some() {
        ("Acknowledge all", "Resolve all")
    } else {
        ("Acknowledge", "Resolve")
    }
}

/// `37 incidents` for a storm's thread replies, `3 events` otherwise.
pub(in crate::notify::slack) fn count_text(n: &Notification) -> String {
    match &n.storm {
        Some(s) if s.members == 1 => "1 incident".to_string(),
        Some(s) => format!("{} incidents", s.members),
        None => format!("{} events", n.event_count),
    }
}

#[cfg(test)]
mod tests;
