//! Verification of PagerDuty webhook v3 signatures (`X-PagerDuty-Signature`).
//!
//! The header carries one or more comma-separated `v1=<hex HMAC-SHA256(secret, raw body)>`
//! entries: PagerDuty sends one per active secret while a secret is being rotated. A request
//! is genuine when any `v1` entry matches. Entries of other versions are ignored so that a
//! future `v2` does not break today's verifier.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// At most this many entries are looked at. A real header has one or two; the bound keeps a
/// hostile header from making us compare thousands of candidates.
pub(crate) const MAX_SIGNATURE_ENTRIES: usize = 16;

/// Why a PagerDuty webhook was refused. All map to HTTP 401; the variant is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagerDutySignatureError {
    #[error("missing X-PagerDuty-Signature header")]
    MissingHeader,
    #[error("X-PagerDuty-Signature has no well-formed v1 signature")]
    Malformed,
    #[error("no X-PagerDuty-Signature entry matches the request")]
    Mismatch,
    #[error("PagerDuty webhook secret is empty")]
    EmptySecret,
}

/// Checks the raw request `body` against the `X-PagerDuty-Signature` header value.
pub fn verify_pagerduty_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), PagerDutySignatureError> {
    // An empty secret is a configuration mistake, never a valid key.
    if secret.is_empty() {
        return Err(PagerDutySignatureError::EmptySecret);
    }
    let header = header.ok_or(PagerDutySignatureError::MissingHeader)?;

    let candidates: Vec<Vec<u8>> = header
        .split(',')
        .take(MAX_SIGNATURE_ENTRIES)
        .filter_map(|entry| {
            let (version, value) = entry.trim().split_once('=')?;
            if !version.trim().eq_ignore_ascii_case("v1") {
                return None;
            }
            let value = value.trim();
            // A SHA-256 MAC is 64 hex digits; anything else cannot match, so skip it here
            // rather than hand verify_slice a slice of the wrong length.
            if value.len() != 64 {
                return None;
            }
            hex::decode(value).ok()
        })
        .collect();
    if candidates.is_empty() {
        return Err(PagerDutySignatureError::Malformed);
    }

    let mut mac =
        HmacSha256::new_from_slice(secret).map_err(|_| PagerDutySignatureError::EmptySecret)?;
    mac.update(body);
    // Hash the body once and clone the finished state per candidate, so a long header costs
    // comparisons, not re-hashes. Every candidate is checked (no early exit) so timing does
    // not depend on which entry matched.
    let matched = candidates.iter().fold(false, |found, candidate| {
        mac.clone().verify_slice(candidate).is_ok() | found
    });
    if matched {
        Ok(())
    } else {
        Err(PagerDutySignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"pd-webhook-secret-for-tests";
    const BODY: &[u8] = br#"{"event":{"id":"01ABC","event_type":"incident.acknowledged","data":{"id":"PXYZ","status":"acknowledged"}}}"#;

    fn sig(secret: &[u8], body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn single_matching_signature() {
        let header = format!("v1={}", sig(SECRET, BODY));
        assert_eq!(
            verify_pagerduty_signature(SECRET, Some(&header), BODY),
            Ok(())
        );
    }

    #[test]
    fn known_vector() {
        // Independently computed: HMAC-SHA256(key="key", "The quick brown fox jumps over the
        // lazy dog") from RFC-style examples (Wikipedia HMAC page).
        let header = "v1=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        assert_eq!(
            verify_pagerduty_signature(
                b"key",
                Some(header),
                b"The quick brown fox jumps over the lazy dog"
            ),
            Ok(())
        );
    }

    #[test]
    fn second_of_two_matches() {
        let header = format!("v1={},v1={}", sig(b"old-secret", BODY), sig(SECRET, BODY));
        assert_eq!(
            verify_pagerduty_signature(SECRET, Some(&header), BODY),
            Ok(())
        );
    }

    #[test]
    fn whitespace_tolerant_and_other_versions_ignored() {
        let header = format!(
            "  v2=deadbeef ,  v1 = {}  , v0=abc",
            sig(SECRET, BODY).to_uppercase()
        );
        assert_eq!(
            verify_pagerduty_signature(SECRET, Some(&header), BODY),
            Ok(())
        );
    }

    #[test]
    fn none_matching() {
        let header = format!(
            "v1={}, v1={}",
            sig(b"old-secret", BODY),
            sig(b"other-secret", BODY)
        );
        assert_eq!(
            verify_pagerduty_signature(SECRET, Some(&header), BODY),
            Err(PagerDutySignatureError::Mismatch)
        );
        // Right secret, different body.
        let header = format!("v1={}", sig(SECRET, b"{}"));
        assert_eq!(
            verify_pagerduty_signature(SECRET, Some(&header), BODY),
            Err(PagerDutySignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers() {
        let good = sig(SECRET, BODY);
        for header in [
            String::new(),
            ",,,".to_string(),
            good.clone(),
            format!("v2={good}"),
            format!("v1={}", &good[..62]),
            format!("v1={good}00"),
            format!("v1={}zz", &good[..62]),
            "v1=".to_string(),
            "v1".to_string(),
            "é=é".to_string(),
        ] {
            assert_eq!(
                verify_pagerduty_signature(SECRET, Some(&header), BODY),
                Err(PagerDutySignatureError::Malformed),
                "{header:?}"
            );
        }
        // A malformed entry beside a good one does not spoil it.
        let header = format!("v1=nothex, v1={good}");
        assert_eq!(
            verify_pagerduty_signature(SECRET, Some(&header), BODY),
            Ok(())
        );
    }

    #[test]
    fn missing_header_and_empty_secret() {
        assert_eq!(
            verify_pagerduty_signature(SECRET, None, BODY),
            Err(PagerDutySignatureError::MissingHeader)
        );
        let header = format!("v1={}", sig(b"", BODY));
        assert_eq!(
            verify_pagerduty_signature(b"", Some(&header), BODY),
            Err(PagerDutySignatureError::EmptySecret)
        );
    }

    #[test]
    fn entries_beyond_the_bound_are_ignored() {
        let filler = vec![format!("v1={}", "0".repeat(64)); MAX_SIGNATURE_ENTRIES];
        let header = format!("{},v1={}", filler.join(","), sig(SECRET, BODY));
        assert_eq!(
            verify_pagerduty_signature(SECRET, Some(&header), BODY),
            Err(PagerDutySignatureError::Mismatch)
        );
    }
}
