use super::*;

const SECRET_A: [u8; 32] = [7u8; 32];
const SECRET_B: [u8; 32] = [42u8; 32];
const NOW: i64 = 1_800_000_000;

fn keys_a() -> AckKeys {
    AckKeys::new(("a", &SECRET_A), &[]).unwrap()
}

fn claims() -> AckClaims {
    AckClaims {
        kid: String::new(),
        incident: IncidentId(42),
        action: AckAction::Acknowledge,
        recipient: "oncall@paiid.ai".to_string(),
        exp: NOW + 3600,
        ver: Episode(3),
    }
}

/// Replaces one character of `s` at `index` with a different base64url character.
fn flip_char(s: &str, index: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn roundtrip_sets_current_kid() {
    let keys = keys_a();
    let token = keys.sign(&claims());
    let got = keys.verify(&token, NOW).unwrap();
    assert_eq!(got.kid, "a");
    assert_eq!(
        got,
        AckClaims {
            kid: "a".into(),
            ..claims()
        }
    );
    assert!(token.len() < 400, "links stay short: {}", token.len());
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
        "token must be URL-safe without escaping"
    );
}

#[test]
fn action_serialises_lowercase() {
    let json = serde_json::to_string(&AckAction::Resolve).unwrap();
    assert_eq!(json, "\"resolve\"");
    assert_eq!(AckAction::Acknowledge.as_str(), "acknowledge");
    let keys = keys_a();
    let token = keys.sign(&AckClaims {
        action: AckAction::Resolve,
        ..claims()
    });
    let (payload, _) = token.split_once('.').unwrap();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(decoded.contains("\"action\":\"resolve\""), "{decoded}");
}

#[test]
fn tampered_payload_is_rejected() {
    let keys = keys_a();
    let token = keys.sign(&claims());
    // Re-encode a payload with a different incident but keep the original MAC.
    let (_, mac) = token.split_once('.').unwrap();
    let forged_claims = AckClaims {
        kid: "a".into(),
        incident: IncidentId(43),
        ..claims()
    };
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
    let forged = format!("{forged_payload}.{mac}");
    assert_eq!(keys.verify(&forged, NOW), Err(TokenError::BadSignature));

    // Flipping any single payload character must also fail (Malformed when it breaks the
    // base64, BadSignature otherwise), never succeed.
    for i in 0..token.find('.').unwrap() {
        let t = flip_char(&token, i);
        let err = keys.verify(&t, NOW).unwrap_err();
        assert!(
            matches!(
                err,
                TokenError::BadSignature | TokenError::Malformed | TokenError::UnknownKey
            ),
            "index {i}: {err:?}"
        );
    }
}

#[test]
fn tampered_mac_is_rejected() {
    let keys = keys_a();
    let token = keys.sign(&claims());
    let dot = token.find('.').unwrap();
    // Flip a character in the middle of the MAC (not the last, whose low bits are padding).
    let t = flip_char(&token, dot + 5);
    assert_eq!(keys.verify(&t, NOW), Err(TokenError::BadSignature));
    // Truncated MAC.
    let t = &token[..token.len() - 4];
    assert_eq!(keys.verify(t, NOW), Err(TokenError::Malformed));
    // Empty MAC.
    let t = &token[..=dot];
    assert_eq!(keys.verify(t, NOW), Err(TokenError::Malformed));
}

