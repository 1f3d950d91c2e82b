//! What a digest says: the data of one period (loaded through `store::digests`) and its
//! rendering as a text + HTML mail. Rendering is pure so that it is unit-tested without a
//! database; every piece of user data (titles, projects, URLs from Sentry) is escaped in HTML.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::classification::Severity;
use crate::clock::ms_to_datetime;
use crate::config::duration::humanize;
use crate::store::digests::{self, DigestIncident, EscalationTally, NoisyIncident, SeverityTally};
use crate::store::{Store, StoreError};
use crate::text::html_escape;

/// How many incidents the weekly summary lists as the noisiest.
pub const NOISIEST_LIMIT: i64 = 5;

/// A half-open period `[start, end)` and the timezone its times are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub tz: Tz,
}

impl Period {
    pub fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }

    pub fn end_ms(&self) -> i64 {
        self.end.timestamp_millis()
    }

    /// `Sat 28 Nov 08:00 – Sun 29 Nov 08:00 EST`: the reader's wall clock, not UTC.
    pub fn describe(&self) -> String {
        format!(
            "{} – {}",
            self.local(self.start),
            self.local_with_zone(self.end)
        )
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%a %-d %b %H:%M")
            .to_string()
    }

    fn local_with_zone(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%a %-d %b %Y %H:%M %Z")
            .to_string()
    }
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where the links in a digest point.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    /// `PUBLIC_URL`, e.g. `https://alerts.paiid.ai` (a trailing slash is tolerated).
    pub public_url: &'a str,
}

impl Links<'_> {
    pub fn incident(&self, id: i64) -> String {
        format!("{}/incidents/{id}", self.public_url.trim_end_matches('/'))
    }
}

// ---------- daily digest ----------

/// The daily digest: every Medium incident seen in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyDigest {
    pub period: Period,
    /// Sent by hand for the still-open period: said so in the mail.
    pub manual: bool,
    pub incidents: Vec<DigestIncident>,
}

/// One project's incidents, in the order the digest lists them.
#[derive(Debug, PartialEq)]
pub struct ProjectGroup<'a> {
    pub project: &'a str,
    pub incidents: Vec<&'a DigestIncident>,
}

const NO_PROJECT: &str = "(no project)";

