//! What the compiled plan tells the filter to fetch per request: the clock only when something
//! in the config is timed (or measured), the peer address only when something reads it; and
//! the response headers experiments read, each once.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::{plan, variant, Req};
use sluice_core::plan::{Cond, Subject};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PAYLOAD: &str = r#"{"version": 1, "features": []}"#;

/// A route `r` with a canary that has no steps (not timed), for configs that need one.
const CANARY: &str = r#""r": {"header": "x-route-r", "versions": ["a", "b"],
    "canary": {"stable": "a", "canary": "b", "weight": 10}}"#;

#[test]
fn the_clock_is_read_only_when_something_in_the_config_is_timed() {
    let timed = [
        (
            "an Unleash source (strategies read the time)",
            format!(r#"{{"version": 1, "unleash": {{"payload": {PAYLOAD}}}}}"#),
        ),
        (
            "a flag enabled at a time",
            r#"{"version": 1, "flags": {"f": {"schedule": {"enable_at": "2026-01-01T00:00:00Z"}}}}"#
                .to_string(),
        ),
        (
            "a flag ramped over time",
            r#"{"version": 1, "flags": {"f": {"schedule": {"ramp": {"start": "2026-01-01T00:00:00Z",
                "duration": "1h", "from": 0, "to": 100}}}}}"#
                .to_string(),
        ),
        (
            "a canary with time steps",
            r#"{"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"],
                "canary": {"stable": "a", "canary": "b", "weight": 10,
                           "steps": [{"at": "2026-01-01T00:00:00Z", "weight": 50}]}}}}"#
                .to_string(),
        ),
        (
            "signed decisions (tokens expire)",
            format!(
                r#"{{"version": 1, "outputs": {{"baggage": {{}}}},
                    "chain": {{"keys": [{{"id": "k1", "secret": "{SECRET}"}}]}}}}"#
            ),
        ),
        (
            "a release with time steps",
            format!(
                r#"{{"version": 1, "routes": {{{CANARY}}}, "releases": {{"rel": {{"routes": {{"r": "b"}},
                    "weight": 5, "steps": [{{"at": "2026-01-01T00:00:00Z", "weight": 50}}]}}}}}}"#
            ),
        ),
        (
            "an experiment (latency per variant)",
            r#"{"version": 1, "flags": {"f": {"experiment": true}}}"#.to_string(),
        ),
    ];
    for (what, json) in &timed {
        assert!(
            plan(json).reads_clock,
            "{what}: the plan must read the clock"
        );
    }
    // Nothing timed: rules, a split, a canary and a release without steps.
    let untimed = format!(
        r#"{{"version": 1,
            "flags": {{"f": {{"rules": [{{"when": {{"header": "x-beta", "present": true}}, "serve": "on"}},
                                       {{"rollout": {{"on": 50, "off": 50}}}}]}}}},
            "routes": {{{CANARY},
                "s": {{"header": "x-route-s", "versions": ["a", "b"], "split": {{"a": 50, "b": 50}}}}}},
            "releases": {{"rel": {{"routes": {{"r": "b"}}, "weight": 5}}}}}}"#
    );
    assert!(!plan(&untimed).reads_clock);
    assert!(!plan(r#"{"version": 1}"#).reads_clock);
}

#[test]
fn the_peer_address_is_read_only_when_something_uses_it() {
    let reading = [
        (
            "trusted peers",
            r#"{"version": 1, "outputs": {"trust_incoming_from": ["10.0.0.0/8"]}}"#.to_string(),
        ),
        (
            "a condition on source_address",
            r#"{"version": 1, "segments": {"office": {"attr": "source_address", "cidr": "10.0.0.0/8"}}}"#
                .to_string(),
        ),
        (
            "Unleash's remoteAddress (the peer by default)",
            format!(r#"{{"version": 1, "unleash": {{"payload": {PAYLOAD}}}}}"#),
        ),
        (
            "the user key",
            r#"{"version": 1, "identity": {"user": [{"header": "x-user"}, "source_address"]}}"#
                .to_string(),
        ),
        (
            "the session key",
            r#"{"version": 1, "identity": {"session": ["source_address"]}}"#.to_string(),
        ),
        (
            "overrides allowed from a source range",
            r#"{"version": 1, "overrides": {"allow_sources": ["10.0.0.0/8"]}}"#.to_string(),
        ),
    ];
    for (what, json) in &reading {
        assert!(
            plan(json).reads_source_address,
            "{what}: the plan must read the peer address"
        );
    }
    let not_reading = [
        r#"{"version": 1}"#.to_string(),
        r#"{"version": 1, "identity": {"user": [{"header": "x-user"}], "session": [{"cookie": "sid"}]},
            "segments": {"s": {"attr": "path", "prefix": "/beta"}}}"#
            .to_string(),
        format!(
            r#"{{"version": 1, "unleash": {{"payload": {PAYLOAD},
                "context": {{"remote_address": [{{"header": "x-forwarded-for"}}]}}}}}}"#
        ),
        format!(
            r#"{{"version": 1, "overrides": {{"secret_sha256": "{}"}}}}"#,
            "ab".repeat(32)
        ),
    ];
    for json in &not_reading {
        assert!(!plan(json).reads_source_address, "{json}");
    }
}

