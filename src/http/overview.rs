//! `GET /overview`: the last 30 days in pictures, as inline SVG drawn on the server (no script,
//! no external resource, so it works under the pages' CSP and offline).
//!
//! The numbers come from [`crate::store::stats`]; this module scales them to pixel coordinates
//! ([`OverviewView`]) and `src/templates/pages/overview.html.j2` only places them. Every bar
//! carries its numbers as `data-*` attributes and a `<title>` (a tooltip), so that people can
//! read exact counts and tests can check them without parsing geometry.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;

use super::AppState;
use super::pages::{Pages, web_login};
use crate::clock::ms_to_datetime;
use crate::domain::{IncidentId, Severity};
use crate::store::stats::{self, Overview, Percentiles};

pub(crate) fn router(pages: Pages) -> Router<AppState> {
    Router::new()
        .route("/overview", get(overview_page))
        .layer(Extension(pages))
}

async fn overview_page(
    State(state): State<AppState>,
    Extension(pages): Extension<Pages>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = web_login(&state, &pages, &headers) {
        return *r;
    }
    let now = state.clock.now_ms();
    match stats::overview(state.store.reader(), now).await {
        Ok(o) => {
            let view = OverviewView::of(&o).with_log_only(&super::pages::log_only(&state));
            pages
                .render(StatusCode::OK, "pages/overview.html", &view)
                .into_response()
        }
        Err(e) => pages
            .message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                &e.to_string(),
            )
            .into_response(),
    }
}

/// Every chart is drawn in a 360-unit-wide view box and scaled to the page's width: about one
/// unit per CSS pixel on a phone, so the 11- to 14-unit text stays readable there.
const WIDTH: f64 = 360.0;

/// Fill colours by severity (the same hues as the severity words on the other pages).
fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#b3261e",
        Severity::High => "#e07b00",
        Severity::Medium => "#c9a400",
        Severity::Low => "#4a7bd0",
        Severity::Unclassified => "#8a93a3",
    }
}

const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Unclassified,
];

