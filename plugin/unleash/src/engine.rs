//! The engine: a payload compiled for evaluation, answering `is_enabled` and
//! `variant` per feature and context without allocating.

use sluice_primitives::quoted::Quoted;
use std::fmt;
use std::sync::Arc;

use sluice_primitives::names::OwnedNameIndex;

use crate::constraints::Constraint;
use crate::context::Context;
use crate::delta::{Delta, DeltaEvent};
use crate::model::{Payload, VariantPayload};
use crate::strategies::{Segments, Strategy};
use crate::variants::VariantSet;

/// The variant name Unleash reports when there is none.
pub const DISABLED_VARIANT: &str = "disabled";

/// Something in the payload that evaluates to "off" rather than failing the
/// whole payload (as the SDKs do): an unknown operator or strategy, an
/// operand that does not parse, a missing segment or parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where, e.g. `features["checkout"].strategies[0].constraints[1]`.
    pub path: String,
    pub message: String,
    /// An unknown strategy or operator: something this engine does not
    /// implement (a custom strategy, a newer operator), as opposed to a
    /// value that is wrong. A poller may refuse such a payload.
    pub unknown: bool,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A feature's index in the engine, for evaluating without a name lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeatureId(u32);

/// What `getVariant` returns in the SDKs, borrowed from the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantResult<'e> {
    /// The variant, or [`DISABLED_VARIANT`].
    pub name: &'e str,
    /// Whether a variant was chosen.
    pub enabled: bool,
    pub payload: Option<&'e VariantPayload>,
    /// Whether the feature itself is on.
    pub feature_enabled: bool,
}

impl VariantResult<'_> {
    fn disabled(feature_enabled: bool) -> Self {
        VariantResult {
            name: DISABLED_VARIANT,
            enabled: false,
            payload: None,
            feature_enabled,
        }
    }
}

/// A compiled payload. Rebuilt as a whole when the payload changes.
#[derive(Debug, Default)]
pub struct Engine {
    payload: Payload,
    features: Box<[Feature]>,
    index: OwnedNameIndex,
    warnings: Vec<Warning>,
}

#[derive(Debug)]
struct Feature {
    name: Box<str>,
    enabled: bool,
    strategies: Box<[Strategy]>,
    variants: Option<VariantSet>,
    dependencies: Box<[Dependency]>,
    /// Whether the payload lists parents for it (even unresolvable ones).
    has_parents: bool,
}

#[derive(Debug)]
struct Dependency {
    /// `None` when the parent cannot satisfy anything: it does not exist, or
    /// it has parents of its own (Unleash allows one level).
    parent: Option<FeatureId>,
    expect_enabled: bool,
    variants: Box<[Box<str>]>,
}

/// Whether a feature is on, and the strategy variants of the strategy that
/// turned it on.
enum Hit<'e> {
    Off,
    On(Option<&'e VariantSet>),
}

impl Engine {
    /// Compiles a payload. Never fails: what cannot be evaluated evaluates
    /// to off and is listed in [`Engine::warnings`].
    #[inline(never)]
    pub fn new(payload: Payload) -> Engine {
        let mut engine = Engine {
            payload,
            ..Engine::default()
        };
        engine.compile();
        engine
    }

    /// An engine built from delta events alone (a hydration event first).
    pub fn from_delta(delta: Delta) -> Engine {
        let mut engine = Engine::default();
        engine.apply_delta(delta);
        engine
    }

    /// Applies the events in order, then recompiles once.
    #[inline(never)]
    pub fn apply_delta(&mut self, delta: Delta) {
        for event in delta.events {
            self.payload.apply(event);
        }
        self.compile();
    }

    /// Applies one event and recompiles.
    pub fn apply_event(&mut self, event: DeltaEvent) {
        self.payload.apply(event);
        self.compile();
    }

