//! The incident row and its states: defined in [`crate::domain`], where the store can read them
//! without depending on this module.

pub(crate) use crate::domain::{
    Incident, IncidentState, ResolvedEpisode, dedup_key, parse_dedup_key,
};