#[test]
fn experiments_read_each_goal_header_once() {
    let p = plan(
        r#"{"version": 1, "flags": {
            "a": {"experiment": {"goals": ["buy", "signup"], "goal_header": "X-Goal"}},
            "b": {"experiment": {"goals": ["buy"]}},
            "c": {"experiment": {"goals": ["click"], "goal_header": "x-goal"}},
            "d": {},
            "e": {"experiment": false}}}"#,
    );
    assert_eq!(p.goal_headers, ["x-goal", "x-sluice-goal"]);
    let header_of = |flag: &str| {
        let f = p.flags.iter().find(|f| f.name == flag).unwrap();
        f.experiment
            .as_ref()
            .map(|e| (p.goal_headers[e.goal_header].as_str(), e.goals.clone()))
    };
    assert_eq!(
        header_of("a"),
        Some(("x-goal", vec!["buy".to_string(), "signup".into()]))
    );
    assert_eq!(header_of("b"), Some(("x-sluice-goal", vec!["buy".into()])));
    assert_eq!(header_of("c"), Some(("x-goal", vec!["click".into()])));
    assert_eq!(header_of("d"), None);
    assert_eq!(header_of("e"), None);
    // No experiment: no goal header to strip from responses.
    assert!(plan(r#"{"version": 1, "flags": {"f": {}}}"#)
        .goal_headers
        .is_empty());
}

#[test]
fn baggage_members_read_as_keys_are_each_read_once() {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"baggage": "uid"}, {"baggage": "sid"}],
                                       "session": [{"baggage": "sid"}]}}"#,
    );
    assert_eq!(p.chain.baggage_keys, ["uid", "sid"]);
    assert_eq!(p.user_key, [Subject::Baggage(0), Subject::Baggage(1)]);
    assert_eq!(p.session_key, [Subject::Baggage(1)]);
    // The baggage header is an input fact.
    let id = p.baggage_header.expect("baggage is read");
    assert_eq!(p.headers[id], "baggage");
    assert!(plan(r#"{"version": 1}"#).baggage_header.is_none());
}

/// Routes the request does not match are decided too (and carried in baggage) only when a
/// signed token, a release or a version requirement needs every route's version.
#[test]
fn unmatched_routes_are_decided_only_for_tokens_releases_and_requirements() {
    let config = |a_extra: &str, top_extra: &str| {
        format!(
            r#"{{"version": 1, "outputs": {{"baggage": {{}}}}, {top_extra}
              "routes": {{
                "a": {{"match": {{"authority": ["a.example.com"]}}, "header": "x-route-a",
                       "versions": ["v1", "v2"], "canary": {{"stable": "v1", "canary": "v2", "weight": 0}}{a_extra}}},
                "b": {{"match": {{"authority": ["b.example.com"]}}, "header": "x-route-b",
                       "versions": ["w1"], "split": {{"w1": 100}}}}}}}}"#
        )
    };
    let baggage = |json: &str| {
        let p = plan(json);
        let headers = common::Req::new()
            .set(":authority", "a.example.com")
            .user("u1")
            .headers(&p);
        headers.get("baggage").cloned().unwrap_or_default()
    };
    let only_matched = baggage(&config("", ""));
    assert!(only_matched.contains("sluice.route.a=v1"), "{only_matched}");
    assert!(!only_matched.contains("sluice.route.b"), "{only_matched}");

    let everything = [
        (
            "a signed token",
            config(
                "",
                &format!(r#""chain": {{"keys": [{{"id": "k1", "secret": "{SECRET}"}}]}},"#),
            ),
        ),
        (
            "a release",
            config(
                "",
                r#""releases": {"rel": {"routes": {"a": "v2"}, "weight": 0}},"#,
            ),
        ),
        (
            "a version requirement",
            config(
                r#", "requires": {"v2": [{"route": "b", "version": "w1"}]}"#,
                "",
            ),
        ),
    ];
    for (what, json) in &everything {
        let b = baggage(json);
        assert!(
            b.contains("sluice.route.a=v1") && b.contains("sluice.route.b=w1"),
            "{what}: {b}"
        );
    }
}

