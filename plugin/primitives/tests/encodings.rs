#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Edges of the decision token's pieces: base64url lengths no encoding has, which baggage
//! members are flawed, and an HMAC key that never prints its material.
use sluice_primitives::baggage::{for_each_member, Flaw};
use sluice_primitives::base64url;

#[test]
fn base64url_refuses_every_length_of_the_form_4n_plus_1() {
    let mut encoded = Vec::new();
    base64url::encode_into(b"decision token body", &mut encoded);
    for len in 0..=encoded.len() {
        let text = &encoded[..len];
        if len % 4 == 1 {
            assert_eq!(base64url::decode(text), None, "length {len}");
        }
    }
    for text in [&b"A"[..], b"AAAAA", b"QUJDRAx"] {
        assert_eq!(
            base64url::decode(text),
            None,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn a_member_without_equals_is_malformed_but_an_empty_one_is_not() {
    let keys = |header: &[u8]| {
        let mut keys = Vec::new();
        let flaw = for_each_member(header, |m| keys.push(m.key.to_vec()));
        (keys, flaw)
    };
    // Empty members (`,,`, a trailing comma, blanks) are allowed by the W3C grammar's lists.
    let (read, flaw) = keys(b"a=1,, b=2 ,\t,");
    assert_eq!(read, vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(flaw, None);
    // A member with no `=` is skipped and reported.
    let (read, flaw) = keys(b"a=1,junk,b=2");
    assert_eq!(read, vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(flaw, Some(Flaw::Malformed));
}

#[test]
fn an_hmac_key_debug_prints_as_redacted() {
    // A key can end up in the `{:?}` of a plan or an error: it shows it is there, never its
    // material.
    let key = sluice_primitives::sha256::HmacKey::new(b"edge-secret");
    assert_eq!(format!("{key:?}"), "HmacKey(..)");
}