impl DailyDigest {
    pub async fn load(store: &Store, period: Period, manual: bool) -> Result<Self, StoreError> {
        let incidents = digests::incidents_seen(
            &store.read,
            Severity::Medium.as_str(),
            period.start_ms(),
            period.end_ms(),
        )
        .await?;
        Ok(Self {
            period,
            manual,
            incidents,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty()
    }

    /// Incidents grouped by project: projects by name (incidents without one last), within a
    /// project the noisiest first.
    pub fn groups(&self) -> Vec<ProjectGroup<'_>> {
        let mut by_project: BTreeMap<(bool, &str), Vec<&DigestIncident>> = BTreeMap::new();
        for inc in &self.incidents {
            let key = match inc.project.as_deref().filter(|p| !p.trim().is_empty()) {
                Some(p) => (false, p),
                None => (true, NO_PROJECT),
            };
            by_project.entry(key).or_default().push(inc);
        }
        by_project
            .into_iter()
            .map(|((_, project), mut incidents)| {
                incidents.sort_by(|a, b| b.event_count.cmp(&a.event_count).then(a.id.cmp(&b.id)));
                ProjectGroup { project, incidents }
            })
            .collect()
    }

    pub fn render(&self, links: Links<'_>, empty_note: &str) -> RenderedMail {
        let groups = self.groups();
        let count = self.incidents.len();
        let summary = match count {
            0 => "no medium incidents".to_string(),
            n => format!(
                "{} in {}",
                plural(n, "medium incident"),
                plural(groups.len(), "project")
            ),
        };
        let heading = if self.manual {
            "Medium incidents so far (sent by hand)"
        } else {
            "Medium incidents digest"
        };
        let subject = format!("{heading}: {summary} ({})", self.period.describe());
        let seen = format!("Seen {}", self.period.describe());

        let mut text = String::new();
        let mut html = String::new();
        let _ = writeln!(text, "{heading}\n{seen}\n");
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n\
             <h2>{}</h2>\n<p>{}</p>\n",
            html_escape(heading),
            html_escape(&seen)
        );
        if groups.is_empty() {
            let _ = writeln!(text, "{empty_note}");
            let _ = writeln!(html, "<p>{}</p>", html_escape(empty_note));
        } else {
            let _ = writeln!(text, "{}.", capitalize(&summary));
            let _ = writeln!(html, "<p>{}.</p>", html_escape(&capitalize(&summary)));
        }
        for group in &groups {
            let _ = writeln!(
                text,
                "\n== {} ({}) ==",
                group.project,
                group.incidents.len()
            );
            let _ = writeln!(
                html,
                "<h3>{} ({})</h3>\n<table cellpadding=\"4\" style=\"border-collapse: collapse\">\n\
                 <tr><th align=\"left\">Incident</th><th align=\"left\">Worst metric</th>\
                 <th align=\"right\">Events</th><th align=\"left\">State</th>\
                 <th align=\"left\">Last seen</th><th align=\"left\">Links</th></tr>",
                html_escape(group.project),
                group.incidents.len()
            );
            for inc in &group.incidents {
                let metric = describe_metric(inc.metric_value, inc.rule.as_deref());
                let last_seen = self.period.local(ms_to_datetime(inc.last_seen));
                let incident_url = links.incident(inc.id);
                let _ = writeln!(
                    text,
                    "\n* {}\n  {} · {} · {} · last seen {}\n  Incident: {}",
                    inc.title,
                    metric,
                    plural(usize::try_from(inc.event_count).unwrap_or(0), "event"),
                    inc.state,
                    last_seen,
                    incident_url
                );
                if let Some(url) = &inc.sentry_url {
                    let _ = writeln!(text, "  Sentry:   {url}");
                }
                let mut link_cells = link(&incident_url, "incident");
                if let Some(url) = &inc.sentry_url {
                    link_cells.push_str(" · ");
                    link_cells.push_str(&link(url, "Sentry"));
                }
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td align=\"right\">{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td></tr>",
                    html_escape(&inc.title),
                    html_escape(&metric),
                    inc.event_count,
                    html_escape(&inc.state),
                    html_escape(&last_seen),
                    link_cells
                );
            }
            html.push_str("</table>\n");
        }
        let footer = "Medium incidents are not paged: they are reviewed here and in the weekly \
                      ops summary. Events are the alerts received in the period; the metric is the worst \
                      value seen over the incident's life.";
        let _ = writeln!(text, "\n--\n{footer}");
        let _ = writeln!(
            html,
            "<p style=\"color: #666; font-size: smaller\">{}</p>\n</body></html>",
            html_escape(footer)
        );
        RenderedMail {
            subject,
            text,
            html,
        }
    }
}

/// `lowest Apdex 0.62`, `worst value 2300 ms`. Same conventions as the incident messages: a
/// value within [0, 1] or an Apdex rule is a score, anything else a duration in milliseconds.
pub fn describe_metric(value: Option<f64>, rule: Option<&str>) -> String {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return "no metric value".to_string();
    };
    let apdex_rule = rule.is_some_and(|r| r.to_ascii_lowercase().contains("apdex"));
    if apdex_rule {
        format!("lowest Apdex {v:.2}")
    } else if (0.0..=1.0).contains(&v) {
        format!("worst value {v:.2}")
    } else {
        format!("worst value {v:.0} ms")
    }
}

// ---------- weekly summary ----------

/// The weekly ops summary.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklySummary {
    pub period: Period,
    pub manual: bool,
    /// Most severe first.
    pub severities: Vec<SeverityTally>,
    /// Most severe first.
    pub escalations: Vec<EscalationTally>,
    pub noisiest: Vec<NoisyIncident>,
}

/// Totals over all severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub opened: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    /// Mean time to acknowledge, ms, over the acknowledged incidents.
    pub mtta_ms: Option<i64>,
    /// Mean time to resolve, ms, over the resolved incidents.
    pub mttr_ms: Option<i64>,
    pub escalations: i64,
    pub escalated_incidents: i64,
    pub max_lateness_ms: i64,
}

/// Sorts most severe first; names that are not a known severity go last, alphabetically.
fn severity_rank(s: &str) -> (std::cmp::Reverse<Option<Severity>>, String) {
    (std::cmp::Reverse(Severity::parse(s)), s.to_string())
}

impl WeeklySummary {
    pub async fn load(store: &Store, period: Period, manual: bool) -> Result<Self, StoreError> {
        let (start, end) = (period.start_ms(), period.end_ms());
        let severities = digests::severity_tallies(&store.read, start, end).await?;
        let escalations = digests::escalation_tallies(&store.read, start, end).await?;
        let noisiest = digests::noisiest(&store.read, start, end, NOISIEST_LIMIT).await?;
        Ok(Self::new(period, manual, severities, escalations, noisiest))
    }

