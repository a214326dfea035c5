//! Flags: variants, rules, rollouts, prerequisites (with cycle detection) and
//! schedules.
use super::conditions::Conditions;
use super::{text, ConfigError};
use crate::bucket::{Salt, BUCKETS};
use crate::config::Value;
use crate::config::{BucketBy, Config, Flag, Named, Prerequisite, WithoutIdentity};
use crate::plan::{FlagPlan, KeyPlan, RampPlan, Rollout, RulePlan, Serve, VariantId};
use sluice_primitives::json::{Kind, Path};

#[inline(never)]
pub(crate) fn compile_flags<'c>(
    config: &'c Config,
    conditions: &mut Conditions<'c>,
) -> Result<(Vec<FlagPlan>, Vec<usize>), ConfigError> {
    // Sorted by name: Istio re-serialises pluginConfig with sorted keys, so
    // document order must not change the header or anyone's bucket.
    let mut sorted: Vec<(&str, &Flag)> = config.flags.iter().collect();
    sluice_primitives::order::sort_by_key(&mut sorted, |(name, _)| *name);
    let mut flags = Vec::with_capacity(sorted.len());
    for (name, flag) in &sorted {
        flags.push(compile_flag(config, name, flag, &sorted, conditions)?);
    }
    let order = prerequisite_order(&flags)?;
    Ok((flags, order))
}

#[inline(never)]
fn compile_flag<'c>(
    config: &'c Config,
    name: &str,
    flag: &'c Flag,
    // Every flag, sorted by name (looked up by binary search: a linear scan per prerequisite
    // made loading a large config quadratic).
    all_flags: &[(&str, &Flag)],
    conditions: &mut Conditions<'c>,
) -> Result<FlagPlan, ConfigError> {
    // Paths stay unrendered unless an error names them (a `format!` per field was a large
    // share of a big config's load).
    let flags_at = Path::Root.key("flags");
    let path = flags_at.key(name);
    text::check_name(name, &path, "flag name")?;
    let Serving {
        variants:
            Variants {
                names: variant_names,
                values: variant_values,
                default,
                off_variant,
            },
        prerequisites,
        rules,
    } = compile_serving(name, flag, all_flags, &path, conditions)?;
    let salt = flag.salt.clone().unwrap_or_else(|| name.to_string());
    let (enable_at_ms, ramp) = match &flag.schedule {
        None => (None, None),
        Some(schedule) => compile_schedule(schedule, &salt, &path)?,
    };
    let header = match &flag.header {
        Some(h) => Some(text::output_header(h, &path.key("header"))?),
        None => None,
    };
    Ok(FlagPlan {
        name: name.to_string(),
        variant_names,
        variant_values,
        default,
        off_variant,
        enabled: flag.enabled,
        prerequisites,
        rules,
        enable_at_ms,
        ramp,
        key: key_plan(salt, flag.bucket_by, flag.without_identity, config),
        header,
        experiment: None,
        first_count: 0,
    })
}

/// What a flag serves: its variants, and the prerequisites and rules that choose one.
struct Serving {
    variants: Variants,
    prerequisites: Vec<(usize, Vec<VariantId>)>,
    rules: Vec<RulePlan>,
}

/// What the flag at `path` serves.
#[inline(never)]
fn compile_serving<'c>(
    name: &str,
    flag: &'c Flag,
    all_flags: &[(&str, &Flag)],
    path: &Path,
    conditions: &mut Conditions<'c>,
) -> Result<Serving, ConfigError> {
    let variants = compile_variants(flag, path)?;
    let prerequisites = compile_prerequisites(name, flag, all_flags, path)?;
    let rules = compile_rules(flag, &variants.names, path, conditions)?;
    Ok(Serving {
        variants,
        prerequisites,
        rules,
    })
}

/// A flag's variants, sorted by name (ids are indices in this order).
struct Variants {
    names: Vec<String>,
    /// As header text.
    values: Vec<String>,
    default: VariantId,
    off_variant: VariantId,
}

/// The flag's variants (`on` and `off` unless it has its own), its default and off variants.
#[inline(never)]
fn compile_variants(flag: &Flag, path: &Path) -> Result<Variants, ConfigError> {
    let boolean = boolean_variants();
    let variants = flag.variants.as_ref().unwrap_or(&boolean);
    if variants.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.variants"),
            "no variants; give at least one",
        ));
    }
    let mut variant_names = Vec::with_capacity(variants.len());
    let mut variant_values = Vec::with_capacity(variants.len());
    let mut sorted_variants: Vec<(&str, &Value)> = variants.iter().collect();
    sluice_primitives::order::sort_by_key(&mut sorted_variants, |(vname, _)| *vname);
    let variants_at = path.key("variants");
    for (vname, value) in sorted_variants {
        let vpath = variants_at.key(vname);
        text::check_name(vname, &vpath, "variant name")?;
        let rendered = match &value.kind {
            Kind::String(s) => s.to_string(),
            _ => value.to_string(),
        };
        text::check_header_value(&rendered, &vpath)?;
        variant_names.push(vname.to_string());
        variant_values.push(rendered);
    }
    let (default, off_variant) = default_variants(flag, &variant_names, path)?;
    Ok(Variants {
        names: variant_names,
        values: variant_values,
        default,
        off_variant,
    })
}

