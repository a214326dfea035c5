//! The config reader (`config/read.rs`): every field an operator writes is read into the
//! value written, an omitted field takes the default docs/config.md gives, and every kind of
//! bad input is refused with the JSON path and serde's words for the reason, exactly as the
//! operator sees them in Envoy's log.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::compile::parse;
use sluice_core::config::{
    BeforeFirstPayload, BucketBy, Condition, Config, GuardAction, GuardMethod, OneOrMany, SameSite,
    Source, WithoutIdentity,
};

fn read(json: &str) -> Config {
    parse(json.as_bytes()).unwrap_or_else(|e| panic!("config rejected: {e}\n{json}"))
}

/// The error text a user sees for a config, or a panic naming the config if it was accepted.
fn refused(json: &str) -> String {
    match parse(json.as_bytes()) {
        Ok(_) => panic!("accepted, expected an error: {json}"),
        Err(e) => e.to_string(),
    }
}

fn texts(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// `Source` as the operator wrote it, for comparisons.
fn source(s: &Source) -> String {
    match s {
        Source::Header(n) => format!("header:{n}"),
        Source::Cookie(n) => format!("cookie:{n}"),
        Source::Query(n) => format!("query:{n}"),
        Source::Baggage(n) => format!("baggage:{n}"),
        Source::Path => "path".into(),
        Source::Method => "method".into(),
        Source::Authority => "authority".into(),
        Source::SourceAddress => "source_address".into(),
    }
}

fn sources(list: &[Source]) -> Vec<String> {
    list.iter().map(source).collect()
}

/// A condition with every field set: each to a value no other field of its type has, so a
/// field read into its neighbour shows.
const EVERY_CONDITION_FIELD: &str = r#"{
    "all": [{"segment": "in-all"}], "any": [{"attr": "in-any"}, {"attr": "in-any-2"}],
    "not": {"header": "in-not"}, "segment": "seg", "attr": "att", "header": "hdr",
    "cookie": "ck", "query": "qs", "equals": "eq", "in": ["i1", "i2"], "prefix": "pre",
    "suffix": "suf", "contains": "con", "num_eq": 2.5, "num_gt": 3.5, "num_gte": 4.5,
    "num_lt": 5.5, "num_lte": 6.5, "semver_eq": "1.0.1", "semver_gt": "1.0.2",
    "semver_gte": "1.0.3", "semver_lt": "1.0.4", "semver_lte": "1.0.5",
    "cidr": ["10.0.0.0/8", "fd00::/8"], "present": true, "ignore_case": true, "negate": false
}"#;

fn check_every_condition_field(c: &Condition) {
    let all = c.all.as_ref().expect("all");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].segment.as_deref(), Some("in-all"));
    let any = c.any.as_ref().expect("any");
    assert_eq!(any.len(), 2);
    assert_eq!(any[1].attr.as_deref(), Some("in-any-2"));
    assert_eq!(
        c.not.as_ref().expect("not").header.as_deref(),
        Some("in-not")
    );
    assert_eq!(c.segment.as_deref(), Some("seg"));
    assert_eq!(c.attr.as_deref(), Some("att"));
    assert_eq!(c.header.as_deref(), Some("hdr"));
    assert_eq!(c.cookie.as_deref(), Some("ck"));
    assert_eq!(c.query.as_deref(), Some("qs"));
    assert_eq!(c.equals.as_deref(), Some("eq"));
    assert_eq!(
        c.in_list.as_deref(),
        Some(&["i1".to_string(), "i2".into()][..])
    );
    assert_eq!(c.prefix.as_deref(), Some("pre"));
    assert_eq!(c.suffix.as_deref(), Some("suf"));
    assert_eq!(c.contains.as_deref(), Some("con"));
    assert_eq!(c.num_eq, Some(2.5));
    assert_eq!(c.num_gt, Some(3.5));
    assert_eq!(c.num_gte, Some(4.5));
    assert_eq!(c.num_lt, Some(5.5));
    assert_eq!(c.num_lte, Some(6.5));
    assert_eq!(c.semver_eq.as_deref(), Some("1.0.1"));
    assert_eq!(c.semver_gt.as_deref(), Some("1.0.2"));
    assert_eq!(c.semver_gte.as_deref(), Some("1.0.3"));
    assert_eq!(c.semver_lt.as_deref(), Some("1.0.4"));
    assert_eq!(c.semver_lte.as_deref(), Some("1.0.5"));
    assert_eq!(
        c.cidr.as_ref().expect("cidr").to_vec(),
        ["10.0.0.0/8", "fd00::/8"]
    );
    assert_eq!(c.present, Some(true));
    assert!(c.ignore_case);
    assert!(!c.negate);
}

#[test]
fn every_condition_field_is_read_as_written() {
    let config = read(&format!(
        r#"{{"version": 1, "segments": {{"every": {EVERY_CONDITION_FIELD},
            "flipped": {{"negate": true, "ignore_case": false, "present": false,
                         "cidr": "192.168.0.0/16"}}}}}}"#
    ));
    check_every_condition_field(config.segments.get("every").expect("segment `every`"));
    let flipped = config.segments.get("flipped").expect("segment `flipped`");
    assert!(flipped.negate && !flipped.ignore_case);
    assert_eq!(flipped.present, Some(false));
    assert!(matches!(&flipped.cidr, Some(OneOrMany::One(c)) if c == "192.168.0.0/16"));
    assert_eq!(flipped.cidr.as_ref().unwrap().to_vec(), ["192.168.0.0/16"]);
    // Nothing else was set on it.
    assert!(flipped.all.is_none() && flipped.header.is_none() && flipped.num_eq.is_none());
}

