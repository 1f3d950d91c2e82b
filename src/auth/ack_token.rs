//! Signed acknowledgement links.
//!
//! A token is `base64url_nopad(payload_json) + "." + base64url_nopad(mac)`, where `mac` is
//! HMAC-SHA256 over the *encoded* payload segment (the ASCII text before the dot, as in JWS).
//! Signing the encoded text rather than re-serialised claims means the verifier checks exactly
//! the bytes it received, and can check them before it decodes or parses anything.
//!
//! Keys rotate: [`AckKeys`] holds one current key (signs) and any number of older keys (still
//! verify), each with a key id (`kid`) that is carried inside the signed claims.
//!
//! The links are sent by email and Slack, so they are hostile input by the time they come back:
//! [`AckKeys::verify`] bounds the token length, verifies the MAC in constant time before parsing
//! the claims, and never panics.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{Episode, IncidentId};

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted. Real tokens are ~250 bytes; the bound keeps hostile input from
/// costing more than one small HMAC.
pub const MAX_TOKEN_LEN: usize = 2048;

/// Shortest secret accepted: HMAC-SHA256 gains nothing from more than 32 bytes and loses
/// strength with fewer.
pub(crate) const MIN_SECRET_LEN: usize = 32;

/// Longest key id accepted; kids are short labels that travel inside every token.
pub(crate) const MAX_KID_LEN: usize = 64;

/// What the link does when the recipient confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckAction {
    Acknowledge,
    Resolve,
}

impl AckAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AckAction::Acknowledge => "acknowledge",
            AckAction::Resolve => "resolve",
        }
    }
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckClaims {
    /// Id of the key that signed the token. [`AckKeys::sign`] overwrites it with the current
    /// key's id, so callers may leave it empty.
    pub kid: String,
    pub incident: IncidentId,
    pub action: AckAction,
    /// Who the link was sent to (email address or Slack user); recorded as the acknowledger.
    pub recipient: String,
    /// Unix seconds. The token is valid while `now < exp` (JWT semantics: expired *at* `exp`).
    pub exp: i64,
    /// The episode the link was issued for, so that a link from before a reopen does not act
    /// on the new episode. Named `ver` in the token (tokens already sent keep verifying).
    pub ver: Episode,
}

/// Why a token was rejected. The HTTP layer should show one generic page for all of them and
/// log the variant: telling a caller *why* a forged token failed helps only the forger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("ack token is malformed")]
    Malformed,
    #[error("ack token was signed with an unknown key")]
    UnknownKey,
    #[error("ack token signature does not match")]
    BadSignature,
    #[error("ack token has expired")]
    Expired,
}

/// Why key material was rejected. Never contains secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("ACK_SIGNING_KEY is empty")]
    Empty,
    #[error("ack signing key {position} is neither hex nor base64")]
    InvalidEncoding { position: usize },
    #[error(
        "ack signing key {position} decodes to {len} bytes; at least {MIN_SECRET_LEN} are required"
    )]
    TooShort { position: usize, len: usize },
    #[error(
        "ack key id `{0}` is empty, longer than {MAX_KID_LEN} bytes or has characters outside [A-Za-z0-9._-]"
    )]
    InvalidKid(String),
    #[error("ack key id `{0}` is used by more than one key")]
    DuplicateKid(String),
    #[error("could not read random bytes from the operating system: {0}")]
    Rng(String),
}

#[derive(Clone)]
struct AckKey {
    kid: String,
    /// HMAC state keyed with the secret, cloned per use: keying once means sign/verify have
    /// no fallible `new_from_slice` call. As sensitive as the secret itself; never printed.
    mac: HmacSha256,
}

/// The signing key and the keys still accepted for verification.
#[derive(Clone)]
pub struct AckKeys {
    /// Never empty; index 0 is the current (signing) key.
    keys: Vec<AckKey>,
}

impl std::fmt::Debug for AckKeys {
    // Hand-written so that secrets can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckKeys")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish()
    }
}

