//! Rollouts across services: identity from baggage, decisions signed once and
//! kept at every later hop, releases as one cohort, version requirements, and
//! every way a client could try to choose its own versions.
mod common;

use common::{plan, variant, version, Req};
use sluice_core::decision::{Decision, Reason, TokenStatus};
use sluice_core::engine::RouteControl;
use sluice_core::pipeline::{self, Facts, Live};
use sluice_core::plan::Plan;
use sluice_core::token::Rejection;

const KEY1: &str = "k1-0123456789abcdef0123456789abcdef";
const KEY2: &str = "k2-fedcba9876543210fedcba9876543210";
const NOW: &str = "2026-06-01T12:00:00Z";

/// One config for the whole mesh: edge → frontend → cart → payments.
fn mesh(revision: &str, keys: &str, extra_chain: &str, cart_weight: u32) -> String {
    format!(
        r#"{{
  "version": 1,
  "revision": "{revision}",
  "identity": {{"user": [{{"baggage": "userId"}}, {{"header": "x-user-id"}}]}},
  "flags": {{"new-cart-ui": {{"rules": [{{"rollout": {{"on": 30, "off": 70}}}}]}}}},
  "routes": {{
    "frontend": {{"match": {{"authority": ["frontend"]}}, "header": "x-route-frontend",
      "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": 0}}}},
    "cart": {{"match": {{"authority": ["cart"]}}, "header": "x-route-cart",
      "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": 0}}}},
    "payments": {{"match": {{"authority": ["payments"]}}, "header": "x-route-payments",
      "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": 40}},
      "requires": {{"v2": [{{"flag": "new-cart-ui", "variant": "on"}}]}}}},
    "search": {{"match": {{"authority": ["search"]}}, "header": "x-route-search",
      "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": {cart_weight}}}}}
  }},
  "releases": {{"checkout-2": {{"routes": {{"frontend": "v2", "cart": "v2"}}, "weight": 25}}}},
  "outputs": {{"baggage": {{"prefix": "sluice."}}}},
  "chain": {{"keys": [{keys}], "ttl": "5m"{extra_chain}}}
}}"#
    )
}

fn key(id: &str, secret: &str) -> String {
    format!(r#"{{"id": "{id}", "secret": "{secret}"}}"#)
}

fn default_mesh() -> Plan {
    plan(&mesh("r1", &key("k1", KEY1), "", 50))
}

/// A hop: the request reaches `authority` carrying `baggage` (what the app
/// forwarded); returns the decision and the baggage the next hop receives.
fn hop(plan: &Plan, authority: &str, baggage: &str, extra: &[(&str, &str)]) -> (Decision, String) {
    let mut req = Req::new().at(NOW).set(":authority", authority);
    if !baggage.is_empty() {
        req = req.header("baggage", baggage);
    }
    for (name, value) in extra {
        req = req.header(name, value);
    }
    let out = req.headers(plan);
    (
        req.eval(plan),
        out.get("baggage").cloned().unwrap_or_default(),
    )
}

fn route_version<'p>(plan: &'p Plan, d: &Decision, route: &str) -> Option<&'p str> {
    let i = plan.routes.iter().position(|r| r.name == route)?;
    d.routes
        .iter()
        .chain(&d.implied)
        .find(|o| o.route == i)
        .map(|o| plan.routes[i].versions[o.version].as_str())
}

#[test]
fn identity_from_baggage_buckets_like_the_same_key_in_a_header() {
    let p = default_mesh();
    for i in 0..300 {
        let user = format!("user-{i}@example.com");
        let by_header = Req::new()
            .at(NOW)
            .set(":authority", "search")
            .user(&user)
            .eval(&p);
        let encoded = user.replace('@', "%40");
        let by_baggage = Req::new()
            .at(NOW)
            .set(":authority", "search")
            .header("baggage", &format!("other=1, userId={encoded};p=1"))
            .eval(&p);
        assert_eq!(
            version(&p, &by_header, "search"),
            version(&p, &by_baggage, "search"),
            "{user}"
        );
        assert_eq!(
            variant(&p, &by_header, "new-cart-ui"),
            variant(&p, &by_baggage, "new-cart-ui")
        );
        assert_eq!(
            by_baggage.routes[0].reason,
            Reason::Weighted,
            "{user} had an identity"
        );
    }
}

