//! Tester overrides (docs/config.md#overrides): who may use them (the secret, compared by its
//! SHA-256 in constant time, or an allowed source range) and how the header is read.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, variant, version, Req};
use sluice_core::decision::{OverrideStatus, Reason};
use sluice_core::plan::Plan;

const SECRET: &str = "let-me-test";

fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A route `reviews` (v1 unless overridden) and a flag `checkout` (off unless overridden),
/// with the given `overrides` object.
fn config(overrides: &str) -> Plan {
    plan(&format!(
        r#"{{
  "version": 1,
  "identity": {{"user": [{{"header": "x-user-id"}}]}},
  "flags": {{"checkout": {{"rules": [{{"serve": "off"}}]}}}},
  "routes": {{"reviews": {{"header": "x-route-reviews", "versions": ["v1", "v2", "v3"],
                          "split": {{"v1": 100}}}}}},
  "overrides": {overrides}
}}"#
    ))
}

fn with_secret_hash(hash: &[u8]) -> Plan {
    config(&format!(r#"{{"secret_sha256": "{}"}}"#, hex(hash)))
}

fn ask(value: &str) -> Req {
    Req::new().user("u1").header("x-sluice-override", value)
}

#[test]
fn the_secret_unlocks_overrides() {
    let p = with_secret_hash(&sha256(SECRET));
    let d = ask("reviews=v2;checkout=on")
        .header("x-sluice-secret", SECRET)
        .eval(&p);
    assert_eq!(d.overrides, OverrideStatus::Honoured);
    assert_eq!(version(&p, &d, "reviews"), Some("v2"));
    assert_eq!(d.routes[0].reason, Reason::Override);
    assert_eq!(variant(&p, &d, "checkout"), "on");
}

#[test]
fn without_the_secret_overrides_are_refused() {
    let p = with_secret_hash(&sha256(SECRET));
    for req in [
        ask("reviews=v2;checkout=on"),
        ask("reviews=v2;checkout=on").header("x-sluice-secret", "let-me-tesT"),
        ask("reviews=v2;checkout=on").header("x-sluice-secret", ""),
        // A secret-only config trusts no source address.
        ask("reviews=v2;checkout=on").source("10.0.0.1:1"),
    ] {
        let d = req.eval(&p);
        assert_eq!(d.overrides, OverrideStatus::Refused);
        assert_eq!(version(&p, &d, "reviews"), Some("v1"));
        assert_eq!(variant(&p, &d, "checkout"), "off");
        assert!(!d.tester);
    }
}

/// The comparison accumulates every differing byte: two bytes that differ by the same bits must
/// not cancel out (as they would if the differences were XORed together).
#[test]
fn a_hash_differing_in_two_bytes_is_refused() {
    let real = sha256(SECRET);
    for (i, j, bits) in [(0, 1, 0x01), (3, 31, 0x80), (10, 20, 0xff), (30, 31, 0x5a)] {
        let mut near = real;
        near[i] ^= bits;
        near[j] ^= bits;
        let p = with_secret_hash(&near);
        let d = ask("reviews=v2").header("x-sluice-secret", SECRET).eval(&p);
        assert_eq!(
            d.overrides,
            OverrideStatus::Refused,
            "bytes {i},{j} ^ {bits:#x}"
        );
        assert_eq!(version(&p, &d, "reviews"), Some("v1"));
    }
    // One byte off is refused too.
    for i in [0, 17, 31] {
        let mut near = real;
        near[i] ^= 0x10;
        let d = ask("reviews=v2")
            .header("x-sluice-secret", SECRET)
            .eval(&with_secret_hash(&near));
        assert_eq!(d.overrides, OverrideStatus::Refused, "byte {i}");
    }
}

#[test]
fn allowed_sources_need_no_secret() {
    let p = config(r#"{"allow_sources": ["10.99.0.0/16", "fd00:10::/32"]}"#);
    for addr in ["10.99.1.2:3333", "10.99.0.0:1", "[fd00:10::7]:443"] {
        let d = ask("reviews=v3").source(addr).eval(&p);
        assert_eq!(d.overrides, OverrideStatus::Honoured, "{addr}");
        assert_eq!(version(&p, &d, "reviews"), Some("v3"), "{addr}");
    }
    for addr in ["10.98.255.255:1", "192.0.2.1:1", "[fd00:11::7]:443"] {
        let d = ask("reviews=v3").source(addr).eval(&p);
        assert_eq!(d.overrides, OverrideStatus::Refused, "{addr}");
        assert_eq!(version(&p, &d, "reviews"), Some("v1"), "{addr}");
    }
    let d = ask("reviews=v3").eval(&p);
    assert_eq!(d.overrides, OverrideStatus::Refused, "no source address");
    // An allowed-source config has no secret: a secret header proves nothing.
    let d = ask("reviews=v3").header("x-sluice-secret", SECRET).eval(&p);
    assert_eq!(d.overrides, OverrideStatus::Refused);
}

#[test]
fn the_secret_or_an_allowed_source() {
    let p = config(&format!(
        r#"{{"secret_sha256": "{}", "allow_sources": ["10.99.0.0/16"]}}"#,
        hex(&sha256(SECRET))
    ));
    let by_source = ask("reviews=v2").source("10.99.1.1:1").eval(&p);
    assert_eq!(by_source.overrides, OverrideStatus::Honoured);
    let by_secret = ask("reviews=v2")
        .source("192.0.2.1:1")
        .header("x-sluice-secret", SECRET)
        .eval(&p);
    assert_eq!(by_secret.overrides, OverrideStatus::Honoured);
    // A wrong secret from an allowed source: the source is enough.
    let both = ask("reviews=v2")
        .source("10.99.1.1:1")
        .header("x-sluice-secret", "nope")
        .eval(&p);
    assert_eq!(both.overrides, OverrideStatus::Honoured);
    let neither = ask("reviews=v2")
        .source("192.0.2.1:1")
        .header("x-sluice-secret", "nope")
        .eval(&p);
    assert_eq!(neither.overrides, OverrideStatus::Refused);
}

#[test]
fn no_override_header_is_absent_even_for_testers() {
    let p = with_secret_hash(&sha256(SECRET));
    let d = Req::new()
        .user("u1")
        .header("x-sluice-secret", SECRET)
        .eval(&p);
    assert_eq!(d.overrides, OverrideStatus::Absent);
    assert!(!d.tester, "no debug header configured");
    assert_eq!(version(&p, &d, "reviews"), Some("v1"));
    // With a debug header, the secret alone makes a tester (who gets the debug header).
    let debug = config(&format!(
        r#"{{"secret_sha256": "{}", "debug_header": "x-sluice-debug"}}"#,
        hex(&sha256(SECRET))
    ));
    let tester = Req::new().user("u1").header("x-sluice-secret", SECRET);
    let d = tester.eval(&debug);
    assert_eq!(d.overrides, OverrideStatus::Absent);
    assert!(d.tester);
    let d = Req::new()
        .user("u1")
        .header("x-sluice-secret", "nope")
        .eval(&debug);
    assert!(!d.tester);
    let no_config = plan(r#"{"version": 1, "flags": {"checkout": {"rules": [{"serve": "off"}]}}}"#);
    let d = ask("checkout=on")
        .header("x-sluice-secret", SECRET)
        .eval(&no_config);
    assert_eq!(d.overrides, OverrideStatus::Absent);
    assert!(!d.tester);
    assert_eq!(variant(&no_config, &d, "checkout"), "off");
}

#[test]
fn the_override_header_is_pairs_split_by_semicolons_or_commas() {
    let p = with_secret_hash(&sha256(SECRET));
    let read = |value: &str| {
        let d = ask(value).header("x-sluice-secret", SECRET).eval(&p);
        assert_eq!(d.overrides, OverrideStatus::Honoured, "{value}");
        (
            version(&p, &d, "reviews").unwrap().to_string(),
            variant(&p, &d, "checkout").to_string(),
        )
    };
    let want = ("v3".to_string(), "on".to_string());
    assert_eq!(read("reviews=v3;checkout=on"), want);
    assert_eq!(read("reviews=v3,checkout=on"), want);
    assert_eq!(read(" reviews = v3 ; checkout=on "), want);
    assert_eq!(read("checkout=on,reviews=v3"), want);
    // Unknown names and values, pairs without `=`, and a name that only starts like one are
    // ignored: the request gets what it would without them.
    let none = ("v1".to_string(), "off".to_string());
    assert_eq!(read("reviews=v9;checkout=maybe"), none);
    assert_eq!(read("reviews;checkout"), none);
    assert_eq!(read("review=v2;checkouts=on;eviews=v2"), none);
    assert_eq!(read("reviews=v2=x;reviews=;=v2"), none);
    assert_eq!(read(""), none);
    // The first pair for a name wins.
    assert_eq!(
        read("reviews=v2;reviews=v3;checkout=on"),
        ("v2".into(), "on".into())
    );
}

#[test]
fn a_custom_header_and_secret_header() {
    let p = config(&format!(
        r#"{{"header": "x-force", "secret_header": "x-tester-key", "secret_sha256": "{}"}}"#,
        hex(&sha256(SECRET))
    ));
    let d = Req::new()
        .user("u1")
        .header("x-force", "reviews=v2")
        .header("x-tester-key", SECRET)
        .eval(&p);
    assert_eq!(d.overrides, OverrideStatus::Honoured);
    assert_eq!(version(&p, &d, "reviews"), Some("v2"));
    let d = Req::new()
        .user("u1")
        .header("x-force", "reviews=v2")
        .header("x-sluice-secret", SECRET)
        .eval(&p);
    assert_eq!(
        d.overrides,
        OverrideStatus::Refused,
        "the default secret header is not read"
    );
}