#[test]
fn every_source_form_is_read() {
    let config = read(
        r#"{"version": 1, "attributes": {
            "h": {"header": "x-h"}, "c": {"cookie": "c1"}, "q": {"query": "q1"},
            "b": {"baggage": "b1"}, "p": "path", "m": "method", "a": "authority",
            "s": "source_address", "p2": {"path": null}, "s2": {"source_address": null}}}"#,
    );
    let read: Vec<(String, String)> = config
        .attributes
        .iter()
        .map(|(name, s)| (name.to_string(), source(s)))
        .collect();
    let expected = [
        ("h", "header:x-h"),
        ("c", "cookie:c1"),
        ("q", "query:q1"),
        ("b", "baggage:b1"),
        ("p", "path"),
        ("m", "method"),
        ("a", "authority"),
        ("s", "source_address"),
        ("p2", "path"),
        ("s2", "source_address"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(read, expected);
    assert_eq!(config.attributes.len(), 10);
    assert!(!config.attributes.is_empty());
    assert!(config.attributes.get("nope").is_none());
}

/// A config with every section and every field set to a value other than its default.
const EVERYTHING: &str = r#"{
  "version": 1,
  "revision": "r7",
  "$schema": "https://sluice.dev/schema/sluice-config.schema.json",
  "identity": {
    "user": [{"header": "x-user"}, {"cookie": "uid"}],
    "session": [{"query": "sid"}, {"baggage": "session.id"}],
    "without_identity": "random"
  },
  "flags": {
    "theme": {
      "description": "colour scheme",
      "variants": {"light": "l", "dark": {"bg": "black"}, "size": 3},
      "default": "light",
      "enabled": false,
      "off_variant": "dark",
      "prerequisites": [{"flag": "base", "variants": ["on", "maybe"]}],
      "rules": [
        {"name": "betas", "when": {"header": "x-beta", "present": true}, "serve": "dark"},
        {"rollout": {"light": 40, "dark": 60.5}}
      ],
      "schedule": {"enable_at": "2026-01-01T00:00:00Z",
                   "ramp": {"start": "2026-01-02T00:00:00Z", "duration": "2h", "from": 10, "to": 90}},
      "bucket_by": "session",
      "salt": "theme-salt",
      "without_identity": "random",
      "header": "x-theme",
      "experiment": {"goals": ["buy", "signup"], "goal_header": "x-goal"}
    },
    "base": {"bucket_by": "user", "without_identity": "default", "experiment": true},
    "plain": {"experiment": false}
  },
  "routes": {
    "reviews": {
      "match": {"authority": ["shop.example.com", "*.shop.test"], "path_prefix": "/reviews",
                "methods": ["GET", "POST"]},
      "header": "x-route-reviews",
      "versions": ["v1", "v2"],
      "canary": {"stable": "v1", "canary": "v2", "weight": 12.5, "start": "2026-03-01T00:00:00Z",
                 "steps": [{"at": "2026-03-02T00:00:00Z", "weight": 20},
                           {"after": "1h", "weight": 30.25}]},
      "pins": [{"when": {"cookie": "beta", "equals": "1"}, "version": "v2"}],
      "bucket_by": "session",
      "salt": "reviews-salt",
      "without_identity": "random",
      "sticky_cookie": {"name": "sticky", "path": "/shop", "max_age": "1h", "same_site": "lax",
                        "secure": true, "http_only": false},
      "guard": {"max_error_rate": 5.5, "max_p99_ratio": 1.5, "window": "1m", "min_requests": 7,
                "count_local_replies": true, "action": "pause", "method": "sequential",
                "alpha": 0.05, "slow": "800ms",
                "webhook": {"cluster": "hooks", "path": "/trip", "authority": "hooks.example",
                            "timeout": "3s", "attempts": 9}},
      "requires": {"v2": [{"route": "ratings", "version": "r2"}, {"flag": "theme", "variant": "dark"}]}
    },
    "ratings": {
      "header": "x-route-ratings",
      "versions": ["r1", "r2"],
      "blue_green": {"active": "r1", "preview": {"header": "x-preview", "present": true},
                     "shift": {"weight": 25.5, "start": "2026-04-01T00:00:00Z",
                               "steps": [{"after": "30m", "weight": 75}]}},
      "guard": {"window": "2m", "action": "rollback", "method": "threshold"}
    },
    "cart": {"header": "x-route-cart", "versions": ["a", "b", "c"],
             "split": {"a": 20, "b": 30, "c": 50}}
  },
  "overrides": {"header": "x-ovr", "secret_header": "x-sec", "secret_sha256": "abc123",
                "allow_sources": ["10.0.0.0/8"], "debug_header": "x-dbg"},
  "outputs": {"flags_header": "x-all-flags", "baggage": {"prefix": "sl."},
              "trust_incoming_from": ["10.1.0.0/16"]},
  "unleash": {
    "payload": {"version": 1, "features": []},
    "poll": {"cluster": "unleash", "authority": "unleash.example", "path": "/api/f",
             "authorization": "token-1", "interval": "20s", "timeout": "4s", "max_body_bytes": 1000},
    "context": {"user_id": [{"header": "x-uid"}], "session_id": [{"cookie": "sess"}],
                "remote_address": [{"header": "x-forwarded-for"}], "app_name": "shop",
                "environment": "prod", "properties": {"tenant": {"header": "x-tenant"}}},
    "features": ["f1", "f2"],
    "headers": {"f1": "x-f1"},
    "before_first_payload": "pass_through",
    "metrics": {"interval": "90s", "max_pending_buckets": 12, "instance_id": "pod-1"}
  },
  "chain": {"keys": [{"id": "k1", "secret": "s3cret", "env": "CHAIN_KEY"}], "ttl": "5m",
            "max_token_bytes": 2048, "revision": "chain-r", "accept_revisions": ["old-1"]},
  "releases": {
    "bundle": {"routes": {"reviews": "v2", "ratings": "r2"}, "weight": 15.5,
               "start": "2026-05-01T00:00:00Z", "steps": [{"after": "2h", "weight": 40}],
               "pins": [{"when": {"header": "x-in"}, "in": true},
                        {"when": {"header": "x-out"}, "in": false}],
               "bucket_by": "session", "salt": "bundle-salt"}
  },
  "sources": {"spring": {"cluster": "config", "authority": "config.example", "application": "shop",
                         "profiles": ["prod", "eu"], "label": "main", "prefix": "toggles",
                         "authorization": "Bearer t", "basic": {"username": "u", "password": "p"},
                         "interval": "45s", "timeout": "6s", "max_body_bytes": 5000}}
}"#;

