use super::*;
use crate::store::stats::{ChannelOutcomes, DAY_MS, DayCounts, NoisyIncident, ResponseTimes};

#[test]
fn axis_tops_are_round() {
    let tops: Vec<i64> = [0, 1, 2, 3, 5, 6, 10, 11, 45, 100, 101]
        .into_iter()
        .map(nice_ceiling)
        .collect();
    assert_eq!(tops, [1, 1, 2, 5, 5, 10, 10, 20, 50, 100, 200]);
    assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
}

fn overview() -> Overview {
    let today = 20_601;
    Overview {
        since: (today - 29) * DAY_MS,
        days: (today - 29..=today)
            .map(|d| DayCounts {
                day_start: d * DAY_MS,
                by_severity: if d == today {
                    vec![(Severity::Critical, 2), (Severity::Medium, 1)]
                } else if d == today - 1 {
                    vec![(Severity::High, 1)]
                } else {
                    vec![]
                },
            })
            .collect(),
        response: vec![ResponseTimes {
            severity: Severity::Critical,
            opened: 2,
            acknowledge: Percentiles::of(vec![60_000, 240_000]),
            resolve: None,
        }],
        noisiest: vec![
            NoisyIncident {
                id: IncidentId(3),
                title: "<b>Boom</b>".into(),
                severity: Severity::Critical,
                event_count: 40,
            },
            NoisyIncident {
                id: IncidentId(4),
                title: "quiet".into(),
                severity: Severity::Medium,
                event_count: 10,
            },
        ],
        deliveries: vec![
            ChannelOutcomes {
                channel: "slack-alerts".into(),
                delivered: 3,
                failed: 1,
                ..ChannelOutcomes::default()
            },
            ChannelOutcomes {
                channel: "log".into(),
                delivered: 2,
                ..ChannelOutcomes::default()
            },
        ],
        unreadable: vec![],
    }
}

#[test]
fn bars_stack_most_severe_at_the_bottom_on_a_round_axis() {
    let v = OverviewView::of(&overview());
    let chart = &v.per_day;
    assert_eq!((chart.total, chart.max), (4, 5));
    assert_eq!(chart.bars.len(), 30);
    let today = &chart.bars[29];
    assert_eq!(today.total, 3);
    let [critical, medium] = &today.segments[..] else {
        panic!("{:?}", today.segments)
    };
    assert_eq!((critical.severity, critical.count), ("critical", 2));
    // 140 units for 5 incidents: 2 are 56 high, standing on the baseline at 148.
    assert_eq!((critical.y, critical.height), (92.0, 56.0));
    assert_eq!((medium.y, medium.height), (64.0, 28.0));
    // Dates under today and every 7th day back.
    assert_eq!(chart.labels.len(), 5);
    assert_eq!(chart.labels.last().map(|l| l.text.as_str()), Some("05-28"));
    let values: Vec<i64> = chart.gridlines.iter().map(|g| g.value).collect();
    assert_eq!(values, [0, 2, 5]);
}

#[test]
fn bars_scale_to_the_largest_value() {
    let v = OverviewView::of(&overview());
    assert_eq!(v.noisiest[0].width, BAR_WIDTH);
    assert_eq!(v.noisiest[1].width, BAR_WIDTH / 4.0);
    // In the order the store gives (by name there).
    let slack = &v.deliveries[0];
    assert_eq!(slack.channel, "slack-alerts");
    // Delivered then failed, side by side on one scale for every channel (4 is the most).
    assert_eq!(slack.segments[0].width, 270.0);
    assert_eq!(
        (slack.segments[1].x, slack.segments[1].width),
        (270.0, 90.0)
    );
    assert_eq!(v.deliveries[1].segments[0].width, 180.0);
    // The longest p90 spans the bar area; the median is a share of it.
    let lane = &v.response.blocks[0].lanes[0];
    let times = lane.times.as_ref().expect("acknowledged");
    assert_eq!((times.median_ms, times.p90_ms), (60_000, 240_000));
    assert_eq!(times.p90_x, WIDTH - 6.0);
    assert_eq!(times.median_width, px((WIDTH - 6.0) / 4.0));
    assert!(v.response.blocks[0].lanes[1].times.is_none());
}

#[test]
fn the_page_escapes_titles_and_says_no_data_when_empty() {
    let pages = Pages::new();
    let page = pages.render(
        StatusCode::OK,
        "pages/overview.html",
        &OverviewView::of(&overview()),
    );
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("&lt;b&gt;Boom&lt;/b&gt;"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("<b>Boom"));
    assert!(page.html.contains("href=\"/incidents/3\""));
    assert!(!page.html.contains("id=\"no-data\""));

    let mut empty = overview();
    empty.days.iter_mut().for_each(|d| d.by_severity.clear());
    empty.response.clear();
    empty.noisiest.clear();
    empty.deliveries.clear();
    let page = pages.render(
        StatusCode::OK,
        "pages/overview.html",
        &OverviewView::of(&empty),
    );
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("id=\"no-data\""), "{}", page.html);
    assert!(!page.html.contains("<svg class=\"chart\""), "{}", page.html);
}
