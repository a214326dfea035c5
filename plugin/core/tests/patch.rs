//! The header patch as the filter applies it: the request headers set and removed (only real
//! changes), the response headers added (a minted sticky cookie, the testers' debug header), and
//! one `Scratch` reused from request to request as each VM does.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{live, plan, secret_hash, Req};
use sluice_core::pipeline::Scratch;
use sluice_core::plan::Plan;

fn config() -> Plan {
    plan(
        &r#"{"version": 1,
  "identity": {"user": [{"header": "x-user-id"}]},
  "flags": {"checkout": {"variants": {"on": true, "off": false}, "default": "on", "header": "x-checkout"}},
  "routes": {"cart": {"match": {"authority": ["cart"]}, "header": "x-route-cart",
      "versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 50},
      "sticky_cookie": {"name": "sluice-cart", "max_age": "1d", "same_site": "Lax", "secure": true}}},
  "overrides": {"secret_sha256": "SECRET", "debug_header": "x-sluice-debug"}}"#
            .replace("SECRET", &secret_hash()),
    )
}

/// The request through `pipeline::run` into `scratch` (kept by the caller, as the filter does).
fn run_into(plan: &Plan, req: &Req, scratch: &mut Scratch) {
    req.run_into(plan, live(plan), scratch);
}

fn sets(plan: &Plan, scratch: &Scratch) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = scratch
        .patch
        .sets(plan)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    out.sort();
    out
}

fn response(plan: &Plan, scratch: &Scratch) -> Vec<(String, String)> {
    scratch
        .patch
        .response_headers(plan)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_request_without_identity_gets_a_sticky_cookie_and_its_version_in_one_patch() {
    let p = config();
    let mut scratch = Scratch::default();
    run_into(
        &p,
        &Req::new().set(":authority", "cart").entropy(7),
        &mut scratch,
    );
    let out = response(&p, &scratch);
    assert_eq!(out.len(), 1, "{out:?}");
    let (name, value) = &out[0];
    assert_eq!(name, "set-cookie");
    let (key, attributes) = value
        .strip_prefix("sluice-cart=")
        .and_then(|v| v.split_once(';'))
        .unwrap_or_else(|| panic!("{value}"));
    assert_eq!(
        attributes,
        " Path=/; Max-Age=86400; SameSite=Lax; Secure; HttpOnly"
    );
    assert!(
        key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    // The browser sends the cookie back: the same version, and no new cookie.
    let version = sets(&p, &scratch)
        .into_iter()
        .find(|(n, _)| n == "x-route-cart")
        .unwrap()
        .1;
    let back = Req::new()
        .set(":authority", "cart")
        .header("cookie", &format!("sluice-cart={key}"))
        .entropy(8);
    run_into(&p, &back, &mut scratch);
    assert!(response(&p, &scratch).is_empty());
    assert_eq!(
        sets(&p, &scratch),
        pairs(&[
            ("x-checkout", "true"),
            ("x-route-cart", &version),
            ("x-sluice-flags", "checkout=on")
        ])
    );
}

#[test]
fn testers_get_the_debug_header_on_the_response_and_others_do_not() {
    let p = config();
    let mut scratch = Scratch::default();
    let user = Req::new().set(":authority", "cart").user("u-1");
    run_into(
        &p,
        &user.clone_with("x-sluice-secret", "let-me-test"),
        &mut scratch,
    );
    let out = response(&p, &scratch);
    let explained = scratch.decision.explain(&p);
    assert_eq!(out, pairs(&[("x-sluice-debug", &explained)]));
    assert!(explained.starts_with("cart=v"), "{explained}");
    for other in [user.clone_with("x-sluice-secret", "nope"), user] {
        run_into(&p, &other, &mut scratch);
        assert!(response(&p, &scratch).is_empty(), "{:?}", other.pairs);
    }
}

#[test]
fn headers_the_request_already_carries_exactly_are_left_alone() {
    let p = config();
    let mut scratch = Scratch::default();
    let base = Req::new().set(":path", "/shop");
    run_into(&p, &base.clone_with("x-checkout", "true"), &mut scratch);
    assert_eq!(
        sets(&p, &scratch),
        pairs(&[("x-sluice-flags", "checkout=on")]),
        "x-checkout already says true: no hostcall to set it again"
    );
    assert_eq!(scratch.patch.removals(&p).count(), 0);

    // Two copies, even of the right value, become one.
    let twice = base
        .clone_with("x-checkout", "true")
        .header("x-checkout", "true");
    run_into(&p, &twice, &mut scratch);
    assert_eq!(
        sets(&p, &scratch),
        pairs(&[("x-checkout", "true"), ("x-sluice-flags", "checkout=on")])
    );
    let applied = scratch.patch.apply(&p, &borrowed(&twice));
    let copies = applied.iter().filter(|(n, _)| n == "x-checkout").count();
    assert_eq!(copies, 1);

    // A header Sluice owns but did not write this time (no route matched) is stripped.
    let spoofed = base.clone_with("x-route-cart", "v2");
    run_into(&p, &spoofed, &mut scratch);
    assert_eq!(
        scratch.patch.removals(&p).collect::<Vec<_>>(),
        ["x-route-cart"]
    );
    let applied = scratch.patch.apply(&p, &borrowed(&spoofed));
    assert!(applied.iter().all(|(n, _)| n != "x-route-cart"));
}

#[test]
fn a_reused_scratch_carries_nothing_over_from_the_last_request() {
    let p = config();
    let mut scratch = Scratch::default();
    run_into(
        &p,
        &Req::new()
            .set(":authority", "cart")
            .header("x-route-cart", "v9")
            .entropy(1),
        &mut scratch,
    );
    assert_eq!(response(&p, &scratch).len(), 1);
    assert_eq!(sets(&p, &scratch).len(), 3);
    let quiet = Req::new()
        .header("x-checkout", "true")
        .header("x-sluice-flags", "checkout=on");
    run_into(&p, &quiet, &mut scratch);
    assert!(sets(&p, &scratch).is_empty(), "{:?}", sets(&p, &scratch));
    assert_eq!(scratch.patch.removals(&p).count(), 0);
    assert!(response(&p, &scratch).is_empty());
    assert!(!scratch.patch.signed_token());
}

#[test]
fn every_flag_outcome_of_a_reused_scratch_is_this_requests_own() {
    // The flag outcomes are overwritten in place from request to request: each must be this
    // user's, with prerequisites read from this request's decisions (the prerequisite sorts
    // after its dependant by name, so the flags are not decided in their own order).
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]},
        "flags": {
          "a-dependant": {"prerequisites": [{"flag": "z-base", "variants": ["on"]}],
                          "rules": [{"rollout": {"on": 50, "off": 50}}]},
          "m-split": {"rules": [{"rollout": {"on": 50, "off": 50}}]},
          "n-vip": {"rules": [{"when": {"header": "x-vip", "equals": "1"}, "serve": "on"}]},
          "z-base": {"rules": [{"rollout": {"on": 50, "off": 50}}]}},
        "outputs": {"flags_header": "x-sluice-flags"}}"#,
    );
    let mut reused = Scratch::default();
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..64 {
        let mut req = Req::new().user(&format!("user-{n}"));
        if n % 3 == 0 {
            req = req.header("x-vip", "1");
        }
        run_into(&p, &req, &mut reused);
        let fresh = req.run(&p);
        assert_eq!(reused.decision.flags, fresh.decision.flags, "user-{n}");
        assert_eq!(sets(&p, &reused), sets(&p, &fresh), "user-{n}");
        seen.insert(format!("{:?}", fresh.decision.flags));
    }
    // The users got different decisions: a stale outcome would have shown.
    assert!(seen.len() > 4, "{seen:?}");
}