#[test]
fn later_hops_keep_the_first_hops_decisions_even_after_the_weights_change() {
    let edge = default_mesh();
    // The next hops already run a new revision that moved search from 50% to 0%
    // and still honour tokens from r1 while the push rolls out.
    let later = plan(&mesh(
        "r2",
        &key("k1", KEY1),
        r#", "accept_revisions": ["r1"]"#,
        0,
    ));
    let mut moved_if_rerolled = 0;
    for i in 0..1000 {
        let user = format!("u{i}");
        let (first, baggage) = hop(&edge, "frontend", &format!("userId={user}"), &[]);
        assert_eq!(first.token, TokenStatus::Absent);
        let (second, baggage2) = hop(&later, "search", &baggage, &[]);
        assert_eq!(second.token, TokenStatus::Accepted, "{user}: {baggage}");
        let (third, _) = hop(&later, "payments", &baggage2, &[]);
        assert_eq!(third.token, TokenStatus::Accepted);
        for route in ["frontend", "cart", "payments", "search"] {
            let want = route_version(&edge, &first, route);
            assert_eq!(
                route_version(&later, &second, route),
                want,
                "{user} {route}"
            );
            assert_eq!(route_version(&later, &third, route), want, "{user} {route}");
        }
        assert_eq!(
            variant(&later, &third, "new-cart-ui"),
            variant(&edge, &first, "new-cart-ui")
        );
        if route_version(&edge, &first, "search") == Some("v2") {
            moved_if_rerolled += 1;
        }
    }
    // Without the token, every one of these users would have been moved to v1.
    assert!(moved_if_rerolled > 400, "{moved_if_rerolled}");
}

#[test]
fn the_token_is_passed_on_unchanged_when_it_covers_everything() {
    let p = default_mesh();
    let (_, baggage) = hop(&p, "frontend", "userId=alice", &[]);
    let (d, again) = hop(&p, "cart", &baggage, &[]);
    assert_eq!(d.token, TokenStatus::Accepted);
    let token = |b: &str| {
        b.split(',')
            .find(|m| m.starts_with("sluice.token="))
            .map(str::to_string)
    };
    assert_eq!(token(&again), token(&baggage));
    assert!(again.contains("sluice.route.cart="), "{again}");
    assert!(
        again.starts_with("userId=alice,"),
        "the app's own members come first: {again}"
    );
}

#[test]
fn clients_cannot_choose_their_versions() {
    let p = default_mesh();
    let forged = [
        "userId=mallory,sluice.route.cart=v2,sluice.release.checkout-2=in,sluice.new-cart-ui=on",
        "userId=mallory,sluice.token=AQJrMQ.AAAAAAAAAAAAAAAAAAAAAA",
        "userId=mallory,sluice.token=not base64!",
    ];
    let honest = hop(&p, "cart", "userId=mallory", &[]).0;
    for baggage in forged {
        let (d, out) = hop(&p, "cart", baggage, &[("x-route-cart", "v2")]);
        assert_eq!(
            route_version(&p, &d, "cart"),
            route_version(&p, &honest, "cart"),
            "{baggage}"
        );
        assert_eq!(
            variant(&p, &d, "new-cart-ui"),
            variant(&p, &honest, "new-cart-ui")
        );
        assert_ne!(d.token, TokenStatus::Accepted);
        assert!(!out.contains("sluice.token=AQJrMQ"), "{out}");
    }
    assert_eq!(
        hop(&p, "cart", forged[1], &[]).0.token,
        TokenStatus::Rejected(Rejection::Malformed)
    );
}