#[test]
fn every_field_of_every_section_is_read_as_written() {
    let c = read(EVERYTHING);
    assert_eq!(c.version, 1);
    assert_eq!(c.revision.as_deref(), Some("r7"));
    assert_eq!(
        c.schema.as_deref(),
        Some("https://sluice.dev/schema/sluice-config.schema.json")
    );

    // identity
    assert_eq!(sources(&c.identity.user), ["header:x-user", "cookie:uid"]);
    assert_eq!(
        sources(&c.identity.session),
        ["query:sid", "baggage:session.id"]
    );
    assert_eq!(c.identity.without_identity, WithoutIdentity::Random);

    // flags, in document order
    let names: Vec<&str> = c.flags.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["theme", "base", "plain"]);
    let theme = c.flags.get("theme").unwrap();
    assert_eq!(theme.description.as_deref(), Some("colour scheme"));
    let variants = theme.variants.as_ref().expect("variants");
    let variant_names: Vec<&str> = variants.iter().map(|(n, _)| n).collect();
    assert_eq!(variant_names, ["light", "dark", "size"]);
    assert_eq!(variants.get("light").unwrap().as_str(), Some("l"));
    assert_eq!(
        variants
            .get("dark")
            .unwrap()
            .get("bg")
            .and_then(|v| v.as_str()),
        Some("black")
    );
    assert_eq!(variants.get("size").unwrap().as_f64(), Some(3.0));
    assert_eq!(theme.default.as_deref(), Some("light"));
    assert!(!theme.enabled);
    assert_eq!(theme.off_variant.as_deref(), Some("dark"));
    assert_eq!(theme.prerequisites.len(), 1);
    assert_eq!(theme.prerequisites[0].flag, "base");
    assert_eq!(texts(&theme.prerequisites[0].variants), ["on", "maybe"]);
    assert_eq!(theme.rules.len(), 2);
    assert_eq!(theme.rules[0].name.as_deref(), Some("betas"));
    let when = theme.rules[0].when.as_ref().expect("when");
    assert_eq!(when.header.as_deref(), Some("x-beta"));
    assert_eq!(when.present, Some(true));
    assert_eq!(theme.rules[0].serve.as_deref(), Some("dark"));
    assert!(theme.rules[0].rollout.is_none());
    assert!(theme.rules[1].name.is_none() && theme.rules[1].serve.is_none());
    let rollout: Vec<(&str, f64)> = theme.rules[1]
        .rollout
        .as_ref()
        .expect("rollout")
        .iter()
        .map(|(n, w)| (n, *w))
        .collect();
    assert_eq!(rollout, [("light", 40.0), ("dark", 60.5)]);
    let schedule = theme.schedule.as_ref().expect("schedule");
    assert_eq!(schedule.enable_at.as_deref(), Some("2026-01-01T00:00:00Z"));
    let ramp = schedule.ramp.as_ref().expect("ramp");
    assert_eq!(ramp.start, "2026-01-02T00:00:00Z");
    assert_eq!(ramp.duration, "2h");
    assert_eq!((ramp.from, ramp.to), (10.0, 90.0));
    assert_eq!(theme.bucket_by, Some(BucketBy::Session));
    assert_eq!(theme.salt.as_deref(), Some("theme-salt"));
    assert_eq!(theme.without_identity, Some(WithoutIdentity::Random));
    assert_eq!(theme.header.as_deref(), Some("x-theme"));
    let experiment = theme.experiment.as_ref().expect("experiment");
    assert_eq!(texts(&experiment.goals), ["buy", "signup"]);
    assert_eq!(experiment.goal_header, "x-goal");
    let base = c.flags.get("base").unwrap();
    assert_eq!(base.bucket_by, Some(BucketBy::User));
    assert_eq!(base.without_identity, Some(WithoutIdentity::Default));
    assert!(base.enabled);
    let on = base
        .experiment
        .as_ref()
        .expect("`experiment: true` turns it on");
    assert!(on.goals.is_empty());
    assert_eq!(on.goal_header, "x-sluice-goal");
    assert!(c.flags.get("plain").unwrap().experiment.is_none());

    // routes
    let reviews = c.routes.get("reviews").unwrap();
    assert_eq!(
        texts(&reviews.matcher.authority),
        ["shop.example.com", "*.shop.test"]
    );
    assert_eq!(reviews.matcher.path_prefix.as_deref(), Some("/reviews"));
    assert_eq!(texts(&reviews.matcher.methods), ["GET", "POST"]);
    assert_eq!(reviews.header, "x-route-reviews");
    assert_eq!(texts(&reviews.versions), ["v1", "v2"]);
    let canary = reviews.canary.as_ref().expect("canary");
    assert_eq!(
        (canary.stable.as_str(), canary.canary.as_str()),
        ("v1", "v2")
    );
    assert_eq!(canary.weight, 12.5);
    assert_eq!(canary.start.as_deref(), Some("2026-03-01T00:00:00Z"));
    assert_eq!(canary.steps.len(), 2);
    assert_eq!(canary.steps[0].at.as_deref(), Some("2026-03-02T00:00:00Z"));
    assert_eq!(canary.steps[0].after, None);
    assert_eq!(canary.steps[0].weight, 20.0);
    assert_eq!(canary.steps[1].at, None);
    assert_eq!(canary.steps[1].after.as_deref(), Some("1h"));
    assert_eq!(canary.steps[1].weight, 30.25);
    assert_eq!(reviews.pins.len(), 1);
    assert_eq!(reviews.pins[0].when.cookie.as_deref(), Some("beta"));
    assert_eq!(reviews.pins[0].when.equals.as_deref(), Some("1"));
    assert_eq!(reviews.pins[0].version, "v2");
    assert_eq!(reviews.bucket_by, Some(BucketBy::Session));
    assert_eq!(reviews.salt.as_deref(), Some("reviews-salt"));
    assert_eq!(reviews.without_identity, Some(WithoutIdentity::Random));
    let sticky = reviews.sticky_cookie.as_ref().expect("sticky_cookie");
    assert_eq!(sticky.name, "sticky");
    assert_eq!(sticky.path, "/shop");
    assert_eq!(sticky.max_age.as_deref(), Some("1h"));
    assert!(matches!(sticky.same_site, Some(SameSite::Lax)));
    assert!(sticky.secure);
    assert!(!sticky.http_only);
    let guard = reviews.guard.as_ref().expect("guard");
    assert_eq!(guard.max_error_rate, Some(5.5));
    assert_eq!(guard.max_p99_ratio, Some(1.5));
    assert_eq!(guard.window, "1m");
    assert_eq!(guard.min_requests, 7);
    assert!(guard.count_local_replies);
    assert_eq!(guard.action, GuardAction::Pause);
    assert_eq!(guard.method, GuardMethod::Sequential);
    assert_eq!(guard.alpha, Some(0.05));
    assert_eq!(guard.slow.as_deref(), Some("800ms"));
    let hook = guard.webhook.as_ref().expect("webhook");
    assert_eq!(hook.cluster, "hooks");
    assert_eq!(hook.path, "/trip");
    assert_eq!(hook.authority.as_deref(), Some("hooks.example"));
    assert_eq!(hook.timeout, "3s");
    assert_eq!(hook.attempts, 9);
    let needs = reviews.requires.get("v2").expect("requires.v2");
    assert_eq!(needs.len(), 2);
    assert_eq!(needs[0].route.as_deref(), Some("ratings"));
    assert_eq!(needs[0].version.as_deref(), Some("r2"));
    assert!(needs[0].flag.is_none() && needs[0].variant.is_none());
    assert_eq!(needs[1].flag.as_deref(), Some("theme"));
    assert_eq!(needs[1].variant.as_deref(), Some("dark"));
    assert!(needs[1].route.is_none() && needs[1].version.is_none());

    let ratings = c.routes.get("ratings").unwrap();
    assert!(ratings.matcher.authority.is_empty() && ratings.matcher.path_prefix.is_none());
    let bg = ratings.blue_green.as_ref().expect("blue_green");
    assert_eq!(bg.active, "r1");
    assert_eq!(
        bg.preview.as_ref().expect("preview").header.as_deref(),
        Some("x-preview")
    );
    let shift = bg.shift.as_ref().expect("shift");
    assert_eq!(shift.weight, 25.5);
    assert_eq!(shift.start.as_deref(), Some("2026-04-01T00:00:00Z"));
    assert_eq!(shift.steps.len(), 1);
    assert_eq!(shift.steps[0].after.as_deref(), Some("30m"));
    assert_eq!(shift.steps[0].weight, 75.0);
    let guard = ratings.guard.as_ref().expect("guard");
    assert_eq!(guard.window, "2m");
    assert_eq!(guard.action, GuardAction::Rollback);
    assert_eq!(guard.method, GuardMethod::Threshold);

    let cart = c.routes.get("cart").unwrap();
    let split: Vec<(&str, f64)> = cart
        .split
        .as_ref()
        .expect("split")
        .iter()
        .map(|(n, w)| (n, *w))
        .collect();
    assert_eq!(split, [("a", 20.0), ("b", 30.0), ("c", 50.0)]);

    // overrides and outputs
    let o = c.overrides.as_ref().expect("overrides");
    assert_eq!(o.header, "x-ovr");
    assert_eq!(o.secret_header, "x-sec");
    assert_eq!(o.secret_sha256.as_deref(), Some("abc123"));
    assert_eq!(texts(&o.allow_sources), ["10.0.0.0/8"]);
    assert_eq!(o.debug_header.as_deref(), Some("x-dbg"));
    assert_eq!(c.outputs.flags_header.as_deref(), Some("x-all-flags"));
    assert_eq!(c.outputs.baggage.as_ref().expect("baggage").prefix, "sl.");
    assert_eq!(texts(&c.outputs.trust_incoming_from), ["10.1.0.0/16"]);

    // unleash
    let u = c.unleash.as_ref().expect("unleash");
    let payload = u.payload.as_ref().expect("payload");
    assert_eq!(payload.get("version").and_then(|v| v.as_u64()), Some(1));
    assert_eq!(
        payload
            .get("features")
            .and_then(|v| v.as_array())
            .map(<[_]>::len),
        Some(0)
    );
    let poll = u.poll.as_ref().expect("poll");
    assert_eq!(poll.cluster, "unleash");
    assert_eq!(poll.authority.as_deref(), Some("unleash.example"));
    assert_eq!(poll.path, "/api/f");
    assert_eq!(poll.authorization.as_deref(), Some("token-1"));
    assert_eq!(poll.interval, "20s");
    assert_eq!(poll.timeout, "4s");
    assert_eq!(poll.max_body_bytes, 1000);
    assert_eq!(sources(&u.context.user_id), ["header:x-uid"]);
    assert_eq!(sources(&u.context.session_id), ["cookie:sess"]);
    assert_eq!(
        sources(&u.context.remote_address),
        ["header:x-forwarded-for"]
    );
    assert_eq!(u.context.app_name.as_deref(), Some("shop"));
    assert_eq!(u.context.environment.as_deref(), Some("prod"));
    assert_eq!(
        u.context.properties.get("tenant").map(source).as_deref(),
        Some("header:x-tenant")
    );
    assert_eq!(u.features.as_deref().map(texts), Some(vec!["f1", "f2"]));
    assert_eq!(u.headers.get("f1").map(String::as_str), Some("x-f1"));
    assert_eq!(u.before_first_payload, BeforeFirstPayload::PassThrough);
    let metrics = u.metrics.as_ref().expect("metrics");
    assert_eq!(metrics.interval, "90s");
    assert_eq!(metrics.max_pending_buckets, 12);
    assert_eq!(metrics.instance_id.as_deref(), Some("pod-1"));

    // chain and releases
    let chain = c.chain.as_ref().expect("chain");
    assert_eq!(chain.keys.len(), 1);
    assert_eq!(chain.keys[0].id, "k1");
    assert_eq!(chain.keys[0].secret.as_deref(), Some("s3cret"));
    assert_eq!(chain.keys[0].env.as_deref(), Some("CHAIN_KEY"));
    assert_eq!(chain.ttl, "5m");
    assert_eq!(chain.max_token_bytes, 2048);
    assert_eq!(chain.revision.as_deref(), Some("chain-r"));
    assert_eq!(texts(&chain.accept_revisions), ["old-1"]);
    let bundle = c.releases.get("bundle").expect("release");
    let routes: Vec<(&str, &str)> = bundle.routes.iter().map(|(n, v)| (n, v.as_str())).collect();
    assert_eq!(routes, [("reviews", "v2"), ("ratings", "r2")]);
    assert_eq!(bundle.weight, 15.5);
    assert_eq!(bundle.start.as_deref(), Some("2026-05-01T00:00:00Z"));
    assert_eq!(bundle.steps.len(), 1);
    assert_eq!(bundle.steps[0].after.as_deref(), Some("2h"));
    assert_eq!(bundle.steps[0].weight, 40.0);
    assert_eq!(bundle.pins.len(), 2);
    assert_eq!(bundle.pins[0].when.header.as_deref(), Some("x-in"));
    assert!(bundle.pins[0].member);
    assert_eq!(bundle.pins[1].when.header.as_deref(), Some("x-out"));
    assert!(!bundle.pins[1].member);
    assert_eq!(bundle.bucket_by, Some(BucketBy::Session));
    assert_eq!(bundle.salt.as_deref(), Some("bundle-salt"));

    // sources
    let spring = c.sources.spring.as_ref().expect("sources.spring");
    assert_eq!(spring.cluster, "config");
    assert_eq!(spring.authority.as_deref(), Some("config.example"));
    assert_eq!(spring.application, "shop");
    assert_eq!(texts(&spring.profiles), ["prod", "eu"]);
    assert_eq!(spring.label.as_deref(), Some("main"));
    assert_eq!(spring.prefix, "toggles");
    assert_eq!(spring.authorization.as_deref(), Some("Bearer t"));
    assert_eq!(
        spring.basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
        Some(("u", "p"))
    );
    assert_eq!(spring.interval, "45s");
    assert_eq!(spring.timeout, "6s");
    assert_eq!(spring.max_body_bytes, 5000);
}

