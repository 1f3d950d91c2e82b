//! Verification of Slack request signatures (`X-Slack-Signature`, `X-Slack-Request-Timestamp`).
//!
//! Slack signs `v0:{timestamp}:{raw body}` with HMAC-SHA256 under the app's signing secret and
//! sends `v0=` + lowercase hex. The timestamp is part of the signed text, so bounding its age
//! (300 s, Slack's recommendation) stops replays of captured requests.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Largest accepted difference between the request timestamp and now, either direction.
pub const MAX_SKEW_SECS: u64 = 300;

/// The only signature version Slack has published.
const VERSION_PREFIX: &str = "v0=";

/// Why a Slack request was refused. All of them map to HTTP 401; the variant is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackSignatureError {
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    #[error("X-Slack-Request-Timestamp is not a unix timestamp")]
    InvalidTimestamp,
    #[error("X-Slack-Request-Timestamp is more than {MAX_SKEW_SECS} s away from now")]
    StaleTimestamp,
    #[error("X-Slack-Signature is not `v0=` followed by 64 hex digits")]
    MalformedSignature,
    #[error("X-Slack-Signature does not match the request")]
    Mismatch,
    #[error("Slack signing secret is empty")]
    EmptySecret,
}

/// Checks that `body` was sent by Slack within the last five minutes.
///
/// `body` must be the raw bytes as received (before any form decoding): Slack signs exactly
/// those bytes.
pub fn verify_slack_request(
    signing_secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SlackSignatureError> {
    // An empty secret is a configuration mistake; refusing keeps an unconfigured service from
    // accepting requests signed with the empty key.
    if signing_secret.is_empty() {
        return Err(SlackSignatureError::EmptySecret);
    }
    let timestamp = timestamp_header
        .map(str::trim)
        .ok_or(SlackSignatureError::MissingTimestamp)?;
    let signature = signature_header
        .map(str::trim)
        .ok_or(SlackSignatureError::MissingSignature)?;

    // Digits only: `i64::from_str` would also take a leading `+`, and the signed text uses the
    // header verbatim, so be strict about what we agree to sign.
    if timestamp.is_empty()
        || timestamp.len() > 18
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SlackSignatureError::InvalidTimestamp);
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SlackSignatureError::InvalidTimestamp)?;
    if ts.abs_diff(now_unix) > MAX_SKEW_SECS {
        return Err(SlackSignatureError::StaleTimestamp);
    }

    let hex_sig = signature
        .strip_prefix(VERSION_PREFIX)
        .ok_or(SlackSignatureError::MalformedSignature)?;
    if hex_sig.len() != 64 {
        return Err(SlackSignatureError::MalformedSignature);
    }
    let expected = hex::decode(hex_sig).map_err(|_| SlackSignatureError::MalformedSignature)?;

    let mut mac =
        HmacSha256::new_from_slice(signing_secret).map_err(|_| SlackSignatureError::EmptySecret)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SlackSignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example, https://api.slack.com/authentication/verifying-requests-from-slack
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const TS_NUM: i64 = 1_531_420_618;
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    fn sign(secret: &[u8], ts: &str, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body);
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn slack_published_vector_verifies() {
        assert_eq!(sign(SECRET, TS, BODY), SIG);
        assert_eq!(
            verify_slack_request(SECRET, Some(TS), Some(SIG), BODY, TS_NUM),
            Ok(())
        );
        // Within the window either side.
        for now in [TS_NUM - 300, TS_NUM + 300, TS_NUM + 1] {
            assert_eq!(
                verify_slack_request(SECRET, Some(TS), Some(SIG), BODY, now),
                Ok(()),
                "{now}"
            );
        }
        // Uppercase hex is still the same bytes.
        let upper = format!("v0={}", SIG[3..].to_uppercase());
        assert_eq!(
            verify_slack_request(SECRET, Some(TS), Some(&upper), BODY, TS_NUM),
            Ok(())
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        for now in [TS_NUM + 301, TS_NUM - 301, i64::MAX, i64::MIN, 0] {
            assert_eq!(
                verify_slack_request(SECRET, Some(TS), Some(SIG), BODY, now),
                Err(SlackSignatureError::StaleTimestamp),
                "{now}"
            );
        }
    }

    #[test]
    fn missing_headers() {
        assert_eq!(
            verify_slack_request(SECRET, None, Some(SIG), BODY, TS_NUM),
            Err(SlackSignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify_slack_request(SECRET, Some(TS), None, BODY, TS_NUM),
            Err(SlackSignatureError::MissingSignature)
        );
        assert_eq!(
            verify_slack_request(SECRET, None, None, BODY, TS_NUM),
            Err(SlackSignatureError::MissingTimestamp)
        );
    }

    #[test]
    fn bad_timestamps() {
        for ts in [
            "",
            "abc",
            "+1531420618",
            "-1531420618",
            "1531420618.5",
            "99999999999999999999",
        ] {
            assert_eq!(
                verify_slack_request(SECRET, Some(ts), Some(SIG), BODY, TS_NUM),
                Err(SlackSignatureError::InvalidTimestamp),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn wrong_prefix_or_shape() {
        let hex_part = &SIG[3..];
        for sig in [
            hex_part.to_string(),
            format!("v1={hex_part}"),
            format!("V0={hex_part}"),
            format!("sha256={hex_part}"),
            format!("v0={}", &hex_part[..63]),
            format!("v0={hex_part}0"),
            format!("v0={}g", &hex_part[..63]),
            "v0=".to_string(),
            String::new(),
            "é".repeat(40),
        ] {
            assert_eq!(
                verify_slack_request(SECRET, Some(TS), Some(&sig), BODY, TS_NUM),
                Err(SlackSignatureError::MalformedSignature),
                "{sig:?}"
            );
        }
    }

    #[test]
    fn mismatches() {
        // Body changed.
        let mut body = BODY.to_vec();
        body.push(b'x');
        assert_eq!(
            verify_slack_request(SECRET, Some(TS), Some(SIG), &body, TS_NUM),
            Err(SlackSignatureError::Mismatch)
        );
        // Wrong secret.
        assert_eq!(
            verify_slack_request(b"another-secret", Some(TS), Some(SIG), BODY, TS_NUM),
            Err(SlackSignatureError::Mismatch)
        );
        // Timestamp changed (signed text differs) but still fresh.
        let ts2 = (TS_NUM + 1).to_string();
        assert_eq!(
            verify_slack_request(SECRET, Some(&ts2), Some(SIG), BODY, TS_NUM),
            Err(SlackSignatureError::Mismatch)
        );
        // A signature for a fresh timestamp verifies, proving the timestamp is signed.
        let sig2 = sign(SECRET, &ts2, BODY);
        assert_eq!(
            verify_slack_request(SECRET, Some(&ts2), Some(&sig2), BODY, TS_NUM),
            Ok(())
        );
    }

    #[test]
    fn empty_secret_is_refused() {
        let sig = sign(b"", TS, BODY);
        assert_eq!(
            verify_slack_request(b"", Some(TS), Some(&sig), BODY, TS_NUM),
            Err(SlackSignatureError::EmptySecret)
        );
    }
}