#[test]
fn a_token_signed_for_one_user_is_refused_for_another() {
    let p = default_mesh();
    let (_, alice) = hop(&p, "frontend", "userId=alice", &[]);
    let stolen = alice.replace("userId=alice", "userId=bob");
    let (d, _) = hop(&p, "cart", &stolen, &[]);
    assert_eq!(d.token, TokenStatus::Rejected(Rejection::Subject));
}

#[test]
fn expired_unknown_key_and_foreign_revision_tokens_are_re_decided() {
    let p = default_mesh();
    let (_, baggage) = hop(&p, "frontend", "userId=alice", &[]);
    let late = Req::new()
        .at("2026-06-01T12:05:01Z")
        .set(":authority", "cart")
        .header("baggage", &baggage)
        .eval(&p);
    assert_eq!(late.token, TokenStatus::Rejected(Rejection::Expired));
    let rotated = plan(&mesh("r1", &key("k2", KEY2), "", 50));
    assert_eq!(
        hop(&rotated, "cart", &baggage, &[]).0.token,
        TokenStatus::Rejected(Rejection::UnknownKey)
    );
    let same_id_other_secret = plan(&mesh("r1", &key("k1", KEY2), "", 50));
    assert_eq!(
        hop(&same_id_other_secret, "cart", &baggage, &[]).0.token,
        TokenStatus::Rejected(Rejection::Signature)
    );
    let r9 = plan(&mesh("r9", &key("k1", KEY1), "", 50));
    assert_eq!(
        hop(&r9, "cart", &baggage, &[]).0.token,
        TokenStatus::Rejected(Rejection::Revision)
    );
    let tiny = plan(&mesh(
        "r1",
        &key("k1", KEY1),
        r#", "max_token_bytes": 64"#,
        50,
    ));
    assert_eq!(
        hop(&tiny, "cart", &baggage, &[]).0.token,
        TokenStatus::Rejected(Rejection::TooLong)
    );
}

#[test]
fn key_rotation_in_two_pushes_never_rejects_a_token() {
    // The decisions' revision stays `mesh-1`: rotating keys must not move users.
    let epoch = r#", "revision": "mesh-1""#;
    let old = plan(&mesh("r1", &key("k1", KEY1), epoch, 50));
    // Push 1: k2 added as a second (verify-only) key. Push 2: k2 signs, k1 verifies.
    let both = format!("{}, {}", key("k1", KEY1), key("k2", KEY2));
    let adding = plan(&mesh("r2", &both, epoch, 50));
    let both_swapped = format!("{}, {}", key("k2", KEY2), key("k1", KEY1));
    let signing = plan(&mesh("r3", &both_swapped, epoch, 50));
    let stages = [&old, &adding, &signing];
    for (i, first) in stages.iter().enumerate() {
        // Mid-push, the next hop may still be one stage behind or already there.
        for next in &stages[i.saturating_sub(1)..] {
            let (_, baggage) = hop(first, "frontend", "userId=carol", &[]);
            let (d, _) = hop(next, "cart", &baggage, &[]);
            let fine = d.token == TokenStatus::Accepted;
            // Only a hop still on r1 meeting a token signed with k2 (stage 3
            // first, stage 1 next) cannot verify it; the procedure never pairs them.
            assert!(fine, "stage {i} -> {:?}: {:?}", next.revision, d.token);
        }
    }
}

#[test]
fn a_release_moves_its_routes_together() {
    let p = default_mesh();
    let n = 4000;
    let mut inside = 0;
    for i in 0..n {
        let (d, _) = hop(&p, "frontend", &format!("userId=u{i}"), &[]);
        let frontend = route_version(&p, &d, "frontend");
        let cart = route_version(&p, &d, "cart");
        assert_eq!(frontend, cart, "u{i} split across the release");
        assert_eq!(d.releases[0].member, frontend == Some("v2"));
        inside += usize::from(d.releases[0].member);
    }
    let share = inside as f64 / n as f64 * 100.0;
    assert!(
        (23.0..=27.0).contains(&share),
        "release share {share:.1}% (want 25%)"
    );
}