    /// The payload the engine was compiled from (after any deltas).
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Feature names, sorted by name.
    pub fn feature_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.features.iter().map(|f| &*f.name)
    }

    /// Feature ids with their names, sorted by name.
    pub fn features(&self) -> impl Iterator<Item = (FeatureId, &str)> + '_ {
        self.features
            .iter()
            .enumerate()
            .map(|(i, f)| (FeatureId(i as u32), &*f.name))
    }

    pub fn id(&self, name: &str) -> Option<FeatureId> {
        feature_id(&self.index, name)
    }

    /// `isEnabled`: false for unknown features.
    pub fn is_enabled(&self, name: &str, ctx: &Context<'_>) -> bool {
        self.id(name).is_some_and(|id| self.is_enabled_id(id, ctx))
    }

    /// `getVariant`: the disabled variant for unknown features.
    pub fn variant(&self, name: &str, ctx: &Context<'_>) -> VariantResult<'_> {
        match self.id(name) {
            Some(id) => self.evaluate(id, ctx),
            None => VariantResult::disabled(false),
        }
    }

    pub fn is_enabled_id(&self, id: FeatureId, ctx: &Context<'_>) -> bool {
        self.feature(id)
            .is_some_and(|f| matches!(self.hit(f, ctx), Hit::On(_)))
    }

    /// Whether the feature is on and its variant, from one evaluation of its
    /// strategies (so a random draw cannot disagree between the two).
    pub fn evaluate(&self, id: FeatureId, ctx: &Context<'_>) -> VariantResult<'_> {
        match self.feature(id) {
            Some(f) => self.variant_of(f, self.hit(f, ctx), ctx),
            None => VariantResult::disabled(false),
        }
    }

    fn feature(&self, id: FeatureId) -> Option<&Feature> {
        self.features.get(id.0 as usize)
    }

    fn hit<'e>(&'e self, f: &'e Feature, ctx: &Context<'_>) -> Hit<'e> {
        if !f.enabled || !self.dependencies_met(f, ctx) {
            return Hit::Off;
        }
        if f.strategies.is_empty() {
            return Hit::On(None);
        }
        f.strategies
            .iter()
            .find(|s| s.is_on(ctx))
            .map_or(Hit::Off, |s| Hit::On(s.variants.as_ref()))
    }

    fn variant_of<'e>(
        &'e self,
        f: &'e Feature,
        hit: Hit<'e>,
        ctx: &Context<'_>,
    ) -> VariantResult<'e> {
        let Hit::On(strategy_variants) = hit else {
            return VariantResult::disabled(false);
        };
        // Strategy variants replace the feature's; without them, or when
        // they yield none (all weights zero), the feature's variants apply,
        // as in the Node SDK.
        match strategy_variants
            .and_then(|set| set.select(ctx))
            .or_else(|| f.variants.as_ref().and_then(|set| set.select(ctx)))
        {
            Some(v) => VariantResult {
                name: &v.name,
                enabled: true,
                payload: v.payload.as_ref(),
                feature_enabled: true,
            },
            None => VariantResult::disabled(true),
        }
    }

    fn dependencies_met(&self, f: &Feature, ctx: &Context<'_>) -> bool {
        f.dependencies.iter().all(|dep| {
            let Some(parent) = dep.parent.and_then(|id| self.feature(id)) else {
                return false;
            };
            // Parents have no parents (checked at compile), so this recursion
            // is one level deep.
            let hit = self.hit(parent, ctx);
            if !dep.expect_enabled {
                return matches!(hit, Hit::Off);
            }
            if matches!(hit, Hit::Off) {
                return false;
            }
            dep.variants.is_empty() || {
                let name = self.variant_of(parent, hit, ctx).name;
                dep.variants.iter().any(|v| &**v == name)
            }
        })
    }

    #[inline(never)]
    fn compile(&mut self) {
        let mut warnings = Vec::new();
        let segments = compile_segments(&self.payload.segments, &mut warnings);
        let (mut features, index) =
            compile_features(&self.payload.features, &segments, &mut warnings);
        // Dependencies need every feature's id, so they are resolved last.
        for feature in &self.payload.features {
            let Some(&me) = index.get(feature.name.as_str()) else {
                continue;
            };
            let dependencies = resolve_dependencies(feature, &index, &features, &mut warnings);
            if let Some(compiled) = features.get_mut(me) {
                compiled.dependencies = dependencies;
            }
        }
        self.features = features.into();
        self.index = index;
        self.warnings = warnings;
    }
}

