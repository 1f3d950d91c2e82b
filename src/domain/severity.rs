use serde::{Deserialize, Serialize};

use super::text_enum;

/// Ordered: a later variant is more severe, so `max` picks the worse of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Unclassified,
    Low,
    Medium,
    High,
    Critical,
}

text_enum!(pub Severity, "severity", {
    Unclassified => "unclassified",
    Low => "low",
    Medium => "medium",
    High => "high",
    Critical => "critical",
});

impl Severity {
    /// The severity this word names, `None` for any other word.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}