/// Omitted fields take the defaults docs/config.md documents.
#[test]
fn omitted_fields_take_their_documented_defaults() {
    let c = read(
        r#"{"version": 1,
            "flags": {"f": {"experiment": {}}},
            "routes": {"r": {"header": "x-r", "versions": ["a", "b"],
                             "sticky_cookie": {"name": "s"},
                             "guard": {"webhook": {"cluster": "hooks"}}}},
            "overrides": {},
            "outputs": {"baggage": {}},
            "unleash": {"poll": {"cluster": "u"}, "metrics": true},
            "chain": {},
            "sources": {"spring": {"cluster": "c", "application": "a", "profiles": []}}}"#,
    );
    assert!(c.revision.is_none() && c.schema.is_none());
    assert!(c.identity.user.is_empty() && c.identity.session.is_empty());
    assert_eq!(c.identity.without_identity, WithoutIdentity::Default);
    let f = c.flags.get("f").unwrap();
    assert!(f.enabled, "a flag is enabled unless it says otherwise");
    assert!(f.variants.is_none() && f.default.is_none() && f.rules.is_empty());
    let e = f
        .experiment
        .as_ref()
        .expect("an experiment map turns it on");
    assert!(e.goals.is_empty());
    assert_eq!(e.goal_header, "x-sluice-goal");

    let r = c.routes.get("r").unwrap();
    let sticky = r.sticky_cookie.as_ref().unwrap();
    assert_eq!(sticky.path, "/");
    assert!(sticky.max_age.is_none() && sticky.same_site.is_none());
    assert!(!sticky.secure);
    assert!(sticky.http_only);
    let guard = r.guard.as_ref().unwrap();
    assert_eq!(guard.window, "30s");
    assert_eq!(guard.min_requests, 50);
    assert!(!guard.count_local_replies);
    assert_eq!(guard.action, GuardAction::Rollback);
    assert_eq!(guard.method, GuardMethod::Threshold);
    assert!(guard.max_error_rate.is_none() && guard.alpha.is_none());
    let hook = guard.webhook.as_ref().unwrap();
    assert_eq!(hook.path, "/");
    assert!(hook.authority.is_none());
    assert_eq!(hook.timeout, "2s");
    assert_eq!(hook.attempts, 5);

    let o = c.overrides.as_ref().unwrap();
    assert_eq!(o.header, "x-sluice-override");
    assert_eq!(o.secret_header, "x-sluice-secret");
    assert!(o.secret_sha256.is_none() && o.allow_sources.is_empty() && o.debug_header.is_none());
    assert_eq!(c.outputs.flags_header.as_deref(), Some("x-sluice-flags"));
    assert_eq!(c.outputs.baggage.as_ref().unwrap().prefix, "sluice.");

    let u = c.unleash.as_ref().unwrap();
    let poll = u.poll.as_ref().unwrap();
    assert_eq!(poll.path, "/api/client/features");
    assert_eq!(poll.interval, "15s");
    assert_eq!(poll.timeout, "5s");
    assert_eq!(poll.max_body_bytes, 4 * 1024 * 1024);
    assert!(poll.authority.is_none() && poll.authorization.is_none());
    assert_eq!(u.before_first_payload, BeforeFirstPayload::Defaults);
    let metrics = u.metrics.as_ref().expect("`metrics: true` turns them on");
    assert_eq!(metrics.interval, "60s");
    assert_eq!(metrics.max_pending_buckets, 30);
    assert!(metrics.instance_id.is_none());

    let chain = c.chain.as_ref().unwrap();
    assert!(chain.keys.is_empty());
    assert_eq!(chain.ttl, "10m");
    assert_eq!(chain.max_token_bytes, 4096);

    let spring = c.sources.spring.as_ref().unwrap();
    assert_eq!(spring.prefix, "features");
    assert_eq!(spring.interval, "15s");
    assert_eq!(spring.timeout, "5s");
    assert_eq!(spring.max_body_bytes, 4 * 1024 * 1024);
    assert!(spring.profiles.is_empty() && spring.basic.is_none() && spring.label.is_none());

    // `metrics: false` and an absent `metrics` are both off; `null` is absent.
    for metrics in [r#""metrics": false,"#, "", r#""metrics": null,"#] {
        let c = read(&format!(
            r#"{{"version": 1, "unleash": {{{metrics} "features": []}}}}"#
        ));
        assert!(c.unleash.unwrap().metrics.is_none(), "{metrics}");
    }
    // `null` is absent for optional fields too.
    let c = read(r#"{"version": 1, "revision": null, "outputs": {"flags_header": null}}"#);
    assert!(c.revision.is_none());
    assert!(
        c.outputs.flags_header.is_none(),
        "null turns the flags header off"
    );
}

