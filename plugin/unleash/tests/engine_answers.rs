//! What the Unleash engine answers a caller, beyond the client specification: each context
//! field reaches the constraint that names it, random stickiness uses the caller's source,
//! parents and variants decide dependent features, warnings say what evaluates to off and
//! why, and features are listed and addressed by id.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::cell::Cell;

use sluice_unleash::{Context, Delta, DeltaEvent, Engine, Payload, DISABLED_VARIANT};

fn engine(features: &str) -> Engine {
    Engine::new(
        Payload::from_json(&format!(r#"{{"version": 2, "features": [{features}]}}"#)).unwrap(),
    )
}

/// A feature on when `field` is one of `values`.
fn on_when(field: &str, operator: &str, values: &str) -> Engine {
    engine(&format!(
        r#"{{"name": "f", "enabled": true, "strategies": [{{"name": "default", "constraints": [
            {{"contextName": "{field}", "operator": "{operator}", "values": [{values}], "value": {first}}}]}}]}}"#,
        first = values.split(',').next().unwrap(),
    ))
}

#[test]
fn each_context_field_reaches_its_constraint() {
    let props = [("tenant", "acme"), ("tenant", "other"), ("plan", "pro")];
    let full = Context::new()
        .user_id("u1")
        .session_id("s1")
        .remote_address("10.1.2.3")
        .environment("production")
        .app_name("web")
        .hostname("edge-1")
        .current_time_millis(1_795_705_200_000)
        .properties(&props);
    for (field, value) in [
        ("userId", "u1"),
        ("sessionId", "s1"),
        ("remoteAddress", "10.1.2.3"),
        ("environment", "production"),
        ("appName", "web"),
        // The first pair with a name wins.
        ("tenant", "acme"),
        ("plan", "pro"),
    ] {
        let e = on_when(field, "IN", &format!("\"{value}\""));
        assert!(e.is_enabled("f", &full), "{field} = {value}");
        assert!(!e.is_enabled("f", &Context::new()), "{field} unset");
        let other = on_when(field, "IN", "\"something else\"");
        assert!(!other.is_enabled("f", &full), "{field} ≠ something else");
    }
    // The other fields do not stand in for one another.
    let e = on_when("sessionId", "IN", "\"u1\"");
    assert!(!e.is_enabled("f", &full));
    let e = on_when("tenant", "IN", "\"other\"");
    assert!(!e.is_enabled("f", &full));
    // currentTime is read as the context's time, only by the date operators.
    let e = on_when("currentTime", "DATE_AFTER", "\"2026-11-26T14:00:00Z\"");
    assert!(e.is_enabled("f", &full));
    assert!(!e.is_enabled("f", &Context::new()));
    let e = on_when("currentTime", "DATE_AFTER", "\"2026-11-26T16:00:00Z\"");
    assert!(!e.is_enabled("f", &full));
    let e = on_when("currentTime", "IN", "\"1795705200000\"");
    assert!(!e.is_enabled("f", &full), "currentTime is no text");
    // The remote address is read as an IP, Envoy's ip:port too.
    let e = on_when("remoteAddress", "IN_CIDR", "\"10.0.0.0/8\"");
    assert!(e.is_enabled("f", &full));
    assert!(e.is_enabled("f", &Context::new().remote_address("10.9.9.9:443")));
    assert!(!e.is_enabled("f", &Context::new().remote_address("11.0.0.1")));
    // The host name feeds applicationHostname.
    let e = engine(
        r#"{"name": "f", "enabled": true, "strategies": [
            {"name": "applicationHostname", "parameters": {"hostNames": "edge-1,edge-2"}}]}"#,
    );
    assert!(e.is_enabled("f", &full));
    assert!(!e.is_enabled("f", &Context::new().hostname("edge-3")));
}

#[test]
fn random_rollouts_draw_from_the_callers_source() {
    let e = engine(
        r#"{"name": "f", "enabled": true, "strategies": [
            {"name": "gradualRolloutRandom", "parameters": {"percentage": "30"}}]}"#,
    );
    // A source that walks evenly over u32: 30% of draws land in the first 30 buckets.
    let next = Cell::new(0u32);
    let source = || {
        let n = next.get();
        next.set(n.wrapping_add(1));
        n
    };
    let ctx = Context::new().random(&source);
    let on = (0..1000).filter(|_| e.is_enabled("f", &ctx)).count();
    assert_eq!(on, 300);
    // Without a source every draw is the first bucket: on for any share above 0%.
    assert!(e.is_enabled("f", &Context::new()));
    let none = engine(
        r#"{"name": "f", "enabled": true, "strategies": [
            {"name": "gradualRolloutRandom", "parameters": {"percentage": "0"}}]}"#,
    );
    assert!(!none.is_enabled("f", &Context::new()));
}

