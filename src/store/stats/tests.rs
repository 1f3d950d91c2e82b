use super::*;

#[test]
fn percentiles_are_nearest_rank() {
    assert_eq!(Percentiles::of(vec![]), None);
    assert_eq!(
        Percentiles::of(vec![7]),
        Some(Percentiles {
            count: 1,
            median_ms: 7,
            p90_ms: 7
        })
    );
    // Unsorted in, ranked: the median of four is the 2nd, the p90 the 4th.
    assert_eq!(
        Percentiles::of(vec![40, 10, 30, 20]),
        Some(Percentiles {
            count: 4,
            median_ms: 20,
            p90_ms: 40
        })
    );
    // Ten values 1..=10: the median is the 5th, the p90 the 9th.
    assert_eq!(
        Percentiles::of((1..=10).rev().collect()),
        Some(Percentiles {
            count: 10,
            median_ms: 5,
            p90_ms: 9
        })
    );
}

#[test]
fn an_overview_with_only_zero_days_is_empty() {
    let o = Overview {
        since: 0,
        days: vec![DayCounts {
            day_start: 0,
            by_severity: vec![],
        }],
        response: vec![],
        noisiest: vec![],
        deliveries: vec![],
        unreadable: vec![],
    };
    assert!(o.is_empty());
    let busy = Overview {
        deliveries: vec![ChannelOutcomes {
            channel: "log".into(),
            delivered: 1,
            ..ChannelOutcomes::default()
        }],
        ..o
    };
    assert!(!busy.is_empty());
}
