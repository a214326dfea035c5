//! Which requests a route takes (host with or without a port, IPv6 literals, wildcards,
//! methods) and which sticky-cookie values it trusts as a user's key.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, Req};
use sluice_core::plan::Plan;

fn routes() -> Plan {
    plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "routes": {
      "v6": {"match": {"authority": ["[2001:db8::1]"]}, "header": "x-route-v6",
             "versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 0}},
      "writes": {"match": {"authority": ["api.example.com"], "methods": ["POST", "PUT"]}, "header": "x-route-writes",
             "versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 0}},
      "any": {"match": {"authority": ["*.svc.example.com"]}, "header": "x-route-any",
             "versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 0}}}}"#,
    )
}

/// The route headers written for a request to `authority` with `method`.
fn routed(p: &Plan, authority: &str, method: &str) -> Vec<String> {
    Req::new()
        .set(":authority", authority)
        .set(":method", method)
        .user("u-1")
        .headers(p)
        .into_keys()
        .filter(|k| k.starts_with("x-route-"))
        .collect()
}

#[test]
fn an_ipv6_literal_matches_with_and_without_its_port() {
    let p = routes();
    for authority in ["[2001:db8::1]", "[2001:db8::1]:8443"] {
        assert_eq!(routed(&p, authority, "GET"), ["x-route-v6"], "{authority}");
    }
    assert!(routed(&p, "[2001:db8::2]:8443", "GET").is_empty());
}

#[test]
fn a_method_list_limits_the_route_and_no_list_takes_every_method() {
    let p = routes();
    assert_eq!(routed(&p, "api.example.com", "POST"), ["x-route-writes"]);
    assert_eq!(routed(&p, "api.example.com", "PUT"), ["x-route-writes"]);
    assert!(routed(&p, "api.example.com", "GET").is_empty());
    for method in ["GET", "DELETE"] {
        assert_eq!(routed(&p, "api.svc.example.com", method), ["x-route-any"]);
    }
}

#[test]
fn a_wildcard_needs_a_label_of_its_own() {
    let p = routes();
    assert_eq!(routed(&p, "api.svc.example.com:80", "GET"), ["x-route-any"]);
    for authority in ["svc.example.com", ".svc.example.com", "xsvc.example.com"] {
        assert!(routed(&p, authority, "GET").is_empty(), "{authority}");
    }
}

fn cart() -> Plan {
    plan(
        r#"{"version": 1, "routes": {"cart": {"match": {"authority": ["cart"]}, "header": "x-route-cart",
      "versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 50},
      "sticky_cookie": {"name": "sluice-cart"}}}}"#,
    )
}

/// The Set-Cookie values a request carrying `cookie` gets.
fn set_cookies(p: &Plan, cookie: &str, entropy: u64) -> Vec<String> {
    let req = Req::new()
        .set(":authority", "cart")
        .header("cookie", cookie)
        .entropy(entropy);
    req.eval(p).set_cookies(p)
}

#[test]
fn only_a_well_formed_cookie_key_is_trusted_anything_else_is_replaced() {
    let p = cart();
    assert!(
        set_cookies(&p, "sluice-cart=0123456789abcdef", 1).is_empty(),
        "16 lower-case hex digits: the user's key, kept"
    );
    for bad in [
        "0123456789abcde",
        "0123456789abcdef0",
        "0123456789ABCDEF",
        "0123456789abcdeg",
        "zzzzzzzzzzzzzzzz",
        "abc",
    ] {
        let cookies = set_cookies(&p, &format!("sluice-cart={bad}"), 1);
        assert_eq!(cookies.len(), 1, "`{bad}` is replaced by a minted key");
        let minted = cookies[0]
            .strip_prefix("sluice-cart=")
            .and_then(|c| c.split(';').next())
            .unwrap();
        assert!(
            minted.len() == 16
                && minted
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{minted}"
        );
        assert_ne!(minted, bad);
    }
}

#[test]
fn minted_keys_differ_from_request_to_request() {
    let p = cart();
    let keys: std::collections::BTreeSet<String> = (0..50)
        .map(|e| set_cookies(&p, "other=1", e * 7919)[0].clone())
        .collect();
    assert_eq!(keys.len(), 50, "{keys:?}");
}
