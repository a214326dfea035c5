//! A decision token signed again along a call chain keeps what the first hop put in it: the
//! user it was signed for (even through a hop that lost the user's id) and its expiry.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, Req};
use sluice_core::decision::TokenStatus;
use sluice_core::plan::Plan;
use sluice_core::token::Rejection;

/// The edge knows `checkout`; later hops also know `theme` (served to everyone), so they decide
/// something the token lacks and sign it again.
fn config(more: bool) -> Plan {
    let theme = if more {
        r#", "theme": {"variants": {"light": 1, "dark": 2}, "default": "dark"}"#
    } else {
        ""
    };
    plan(&format!(
        r#"{{"version": 1, "revision": "r1", "identity": {{"user": [{{"header": "x-user-id"}}]}},
        "flags": {{"checkout": {{"rules": [{{"rollout": {{"on": 50, "off": 50}}}}]}}{theme}}},
        "outputs": {{"baggage": {{"prefix": "sluice."}}}},
        "chain": {{"keys": [{{"id": "k1", "secret": "k1-0123456789abcdef0123456789abcdef"}}], "ttl": "5m"}}}}"#
    ))
}

fn token_member(baggage: &str) -> String {
    baggage
        .split(',')
        .find(|m| m.starts_with("sluice.token="))
        .unwrap_or_else(|| panic!("no token in {baggage}"))
        .to_string()
}

/// A hop at `time` carrying `token` (and the user's id when `user`): its token status and the
/// token it passes on.
fn hop(p: &Plan, time: &str, token: &str, user: bool) -> (TokenStatus, String) {
    let mut req = Req::new().at(time).header("baggage", token);
    if user {
        req = req.user("u-1");
    }
    (req.eval(p).token, token_member(&req.headers(p)["baggage"]))
}

fn edge_token(time: &str) -> String {
    let p = config(false);
    token_member(&Req::new().user("u-1").at(time).headers(&p)["baggage"])
}

#[test]
fn a_hop_that_lost_the_user_id_signs_for_the_user_the_token_was_for() {
    let p = config(true);
    let first = edge_token("2026-06-01T12:00:00Z");
    let (status, second) = hop(&p, "2026-06-01T12:00:01Z", &first, false);
    assert_eq!(status, TokenStatus::Accepted);
    assert_ne!(second, first, "theme was decided here: signed again");
    let (status, _) = hop(&p, "2026-06-01T12:00:02Z", &second, true);
    assert_eq!(
        status,
        TokenStatus::Accepted,
        "the re-signed token is still u-1's"
    );
    // Signed for nobody in particular, it would be a replay for u-1.
    let anonymous = token_member(&Req::new().at("2026-06-01T12:00:00Z").headers(&p)["baggage"]);
    let (status, _) = hop(&p, "2026-06-01T12:00:01Z", &anonymous, true);
    assert_eq!(status, TokenStatus::Rejected(Rejection::Subject));
}

#[test]
fn signing_again_never_extends_the_first_hops_expiry() {
    let p = config(true);
    let first = edge_token("2026-06-01T12:00:00Z");
    let (status, second) = hop(&p, "2026-06-01T12:04:00Z", &first, true);
    assert_eq!(status, TokenStatus::Accepted);
    assert_ne!(second, first);
    let (status, _) = hop(&p, "2026-06-01T12:04:59Z", &second, true);
    assert_eq!(status, TokenStatus::Accepted);
    let (status, _) = hop(&p, "2026-06-01T12:06:00Z", &second, true);
    assert_eq!(
        status,
        TokenStatus::Rejected(Rejection::Expired),
        "five minutes from the edge, not from the hop that signed again"
    );
}

fn release_config(weight: u32) -> Plan {
    plan(&format!(
        r#"{{"version": 1, "revision": "r1", "identity": {{"user": [{{"header": "x-user-id"}}]}},
        "routes": {{
          "frontend": {{"match": {{"authority": ["frontend"]}}, "header": "x-route-frontend",
            "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": 0}}}},
          "cart": {{"match": {{"authority": ["cart"]}}, "header": "x-route-cart",
            "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": 0}}}}}},
        "releases": {{"checkout-2": {{"routes": {{"frontend": "v2", "cart": "v2"}}, "weight": {weight}}}}},
        "outputs": {{"baggage": {{"prefix": "sluice."}}}},
        "chain": {{"keys": [{{"id": "k1", "secret": "k1-0123456789abcdef0123456789abcdef"}}], "ttl": "5m"}}}}"#
    ))
}

#[test]
fn a_release_the_edge_put_the_user_in_stays_in_after_its_weight_drops() {
    let edge = release_config(100);
    let first = Req::new()
        .user("u-1")
        .set(":authority", "frontend")
        .at("2026-06-01T12:00:00Z");
    let baggage = first.headers(&edge)["baggage"].clone();
    assert!(
        baggage.contains("sluice.release.checkout-2=in"),
        "{baggage}"
    );
    // The next hop already runs the release at 0%: the edge's decision stands.
    let later = release_config(0);
    let next = Req::new()
        .user("u-1")
        .set(":authority", "cart")
        .at("2026-06-01T12:00:01Z")
        .header("baggage", &token_member(&baggage));
    let d = next.eval(&later);
    assert_eq!(d.token, TokenStatus::Accepted);
    assert!(d.releases[0].member);
    assert_eq!(
        d.releases[0].reason,
        sluice_core::decision::Reason::Propagated
    );
    let passed = next.headers(&later)["baggage"].clone();
    assert!(passed.contains("sluice.release.checkout-2=in"), "{passed}");
    assert_eq!(next.headers(&later)["x-route-cart"], "v2");
}

#[test]
fn a_tripped_guard_beats_the_version_an_upstream_hop_chose() {
    use sluice_core::engine::RouteControl;
    use sluice_core::pipeline::{Live, Scratch};
    let p = release_config(100);
    // The edge put u-1 on cart v2 (the release at 100%) and signed it.
    let edge = Req::new()
        .user("u-1")
        .set(":authority", "frontend")
        .at("2026-06-01T12:00:00Z");
    let token = token_member(&edge.headers(&p)["baggage"]);
    let next = Req::new()
        .user("u-1")
        .set(":authority", "cart")
        .at("2026-06-01T12:00:01Z")
        .header("baggage", &token);
    assert_eq!(next.headers(&p)["x-route-cart"], "v2");
    // cart's guard tripped with rollback since: stable, whatever the token says.
    let cart = p.routes.iter().position(|r| r.name == "cart").unwrap();
    let mut controls = vec![RouteControl::Normal; p.routes.len()];
    controls[cart] = RouteControl::RolledBack;
    let live = Live {
        controls: &controls,
        ..common::live(&p)
    };
    let mut scratch = Scratch::default();
    next.run_into(&p, live, &mut scratch);
    let d = scratch.decision;
    let outcome = d.routes.iter().find(|r| r.route == cart).unwrap();
    assert_eq!(p.routes[cart].versions[outcome.version], "v1");
    assert_eq!(outcome.reason, sluice_core::decision::Reason::GuardTripped);
}
