//! Signed ack links (`/ack/{token}`): `AckKeys::verify`, and `AckKeys::from_env_value` (the
//! `ACK_SIGNING_KEY` parser) on the same text.
//!
//! Input: the token as it arrives in the URL path. The keys are fixed so that seeds signed with
//! them (fuzz/seeds/ack_token) reach past the MAC into the claims parser.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paiid_alerts::testing::auth::ack_token::{AckKeys, MAX_TOKEN_LEN};

/// 2027-01-15T08:00:00Z: before the seeds' `exp`, so valid seeds verify.
const NOW: i64 = 1_800_000_000;

fn keys() -> &'static AckKeys {
    static KEYS: OnceLock<AckKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        AckKeys::new(("a", &[7u8; 32]), &[("old", &[42u8; 32])]).expect("fixed test keys")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let keys = keys();
    if let Ok(claims) = keys.verify(&text, NOW) {
        assert!(text.len() <= MAX_TOKEN_LEN);
        assert!(claims.exp > NOW, "expired claims verified: {claims:?}");
        assert!(keys.kids().any(|kid| kid == claims.kid));
        // What we sign from accepted claims verifies back to the same claims.
        let again = keys.sign(&claims);
        let mut expected = claims.clone();
        expected.kid = keys.current_kid().to_string();
        assert_eq!(keys.verify(&again, NOW), Ok(expected));
    }
    let _ = AckKeys::from_env_value(&text);
});