#[test]
fn a_guard_trip_on_one_member_rolls_back_the_whole_release() {
    let p = default_mesh();
    let cart = p.routes.iter().position(|r| r.name == "cart").unwrap();
    let mut controls = vec![RouteControl::Normal; p.routes.len()];
    controls[cart] = RouteControl::RolledBack;
    for i in 0..500 {
        let pairs = [
            (":authority", &b"frontend"[..]),
            (":path", b"/"),
            (":method", b"GET"),
        ];
        let user = format!("userId=u{i}");
        let pairs: Vec<(&str, &[u8])> = pairs
            .into_iter()
            .chain([("baggage", user.as_bytes())])
            .collect();
        let facts = Facts {
            headers: sluice_core::engine::Headers::Pairs(&pairs),
            source: None,
            now_ms: sluice_primitives::time::parse_rfc3339_millis(NOW).unwrap(),
            entropy: 0,
        };
        let live = Live {
            controls: &controls,
            ..Live::default()
        };
        let d = pipeline::run_once(&p, live, &facts).decision;
        assert!(!d.releases[0].member);
        assert_eq!(route_version(&p, &d, "frontend"), Some("v1"));
        assert_eq!(route_version(&p, &d, "cart"), Some("v1"));
    }
}

#[test]
fn a_version_is_only_served_when_its_requirements_hold_for_that_user() {
    let p = default_mesh();
    let (mut v2, mut held_back) = (0, 0);
    for i in 0..3000 {
        let (d, _) = hop(&p, "payments", &format!("userId=u{i}"), &[]);
        let payments = route_version(&p, &d, "payments");
        if payments == Some("v2") {
            v2 += 1;
            assert_eq!(
                variant(&p, &d, "new-cart-ui"),
                "on",
                "u{i} on payments v2 without the flag"
            );
        }
        if d.routes[0].reason == Reason::Requires {
            held_back += 1;
        }
    }
    // 40% bucketed to v2, of whom the 30% with the flag on keep it.
    let share = v2 as f64 / 3000.0 * 100.0;
    assert!(
        (9.0..=15.0).contains(&share),
        "payments v2 share {share:.1}%"
    );
    assert!(
        held_back > 600,
        "{held_back} users held back by the requirement"
    );
}

