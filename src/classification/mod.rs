//! The severity matrix: rules from `routing.yaml` are tried in order and the first that matches
//! gives the severity; no match is `unclassified` (stored and listed, never dropped).
//!
//! Pure apart from the rate windows, which it owns; the incident writer (a single task) is its
//! only caller, so no locking is needed.

pub(crate) mod explain;
mod rate;

pub(crate) use crate::domain::Severity;
pub(crate) use rate::RateWindows;

use crate::config::{Conditions, RateGrouping, RoutingConfig, Rule};
use crate::domain::EnvironmentNames;
use crate::intake::{AlertFacts, Meaning};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Classification {
    pub severity: Severity,
    /// The matching rule's name, `None` when unclassified.
    pub rule: Option<String>,
}

impl Classification {
    pub(crate) fn unclassified() -> Self {
        Self {
            severity: Severity::Unclassified,
            rule: None,
        }
    }
}

pub(crate) struct Classifier {
    rules: Vec<Rule>,
    windows: RateWindows,
    fingerprint: i64,
}

/// The rate windows one event counted toward: `(rule index, group key)`. Stored with the event
/// (`events.rate_keys`) so a restart refills the windows without parsing bodies; the indexes are
/// only meaningful under rules with the same [`Classifier::fingerprint`].
pub(crate) type RateKeys = Vec<(usize, String)>;

/// The column form of [`RateKeys`]: JSON, `None` when the event counted toward no window.
pub(crate) fn encode_rate_keys(keys: &RateKeys) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    serde_json::to_string(keys)
        .inspect_err(|e| tracing::error!(error = %e, "rate keys not stored"))
        .ok()
}

/// Reads [`encode_rate_keys`]'s form back; anything else counts toward nothing.
pub(crate) fn decode_rate_keys(column: Option<&str>) -> RateKeys {
    column
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default()
}

