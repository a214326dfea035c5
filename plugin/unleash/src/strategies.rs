//! Activation strategies, compiled: parameters parsed once, segments
//! resolved to their compiled constraints, strategy variants prepared.
//! A strategy is on when all its constraints (its own and its segments')
//! match and its rule holds. Unknown strategies, missing segments and bad
//! parameters make a strategy that is never on, with a warning.

use sluice_primitives::quoted::Quoted;
use std::sync::Arc;

use sluice_primitives::cidr::Cidr;

use crate::constraints::Constraint;
use crate::context::{Context, Field};
use crate::engine::Warning;
use crate::hashing::{random_bucket, HashGroup};
use crate::model;
use crate::variants::{Key, Stickiness, VariantSet};

/// Compiled segments with their ids, shared by the strategies that
/// reference them (a list: looked up only while compiling).
pub(crate) type Segments = Vec<(i64, Arc<[Constraint]>)>;

#[derive(Debug)]
pub(crate) struct Strategy {
    rule: Rule,
    constraints: Box<[Constraint]>,
    segments: Box<[Arc<[Constraint]>]>,
    pub(crate) variants: Option<VariantSet>,
}

#[derive(Debug)]
enum Rule {
    Always,
    UserIds(Box<[Box<str>]>),
    /// flexibleRollout and the gradual rollouts by user or session id.
    Rollout {
        percentage: f64,
        stickiness: Stickiness,
        group: HashGroup,
    },
    /// gradualRolloutRandom.
    Random {
        percentage: f64,
    },
    RemoteAddress {
        ips: Box<[Box<str>]>,
        nets: Box<[Cidr]>,
    },
    /// applicationHostname; names lower-cased.
    Hostnames(Box<[Box<str>]>),
    Never,
}

impl Strategy {
    #[inline(never)]
    pub(crate) fn compile(
        feature: &str,
        strategy: &model::Strategy,
        segments: &Segments,
        path: &str,
        warnings: &mut Vec<Warning>,
    ) -> Strategy {
        let mut warn = |message: String| {
            warnings.push(Warning {
                path: path.to_string(),
                unknown: message.starts_with("unknown strategy"),
                message,
            })
        };
        let group = strategy.parameter("groupId").unwrap_or(feature);
        let mut rule = Rule::compile(strategy, group, &mut warn);
        let mut resolved = Vec::with_capacity(strategy.segments.len());
        for id in &strategy.segments {
            match segments.iter().find(|(sid, _)| sid == id) {
                Some((_, constraints)) => resolved.push(Arc::clone(constraints)),
                None => {
                    warn(format!(
                        "segment {id} does not exist; the strategy is never on"
                    ));
                    rule = Rule::Never;
                }
            }
        }
        Strategy {
            rule,
            constraints: compile_constraints(&strategy.constraints, path, warnings),
            segments: resolved.into(),
            variants: strategy_variants(strategy, group),
        }
    }

    pub(crate) fn is_on(&self, ctx: &Context<'_>) -> bool {
        // Constraints first: they are cheap and cannot consume a random draw.
        self.constraints.iter().all(|c| c.matches(ctx))
            && self
                .segments
                .iter()
                .all(|segment| segment.iter().all(|c| c.matches(ctx)))
            && self.rule.holds(ctx)
    }
}

impl Rule {
    /// The rule a strategy's name and parameters make.
    #[inline(never)]
    fn compile(strategy: &model::Strategy, group: &str, warn: &mut impl FnMut(String)) -> Rule {
        let param = |name: &str| strategy.parameter(name);
        match strategy.name.as_str() {
            "default" => Rule::Always,
            "userWithId" => Rule::UserIds(list(param("userIds"))),
            "gradualRolloutUserId" => rollout(
                param("percentage"),
                Stickiness::Field(Field::UserId),
                group,
                warn,
            ),
            "gradualRolloutSessionId" => rollout(
                param("percentage"),
                Stickiness::Field(Field::SessionId),
                group,
                warn,
            ),
            "flexibleRollout" => rollout(
                param("rollout"),
                Stickiness::parse(param("stickiness")),
                group,
                warn,
            ),
            "gradualRolloutRandom" => match percentage(param("percentage"), warn) {
                Some(percentage) => Rule::Random { percentage },
                None => Rule::Never,
            },
            "remoteAddress" => remote_address(param("IPs")),
            "applicationHostname" => hostnames(param("hostNames")),
            other => unknown_strategy(other, warn),
        }
    }

