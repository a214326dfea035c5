//! Variant sets (a feature's or a strategy's) and how a user is placed in
//! one: overrides first, then the stickiness value hashed with the variant
//! seed into `1..=total weight`, then the first variant whose running weight
//! reaches that target.

use crate::context::{Context, Field};
use crate::hashing::{random_bucket, HashGroup, VARIANT_SEED};
use crate::model::{self, VariantPayload};

/// Which context value keeps a user on one variant or one rollout bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stickiness {
    /// userId, else sessionId, else random.
    Default,
    Random,
    Field(Field),
}

impl Stickiness {
    #[inline(never)]
    pub(crate) fn parse(name: Option<&str>) -> Stickiness {
        match name {
            None | Some("default") | Some("") => Stickiness::Default,
            Some("random") => Stickiness::Random,
            Some(field) => Stickiness::Field(Field::parse(field)),
        }
    }

    /// The value to hash for this context.
    pub(crate) fn key<'a>(&self, ctx: &Context<'a>) -> Key<'a> {
        match self {
            Stickiness::Default => ctx.user_id.or(ctx.session_id).map_or(Key::Random, Key::Id),
            Stickiness::Random => Key::Random,
            Stickiness::Field(field) => ctx.field(field).map_or(Key::Missing, Key::Id),
        }
    }
}

/// A stickiness value, or why there is none.
pub(crate) enum Key<'a> {
    Id(&'a str),
    /// Draw at random (default stickiness without ids, or `random`).
    Random,
    /// The named field is not in the context.
    Missing,
}

#[derive(Debug)]
pub(crate) struct Variant {
    pub(crate) name: Box<str>,
    weight: u32,
    pub(crate) payload: Option<VariantPayload>,
    overrides: Box<[Override]>,
}

#[derive(Debug)]
struct Override {
    field: Field,
    values: Box<[Box<str>]>,
}

#[derive(Debug)]
pub(crate) struct VariantSet {
    variants: Box<[Variant]>,
    total_weight: u32,
    stickiness: Stickiness,
    /// The hash group: the feature name, or the strategy's groupId.
    group: HashGroup,
}

impl VariantSet {
    /// Feature variants: stickiness from the first variant, grouped by the
    /// feature name, overrides honoured.
    pub(crate) fn for_feature(feature: &str, variants: &[model::Variant]) -> Option<VariantSet> {
        let stickiness = Stickiness::parse(variants.first().and_then(|v| v.stickiness.as_deref()));
        VariantSet::new(variants, stickiness, feature, true)
    }

    /// Strategy variants: the strategy's stickiness and groupId, no overrides.
    pub(crate) fn for_strategy(
        variants: &[model::Variant],
        stickiness: Stickiness,
        group: &str,
    ) -> Option<VariantSet> {
        VariantSet::new(variants, stickiness, group, false)
    }

    #[inline(never)]
    fn new(
        variants: &[model::Variant],
        stickiness: Stickiness,
        group: &str,
        with_overrides: bool,
    ) -> Option<VariantSet> {
        if variants.is_empty() {
            return None;
        }
        let variants: Box<[Variant]> = variants
            .iter()
            .map(|v| Variant {
                name: v.name.as_str().into(),
                weight: v.weight,
                payload: v.payload.clone(),
                overrides: if with_overrides {
                    v.overrides
                        .iter()
                        .map(|o| Override {
                            field: Field::parse(&o.context_name),
                            values: o.values.iter().map(|s| s.as_str().into()).collect(),
                        })
                        .collect()
                } else {
                    Box::default()
                },
            })
            .collect();
        let total_weight = variants
            .iter()
            .fold(0u32, |sum, v| sum.saturating_add(v.weight));
        Some(VariantSet {
            variants,
            total_weight,
            stickiness,
            group: HashGroup::new(group, VARIANT_SEED),
        })
    }

    /// The variant for this context, or `None` when no variant can be chosen
    /// (all weights zero).
    pub(crate) fn select(&self, ctx: &Context<'_>) -> Option<&Variant> {
        // No weight, no variant, overrides included (as the Node SDK does).
        if self.total_weight == 0 {
            return None;
        }
        if let Some(forced) = self.overridden(ctx) {
            return Some(forced);
        }
        // A missing custom field falls back to random, as in the SDKs.
        let target = match self.stickiness.key(ctx) {
            Key::Id(id) => self.group.bucket(id, self.total_weight),
            Key::Random | Key::Missing => random_bucket(ctx.roll(), self.total_weight),
        };
        let mut running = 0u32;
        self.variants.iter().find(|v| {
            running = running.saturating_add(v.weight);
            v.weight > 0 && running >= target
        })
    }

    fn overridden(&self, ctx: &Context<'_>) -> Option<&Variant> {
        self.variants.iter().find(|v| {
            v.overrides.iter().any(|o| {
                ctx.field(&o.field)
                    .is_some_and(|value| o.values.iter().any(|x| &**x == value))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> VariantSet {
        let value = crate::json::parse(json.as_bytes()).unwrap();
        let variants: Vec<model::Variant> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| model::Variant::read(v, &crate::json::Path::Root).unwrap())
            .collect();
        VariantSet::for_feature("f", &variants).unwrap()
    }

    fn pick<'s>(set: &'s VariantSet, ctx: &Context<'_>) -> Option<&'s str> {
        set.select(ctx).map(|v| &*v.name)
    }

    #[test]
    fn overrides_win_over_weights() {
        let s = set(r#"[{"name": "a", "weight": 1000},
                {"name": "b", "weight": 0, "overrides": [{"contextName": "userId", "values": ["7", "8"]}]},
                {"name": "c", "weight": 0, "overrides": [{"contextName": "tier", "values": ["gold"]}]}]"#);
        assert_eq!(pick(&s, &Context::new().user_id("8")), Some("b"));
        assert_eq!(pick(&s, &Context::new().user_id("9")), Some("a"));
        let props = [("tier", "gold")];
        assert_eq!(pick(&s, &Context::new().properties(&props)), Some("c"));
    }

    #[test]
    fn zero_weight_variants_are_never_drawn() {
        let s = set(r#"[{"name": "a", "weight": 0}, {"name": "b", "weight": 10}]"#);
        let draw = || 0u32;
        for ctx in [Context::new(), Context::new().random(&draw)] {
            assert_eq!(pick(&s, &ctx), Some("b"));
        }
        let none = set(r#"[{"name": "a", "weight": 0}]"#);
        assert_eq!(pick(&none, &Context::new().user_id("1")), None);
    }

    #[test]
    fn weights_split_users_in_proportion() {
        let s = set(r#"[{"name": "a", "weight": 200}, {"name": "b", "weight": 800}]"#);
        let ids: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let a = ids
            .iter()
            .filter(|id| pick(&s, &Context::new().user_id(id)) == Some("a"))
            .count();
        assert!((1_800..2_200).contains(&a), "{a}");
    }

    #[test]
    fn custom_stickiness_falls_back_to_random() {
        let s = set(
            r#"[{"name": "a", "weight": 1, "stickiness": "tenant"}, {"name": "b", "weight": 1, "stickiness": "tenant"}]"#,
        );
        let first = || 0u32;
        let second = || 1u32;
        assert_eq!(pick(&s, &Context::new().random(&first)), Some("a"));
        assert_eq!(pick(&s, &Context::new().random(&second)), Some("b"));
    }
}