/// FNV-1a over the rules' debug form: equal rules, equal fingerprint, across restarts of the same
/// build. A different build may print them differently; that only costs one re-derivation.
fn fingerprint(rules: &[Rule]) -> i64 {
    let text = format!("{rules:?}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

impl Classifier {
    pub(crate) fn new(rules: Vec<Rule>) -> Self {
        Self {
            fingerprint: fingerprint(&rules),
            rules,
            windows: RateWindows::default(),
        }
    }

    /// Identifies these rules in stored [`RateKeys`].
    pub(crate) fn fingerprint(&self) -> i64 {
        self.fingerprint
    }

    /// [`Self::classify`], also answering which rate windows the event counted toward.
    pub(crate) fn classify_counted(
        &mut self,
        facts: &AlertFacts,
        now_ms: i64,
    ) -> (Classification, RateKeys) {
        let keys = self.rate_keys(facts);
        (self.classify(facts, now_ms), keys)
    }

    /// The rate windows `facts` count toward under these rules, without counting them.
    pub(crate) fn rate_keys(&self, facts: &AlertFacts) -> RateKeys {
        if facts.meaning() != Meaning::Alert || !facts.occurrence {
            return Vec::new();
        }
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| {
                let rate = rule.when.rate.as_ref()?;
                matches_static(&rule.when, facts).then(|| (i, group_key(rate.per, facts)))
            })
            .collect()
    }

    /// Counts a stored occurrence at `at_ms` toward the windows in `keys` (oldest first), as
    /// [`Self::classify`] counted it when it arrived. Keys naming no rate rule are skipped.
    pub(crate) fn restore(&mut self, keys: &RateKeys, at_ms: i64) {
        for (i, key) in keys {
            if let Some(rate) = self.rules.get(*i).and_then(|r| r.when.rate.as_ref()) {
                self.windows
                    .record(*i, key, at_ms, rate.within.as_millis_i64(), rate.more_than);
            }
        }
    }

    /// Records `facts` (seen at `now_ms`) in every rate window it belongs to, then returns the
    /// first matching rule. Every rate rule counts the event even when an earlier rule matched,
    /// so a window always holds every error it should.
    pub(crate) fn classify(&mut self, facts: &AlertFacts, now_ms: i64) -> Classification {
        if facts.meaning() != Meaning::Alert {
            return Classification::unclassified();
        }
        let mut first: Option<usize> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !matches_static(&rule.when, facts) {
                continue;
            }
            let rate_ok = match &rule.when.rate {
                None => true,
                Some(rate) => {
                    if !facts.occurrence {
                        false
                    } else {
                        let key = group_key(rate.per, facts);
                        self.windows.record(
                            i,
                            &key,
                            now_ms,
                            rate.within.as_millis_i64(),
                            rate.more_than,
                        )
                    }
                }
            };
            // Time conditions (`during`, `not_during`) choose the rule, not what the windows
            // count: a window holds its errors whatever the hour, as a restart rebuilds it.
            if rate_ok && first.is_none() && rule.when.in_time(now_ms) {
                first = Some(i);
            }
        }
        match first {
            Some(i) => Classification {
                severity: self.rules[i].severity,
                rule: Some(self.rules[i].name.clone()),
            },
            None => Classification::unclassified(),
        }
    }

    /// Counts an event as if classified at `at_ms` (tests rebuild windows this way).
    #[cfg(test)]
    pub(crate) fn replay(&mut self, facts: &AlertFacts, at_ms: i64) {
        let _ = self.classify(facts, at_ms);
    }

    /// The longest rate window, i.e. how far back a restart must replay.
    pub(crate) fn longest_window_ms(&self) -> i64 {
        self.rules
            .iter()
            .filter_map(|r| r.when.rate.as_ref().map(|rate| rate.within.as_millis_i64()))
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn prune(&mut self, now_ms: i64) {
        let longest = self.longest_window_ms();
        self.windows.prune(now_ms, longest);
    }
}

fn group_key(per: RateGrouping, facts: &AlertFacts) -> String {
    match per {
        RateGrouping::Project => facts.project.clone().unwrap_or_default(),
        RateGrouping::Issue => facts.incident_key().unwrap_or_default(),
    }
}

fn one_of(list: &Option<Vec<String>>, value: Option<&str>, case_insensitive: bool) -> bool {
    match list {
        None => true,
        Some(list) => match value {
            None => false,
            Some(v) if case_insensitive => list.iter().any(|x| x.eq_ignore_ascii_case(v)),
            Some(v) => list.iter().any(|x| x == v),
        },
    }
}

/// True when an alert's `environment` is one of `accepted` (already alias-expanded), ignoring
/// case: how rules compare environments, and so how silences do ([`EnvironmentNames`]).
pub(crate) fn environment_matches(
    accepted: &Option<Vec<String>>,
    environment: Option<&str>,
) -> bool {
    one_of(accepted, environment, true)
}

/// A silence's `environment` matcher reads like a rule's `environment:` condition in this file.
impl EnvironmentNames for RoutingConfig {
    fn environment_is(&self, wanted: &str, environment: Option<&str>) -> bool {
        environment_matches(&Some(self.environment_names(wanted)), environment)
    }
}

/// Every condition except the rate window.
pub(crate) fn matches_static(when: &Conditions, f: &AlertFacts) -> bool {
    if !environment_matches(&when.environments, f.environment.as_deref())
        || !one_of(&when.levels, f.level.as_deref(), true)
        || !one_of(&when.sentry_rules, f.sentry_rule.as_deref(), false)
        || !one_of(&when.projects, f.project.as_deref(), false)
        || !one_of(&when.resources, Some(f.resource.as_str()), true)
        || !one_of(&when.actions, Some(f.action.as_str()), true)
    {
        return false;
    }
    if let Some(aggs) = &when.aggregates {
        let Some(agg) = f.metric.as_ref().and_then(|m| m.aggregate.as_deref()) else {
            return false;
        };
        if !aggs.iter().any(|a| agg.contains(a.as_str())) {
            return false;
        }
    }
    if !when.tags.iter().all(|(k, v)| f.tag(k) == Some(v.as_str())) {
        return false;
    }
    if let Some(limit) = when.transaction_duration_over_ms {
        let metric_duration = f
            .metric
            .as_ref()
            .filter(|m| m.is_transaction_duration())
            .and_then(|m| m.value);
        match f.transaction_duration_ms.or(metric_duration) {
            Some(d) if d > limit => {}
            _ => return false,
        }
    }
    if let Some(limit) = when.apdex_below {
        match f
            .metric
            .as_ref()
            .filter(|m| m.is_apdex())
            .and_then(|m| m.value)
        {
            Some(a) if a < limit => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