fn borrowed(req: &Req) -> Vec<(&str, &[u8])> {
    req.pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect()
}

trait CloneWith {
    fn clone_with(&self, name: &str, value: &str) -> Req;
}

impl CloneWith for Req {
    /// A copy with one more header.
    fn clone_with(&self, name: &str, value: &str) -> Req {
        let mut copy = Req::new();
        copy.pairs = self.pairs.clone();
        copy.source = self.source.clone();
        copy.now_ms = self.now_ms;
        copy.entropy = self.entropy;
        copy.header(name, value)
    }
}

#[test]
fn a_hop_signs_a_decision_token_only_when_it_decides_something_itself() {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]},
        "flags": {"checkout": {"rules": [{"rollout": {"on": 50, "off": 50}}]}},
        "outputs": {"baggage": {"prefix": "sluice."}},
        "chain": {"keys": [{"id": "k1", "secret": "k1-0123456789abcdef0123456789abcdef"}], "ttl": "5m"}}"#,
    );
    let edge = Req::new().user("u-1").at("2026-06-01T12:00:00Z");
    let first = edge.run(&p);
    assert!(
        first.patch.signed_token(),
        "the edge decided checkout: it signs"
    );
    let baggage = edge.headers(&p)["baggage"].clone();
    assert!(baggage.contains("sluice.token="), "{baggage}");

    let next = Req::new()
        .user("u-1")
        .at("2026-06-01T12:00:01Z")
        .header("baggage", &baggage);
    let second = next.run(&p);
    assert!(
        !second.patch.signed_token(),
        "every decision came with the token: it is passed on, not signed again"
    );
    let token = |b: &str| {
        b.split(',')
            .find(|m| m.starts_with("sluice.token="))
            .map(str::to_string)
    };
    assert_eq!(token(&next.headers(&p)["baggage"]), token(&baggage));
}

const CHAIN: &str = r#""outputs": {"baggage": {"prefix": "sluice."}, "trust_incoming_from": ["10.0.0.0/8"]},
    "chain": {"keys": [{"id": "k1", "secret": "k1-0123456789abcdef0123456789abcdef"}], "ttl": "5m"}"#;

