//! Slack message bodies: mrkdwn escaping and the Block Kit card of an incident.
//!
//! Everything that comes from a Sentry event is escaped before it goes into mrkdwn, so an
//! exception message cannot `<!channel>` the room or forge a link. Block Kit limits are applied
//! here because Slack rejects the whole message (`invalid_blocks`) when a single field is one
//! character too long.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::{IncidentState, Severity};
use crate::incidents::model::parse_dedup_key;
use crate::notify::{Notification, NotificationKind};
use crate::text::{duration, slack_escape as escape, truncate_chars};

mod storm;

// Block Kit limits (https://api.slack.com/reference/block-kit). Counted in characters.
pub(super) const MAX_BLOCKS: usize = 50;
pub(super) const MAX_HEADER_CHARS: usize = 150;
pub(super) const MAX_SECTION_CHARS: usize = 3000;
pub(super) const MAX_FIELDS: usize = 10;
pub(super) const MAX_FIELD_CHARS: usize = 2000;
pub(super) const MAX_BUTTON_TEXT_CHARS: usize = 75;
pub(super) const MAX_URL_CHARS: usize = 3000;
/// Top-level `text` is only the notification / fallback text when blocks are present; Slack
/// truncates at 40,000 characters but recommends staying under 4,000.
pub(super) const MAX_TEXT_CHARS: usize = 4000;
/// Per-line budgets keep multi-line sections under `MAX_SECTION_CHARS` without cutting a code
/// span or a link in half.
pub(super) const MAX_DETAIL_CHARS: usize = 700;
pub(super) const MAX_BREADCRUMB_CHARS: usize = 400;
pub(super) const MAX_ROOT_CAUSE_CHARS: usize = 1500;

/// Like [`escape`] but leaves `&amp;`, `&lt;`, `&gt;` alone, for text that may already be
/// escaped. Safe either way: what remains cannot form a `<...>` control sequence.
pub(super) fn escape_keeping_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            '&' => {
                let rest = &s[i..];
                if ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .any(|e| rest.starts_with(e))
                {
                    out.push('&');
                } else {
                    out.push_str("&amp;");
                }
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// [`escape_keeping_entities`] for rendered `slack_text`, except that our own links stay links.
///
/// The template escapes every value it prints, so a raw `<` in its output is the template's
/// own markup, `<{url}|{label}>`: escaping it too would show the link as literal text. Only a
/// well-formed `http(s)://` or `mailto:` link is kept (its `&` still escaped); anything else,
/// such as `<!channel>` or `<@U123>` written by an override, is escaped as before.
pub(super) fn escape_keeping_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        out.push_str(&escape_keeping_entities(&rest[..start]));
        let tail = &rest[start..];
        match link_markup_end(tail) {
            Some(end) => {
                out.push('<');
                out.push_str(&escape_keeping_entities(&tail[1..end]));
                out.push('>');
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str("&lt;");
                rest = &tail[1..];
            }
        }
    }
    out.push_str(&escape_keeping_entities(rest));
    out
}

/// For `s` starting with `<`: the index of the `>` closing a link to a web or mail address.
fn link_markup_end(s: &str) -> Option<usize> {
    let end = s.find('>')?;
    let inner = s.get(1..end)?;
    if inner.contains(['<', '\n', '\r']) {
        return None;
    }
    let target = inner.split('|').next().unwrap_or_default();
    let scheme_ok = ["https://", "http://", "mailto:"].iter().any(|p| {
        target.len() > p.len()
            && target
                .get(..p.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(p))
    });
    (scheme_ok && !target.contains(char::is_whitespace)).then_some(end)
}

/// [`truncate_chars`] for escaped mrkdwn: never leaves half an entity (`&am…`) behind.
pub(super) fn truncate_mrkdwn(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    // In escaped text every `&` starts an entity; one without its `;` was cut.
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    // Likewise every `<` starts our own markup (a link, a date); half of one is garbage.
    if let Some(lt) = out.rfind('<')
        && !out[lt..].contains('>')
    {
        out.truncate(lt);
    }
    out.push('…');
    out
}

/// Code spans cannot contain backticks; a stray one would end the span early.
pub(super) fn code(s: &str, max: usize) -> String {
    format!("`{}`", truncate_mrkdwn(&escape(&s.replace('`', "'")), max))
}

/// A date every reader sees in their own time zone, with a UTC fallback for old clients.
pub(super) fn slack_date(t: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time_secs}}|{}>",
        t.timestamp(),
        t.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// A mrkdwn link, or just the label when the URL is too long to be usable.
