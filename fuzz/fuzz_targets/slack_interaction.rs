//! Slack interaction bodies (`POST /slack/interactions`): the form decoding, the `payload` JSON
//! and the button values, i.e. everything `http::inbound` reads after the signature check; and
//! the signature check itself, with the input also used as the header values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paiid_alerts::testing::auth::slack_signature::verify_slack_request;
use paiid_alerts::testing::http::form;
use paiid_alerts::testing::http::inbound::{button_target, parse_slack_interaction};

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = parse_slack_interaction(data) {
        for action in &payload.actions {
            if let Some(value) = action.value.as_deref() {
                let _ = button_target(value);
            }
        }
    }
    let text = form::text(data);
    let text: &str = &text;
    let _ = form::parse(text);
    let (ts, sig) = text.split_once('\n').unwrap_or((text, text));
    let _ = verify_slack_request(
        b"slack-signing-secret",
        Some(ts),
        Some(sig),
        data,
        1_531_420_618,
    );
});
