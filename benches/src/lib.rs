//! Shared pieces of the benchmarks: generated configs of a given size, realistic requests, the
//! per-request work the filter does (the unit the criterion benches time), and the parsing of
//! `wrk --latency` output for the Envoy load comparison (`bench-envoy`).
pub mod wrk;

use serde_json::{json, Map, Value};
use sluice_core::engine::Headers;
use sluice_core::pipeline::{self, Facts, Live, Scratch};
use sluice_core::plan::Plan;

/// The instant the benches evaluate at (2026-11-26T12:00:00Z, Unix millis): inside the ramps and
/// schedules of the generated and example configs.
pub const NOW_MS: i64 = 1_795_694_400_000;

/// A config with `flags` flags and `routes` routes, shaped like a real one: an identity with
/// fallbacks, attributes, a dozen segments (CIDR, semver, lists, suffixes, nested any/all/not),
/// and flags that cycle through the kinds operators write: percentage rollouts, targeting rules
/// then a rollout, multivariate experiments, prerequisites, inline conditions, ramps and kill
/// switches; one flag in 25 also has its own header. Routes cycle through canary (with a pin),
/// blue-green (with a preview condition) and a three-way split, each matched by authority, so a
/// request reaches one of them and is checked against all.
pub fn config(flags: usize, routes: usize) -> String {
    let mut flag_map = Map::new();
    for i in 0..flags {
        flag_map.insert(flag_name(i), flag(i));
    }
    let mut route_map = Map::new();
    for j in 0..routes {
        route_map.insert(format!("svc-{j}"), route(j));
    }
    let config = json!({
        "version": 1,
        "revision": format!("bench-{flags}f-{routes}r"),
        "identity": {
            "user": [{ "header": "x-user-id" }, { "cookie": "uid" }],
            "session": [{ "cookie": "session" }],
            "without_identity": "default"
        },
        "attributes": {
            "country": { "header": "x-geo-country" },
            "email": { "header": "x-user-email" },
            "app_version": { "header": "x-app-version" },
            "user_agent": { "header": "user-agent" },
            "cart_total": { "header": "x-cart-total" },
            "tier": { "cookie": "tier" },
            "path": "path",
            "client_ip": { "header": "x-forwarded-for" }
        },
        "segments": {
            "office": { "attr": "client_ip", "cidr": ["10.0.0.0/8", "192.168.0.0/16"] },
            "staff": {
                "any": [
                    { "attr": "email", "suffix": "@acme.example", "ignore_case": true },
                    { "segment": "office" }
                ]
            },
            "beta": { "cookie": "beta", "equals": "1" },
            "eu": {
                "attr": "country",
                "in": ["at", "be", "de", "dk", "es", "fi", "fr", "ie", "it", "nl", "pl", "pt", "se"],
                "ignore_case": true
            },
            "premium": { "attr": "tier", "in": ["gold", "platinum"] },
            "mobile": { "attr": "user_agent", "prefix": "AcmeShop/" },
            "modern_app": {
                "all": [{ "segment": "mobile" }, { "attr": "app_version", "semver_gte": "4.2.0" }]
            },
            "humans": { "not": { "attr": "user_agent", "contains": "bot", "ignore_case": true } },
            "big_cart": { "attr": "cart_total", "num_gte": 150 },
            "staff_or_beta": { "any": [{ "segment": "staff" }, { "segment": "beta" }] }
        },
        "flags": flag_map,
        "routes": route_map,
        "outputs": { "flags_header": "x-sluice-flags" }
    });
    config.to_string()
}

fn flag_name(i: usize) -> String {
    format!("feature-{i:04}")
}

const SEGMENTS: [&str; 6] = [
    "staff_or_beta",
    "eu",
    "premium",
    "modern_app",
    "big_cart",
    "humans",
];

fn flag(i: usize) -> Value {
    let share = [5, 10, 25, 50, 75][i % 5];
    let rollout = json!({ "on": share, "off": 100 - share });
    let mut flag = match i % 10 {
        // Plain percentage rollouts: the commonest flag.
        0..=2 => json!({ "rules": [{ "rollout": rollout }] }),
        // Targeting first, then everyone else by percentage.
        3 | 4 => json!({
            "rules": [
                { "name": "target", "when": { "segment": SEGMENTS[i % SEGMENTS.len()] }, "serve": "on" },
                { "rollout": rollout }
            ]
        }),
        // A multivariate experiment.
        5 => json!({
            "variants": { "control": "control", "a": "variant-a", "b": "variant-b" },
            "default": "control",
            "rules": [
                { "when": { "segment": "humans" }, "rollout": { "control": 50, "a": 25, "b": 25 } }
            ]
        }),
        // Depends on the flag before it.
        6 => json!({
            "prerequisites": [{ "flag": flag_name(i - 1), "variants": ["control", "a"] }],
            "rules": [{ "rollout": rollout }]
        }),
        // An inline condition on the path and a header.
        7 => json!({
            "rules": [{
                "when": { "all": [
                    { "attr": "path", "prefix": "/products/" },
                    { "header": "x-experiments", "contains": format!("exp-{i}"), "negate": true }
                ] },
                "serve": "on"
            }]
        }),
        // Ramped over a month.
        8 => json!({
            "schedule": {
                "ramp": { "start": "2026-11-01T00:00:00Z", "duration": "30d", "from": 10, "to": 100 }
            },
            "rules": [{ "serve": "on" }]
        }),
        // A kill switch.
        _ => json!({ "enabled": false, "off_variant": "off", "rules": [{ "serve": "on" }] }),
    };
    if i.is_multiple_of(25) {
        flag["header"] = json!(format!("x-feature-{i:04}"));
    }
    flag
}