    fn holds(&self, ctx: &Context<'_>) -> bool {
        match self {
            Rule::Always => true,
            Rule::Never => false,
            Rule::UserIds(ids) => ctx
                .user_id
                .is_some_and(|user| ids.iter().any(|id| &**id == user)),
            Rule::Rollout {
                percentage,
                stickiness,
                group,
            } => {
                let bucket = match stickiness.key(ctx) {
                    Key::Id(id) => group.bucket(id, 100),
                    Key::Random => random_bucket(ctx.roll(), 100),
                    Key::Missing => return false,
                };
                *percentage > 0.0 && f64::from(bucket) <= *percentage
            }
            Rule::Random { percentage } => f64::from(random_bucket(ctx.roll(), 100)) <= *percentage,
            Rule::RemoteAddress { ips, nets } => {
                let Some(address) = ctx.remote_address else {
                    return false;
                };
                ips.iter().any(|ip| &**ip == address)
                    || ctx
                        .remote_ip
                        .is_some_and(|ip| nets.iter().any(|net| net.contains(ip)))
            }
            Rule::Hostnames(names) => ctx
                .hostname
                .is_some_and(|host| hostname_listed(names, host)),
        }
    }
}

/// applicationHostname: whether `host` is one of `names` (lower case), case ignored. Out of
/// `holds`, which `Engine::hit` inlines: the strategy is unusual.
#[inline(never)]
fn hostname_listed(names: &[Box<str>], host: &str) -> bool {
    let host = host.trim();
    names.iter().any(|name| {
        if host.is_ascii() {
            name.eq_ignore_ascii_case(host)
        } else {
            **name == *host.to_lowercase()
        }
    })
}

/// A strategy this engine does not implement: never on, with a warning.
#[cold]
#[inline(never)]
fn unknown_strategy(name: &str, warn: &mut impl FnMut(String)) -> Rule {
    warn(format!("unknown strategy {}; it is never on", Quoted(name)));
    Rule::Never
}

#[inline(never)]
fn compile_constraints(
    constraints: &[model::Constraint],
    path: &str,
    warnings: &mut Vec<Warning>,
) -> Box<[Constraint]> {
    constraints
        .iter()
        .enumerate()
        .map(|(i, c)| Constraint::compile(c, &format!("{path}.constraints[{i}]"), warnings))
        .collect()
}

#[inline(never)]
fn strategy_variants(strategy: &model::Strategy, group: &str) -> Option<VariantSet> {
    // The variants' own stickiness wins over the strategy's, as in the Node SDK (Unleash
    // writes both the same; hand-written payloads may not).
    let stickiness = Stickiness::parse(
        strategy
            .variants
            .first()
            .and_then(|v| v.stickiness.as_deref())
            .filter(|s| !s.is_empty())
            .or(strategy.parameter("stickiness")),
    );
    VariantSet::for_strategy(&strategy.variants, stickiness, group)
}

#[inline(never)]
fn remote_address(ips: Option<&str>) -> Rule {
    let ips = list(ips);
    // Entries that are neither an address nor a network are skipped, as the SDKs do.
    let nets = ips.iter().filter_map(|ip| Cidr::parse(ip).ok()).collect();
    Rule::RemoteAddress { ips, nets }
}

#[inline(never)]
fn hostnames(names: Option<&str>) -> Rule {
    Rule::Hostnames(
        list(names)
            .iter()
            .map(|h| h.to_lowercase().into_boxed_str())
            .collect(),
    )
}

/// A comma-separated parameter, trimmed, empty entries dropped.
#[inline(never)]
fn list(text: Option<&str>) -> Box<[Box<str>]> {
    text.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Into::into)
        .collect()
}