/// A variant's id, by name; the error, at `at`, lists the flag's variants.
#[inline(never)]
fn find_variant(variant_names: &[String], v: &str, at: &Path) -> Result<VariantId, ConfigError> {
    variant_names.iter().position(|n| n == v).ok_or_else(|| {
        ConfigError::new(
            at.to_string(),
            format!(
                "unknown variant `{v}` (variants: {})",
                variant_names.join(", ")
            ),
        )
    })
}

/// The flag's default variant and its off variant (the default unless given).
#[inline(never)]
fn default_variants(
    flag: &Flag,
    variant_names: &[String],
    path: &Path,
) -> Result<(VariantId, VariantId), ConfigError> {
    let default = match &flag.default {
        Some(v) => find_variant(variant_names, v, &path.key("default"))?,
        None if flag.variants.is_none() => {
            find_variant(variant_names, "off", &path.key("default"))?
        }
        None => {
            return Err(ConfigError::new(
                format!("{path}.default"),
                "missing: a flag with its own variants must name its default variant",
            ))
        }
    };
    let off_variant = match &flag.off_variant {
        Some(v) => find_variant(variant_names, v, &path.key("off_variant"))?,
        None => default,
    };
    Ok((default, off_variant))
}

/// The flag's rules, in order; only the last may match every request.
#[inline(never)]
fn compile_rules<'c>(
    flag: &'c Flag,
    variant_names: &[String],
    path: &Path,
    conditions: &mut Conditions<'c>,
) -> Result<Vec<RulePlan>, ConfigError> {
    let mut rules = Vec::with_capacity(flag.rules.len());
    let rules_at = path.key("rules");
    for (i, rule) in flag.rules.iter().enumerate() {
        let rpath = rules_at.index(i);
        let when = match &rule.when {
            Some(c) => Some(conditions.compile(c, &format!("{rpath}.when"))?),
            None => None,
        };
        let serve = match (&rule.serve, &rule.rollout) {
            (Some(v), None) => Serve::Variant(find_variant(variant_names, v, &rpath.key("serve"))?),
            (None, Some(weights)) => {
                Serve::Rollout(rollout(weights, &rpath.key("rollout"), |v, at| {
                    find_variant(variant_names, v, at)
                })?)
            }
            _ => {
                return Err(ConfigError::new(
                    rpath.to_string(),
                    "a rule needs exactly one of serve or rollout",
                ))
            }
        };
        rules.push(RulePlan { when, serve });
    }
    if let Some(last) = rules.iter().position(|r| r.when.is_none()) {
        if last + 1 < rules.len() {
            return Err(ConfigError::new(
                format!("{path}.rules[{}]", last + 1),
                format!("unreachable: rules[{last}] has no `when` and matches every request"),
            ));
        }
    }
    Ok(rules)
}

/// A flag's prerequisites: per required flag, its index and the variant ids that satisfy it.
#[inline(never)]
fn compile_prerequisites(
    name: &str,
    flag: &Flag,
    all_flags: &[(&str, &Flag)],
    path: &Path,
) -> Result<Vec<(usize, Vec<VariantId>)>, ConfigError> {
    let mut prerequisites = Vec::with_capacity(flag.prerequisites.len());
    let prerequisites_at = path.key("prerequisites");
    for (i, pre) in flag.prerequisites.iter().enumerate() {
        prerequisites.push(prerequisite(
            name,
            pre,
            all_flags,
            &prerequisites_at.index(i),
        )?);
    }
    Ok(prerequisites)
}

/// One prerequisite of flag `name`, at `ppath`.
#[inline(never)]
fn prerequisite(
    name: &str,
    pre: &Prerequisite,
    all_flags: &[(&str, &Flag)],
    ppath: &Path,
) -> Result<(usize, Vec<VariantId>), ConfigError> {
    let Ok(target) = all_flags.binary_search_by(|(f, _)| (*f).cmp(pre.flag.as_str())) else {
        return Err(ConfigError::new(
            format!("{ppath}.flag"),
            format!("unknown flag `{}`", pre.flag),
        ));
    };
    if pre.flag == name {
        return Err(ConfigError::new(
            format!("{ppath}.flag"),
            "a flag cannot require itself",
        ));
    }
    if pre.variants.is_empty() {
        return Err(ConfigError::new(
            format!("{ppath}.variants"),
            "empty list can never hold",
        ));
    }
    // The target's variant ids, sorted by name as `compile_flag` numbers them.
    let mut target_variants: Vec<&str> = match all_flags[target].1.variants.as_ref() {
        Some(vs) => vs.iter().map(|(n, _)| n).collect(),
        None => vec!["on", "off"],
    };
    sluice_primitives::order::sort_by(&mut target_variants, |a, b| a.cmp(b));
    let mut ids = Vec::with_capacity(pre.variants.len());
    for (j, v) in pre.variants.iter().enumerate() {
        let id = target_variants.iter().position(|t| t == v).ok_or_else(|| {
            ConfigError::new(
                format!("{ppath}.variants[{j}]"),
                format!("flag `{}` has no variant `{v}`", pre.flag),
            )
        })?;
        ids.push(id);
    }
    Ok((target, ids))
}