/// One decimal is finer than any screen needs and keeps the markup short.
fn px(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn day(ms: i64) -> String {
    ms_to_datetime(ms).format("%Y-%m-%d").to_string()
}

/// The smallest 1, 2 or 5 times a power of ten at or above `n` (at least 1): the top of an axis
/// with round gridlines.
pub(crate) fn nice_ceiling(n: i64) -> i64 {
    let mut step = 1_i64;
    loop {
        for m in [1, 2, 5] {
            let candidate = step.saturating_mul(m);
            if candidate >= n {
                return candidate;
            }
        }
        if step > i64::MAX / 10 {
            return i64::MAX;
        }
        step *= 10;
    }
}

/// What the template sees.
#[derive(Debug, Serialize)]
pub(crate) struct OverviewView {
    title: &'static str,
    /// Nothing at all in the window: the page says "no data yet" and draws nothing.
    empty: bool,
    since: String,
    until: String,
    legend: Vec<LegendItem>,
    per_day: DaysChart,
    response: ResponseChart,
    noisiest: Vec<NoisyRow>,
    deliveries: Vec<ChannelRow>,
    /// Some channel in `deliveries` only reaches the log: the legend explains "logged".
    any_log_only: bool,
    /// Groups left out because a stored word did not decode, with why.
    unreadable: Vec<String>,
}

#[derive(Debug, Serialize)]
struct LegendItem {
    severity: &'static str,
    colour: &'static str,
}

#[derive(Debug, Serialize)]
struct DaysChart {
    width: f64,
    height: f64,
    /// Baseline of the dates under the bars.
    label_y: f64,
    /// Opened or reopened in the whole window.
    total: i64,
    /// The top of the axis (a round number at or above the busiest day).
    max: i64,
    bars: Vec<DayBar>,
    gridlines: Vec<Gridline>,
    labels: Vec<AxisLabel>,
}

#[derive(Debug, Serialize)]
struct DayBar {
    day: String,
    total: i64,
    /// Where the day's column is, for an invisible full-height target carrying the day's tooltip.
    x: f64,
    width: f64,
    segments: Vec<Segment>,
}

#[derive(Debug, Serialize)]
struct Segment {
    severity: &'static str,
    count: i64,
    colour: &'static str,
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

#[derive(Debug, Serialize)]
struct Gridline {
    y: f64,
    value: i64,
}

#[derive(Debug, Serialize)]
struct AxisLabel {
    x: f64,
    text: String,
}

#[derive(Debug, Serialize)]
struct ResponseChart {
    width: f64,
    height: f64,
    /// The longest p90 shown: the full length of a bar.
    max_ms: i64,
    blocks: Vec<ResponseBlock>,
}

#[derive(Debug, Serialize)]
struct ResponseBlock {
    severity: &'static str,
    colour: &'static str,
    opened: i64,
    /// Baseline of the block's heading.
    y: f64,
    lanes: [Lane; 2],
}

#[derive(Debug, Serialize)]
struct Lane {
    /// `acknowledge` or `resolve`.
    kind: &'static str,
    /// Baseline of the lane's text.
    text_y: f64,
    /// `None`: nothing acknowledged (or resolved) yet.
    times: Option<LaneTimes>,
}

#[derive(Debug, Serialize)]
struct LaneTimes {
    count: usize,
    median_ms: i64,
    p90_ms: i64,
    bar_x: f64,
    bar_y: f64,
    /// Length of the median bar.
    median_width: f64,
    /// Centre of the p90 marker.
    p90_x: f64,
    mid_y: f64,
    bar_height: f64,
}

#[derive(Debug, Serialize)]
struct NoisyRow {
    id: IncidentId,
    title: String,
    severity: &'static str,
    colour: &'static str,
    event_count: i64,
    /// Relative to the noisiest, out of [`BAR_WIDTH`].
    width: f64,
}

#[derive(Debug, Serialize)]
struct ChannelRow {
    channel: String,
    total: i64,
    delivered: i64,
    failed: i64,
    dead: i64,
    pending: i64,
    segments: Vec<OutcomeSegment>,
    /// Why the channel only reaches the log, if it does.
    log_only: Option<String>,
    /// "delivered", or "logged" for a channel that only reaches the log.
    delivered_word: &'static str,
}

#[derive(Debug, Serialize)]
struct OutcomeSegment {
    outcome: &'static str,
    count: i64,
    colour: &'static str,
    x: f64,
    width: f64,
}

/// Length of a full horizontal bar (noisiest incidents, deliveries).
const BAR_WIDTH: f64 = WIDTH;

impl OverviewView {
    pub(crate) fn of(o: &Overview) -> Self {
        let until = o.days.last().map_or(o.since, |d| d.day_start);
        Self {
            title: "Overview",
            empty: o.is_empty(),
            since: day(o.since),
            until: day(until),
            legend: SEVERITIES
                .iter()
                .map(|s| LegendItem {
                    severity: s.as_str(),
                    colour: colour(*s),
                })
                .collect(),
            per_day: DaysChart::of(o),
            response: ResponseChart::of(o),
            noisiest: noisy_rows(o),
            deliveries: channel_rows(o),
            any_log_only: false,
            unreadable: o.unreadable.iter().map(ToString::to_string).collect(),
        }
    }
}

impl OverviewView {
    /// Marks the channels that only reach the log (name -> why): what they "delivered" was
    /// written to the log, so the page says "logged" in grey, never "delivered" in green.
    pub(crate) fn with_log_only(mut self, log_only: &BTreeMap<String, String>) -> Self {
        for c in &mut self.deliveries {
            let Some(why) = log_only.get(&c.channel) else {
                continue;
            };
            c.log_only = Some(why.clone());
            c.delivered_word = "logged";
            for s in &mut c.segments {
                if s.outcome == "delivered" {
                    s.outcome = "logged";
                    s.colour = LOGGED_COLOUR;
                }
            }
            self.any_log_only = true;
        }
        self
    }
}

/// A delivery that only reached the log: neither the green of a message sent nor the grey of
/// one still pending.
const LOGGED_COLOUR: &str = "#b9c0cc";

impl DaysChart {
    fn of(o: &Overview) -> Self {
        // Room on the left for the axis numbers, at the bottom for the dates.
        const LEFT: f64 = 26.0;
        const TOP: f64 = 8.0;
        const PLOT_HEIGHT: f64 = 140.0;
        const BOTTOM: f64 = 18.0;
        let busiest = o.days.iter().map(|d| d.total()).max().unwrap_or(0);
        let max = nice_ceiling(busiest);
        // Room on the right for today's date, centred under the last bar.
        const RIGHT: f64 = 14.0;
        let slot = (WIDTH - LEFT - RIGHT) / o.days.len().max(1) as f64;
        let bar_width = px(slot * 0.75);
        let baseline = TOP + PLOT_HEIGHT;
        let per_unit = PLOT_HEIGHT / max as f64;
        let last = o.days.len().saturating_sub(1);
        let mut labels = Vec::new();
        let bars = o
            .days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let x = LEFT + slot * i as f64 + (slot - bar_width) / 2.0;
                // A date under every 7th column, counted back from today so today is labelled.
                if (last - i).is_multiple_of(7) {
                    labels.push(AxisLabel {
                        x: px(x + bar_width / 2.0),
                        text: day(d.day_start)[5..].to_string(),
                    });
                }
                let mut top = baseline;
                // Most severe at the bottom, where the eye starts.
                let segments = d
                    .by_severity
                    .iter()
                    .map(|(sev, count)| {
                        let height = *count as f64 * per_unit;
                        top -= height;
                        Segment {
                            severity: sev.as_str(),
                            count: *count,
                            colour: colour(*sev),
                            x: px(x),
                            y: px(top),
                            width: bar_width,
                            height: px(height),
                        }
                    })
                    .collect();
                DayBar {
                    day: day(d.day_start),
                    total: d.total(),
                    x: px(LEFT + slot * i as f64),
                    width: px(slot),
                    segments,
                }
            })
            .collect();
        let mut values = vec![0, max / 2, max];
        // An axis up to 1 has no half.
        values.dedup();
        let gridlines = values
            .into_iter()
            .map(|value| Gridline {
                y: px(baseline - value as f64 * per_unit),
                value,
            })
            .collect();
        Self {
            width: WIDTH,
            height: baseline + BOTTOM,
            label_y: baseline + BOTTOM - 4.0,
            total: o.days.iter().map(|d| d.total()).sum(),
            max,
            bars,
            gridlines,
            labels,
        }
    }
}