impl AckKeys {
    /// `current` signs; `previous` keys only verify (tokens already sent out keep working
    /// through a rotation until they expire).
    pub fn new(current: (&str, &[u8]), previous: &[(&str, &[u8])]) -> Result<Self, KeyError> {
        let mut keys: Vec<AckKey> = Vec::with_capacity(1 + previous.len());
        for (position, (kid, secret)) in std::iter::once(&current).chain(previous).enumerate() {
            validate_kid(kid)?;
            if secret.len() < MIN_SECRET_LEN {
                return Err(KeyError::TooShort {
                    position: position + 1,
                    len: secret.len(),
                });
            }
            if keys.iter().any(|k| k.kid == *kid) {
                return Err(KeyError::DuplicateKid((*kid).to_string()));
            }
            // HMAC accepts keys of any length, so this cannot fail; mapping it anyway keeps the
            // function panic-free.
            let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::TooShort {
                position: position + 1,
                len: secret.len(),
            })?;
            keys.push(AckKey {
                kid: (*kid).to_string(),
                mac,
            });
        }
        Ok(AckKeys { keys })
    }

    /// Parses the `ACK_SIGNING_KEY` value.
    ///
    /// Format: one or more comma-separated keys, the first one current, each `kid:secret` or
    /// just `secret`. A secret is hex (even length, hex digits only) or base64 (standard or
    /// URL-safe alphabet, padded or not) and must decode to at least 32 bytes. A key given
    /// without a kid gets `k` + the first 8 hex digits of SHA-256(secret): stable across
    /// restarts and replicas, and it reveals nothing usable about the secret.
    ///
    /// Hex is tried first because every hex string is also valid base64; a 64-character hex
    /// secret must mean the 32 bytes it spells.
    pub fn from_env_value(value: &str) -> Result<Self, KeyError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut parsed: Vec<(String, Vec<u8>)> = Vec::new();
        for (index, entry) in value.split(',').enumerate() {
            let position = index + 1;
            let entry = entry.trim();
            let (kid, encoded) = match entry.split_once(':') {
                Some((kid, encoded)) => (Some(kid.trim()), encoded.trim()),
                None => (None, entry),
            };
            if encoded.is_empty() {
                return Err(KeyError::InvalidEncoding { position });
            }
            let secret = decode_secret(encoded).ok_or(KeyError::InvalidEncoding { position })?;
            if secret.len() < MIN_SECRET_LEN {
                return Err(KeyError::TooShort {
                    position,
                    len: secret.len(),
                });
            }
            let kid = match kid {
                Some(kid) => kid.to_string(),
                None => fingerprint_kid(&secret),
            };
            parsed.push((kid, secret));
        }
        let mut refs = parsed
            .iter()
            .map(|(kid, secret)| (kid.as_str(), secret.as_slice()));
        let Some(current) = refs.next() else {
            return Err(KeyError::Empty);
        };
        let previous: Vec<(&str, &[u8])> = refs.collect();
        Self::new(current, &previous)
    }

    /// 32 bytes from the operating system's CSPRNG, for `ACK_SIGNING_KEY` (hex-encode it).
    /// Fallible because there is no safe fallback for a secret.
    pub fn generate_secret() -> Result<[u8; 32], KeyError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(secret)
    }

    /// The id of the key that signs new tokens.
    pub fn current_kid(&self) -> &str {
        // `keys` is never empty (every constructor pushes the current key first).
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// All key ids, current first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// Signs `claims` with the current key; `claims.kid` is replaced by the current key's id.
    pub fn sign(&self, claims: &AckClaims) -> String {
        let Some(key) = self.keys.first() else {
            // Unreachable by construction; an empty string never verifies, so fail closed.
            return String::new();
        };
        let claims = AckClaims {
            kid: key.kid.clone(),
            ..claims.clone()
        };
        // Serialising a struct of strings and integers cannot fail; an empty payload would only
        // yield a token that verify rejects as Malformed (fail closed), never a wrong ack.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = key.mac.clone();
        mac.update(payload.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks a token and returns its claims.
    ///
    /// Order matters: structure and length first (cheap, public), then the MAC against every
    /// known key in constant time, and only then the JSON. The `kid` of a token that matches no
    /// key is read only to choose between `UnknownKey` and `BadSignature`.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<AckClaims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload_b64, mac_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
        if payload_b64.is_empty() || mac_b64.contains('.') {
            return Err(TokenError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(mac_b64)
            .map_err(|_| TokenError::Malformed)?;
        if tag.len() != 32 {
            return Err(TokenError::Malformed);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;

        let signer = self.keys.iter().find(|key| {
            let mut mac = key.mac.clone();
            mac.update(payload_b64.as_bytes());
            mac.verify_slice(&tag).is_ok()
        });
        let Some(signer) = signer else {
            return Err(self.classify_unverified(&payload));
        };

        let claims: AckClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.kid != signer.kid {
            // A key vouched for a token naming another key. Our signer never produces this, so
            // treat it as forged rather than trusting either id.
            return Err(TokenError::BadSignature);
        }
        if now_unix >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Error for a token whose MAC matched no key: `UnknownKey` when its (unauthenticated)
    /// kid names no key we hold, typically a link signed by a retired key.
    fn classify_unverified(&self, payload: &[u8]) -> TokenError {
        #[derive(Deserialize)]
        struct KidOnly<'a> {
            #[serde(borrow)]
            kid: std::borrow::Cow<'a, str>,
        }
        match serde_json::from_slice::<KidOnly<'_>>(payload) {
            Ok(peek) if !self.keys.iter().any(|k| k.kid == peek.kid) => TokenError::UnknownKey,
            _ => TokenError::BadSignature,
        }
    }
}

fn validate_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKid(
            kid.chars().take(MAX_KID_LEN).collect(),
        ))
    }
}

fn decode_secret(encoded: &str) -> Option<Vec<u8>> {
    if encoded.len().is_multiple_of(2) && encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(encoded).ok();
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(encoded).ok())
}

fn fingerprint_kid(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    let prefix: Vec<u8> = digest.iter().take(4).copied().collect();
    format!("k{}", hex::encode(prefix))
}

#[cfg(test)]
mod tests;
