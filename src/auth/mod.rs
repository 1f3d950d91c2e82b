//! Inbound authentication: signed ack links, Slack and PagerDuty webhook signatures.
//!
//! Everything here is pure: callers pass the current time in, so verification is deterministic
//! and testable, and none of these functions can panic on hostile input.

pub(crate) mod ack_token;
pub(crate) mod pagerduty_signature;
pub(crate) mod slack_signature;