impl ResponseChart {
    fn of(o: &Overview) -> Self {
        const LABEL_X: f64 = 0.0;
        // Text is 13 units (headings 14): about 13 px on a phone.
        const HEADING: f64 = 20.0;
        const LANE: f64 = 34.0;
        const EMPTY_LANE: f64 = 18.0;
        const GAP: f64 = 10.0;
        const BAR_HEIGHT: f64 = 8.0;
        let max_ms = o
            .response
            .iter()
            .flat_map(|r| [r.acknowledge, r.resolve])
            .flatten()
            .map(|p| p.p90_ms)
            .max()
            .unwrap_or(0)
            .max(1);
        // Room at the right end for the p90 marker.
        let scale = (WIDTH - LABEL_X - 6.0) / max_ms as f64;
        let mut y = 0.0;
        let blocks = o
            .response
            .iter()
            .map(|r| {
                let heading_y = y + 15.0;
                y += HEADING;
                let mut lane = |kind: &'static str, p: Option<Percentiles>| {
                    let top = y;
                    // A lane with nothing to draw is only its line of text.
                    y += if p.is_some() { LANE } else { EMPTY_LANE };
                    Lane {
                        kind,
                        text_y: px(top + 13.0),
                        times: p.map(|p| LaneTimes {
                            count: p.count,
                            median_ms: p.median_ms,
                            p90_ms: p.p90_ms,
                            bar_x: LABEL_X,
                            bar_y: px(top + 18.0),
                            median_width: px((p.median_ms as f64 * scale).max(1.0)),
                            p90_x: px(LABEL_X + p.p90_ms as f64 * scale),
                            mid_y: px(top + 18.0 + BAR_HEIGHT / 2.0),
                            bar_height: BAR_HEIGHT,
                        }),
                    }
                };
                let lanes = [
                    lane("acknowledge", r.acknowledge),
                    lane("resolve", r.resolve),
                ];
                y += GAP;
                ResponseBlock {
                    severity: r.severity.as_str(),
                    colour: colour(r.severity),
                    opened: r.opened,
                    y: px(heading_y),
                    lanes,
                }
            })
            .collect();
        Self {
            width: WIDTH,
            height: px(y),
            max_ms,
            blocks,
        }
    }
}

fn noisy_rows(o: &Overview) -> Vec<NoisyRow> {
    let most = o
        .noisiest
        .iter()
        .map(|n| n.event_count)
        .max()
        .unwrap_or(0)
        .max(1);
    o.noisiest
        .iter()
        .map(|n| NoisyRow {
            id: n.id,
            title: n.title.clone(),
            severity: n.severity.as_str(),
            colour: colour(n.severity),
            event_count: n.event_count,
            width: px((n.event_count.max(0) as f64 / most as f64 * BAR_WIDTH).max(1.0)),
        })
        .collect()
}

fn channel_rows(o: &Overview) -> Vec<ChannelRow> {
    // One scale for every channel, so that a busy channel's bar is longer.
    let most = o
        .deliveries
        .iter()
        .map(|c| c.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let per_unit = BAR_WIDTH / most as f64;
    o.deliveries
        .iter()
        .map(|c| {
            let mut x = 0.0;
            let segments = [
                ("delivered", c.delivered, "#2e7d32"),
                ("failed", c.failed, "#e07b00"),
                ("dead", c.dead, "#b3261e"),
                ("pending", c.pending, "#8a93a3"),
            ]
            .into_iter()
            .filter(|(_, count, _)| *count > 0)
            .map(|(outcome, count, colour)| {
                let width = count as f64 * per_unit;
                let s = OutcomeSegment {
                    outcome,
                    count,
                    colour,
                    x: px(x),
                    width: px(width),
                };
                x += width;
                s
            })
            .collect();
            ChannelRow {
                channel: c.channel.clone(),
                total: c.total(),
                delivered: c.delivered,
                failed: c.failed,
                dead: c.dead,
                pending: c.pending,
                segments,
                log_only: None,
                delivered_word: "delivered",
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
