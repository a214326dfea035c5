//! Regressions found by the differential test against the Node SDK (sdk_differential.rs): where
//! the specification is silent, Sluice now answers as unleash-client does.
use sluice_unleash::{Context, Engine, Payload};

fn engine(features: &str) -> Engine {
    Engine::new(
        Payload::from_json(&format!(r#"{{"version": 2, "features": [{features}]}}"#)).unwrap(),
    )
}

/// A strategy's variants are placed by their own stickiness when it differs from the strategy's.
#[test]
fn strategy_variants_use_their_own_stickiness() {
    let engine = engine(
        r#"{"name": "f", "enabled": true, "strategies": [{"name": "flexibleRollout",
            "parameters": {"rollout": "100", "stickiness": "default", "groupId": "f"},
            "variants": [
              {"name": "a", "weight": 500, "weightType": "variable", "stickiness": "tenant"},
              {"name": "b", "weight": 500, "weightType": "variable", "stickiness": "tenant"}]}]}"#,
    );
    // Users differ, the tenant is the same: by tenant stickiness they all get one variant.
    let props = [("tenant", "acme")];
    let names: std::collections::BTreeSet<&str> = (0..40)
        .map(|i| format!("user-{i}"))
        .collect::<Vec<_>>()
        .iter()
        .map(|u| {
            engine
                .variant("f", &Context::new().user_id(u).properties(&props))
                .name
        })
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

/// Strategy variants whose weights are all zero yield none: the feature's variants apply.
#[test]
fn zero_weight_strategy_variants_fall_back_to_the_feature_variants() {
    let engine = engine(
        r#"{"name": "f", "enabled": true,
            "strategies": [{"name": "flexibleRollout",
              "parameters": {"rollout": "100", "stickiness": "default", "groupId": "f"},
              "variants": [{"name": "s", "weight": 0, "weightType": "variable", "stickiness": "default"}]}],
            "variants": [{"name": "feature-level", "weight": 1000, "weightType": "variable", "stickiness": "default"}]}"#,
    );
    let v = engine.variant("f", &Context::new().user_id("u1"));
    assert_eq!((v.name, v.feature_enabled), ("feature-level", true));
}

/// Variants with no weight at all yield none, even when an override names the user.
#[test]
fn overrides_do_not_apply_without_weight() {
    let engine = engine(
        r#"{"name": "f", "enabled": true, "strategies": [{"name": "default"}],
            "variants": [{"name": "v", "weight": 0, "weightType": "variable", "stickiness": "default",
              "overrides": [{"contextName": "userId", "values": ["u3"]}]}]}"#,
    );
    let v = engine.variant("f", &Context::new().user_id("u3"));
    assert_eq!(
        (v.name, v.enabled, v.feature_enabled),
        ("disabled", false, true)
    );
}
