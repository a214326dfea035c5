#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A decision token at the size limit, and the names operators see for rejected ones.
use sluice_engine::token::{sign_into, verify, Claims, Kind, Rejection};
use sluice_primitives::sha256::HmacKey;

fn signed() -> (String, Vec<(String, HmacKey)>) {
    let key = HmacKey::new(b"edge-secret");
    let claims = Claims {
        expires_s: 2_000_000_000,
        revision: 7,
        subject: *b"user-001",
        decisions: vec![(Kind::Flag, "checkout".into(), "on".into())],
    };
    let mut token = String::new();
    sign_into(&claims, "k1", &key, &mut token);
    (token, vec![("k1".to_string(), key)])
}

#[test]
fn a_token_exactly_at_max_bytes_is_accepted_and_one_byte_over_is_too_long() {
    let (token, keys) = signed();
    let at = token.len();
    let claims = verify(token.as_bytes(), at, &keys, 1_000_000_000, &[7]).unwrap();
    assert_eq!(claims.get(Kind::Flag, "checkout"), Some("on"));
    assert_eq!(
        verify(token.as_bytes(), at - 1, &keys, 1_000_000_000, &[7]).unwrap_err(),
        Rejection::TooLong
    );
}

#[test]
fn rejections_keep_their_stat_names() {
    // `sluice.decisions.rejected.<name>`, as docs/chain.md lists them: dashboards key on these.
    let names: Vec<&str> = Rejection::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "too_long",
            "malformed",
            "unknown_key",
            "signature",
            "expired",
            "revision",
            "subject"
        ]
    );
}