#[test]
fn contradictory_or_unknown_requirements_are_rejected_with_their_path() {
    let base = |requires: &str| {
        format!(
            r#"{{"version": 1, "flags": {{"f": {{}}}}, "routes": {{
  "a": {{"match": {{"authority": ["a"]}}, "header": "x-a", "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": 10}}, "requires": {requires}}},
  "b": {{"match": {{"authority": ["b"]}}, "header": "x-b", "versions": ["v1", "v2", "v3"], "split": {{"v1": 50, "v2": 25, "v3": 25}},
     "requires": {{"v2": [{{"route": "a", "version": "v1"}}]}}}}
}}}}"#
        )
    };
    let cases = [
        (
            r#"{"v2": [{"route": "b", "version": "v2"}]}"#,
            "routes.a.requires.v2: contradictory requirements: route `a` would need both `v2` and `v1`",
        ),
        (r#"{"v2": [{"route": "c", "version": "v2"}]}"#, "routes.a.requires.v2[0].route: unknown route `c`"),
        (
            r#"{"v2": [{"route": "b", "version": "v9"}]}"#,
            "routes.a.requires.v2[0].version: route `b` has no version `v9`",
        ),
        (r#"{"v2": [{"flag": "f", "variant": "maybe"}]}"#, "routes.a.requires.v2[0].variant: flag `f` has no variant `maybe`"),
        (r#"{"v1": [{"flag": "f", "variant": "on"}]}"#, "routes.a.requires.v1: `v1` is where users go"),
        (r#"{"v2": [{"route": "b"}]}"#, "routes.a.requires.v2[0]: give either route and version"),
    ];
    for (requires, want) in cases {
        let err = sluice_core::compile::load(base(requires).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(want),
            "{requires}\n got: {err}\nwant: {want}"
        );
    }
    assert!(sluice_core::compile::load(base("{}").as_bytes()).is_ok());
}

#[test]
fn chain_config_errors_name_their_path() {
    let cases = [
        (mesh("r1", "", "", 50), "chain.keys: no keys"),
        (
            mesh("r1", &key("k1", "short"), "", 50),
            "chain.keys[0]: secret has 5 bytes",
        ),
        (
            mesh(
                "r1",
                r#"{"id": "k1", "env": "SLUICE_TEST_UNSET_KEY"}"#,
                "",
                50,
            ),
            "chain.keys[0].env: environment variable `SLUICE_TEST_UNSET_KEY` is not set",
        ),
        (
            mesh(
                "r1",
                &format!("{}, {}", key("k1", KEY1), key("k1", KEY2)),
                "",
                50,
            ),
            "chain.keys[1].id: duplicate key id `k1`",
        ),
        (
            mesh("r1", &key("k1", KEY1), "", 50).replace(r#""ttl": "5m""#, r#""ttl": "0s""#),
            "chain.ttl: must be between 1s and 24h",
        ),
        (
            mesh("r1", &key("k1", KEY1), "", 50)
                .replace(r#""outputs": {"baggage": {"prefix": "sluice."}},"#, ""),
            "chain: decisions travel in baggage",
        ),
        (
            mesh("r1", &key("k1", KEY1), "", 50)
                .replace(r#""frontend": "v2", "cart": "v2""#, r#""frontend": "v1""#),
            "releases.checkout-2.routes.frontend: `v1` is not route `frontend`'s canary (`v2`)",
        ),
    ];
    for (config, want) in cases {
        let err = sluice_core::compile::load(config.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "got: {err}\nwant: {want}");
    }
}

#[test]
fn keys_can_come_from_the_environment() {
    let config = mesh("r1", r#"{"id": "k1", "env": "SLUICE_CHAIN_KEY"}"#, "", 50);
    let env = |name: &str| (name == "SLUICE_CHAIN_KEY").then(|| KEY1.to_string());
    let from_env = sluice_core::compile::load_with_env(config.as_bytes(), &env).unwrap();
    let inline = default_mesh();
    let (_, baggage) = hop(&from_env, "frontend", "userId=dave", &[]);
    assert_eq!(
        hop(&inline, "cart", &baggage, &[]).0.token,
        TokenStatus::Accepted
    );
}

#[test]
fn hostile_baggage_is_bounded_and_never_honoured() {
    let p = default_mesh();
    let mut members: Vec<String> = (0..500).map(|i| format!("k{i}=v")).collect();
    members.push("userId=late".into());
    let (d, _) = hop(&p, "cart", &members.join(","), &[]);
    assert_eq!(
        d.baggage_flaw,
        Some(sluice_core::engine::request::BaggageFlaw::TooManyMembers)
    );
    assert_eq!(d.implied.len() + d.routes.len(), 4);
    assert_eq!(
        d.routes[0].reason,
        Reason::Release,
        "the 501st member is not read, so no identity: the release's stable"
    );
    let (bad, _) = hop(&p, "search", "userId=a%zzb", &[]);
    assert_eq!(
        bad.baggage_flaw,
        Some(sluice_core::engine::request::BaggageFlaw::BadEncoding)
    );
    assert_eq!(bad.routes[0].reason, Reason::NoIdentity);
    let huge = format!("userId=x,sluice.token={}", "A".repeat(100_000));
    let (d, _) = hop(&p, "cart", &huge, &[]);
    assert_eq!(d.token, TokenStatus::Rejected(Rejection::TooLong));
}

#[test]
fn token_size_for_50_flags_and_10_routes_stays_well_under_header_limits() {
    let flags: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#""feature-flag-{i:02}": {{"rules": [{{"rollout": {{"on": 50, "off": 50}}}}]}}"#
            )
        })
        .collect();
    let routes: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#""service-{i:02}": {{"match": {{"authority": ["service-{i:02}"]}}, "header": "x-route-{i:02}", "versions": ["stable", "canary"], "canary": {{"stable": "stable", "canary": "canary", "weight": 10}}}}"#
            )
        })
        .collect();
    let config = format!(
        r#"{{"version": 1, "revision": "big", "identity": {{"user": [{{"baggage": "userId"}}]}},
  "flags": {{{}}}, "routes": {{{}}}, "outputs": {{"baggage": {{"prefix": "sluice."}}}},
  "chain": {{"keys": [{}]}}}}"#,
        flags.join(","),
        routes.join(","),
        key("k1", KEY1)
    );
    let p = plan(&config);
    let (_, baggage) = hop(&p, "service-00", "userId=someone", &[]);
    let token = baggage
        .split(',')
        .find_map(|m| m.strip_prefix("sluice.token="))
        .unwrap();
    println!(
        "token for 50 flags + 10 routes: {} bytes; whole baggage {} bytes",
        token.len(),
        baggage.len()
    );
    // Envoy's default request-header limit is 60 KiB; W3C baggage asks for 8,192 bytes.
    assert!(baggage.len() < 8192, "baggage {} bytes", baggage.len());
    assert_eq!(
        hop(&p, "service-01", &baggage, &[]).0.token,
        TokenStatus::Accepted
    );
}