#[inline(never)]
fn compile_segments(payload: &[crate::model::Segment], warnings: &mut Vec<Warning>) -> Segments {
    let mut segments = Segments::default();
    for segment in payload {
        let constraints: Arc<[Constraint]> = segment
            .constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let path = format!("segments[id={}].constraints[{i}]", segment.id);
                Constraint::compile(c, &path, warnings)
            })
            .collect();
        segments.push((segment.id, constraints));
    }
    segments
}

/// The features by name with their index; of features listed twice, the last one.
#[inline(never)]
fn compile_features(
    payload: &[crate::model::Feature],
    segments: &Segments,
    warnings: &mut Vec<Warning>,
) -> (Vec<Feature>, OwnedNameIndex) {
    let mut index = OwnedNameIndex::default();
    let mut features: Vec<Feature> = Vec::with_capacity(payload.len());
    // Ids in name order, so every listing (and the flags header) is sorted by name whatever
    // order the server sent; a stable sort keeps "the last one counts" for duplicates.
    let mut by_name: Vec<&crate::model::Feature> = payload.iter().collect();
    sluice_primitives::order::sort_by(&mut by_name, |a, b| a.name.cmp(&b.name));
    for feature in by_name {
        let base = format!("features[{}]", Quoted(&feature.name));
        let compiled = compile_feature(feature, &base, segments, warnings);
        add_feature(&mut index, &mut features, compiled, base, warnings);
    }
    (features, index)
}

/// Indexes a compiled feature by name; one listed before is replaced.
#[inline(never)]
fn add_feature(
    index: &mut OwnedNameIndex,
    features: &mut Vec<Feature>,
    compiled: Feature,
    base: String,
    warnings: &mut Vec<Warning>,
) {
    match feature_id(index, &compiled.name) {
        Some(id) => replace_feature(features, id, compiled, base, warnings),
        None => {
            index.insert(compiled.name.clone(), features.len());
            features.push(compiled);
        }
    }
}

/// The id of the feature named `name`.
fn feature_id(index: &OwnedNameIndex, name: &str) -> Option<FeatureId> {
    index.get(name).map(|&i| FeatureId(i as u32))
}

/// A feature listed twice: the last one replaces the first, with a warning.
#[cold]
#[inline(never)]
fn replace_feature(
    features: &mut [Feature],
    FeatureId(i): FeatureId,
    compiled: Feature,
    base: String,
    warnings: &mut Vec<Warning>,
) {
    warnings.push(Warning {
        path: base,
        message: "listed twice; the last one counts".into(),
        unknown: false,
    });
    if let Some(slot) = features.get_mut(i as usize) {
        *slot = compiled;
    }
}

/// One feature without its dependencies; `base` is its path.
#[inline(never)]
fn compile_feature(
    feature: &crate::model::Feature,
    base: &str,
    segments: &Segments,
    warnings: &mut Vec<Warning>,
) -> Feature {
    let strategies = feature
        .strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = format!("{base}.strategies[{i}]");
            Strategy::compile(&feature.name, s, segments, &path, warnings)
        })
        .collect();
    Feature {
        name: feature.name.as_str().into(),
        enabled: feature.enabled,
        strategies,
        variants: VariantSet::for_feature(&feature.name, &feature.variants),
        dependencies: Box::default(),
        has_parents: !feature.dependencies.is_empty(),
    }
}

#[inline(never)]
fn resolve_dependencies(
    feature: &crate::model::Feature,
    index: &OwnedNameIndex,
    features: &[Feature],
    warnings: &mut Vec<Warning>,
) -> Box<[Dependency]> {
    feature
        .dependencies
        .iter()
        .map(|dep| resolve_dependency(feature, dep, index, features, warnings))
        .collect()
}

