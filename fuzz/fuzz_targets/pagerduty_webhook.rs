//! PagerDuty webhook v3 bodies (`POST /webhooks/pagerduty`): the event envelope and the fields
//! `http::inbound` acts on; and the `X-PagerDuty-Signature` check, with the input also used as
//! the header value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paiid_alerts::testing::auth::pagerduty_signature::verify_pagerduty_signature;
use paiid_alerts::testing::http::inbound::parse_pagerduty_webhook;
use paiid_alerts::testing::incidents::model::parse_dedup_key;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = parse_pagerduty_webhook(data) {
        let _ = event.incident_key().and_then(parse_dedup_key);
        let _ = event.pagerduty_incident_id();
        let _ = event.agent.as_ref().and_then(|a| a.summary.as_deref());
    }
    let header = String::from_utf8_lossy(data);
    let _ = verify_pagerduty_signature(b"pd-webhook-secret-for-tests", Some(&header), data);
});