#[test]
fn features_are_counted_listed_and_addressed_by_id() {
    let empty = engine("");
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    let e = engine(
        r#"{"name": "b", "enabled": true}, {"name": "a", "enabled": false},
           {"name": "c", "enabled": true, "variants": [{"name": "v", "weight": 1,
             "payload": {"type": "string", "value": "hi"}}]}"#,
    );
    assert!(!e.is_empty());
    assert_eq!(e.len(), 3);
    let ctx = Context::new().user_id("u");
    for (id, name) in e.features() {
        assert_eq!(e.id(name), Some(id));
        assert_eq!(e.is_enabled_id(id, &ctx), e.is_enabled(name, &ctx));
        assert_eq!(e.evaluate(id, &ctx), e.variant(name, &ctx));
    }
    assert_eq!(e.id("zzz"), None);
    let a = e.variant("a", &ctx);
    assert_eq!(
        (a.name, a.enabled, a.feature_enabled),
        (DISABLED_VARIANT, false, false)
    );
    let b = e.variant("b", &ctx);
    assert_eq!(
        (b.name, b.enabled, b.feature_enabled),
        (DISABLED_VARIANT, false, true)
    );
    assert_eq!(b.payload, None);
    let c = e.variant("c", &ctx);
    assert_eq!((c.name, c.enabled, c.feature_enabled), ("v", true, true));
    assert_eq!(c.payload.unwrap().value, "hi");
    let unknown = e.variant("zzz", &ctx);
    assert_eq!(
        (unknown.name, unknown.enabled, unknown.feature_enabled),
        (DISABLED_VARIANT, false, false)
    );
    // An id from a larger engine is no feature here.
    let big = engine(
        r#"{"name": "a", "enabled": true}, {"name": "b", "enabled": true},
           {"name": "c", "enabled": true}, {"name": "d", "enabled": true}"#,
    );
    let d = big.id("d").unwrap();
    assert!(!e.is_enabled_id(d, &ctx));
    assert_eq!(e.evaluate(d, &ctx).name, DISABLED_VARIANT);
    assert!(!e.evaluate(d, &ctx).feature_enabled);
}

#[test]
fn a_strategy_list_is_on_when_any_strategy_is() {
    let e = engine(
        r#"{"name": "f", "enabled": true, "strategies": [
            {"name": "userWithId", "parameters": {"userIds": "a"}},
            {"name": "userWithId", "parameters": {"userIds": "b"}}]}"#,
    );
    assert!(e.is_enabled("f", &Context::new().user_id("a")));
    assert!(e.is_enabled("f", &Context::new().user_id("b")));
    assert!(!e.is_enabled("f", &Context::new().user_id("c")));
    // A disabled feature is off whatever its strategies say.
    let off = engine(r#"{"name": "f", "enabled": false, "strategies": [{"name": "default"}]}"#);
    assert!(!off.is_enabled("f", &Context::new()));
    assert!(!off.variant("f", &Context::new()).feature_enabled);
}

#[test]
fn dependent_features_follow_their_parents_state_and_variant() {
    let e = engine(
        r#"{"name": "parent", "enabled": true, "strategies": [
             {"name": "userWithId", "parameters": {"userIds": "on-user,red-user"}}],
           "variants": [{"name": "blue", "weight": 1},
                        {"name": "red", "weight": 0,
                         "overrides": [{"contextName": "userId", "values": ["red-user"]}]}]},
           {"name": "off-parent", "enabled": false},
           {"name": "needs-on", "enabled": true, "dependencies": [{"feature": "parent", "enabled": true}]},
           {"name": "needs-off", "enabled": true, "dependencies": [{"feature": "parent", "enabled": false}]},
           {"name": "needs-blue-or-red", "enabled": true,
            "dependencies": [{"feature": "parent", "variants": ["blue", "red"]}]},
           {"name": "needs-red", "enabled": true,
            "dependencies": [{"feature": "parent", "variants": ["red"]}]},
           {"name": "needs-both", "enabled": true,
            "dependencies": [{"feature": "parent"}, {"feature": "off-parent", "enabled": false}]},
           {"name": "needs-off-parent", "enabled": true, "dependencies": [{"feature": "off-parent"}]},
           {"name": "child-off", "enabled": false, "dependencies": [{"feature": "parent"}]}"#,
    );
    let on = Context::new().user_id("on-user");
    let red = Context::new().user_id("red-user");
    let off = Context::new().user_id("nobody");
    let answers = |ctx: &Context<'_>| -> Vec<&str> {
        e.feature_names()
            .filter(|name| e.is_enabled(name, ctx))
            .collect()
    };
    assert_eq!(
        answers(&on),
        ["needs-blue-or-red", "needs-both", "needs-on", "parent"]
    );
    assert_eq!(
        answers(&red),
        [
            "needs-blue-or-red",
            "needs-both",
            "needs-on",
            "needs-red",
            "parent"
        ]
    );
    assert_eq!(answers(&off), ["needs-off"]);
    // A dependent feature's own variant is its own (it has none here).
    let v = e.variant("needs-red", &red);
    assert_eq!((v.name, v.feature_enabled), (DISABLED_VARIANT, true));
    assert!(e.warnings().is_empty(), "{:?}", e.warnings());
}