fn token_of(baggage: &str) -> Option<&str> {
    baggage
        .split(',')
        .find_map(|m| m.strip_prefix("sluice.token="))
}

#[test]
fn an_expired_token_is_never_passed_on_even_when_a_trusted_peer_sent_every_decision() {
    let p = plan(&format!(
        r#"{{"version": 1, "identity": {{"user": [{{"header": "x-user-id"}}]}},
        "flags": {{"checkout": {{"rules": [{{"rollout": {{"on": 50, "off": 50}}}}]}}}}, {CHAIN}}}"#
    ));
    let edge = Req::new().user("u-1").at("2026-06-01T12:00:00Z");
    let baggage = edge.headers(&p)["baggage"].clone();
    let old = token_of(&baggage).unwrap().to_string();
    // Ten minutes later (the token lived five), from a trusted peer that also sends the flags.
    let late = Req::new()
        .user("u-1")
        .at("2026-06-01T12:10:00Z")
        .source("10.1.2.3:5000")
        .header("x-sluice-flags", "checkout=on")
        .header("baggage", &baggage);
    assert!(late.run(&p).patch.signed_token());
    let passed = late.headers(&p)["baggage"].clone();
    assert_ne!(token_of(&passed), Some(old.as_str()), "{passed}");
}

#[test]
fn a_token_is_signed_again_when_this_hop_decides_a_flag_the_token_lacks() {
    let flags = |extra: &str| {
        plan(&format!(
            r#"{{"version": 1, "revision": "r1", "identity": {{"user": [{{"header": "x-user-id"}}]}},
            "flags": {{"checkout": {{"rules": [{{"rollout": {{"on": 50, "off": 50}}}}]}}{extra}}}, {CHAIN}}}"#
        ))
    };
    let edge_plan = flags("");
    let edge = Req::new().user("u-1").at("2026-06-01T12:00:00Z");
    let baggage = edge.headers(&edge_plan)["baggage"].clone();
    // A later hop's config knows one more flag: it decides it and signs a token carrying both.
    let hop_plan = flags(r#", "theme": {"variants": {"light": 1, "dark": 2}, "default": "dark"}"#);
    let hop = Req::new()
        .user("u-1")
        .at("2026-06-01T12:00:01Z")
        .header("baggage", &baggage);
    assert_eq!(
        hop.eval(&hop_plan).token,
        sluice_core::decision::TokenStatus::Accepted
    );
    assert!(hop.run(&hop_plan).patch.signed_token());
    let passed = hop.headers(&hop_plan)["baggage"].clone();
    assert_ne!(token_of(&passed), token_of(&baggage), "{passed}");
}

/// The flags header and baggage list every flag's `name=variant`, in flag order, whatever the
/// flags' variant counts (the plan writes a few flags per piece: one flag of many variants
/// alone, flags of few variants together: the last four flags make a group of four).
#[test]
fn the_flags_header_and_baggage_name_every_flags_variant_in_order() {
    let counts = [2, 3, 2, 13, 1, 4, 2, 2, 3, 3, 2, 5, 2, 1, 1, 2, 2, 2, 2, 2];
    let flags: Vec<String> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let variants: Vec<String> = (0..n).map(|v| format!(r#""v{v}": {v}"#)).collect();
            let weights: Vec<String> = (0..n)
                .map(|v| format!(r#""v{v}": {}"#, 100 / n + usize::from(v < 100 % n)))
                .collect();
            format!(
                r#""f{i:02}": {{"variants": {{{}}}, "default": "v0", "rules": [{{"rollout": {{{}}}}}]}}"#,
                variants.join(", "),
                weights.join(", ")
            )
        })
        .collect();
    let p = plan(&format!(
        r#"{{"version": 1, "identity": {{"user": [{{"header": "x-user-id"}}]}},
        "flags": {{{}}},
        "outputs": {{"flags_header": "x-sluice-flags", "baggage": {{"prefix": "sluice."}}}}}}"#,
        flags.join(", ")
    ));
    let mut variety = std::collections::BTreeSet::new();
    for user in 0..40 {
        let req = Req::new().user(&format!("user-{user}"));
        let decision = req.eval(&p);
        let members: Vec<String> = p
            .flags
            .iter()
            .zip(&decision.flags)
            .map(|(flag, outcome)| format!("{}={}", flag.name, flag.variant_names[outcome.variant]))
            .collect();
        variety.extend(members.iter().cloned());
        let headers = req.headers(&p);
        assert_eq!(headers["x-sluice-flags"], members.join(";"));
        let baggage: Vec<String> = members.iter().map(|m| format!("sluice.{m}")).collect();
        assert_eq!(headers["baggage"], baggage.join(","));
        // After a client's own members, the first flag's member is separated too.
        let theirs = req.header("baggage", "theirs=1").headers(&p);
        assert_eq!(theirs["baggage"], format!("theirs=1,{}", baggage.join(",")));
    }
    // Every variant of every flag was written at least once.
    assert_eq!(variety.len(), counts.iter().sum::<usize>(), "{variety:?}");
}
