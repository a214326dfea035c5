//! The compiler's checks (`compile/`), at their edges: a value just inside a limit loads, one
//! just outside is refused with the path and reason the operator sees in Envoy's log.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::compile::{load, load_with_env};

/// A config around one route (`r`, versions `a` and `b`) with `extra` fields added to it.
fn route(extra: &str) -> String {
    format!(
        r#"{{"version": 1, "routes": {{"r": {{"header": "x-route-r", "versions": ["a", "b"], {extra}}}}}}}"#
    )
}

/// A route with a canary (`a` stable, `b` canary) and a guard with `guard` fields.
fn guard(fields: &str) -> String {
    route(&format!(
        r#""canary": {{"stable": "a", "canary": "b", "weight": 10}}, "guard": {{{fields}}}"#
    ))
}

/// A flag `f` with the given fields.
fn flag(fields: &str) -> String {
    format!(r#"{{"version": 1, "flags": {{"f": {{{fields}}}}}}}"#)
}

/// An Unleash section with a poll and the given extra fields.
fn unleash(poll: &str, extra: &str) -> String {
    format!(r#"{{"version": 1, "unleash": {{"poll": {{"cluster": "unleash"{poll}}}{extra}}}}}"#)
}

/// A Spring source with the given fields beside the required ones.
fn spring(fields: &str) -> String {
    format!(
        r#"{{"version": 1, "sources": {{"spring": {{"cluster": "config", "application": "shop",
            "profiles": ["prod"]{fields}}}}}}}"#
    )
}

/// A config with one segment `s`.
fn cond(condition: &str) -> String {
    format!(r#"{{"version": 1, "segments": {{"s": {condition}}}}}"#)
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A chain (with baggage on) with the given fields beside one key.
fn chain(fields: &str) -> String {
    format!(
        r#"{{"version": 1, "outputs": {{"baggage": {{}}}},
            "chain": {{"keys": [{{"id": "k1", "secret": "{SECRET}"}}]{fields}}}}}"#
    )
}