pub(super) fn link(url: &str, label: &str) -> String {
    if url.chars().count() > MAX_URL_CHARS {
        return escape(label);
    }
    // `|` ends the URL part and `<`/`>` end the link; percent-encoding keeps the URL equivalent.
    let url = escape(
        &url.replace('|', "%7C")
            .replace('<', "%3C")
            .replace('>', "%3E"),
    );
    format!("<{url}|{}>", escape(label))
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

pub(super) fn is_resolved(n: &Notification) -> bool {
    n.state == IncidentState::Resolved
        || n.resolved_at.is_some()
        || matches!(
            n.kind,
            NotificationKind::Resolved | NotificationKind::PostMortem
        )
}

pub(super) fn is_acknowledged(n: &Notification) -> bool {
    n.state == IncidentState::Acknowledged
        || n.acknowledged_at.is_some()
        || n.kind == NotificationKind::Acknowledged
}

pub(super) fn severity_emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => ":red_circle:",
        Severity::High => ":large_orange_circle:",
        Severity::Medium => ":large_yellow_circle:",
        Severity::Low | Severity::Unclassified => ":white_circle:",
    }
}

pub(super) fn header_text(n: &Notification) -> String {
    let prefix = if n.kind == NotificationKind::PostMortem {
        ":memo: Post-mortem:"
    } else if is_resolved(n) {
        ":white_check_mark: RESOLVED"
    } else if is_acknowledged(n) {
        ":eyes: ACKED"
    } else {
        severity_emoji(n.severity)
    };
    let test = if n.kind == NotificationKind::Test {
        "[TEST] "
    } else {
        ""
    };
    truncate_chars(
        &format!("{prefix} {test}{}", n.headline()),
        MAX_HEADER_CHARS,
    )
}

fn by_at(who: &Option<String>, at: Option<DateTime<Utc>>) -> String {
    let mut s = String::new();
    if let Some(who) = who {
        s.push_str(&format!(" by *{}*", escape(&truncate_chars(who, 200))));
    }
    if let Some(at) = at {
        s.push_str(&format!(" at {}", slack_date(at)));
    }
    s
}

fn resolved_line(n: &Notification) -> String {
    format!(
        ":white_check_mark: *Resolved*{}",
        by_at(&n.resolved_by, n.resolved_at)
    )
}

fn acknowledged_line(n: &Notification) -> String {
    format!(
        ":eyes: *Acknowledged*{}",
        by_at(&n.acknowledged_by, n.acknowledged_at)
    )
}

/// "Acknowledged by … at …" / "Resolved by … at …" for the current state, if any (the card).
pub(super) fn state_line(n: &Notification) -> Option<String> {
    if is_resolved(n) {
        Some(resolved_line(n))
    } else if is_acknowledged(n) {
        Some(acknowledged_line(n))
    } else {
        None
    }
}

/// The line for the change this notification reports (thread replies, short messages). An
/// acknowledgement sent late, after the incident was also resolved, still reports the
/// acknowledgement; the resolution has a message of its own.
pub(super) fn reported_line(n: &Notification) -> Option<String> {
    match n.kind {
        NotificationKind::Acknowledged => Some(acknowledged_line(n)),
        NotificationKind::Resolved => Some(resolved_line(n)),
        _ => state_line(n),
    }
}

/// What just happened, for kinds that are events rather than states.
pub(super) fn event_line(n: &Notification) -> Option<String> {
    let why = n.reason.as_deref().map(|r| escape(&truncate_chars(r, 500)));
    match n.kind {
        NotificationKind::Escalation if why.is_some() => Some(format!(
            ":rotating_light: *Escalated early*: {}",
            why.unwrap_or_default()
        )),
        NotificationKind::Retriggered => Some(format!(
            ":repeat: *Needs attention again*: {}",
            why.unwrap_or_else(|| "the acknowledgement ended".to_string())
        )),
        NotificationKind::SeverityRaised if why.is_some() => Some(format!(
            ":arrow_double_up: *Severity raised* to *{}*: {}",
            escape(&n.severity.as_str().to_uppercase()),
            why.unwrap_or_default()
        )),
        NotificationKind::Opened => {
            why.map(|w| format!(":leftwards_arrow_with_hook: *Again*: {w}"))
        }
        NotificationKind::Escalation => Some(match n.waited_minutes {
            Some(m) => format!(
                ":rotating_light: *Escalated*: not acknowledged after {}",
                duration(m.saturating_mul(60_000))
            ),
            None => ":rotating_light: *Escalated*: not acknowledged in time".to_string(),
        }),
        NotificationKind::SeverityRaised => Some(format!(
            ":arrow_double_up: *Severity raised* to *{}*",
            escape(&n.severity.as_str().to_uppercase())
        )),
        NotificationKind::Test => {
            Some(":test_tube: Test alert from paiid-alerts: no action needed.".to_string())
        }
        _ => None,
    }
}

