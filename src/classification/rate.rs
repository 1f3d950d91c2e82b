//! Sliding windows for "more than N events within T". Only the newest N+1 timestamps of a key
//! are kept: that is all the question needs, so memory is bounded however hot a key runs.

use std::collections::{HashMap, VecDeque};

#[derive(Default)]
pub(crate) struct RateWindows {
    windows: HashMap<(usize, String), VecDeque<i64>>,
}

impl RateWindows {
    /// Records an event at `now_ms` and answers whether more than `more_than` events of this
    /// (rule, key) fall within the last `within_ms`.
    pub(crate) fn record(
        &mut self,
        rule: usize,
        key: &str,
        now_ms: i64,
        within_ms: i64,
        more_than: u32,
    ) -> bool {
        let keep = more_than as usize + 1;
        let q = match self.windows.get_mut(&(rule, key.to_string())) {
            Some(q) => q,
            None => self.windows.entry((rule, key.to_string())).or_default(),
        };
        q.push_back(now_ms);
        while q.len() > keep {
            q.pop_front();
        }
        let cutoff = now_ms - within_ms;
        while q.front().is_some_and(|t| *t <= cutoff) {
            q.pop_front();
        }
        q.len() > more_than as usize
    }

    /// Drops keys whose newest event is older than the longest window.
    pub(crate) fn prune(&mut self, now_ms: i64, longest_ms: i64) {
        self.windows
            .retain(|_, q| q.back().is_some_and(|t| *t > now_ms - longest_ms));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.windows.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn eleventh_in_five_minutes_triggers() {
        let mut w = RateWindows::default();
        for i in 0..10 {
            assert!(!w.record(0, "p", i * 1000, 5 * MIN, 10), "event {}", i + 1);
        }
        assert!(w.record(0, "p", 10_000, 5 * MIN, 10), "11th triggers");
        assert!(w.record(0, "p", 11_000, 5 * MIN, 10), "12th still over");
    }

    #[test]
    fn old_events_expire() {
        let mut w = RateWindows::default();
        for i in 0..10 {
            w.record(0, "p", i * MIN, 5 * MIN, 10);
        }
        // 10 events spread over 10 minutes: never more than 10 in any 5 minutes.
        assert!(!w.record(0, "p", 10 * MIN, 5 * MIN, 10));
    }

    #[test]
    fn keys_are_independent_and_pruned() {
        let mut w = RateWindows::default();
        for i in 0..11 {
            w.record(0, "a", i, 5 * MIN, 10);
        }
        assert!(!w.record(0, "b", 20, 5 * MIN, 10));
        assert_eq!(w.len(), 2);
        w.prune(20 * MIN, 5 * MIN);
        assert!(w.is_empty());
    }
}