    pub fn new(
        period: Period,
        manual: bool,
        mut severities: Vec<SeverityTally>,
        mut escalations: Vec<EscalationTally>,
        noisiest: Vec<NoisyIncident>,
    ) -> Self {
        // Unknown severities sort after `unclassified` because None < Some under Reverse.
        severities.sort_by_key(|t| severity_rank(&t.severity));
        escalations.sort_by_key(|t| severity_rank(&t.severity));
        Self {
            period,
            manual,
            severities,
            escalations,
            noisiest,
        }
    }

    /// Nothing opened, escalated or seen in the period.
    pub fn is_empty(&self) -> bool {
        self.severities.iter().all(|s| s.opened == 0)
            && self.escalations.iter().all(|e| e.fired == 0)
            && self.noisiest.is_empty()
    }

    pub fn totals(&self) -> Totals {
        let sum = |f: fn(&SeverityTally) -> i64| self.severities.iter().map(f).sum::<i64>();
        let acknowledged = sum(|s| s.acknowledged);
        let resolved = sum(|s| s.resolved);
        Totals {
            opened: sum(|s| s.opened),
            acknowledged,
            resolved,
            mtta_ms: mean_ms(sum(|s| s.ack_ms_total), acknowledged),
            mttr_ms: mean_ms(sum(|s| s.resolve_ms_total), resolved),
            escalations: self.escalations.iter().map(|e| e.fired).sum(),
            escalated_incidents: self.escalations.iter().map(|e| e.incidents).sum(),
            max_lateness_ms: self
                .escalations
                .iter()
                .map(|e| e.max_lateness_ms)
                .max()
                .unwrap_or(0),
        }
    }

    pub fn render(&self, links: Links<'_>) -> RenderedMail {
        let t = self.totals();
        let heading = if self.manual {
            "Weekly ops summary so far (sent by hand)"
        } else {
            "Weekly ops summary"
        };
        let subject = format!(
            "{heading}: {} opened, {} ({})",
            plural(to_usize(t.opened), "incident"),
            plural(to_usize(t.escalations), "escalation"),
            self.period.describe()
        );
        let by_severity = self
            .severities
            .iter()
            .map(|s| format!("{} {}", s.severity, s.opened))
            .collect::<Vec<_>>()
            .join(", ");
        let mut lines = vec![
            format!(
                "Incidents opened: {}{}",
                t.opened,
                if by_severity.is_empty() {
                    String::new()
                } else {
                    format!(" ({by_severity})")
                }
            ),
            format!(
                "Mean time to acknowledge: {} ({} acknowledged)",
                fmt_mean(t.mtta_ms),
                t.acknowledged
            ),
            format!(
                "Mean time to resolve: {} ({} resolved)",
                fmt_mean(t.mttr_ms),
                t.resolved
            ),
        ];
        lines.push(if t.escalations == 0 {
            "Escalations fired: 0".to_string()
        } else {
            format!(
                "Escalations fired: {} on {} (worst lateness {})",
                t.escalations,
                plural(to_usize(t.escalated_incidents), "incident"),
                fmt_lateness(t.max_lateness_ms)
            )
        });

        let mut text = String::new();
        let mut html = String::new();
        let seen = format!("Period {}", self.period.describe());
        let _ = writeln!(text, "{heading}\n{seen}\n");
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n\
             <h2>{}</h2>\n<p>{}</p>\n<ul>\n",
            html_escape(heading),
            html_escape(&seen)
        );
        for line in &lines {
            let _ = writeln!(text, "{line}");
            let _ = writeln!(html, "<li>{}</li>", html_escape(line));
        }
        html.push_str("</ul>\n");

