//! The former grab-bag, split by concern into [`super::listings`], [`super::settings`],
//! [`super::inbound`], [`super::retention`] and [`super::gauges`]. Re-exported here only until
//! the remaining callers (`http`, `incidents::service`, `app`) import from those modules.

pub use super::gauges::{Gauges, gauges};
pub use super::inbound::{first_sighting, incident_for_pagerduty, webhook_seen};
pub use super::listings::{
    IncidentFilter, TimelineEntry, count_events, incident, list_incidents, timeline,
};
pub use super::retention::purge_raw_payloads;
pub use super::settings::{get_or_insert_setting, get_setting};