/// The tester secret's hash is read as the 32 bytes its hex spells, in order (upper or lower
/// case), so the secret that hashes to it is honoured.
#[test]
fn the_override_secret_hash_is_read_as_its_bytes() {
    use sha2::Digest;
    let want: [u8; 32] = sha2::Sha256::digest(b"let-me-test").into();
    for hex in [common::secret_hash(), common::secret_hash().to_uppercase()] {
        let p = plan(&format!(
            r#"{{"version": 1, "overrides": {{"secret_sha256": "{hex}"}}}}"#
        ));
        assert_eq!(p.overrides.unwrap().secret_sha256, Some(want), "{hex}");
    }
}

/// Until a first payload: every listed feature is written `off` (`defaults`, the default) or
/// requests pass untouched (`pass_through`).
#[test]
fn before_the_first_payload_is_as_configured() {
    let pass_through = |setting: &str| {
        plan(&format!(
            r#"{{"version": 1, "unleash": {{"poll": {{"cluster": "unleash"}}, "features": ["a"]{setting}}}}}"#
        ))
        .unleash
        .unwrap()
        .pass_through_before_payload
    };
    assert!(!pass_through(""));
    assert!(!pass_through(r#", "before_first_payload": "defaults""#));
    assert!(pass_through(r#", "before_first_payload": "pass_through""#));
}

/// The compiled `when` of a flag's first rule.
fn first_when<'p>(plan: &'p sluice_core::plan::Plan, flag: &str) -> &'p Cond {
    let flag = plan.flags.iter().find(|f| f.name == flag).unwrap();
    flag.rules[0].when.as_ref().unwrap()
}

#[test]
fn a_text_test_several_flags_make_alike_is_an_unnamed_segment_evaluated_once() {
    let p = plan(
        r#"{"version": 1,
        "segments": {"eu": {"header": "x-country", "in": ["de", "fr"]}},
        "flags": {
          "a": {"rules": [{"when": {"header": "x-beta", "equals": "1"}, "serve": "on"}]},
          "b": {"rules": [{"when": {"all": [{"header": "x-beta", "equals": "1"},
                                            {"attr": "path", "prefix": "/checkout"}]},
                           "serve": "on"}]},
          "c": {"rules": [{"when": {"header": "x-beta", "equals": "1", "negate": true}, "serve": "on"}]},
          "d": {"rules": [{"when": {"header": "x-other", "equals": "1"}, "serve": "on"}]},
          "e": {"rules": [{"when": {"segment": "eu"}, "serve": "on"}]}}}"#,
    );
    // `eu` is segment 0; the test `a` and `b` share is the next id, for both.
    assert!(
        matches!(first_when(&p, "a"), Cond::Segment(1, inner) if matches!(**inner, Cond::Leaf(_)))
    );
    let Cond::All(b) = first_when(&p, "b") else {
        panic!("{:?}", first_when(&p, "b"));
    };
    assert!(matches!(b[0], Cond::Segment(1, _)), "{b:?}");
    // The path test, the negated one and `d`'s are made once each: left as they are.
    assert!(matches!(b[1], Cond::Leaf(_)), "{b:?}");
    assert!(matches!(first_when(&p, "c"), Cond::Leaf(_)));
    assert!(matches!(first_when(&p, "d"), Cond::Leaf(_)));
    assert!(matches!(first_when(&p, "e"), Cond::Segment(0, _)));
    let beta = Req::new()
        .set(":path", "/checkout/cart")
        .header("x-beta", "1");
    let decision = beta.eval(&p);
    let got = |d: &_| ["a", "b", "c", "d"].map(|f| variant(&p, d, f).to_string());
    assert_eq!(got(&decision), ["on", "on", "off", "off"]);
    let decision = Req::new().set(":path", "/checkout/cart").eval(&p);
    assert_eq!(got(&decision), ["off", "off", "on", "off"]);
}

#[test]
fn unnamed_segments_stop_where_a_request_stops_remembering() {
    // 70 tests, each made by two flags: the first 64 (with the one named segment) are shared.
    let flags: Vec<String> = (0..140)
        .map(|i| {
            format!(
                r#""f{i:03}": {{"rules": [{{"when": {{"header": "x-k{}", "equals": "1"}}, "serve": "on"}}]}}"#,
                i / 2
            )
        })
        .collect();
    let p = plan(&format!(
        r#"{{"version": 1, "segments": {{"s": {{"header": "x-s", "equals": "1"}}}},
        "flags": {{{}}}}}"#,
        flags.join(",")
    ));
    let shared = p
        .flags
        .iter()
        .filter(|f| matches!(f.rules[0].when, Some(Cond::Segment(..))))
        .count();
    assert_eq!(shared, 2 * 63);
    let mut req = Req::new();
    for k in (0..70usize).filter(|k| k.is_multiple_of(3)) {
        req = req.header(&format!("x-k{k}"), "1");
    }
    let decision = req.eval(&p);
    for (i, flag) in p.flags.iter().enumerate() {
        let k: usize = flag.name[1..].parse::<usize>().unwrap() / 2;
        let want = if k.is_multiple_of(3) { "on" } else { "off" };
        assert_eq!(
            variant(&p, &decision, &flag.name),
            want,
            "{} (x-k{k}) at {i}",
            flag.name
        );
    }
}