#[inline(never)]
fn percentage(text: Option<&str>, warn: &mut impl FnMut(String)) -> Option<f64> {
    let Some(text) = text else {
        warn("no percentage parameter; the strategy is never on".into());
        return None;
    };
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Some(p),
        _ => {
            warn(format!(
                "percentage {} is not a number from 0 to 100; the strategy is never on",
                Quoted(text)
            ));
            None
        }
    }
}

#[inline(never)]
fn rollout(
    text: Option<&str>,
    stickiness: Stickiness,
    group: &str,
    warn: &mut impl FnMut(String),
) -> Rule {
    match percentage(text, warn) {
        Some(percentage) => Rule::Rollout {
            percentage,
            stickiness,
            group: HashGroup::new(group, 0),
        },
        None => Rule::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::rollout_bucket;

    fn strategy(json: &str) -> (Strategy, Vec<Warning>) {
        let value = crate::json::parse(json.as_bytes()).unwrap();
        let model = model::Strategy::read(&value, &crate::json::Path::Root).unwrap();
        let mut warnings = Vec::new();
        let s = Strategy::compile("feat", &model, &Segments::default(), "s", &mut warnings);
        (s, warnings)
    }

    #[test]
    fn flexible_rollout_stickiness() {
        let (s, _) = strategy(
            r#"{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "tenant", "groupId": "g"}}"#,
        );
        assert!(
            !s.is_on(&Context::new().user_id("1")),
            "a missing custom field is off"
        );
        let on = (0..100)
            .filter(|i| {
                let id = i.to_string();
                let props = [("tenant", id.as_str())];
                s.is_on(&Context::new().properties(&props))
            })
            .count();
        assert!((35..65).contains(&on), "{on}");

        let (s, _) = strategy(r#"{"name": "flexibleRollout", "parameters": {"rollout": "1"}}"#);
        let last = || 99u32;
        assert!(
            !s.is_on(&Context::new().random(&last)),
            "random bucket 100 > 1%"
        );
        let first = || 100u32;
        assert!(
            s.is_on(&Context::new().random(&first)),
            "random bucket 1 <= 1%"
        );
        // The group defaults to the feature name.
        let inside = (0..200)
            .map(|i| i.to_string())
            .find(|id| rollout_bucket("feat", id) == 1)
            .unwrap();
        assert!(s.is_on(&Context::new().user_id(&inside)));
    }

    #[test]
    fn remote_address_takes_ips_and_networks() {
        let (s, _) = strategy(
            r#"{"name": "remoteAddress", "parameters": {"IPs": "192.168.0.1, bad, 10.0.0.0/8, ::1"}}"#,
        );
        assert!(s.is_on(&Context::new().remote_address("192.168.0.1")));
        assert!(s.is_on(&Context::new().remote_address("10.20.30.40")));
        assert!(s.is_on(&Context::new().remote_address("::1")));
        assert!(!s.is_on(&Context::new().remote_address("192.168.0.2")));
        assert!(!s.is_on(&Context::new()));
    }

    #[test]
    fn application_hostname_ignores_case() {
        let (s, _) = strategy(
            r#"{"name": "applicationHostname", "parameters": {"hostNames": "Edge-1, edge-2"}}"#,
        );
        assert!(s.is_on(&Context::new().hostname("EDGE-1")));
        assert!(!s.is_on(&Context::new().hostname("edge-3")));
        assert!(!s.is_on(&Context::new()));
    }

    #[test]
    fn unknown_strategies_and_bad_parameters_are_never_on() {
        for json in [
            r#"{"name": "myCustomStrategy"}"#,
            r#"{"name": "flexibleRollout", "parameters": {"rollout": "lots"}}"#,
            r#"{"name": "gradualRolloutRandom", "parameters": {}}"#,
            r#"{"name": "default", "segments": [9]}"#,
        ] {
            let (s, warnings) = strategy(json);
            assert!(!s.is_on(&Context::new().user_id("1")), "{json}");
            assert_eq!(warnings.len(), 1, "{json}");
        }
    }
}