/// One dependency of `feature`: its parent's id, unless the parent is missing or has parents.
#[inline(never)]
fn resolve_dependency(
    feature: &crate::model::Feature,
    dep: &crate::model::Dependency,
    index: &OwnedNameIndex,
    features: &[Feature],
    warnings: &mut Vec<Warning>,
) -> Dependency {
    let parent = feature_id(index, &dep.feature);
    let grandparents =
        parent.is_some_and(|FeatureId(i)| features.get(i as usize).is_some_and(|f| f.has_parents));
    let parent = match parent {
        Some(id) if !grandparents => Some(id),
        Some(_) => {
            warnings.push(never_on(feature, dep, "has parents of its own"));
            None
        }
        None => {
            warnings.push(never_on(feature, dep, "does not exist"));
            None
        }
    };
    Dependency {
        parent,
        expect_enabled: dep.enabled.unwrap_or(true),
        variants: dep.variants.iter().map(|v| v.as_str().into()).collect(),
    }
}

/// The warning for a parent that can never be satisfied.
#[cold]
#[inline(never)]
fn never_on(feature: &crate::model::Feature, dep: &crate::model::Dependency, why: &str) -> Warning {
    Warning {
        path: format!("features[{}].dependencies", Quoted(&feature.name)),
        message: format!(
            "parent {} {why}; the feature is never on",
            Quoted(&dep.feature)
        ),
        unknown: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(json: &str) -> Engine {
        Engine::new(Payload::from_json(json).unwrap())
    }

    #[test]
    fn unknown_features_are_off_with_the_disabled_variant() {
        let e = engine(r#"{"version": 2, "features": []}"#);
        let ctx = Context::new();
        assert!(!e.is_enabled("nope", &ctx));
        assert_eq!(e.variant("nope", &ctx), VariantResult::disabled(false));
        assert!(e.is_empty());
    }

    #[test]
    fn features_are_listed_by_name_whatever_the_payload_order() {
        let e = engine(
            r#"{"version": 2, "features": [
              {"name": "zeta", "enabled": true}, {"name": "alpha", "enabled": false},
              {"name": "mid", "enabled": true}, {"name": "alpha", "enabled": true}]}"#,
        );
        assert_eq!(
            e.feature_names().collect::<Vec<_>>(),
            ["alpha", "mid", "zeta"]
        );
        let names: Vec<&str> = e.features().map(|(_, n)| n).collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        // A duplicate: the later one counts.
        assert!(e.is_enabled("alpha", &Context::new()));
    }

    #[test]
    fn evaluate_agrees_with_is_enabled_and_variant() {
        let e = engine(
            r#"{"version": 2, "features": [
              {"name": "a", "enabled": true, "strategies": [
                {"name": "flexibleRollout", "parameters": {"rollout": "50", "groupId": "a"}}],
               "variants": [{"name": "x", "weight": 500}, {"name": "y", "weight": 500,
                             "payload": {"type": "string", "value": "why"}}]},
              {"name": "b", "enabled": false, "strategies": []}
            ]}"#,
        );
        assert_eq!(e.feature_names().collect::<Vec<_>>(), ["a", "b"]);
        let (a, b) = (e.id("a").unwrap(), e.id("b").unwrap());
        for user in (0..200).map(|i| i.to_string()) {
            let ctx = Context::new().user_id(&user);
            let result = e.evaluate(a, &ctx);
            assert_eq!(result, e.variant("a", &ctx));
            assert_eq!(result.feature_enabled, e.is_enabled("a", &ctx));
            assert_eq!(result.enabled, result.feature_enabled);
            if result.name == "y" {
                assert_eq!(result.payload.unwrap().value, "why");
            }
            assert!(!e.is_enabled_id(b, &ctx));
        }
    }

    #[test]
    fn dependencies_check_parent_state_and_variant() {
        let e = engine(
            r#"{"version": 2, "features": [
              {"name": "parent", "enabled": true, "strategies": [
                {"name": "default", "constraints": [
                   {"contextName": "environment", "operator": "IN", "values": ["prod"]}]}],
               "variants": [{"name": "blue", "weight": 1},
                            {"name": "red", "weight": 0,
                             "overrides": [{"contextName": "userId", "values": ["red-user"]}]}]},
              {"name": "needs-on", "enabled": true, "dependencies": [{"feature": "parent"}]},
              {"name": "needs-off", "enabled": true,
               "dependencies": [{"feature": "parent", "enabled": false}]},
              {"name": "needs-red", "enabled": true,
               "dependencies": [{"feature": "parent", "variants": ["red"]}]},
              {"name": "grandchild", "enabled": true, "dependencies": [{"feature": "needs-on"}]},
              {"name": "orphan", "enabled": true, "dependencies": [{"feature": "missing"}]}
            ]}"#,
        );
        let prod = Context::new().environment("prod").user_id("u1");
        let dev = Context::new().environment("dev").user_id("u1");
        let red = Context::new().environment("prod").user_id("red-user");
        assert!(e.is_enabled("needs-on", &prod));
        assert!(!e.is_enabled("needs-on", &dev));
        assert!(!e.is_enabled("needs-off", &prod));
        assert!(e.is_enabled("needs-off", &dev));
        assert!(!e.is_enabled("needs-red", &prod), "parent variant is blue");
        assert!(e.is_enabled("needs-red", &red), "override picks red");
        assert!(!e.is_enabled("grandchild", &prod), "one level only");
        assert!(!e.is_enabled("orphan", &prod));
        let warnings: Vec<String> = e.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "features[\"grandchild\"].dependencies: parent \"needs-on\" has parents of its own; the feature is never on",
                "features[\"orphan\"].dependencies: parent \"missing\" does not exist; the feature is never on",
            ]
        );
    }

    #[test]
    fn strategy_variants_use_the_first_strategy_that_is_on() {
        let e = engine(
            r#"{"version": 2, "features": [{"name": "f", "enabled": true, "strategies": [
                {"name": "userWithId", "parameters": {"userIds": "vip"},
                 "variants": [{"name": "gold", "weight": 1}]},
                {"name": "default", "variants": []}],
               "variants": [{"name": "plain", "weight": 1}]}]}"#,
        );
        let vip = Context::new().user_id("vip");
        let other = Context::new().user_id("someone");
        assert_eq!(e.variant("f", &vip).name, "gold");
        assert_eq!(e.variant("f", &other).name, "plain");
    }

    #[test]
    fn deltas_patch_features_and_segments_and_recompile() {
        let mut e = engine(
            r#"{"version": 2,
                "features": [{"name": "f", "enabled": true,
                              "strategies": [{"name": "default", "segments": [1]}]}],
                "segments": [{"id": 1, "constraints": [
                   {"contextName": "appName", "operator": "IN", "values": ["web"]}]}]}"#,
        );
        let web = Context::new().app_name("web");
        let ios = Context::new().app_name("ios");
        assert!(e.is_enabled("f", &web) && !e.is_enabled("f", &ios));
        e.apply_delta(
            Delta::from_json(
                r#"{"events": [
                  {"eventId": 7, "type": "segment-updated", "segment": {"id": 1, "constraints": [
                     {"contextName": "appName", "operator": "IN", "values": ["ios"]}]}},
                  {"eventId": 8, "type": "feature-updated",
                   "feature": {"name": "g", "enabled": true, "strategies": []}}
                ]}"#,
            )
            .unwrap(),
        );
        assert!(!e.is_enabled("f", &web) && e.is_enabled("f", &ios));
        assert!(e.is_enabled("g", &web));
        e.apply_event(DeltaEvent::SegmentRemoved {
            event_id: 9,
            segment_id: 1,
        });
        assert!(
            !e.is_enabled("f", &ios),
            "a missing segment turns the strategy off"
        );
        assert_eq!(e.warnings().len(), 1);
        e.apply_event(DeltaEvent::FeatureRemoved {
            event_id: 10,
            feature_name: "g".into(),
            project: None,
        });
        assert_eq!(e.id("g"), None);
        assert_eq!(e.payload().features.len(), 1);
    }

    #[test]
    fn duplicate_names_keep_the_last() {
        let e = engine(
            r#"{"version": 2, "features": [
              {"name": "f", "enabled": false}, {"name": "f", "enabled": true}]}"#,
        );
        assert_eq!(e.len(), 1);
        assert!(e.is_enabled("f", &Context::new()));
        assert_eq!(e.warnings().len(), 1);
    }
}