/// Text of a thread reply under the incident card.
pub(super) fn reply_text(n: &Notification) -> String {
    let line = match n.kind {
        NotificationKind::Acknowledged | NotificationKind::Resolved => reported_line(n),
        _ => event_line(n),
    };
    let mut text = line.unwrap_or_else(|| escape(&n.headline()));
    text.push_str(&format!(
        " · {} · {}",
        storm::count_text(n),
        link(&n.incident_url, &format!("Incident #{}", n.incident_id))
    ));
    truncate_mrkdwn(&text, MAX_SECTION_CHARS)
}

pub(super) fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

pub(super) fn section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(truncate_mrkdwn(&text, MAX_SECTION_CHARS)) })
}

pub(super) fn facts_block(n: &Notification) -> Value {
    let mut fields = Vec::new();
    let mut field = |label: &str, value: String| {
        let text = format!("*{label}*\n{value}");
        fields.push(mrkdwn(truncate_mrkdwn(&text, MAX_FIELD_CHARS)));
    };
    field("Severity", escape(&n.severity.as_str().to_uppercase()));
    if let Some(p) = &n.project {
        field("Project", escape(p));
    }
    if let Some(e) = &n.environment {
        field("Environment", escape(e));
    }
    if let Some(l) = &n.level {
        field("Level", escape(l));
    }
    field("Events", n.event_count.to_string());
    field("First seen", slack_date(n.first_seen));
    field("Last seen", slack_date(n.last_seen));
    let rule = match (&n.rule, &n.sentry_rule) {
        (Some(r), Some(s)) => Some(format!("{} (Sentry: {})", escape(r), escape(s))),
        (Some(r), None) => Some(escape(r)),
        (None, Some(s)) => Some(format!("Sentry: {}", escape(s))),
        (None, None) => None,
    };
    if let Some(rule) = rule {
        field("Rule", rule);
    }
    if let Some(r) = &n.release {
        field("Release", escape(r));
    }
    if let Some(m) = &n.metric {
        field("Metric", escape(m));
    }
    fields.truncate(MAX_FIELDS);
    json!({ "type": "section", "fields": fields })
}

pub(super) fn details_block(n: &Notification) -> Option<Value> {
    let lines: Vec<String> = [
        ("Culprit", &n.culprit),
        ("Request", &n.request),
        ("Top frame", &n.top_frame),
    ]
    .into_iter()
    .filter_map(|(label, v)| {
        v.as_ref()
            .map(|v| format!("*{label}:* {}", code(v, MAX_DETAIL_CHARS)))
    })
    .collect();
    (!lines.is_empty()).then(|| section(lines.join("\n")))
}

pub(super) fn breadcrumbs_block(n: &Notification) -> Option<Value> {
    let skip = n.breadcrumbs.len().saturating_sub(5);
    let lines: Vec<String> = n.breadcrumbs[skip..]
        .iter()
        .map(|b| {
            let mut line = String::new();
            for part in [&b.timestamp, &b.category, &b.level].into_iter().flatten() {
                line.push_str(part);
                line.push(' ');
            }
            line.push_str(&b.message);
            // Triple backticks would close the code block early.
            let line = escape(&line.replace("```", "'''").replace('\n', " "));
            truncate_mrkdwn(&line, MAX_BREADCRUMB_CHARS)
        })
        .collect();
    (!lines.is_empty()).then(|| section(format!("*Breadcrumbs*\n```{}```", lines.join("\n"))))
}

pub(super) fn post_mortem_block(n: &Notification) -> Option<Value> {
    let pm = n.post_mortem.as_ref()?;
    let mut parts = vec![format!("*Duration:* {}", escape(&pm.time_to_resolve))];
    match (&pm.time_to_acknowledge, &pm.acknowledged_by) {
        (Some(t), Some(by)) => parts.push(format!(
            "*Time to acknowledge:* {} (by {})",
            escape(t),
            escape(&truncate_chars(by, 200))
        )),
        (Some(t), None) => parts.push(format!("*Time to acknowledge:* {}", escape(t))),
        (None, _) => parts.push("*Time to acknowledge:* never acknowledged".to_string()),
    }
    parts.push(format!("*Escalations:* {}", pm.escalations_fired));
    parts.push(match &n.storm {
        Some(s) => format!("*Incidents:* {}", s.members),
        None => format!("*Events:* {}", n.event_count),
    });
    let mut text = format!(
        "*Post-mortem*\n{}\n*Opened:* {} · *Resolved:* {}",
        parts.join(" · "),
        slack_date(pm.opened_at),
        slack_date(pm.resolved_at)
    );
    if let Some(rc) = &pm.root_cause {
        let rc = truncate_mrkdwn(&escape(rc), MAX_ROOT_CAUSE_CHARS);
        text.push_str(&format!("\n*Root cause:* {rc}"));
    }
    if let Some(rc) = &pm.seer_root_cause {
        let rc = truncate_mrkdwn(&escape(rc), MAX_ROOT_CAUSE_CHARS);
        text.push_str(&format!("\n*Seer's root cause:* {rc}"));
    }
    Some(section(text))
}

