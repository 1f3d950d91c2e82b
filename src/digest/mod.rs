//! Daily and weekly digests.

pub mod schedule;
