//! What the `/overview` page draws: incidents opened per day by severity, time to acknowledge
//! and to resolve, the noisiest incidents, deliveries by channel and outcome, all over the last
//! [`WINDOW_DAYS`] UTC days.
//!
//! A storm (`incidents.kind = 'storm'`) is a group of incidents, not one more: the incident
//! figures count issues only (its members are counted, each once), while its deliveries are
//! deliveries like any other.
//!
//! Counting is done in SQL; percentiles are not (SQLite has none), so the durations are read
//! and ranked here. A group whose stored word does not decode (an unknown severity or delivery
//! status) is left out of the pictures, logged and counted like any unreadable row, and listed
//! in [`Overview::unreadable`] so that the page can say what it left out.

use crate::store::on;
use std::collections::BTreeMap;

use super::{CorruptRow, Reader, StoreError};
use crate::domain::{DeliveryStatus, IncidentId, Severity};

pub(crate) const DAY_MS: i64 = 86_400_000;
/// How many days the overview looks back, today included.
pub(crate) const WINDOW_DAYS: i64 = 30;
/// How many of the noisiest incidents are listed.
pub(crate) const NOISIEST: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overview {
    /// Midnight UTC of the first day shown.
    pub since: i64,
    /// One entry per UTC day, oldest first; the last is today (by the service's clock).
    pub days: Vec<DayCounts>,
    /// One entry per severity with an incident opened in the window, most severe first.
    pub response: Vec<ResponseTimes>,
    /// Incidents seen in the window with the most events, most first.
    pub noisiest: Vec<NoisyIncident>,
    /// Deliveries created in the window, by channel (in name order).
    pub deliveries: Vec<ChannelOutcomes>,
    /// Groups left out because a stored word did not decode.
    pub unreadable: Vec<CorruptRow>,
}

