//! What a state change must write beside the incident row, in the same transaction: timeline
//! entries and outbox deliveries. Transitions return it; the store writes it.

use super::{Episode, IncidentId, NotificationKind};

#[derive(Debug, Clone, PartialEq)]
pub struct NewTimeline {
    pub incident_id: IncidentId,
    pub at: i64,
    pub kind: super::TimelineKind,
    pub actor: Option<String>,
    pub via: Option<super::Via>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub incident_id: IncidentId,
    pub episode: Episode,
    pub channel: String,
    pub kind: NotificationKind,
    pub detail: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    pub timeline: Vec<NewTimeline>,
    pub deliveries: Vec<NewDelivery>,
    /// True when an escalation deadline was set or cleared (the scheduler should look again).
    pub timers_changed: bool,
}

impl Effects {
    pub fn extend(&mut self, other: Effects) {
        self.timeline.extend(other.timeline);
        self.deliveries.extend(other.deliveries);
        self.timers_changed |= other.timers_changed;
    }
}