#[test]
fn swapped_macs_between_tokens_are_rejected() {
    let keys = keys_a();
    let t1 = keys.sign(&claims());
    let t2 = keys.sign(&AckClaims {
        incident: IncidentId(7),
        action: AckAction::Resolve,
        ..claims()
    });
    let (p1, m1) = t1.split_once('.').unwrap();
    let (p2, m2) = t2.split_once('.').unwrap();
    assert_eq!(
        keys.verify(&format!("{p1}.{m2}"), NOW),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        keys.verify(&format!("{p2}.{m1}"), NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn expiry_boundary() {
    let keys = keys_a();
    let exp = NOW + 60;
    let token = keys.sign(&AckClaims { exp, ..claims() });
    assert!(keys.verify(&token, exp - 1).is_ok());
    assert_eq!(keys.verify(&token, exp), Err(TokenError::Expired));
    assert_eq!(keys.verify(&token, exp + 1), Err(TokenError::Expired));
    assert_eq!(keys.verify(&token, i64::MAX), Err(TokenError::Expired));
    assert!(keys.verify(&token, i64::MIN).is_ok());
}

#[test]
fn unknown_kid_is_reported() {
    let old = AckKeys::new(("retired", &SECRET_B), &[]).unwrap();
    let token = old.sign(&claims());
    assert_eq!(keys_a().verify(&token, NOW), Err(TokenError::UnknownKey));
}

#[test]
fn known_kid_signed_with_other_secret_is_bad_signature() {
    // Same kid, different secret: an attacker guessing our kid must not learn anything
    // beyond "bad signature".
    let impostor = AckKeys::new(("a", &SECRET_B), &[]).unwrap();
    let token = impostor.sign(&claims());
    assert_eq!(keys_a().verify(&token, NOW), Err(TokenError::BadSignature));
}

#[test]
fn mac_valid_but_kid_mismatch_is_bad_signature() {
    // Hand-build a token whose payload names kid "b" but is MACed with key "a".
    let forged_claims = AckClaims {
        kid: "b".into(),
        ..claims()
    };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
    let mut mac = HmacSha256::new_from_slice(&SECRET_A).unwrap();
    mac.update(payload.as_bytes());
    let token = format!(
        "{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    let keys = AckKeys::new(("a", &SECRET_A), &[("b", &SECRET_B)]).unwrap();
    assert_eq!(keys.verify(&token, NOW), Err(TokenError::BadSignature));
}

#[test]
fn mac_valid_but_claims_not_json_is_malformed() {
    let payload = URL_SAFE_NO_PAD.encode(b"not json");
    let mut mac = HmacSha256::new_from_slice(&SECRET_A).unwrap();
    mac.update(payload.as_bytes());
    let token = format!(
        "{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(keys_a().verify(&token, NOW), Err(TokenError::Malformed));
}

#[test]
fn rotation_old_tokens_verify_new_tokens_use_new_key() {
    let before = AckKeys::new(("2026-01", &SECRET_A), &[]).unwrap();
    let old_token = before.sign(&claims());

    let after = AckKeys::new(("2026-06", &SECRET_B), &[("2026-01", &SECRET_A)]).unwrap();
    assert_eq!(after.current_kid(), "2026-06");
    assert_eq!(after.verify(&old_token, NOW).unwrap().kid, "2026-01");

    let new_token = after.sign(&claims());
    assert_eq!(after.verify(&new_token, NOW).unwrap().kid, "2026-06");
    // The old deployment does not know the new key yet.
    assert_eq!(before.verify(&new_token, NOW), Err(TokenError::UnknownKey));

    // Once the old key is dropped, its tokens are refused.
    let later = AckKeys::new(("2026-06", &SECRET_B), &[]).unwrap();
    assert_eq!(later.verify(&old_token, NOW), Err(TokenError::UnknownKey));
}

#[test]
fn garbage_inputs_never_panic_and_are_rejected() {
    let keys = keys_a();
    let good = keys.sign(&claims());
    let (p, m) = good.split_once('.').unwrap();
    let huge = "A".repeat(MAX_TOKEN_LEN + 1);
    let huge_valid_shape = format!("{}.{m}", "A".repeat(MAX_TOKEN_LEN));
    let cases: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "abc".into(),
        format!("{p}{m}"),
        format!("{p}.{m}.x"),
        format!("{p}.{m}.x.y"),
        "a.b.c.d".into(),
        format!(".{m}"),
        format!("{p}."),
        format!("{p}.!!!!"),
        format!("$$$.{m}"),
        format!("{p}=.{m}"),
        format!("{p}.{m}="),
        format!("{p} .{m}"),
        "é.é".into(),
        "\0.\0".into(),
        huge,
        huge_valid_shape,
    ];
    for case in &cases {
        let err = keys.verify(case, NOW).unwrap_err();
        assert_eq!(
            err,
            TokenError::Malformed,
            "{:?}",
            &case[..case.len().min(40)]
        );
    }
    // Multibyte input longer than the bound is cut off by length, not sliced mid-char.
    let multibyte = "é".repeat(MAX_TOKEN_LEN);
    assert_eq!(keys.verify(&multibyte, NOW), Err(TokenError::Malformed));
}

#[test]
fn random_bytes_never_panic() {
    let keys = keys_a();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let len = rng.usize(0..120);
        let s: String = (0..len)
            .map(|_| {
                let alphabet = b"AZaz09-_.=+/ ";
                alphabet[rng.usize(0..alphabet.len())] as char
            })
            .collect();
        assert!(keys.verify(&s, NOW).is_err());
    }
}

#[test]
fn from_env_value_accepts_hex_and_base64() {
    let hex_key = hex::encode(SECRET_A);
    let from_hex = AckKeys::from_env_value(&hex_key).unwrap();
    let token = keys_a().sign(&claims());
    // Same secret under a derived kid: compare by re-signing.
    let t = from_hex.sign(&claims());
    assert!(from_hex.verify(&t, NOW).is_ok());
    assert!(from_hex.current_kid().starts_with('k'));
    assert_eq!(from_hex.current_kid().len(), 9);

    for encoded in [
        STANDARD.encode(SECRET_A),
        STANDARD_NO_PAD.encode(SECRET_A),
        URL_SAFE.encode([0xfbu8; 32]),
        URL_SAFE_NO_PAD.encode([0xfbu8; 32]),
    ] {
        let keys = AckKeys::from_env_value(&format!("  {encoded}\n")).unwrap();
        let t = keys.sign(&claims());
        assert!(keys.verify(&t, NOW).is_ok(), "{encoded}");
    }

    // Same secret via hex and base64 → same derived kid.
    let from_b64 = AckKeys::from_env_value(&STANDARD.encode(SECRET_A)).unwrap();
    assert_eq!(from_b64.current_kid(), from_hex.current_kid());
    assert!(from_b64.verify(&from_hex.sign(&claims()), NOW).is_ok());

    // Explicit kid: tokens from `keys_a()` verify.
    let explicit = AckKeys::from_env_value(&format!("a:{hex_key}")).unwrap();
    assert!(explicit.verify(&token, NOW).is_ok());
}

#[test]
fn from_env_value_supports_rotation_lists() {
    let value = format!(
        "new:{}, a:{}",
        hex::encode(SECRET_B),
        STANDARD.encode(SECRET_A)
    );
    let keys = AckKeys::from_env_value(&value).unwrap();
    assert_eq!(keys.kids().collect::<Vec<_>>(), vec!["new", "a"]);
    assert!(keys.verify(&keys_a().sign(&claims()), NOW).is_ok());
    assert_eq!(keys.verify(&keys.sign(&claims()), NOW).unwrap().kid, "new");
}

#[test]
fn from_env_value_rejects_bad_material() {
    fn env_err(value: &str) -> KeyError {
        AckKeys::from_env_value(value).err().unwrap()
    }
    assert_eq!(env_err(""), KeyError::Empty);
    assert_eq!(env_err("   "), KeyError::Empty);
    assert_eq!(
        env_err(&hex::encode([1u8; 31])),
        KeyError::TooShort {
            position: 1,
            len: 31
        }
    );
    assert_eq!(
        env_err(&STANDARD.encode([1u8; 16])),
        KeyError::TooShort {
            position: 1,
            len: 16
        }
    );
    assert_eq!(
        env_err("not a key!"),
        KeyError::InvalidEncoding { position: 1 }
    );
    assert_eq!(
        env_err(&format!("{},", hex::encode(SECRET_A))),
        KeyError::InvalidEncoding { position: 2 }
    );
    assert_eq!(
        env_err(&format!("bad kid:{}", hex::encode(SECRET_A))),
        KeyError::InvalidKid("bad kid".into())
    );
    assert_eq!(
        env_err(&format!(
            "x:{},x:{}",
            hex::encode(SECRET_A),
            hex::encode(SECRET_B)
        )),
        KeyError::DuplicateKid("x".into())
    );
    // Error text never echoes the secret.
    let secret_text = "c2VjcmV0LXNlY3JldC1zZWNyZXQ";
    let err = env_err(secret_text);
    assert!(!err.to_string().contains(secret_text));
}

#[test]
fn new_validates_keys() {
    assert!(matches!(
        AckKeys::new(("a", &[0u8; 8]), &[]),
        Err(KeyError::TooShort {
            position: 1,
            len: 8
        })
    ));
    assert!(matches!(
        AckKeys::new(("", &SECRET_A), &[]),
        Err(KeyError::InvalidKid(_))
    ));
    assert!(matches!(
        AckKeys::new(("a", &SECRET_A), &[("a", &SECRET_B)]),
        Err(KeyError::DuplicateKid(_))
    ));
}

#[test]
fn debug_does_not_leak_secrets() {
    let keys = keys_a();
    let dbg = format!("{keys:?}");
    assert!(dbg.contains("\"a\""));
    assert!(!dbg.contains("7, 7"));
}

#[test]
fn generate_secret_is_random_and_usable() {
    let a = AckKeys::generate_secret().unwrap();
    let b = AckKeys::generate_secret().unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0u8; 32]);
    let keys = AckKeys::from_env_value(&hex::encode(a)).unwrap();
    assert!(keys.verify(&keys.sign(&claims()), NOW).is_ok());
}

#[test]
fn typed_ids_are_plain_numbers_in_the_token() {
    // Links already sent were signed when the ids were bare integers: the payload must stay
    // the same JSON so that they keep verifying.
    let token = keys_a().sign(&claims());
    let payload = token.split('.').next().unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(json["incident"], serde_json::json!(42));
    assert_eq!(json["ver"], serde_json::json!(3));
}