#[test]
fn every_same_site_spelling_is_read() {
    for (written, expected) in [
        ("Strict", "Strict"),
        ("strict", "Strict"),
        ("Lax", "Lax"),
        ("lax", "Lax"),
        ("None", "None"),
        ("none", "None"),
    ] {
        let c = read(&format!(
            r#"{{"version": 1, "routes": {{"r": {{"header": "x-r", "versions": ["a"],
                "sticky_cookie": {{"name": "s", "same_site": "{written}"}}}}}}}}"#
        ));
        let got = match c
            .routes
            .get("r")
            .unwrap()
            .sticky_cookie
            .as_ref()
            .unwrap()
            .same_site
        {
            Some(SameSite::Strict) => "Strict",
            Some(SameSite::Lax) => "Lax",
            Some(SameSite::None) => "None",
            None => "absent",
        };
        assert_eq!(got, expected, "same_site: {written}");
    }
}

/// Integers at the edges of their range are read; one past is refused.
#[test]
fn integers_at_the_edge_of_their_range_are_read() {
    let c = read(&format!(
        r#"{{"version": 1, "chain": {{"max_token_bytes": {}}},
            "unleash": {{"poll": {{"cluster": "u", "max_body_bytes": 0}}}}}}"#,
        u64::MAX
    ));
    assert_eq!(c.chain.unwrap().max_token_bytes, u64::MAX);
    assert_eq!(c.unleash.unwrap().poll.unwrap().max_body_bytes, 0);
    // The largest u32 is a version the reader takes (compile then names it unsupported).
    assert_eq!(read(r#"{"version": 4294967295}"#).version, u32::MAX);
    let err = sluice_core::compile::load(br#"{"version": 4294967295}"#)
        .expect_err("version 4294967295 is refused");
    assert_eq!(
        err.to_string(),
        "version: unsupported version 4294967295, expected 1"
    );
    // Webhook attempts beyond u32 are read as the largest u32.
    let c = read(
        r#"{"version": 1, "routes": {"r": {"header": "x-r", "versions": ["a"],
            "guard": {"webhook": {"cluster": "h", "attempts": 99999999999}}}}}"#,
    );
    let hook = c.routes.get("r").unwrap().guard.as_ref().unwrap();
    assert_eq!(hook.webhook.as_ref().unwrap().attempts, u32::MAX);
    // A whole number written with a fraction is a float where a float is expected.
    let c = read(r#"{"version": 1, "segments": {"s": {"num_gt": -3, "num_lt": 1e3}}}"#);
    let s = c.segments.get("s").unwrap();
    assert_eq!((s.num_gt, s.num_lt), (Some(-3.0), Some(1000.0)));
}

