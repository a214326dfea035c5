//! Unleash toggles written like native flags: pushed payload, context
//! mapping, per-feature headers, fallbacks before any payload.
mod common;
use common::{plan, Req};

const PAYLOAD: &str = r##"{"version": 2, "features": [
  {"name": "new-checkout", "enabled": true, "strategies": [
     {"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "userId", "groupId": "new-checkout"},
      "constraints": [{"contextName": "country", "operator": "IN", "values": ["DE", "FR"]}]}]},
  {"name": "banner", "enabled": true, "strategies": [{"name": "default"}],
   "variants": [{"name": "blue", "weight": 1000, "weightType": "variable", "stickiness": "default",
                 "payload": {"type": "string", "value": "#0000ff"}}]},
  {"name": "old-thing", "enabled": false, "strategies": [{"name": "default"}]},
  {"name": "staff-only", "enabled": true, "strategies": [{"name": "userWithId", "parameters": {"userIds": "u-1,u-2"}}]},
  {"name": "prod-only", "enabled": true, "strategies": [{"name": "default",
     "constraints": [{"contextName": "environment", "operator": "IN", "values": ["production"]}]}]}
]}"##;

fn config(extra: &str) -> String {
    format!(
        r#"{{"version": 1,
        "identity": {{"user": [{{"header": "x-user-id"}}]}},
        "flags": {{"native": {{"rules": [{{"serve": "on"}}]}}}},
        "unleash": {{"payload": {PAYLOAD},
            "context": {{"environment": "production", "app_name": "shop",
                         "properties": {{"country": {{"header": "x-country"}}}}}},
            "headers": {{"banner": "x-banner"}} {extra}}}}}"#
    )
}

#[test]
fn unleash_features_join_the_flags_header_with_the_unleash_answer() {
    let p = plan(&config(""));
    let h = Req::new().user("u-1").header("x-country", "DE").headers(&p);
    assert_eq!(
        h["x-sluice-flags"],
        "native=on;banner=blue;new-checkout=on;old-thing=off;prod-only=on;staff-only=on",
        "native flags, then Unleash features, each sorted by name (not in payload order)"
    );
    assert_eq!(
        h["x-banner"], "#0000ff",
        "the variant's payload value goes in the feature's header"
    );
    let other = Req::new().user("u-9").header("x-country", "US").headers(&p);
    assert_eq!(
        other["x-sluice-flags"],
        "native=on;banner=blue;new-checkout=off;old-thing=off;prod-only=on;staff-only=off"
    );
}

#[test]
fn a_feature_list_limits_what_is_written_and_before_a_payload_it_is_off() {
    let listed = plan(&config(r#", "features": ["staff-only", "gone"]"#));
    let h = Req::new().user("u-2").headers(&listed);
    assert_eq!(h["x-sluice-flags"], "native=on;gone=off;staff-only=on");

    let polled_only = plan(
        r#"{"version": 1, "unleash": {"poll": {"cluster": "unleash"}, "features": ["a", "b"]}}"#,
    );
    assert_eq!(
        Req::new().headers(&polled_only)["x-sluice-flags"],
        "a=off;b=off"
    );
    let pass = plan(
        r#"{"version": 1, "unleash": {"poll": {"cluster": "unleash"}, "features": ["a"], "before_first_payload": "pass_through"}}"#,
    );
    assert!(!Req::new().headers(&pass).contains_key("x-sluice-flags"));
}

#[test]
fn bad_unleash_sections_are_rejected_with_their_path() {
    let cases = [
        (
            r#"{"version": 1, "unleash": {}}"#,
            "unleash: give a payload, a poll, or both",
        ),
        (
            r#"{"version": 1, "unleash": {"payload": {"version": 2, "features": [{"name": "x", "enabled": "yes"}]}}}"#,
            "unleash.payload.features[0].enabled:",
        ),
        (
            r#"{"version": 1, "unleash": {"poll": {"cluster": "u", "interval": "100ms"}}}"#,
            "unleash.poll.interval: must be at least 1s",
        ),
        (
            r#"{"version": 1, "unleash": {"poll": {"cluster": "u", "authorization": "t\r\nx: y"}}}"#,
            "unleash.poll.authorization: value contains control character",
        ),
        (
            r#"{"version": 1, "flags": {"a": {}}, "unleash": {"poll": {"cluster": "u"}, "features": ["a"]}}"#,
            "unleash.features[0]: `a` is also a native flag",
        ),
        (
            r#"{"version": 1, "flags": {"a": {"header": "x-a"}}, "unleash": {"poll": {"cluster": "u"}, "headers": {"b": "x-a"}}}"#,
            "unleash.headers.b: header `x-a` is already written by flags.a.header",
        ),
    ];
    for (json, expected) in cases {
        let err = sluice_core::compile::load(json.as_bytes())
            .expect_err(json)
            .to_string();
        assert!(
            err.contains(expected),
            "{json}\n got {err}\n want {expected}"
        );
    }
}