/// A flag's schedule: when it switches on, and its ramp.
#[inline(never)]
fn compile_schedule(
    s: &crate::config::Schedule,
    salt: &str,
    path: &Path,
) -> Result<(Option<i64>, Option<RampPlan>), ConfigError> {
    let spath = path.key("schedule");
    let enable_at = match &s.enable_at {
        Some(t) => Some(text::time_millis(t, &spath.key("enable_at"))?),
        None => None,
    };
    let ramp = match &s.ramp {
        Some(r) => {
            let rp = spath.key("ramp");
            Some(RampPlan {
                start_ms: text::time_millis(&r.start, &rp.key("start"))?,
                duration_ms: text::duration_millis(&r.duration, &rp.key("duration"))? as i64,
                from: text::percent_to_buckets(r.from, &rp.key("from"))?,
                to: text::percent_to_buckets(r.to, &rp.key("to"))?,
                // Its own salt: the ramp cohort must not correlate with variant buckets.
                salt: Salt::new(format!("{salt}.ramp")),
            })
        }
        None => None,
    };
    if enable_at.is_none() && ramp.is_none() {
        return Err(ConfigError::new(
            spath.to_string(),
            "empty schedule: give enable_at and/or ramp",
        ));
    }
    Ok((enable_at, ramp))
}

#[inline(never)]
fn boolean_variants() -> Named<Value> {
    Named(vec![
        ("on".to_string(), Value::new(Kind::Bool(true))),
        ("off".to_string(), Value::new(Kind::Bool(false))),
    ])
}

#[inline(never)]
pub(crate) fn key_plan(
    salt: String,
    bucket_by: Option<BucketBy>,
    without_identity: Option<WithoutIdentity>,
    config: &Config,
) -> KeyPlan {
    KeyPlan {
        salt: Salt::new(salt),
        session_first: bucket_by == Some(BucketBy::Session),
        random_without_identity: without_identity.unwrap_or(config.identity.without_identity)
            == WithoutIdentity::Random,
    }
}

/// Weights (percent, 0.01 steps) → cumulative bucket bounds, ordered by the
/// resolved index (sorted variant names, or the route's `versions` list), never
/// by document order, which Istio does not preserve.
#[inline(never)]
pub(crate) fn rollout(
    weights: &Named<f64>,
    path: &Path,
    resolve: impl Fn(&str, &Path) -> Result<usize, ConfigError>,
) -> Result<Rollout, ConfigError> {
    if weights.is_empty() {
        return Err(ConfigError::new(path.to_string(), "no variants in rollout"));
    }
    let mut entries = Vec::with_capacity(weights.len());
    for (name, percent) in weights.iter() {
        let at = path.key(name);
        entries.push((
            resolve(name, &at)?,
            text::percent_to_buckets(*percent, &at)?,
        ));
    }
    sluice_primitives::order::sort_by_key(&mut entries, |(id, _)| *id);
    let mut upper = Vec::with_capacity(entries.len());
    let mut total: u32 = 0;
    for (id, buckets) in entries {
        total += buckets;
        upper.push((total, id));
    }
    if total != BUCKETS {
        return Err(ConfigError::new(
            path.to_string(),
            format!(
                "weights sum to {}, expected 100",
                text::buckets_as_percent(total)
            ),
        ));
    }
    Ok(Rollout { upper })
}

/// Orders flags so each comes after its prerequisites; a cycle is an error
/// naming it.
#[inline(never)]
fn prerequisite_order(flags: &[FlagPlan]) -> Result<Vec<usize>, ConfigError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    #[inline(never)]
    fn visit(
        i: usize,
        flags: &[FlagPlan],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> Result<(), ConfigError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = stack.iter().position(|s| *s == i).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[start..]
                    .iter()
                    .map(|s| flags[*s].name.as_str())
                    .collect();
                cycle.push(&flags[i].name);
                return Err(ConfigError::new(
                    format!("flags.{}.prerequisites", flags[i].name),
                    format!("prerequisite cycle: {}", cycle.join(" -> ")),
                ));
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        stack.push(i);
        for (dep, _) in &flags[i].prerequisites {
            visit(*dep, flags, marks, stack, order)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; flags.len()];
    let mut order = Vec::with_capacity(flags.len());
    let mut stack = Vec::new();
    for i in 0..flags.len() {
        visit(i, flags, &mut marks, &mut stack, &mut order)?;
    }
    Ok(order)
}