/// (config, the exact error a user sees)
const REFUSED: &[(&str, &str)] = &[
    // Syntax errors: the line and column; a document cut short is the whole config's.
    (
        r#"{"version": 1,"#,
        "config: EOF while parsing an object at line 1 column 15",
    ),
    (
        "{\"version\": 1,\n \"flags\": {\"f\": {",
        "config: EOF while parsing an object at line 2 column 18",
    ),
    ("nope", "config: expected ident at line 1 column 2"),
    (
        r#"{"version": 1, "flags": {"f": {"enabled": tru}}}"#,
        "flags.f.enabled: expected ident at line 1 column 46",
    ),
    // Top level.
    ("[]", "config: invalid type: sequence, expected struct Config"),
    ("{}", "config: missing field `version`"),
    (
        r#"{"revision": "r1"}"#,
        "config: missing field `version`",
    ),
    (
        r#"{"version": 1, "flagz": {}}"#,
        "flagz: unknown field `flagz`, expected one of `version`, `revision`, `$schema`, \
         `identity`, `attributes`, `segments`, `flags`, `routes`, `overrides`, `outputs`, \
         `unleash`, `chain`, `releases`, `sources`",
    ),
    (
        r#"{"version": 1, "version": 1}"#,
        "version: duplicate field `version`",
    ),
    (
        r#"{"version": 1, "revision": "a", "revision": "b"}"#,
        "revision: duplicate field `revision`",
    ),
    (
        r#"{"version": 1, "sources": {}, "sources": {}}"#,
        "sources: duplicate field `sources`",
    ),
    (
        r#"{"version": -1}"#,
        "version: invalid value: integer `-1`, expected u32",
    ),
    (
        r#"{"version": 4294967296}"#,
        "version: invalid value: integer `4294967296`, expected u32",
    ),
    (
        r#"{"version": 1.5}"#,
        "version: invalid type: floating point `1.5`, expected u32",
    ),
    (
        r#"{"version": "1"}"#,
        "version: invalid type: string \"1\", expected u32",
    ),
    (
        r#"{"version": null}"#,
        "version: invalid type: null, expected u32",
    ),
    // What was found, in each JSON type.
    (
        r#"{"version": 1, "revision": 7}"#,
        "revision: invalid type: integer `7`, expected a string",
    ),
    (
        r#"{"version": 1, "revision": -7}"#,
        "revision: invalid type: integer `-7`, expected a string",
    ),
    (
        r#"{"version": 1, "revision": 0.5}"#,
        "revision: invalid type: floating point `0.5`, expected a string",
    ),
    (
        r#"{"version": 1, "revision": true}"#,
        "revision: invalid type: boolean `true`, expected a string",
    ),
    (
        r#"{"version": 1, "revision": []}"#,
        "revision: invalid type: sequence, expected a string",
    ),
    (
        r#"{"version": 1, "revision": {}}"#,
        "revision: invalid type: map, expected a string",
    ),
    (
        r#"{"version": 1, "$schema": 1}"#,
        "$schema: invalid type: integer `1`, expected a string",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"enabled": null}}}"#,
        "flags.f.enabled: invalid type: null, expected a boolean",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"enabled": "no"}}}"#,
        "flags.f.enabled: invalid type: string \"no\", expected a boolean",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"description": "say \"hi\"\n", "enabled": "a\\b"}}}"#,
        "flags.f.enabled: invalid type: string \"a\\\\b\", expected a boolean",
    ),
    (
        r#"{"version": 1, "segments": {"s": {"num_gt": "5"}}}"#,
        "segments.s.num_gt: invalid type: string \"5\", expected f64",
    ),
    (
        r#"{"version": 1, "chain": {"max_token_bytes": -5}}"#,
        "chain.max_token_bytes: invalid value: integer `-5`, expected u64",
    ),
    (
        r#"{"version": 1, "chain": {"max_token_bytes": 1e3}}"#,
        "chain.max_token_bytes: invalid type: floating point `1000.0`, expected u64",
    ),
    (
        r#"{"version": 1, "chain": {"max_token_bytes": 18446744073709551616}}"#,
        "chain.max_token_bytes: invalid type: floating point `1.8446744073709552e+19`, expected u64",
    ),
    (
        r#"{"version": 1, "chain": {"max_token_bytes": "4k"}}"#,
        "chain.max_token_bytes: invalid type: string \"4k\", expected u64",
    ),
    // Lists and named maps.
    (
        r#"{"version": 1, "outputs": {"trust_incoming_from": "10.0.0.0/8"}}"#,
        "outputs.trust_incoming_from: invalid type: string \"10.0.0.0/8\", expected a sequence",
    ),
    (
        r#"{"version": 1, "outputs": {"trust_incoming_from": ["10.0.0.0/8", 3]}}"#,
        "outputs.trust_incoming_from[1]: invalid type: integer `3`, expected a string",
    ),
    (
        r#"{"version": 1, "flags": []}"#,
        "flags: invalid type: sequence, expected an object keyed by name",
    ),
    (
        r#"{"version": 1, "flags": {"a": {}, "b": {}, "a": {}}}"#,
        "flags.a: duplicate name `a`",
    ),
    (
        r#"{"version": 1, "flags": {"f": 1}}"#,
        "flags.f: invalid type: integer `1`, expected struct Flag",
    ),
    // Unknown fields: the expected names, one, two or many.
    (
        r#"{"version": 1, "outputs": {"baggage": {"prefx": "s."}}}"#,
        "outputs.baggage.prefx: unknown field `prefx`, expected `prefix`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"experiment": {"goal": []}}}}"#,
        "flags.f.experiment.goal: unknown field `goal`, expected `goals` or `goal_header`",
    ),
    (
        r#"{"version": 1, "sources": {"spring": {"cluster": "c", "application": "a",
            "profiles": [], "basic": {"user": "u"}}}}"#,
        "sources.spring.basic.user: unknown field `user`, expected `username` or `password`",
    ),
    (
        r#"{"version": 1, "identity": {"users": []}}"#,
        "identity.users: unknown field `users`, expected one of `user`, `session`, \
         `without_identity`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"rules": [{"serve": "on", "serve": "off"}]}}}"#,
        "flags.f.rules[0].serve: duplicate field `serve`",
    ),
    (
        r#"{"version": 1, "segments": {"s": {"negate": true, "header": "a", "negate": false}}}"#,
        "segments.s.negate: duplicate field `negate`",
    ),
    // Enums: the name, the one-key map, and what is wrong with either.
    (
        r#"{"version": 1, "identity": {"without_identity": "randm"}}"#,
        "identity.without_identity: unknown variant `randm`, expected `default` or `random`",
    ),
    (
        r#"{"version": 1, "identity": {"without_identity": 1}}"#,
        "identity.without_identity: invalid type: integer `1`, expected enum WithoutIdentity",
    ),
    (
        r#"{"version": 1, "identity": {"without_identity": {"random": 1}}}"#,
        "identity.without_identity.random: invalid type: integer `1`, expected unit",
    ),
    (
        r#"{"version": 1, "identity": {"without_identity": {"default": null, "random": null}}}"#,
        "identity.without_identity: expected one key in enum WithoutIdentity, found 2",
    ),
    (
        r#"{"version": 1, "identity": {"without_identity": {}}}"#,
        "identity.without_identity: expected one key in enum WithoutIdentity, found 0",
    ),
    (
        r#"{"version": 1, "attributes": {"a": {"nope": "x", "header": "y"}}}"#,
        "attributes.a.nope: unknown variant `nope`, expected one of `header`, `cookie`, \
         `query`, `baggage`, `path`, `method`, `authority`, `source_address`",
    ),
    (
        r#"{"version": 1, "attributes": {"a": {"header": "x", "cookie": "y"}}}"#,
        "attributes.a: expected one key in enum Source, found 2",
    ),
    (
        r#"{"version": 1, "attributes": {"a": "header"}}"#,
        "attributes.a: invalid type: unit variant, expected newtype variant",
    ),
    (
        r#"{"version": 1, "attributes": {"a": "baggage"}}"#,
        "attributes.a: invalid type: unit variant, expected newtype variant",
    ),
    (
        r#"{"version": 1, "attributes": {"a": {"cookie": 5}}}"#,
        "attributes.a.cookie: invalid type: integer `5`, expected a string",
    ),
    (
        r#"{"version": 1, "attributes": {"a": {"path": "/x"}}}"#,
        "attributes.a.path: invalid type: string \"/x\", expected unit",
    ),
    (
        r#"{"version": 1, "attributes": {"a": {"source_address": true}}}"#,
        "attributes.a.source_address: invalid type: boolean `true`, expected unit",
    ),
    (
        r#"{"version": 1, "attributes": {"a": ["header", "x"]}}"#,
        "attributes.a: invalid type: sequence, expected enum Source",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"bucket_by": "tenant"}}}"#,
        "flags.f.bucket_by: unknown variant `tenant`, expected `user` or `session`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"],
            "sticky_cookie": {"name": "s", "same_site": "LAX"}}}}"#,
        "routes.r.sticky_cookie.same_site: unknown variant `LAX`, expected one of `Strict`, \
         `strict`, `Lax`, `lax`, `None`, `none`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"],
            "guard": {"method": "bayes"}}}}"#,
        "routes.r.guard.method: unknown variant `bayes`, expected `threshold` or `sequential`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"],
            "guard": {"action": "halt"}}}}"#,
        "routes.r.guard.action: unknown variant `halt`, expected `rollback` or `pause`",
    ),
    (
        r#"{"version": 1, "unleash": {"before_first_payload": "wait"}}"#,
        "unleash.before_first_payload: unknown variant `wait`, expected `defaults` or \
         `pass_through`",
    ),
    // Untagged and boolean-or-map fields.
    (
        r#"{"version": 1, "segments": {"s": {"cidr": 10}}}"#,
        "segments.s.cidr: data did not match any variant of untagged enum OneOrMany",
    ),
    (
        r#"{"version": 1, "segments": {"s": {"cidr": ["10.0.0.0/8", 1]}}}"#,
        "segments.s.cidr: data did not match any variant of untagged enum OneOrMany",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"experiment": "yes"}}}"#,
        "flags.f.experiment: invalid type: string \"yes\", expected a boolean or a map",
    ),
    (
        r#"{"version": 1, "unleash": {"metrics": 60}}"#,
        "unleash.metrics: invalid type: integer `60`, expected a boolean or a map",
    ),
    (
        r#"{"version": 1, "unleash": {"metrics": {"interval": 60}}}"#,
        "unleash.metrics.interval: invalid type: integer `60`, expected a string",
    ),
    // Required fields, named at the object that lacks them.
    (
        r#"{"version": 1, "routes": {"r": {"versions": ["a"]}}}"#,
        "routes.r: missing field `header`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x"}}}"#,
        "routes.r: missing field `versions`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a", "b"],
            "canary": {"canary": "b"}}}}"#,
        "routes.r.canary: missing field `stable`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a", "b"],
            "canary": {"stable": "a"}}}}"#,
        "routes.r.canary: missing field `canary`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a", "b"],
            "canary": {"stable": "a", "canary": "b", "steps": [{"after": "1h"}]}}}}"#,
        "routes.r.canary.steps[0]: missing field `weight`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a", "b"],
            "blue_green": {"preview": {"header": "p"}}}}}"#,
        "routes.r.blue_green: missing field `active`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a", "b"],
            "pins": [{"version": "b"}]}}}"#,
        "routes.r.pins[0]: missing field `when`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a", "b"],
            "pins": [{"when": {"header": "p"}}]}}}"#,
        "routes.r.pins[0]: missing field `version`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"],
            "sticky_cookie": {"path": "/"}}}}"#,
        "routes.r.sticky_cookie: missing field `name`",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"],
            "guard": {"webhook": {"path": "/"}}}}}"#,
        "routes.r.guard.webhook: missing field `cluster`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"prerequisites": [{"variants": ["on"]}]}}}"#,
        "flags.f.prerequisites[0]: missing field `flag`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"prerequisites": [{"flag": "g"}]}}}"#,
        "flags.f.prerequisites[0]: missing field `variants`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"schedule": {"ramp": {"duration": "1h", "from": 0, "to": 100}}}}}"#,
        "flags.f.schedule.ramp: missing field `start`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"schedule": {"ramp": {"start": "2026-01-01T00:00:00Z", "from": 0, "to": 100}}}}}"#,
        "flags.f.schedule.ramp: missing field `duration`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"schedule": {"ramp": {"start": "2026-01-01T00:00:00Z", "duration": "1h", "to": 100}}}}}"#,
        "flags.f.schedule.ramp: missing field `from`",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"schedule": {"ramp": {"start": "2026-01-01T00:00:00Z", "duration": "1h", "from": 0}}}}}"#,
        "flags.f.schedule.ramp: missing field `to`",
    ),
    (
        r#"{"version": 1, "unleash": {"poll": {"path": "/x"}}}"#,
        "unleash.poll: missing field `cluster`",
    ),
    (
        r#"{"version": 1, "chain": {"keys": [{"secret": "s"}]}}"#,
        "chain.keys[0]: missing field `id`",
    ),
    (
        r#"{"version": 1, "releases": {"rel": {"weight": 5}}}"#,
        "releases.rel: missing field `routes`",
    ),
    (
        r#"{"version": 1, "releases": {"rel": {"routes": {}, "pins": [{"in": true}]}}}"#,
        "releases.rel.pins[0]: missing field `when`",
    ),
    (
        r#"{"version": 1, "releases": {"rel": {"routes": {}, "pins": [{"when": {"header": "h"}}]}}}"#,
        "releases.rel.pins[0]: missing field `in`",
    ),
    (
        r#"{"version": 1, "sources": {"spring": {"application": "a", "profiles": []}}}"#,
        "sources.spring: missing field `cluster`",
    ),
    (
        r#"{"version": 1, "sources": {"spring": {"cluster": "c", "profiles": []}}}"#,
        "sources.spring: missing field `application`",
    ),
    (
        r#"{"version": 1, "sources": {"spring": {"cluster": "c", "application": "a"}}}"#,
        "sources.spring: missing field `profiles`",
    ),
    (
        r#"{"version": 1, "sources": {"spring": {"cluster": "c", "application": "a",
            "profiles": [], "basic": {"password": "p"}}}}"#,
        "sources.spring.basic: missing field `username`",
    ),
    (
        r#"{"version": 1, "sources": {"spring": {"cluster": "c", "application": "a",
            "profiles": [], "basic": {"username": "u"}}}}"#,
        "sources.spring.basic: missing field `password`",
    ),
    // Deep paths: list indexes and names through several levels.
    (
        r#"{"version": 1, "segments": {"s": {"all": [{"header": "a"}, {"any": [{"not": {"cookie": 1}}]}]}}}"#,
        "segments.s.all[1].any[0].not.cookie: invalid type: integer `1`, expected a string",
    ),
    (
        r#"{"version": 1, "flags": {"f": {"rules": [{"rollout": {"on": "50"}}]}}}"#,
        "flags.f.rules[0].rollout.on: invalid type: string \"50\", expected f64",
    ),
    (
        r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"],
            "requires": {"a": [{"route": "q", "flag": 3}]}}}}"#,
        "routes.r.requires.a[0].flag: invalid type: integer `3`, expected a string",
    ),
    (
        r#"{"version": 1, "unleash": {"context": {"properties": {"tenant": "header"}}}}"#,
        "unleash.context.properties.tenant: invalid type: unit variant, expected newtype variant",
    ),
];

