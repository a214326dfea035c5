//! Reading Unleash payloads and delta responses as a poller relies on it: every field lands
//! where the evaluation looks for it, a wrong type is an error naming its path and what was
//! found, `null` reads as absent, and of a repeated key the last one counts.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_unleash::model::{Dependency, Meta, Operator, Override, Variant};
use sluice_unleash::{Delta, DeltaEvent, Error, Payload, VariantPayload};

fn payload_error(json: &str) -> String {
    Payload::from_json(json).unwrap_err().to_string()
}

fn feature_error(feature: &str) -> String {
    payload_error(&format!(r#"{{"version": 1, "features": [{feature}]}}"#))
}

#[test]
fn every_field_of_a_full_payload_is_read() {
    let payload = Payload::from_json(
        r#"{"version": 2,
          "features": [{
            "name": "checkout", "enabled": true, "type": "release", "project": "shop",
            "impressionData": true,
            "strategies": [{
              "name": "flexibleRollout",
              "parameters": {"rollout": 50, "stickiness": "default", "groupId": "checkout",
                             "on": true, "gone": null},
              "constraints": [{"contextName": "appName", "operator": "NUM_GT", "value": 3,
                               "inverted": true, "caseInsensitive": true}],
              "segments": [4, -2],
              "variants": [{"name": "s", "weight": 7, "stickiness": "tenant"}]
            }],
            "variants": [{"name": "a", "weight": 1000, "weightType": "fix",
                          "stickiness": "default", "payload": {"type": "json", "value": "{}"},
                          "overrides": [{"contextName": "userId", "values": ["1", "2"]}]}],
            "dependencies": [{"feature": "parent", "enabled": false, "variants": ["x"]}]
          }, {"name": "plain", "enabled": false}],
          "segments": [{"id": -7, "name": "beta", "constraints": [
            {"contextName": "userId", "operator": "IN", "values": ["u"]}]}],
          "meta": {"revisionId": 42, "etag": "\"e:42\"", "queryHash": "q"}}"#,
    )
    .unwrap();
    assert_eq!(payload.version, 2);
    let f = &payload.features[0];
    assert_eq!(f.name, "checkout");
    assert!(f.enabled);
    assert_eq!(f.feature_type.as_deref(), Some("release"));
    assert_eq!(f.project.as_deref(), Some("shop"));
    assert!(f.impression_data);
    let s = &f.strategies[0];
    assert_eq!(s.name, "flexibleRollout");
    // Parameters sorted by name; numbers and booleans as their text; nulls dropped.
    assert_eq!(
        s.parameters,
        [
            ("groupId".to_string(), "checkout".to_string()),
            ("on".to_string(), "true".to_string()),
            ("rollout".to_string(), "50".to_string()),
            ("stickiness".to_string(), "default".to_string()),
        ]
    );
    assert_eq!(s.parameter("rollout"), Some("50"));
    assert_eq!(s.parameter("gone"), None);
    let c = &s.constraints[0];
    assert_eq!(c.context_name, "appName");
    assert_eq!(c.operator, Operator::NumGt);
    assert_eq!(c.value.as_deref(), Some("3"));
    assert!(c.values.is_empty());
    assert!(c.inverted && c.case_insensitive);
    assert_eq!(s.segments, [4, -2]);
    assert_eq!(s.variants[0].name, "s");
    assert_eq!(s.variants[0].weight, 7);
    assert_eq!(s.variants[0].stickiness.as_deref(), Some("tenant"));
    assert_eq!(
        f.variants,
        [Variant {
            name: "a".into(),
            weight: 1000,
            weight_type: Some("fix".into()),
            stickiness: Some("default".into()),
            payload: Some(VariantPayload {
                payload_type: "json".into(),
                value: "{}".into(),
            }),
            overrides: vec![Override {
                context_name: "userId".into(),
                values: vec!["1".into(), "2".into()],
            }],
        }]
    );
    assert_eq!(
        f.dependencies,
        [Dependency {
            feature: "parent".into(),
            enabled: Some(false),
            variants: vec!["x".into()],
        }]
    );
    // Omitted fields take their defaults.
    let plain = &payload.features[1];
    assert!(!plain.enabled && !plain.impression_data);
    assert!(plain.strategies.is_empty() && plain.variants.is_empty());
    assert_eq!(
        (plain.project.as_deref(), plain.feature_type.as_deref()),
        (None, None)
    );
    let segment = &payload.segments[0];
    assert_eq!((segment.id, segment.name.as_deref()), (-7, Some("beta")));
    assert_eq!(segment.constraints[0].values, ["u"]);
    assert!(!segment.constraints[0].inverted && !segment.constraints[0].case_insensitive);
    assert_eq!(
        payload.meta,
        Some(Meta {
            revision_id: Some(42),
            etag: Some("\"e:42\"".into()),
            query_hash: Some("q".into()),
        })
    );
    assert_eq!(Payload::from_json(r#"{"version": 1}"#).unwrap().meta, None);
}

#[test]
fn every_operator_name_is_known() {
    let names = [
        ("IN", Operator::In),
        ("NOT_IN", Operator::NotIn),
        ("STR_STARTS_WITH", Operator::StrStartsWith),
        ("STR_ENDS_WITH", Operator::StrEndsWith),
        ("STR_CONTAINS", Operator::StrContains),
        ("NUM_EQ", Operator::NumEq),
        ("NUM_GT", Operator::NumGt),
        ("NUM_GTE", Operator::NumGte),
        ("NUM_LT", Operator::NumLt),
        ("NUM_LTE", Operator::NumLte),
        ("DATE_AFTER", Operator::DateAfter),
        ("DATE_BEFORE", Operator::DateBefore),
        ("SEMVER_EQ", Operator::SemverEq),
        ("SEMVER_GT", Operator::SemverGt),
        ("SEMVER_GTE", Operator::SemverGte),
        ("SEMVER_LT", Operator::SemverLt),
        ("SEMVER_LTE", Operator::SemverLte),
        ("REGEX", Operator::Regex),
        ("IN_CIDR", Operator::InCidr),
    ];
    for (name, operator) in names {
        assert_eq!(Operator::parse(name), operator, "{name}");
    }
    assert_eq!(Operator::parse("in"), Operator::Unknown("in".into()));
}

#[test]
fn wrong_types_name_their_path_and_what_was_found() {
    for (feature, expected) in [
        (
            r#"{"name": "a", "enabled": "yes"}"#,
            "features[0].enabled: expected a boolean, found string \"yes\"",
        ),
        (r#"{"name": true, "enabled": true}"#, "features[0].name: expected a string, found boolean `true`"),
        (r#"{"name": 12.5, "enabled": true}"#, "features[0].name: expected a string, found number 12.5"),
        (r#"{"name": [], "enabled": true}"#, "features[0].name: expected a string, found an array"),
        (r#"{"name": {}, "enabled": true}"#, "features[0].name: expected a string, found an object"),
        (r#"{"name": "a", "enabled": 1}"#, "features[0].enabled: expected a boolean, found number 1"),
        (
            r#"{"name": "a", "enabled": true, "impressionData": "no"}"#,
            "features[0].impressionData: expected a boolean, found string \"no\"",
        ),
        (
            r#"{"name": "a", "enabled": true, "strategies": {}}"#,
            "features[0].strategies: expected an array, found an object",
        ),
        (
            r#"{"name": "a", "enabled": true, "strategies": [{"name": "d", "parameters": []}]}"#,
            "features[0].strategies[0].parameters: expected an object, found an array",
        ),
        (
            r#"{"name": "a", "enabled": true, "strategies": [{"name": "d", "parameters": {"x": [1]}}]}"#,
            "features[0].strategies[0].parameters.x: expected a string, number or boolean, found an array",
        ),
        (
            r#"{"name": "a", "enabled": true, "strategies": [{"name": "d", "segments": ["1"]}]}"#,
            "features[0].strategies[0].segments[0]: expected a whole number, found string \"1\"",
        ),
        (
            r#"{"name": "a", "enabled": true, "strategies": [{"name": "d", "segments": [1.5]}]}"#,
            "features[0].strategies[0].segments[0]: expected a whole number, found number 1.5",
        ),
        (
            r#"{"name": "a", "enabled": true, "strategies": [{"name": "d", "constraints": [
                {"contextName": "x", "operator": "NUM_EQ", "value": {}}]}]}"#,
            "features[0].strategies[0].constraints[0].value: expected a string, number or boolean, found an object",
        ),
        (
            r#"{"name": "a", "enabled": true, "variants": [{"name": "v", "weight": -1}]}"#,
            "features[0].variants[0].weight: expected a whole number ≥ 0, found number -1",
        ),
        (
            r#"{"name": "a", "enabled": true, "variants": [{"name": "v", "weight": 4294967296}]}"#,
            "features[0].variants[0].weight: weight is too large",
        ),
        (
            r#"{"name": "a", "enabled": true, "variants": [{"name": "v", "payload": {"type": "string"}}]}"#,
            "features[0].variants[0].payload: missing field `value`",
        ),
        (
            r#"{"name": "a", "enabled": true, "variants": [{"name": "v", "payload": "text"}]}"#,
            "features[0].variants[0].payload: expected an object, found string \"text\"",
        ),
        (
            r#"{"name": "a", "enabled": true, "variants": [{"name": "v", "overrides": [{"contextName": "userId", "values": [1]}]}]}"#,
            "features[0].variants[0].overrides[0].values[0]: expected a string, found number 1",
        ),
        (
            r#"{"name": "a", "enabled": true, "dependencies": [{"feature": "p", "enabled": "on"}]}"#,
            "features[0].dependencies[0].enabled: expected a boolean, found string \"on\"",
        ),
        (r#"7"#, "features[0]: expected an object, found number 7"),
        (r#"[null]"#, "features[0]: expected an object, found an array"),
    ] {
        assert_eq!(feature_error(feature), expected, "{feature}");
    }
    for (json, expected) in [
        (r#"{"features": []}"#, "missing field `version`"),
        (
            r#"{"version": "2"}"#,
            "version: expected a whole number ≥ 0, found string \"2\"",
        ),
        (r#"{"version": null}"#, "missing field `version`"),
        (
            r#"{"version": 1, "meta": {"revisionId": "x"}}"#,
            "meta.revisionId: expected a whole number ≥ 0, found string \"x\"",
        ),
        (
            r#"{"version": 1, "meta": {"etag": 1}}"#,
            "meta.etag: expected a string, found number 1",
        ),
        (
            r#"{"version": 1, "segments": [{"name": "s"}]}"#,
            "segments[0]: missing field `id`",
        ),
        (
            r#"{"version": 1, "segments": [{"id": "1"}]}"#,
            "segments[0].id: expected a whole number, found string \"1\"",
        ),
        (
            r#"{"version": 1, "segments": [{"id": 1, "name": false}]}"#,
            "segments[0].name: expected a string, found boolean `false`",
        ),
        (r#"null"#, "expected an object, found null"),
    ] {
        assert_eq!(payload_error(json), expected, "{json}");
    }
}

#[test]
fn an_error_without_a_path_is_its_message_alone() {
    let err = Error {
        path: String::new(),
        message: "missing field `version`".into(),
    };
    assert_eq!(err.to_string(), "missing field `version`");
    let err = Error {
        path: "features[0]".into(),
        message: "missing field `name`".into(),
    };
    assert_eq!(err.to_string(), "features[0]: missing field `name`");
}

#[test]
fn syntax_errors_say_where() {
    let err = Payload::from_json("{\"version\": 1,\n  \"features\": [}").unwrap_err();
    assert_eq!(err.path, "features[0]");
    assert!(err.message.ends_with("at line 2 column 16"), "{err}");
    let err = Payload::from_slice(b"{\"version\": tru}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "version: expected ident at line 1 column 16"
    );
}

#[test]
fn null_reads_as_absent_and_the_last_repeated_key_counts() {
    let payload = Payload::from_json(
        r#"{"version": 1, "version": 3, "features": [
            {"name": "a", "enabled": false, "enabled": true, "project": null, "type": null,
             "strategies": null, "variants": null, "dependencies": null, "impressionData": null,
             "strategies": [{"name": "default", "constraints": null, "segments": null,
               "parameters": {"b": "1", "a": "x", "b": "2"}}]},
            {"name": "b", "enabled": true, "strategies": [{"name": "default", "parameters": null}]}
        ], "segments": null, "meta": null}"#,
    )
    .unwrap();
    assert_eq!(payload.version, 3);
    let a = &payload.features[0];
    assert!(a.enabled);
    assert_eq!(
        (a.project.as_deref(), a.feature_type.as_deref()),
        (None, None)
    );
    assert!(a.variants.is_empty() && a.dependencies.is_empty() && !a.impression_data);
    assert_eq!(a.strategies.len(), 1);
    assert_eq!(
        a.strategies[0].parameters,
        [
            ("a".to_string(), "x".to_string()),
            ("b".to_string(), "2".to_string())
        ]
    );
    assert!(payload.features[1].strategies[0].parameters.is_empty());
    assert!(payload.segments.is_empty() && payload.meta.is_none());
}

#[test]
fn delta_events_are_read_with_their_fields() {
    let delta = Delta::from_slice(
        br#"{"events": [
          {"eventId": 10, "type": "hydration", "features": [{"name": "a", "enabled": true}]},
          {"eventId": 11, "type": "feature-updated", "feature": {"name": "b", "enabled": false}},
          {"eventId": 12, "type": "feature-removed", "featureName": "a", "project": "shop"},
          {"eventId": 13, "type": "feature-removed", "featureName": "c"},
          {"eventId": 14, "type": "segment-updated", "segment": {"id": 3, "constraints": []}},
          {"eventId": 15, "type": "segment-removed", "segmentId": 3}
        ]}"#,
    )
    .unwrap();
    let ids: Vec<u64> = delta.events.iter().map(DeltaEvent::event_id).collect();
    assert_eq!(ids, [10, 11, 12, 13, 14, 15]);
    match &delta.events[0] {
        DeltaEvent::Hydration {
            features, segments, ..
        } => {
            assert_eq!(features.len(), 1);
            assert!(segments.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        delta.events[2],
        DeltaEvent::FeatureRemoved {
            event_id: 12,
            feature_name: "a".into(),
            project: Some("shop".into()),
        }
    );
    assert_eq!(
        delta.events[3],
        DeltaEvent::FeatureRemoved {
            event_id: 13,
            feature_name: "c".into(),
            project: None,
        }
    );
    assert_eq!(
        delta.events[5],
        DeltaEvent::SegmentRemoved {
            event_id: 15,
            segment_id: 3,
        }
    );
    assert_eq!(
        Delta::from_json(r#"{"events": []}"#).unwrap(),
        Delta::default()
    );
}

#[test]
fn delta_errors_name_the_event_and_field() {
    for (json, expected) in [
        (r#"{}"#, "missing field `events`"),
        (r#"{"events": null}"#, "missing field `events`"),
        (
            r#"{"events": [{"type": "hydration", "features": []}]}"#,
            "events[0]: missing field `eventId`",
        ),
        (
            r#"{"events": [{"eventId": 1, "features": []}]}"#,
            "events[0]: missing field `type`",
        ),
        (
            r#"{"events": [{"eventId": 1, "type": "hydration"}]}"#,
            "events[0]: missing field `features`",
        ),
        (
            r#"{"events": [{"eventId": 1, "type": "feature-removed"}]}"#,
            "events[0]: missing field `featureName`",
        ),
        (
            r#"{"events": [{"eventId": 1, "type": "segment-updated"}]}"#,
            "events[0]: missing field `segment`",
        ),
        (
            r#"{"events": [{"eventId": 1, "type": "segment-removed"}]}"#,
            "events[0]: missing field `segmentId`",
        ),
        (
            r#"{"events": [{"eventId": 1, "type": "segment-removed", "segmentId": "3"}]}"#,
            "events[0].segmentId: expected a whole number, found string \"3\"",
        ),
        (
            r#"{"events": [{"eventId": 1, "type": "segment-updated", "segment": {"id": 1, "constraints": {}}}]}"#,
            "events[0].segment.constraints: expected an array, found an object",
        ),
        (
            r#"{"events": [{"eventId": 1, "type": "renamed"}]}"#,
            "events[0].type: unknown delta event type \"renamed\"",
        ),
    ] {
        assert_eq!(
            Delta::from_json(json).unwrap_err().to_string(),
            expected,
            "{json}"
        );
    }
}

#[test]
fn applying_events_adds_replaces_and_removes() {
    let mut payload = Payload::from_json(
        r#"{"version": 2, "features": [{"name": "a", "enabled": false}],
            "segments": [{"id": 1, "constraints": []}, {"id": 2, "constraints": []}]}"#,
    )
    .unwrap();
    let delta = Delta::from_json(
        r#"{"events": [
          {"eventId": 1, "type": "feature-updated", "feature": {"name": "a", "enabled": true}},
          {"eventId": 2, "type": "feature-updated", "feature": {"name": "b", "enabled": true}},
          {"eventId": 3, "type": "segment-updated", "segment": {"id": 2, "name": "new", "constraints": []}},
          {"eventId": 4, "type": "segment-updated", "segment": {"id": 3, "constraints": []}},
          {"eventId": 5, "type": "segment-removed", "segmentId": 1},
          {"eventId": 6, "type": "feature-removed", "featureName": "zzz"}
        ]}"#,
    )
    .unwrap();
    for event in delta.events {
        payload.apply(event);
    }
    let features: Vec<(&str, bool)> = payload
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.enabled))
        .collect();
    assert_eq!(features, [("a", true), ("b", true)]);
    let segments: Vec<(i64, Option<&str>)> = payload
        .segments
        .iter()
        .map(|s| (s.id, s.name.as_deref()))
        .collect();
    assert_eq!(segments, [(2, Some("new")), (3, None)]);
    // A hydration replaces everything.
    payload.apply(
        Delta::from_json(
            r#"{"events": [{"eventId": 7, "type": "hydration", "features": [{"name": "h", "enabled": true}],
                "segments": [{"id": 9, "constraints": []}]}]}"#,
        )
        .unwrap()
        .events
        .remove(0),
    );
    assert_eq!(payload.features.len(), 1);
    assert_eq!(payload.features[0].name, "h");
    assert_eq!(payload.segments.len(), 1);
    assert_eq!(payload.segments[0].id, 9);
}