pub(super) fn link_button(text: &str, action_id: &str, url: &str) -> Option<Value> {
    // A truncated URL would be a broken link; leave the button out instead.
    (url.chars().count() <= MAX_URL_CHARS).then(|| {
        json!({
            "type": "button",
            "action_id": action_id,
            "text": { "type": "plain_text", "text": truncate_chars(text, MAX_BUTTON_TEXT_CHARS) },
            "url": url,
        })
    })
}

/// Buttons. `interactive` (bot mode) adds `ack` / `resolve` buttons whose `value` names the
/// incident and episode, handled by `POST /slack/interactions`; link buttons also send an interaction payload,
/// under their own `action_id`s (`ack_link`, `open_sentry`, `open_incident`), which the handler
/// ignores. Acknowledge buttons disappear once the incident is acknowledged or resolved.
pub(super) fn actions_block(n: &Notification, interactive: bool) -> Option<Value> {
    let (acked, resolved) = (is_acknowledged(n), is_resolved(n));
    let mut elements = Vec::new();
    // `{incident}:{episode}`, so that a button on an earlier occurrence's card cannot act on a
    // later one.
    let id = match parse_dedup_key(&n.dedup_key) {
        Some((_, episode)) => format!("{}:{episode}", n.incident_id),
        None => n.incident_id.to_string(),
    };
    let (ack_label, resolve_label) = storm::button_labels(n);
    if interactive && !acked && !resolved {
        elements.push(json!({
            "type": "button", "action_id": "ack", "value": id, "style": "primary",
            "text": { "type": "plain_text", "text": ack_label },
        }));
    }
    if interactive && !resolved {
        elements.push(json!({
            "type": "button", "action_id": "resolve", "value": id,
            "text": { "type": "plain_text", "text": resolve_label },
        }));
    }
    if !acked && !resolved {
        // With interactive buttons present the link is a second way in (e.g. for someone not in
        // the workspace's app allow-list), so it is labelled apart from the button.
        let label = if interactive {
            "Acknowledge (web)"
        } else {
            "Acknowledge"
        };
        if let Some(b) = n
            .ack_url
            .as_deref()
            .and_then(|u| link_button(label, "ack_link", u))
        {
            elements.push(b);
        }
    }
    if let Some(b) = n
        .sentry_url
        .as_deref()
        .and_then(|u| link_button("View in Sentry", "open_sentry", u))
    {
        elements.push(b);
    }
    let incident = format!("Incident #{}", n.incident_id);
    if let Some(b) = link_button(&incident, "open_incident", &n.incident_url) {
        elements.push(b);
    }
    (!elements.is_empty())
        .then(|| json!({ "type": "actions", "block_id": "paiid_actions", "elements": elements }))
}

/// The incident card.
pub(super) fn full_blocks(n: &Notification, interactive: bool) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": header_text(n), "emoji": true },
    })];
    let context: Vec<Value> = [event_line(n), state_line(n)]
        .into_iter()
        .flatten()
        .map(mrkdwn)
        .collect();
    if !context.is_empty() {
        blocks.push(json!({ "type": "context", "elements": context }));
    }
    match &n.storm {
        // A storm has no event of its own: its members are its details.
        Some(s) => {
            blocks.push(storm::facts_block(n, s));
            blocks.extend(storm::members_block(s));
        }
        None => {
            blocks.push(facts_block(n));
            blocks.extend(details_block(n));
            blocks.extend(breadcrumbs_block(n));
        }
    }
    blocks.extend(post_mortem_block(n));
    blocks.extend(actions_block(n, interactive));
    blocks.truncate(MAX_BLOCKS);
    blocks
}

/// A new short message for a state change when there is no card to update.
pub(super) fn short_blocks(n: &Notification) -> Vec<Value> {
    let line = reported_line(n).unwrap_or_else(|| escape(n.kind.as_str()));
    let title = escape(&truncate_chars(&n.headline(), 500));
    let mut blocks = vec![section(format!("{line}\n*{title}*"))];
    blocks.extend(actions_block(n, false));
    blocks
}