#[test]
fn every_kind_of_bad_input_is_refused_with_its_path_and_reason() {
    let mut failures = Vec::new();
    for (json, expected) in REFUSED {
        let got = match parse(json.as_bytes()) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        if got != *expected {
            failures.push(format!("{json}\n   got      {got}\n   expected {expected}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} misreported:\n{}",
        failures.len(),
        REFUSED.len(),
        failures.join("\n")
    );
}

/// The reader's checks hold in every section that uses them: an unknown or repeated field is
/// refused in each struct, with that struct's path.
#[test]
fn each_section_refuses_unknown_and_repeated_fields() {
    let sections = [
        (r#"{"version": 1, "identity": {X}}"#, "identity"),
        (r#"{"version": 1, "segments": {"s": {X}}}"#, "segments.s"),
        (r#"{"version": 1, "flags": {"f": {X}}}"#, "flags.f"),
        (
            r#"{"version": 1, "flags": {"f": {"rules": [{X}]}}}"#,
            "flags.f.rules[0]",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"schedule": {X}}}}"#,
            "flags.f.schedule",
        ),
        (
            r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"], "match": {X}}}}"#,
            "routes.r.match",
        ),
        (
            r#"{"version": 1, "routes": {"r": {"header": "x", "versions": ["a"], "guard": {X}}}}"#,
            "routes.r.guard",
        ),
        (r#"{"version": 1, "overrides": {X}}"#, "overrides"),
        (r#"{"version": 1, "outputs": {X}}"#, "outputs"),
        (r#"{"version": 1, "unleash": {X}}"#, "unleash"),
        (
            r#"{"version": 1, "unleash": {"context": {X}}}"#,
            "unleash.context",
        ),
        (r#"{"version": 1, "chain": {X}}"#, "chain"),
        (r#"{"version": 1, "sources": {X}}"#, "sources"),
    ];
    for (template, at) in sections {
        let unknown = refused(&template.replace('X', r#""bogus": 1"#));
        assert!(
            unknown.starts_with(&format!("{at}.bogus: unknown field `bogus`, expected ")),
            "{unknown}"
        );
    }
    // A repeated field, the second time it appears, for a field late in each struct's list
    // (the first one would not tell a shifted bit from a missing check).
    let repeated = [
        (
            r#"{"version": 1, "identity": {"without_identity": "random", "without_identity": "random"}}"#,
            "identity.without_identity: duplicate field `without_identity`",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"header": "a", "salt": "s", "header": "b"}}}"#,
            "flags.f.header: duplicate field `header`",
        ),
        (
            r#"{"version": 1, "unleash": {"features": [], "headers": {}, "features": []}}"#,
            "unleash.features: duplicate field `features`",
        ),
        (
            r#"{"version": 1, "chain": {"ttl": "1m", "accept_revisions": [], "ttl": "2m"}}"#,
            "chain.ttl: duplicate field `ttl`",
        ),
    ];
    for (json, expected) in repeated {
        assert_eq!(refused(json), expected);
    }
    // Different fields with the same low bits are not mistaken for one another.
    let c = read(
        r#"{"version": 1, "flags": {"f": {"description": "d", "variants": {"a": 1}, "default": "a",
            "enabled": true, "off_variant": "a", "prerequisites": [], "rules": [], "schedule": {},
            "bucket_by": "user", "salt": "s", "without_identity": "default", "header": "x-f",
            "experiment": false}}}"#,
    );
    assert_eq!(c.flags.get("f").unwrap().header.as_deref(), Some("x-f"));
}

/// Each name of a unit enum, written out (also the first, which is the default), is read as
/// itself, in both the string and the `{"name": null}` form.
#[test]
fn every_enum_name_is_read_as_itself() {
    for (written, expected) in [
        (r#""defaults""#, BeforeFirstPayload::Defaults),
        (r#"{"defaults": null}"#, BeforeFirstPayload::Defaults),
        (r#""pass_through""#, BeforeFirstPayload::PassThrough),
        (r#"{"pass_through": null}"#, BeforeFirstPayload::PassThrough),
    ] {
        let c = read(&format!(
            r#"{{"version": 1, "unleash": {{"before_first_payload": {written}}}}}"#
        ));
        assert_eq!(
            c.unleash.unwrap().before_first_payload,
            expected,
            "{written}"
        );
    }
    for (written, method, action) in [
        (
            r#""method": "threshold", "action": "rollback""#,
            GuardMethod::Threshold,
            GuardAction::Rollback,
        ),
        (
            r#""method": "sequential", "action": "pause""#,
            GuardMethod::Sequential,
            GuardAction::Pause,
        ),
    ] {
        let c = read(&format!(
            r#"{{"version": 1, "routes": {{"r": {{"header": "x", "versions": ["a"], "guard": {{{written}}}}}}}}}"#
        ));
        let g = c.routes.get("r").unwrap().guard.as_ref().unwrap();
        assert_eq!((g.method, g.action), (method, action), "{written}");
    }
    for (written, expected) in [
        ("default", WithoutIdentity::Default),
        ("random", WithoutIdentity::Random),
    ] {
        let c = read(&format!(
            r#"{{"version": 1, "identity": {{"without_identity": "{written}"}}}}"#
        ));
        assert_eq!(c.identity.without_identity, expected);
    }
}
