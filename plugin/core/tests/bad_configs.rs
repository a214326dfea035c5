//! Every way a pushed config can be wrong gets an error that names the path
//! and the reason. One row per mistake an operator can make.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::compile::load;

/// (what is wrong, config, expected `path: reason` substring)
const BAD: &[(&str, &str, &str)] = &[
    ("not JSON", r#"{"version": 1,"#, "config: EOF while parsing"),
    (
        "wrong version",
        r#"{"version": 2}"#,
        "version: unsupported version 2, expected 1",
    ),
    (
        "unknown top-level field",
        r#"{"version": 1, "flagz": {}}"#,
        "flagz: unknown field `flagz`",
    ),
    (
        "unknown field in a flag",
        r#"{"version": 1, "flags": {"checkout": {"enabeld": false}}}"#,
        "flags.checkout.enabeld: unknown field `enabeld`, expected one of",
    ),
    (
        "duplicate flag name",
        r#"{"version": 1, "flags": {"a": {}, "a": {}}}"#,
        "flags.a: duplicate name `a`",
    ),
    (
        "weights do not sum to 100",
        r#"{"version": 1, "flags": {"checkout": {"rules": [
            {"when": {"header": "x-beta", "present": true}, "serve": "on"},
            {"rollout": {"on": 40, "off": 50}}]}}}"#,
        "flags.checkout.rules[1].rollout: weights sum to 90, expected 100",
    ),
    (
        "negative weight",
        r#"{"version": 1, "flags": {"f": {"rules": [{"rollout": {"on": -10, "off": 110}}]}}}"#,
        "flags.f.rules[0].rollout.on: weight -10 is negative",
    ),
    (
        "weight finer than a bucket",
        r#"{"version": 1, "flags": {"f": {"rules": [{"rollout": {"on": 10.005, "off": 89.995}}]}}}"#,
        "flags.f.rules[0].rollout.on: weight 10.005 is finer than 0.01",
    ),
    (
        "empty variant set",
        r#"{"version": 1, "flags": {"f": {"variants": {}, "default": "x"}}}"#,
        "flags.f.variants: no variants; give at least one",
    ),
    (
        "default variant that does not exist",
        r#"{"version": 1, "flags": {"theme": {"variants": {"light": "l", "dark": "d"}, "default": "blue"}}}"#,
        "flags.theme.default: unknown variant `blue` (variants: dark, light)",
    ),
    (
        "multivariate flag without default",
        r#"{"version": 1, "flags": {"theme": {"variants": {"light": "l"}}}}"#,
        "flags.theme.default: missing",
    ),
    (
        "unknown segment",
        r#"{"version": 1, "flags": {"f": {"rules": [{"when": {"segment": "betas"}, "serve": "on"}]}}}"#,
        "flags.f.rules[0].when.segment: unknown segment `betas`",
    ),
    (
        "segment cycle",
        r#"{"version": 1, "segments": {"a": {"segment": "b"}, "b": {"segment": "a"}}}"#,
        "segment cycle: a -> b -> a",
    ),
    (
        "unknown prerequisite flag",
        r#"{"version": 1, "flags": {"f": {"prerequisites": [{"flag": "g", "variants": ["on"]}]}}}"#,
        "flags.f.prerequisites[0].flag: unknown flag `g`",
    ),
    (
        "prerequisite cycle",
        r#"{"version": 1, "flags": {
            "a": {"prerequisites": [{"flag": "b", "variants": ["on"]}]},
            "b": {"prerequisites": [{"flag": "c", "variants": ["on"]}]},
            "c": {"prerequisites": [{"flag": "a", "variants": ["on"]}]}}}"#,
        "prerequisite cycle: a -> b -> c -> a",
    ),
    (
        "prerequisite on a variant the flag lacks",
        r#"{"version": 1, "flags": {"a": {}, "b": {"prerequisites": [{"flag": "a", "variants": ["yes"]}]}}}"#,
        "flags.b.prerequisites[0].variants[0]: flag `a` has no variant `yes`",
    ),
    (
        "bad CIDR",
        r#"{"version": 1, "segments": {"office": {"attr": "source_address", "cidr": ["10.0.0.0/33"]}}}"#,
        "segments.office.cidr[0]: `10.0.0.0/33` is not a CIDR",
    ),
    (
        "bad semver",
        r#"{"version": 1, "segments": {"new-app": {"header": "x-app-version", "semver_gte": "2.x"}}}"#,
        "segments.new-app.semver_gte: `2.x` is not a semantic version",
    ),
    (
        "header name that is not a token",
        r#"{"version": 1, "flags": {"f": {"header": "x bad"}}}"#,
        "flags.f.header: `x bad` is not a valid HTTP header name",
    ),
    (
        "header value that could inject",
        r#"{"version": 1, "flags": {"f": {"variants": {"a": "ok\r\nx-admin: 1"}, "default": "a", "header": "x-f"}}}"#,
        "flags.f.variants.a: value contains control character '\\r', which could inject headers",
    ),
    (
        "unknown attribute",
        r#"{"version": 1, "segments": {"s": {"attr": "country", "equals": "DE"}}}"#,
        "segments.s.attr: unknown attribute `country`",
    ),
    (
        "two operators in one condition",
        r#"{"version": 1, "segments": {"s": {"header": "x-a", "equals": "1", "prefix": "2"}}}"#,
        "segments.s: more than one operator: equals, prefix",
    ),
    (
        "condition without operator",
        r#"{"version": 1, "segments": {"s": {"header": "x-a"}}}"#,
        "segments.s: condition has no operator",
    ),
    (
        "rule with serve and rollout",
        r#"{"version": 1, "flags": {"f": {"rules": [{"serve": "on", "rollout": {"on": 100}}]}}}"#,
        "flags.f.rules[0]: a rule needs exactly one of serve or rollout",
    ),
    (
        "bad schedule time",
        r#"{"version": 1, "flags": {"f": {"schedule": {"enable_at": "next tuesday"}}}}"#,
        "flags.f.schedule.enable_at: `next tuesday` is not an RFC 3339 time",
    ),
    (
        "bad ramp duration",
        r#"{"version": 1, "flags": {"f": {"schedule": {"ramp": {"start": "2026-12-01T00:00:00Z", "duration": "a while", "from": 1, "to": 50}}}}}"#,
        "flags.f.schedule.ramp.duration: `a while` is not a duration",
    ),
    (
        "flag name unusable in a header",
        r#"{"version": 1, "flags": {"check out": {}}}"#,
        "flags.check out: flag name `check out` must be 1-128 letters",
    ),
    (
        "two flags writing one header",
        r#"{"version": 1, "flags": {"a": {"header": "x-f"}, "b": {"header": "X-F"}}}"#,
        "flags.b.header: header `x-f` is already written by flags.a.header",
    ),
    (
        "unknown version in a pin",
        r#"{"version": 1, "routes": {"reviews": {"header": "x-route-reviews", "versions": ["v1", "v2"],
            "canary": {"stable": "v1", "canary": "v2", "weight": 5},
            "pins": [{"when": {"header": "x-beta", "present": true}, "version": "v3"}]}}}"#,
        "routes.reviews.pins[0].version: unknown version `v3` (versions: v1, v2)",
    ),
    (
        "split weights over 100",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"], "split": {"a": 70, "b": 40}}}}"#,
        "routes.r.split: weights sum to 110, expected 100",
    ),
    (
        "canary weight over 100",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b", "weight": 120}}}}"#,
        "routes.r.canary.weight: weight 120 is over 100",
    ),
    (
        "steps not increasing in time",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b",
            "start": "2026-12-01T00:00:00Z", "steps": [{"after": "10m", "weight": 5}, {"after": "5m", "weight": 25}]}}}}"#,
        "routes.r.canary.steps[1]: steps must be strictly increasing in time",
    ),
    (
        "overlapping routes writing the same header",
        r#"{"version": 1, "routes": {
            "a": {"match": {"path_prefix": "/api"}, "header": "x-route", "versions": ["v1"], "split": {"v1": 100}},
            "b": {"match": {"path_prefix": "/api/v2"}, "header": "x-route", "versions": ["v1"], "split": {"v1": 100}}}}"#,
        "routes.b.header: routes `a` and `b` can match the same request and both write `x-route`",
    ),
    (
        "route header colliding with a flag header",
        r#"{"version": 1, "flags": {"f": {"header": "x-route-r"}},
            "routes": {"r": {"header": "x-route-r", "versions": ["a"], "split": {"a": 100}}}}"#,
        "routes.r.header: header `x-route-r` is already written by flags.f.header",
    ),
    (
        "route without strategy",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a"]}}}"#,
        "routes.r: no strategy",
    ),
    (
        "overrides that can never be honoured",
        r#"{"version": 1, "overrides": {}}"#,
        "overrides: set secret_sha256 or allow_sources",
    ),
    (
        "override secret that is not a SHA-256",
        r#"{"version": 1, "overrides": {"secret_sha256": "let-me-test"}}"#,
        "overrides.secret_sha256: expected 64 hex digits",
    ),
    (
        "writing a reserved header",
        r#"{"version": 1, "outputs": {"flags_header": "Host"}}"#,
        "outputs.flags_header: `host` is reserved by HTTP",
    ),
    (
        "blue-green with three colors",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["blue", "green", "red"], "blue_green": {"active": "blue"}}}}"#,
        "routes.r.versions: blue-green needs exactly two versions, got 3",
    ),
    (
        "guard on a route without canary",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a"], "split": {"a": 100}, "guard": {"max_error_rate": 5}}}}"#,
        "routes.r.guard: a guard watches a canary",
    ),
    (
        "sequential guard with a threshold",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b"},
            "guard": {"method": "sequential", "max_error_rate": 5}}}}"#,
        "routes.r.guard.max_error_rate: a sequential guard has no thresholds",
    ),
    (
        "sequential guard alpha out of range",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b"},
            "guard": {"method": "sequential", "alpha": 0}}}}"#,
        "routes.r.guard.alpha: must be above 0 and at most 0.5",
    ),
    (
        "threshold guard with slow",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b"},
            "guard": {"max_error_rate": 5, "slow": "1s"}}}}"#,
        "routes.r.guard.slow: only for `method: sequential`",
    ),
    (
        "sticky cookie SameSite=None without Secure",
        r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a"], "split": {"a": 100},
            "sticky_cookie": {"name": "sluice-r", "same_site": "None"}}}}"#,
        "routes.r.sticky_cookie.same_site: SameSite=None requires secure: true",
    ),
    (
        "identity source of unknown kind",
        r#"{"version": 1, "identity": {"user": [{"jwt_claim": "sub"}]}}"#,
        "identity.user[0].jwt_claim: unknown variant `jwt_claim`",
    ),
    (
        "unreachable rule after a catch-all",
        r#"{"version": 1, "flags": {"f": {"rules": [{"serve": "on"}, {"when": {"header": "x", "present": true}, "serve": "off"}]}}}"#,
        "flags.f.rules[1]: unreachable: rules[0] has no `when`",
    ),
    (
        "negate on a combinator",
        r#"{"version": 1, "segments": {"s": {"all": [{"header": "x", "present": true}], "negate": true}}}"#,
        "segments.s: negate and ignore_case belong on a leaf",
    ),
    (
        "route authority with a port",
        r#"{"version": 1, "routes": {"r": {"match": {"authority": ["reviews:9080"]}, "header": "x-route-r", "versions": ["a"], "split": {"a": 100}}}}"#,
        "routes.r.match.authority[0]: `reviews:9080` has a port",
    ),
    (
        "a C1 control character (U+0085, two bytes in UTF-8) in a header value",
        "{\"version\": 1, \"flags\": {\"f\": {\"variants\": {\"a\": \"gr\\u00fcn\\u0085\"}, \"default\": \"a\", \"header\": \"x-f\"}}}",
        "flags.f.variants.a: value contains control character",
    ),
    (
        "control character in the revision",
        "{\"version\": 1, \"revision\": \"r1\\nx-evil: 1\"}",
        "revision: value contains control character",
    ),
    (
        "flag header that is also an input",
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "flags": {"f": {"header": "x-user-id"}}}"#,
        "flags.f.header: header `x-user-id` is also read by this config as an input",
    ),
    (
        "flag header that is the baggage header",
        r#"{"version": 1, "flags": {"f": {"header": "baggage"}}, "outputs": {"baggage": {}}}"#,
        "outputs.baggage: header `baggage` is already written by flags.f.header",
    ),
    (
        "bad trusted peer range",
        r#"{"version": 1, "outputs": {"trust_incoming_from": ["10.0.0.0/40"]}}"#,
        "outputs.trust_incoming_from[0]: `10.0.0.0/40` is not a CIDR",
    ),
];

#[test]
fn every_bad_config_is_rejected_with_its_path_and_reason() {
    assert!(BAD.len() >= 25);
    let mut failures = Vec::new();
    for (what, json, expected) in BAD {
        match load(json.as_bytes()) {
            Ok(_) => failures.push(format!("{what}: accepted, expected `{expected}`")),
            Err(err) => {
                let message = err.to_string();
                if !message.contains(expected) {
                    failures.push(format!(
                        "{what}:\n   got      `{message}`\n   expected `{expected}`"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad configs misreported:\n{}",
        failures.len(),
        BAD.len(),
        failures.join("\n")
    );
}

#[test]
fn the_smallest_config_is_valid() {
    let plan = load(br#"{"version": 1}"#).unwrap();
    assert!(plan.flags.is_empty() && plan.routes.is_empty());
    assert_eq!(plan.flags_header.as_deref(), Some("x-sluice-flags"));
}