        if !self.severities.is_empty() {
            let _ = writeln!(
                text,
                "\nBy severity\n  {:<13} {:>6} {:>6} {:>9}  {:<9} {:<9}",
                "severity", "opened", "acked", "resolved", "MTTA", "MTTR"
            );
            html.push_str(
                "<h3>By severity</h3>\n<table cellpadding=\"4\" style=\"border-collapse: collapse\">\n\
                 <tr><th align=\"left\">Severity</th><th align=\"right\">Opened</th>\
                 <th align=\"right\">Acknowledged</th><th align=\"right\">Resolved</th>\
                 <th align=\"left\">MTTA</th><th align=\"left\">MTTR</th></tr>\n",
            );
            for s in &self.severities {
                let mtta = fmt_mean(mean_ms(s.ack_ms_total, s.acknowledged));
                let mttr = fmt_mean(mean_ms(s.resolve_ms_total, s.resolved));
                let _ = writeln!(
                    text,
                    "  {:<13} {:>6} {:>6} {:>9}  {:<9} {:<9}",
                    s.severity, s.opened, s.acknowledged, s.resolved, mtta, mttr
                );
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td>\
                     <td align=\"right\">{}</td><td>{}</td><td>{}</td></tr>",
                    html_escape(&s.severity),
                    s.opened,
                    s.acknowledged,
                    s.resolved,
                    html_escape(&mtta),
                    html_escape(&mttr)
                );
            }
            html.push_str("</table>\n");
        }

        if !self.escalations.is_empty() {
            let _ = writeln!(text, "\nEscalations");
            html.push_str("<h3>Escalations</h3>\n<ul>\n");
            for e in &self.escalations {
                let line = format!(
                    "{}: {} fired on {} (worst lateness {})",
                    e.severity,
                    e.fired,
                    plural(to_usize(e.incidents), "incident"),
                    fmt_lateness(e.max_lateness_ms)
                );
                let _ = writeln!(text, "  {line}");
                let _ = writeln!(html, "<li>{}</li>", html_escape(&line));
            }
            html.push_str("</ul>\n");
        }

        if !self.noisiest.is_empty() {
            let _ = writeln!(text, "\nNoisiest issues (events)");
            html.push_str(
                "<h3>Noisiest issues</h3>\n<table cellpadding=\"4\" style=\"border-collapse: collapse\">\n\
                 <tr><th align=\"right\">Events</th><th align=\"left\">Incident</th>\
                 <th align=\"left\">Project</th><th align=\"left\">Severity</th>\
                 <th align=\"left\">State</th><th align=\"left\">Links</th></tr>\n",
            );
            for (i, n) in self.noisiest.iter().enumerate() {
                let project = n.project.as_deref().unwrap_or(NO_PROJECT);
                let incident_url = links.incident(n.id);
                let _ = writeln!(
                    text,
                    "  {}. {:>7}  {} [{}, {}, {}]\n              {}",
                    i + 1,
                    n.event_count,
                    n.title,
                    project,
                    n.severity,
                    n.state,
                    incident_url
                );
                let mut link_cells = link(&incident_url, "incident");
                if let Some(url) = &n.sentry_url {
                    link_cells.push_str(" · ");
                    link_cells.push_str(&link(url, "Sentry"));
                }
                let _ = writeln!(
                    html,
                    "<tr><td align=\"right\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td></tr>",
                    n.event_count,
                    html_escape(&n.title),
                    html_escape(project),
                    html_escape(&n.severity),
                    html_escape(&n.state),
                    link_cells
                );
            }
            html.push_str("</table>\n");
        }

        let footer = "Counts, MTTA and MTTR cover incidents whose current episode opened in this \
                      period, with acknowledgements and resolutions made before its end. \
                      Noisiest: incidents by alerts received in the period.";
        let _ = writeln!(text, "\n--\n{footer}");
        let _ = writeln!(
            html,
            "<p style=\"color: #666; font-size: smaller\">{}</p>\n</body></html>",
            html_escape(footer)
        );
        RenderedMail {
            subject,
            text,
            html,
        }
    }
}

/// Integer mean in milliseconds; None when there is nothing to average.
pub fn mean_ms(total_ms: i64, count: i64) -> Option<i64> {
    (count > 0).then(|| total_ms / count)
}

fn fmt_mean(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => humanize(chrono::Duration::milliseconds(ms)),
        None => "n/a".to_string(),
    }
}

fn fmt_lateness(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        humanize(chrono::Duration::milliseconds(ms))
    }
}

// ---------- small helpers ----------

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An `<a>` for http(s) URLs only. Sentry URLs arrive in webhook bodies; a `javascript:` or
/// `data:` URL must not become a clickable link in an ops mailbox, so it is shown as text.
fn link(url: &str, label: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!(
            "<a href=\"{}\">{}</a>",
            html_escape(url.trim()),
            html_escape(label)
        )
    } else {
        format!("{}: {}", html_escape(label), html_escape(url))
    }
}

#[cfg(test)]
mod tests;