impl Overview {
    /// Nothing happened in the window: the page says so instead of drawing empty axes.
    pub(crate) fn is_empty(&self) -> bool {
        self.days.iter().all(|d| d.total() == 0)
            && self.response.is_empty()
            && self.noisiest.is_empty()
            && self.deliveries.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayCounts {
    /// Midnight UTC.
    pub day_start: i64,
    /// Incidents opened or reopened that day, by their severity now; most severe first,
    /// severities with none left out.
    pub by_severity: Vec<(Severity, i64)>,
}

impl DayCounts {
    pub(crate) fn total(&self) -> i64 {
        self.by_severity.iter().map(|(_, n)| n).sum()
    }
}

/// Nearest-rank percentiles of a set of durations (each an actual duration, never averaged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Percentiles {
    pub count: usize,
    pub median_ms: i64,
    pub p90_ms: i64,
}

impl Percentiles {
    /// `None` for no durations. Nearest rank: the p-th percentile is the smallest duration with
    /// at least p % of them at or below it (the median of 4 is the 2nd).
    pub(crate) fn of(mut durations: Vec<i64>) -> Option<Self> {
        if durations.is_empty() {
            return None;
        }
        durations.sort_unstable();
        let rank = |p: usize| {
            let n = durations.len();
            // ceil(p * n / 100), at least 1
            let r = (p * n).div_ceil(100).max(1);
            durations[r - 1]
        };
        Some(Self {
            count: durations.len(),
            median_ms: rank(50),
            p90_ms: rank(90),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseTimes {
    pub severity: Severity,
    /// Incidents of this severity opened in the window (the current episode's start).
    pub opened: i64,
    /// From opening to the acknowledgement, for those acknowledged.
    pub acknowledge: Option<Percentiles>,
    /// From opening to resolution, for those resolved.
    pub resolve: Option<Percentiles>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoisyIncident {
    pub id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub event_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChannelOutcomes {
    pub channel: String,
    pub delivered: i64,
    /// Failed at least once and will be retried.
    pub failed: i64,
    /// Given up on (permanent error or attempts used up).
    pub dead: i64,
    /// Not attempted yet, or being sent right now.
    pub pending: i64,
}

impl ChannelOutcomes {
    pub(crate) fn total(&self) -> i64 {
        self.delivered + self.failed + self.dead + self.pending
    }
}

/// The rows the overview leaves out because a word in them does not decode: each is logged and
/// counted as it is found, and listed on the page.
struct Unreadable<'a> {
    reader: &'a Reader,
    rows: Vec<CorruptRow>,
}

impl Unreadable<'_> {
    fn severity(&mut self, word: &str, id: IncidentId) -> Option<Severity> {
        match word.parse::<Severity>() {
            Ok(s) => Some(s),
            Err(e) => {
                self.rows.push(self.reader.corrupt().found(CorruptRow {
                    table: "incidents",
                    id: id.get(),
                    field: "severity",
                    reason: e.to_string(),
                }));
                None
            }
        }
    }

    fn delivery_status(&mut self, word: &str, id: i64) -> Option<DeliveryStatus> {
        match word.parse::<DeliveryStatus>() {
            Ok(s) => Some(s),
            Err(e) => {
                self.rows.push(self.reader.corrupt().found(CorruptRow {
                    table: "deliveries",
                    id,
                    field: "status",
                    reason: e.to_string(),
                }));
                None
            }
        }
    }
}

/// The overview as of `now` (milliseconds since the epoch, from the service's clock).
pub(crate) async fn overview(reader: &Reader, now: i64) -> Result<Overview, StoreError> {
    let today = now.div_euclid(DAY_MS);
    let since = (today - (WINDOW_DAYS - 1)) * DAY_MS;
    let mut unreadable = Unreadable {
        reader,
        rows: Vec::new(),
    };
    let days = pages_per_day(reader, today, now, &mut unreadable).await?;
    let response = response_times(reader, since, now, &mut unreadable).await?;
    let noisiest = noisiest(reader, since, &mut unreadable).await?;
    let deliveries = delivery_outcomes(reader, since, &mut unreadable).await?;
    Ok(Overview {
        since,
        days,
        response,
        noisiest,
        deliveries,
        unreadable: unreadable.rows,
    })
}

/// Pages per day and severity, for the last [`WINDOW_DAYS`] days (oldest first, every day
/// present). Openings and reopenings: an incident that comes back is a new page for someone.
async fn pages_per_day(
    reader: &Reader,
    today: i64,
    now: i64,
    unreadable: &mut Unreadable<'_>,
) -> Result<Vec<DayCounts>, StoreError> {
    let since = (today - (WINDOW_DAYS - 1)) * DAY_MS;
    let opened: Vec<(i64, String, i64, IncidentId)> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT t.at / 86400000 AS day, i.severity, COUNT(*), MIN(i.id)
         FROM timeline t JOIN incidents i ON i.id = t.incident_id
         WHERE t.kind IN ('opened', 'reopened') AND t.at >= $1 AND t.at <= $2
           AND i.kind = 'issue'
         GROUP BY day, i.severity",
    )
    .bind(since)
    .bind(now)
    .fetch_all(c)
    .await)?;
    let mut per_day: BTreeMap<i64, BTreeMap<Severity, i64>> = BTreeMap::new();
    for (day, word, count, id) in opened {
        if let Some(sev) = unreadable.severity(&word, id) {
            *per_day.entry(day).or_default().entry(sev).or_default() += count;
        }
    }
    Ok((today - (WINDOW_DAYS - 1)..=today)
        .map(|day| DayCounts {
            day_start: day * DAY_MS,
            by_severity: per_day
                .remove(&day)
                .map(|m| m.into_iter().rev().filter(|(_, n)| *n > 0).collect())
                .unwrap_or_default(),
        })
        .collect())
}

/// Time to acknowledge and to resolve, by severity, for the incidents opened in the window.
async fn response_times(
    reader: &Reader,
    since: i64,
    now: i64,
    unreadable: &mut Unreadable<'_>,
) -> Result<Vec<ResponseTimes>, StoreError> {
    // (id, severity, opened_at, acknowledged_at, resolved_at)
    type EpisodeRow = (IncidentId, String, i64, Option<i64>, Option<i64>);
    let episodes: Vec<EpisodeRow> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT id, severity, opened_at, acknowledged_at,
                CASE WHEN state = 'resolved' THEN resolved_at END
         FROM incidents WHERE opened_at >= $1 AND opened_at <= $2 AND kind = 'issue'",
    )
    .bind(since)
    .bind(now)
    .fetch_all(c)
    .await)?;
    // (opened, acknowledge durations, resolve durations) by severity
    type Times = (i64, Vec<i64>, Vec<i64>);
    let mut times: BTreeMap<Severity, Times> = BTreeMap::new();
    for (id, word, opened_at, acked_at, resolved_at) in episodes {
        let Some(sev) = unreadable.severity(&word, id) else {
            continue;
        };
        let entry = times.entry(sev).or_default();
        entry.0 += 1;
        // A clock set back could store an acknowledgement before the opening; it is no
        // duration to rank.
        if let Some(d) = acked_at.map(|t| t - opened_at).filter(|d| *d >= 0) {
            entry.1.push(d);
        }
        if let Some(d) = resolved_at.map(|t| t - opened_at).filter(|d| *d >= 0) {
            entry.2.push(d);
        }
    }
    Ok(times
        .into_iter()
        .rev()
        .map(|(severity, (opened, ack, resolve))| ResponseTimes {
            severity,
            opened,
            acknowledge: Percentiles::of(ack),
            resolve: Percentiles::of(resolve),
        })
        .collect())
}

/// The [`NOISIEST`] incidents seen in the window, by event count.
async fn noisiest(
    reader: &Reader,
    since: i64,
    unreadable: &mut Unreadable<'_>,
) -> Result<Vec<NoisyIncident>, StoreError> {
    let noisy: Vec<(IncidentId, String, String, i64)> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT id, title, severity, event_count FROM incidents
         WHERE last_seen >= $1 AND kind = 'issue' ORDER BY event_count DESC, id ASC LIMIT $2",
    )
    .bind(since)
    .bind(NOISIEST)
    .fetch_all(c)
    .await)?;
    Ok(noisy
        .into_iter()
        .filter_map(|(id, title, word, event_count)| {
            Some(NoisyIncident {
                id,
                title,
                severity: unreadable.severity(&word, id)?,
                event_count,
            })
        })
        .collect())
}

