//! Sentry webhook authentication.
//!
//! Integration-platform webhooks carry `Sentry-Hook-Signature`: lowercase hex HMAC-SHA256 of the
//! raw body keyed with the integration's client secret. The legacy WebHooks plugin signs nothing,
//! so it is authenticated by a shared `?token=` in the URL registered in Sentry.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SignatureError {
    #[error("missing Sentry-Hook-Signature header")]
    Missing,
    #[error("Sentry-Hook-Signature does not match the request body")]
    Mismatch,
    #[error("missing or wrong ?token= for the legacy webhook")]
    BadToken,
}

/// Verifies `signature` (hex) over `body` in constant time.
pub(crate) fn verify_sentry_signature(
    secret: &[u8],
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing)?;
    let expected = hex::decode(signature).map_err(|_| SignatureError::Mismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Hex HMAC-SHA256, as Sentry computes it (used by tests and `send-test`).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of the legacy plugin's shared token.
pub(crate) fn verify_token(expected: &str, given: Option<&str>) -> Result<(), SignatureError> {
    let given = given.ok_or(SignatureError::BadToken)?;
    // Compare MACs of both so that timing does not reveal a common prefix.
    let key = b"paiid-alerts legacy token compare";
    let mut a = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignatureError::BadToken)?;
    a.update(expected.as_bytes());
    let mut b = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignatureError::BadToken)?;
    b.update(given.as_bytes());
    b.verify_slice(&a.finalize().into_bytes())
        .map_err(|_| SignatureError::BadToken)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"sentry-client-secret";

    #[test]
    fn good_signature_passes() {
        let body = br#"{"action":"triggered"}"#;
        let sig = sign(SECRET, body);
        assert_eq!(sig.len(), 64);
        assert_eq!(verify_sentry_signature(SECRET, Some(&sig), body), Ok(()));
    }

    #[test]
    fn bad_missing_and_empty_body() {
        let body = br#"{"action":"triggered"}"#;
        let sig = sign(SECRET, body);
        assert_eq!(
            verify_sentry_signature(SECRET, Some(&sig), b"{\"action\":\"x\"}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_sentry_signature(SECRET, None, body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_sentry_signature(SECRET, Some(""), body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_sentry_signature(SECRET, Some("not-hex"), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_sentry_signature(b"other", Some(&sig), body),
            Err(SignatureError::Mismatch)
        );
        let empty_sig = sign(SECRET, b"");
        assert_eq!(
            verify_sentry_signature(SECRET, Some(&empty_sig), b""),
            Ok(())
        );
        assert_eq!(
            verify_sentry_signature(SECRET, Some(&empty_sig), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn legacy_token() {
        assert_eq!(verify_token("t0k", Some("t0k")), Ok(()));
        assert_eq!(
            verify_token("t0k", Some("t0")),
            Err(SignatureError::BadToken)
        );
        assert_eq!(verify_token("t0k", None), Err(SignatureError::BadToken));
    }
}