#[test]
fn every_text_operator_is_shared_and_only_with_the_same_subject_operand_and_case() {
    let tests = [
        r#"{"header": "x-t", "equals": "a"}"#,
        r#"{"header": "x-t", "in": ["a", "b"]}"#,
        r#"{"attr": "path", "prefix": "/a"}"#,
        r#"{"cookie": "t", "suffix": "a"}"#,
        r#"{"query": "t", "contains": "a", "ignore_case": true}"#,
    ];
    // Each test twice (shared), and once with one thing changed (not shared with it).
    let changed = [
        r#"{"header": "x-u", "equals": "a"}"#,
        r#"{"header": "x-t", "in": ["a", "c"]}"#,
        r#"{"attr": "path", "prefix": "/b"}"#,
        r#"{"cookie": "u", "suffix": "a"}"#,
        r#"{"query": "t", "contains": "a"}"#,
    ];
    let rule = |when: &str| format!(r#"{{"rules": [{{"when": {when}, "serve": "on"}}]}}"#);
    let mut flags = Vec::new();
    for (i, (test, other)) in tests.iter().zip(changed).enumerate() {
        flags.push(format!(r#""t{i}-1": {}"#, rule(test)));
        flags.push(format!(r#""t{i}-2": {}"#, rule(test)));
        flags.push(format!(r#""t{i}-x": {}"#, rule(other)));
    }
    let p = plan(&format!(
        r#"{{"version": 1, "flags": {{{}}}}}"#,
        flags.join(",")
    ));
    let mut ids = Vec::new();
    for i in 0..tests.len() {
        let (Cond::Segment(a, _), Cond::Segment(b, _)) = (
            first_when(&p, &format!("t{i}-1")),
            first_when(&p, &format!("t{i}-2")),
        ) else {
            panic!("test {i}: {:?}", first_when(&p, &format!("t{i}-1")));
        };
        assert_eq!(a, b, "test {i}");
        ids.push(*a);
        assert!(
            matches!(first_when(&p, &format!("t{i}-x")), Cond::Leaf(_)),
            "test {i}'s variant"
        );
    }
    assert_eq!(ids, [0, 1, 2, 3, 4]);
}