/// Delivery outcomes per channel for the deliveries created in the window.
async fn delivery_outcomes(
    reader: &Reader,
    since: i64,
    unreadable: &mut Unreadable<'_>,
) -> Result<Vec<ChannelOutcomes>, StoreError> {
    let outcomes: Vec<(String, String, i64, i64)> = on!(reader, |c, Db| sqlx::query_as(
        "SELECT channel, status, COUNT(*), MIN(id) FROM deliveries
         WHERE created_at >= $1 GROUP BY channel, status ORDER BY channel",
    )
    .bind(since)
    .fetch_all(c)
    .await)?;
    let mut by_channel: BTreeMap<String, ChannelOutcomes> = BTreeMap::new();
    for (channel, word, count, id) in outcomes {
        let Some(status) = unreadable.delivery_status(&word, id) else {
            continue;
        };
        let c = by_channel
            .entry(channel.clone())
            .or_insert_with(|| ChannelOutcomes {
                channel,
                ..ChannelOutcomes::default()
            });
        match status {
            DeliveryStatus::Delivered => c.delivered += count,
            DeliveryStatus::Failed => c.failed += count,
            DeliveryStatus::Dead => c.dead += count,
            DeliveryStatus::Pending | DeliveryStatus::Sending => c.pending += count,
        }
    }
    Ok(by_channel.into_values().collect())
}

#[cfg(test)]
mod tests;