fn route(j: usize) -> Value {
    let matcher =
        json!({ "authority": [format!("svc-{j}"), format!("svc-{j}.shop.svc.cluster.local")] });
    let header = format!("x-route-svc-{j}");
    match j % 3 {
        0 => json!({
            "match": matcher,
            "header": header,
            "versions": ["v1", "v2"],
            "canary": { "stable": "v1", "canary": "v2", "weight": 10 },
            "pins": [{ "when": { "segment": "staff" }, "version": "v2" }]
        }),
        1 => json!({
            "match": matcher,
            "header": header,
            "versions": ["blue", "green"],
            "blue_green": { "active": "green", "preview": { "header": "x-preview", "equals": "1" } }
        }),
        _ => json!({
            "match": matcher,
            "header": header,
            "versions": ["a", "b", "c"],
            "split": { "a": 50, "b": 30, "c": 20 }
        }),
    }
}

/// One request's header pairs, as Envoy hands them to the filter (names lower-case): a browser
/// request for a product page of `svc-0` (the first generated route's service), with a user id,
/// cookies and the usual noise. `user` varies the identity.
pub fn request_pairs(user: usize, authority: &str) -> Vec<(String, Vec<u8>)> {
    let pairs: [(&str, String); 16] = [
        (":authority", authority.to_string()),
        (":path", "/products/4711?utm_campaign=spring-sale".to_string()),
        (":method", "GET".to_string()),
        (":scheme", "http".to_string()),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
                .to_string(),
        ),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".to_string()),
        ("accept-language", "de-DE,de;q=0.9,en;q=0.8".to_string()),
        ("accept-encoding", "gzip, deflate, br".to_string()),
        ("x-user-id", format!("user-{:08}", user.wrapping_mul(2_654_435_761) % 100_000_000)),
        ("cookie", format!("session=s{user:x}f00d; tier=silver; beta=0")),
        ("x-geo-country", "DE".to_string()),
        ("x-forwarded-for", "203.0.113.7".to_string()),
        ("x-request-id", format!("7f0c2a4e-1b2d-4c3e-9f00-{user:012x}")),
        ("x-cart-total", "89.90".to_string()),
        ("x-forwarded-proto", "https".to_string()),
        ("x-envoy-expected-rq-timeout-ms", "15000".to_string()),
    ];
    pairs
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.into_bytes()))
        .collect()
}

/// What the filter does per request, natively: pick the plan's facts out of the header pairs,
/// evaluate, and build the request headers to write. Returns the total length written (so the
/// work cannot be optimised away).
pub fn handle(plan: &Plan, pairs: &[(&str, &[u8])], source: Option<&[u8]>) -> usize {
    SCRATCH.with(|scratch| {
        let scratch = &mut scratch.borrow_mut();
        let facts = Facts {
            headers: Headers::Pairs(pairs),
            source,
            now_ms: NOW_MS,
            entropy: 0x5eed,
        };
        pipeline::run(plan, Live::default(), &facts, scratch);
        scratch
            .patch
            .sets(plan)
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
            + scratch.patch.removals(plan).count()
    })
}

thread_local! {
    /// The buffers the filter keeps per VM, kept here per thread the same way.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Header pairs borrowed the way the filter holds them (names as text, values as bytes).
pub fn borrow_pairs(pairs: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configs_load() {
        for (flags, routes) in [(10, 1), (100, 10), (1000, 50)] {
            let plan = match sluice_core::compile::load(config(flags, routes).as_bytes()) {
                Ok(plan) => plan,
                Err(err) => panic!("{flags} flags, {routes} routes: {err}"),
            };
            assert_eq!((plan.flags.len(), plan.routes.len()), (flags, routes));
            let pairs = request_pairs(1, "svc-0");
            assert!(handle(&plan, &borrow_pairs(&pairs), None) > 0);
        }
    }

    #[test]
    fn now_is_2026_11_26_noon() {
        assert_eq!(
            sluice_primitives::time::parse_rfc3339_millis("2026-11-26T12:00:00Z"),
            Some(NOW_MS)
        );
    }
}