#[test]
fn warnings_say_where_and_whether_the_engine_lacks_something() {
    let e = engine(
        r#"{"name": "f", "enabled": true, "strategies": [
            {"name": "myCustomStrategy"},
            {"name": "default", "constraints": [
               {"contextName": "x", "operator": "NUM_GT", "value": "many"},
               {"contextName": "x", "operator": "STR_MATCHES", "values": ["a"]}]}]},
           {"name": "g", "enabled": true, "dependencies": [{"feature": "nope"}]}"#,
    );
    let warnings: Vec<(String, bool)> = e
        .warnings()
        .iter()
        .map(|w| (w.to_string(), w.unknown))
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    for (text, unknown) in &warnings {
        let expect_unknown = text.contains("unknown");
        assert_eq!(*unknown, expect_unknown, "{text}");
    }
    assert!(
        warnings[0].0.starts_with("features[\"f\"].strategies[0]: "),
        "{warnings:?}"
    );
    assert!(warnings[0].1);
    assert!(
        warnings[1]
            .0
            .starts_with("features[\"f\"].strategies[1].constraints[0]: "),
        "{warnings:?}"
    );
    assert!(!warnings[1].1);
    assert!(
        warnings[2]
            .0
            .starts_with("features[\"f\"].strategies[1].constraints[1]: "),
        "{warnings:?}"
    );
    assert!(warnings[2].1);
    assert_eq!(
        warnings[3].0,
        "features[\"g\"].dependencies: parent \"nope\" does not exist; the feature is never on"
    );
    assert!(!warnings[3].1);
    let w = &e.warnings()[3];
    assert_eq!(w.to_string(), format!("{}: {}", w.path, w.message));
    assert!(!e.is_enabled("f", &Context::new()) && !e.is_enabled("g", &Context::new()));
}

#[test]
fn segment_constraints_are_compiled_with_their_path() {
    let e = Engine::new(
        Payload::from_json(
            r#"{"version": 2, "features": [{"name": "f", "enabled": true,
                 "strategies": [{"name": "default", "segments": [5]}]}],
               "segments": [{"id": 5, "constraints": [
                 {"contextName": "userId", "operator": "IN", "values": ["a"]},
                 {"contextName": "userId", "operator": "SEMVER_EQ", "value": "not-a-version"}]}]}"#,
        )
        .unwrap(),
    );
    assert_eq!(e.warnings().len(), 1, "{:?}", e.warnings());
    assert!(
        e.warnings()[0]
            .path
            .starts_with("segments[id=5].constraints[1]"),
        "{:?}",
        e.warnings()
    );
    assert!(!e.is_enabled("f", &Context::new().user_id("a")));
}

#[test]
fn an_engine_built_from_deltas_answers_like_one_built_from_the_payload() {
    let delta = Delta::from_json(
        r#"{"events": [
          {"eventId": 1, "type": "hydration",
           "features": [{"name": "a", "enabled": true, "strategies": [{"name": "default", "segments": [1]}]}],
           "segments": [{"id": 1, "constraints": [{"contextName": "appName", "operator": "IN", "values": ["web"]}]}]},
          {"eventId": 2, "type": "feature-updated", "feature": {"name": "b", "enabled": true}}
        ]}"#,
    )
    .unwrap();
    let mut e = Engine::from_delta(delta);
    let web = Context::new().app_name("web");
    assert_eq!(e.feature_names().collect::<Vec<_>>(), ["a", "b"]);
    assert!(e.is_enabled("a", &web) && !e.is_enabled("a", &Context::new()));
    assert_eq!(e.payload().features.len(), 2);
    e.apply_event(DeltaEvent::FeatureUpdated {
        event_id: 3,
        feature: Payload::from_json(
            r#"{"version": 1, "features": [{"name": "b", "enabled": false}]}"#,
        )
        .unwrap()
        .features
        .remove(0),
    });
    assert!(!e.is_enabled("b", &web), "the event is compiled at once");
    e.apply_event(DeltaEvent::FeatureRemoved {
        event_id: 4,
        feature_name: "a".into(),
        project: None,
    });
    assert_eq!(e.feature_names().collect::<Vec<_>>(), ["b"]);
    assert_eq!(e.len(), 1);
}