#[test]
fn testers_and_pins_address_the_release_as_a_whole() {
    let secret = "let-me-test";
    let hash: String = sluice_primitives::sha256::sha256(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let config = mesh("r1", &key("k1", KEY1), "", 50).replace(
        r#""outputs": {"baggage""#,
        &format!(r#""overrides": {{"secret_sha256": "{hash}"}}, "outputs": {{"baggage""#),
    );
    let config = config.replace(
        r#""weight": 25}}"#,
        r#""weight": 25, "pins": [{"when": {"header": "x-employee", "equals": "true"}, "in": true}]}}"#,
    );
    let p = plan(&config);
    for i in 0..200 {
        let user = format!("userId=u{i}");
        let (inside, _) = hop(
            &p,
            "frontend",
            &user,
            &[
                ("x-sluice-override", "checkout-2=in"),
                ("x-sluice-secret", secret),
            ],
        );
        assert!(inside.releases[0].member);
        assert_eq!(inside.releases[0].reason, Reason::Override);
        assert_eq!(route_version(&p, &inside, "frontend"), Some("v2"));
        assert_eq!(route_version(&p, &inside, "cart"), Some("v2"));
        let (outside, _) = hop(
            &p,
            "frontend",
            &user,
            &[
                ("x-sluice-override", "checkout-2=out"),
                ("x-sluice-secret", secret),
            ],
        );
        assert!(!outside.releases[0].member);
        assert_eq!(route_version(&p, &outside, "cart"), Some("v1"));
        let (no_secret, _) = hop(
            &p,
            "frontend",
            &user,
            &[("x-sluice-override", "checkout-2=in")],
        );
        assert_ne!(no_secret.releases[0].reason, Reason::Override);
        let (employee, _) = hop(&p, "frontend", &user, &[("x-employee", "true")]);
        assert!(employee.releases[0].member);
        assert_eq!(employee.releases[0].reason, Reason::Pinned(0));
        assert_eq!(route_version(&p, &employee, "cart"), Some("v2"));
    }
}