fn refusals() -> Vec<(String, &'static str)> {
    vec![
        // Names inside header values: 1-128 letters, digits, `_`, `-`, `.`.
        (
            format!(r#"{{"version": 1, "flags": {{"{}": {{}}}}}}"#, "n".repeat(129)),
            "must be 1-128 letters, digits, `_`, `-` or `.`",
        ),
        (
            r#"{"version": 1, "flags": {"": {}}}"#.into(),
            "flags.: flag name `` must be 1-128 letters, digits, `_`, `-` or `.`",
        ),
        (
            r#"{"version": 1, "flags": {"a b": {}}}"#.into(),
            "flags.a b: flag name `a b` must be 1-128 letters, digits, `_`, `-` or `.`",
        ),
        (
            flag(r#""variants": {"on;x": 1}, "default": "on;x""#),
            "flags.f.variants.on;x: variant name `on;x` must be 1-128 letters, digits, `_`, `-` or `.`",
        ),
        // Headers written: a token, not reserved.
        (
            flag(r#""header": """#),
            "flags.f.header: `` is not a valid HTTP header name",
        ),
        (
            flag(r#""header": "x flag""#),
            "flags.f.header: `x flag` is not a valid HTTP header name",
        ),
        (
            flag(r#""header": "Content-Length""#),
            "flags.f.header: `content-length` is reserved by HTTP and cannot be written by Sluice",
        ),
        // Headers read: a token or a pseudo-header.
        (
            r#"{"version": 1, "identity": {"user": [{"header": ":"}]}}"#.into(),
            "identity.user[0]: `:` is not a valid HTTP header name",
        ),
        (
            r#"{"version": 1, "identity": {"user": [{"header": ""}]}}"#.into(),
            "identity.user[0]: `` is not a valid HTTP header name",
        ),
        (
            r#"{"version": 1, "identity": {"user": [{"header": "x user"}]}}"#.into(),
            "identity.user[0]: `x user` is not a valid HTTP header name",
        ),
        (
            r#"{"version": 1, "identity": {"session": [{"cookie": ""}]}}"#.into(),
            "identity.session[0]: cookie name `` is not a valid token",
        ),
        (
            r#"{"version": 1, "identity": {"session": [{"cookie": "a=b"}]}}"#.into(),
            "identity.session[0]: cookie name `a=b` is not a valid token",
        ),
        (
            r#"{"version": 1, "identity": {"user": [{"query": "a b"}]}}"#.into(),
            "identity.user[0]: query parameter `a b` is not a valid token",
        ),
        (
            r#"{"version": 1, "identity": {"user": [{"baggage": "a,b"}]}}"#.into(),
            "identity.user[0]: baggage key `a,b` is not a valid token",
        ),
        // Values written into headers.
        (
            flag(r#""variants": {"on": "a\nb"}, "default": "on""#),
            "flags.f.variants.on: value contains control character '\\n', which could inject headers",
        ),
        (
            r#"{"version": 1, "revision": "r1\r\nx-evil: 1"}"#.into(),
            "revision: value contains control character '\\r', which could inject headers",
        ),
        // Percents: 0 to 100 in steps of 0.01.
        (
            flag(r#""rules": [{"rollout": {"on": -0.01, "off": 100.01}}]"#),
            "flags.f.rules[0].rollout.on: weight -0.01 is negative",
        ),
        (
            flag(r#""rules": [{"rollout": {"on": 0, "off": 100.01}}]"#),
            "flags.f.rules[0].rollout.off: weight 100.01 is over 100",
        ),
        (
            flag(r#""rules": [{"rollout": {"on": 0, "off": 150}}]"#),
            "flags.f.rules[0].rollout.off: weight 150 is over 100",
        ),
        (
            flag(r#""rules": [{"rollout": {"on": 0.001, "off": 99.999}}]"#),
            "flags.f.rules[0].rollout.on: weight 0.001 is finer than 0.01",
        ),
        (
            flag(r#""rules": [{"rollout": {"on": 12.5, "off": 80}}]"#),
            "flags.f.rules[0].rollout: weights sum to 92.5, expected 100",
        ),
        (
            flag(r#""rules": [{"rollout": {"on": 12.05, "off": 80}}]"#),
            "flags.f.rules[0].rollout: weights sum to 92.05, expected 100",
        ),
        (
            flag(r#""rules": [{"rollout": {"on": 0.5, "off": 99.6}}]"#),
            "flags.f.rules[0].rollout: weights sum to 100.1, expected 100",
        ),
        (
            flag(r#""rules": [{"rollout": {"on": 0.07}}]"#),
            "flags.f.rules[0].rollout: weights sum to 0.07, expected 100",
        ),
        (
            flag(r#""rules": [{"rollout": {}}]"#),
            "flags.f.rules[0].rollout: no variants in rollout",
        ),
        // Flags.
        (
            flag(r#""rules": [{"serve": "on"}, {"serve": "off"}]"#),
            "flags.f.rules[1]: unreachable: rules[0] has no `when` and matches every request",
        ),
        (
            flag(r#""rules": [{"serve": "on", "rollout": {"on": 100}}]"#),
            "flags.f.rules[0]: a rule needs exactly one of serve or rollout",
        ),
        (
            flag(r#""rules": [{"name": "x"}]"#),
            "flags.f.rules[0]: a rule needs exactly one of serve or rollout",
        ),
        (
            flag(r#""schedule": {}"#),
            "flags.f.schedule: empty schedule: give enable_at and/or ramp",
        ),
        (
            flag(r#""prerequisites": [{"flag": "f", "variants": ["on"]}]"#),
            "flags.f.prerequisites[0].flag: a flag cannot require itself",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"prerequisites": [{"flag": "g", "variants": []}]}, "g": {}}}"#.into(),
            "flags.f.prerequisites[0].variants: empty list can never hold",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"prerequisites": [{"flag": "g", "variants": ["on", "maybe"]}]}, "g": {}}}"#.into(),
            "flags.f.prerequisites[0].variants[1]: flag `g` has no variant `maybe`",
        ),
        (
            r#"{"version": 1, "flags": {
                "a": {"prerequisites": [{"flag": "b", "variants": ["on"]}]},
                "b": {"prerequisites": [{"flag": "c", "variants": ["on"]}]},
                "c": {"prerequisites": [{"flag": "a", "variants": ["on"]}]}}}"#.into(),
            "flags.a.prerequisites: prerequisite cycle: a -> b -> c -> a",
        ),
        (
            r#"{"version": 1, "flags": {
                "a": {},
                "b": {"prerequisites": [{"flag": "c", "variants": ["on"]}]},
                "c": {"prerequisites": [{"flag": "b", "variants": ["on"]}]}}}"#.into(),
            "flags.b.prerequisites: prerequisite cycle: b -> c -> b",
        ),
        (
            flag(r#""variants": {"x": 1, "y": 2}, "default": "x", "off_variant": "z""#),
            "flags.f.off_variant: unknown variant `z` (variants: x, y)",
        ),
        // Experiments.
        (
            flag(r#""experiment": {"goals": ["buy", "buy"]}"#),
            "flags.f.experiment.goals[1]: goal `buy` is listed twice",
        ),
        (
            flag(r#""experiment": {"goals": ["a;b"]}"#),
            "flags.f.experiment.goals[0]: goal `a;b` must be 1-128 letters, digits, `_`, `-` or `.`",
        ),
        (
            flag(r#""experiment": {"goal_header": "x goal"}"#),
            "flags.f.experiment.goal_header: `x goal` is not a valid HTTP header name",
        ),
        // Outputs and the headers Sluice writes.
        (
            r#"{"version": 1, "outputs": {"baggage": {"prefix": "sl uice."}}}"#.into(),
            "outputs.baggage.prefix: `sl uice.` is not a valid baggage key prefix (token characters only)",
        ),
        (
            r#"{"version": 1, "outputs": {"flags_header": "x-a"}, "flags": {"f": {"header": "X-A"}}}"#.into(),
            "flags.f.header: header `x-a` is already written by outputs.flags_header",
        ),
        (
            r#"{"version": 1, "segments": {"s": {"header": "x-sluice-flags", "present": true}}}"#.into(),
            "outputs.flags_header: header `x-sluice-flags` is also read by this config as an input",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"header": "x-f",
                "rules": [{"when": {"header": "x-f", "equals": "1"}, "serve": "on"}]}}}"#.into(),
            "flags.f.header: header `x-f` is also read by this config as an input",
        ),
        (
            r#"{"version": 1, "overrides": {"secret_sha256": "SHA", "allow_sources": []}}"#.into(),
            "overrides.secret_sha256: expected 64 hex digits (a SHA-256 of the secret)",
        ),
        (
            format!(
                r#"{{"version": 1, "overrides": {{"secret_sha256": "{}"}}}}"#,
                "a".repeat(63)
            ),
            "overrides.secret_sha256: expected 64 hex digits (a SHA-256 of the secret)",
        ),
        (
            format!(
                r#"{{"version": 1, "overrides": {{"secret_sha256": "{}g"}}}}"#,
                "a".repeat(63)
            ),
            "overrides.secret_sha256: expected 64 hex digits (a SHA-256 of the secret)",
        ),
        (
            r#"{"version": 1, "overrides": {}}"#.into(),
            "overrides: set secret_sha256 or allow_sources; otherwise no override can ever be honoured",
        ),
        (
            r#"{"version": 1, "overrides": {"allow_sources": ["10.0.0.0/8"], "debug_header": "x dbg"}}"#.into(),
            "overrides.debug_header: `x dbg` is not a valid HTTP header name",
        ),
        (
            r#"{"version": 1, "overrides": {"allow_sources": ["10.0.0.0/8"], "header": "x-t", "secret_header": "X-T"}}"#.into(),
            "overrides.secret_header: header `x-t` is already written by overrides.header",
        ),
        (
            r#"{"version": 1, "flags": {"r": {}}, "routes": {"r": {"header": "x-r", "versions": ["a"], "split": {"a": 100}}}}"#.into(),
            "routes.r: name is also a flag's; override keys (`name=value`) would be ambiguous",
        ),
        // Routes.
        (
            route(r#""canary": {"stable": "a", "canary": "a", "weight": 10}"#),
            "routes.r.canary.canary: canary and stable are the same version",
        ),
        (
            route(r#""canary": {"stable": "a", "canary": "c", "weight": 10}"#),
            "routes.r.canary.canary: unknown version `c` (versions: a, b)",
        ),
        (
            r#"{"version": 1, "routes": {"r": {"header": "x-r", "versions": ["a", "b", "c"],
                "blue_green": {"active": "a"}}}}"#.into(),
            "routes.r.versions: blue-green needs exactly two versions, got 3",
        ),
        (
            route(r#""pins": []"#),
            "routes.r: no strategy: give one of canary, blue_green or split",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "blue_green": {"active": "a"}"#),
            "routes.r: more than one strategy: give only one of canary, blue_green or split",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "match": {"authority": ["shop.example.com:8080"]}"#),
            "routes.r.match.authority[0]: `shop.example.com:8080` has a port; match on the host alone (ports are ignored)",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "match": {"authority": ["*.example.com:443"]}"#),
            "routes.r.match.authority[0]: `*.example.com:443` has a port; match on the host alone (ports are ignored)",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "match": {"authority": [""]}"#),
            "routes.r.match.authority[0]: `` is not a host name (wildcards: `*.example.com`)",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "match": {"authority": ["shop_example.com"]}"#),
            "routes.r.match.authority[0]: `shop_example.com` is not a host name (wildcards: `*.example.com`)",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "match": {"path_prefix": "api"}"#),
            "routes.r.match.path_prefix: `api` must start with `/`",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "match": {"methods": ["GET POST"]}"#),
            "routes.r.match.methods[0]: method `GET POST` is not a valid token",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "sticky_cookie": {"name": "s", "path": "shop"}"#),
            "routes.r.sticky_cookie.path: `shop` is not a cookie path",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "sticky_cookie": {"name": "s", "path": "/a;b"}"#),
            "routes.r.sticky_cookie.path: `/a;b` is not a cookie path",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "sticky_cookie": {"name": "s", "path": "/a\tb"}"#),
            "routes.r.sticky_cookie.path: `/a\\tb` is not a cookie path",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "sticky_cookie": {"name": "s", "same_site": "none"}"#),
            "routes.r.sticky_cookie.same_site: SameSite=None requires secure: true (browsers drop it otherwise)",
        ),
        (
            route(r#""split": {"a": 50, "b": 50}, "guard": {"max_error_rate": 5}"#),
            "routes.r.guard: a guard watches a canary; this route has no canary",
        ),
        // Schedules of weights.
        (
            route(r#""canary": {"stable": "a", "canary": "b", "weight": 10, "steps": [{"after": "1h", "weight": 20}]}"#),
            "routes.r.canary.steps[0].after: `after` counts from `start`, which routes.r.canary does not set",
        ),
        (
            route(r#""canary": {"stable": "a", "canary": "b", "weight": 10, "steps": [{"weight": 20}]}"#),
            "routes.r.canary.steps[0]: a step needs exactly one of at or after",
        ),
        (
            route(r#""canary": {"stable": "a", "canary": "b", "weight": 10, "start": "2026-01-01T00:00:00Z",
                "steps": [{"after": "1h", "weight": 20}, {"at": "2026-01-01T01:00:00Z", "weight": 30}]}"#),
            "routes.r.canary.steps[1]: steps must be strictly increasing in time",
        ),
        (
            route(r#""canary": {"stable": "a", "canary": "b", "weight": 10, "start": "2026-01-01T00:00:00Z",
                "steps": [{"after": "2h", "weight": 20}, {"at": "2026-01-01T01:00:00Z", "weight": 30}]}"#),
            "routes.r.canary.steps[1]: steps must be strictly increasing in time",
        ),
        (
            route(r#""canary": {"stable": "a", "canary": "b", "weight": 10, "start": "yesterday"}"#),
            "routes.r.canary.start: `yesterday` is not an RFC 3339 time (e.g. 2026-12-01T09:00:00Z)",
        ),
        // Guards.
        (
            guard(r#""window": "1m""#),
            "routes.r.guard: give max_error_rate and/or max_p99_ratio",
        ),
        (
            guard(r#""max_p99_ratio": 1"#),
            "routes.r.guard.max_p99_ratio: must be a number above 1",
        ),
        (
            guard(r#""max_p99_ratio": 0.5"#),
            "routes.r.guard.max_p99_ratio: must be a number above 1",
        ),
        (
            guard(r#""max_error_rate": 5, "window": "999ms""#),
            "routes.r.guard.window: must be at least 1s",
        ),
        (
            guard(r#""max_error_rate": 5, "window": "soon""#),
            "routes.r.guard.window: `soon` is not a duration (e.g. 90s, 10m, 1h30m, 2d)",
        ),
        (
            guard(r#""max_error_rate": 5, "min_requests": 0"#),
            "routes.r.guard.min_requests: must be at least 1",
        ),
        (
            guard(r#""max_error_rate": 5, "alpha": 0.1"#),
            "routes.r.guard.alpha: only for `method: sequential`",
        ),
        (
            guard(r#""max_error_rate": 5, "slow": "1s""#),
            "routes.r.guard.slow: only for `method: sequential`",
        ),
        (
            guard(r#""method": "sequential", "max_error_rate": 5"#),
            "routes.r.guard.max_error_rate: a sequential guard has no thresholds; it trips when the canary is significantly worse than stable (set `alpha`, and `slow` for latency)",
        ),
        (
            guard(r#""method": "sequential", "max_p99_ratio": 2"#),
            "routes.r.guard.max_p99_ratio: a sequential guard has no thresholds; it trips when the canary is significantly worse than stable (set `alpha`, and `slow` for latency)",
        ),
        (
            guard(r#""method": "sequential", "alpha": 0"#),
            "routes.r.guard.alpha: must be above 0 and at most 0.5",
        ),
        (
            guard(r#""method": "sequential", "alpha": 0.51"#),
            "routes.r.guard.alpha: must be above 0 and at most 0.5",
        ),
        (
            guard(r#""method": "sequential", "alpha": -0.1"#),
            "routes.r.guard.alpha: must be above 0 and at most 0.5",
        ),
        (
            guard(r#""method": "sequential", "slow": "fast""#),
            "routes.r.guard.slow: `fast` is not a duration (e.g. 90s, 10m, 1h30m, 2d)",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": ""}"#),
            "routes.r.guard.webhook.cluster: must name an Envoy cluster",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks cluster"}"#),
            "routes.r.guard.webhook.cluster: must name an Envoy cluster",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks\u0007"}"#),
            "routes.r.guard.webhook.cluster: must name an Envoy cluster",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "path": "trip"}"#),
            "routes.r.guard.webhook.path: must be a URL path starting with `/`",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "path": "/a b"}"#),
            "routes.r.guard.webhook.path: must be a URL path starting with `/`",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "path": "/a\nb"}"#),
            "routes.r.guard.webhook.path: must be a URL path starting with `/`",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "timeout": "0s"}"#),
            "routes.r.guard.webhook.timeout: must be above 0",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "attempts": 0}"#),
            "routes.r.guard.webhook.attempts: must be 1 to 20",
        ),
        (
            guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "attempts": 21}"#),
            "routes.r.guard.webhook.attempts: must be 1 to 20",
        ),
        // Two routes writing one header.
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["a.example.com"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.example.com"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.example.com"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["a.example.com"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.shop.example.com"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.example.com"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.example.com"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.shop.example.com"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["a.example.com", "b.example.com"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["c.example.com", "b.example.com"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"path_prefix": "/api"}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"path_prefix": "/api/v2"}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"path_prefix": "/api/v2"}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"path_prefix": "/api"}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"methods": ["GET", "PUT"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"methods": ["post", "put"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"methods": ["GET"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["a.example.com"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["a.example.com"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"methods": ["GET"]}}}}"#.into(),
            "routes.b.header: routes `a` and `b` can match the same request and both write `x-v`",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"header": "x-v"}}, "routes": {
                "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["a.example.com"]}},
                "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["b.example.com"]}}}}"#.into(),
            "routes.a.header: header `x-v` is already written by flags.f.header",
        ),
        // Conditions: a combinator or one subject with one operator.
        (
            cond(r#"{"all": [{"header": "x-a", "present": true}], "negate": true}"#),
            "segments.s: negate and ignore_case belong on a leaf; wrap a combinator in `not` instead",
        ),
        (
            cond(r#"{"not": {"header": "x-a", "present": true}, "ignore_case": true}"#),
            "segments.s: negate and ignore_case belong on a leaf; wrap a combinator in `not` instead",
        ),
        (
            cond(r#"{"all": [{"header": "x-a", "present": true}], "any": [{"header": "x-b", "present": true}]}"#),
            "segments.s: a condition is either one of all/any/not/segment or one subject with one operator",
        ),
        (
            cond(r#"{"not": {"header": "x-a", "present": true}, "header": "x-b"}"#),
            "segments.s: a condition is either one of all/any/not/segment or one subject with one operator",
        ),
        (
            cond(r#"{"not": {"header": "x-a", "present": true}, "equals": "x"}"#),
            "segments.s: a condition is either one of all/any/not/segment or one subject with one operator",
        ),
        (
            cond(r#"{"all": []}"#),
            "segments.s.all: empty list; give at least one condition",
        ),
        (
            cond(r#"{"equals": "x"}"#),
            "segments.s: condition has no subject: use attr, header, cookie or query (or all/any/not/segment)",
        ),
        (
            cond(r#"{"header": "x-a"}"#),
            "segments.s: condition has no operator (equals, in, prefix, suffix, contains, num_*, semver_*, cidr, present)",
        ),
        (
            cond(r#"{"header": "x-a", "equals": "1", "prefix": "2"}"#),
            "segments.s: more than one operator: equals, prefix",
        ),
        (
            cond(r#"{"header": "x-a", "cookie": "c", "present": true}"#),
            "segments.s: more than one subject (attr, header, cookie, query)",
        ),
        (
            cond(r#"{"attr": "path", "query": "q", "present": true}"#),
            "segments.s: more than one subject (attr, header, cookie, query)",
        ),
        (
            cond(r#"{"attr": "tenant", "present": true}"#),
            "segments.s.attr: unknown attribute `tenant`",
        ),
        (
            cond(r#"{"header": "x-a", "num_gt": 5, "ignore_case": true}"#),
            "segments.s: ignore_case applies to text operators only",
        ),
        (
            cond(r#"{"header": "x-a", "present": true, "ignore_case": true}"#),
            "segments.s: ignore_case applies to text operators only",
        ),
        // Version requirements.
        (
            r#"{"version": 1, "routes": {"r": {"header": "x-r", "versions": ["a", "b"],
                "canary": {"stable": "a", "canary": "b", "weight": 10},
                "requires": {"b": [{"route": "r", "version": "a"}]}}}}"#.into(),
            "routes.r.requires.b[0].route: a version cannot require its own route",
        ),
        (
            r#"{"version": 1, "flags": {"f": {}}, "routes": {
                "r": {"header": "x-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b", "weight": 10},
                      "requires": {"b": [{"flag": "f", "variant": "on"}, {"route": "q", "version": "d"}]}},
                "q": {"header": "x-q", "versions": ["c", "d"], "canary": {"stable": "c", "canary": "d", "weight": 10},
                      "requires": {"d": [{"flag": "f", "variant": "off"}]}}}}"#.into(),
            "routes.r.requires.b: contradictory requirements: flag `f` would need both `on` and `off`",
        ),
        (
            r#"{"version": 1, "routes": {
                "r": {"header": "x-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b", "weight": 10},
                      "requires": {"b": [{"route": "q", "version": "d"}, {"route": "p", "version": "f"}]}},
                "q": {"header": "x-q", "versions": ["c", "d"], "canary": {"stable": "c", "canary": "d", "weight": 10},
                      "requires": {"d": [{"route": "p", "version": "e"}]}},
                "p": {"header": "x-p", "versions": ["e", "f"], "canary": {"stable": "e", "canary": "f", "weight": 10}}}}"#.into(),
            "routes.r.requires.b: contradictory requirements: route `p` would need both `f` and `e`",
        ),
        // Unleash.
        (
            r#"{"version": 1, "unleash": {"features": []}}"#.into(),
            "unleash: give a payload, a poll, or both",
        ),
        (
            unleash(r#", "path": "api/client/features""#, ""),
            "unleash.poll.path: `api/client/features` must start with `/`",
        ),
        (
            unleash(r#", "path": "/api/client/features\n""#, ""),
            "unleash.poll.path: `/api/client/features\\n` must start with `/`",
        ),
        (
            r#"{"version": 1, "unleash": {"poll": {"cluster": ""}}}"#.into(),
            "unleash.poll.cluster: must name an Envoy cluster",
        ),
        (
            r#"{"version": 1, "unleash": {"poll": {"cluster": "un leash"}}}"#.into(),
            "unleash.poll.cluster: must name an Envoy cluster",
        ),
        (
            r#"{"version": 1, "unleash": {"poll": {"cluster": "un\u0000leash"}}}"#.into(),
            "unleash.poll.cluster: must name an Envoy cluster",
        ),
        (
            unleash(r#", "interval": "999ms", "timeout": "500ms""#, ""),
            "unleash.poll.interval: must be at least 1s",
        ),
        (
            unleash(r#", "interval": "10s", "timeout": "10s""#, ""),
            "unleash.poll.timeout: must be above 0 and shorter than the interval",
        ),
        (
            unleash(r#", "interval": "10s", "timeout": "0s""#, ""),
            "unleash.poll.timeout: must be above 0 and shorter than the interval",
        ),
        (
            unleash(r#", "max_body_bytes": 0"#, ""),
            "unleash.poll.max_body_bytes: must be above 0",
        ),
        (
            unleash(r#", "authorization": "token\r\n""#, ""),
            "unleash.poll.authorization: value contains control character '\\r', which could inject headers",
        ),
        (
            unleash("", r#", "metrics": {"interval": "999ms"}"#),
            "unleash.metrics.interval: must be at least 1s",
        ),
        (
            unleash("", r#", "metrics": {"max_pending_buckets": 0}"#),
            "unleash.metrics.max_pending_buckets: 0 is out of range 1..=1000 (buckets kept while Unleash is unreachable)",
        ),
        (
            unleash("", r#", "metrics": {"max_pending_buckets": 1001}"#),
            "unleash.metrics.max_pending_buckets: 1001 is out of range 1..=1000 (buckets kept while Unleash is unreachable)",
        ),
        (
            unleash("", r#", "metrics": {"instance_id": ""}"#),
            "unleash.metrics.instance_id: must not be empty",
        ),
        (
            unleash(r#", "path": "/api/features""#, r#", "metrics": true"#),
            "unleash.metrics: unleash.poll.path `/api/features` is not an Unleash client API path (`…/client/features`), so the metrics path cannot be derived",
        ),
        (
            r#"{"version": 1, "unleash": {"payload": {"version": 1, "features": []}, "metrics": true}}"#.into(),
            "unleash.metrics: needs unleash.poll: metrics go to the polled Unleash through its cluster and token",
        ),
        (
            r#"{"version": 1, "flags": {"f": {}}, "unleash": {"payload": {"version": 1, "features": []}, "features": ["g", "f"]}}"#.into(),
            "unleash.features[1]: `f` is also a native flag; the flags header would carry it twice",
        ),
        // Spring.
        (
            spring(r#", "label": "a/b""#),
            "sources.spring.label: `a/b` must be one non-empty path segment (no `/ ? # % ,` or spaces; Spring writes a `/` in a label as `(_)`)",
        ),
        (
            spring(r#", "label": """#),
            "sources.spring.label: `` must be one non-empty path segment (no `/ ? # % ,` or spaces; Spring writes a `/` in a label as `(_)`)",
        ),
        (
            spring(r#", "label": "a\u0001""#),
            "sources.spring.label: `a\\u{1}` must be one non-empty path segment (no `/ ? # % ,` or spaces; Spring writes a `/` in a label as `(_)`)",
        ),
        (
            spring(r#", "prefix": "features.""#),
            "sources.spring.prefix: a property prefix such as `features` (no leading or trailing `.`)",
        ),
        (
            spring(r#", "prefix": ".features""#),
            "sources.spring.prefix: a property prefix such as `features` (no leading or trailing `.`)",
        ),
        (
            spring(r#", "prefix": """#),
            "sources.spring.prefix: a property prefix such as `features` (no leading or trailing `.`)",
        ),
        // Chain.
        (
            chain(r#", "ttl": "999ms""#),
            "chain.ttl: must be between 1s and 24h",
        ),
        (
            chain(r#", "ttl": "86400001ms""#),
            "chain.ttl: must be between 1s and 24h",
        ),
        (
            chain(r#", "max_token_bytes": 63"#),
            "chain.max_token_bytes: must be between 64 and 65536",
        ),
        (
            chain(r#", "max_token_bytes": 65537"#),
            "chain.max_token_bytes: must be between 64 and 65536",
        ),
        (
            format!(
                r#"{{"version": 1, "outputs": {{"baggage": {{}}}},
                    "chain": {{"keys": [{{"id": "k1", "secret": "{}"}}]}}}}"#,
                &SECRET[1..]
            ),
            "chain.keys[0]: secret has 31 bytes; use at least 32 random bytes",
        ),
        (
            format!(
                r#"{{"version": 1, "outputs": {{"baggage": {{}}}},
                    "chain": {{"keys": [{{"id": "k1", "secret": "{SECRET}"}}, {{"id": "k1", "secret": "{SECRET}"}}]}}}}"#
            ),
            "chain.keys[1].id: duplicate key id `k1`",
        ),
    ]
}

#[test]
fn each_check_refuses_its_bad_value_with_path_and_reason() {
    let mut failures = Vec::new();
    let cases = refusals();
    for (json, expected) in &cases {
        let got = match load(json.as_bytes()) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        // One case checks a long name whose path would repeat it; it matches the reason only.
        let ok = if expected.starts_with("must be 1-128") {
            got.ends_with(expected) && got.contains("flag name `nnnn")
        } else {
            got == *expected
        };
        if !ok {
            failures.push(format!("{json}\n   got      {got}\n   expected {expected}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} misreported:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Values at the edge of each check, which must load.
fn acceptances() -> Vec<String> {
    vec![
        format!(r#"{{"version": 1, "flags": {{"{}": {{}}}}}}"#, "n".repeat(128)),
        r#"{"version": 1, "flags": {"a-b_c.D9": {"header": "X-Flag_A!#$%&'*+-.^_`|~"}}}"#.into(),
        // Text beyond ASCII is a valid header value (no control characters).
        flag(r#""variants": {"on": "grün", "off": "tab-free"}, "default": "off""#),
        r#"{"version": 1, "revision": "r1 (grün)"}"#.into(),
        // Pseudo-headers are inputs.
        r#"{"version": 1, "identity": {"user": [{"header": ":authority"}]}}"#.into(),
        // 0 and 100 are weights; 0.01 is the finest.
        flag(r#""rules": [{"rollout": {"on": 0, "off": 100}}]"#),
        flag(r#""rules": [{"rollout": {"on": 0.01, "off": 99.99}}]"#),
        flag(r#""rules": [{"rollout": {"on": 33.33, "off": 66.67}}]"#),
        // Float noise (0.07 × 100 = 7.000000000000001) up to a millionth of a bucket is
        // ignored: 1e-8 percent is exactly that far from 0 buckets.
        flag(r#""rules": [{"rollout": {"on": 0.07, "off": 99.93}}]"#),
        flag(r#""rules": [{"rollout": {"on": 1e-8, "off": 100}}]"#),

        flag(r#""schedule": {"ramp": {"start": "2026-01-01T00:00:00Z", "duration": "1h", "from": 0, "to": 100}}"#),
        // A flag without identity can still require another flag.
        r#"{"version": 1, "flags": {"f": {"prerequisites": [{"flag": "g", "variants": ["off"]}]}, "g": {}}}"#.into(),
        // Goal headers shared by two experiments.
        r#"{"version": 1, "flags": {"a": {"experiment": {"goals": ["buy"]}}, "b": {"experiment": {"goals": ["buy"]}}}}"#.into(),
        // Overrides need a secret or a source range, either is enough.
        format!(
            r#"{{"version": 1, "overrides": {{"secret_sha256": "{}"}}}}"#,
            "aB".repeat(32)
        ),
        r#"{"version": 1, "overrides": {"allow_sources": ["10.0.0.0/8"]}}"#.into(),
        // The flags header read back from trusted peers is an input by design.
        r#"{"version": 1, "outputs": {"trust_incoming_from": ["10.0.0.0/8"]},
            "segments": {"s": {"header": "x-sluice-flags", "present": true}}}"#.into(),
        // Hosts: IPv6 literals have colons; a wildcard host.
        route(r#""split": {"a": 50, "b": 50}, "match": {"authority": ["[::1]", "*.Example.com", "localhost"]}"#),
        route(r#""split": {"a": 50, "b": 50}, "match": {"path_prefix": "/", "methods": ["get"]}"#),
        route(r#""split": {"a": 50, "b": 50}, "sticky_cookie": {"name": "s", "same_site": "none", "secure": true}"#),
        // Guards at their limits.
        guard(r#""max_p99_ratio": 1.01, "window": "1s", "min_requests": 1"#),
        guard(r#""max_error_rate": 0"#),
        guard(r#""method": "sequential", "alpha": 0.5"#),
        guard(r#""method": "sequential", "alpha": 0.0001, "slow": "1s""#),
        guard(r#""method": "sequential""#),
        guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "timeout": "1ms", "attempts": 1}"#),
        guard(r#""max_error_rate": 5, "webhook": {"cluster": "hooks", "attempts": 20}"#),
        // Steps a millisecond apart are strictly increasing.
        route(r#""canary": {"stable": "a", "canary": "b", "weight": 0, "start": "2026-01-01T00:00:00Z",
            "steps": [{"after": "1h", "weight": 20}, {"at": "2026-01-01T01:00:00.001Z", "weight": 100}]}"#),
        // Routes sharing a header where no request can match both.
        r#"{"version": 1, "routes": {
            "a": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["a.example.com"]}},
            "b": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["b.example.com"]}},
            "c": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.example.org"]}},
            "d": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["shop.example.net"], "path_prefix": "/a"}},
            "e": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["shop.example.net"], "path_prefix": "/b"}},
            "f": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["shop.example.io"], "methods": ["GET"]}},
            "g": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["shop.example.io"], "methods": ["POST"]}},
            "h": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.a.example.dev"]}},
            "i": {"header": "x-v", "versions": ["1"], "split": {"1": 100}, "match": {"authority": ["*.b.example.dev"]}}}}"#.into(),
        // Conditions: every built-in attribute; ignore_case on text operators; a requirement
        // repeated along two paths agrees with itself.
        cond(r#"{"any": [{"attr": "path", "prefix": "/a"}, {"attr": "method", "equals": "GET"},
            {"attr": "authority", "suffix": ".example.com", "ignore_case": true},
            {"attr": "source_address", "cidr": "10.0.0.0/8", "negate": true}]}"#),
        r#"{"version": 1, "flags": {"f": {}}, "routes": {
            "r": {"header": "x-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b", "weight": 10},
                  "requires": {"b": [{"flag": "f", "variant": "on"}, {"route": "q", "version": "d"}]}},
            "q": {"header": "x-q", "versions": ["c", "d"], "canary": {"stable": "c", "canary": "d", "weight": 10},
                  "requires": {"d": [{"flag": "f", "variant": "on"}]}}}}"#.into(),
        r#"{"version": 1, "routes": {
            "r": {"header": "x-r", "versions": ["a", "b"], "canary": {"stable": "a", "canary": "b", "weight": 10},
                  "requires": {"b": [{"route": "q", "version": "d"}, {"route": "p", "version": "f"}]}},
            "q": {"header": "x-q", "versions": ["c", "d"], "canary": {"stable": "c", "canary": "d", "weight": 10},
                  "requires": {"d": [{"route": "p", "version": "f"}]}},
            "p": {"header": "x-p", "versions": ["e", "f"], "canary": {"stable": "e", "canary": "f", "weight": 10}}}}"#.into(),
        // SameSite=Lax (or Strict) needs no `secure`.
        route(r#""split": {"a": 50, "b": 50}, "sticky_cookie": {"name": "s", "same_site": "lax"}"#),
        // Colons in a host are a port only when digits follow the last one.
        route(r#""split": {"a": 50, "b": 50}, "match": {"authority": ["fe80::1:abcd"]}"#),
        // Unleash and Spring polls at their limits.
        unleash(r#", "interval": "1s", "timeout": "999ms", "max_body_bytes": 1"#, ""),
        unleash("", r#", "metrics": {"interval": "1s", "max_pending_buckets": 1}"#),
        unleash("", r#", "metrics": {"max_pending_buckets": 1000, "instance_id": "pod-1"}"#),
        spring(r#", "label": "main", "prefix": "a.b""#),
        // Chain limits.
        chain(r#", "ttl": "1s", "max_token_bytes": 64"#),
        chain(r#", "ttl": "24h", "max_token_bytes": 65536"#),
    ]
}

#[test]
fn values_at_the_edge_of_each_check_load() {
    let mut failures = Vec::new();
    for json in acceptances() {
        if let Err(e) = load(json.as_bytes()) {
            failures.push(format!("{json}\n   refused: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A key's secret read from the VM environment; an empty variable is as good as unset.
#[test]
fn a_chain_secret_from_an_empty_environment_variable_is_missing() {
    let json = r#"{"version": 1, "outputs": {"baggage": {}},
        "chain": {"keys": [{"id": "k1", "env": "SLUICE_KEY"}]}}"#;
    let unset = "chain.keys[0].env: environment variable `SLUICE_KEY` is not set in the VM \
                 (Istio: WasmPlugin vmConfig.env)";
    let err = |value: Option<&str>| {
        let value = value.map(str::to_string);
        load_with_env(json.as_bytes(), &|name| {
            assert_eq!(name, "SLUICE_KEY");
            value.clone()
        })
        .err()
        .map(|e| e.to_string())
    };
    assert_eq!(err(None).as_deref(), Some(unset));
    assert_eq!(err(Some("")).as_deref(), Some(unset));
    assert_eq!(err(Some(SECRET)), None);
}
