//! Reading a [`Config`] out of a parsed JSON tree, strictly: unknown and
//! repeated fields are errors, every error names its path. Written by hand
//! rather than derived: serde's deserializers were ~159 KB of the .wasm, in
//! large monomorphised functions.
//!
//! The rules are serde's, and so are the messages: an absent field takes its
//! default; `null` is absent for optional fields and a type error otherwise;
//! an enum is a string (`"path"`) or an object with one key (`{"header":
//! "x-user"}`).
use sluice_primitives::names::NameIndex;
use sluice_primitives::quoted::Quoted;

use sluice_primitives::json::{self, Kind, Number, Path, Value};

use super::chain::{default_max_token_bytes, default_ttl};
use super::*;
use crate::compile::ConfigError;

mod chain;

type Result<T> = std::result::Result<T, ConfigError>;

impl Config {
    /// Parses config JSON strictly; every error names the JSON path (and a
    /// syntax error its line and column too).
    #[inline(never)]
    pub fn from_json(text: &[u8]) -> Result<Config> {
        let value = json::parse(text).map_err(|e| {
            let path = e.path();
            let at = if e.is_eof() || path.is_empty() {
                "config".to_string()
            } else {
                path
            };
            let (line, column) = json::line_column(text, e.offset);
            ConfigError::new(at, format!("{} at line {line} column {column}", e.reason))
        })?;
        config(&value, &Path::Root)
    }
}

fn error(path: &Path<'_>, reason: impl Into<String>) -> ConfigError {
    let at = path.render();
    ConfigError::new(if at.is_empty() { "config".into() } else { at }, reason)
}

/// What was found, in serde's words.
#[inline(never)]
fn found(value: &Value) -> String {
    match &value.kind {
        Kind::Null => "null".into(),
        Kind::Bool(b) => format!("boolean `{b}`"),
        Kind::Number(n @ Number::F64(_)) => format!("floating point `{n}`"),
        Kind::Number(n) => format!("integer `{n}`"),
        Kind::String(s) => format!("string {}", Quoted(s)),
        Kind::Array(_) => "sequence".into(),
        Kind::Object(_) => "map".into(),
    }
}

#[inline(never)]
fn invalid_type(value: &Value, path: &Path<'_>, expected: &str) -> ConfigError {
    error(
        path,
        format!("invalid type: {}, expected {expected}", found(value)),
    )
}

/// `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
#[inline(never)]
fn one_of(names: &[&str]) -> String {
    match names {
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        _ => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", list.join(", "))
        }
    }
}

fn missing(path: &Path<'_>, field: &str) -> ConfigError {
    error(path, format!("missing field `{field}`"))
}

fn required<T>(value: Option<T>, path: &Path<'_>, field: &str) -> Result<T> {
    value.ok_or_else(|| missing(path, field))
}

/// Walks an object's members in document order, rejecting unknown and
/// repeated fields; `each` gets the index of the field in `names`.
#[inline(never)]
fn fields(
    value: &Value,
    path: &Path<'_>,
    what: &str,
    names: &[&str],
    each: &mut dyn FnMut(usize, &Value, &Path<'_>) -> Result<()>,
) -> Result<()> {
    let Kind::Object(members) = &value.kind else {
        return Err(invalid_type(value, path, what));
    };
    let mut seen = 0u64;
    for (key, member) in members {
        let at = path.key(key);
        let Some(i) = names.iter().position(|n| n == key) else {
            return Err(error(
                &at,
                format!("unknown field `{key}`, expected {}", one_of(names)),
            ));
        };
        let bit = 1u64 << (i % 64);
        if seen & bit != 0 {
            return Err(error(&at, format!("duplicate field `{key}`")));
        }
        seen |= bit;
        each(i, member, &at)?;
    }
    Ok(())
}

/// An enum: `"name"` or `{"name": value}`. Returns the variant's index in
/// `names` and, in the object form, its value.
#[inline(never)]
fn variant<'v, 't>(
    value: &'v Value<'t>,
    path: &Path<'_>,
    what: &str,
    names: &[&str],
) -> Result<(usize, Option<&'v Value<'t>>)> {
    let lookup = |name: &str, at: &Path<'_>| {
        names.iter().position(|n| *n == name).ok_or_else(|| {
            error(
                at,
                format!("unknown variant `{name}`, expected {}", one_of(names)),
            )
        })
    };
    match &value.kind {
        Kind::String(name) => Ok((lookup(name, path)?, None)),
        Kind::Object(members) => match members.as_slice() {
            [(name, inner)] => Ok((lookup(name, &path.key(name))?, Some(inner))),
            [(name, _), ..] => {
                lookup(name, &path.key(name))?;
                Err(error(
                    path,
                    format!("expected one key in {what}, found {}", members.len()),
                ))
            }
            [] => Err(error(path, format!("expected one key in {what}, found 0"))),
        },
        _ => Err(invalid_type(value, path, what)),
    }
}

/// A unit variant: a bare name, or `{"name": null}`.
fn unit_variant(value: &Value, path: &Path<'_>, what: &str, names: &[&str]) -> Result<usize> {
    let (i, inner) = variant(value, path, what, names)?;
    unit(inner, path, names.get(i).copied().unwrap_or_default())?;
    Ok(i)
}

/// In the object form, a unit variant's value must be `null`.
#[inline(never)]
fn unit(inner: Option<&Value>, path: &Path<'_>, name: &str) -> Result<()> {
    match inner {
        Some(v) if !v.is_null() => Err(invalid_type(v, &path.key(name), "unit")),
        _ => Ok(()),
    }
}

#[inline(never)]
fn string(value: &Value, path: &Path<'_>) -> Result<String> {
    match &value.kind {
        Kind::String(s) => Ok(s.to_string()),
        _ => Err(invalid_type(value, path, "a string")),
    }
}

#[inline(never)]
fn boolean(value: &Value, path: &Path<'_>) -> Result<bool> {
    match value.kind {
        Kind::Bool(b) => Ok(b),
        _ => Err(invalid_type(value, path, "a boolean")),
    }
}

#[inline(never)]
fn float(value: &Value, path: &Path<'_>) -> Result<f64> {
    value
        .as_f64()
        .ok_or_else(|| invalid_type(value, path, "f64"))
}

#[inline(never)]
fn unsigned(value: &Value, path: &Path<'_>, expected: &str, max: u64) -> Result<u64> {
    match value.kind {
        Kind::Number(Number::U64(n)) if n <= max => Ok(n),
        Kind::Number(Number::U64(_) | Number::I64(_)) => Err(error(
            path,
            format!("invalid value: {}, expected {expected}", found(value)),
        )),
        _ => Err(invalid_type(value, path, expected)),
    }
}

fn u64(value: &Value, path: &Path<'_>) -> Result<u64> {
    unsigned(value, path, "u64", u64::MAX)
}

fn any(value: &Value, _: &Path<'_>) -> Result<super::Value> {
    Ok(value.to_static())
}

/// `null` is `None`.
#[inline(never)]
fn opt<T>(
    value: &Value,
    path: &Path<'_>,
    read: impl FnOnce(&Value, &Path<'_>) -> Result<T>,
) -> Result<Option<T>> {
    if value.is_null() {
        Ok(None)
    } else {
        read(value, path).map(Some)
    }
}

#[inline(never)]
fn list<T>(
    value: &Value,
    path: &Path<'_>,
    read: impl Fn(&Value, &Path<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let Kind::Array(items) = &value.kind else {
        return Err(invalid_type(value, path, "a sequence"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| read(item, &path.index(i)))
        .collect()
}

/// A JSON object whose keys are names, in document order; a repeated name
/// is an error.
#[inline(never)]
fn named<T>(
    value: &Value,
    path: &Path<'_>,
    read: impl Fn(&Value, &Path<'_>) -> Result<T>,
) -> Result<Named<T>> {
    let Kind::Object(members) = &value.kind else {
        return Err(invalid_type(value, path, "an object keyed by name"));
    };
    let mut entries = Vec::with_capacity(members.len());
    // Names seen so far: a linear scan per key made a 1000-flag config quadratic to load, and
    // a tree compares ~20 names per insert (memcmp is a byte loop under wasm).
    let mut seen = NameIndex::with_capacity_and_hasher(members.len(), Default::default());
    for (i, (name, member)) in members.iter().enumerate() {
        let at = path.key(name);
        if seen.insert(name.as_ref(), i).is_some() {
            return Err(error(&at, format!("duplicate name `{name}`")));
        }
        entries.push((name.to_string(), read(member, &at)?));
    }
    Ok(Named(entries))
}

const CONFIG: &[&str] = &[
    "version",
    "revision",
    "$schema",
    "identity",
    "attributes",
    "segments",
    "flags",
    "routes",
    "overrides",
    "outputs",
    "unleash",
    "chain",
    "releases",
    "sources",
];

#[inline(never)]
fn config(value: &Value, path: &Path<'_>) -> Result<Config> {
    let mut version = None;
    let mut c = Config {
        version: 0,
        revision: None,
        schema: None,
        identity: Identity::default(),
        attributes: Named::default(),
        segments: Named::default(),
        flags: Named::default(),
        routes: Named::default(),
        overrides: None,
        outputs: Outputs::default(),
        unleash: None,
        chain: None,
        releases: Named::default(),
        sources: Sources::default(),
    };
    fields(value, path, "struct Config", CONFIG, &mut |i, v, p| {
        match i {
            0 => version = Some(unsigned(v, p, "u32", u64::from(u32::MAX))?),
            1 => c.revision = opt(v, p, string)?,
            2 => c.schema = opt(v, p, string)?,
            4..=7 | 12 => decision_field(&mut c, i, v, p)?,
            _ => setting_field(&mut c, i, v, p)?,
        }
        Ok(())
    })?;
    let version = required(version, path, "version")?;
    c.version = u32::try_from(version).unwrap_or(u32::MAX);
    Ok(c)
}

/// What decides (`CONFIG[i]`): attributes, segments, flags, routes, releases.
#[inline(never)]
fn decision_field(c: &mut Config, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        4 => c.attributes = named(v, p, source)?,
        5 => c.segments = named(v, p, condition)?,
        6 => c.flags = named(v, p, flag)?,
        7 => c.routes = named(v, p, route)?,
        _ => c.releases = named(v, p, chain::release)?,
    }
    Ok(())
}

/// The other top-level fields (`CONFIG[i]`): identity, overrides, outputs, flag sources, chain.
#[inline(never)]
fn setting_field(c: &mut Config, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        3 => c.identity = identity(v, p)?,
        8 => c.overrides = opt(v, p, overrides)?,
        9 => c.outputs = outputs(v, p)?,
        10 => c.unleash = opt(v, p, unleash)?,
        11 => c.chain = opt(v, p, chain::chain)?,
        _ => c.sources = sources(v, p)?,
    }
    Ok(())
}

const SOURCE: &[&str] = &[
    "header",
    "cookie",
    "query",
    "baggage",
    "path",
    "method",
    "authority",
    "source_address",
];

#[inline(never)]
fn source(value: &Value, path: &Path<'_>) -> Result<Source> {
    let (i, inner) = variant(value, path, "enum Source", SOURCE)?;
    if i < 4 {
        let Some(inner) = inner else {
            return Err(error(
                path,
                "invalid type: unit variant, expected newtype variant",
            ));
        };
        let name = SOURCE.get(i).copied().unwrap_or_default();
        let text = string(inner, &path.key(name))?;
        return Ok(match i {
            0 => Source::Header(text),
            1 => Source::Cookie(text),
            2 => Source::Query(text),
            _ => Source::Baggage(text),
        });
    }
    unit(inner, path, SOURCE.get(i).copied().unwrap_or_default())?;
    Ok(match i {
        4 => Source::Path,
        5 => Source::Method,
        6 => Source::Authority,
        _ => Source::SourceAddress,
    })
}

#[inline(never)]
fn identity(value: &Value, path: &Path<'_>) -> Result<Identity> {
    let mut id = Identity::default();
    let names = ["user", "session", "without_identity"];
    fields(value, path, "struct Identity", &names, &mut |i, v, p| {
        match i {
            0 => id.user = list(v, p, source)?,
            1 => id.session = list(v, p, source)?,
            _ => id.without_identity = without_identity(v, p)?,
        }
        Ok(())
    })?;
    Ok(id)
}

#[inline(never)]
fn without_identity(value: &Value, path: &Path<'_>) -> Result<WithoutIdentity> {
    let i = unit_variant(value, path, "enum WithoutIdentity", &["default", "random"])?;
    Ok(if i == 0 {
        WithoutIdentity::Default
    } else {
        WithoutIdentity::Random
    })
}

#[inline(never)]
fn bucket_by(value: &Value, path: &Path<'_>) -> Result<BucketBy> {
    let i = unit_variant(value, path, "enum BucketBy", &["user", "session"])?;
    Ok(if i == 0 {
        BucketBy::User
    } else {
        BucketBy::Session
    })
}

const CONDITION: &[&str] = &[
    "all",
    "any",
    "not",
    "segment",
    "attr",
    "header",
    "cookie",
    "query",
    "equals",
    "in",
    "prefix",
    "suffix",
    "contains",
    "num_eq",
    "num_gt",
    "num_gte",
    "num_lt",
    "num_lte",
    "semver_eq",
    "semver_gt",
    "semver_gte",
    "semver_lt",
    "semver_lte",
    "cidr",
    "present",
    "ignore_case",
    "negate",
];

#[inline(never)]
fn condition(value: &Value, path: &Path<'_>) -> Result<Condition> {
    let mut c = Condition::default();
    fields(
        value,
        path,
        "struct Condition",
        CONDITION,
        &mut |i, v, p| condition_field(&mut c, i, v, p),
    )?;
    Ok(c)
}

/// The condition's field `CONDITION[i]`.
#[inline(never)]
fn condition_field(c: &mut Condition, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    if let Some(slot) = condition_text(c, i) {
        *slot = opt(v, p, string)?;
        return Ok(());
    }
    if let Some(slot) = condition_number(c, i) {
        *slot = opt(v, p, float)?;
        return Ok(());
    }
    if condition_combinator(c, i, v, p)? {
        return Ok(());
    }
    match i {
        9 => c.in_list = opt(v, p, |v, p| list(v, p, string))?,
        23 => c.cidr = opt(v, p, one_or_many)?,
        24 => c.present = opt(v, p, boolean)?,
        25 => c.ignore_case = boolean(v, p)?,
        _ => c.negate = boolean(v, p)?,
    }
    Ok(())
}

/// Reads the condition's field `CONDITION[i]` if it is a combinator (`all`, `any`, `not`);
/// `false` when it is another field.
#[inline(never)]
fn condition_combinator(c: &mut Condition, i: usize, v: &Value, p: &Path<'_>) -> Result<bool> {
    match i {
        0 => c.all = opt(v, p, |v, p| list(v, p, condition))?,
        1 => c.any = opt(v, p, |v, p| list(v, p, condition))?,
        2 => c.not = opt(v, p, condition)?.map(Box::new),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The condition's text field `CONDITION[i]`, if it is one.
#[inline(never)]
fn condition_text(c: &mut Condition, i: usize) -> Option<&mut Option<String>> {
    Some(match i {
        3 => &mut c.segment,
        4 => &mut c.attr,
        5 => &mut c.header,
        6 => &mut c.cookie,
        7 => &mut c.query,
        8 => &mut c.equals,
        10 => &mut c.prefix,
        11 => &mut c.suffix,
        12 => &mut c.contains,
        18 => &mut c.semver_eq,
        19 => &mut c.semver_gt,
        20 => &mut c.semver_gte,
        21 => &mut c.semver_lt,
        22 => &mut c.semver_lte,
        _ => return None,
    })
}

/// The condition's number field `CONDITION[i]`, if it is one.
#[inline(never)]
fn condition_number(c: &mut Condition, i: usize) -> Option<&mut Option<f64>> {
    Some(match i {
        13 => &mut c.num_eq,
        14 => &mut c.num_gt,
        15 => &mut c.num_gte,
        16 => &mut c.num_lt,
        17 => &mut c.num_lte,
        _ => return None,
    })
}

#[inline(never)]
fn one_or_many(value: &Value, path: &Path<'_>) -> Result<OneOrMany> {
    match &value.kind {
        Kind::String(s) => return Ok(OneOrMany::One(s.to_string())),
        Kind::Array(items) => {
            let strings: Option<Vec<String>> =
                items.iter().map(|v| v.as_str().map(String::from)).collect();
            if let Some(strings) = strings {
                return Ok(OneOrMany::Many(strings));
            }
        }
        _ => {}
    }
    Err(error(
        path,
        "data did not match any variant of untagged enum OneOrMany",
    ))
}

const FLAG: &[&str] = &[
    "description",
    "variants",
    "default",
    "enabled",
    "off_variant",
    "prerequisites",
    "rules",
    "schedule",
    "bucket_by",
    "salt",
    "without_identity",
    "header",
    "experiment",
];

#[inline(never)]
fn flag(value: &Value, path: &Path<'_>) -> Result<Flag> {
    let mut f = Flag {
        description: None,
        variants: None,
        default: None,
        enabled: yes(),
        off_variant: None,
        prerequisites: Vec::new(),
        rules: Vec::new(),
        schedule: None,
        bucket_by: None,
        salt: None,
        without_identity: None,
        header: None,
        experiment: None,
    };
    fields(value, path, "struct Flag", FLAG, &mut |i, v, p| match i {
        1..=6 => flag_serving_field(&mut f, i, v, p),
        _ => flag_other_field(&mut f, i, v, p),
    })?;
    Ok(f)
}

/// What the flag serves (`FLAG[i]`): variants, default, enabled, off variant, prerequisites,
/// rules.
#[inline(never)]
fn flag_serving_field(f: &mut Flag, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        1 => f.variants = opt(v, p, |v, p| named(v, p, any))?,
        2 => f.default = opt(v, p, string)?,
        3 => f.enabled = boolean(v, p)?,
        4 => f.off_variant = opt(v, p, string)?,
        5 => f.prerequisites = list(v, p, prerequisite)?,
        _ => f.rules = list(v, p, rule)?,
    }
    Ok(())
}

/// The flag's other fields (`FLAG[i]`): description, schedule, bucketing, header, experiment.
#[inline(never)]
fn flag_other_field(f: &mut Flag, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        0 => f.description = opt(v, p, string)?,
        7 => f.schedule = opt(v, p, schedule)?,
        8 => f.bucket_by = opt(v, p, bucket_by)?,
        9 => f.salt = opt(v, p, string)?,
        10 => f.without_identity = opt(v, p, without_identity)?,
        11 => f.header = opt(v, p, string)?,
        _ => f.experiment = opt(v, p, experiment)?.flatten(),
    }
    Ok(())
}

#[inline(never)]
fn webhook(value: &Value, path: &Path<'_>) -> Result<Webhook> {
    let mut cluster = None;
    let mut w = Webhook {
        cluster: String::new(),
        path: "/".into(),
        authority: None,
        timeout: "2s".into(),
        attempts: 5,
    };
    let names = ["cluster", "path", "authority", "timeout", "attempts"];
    fields(value, path, "struct Webhook", &names, &mut |i, v, p| {
        match i {
            0 => cluster = Some(string(v, p)?),
            1 => w.path = string(v, p)?,
            2 => w.authority = opt(v, p, string)?,
            3 => w.timeout = string(v, p)?,
            _ => w.attempts = u64(v, p)?.min(u64::from(u32::MAX)) as u32,
        }
        Ok(())
    })?;
    w.cluster = required(cluster, path, "cluster")?;
    Ok(w)
}

/// `true`, `false` or `{"goals": [...], "goal_header": "..."}`.
#[inline(never)]
fn experiment(value: &Value, path: &Path<'_>) -> Result<Option<Experiment>> {
    let mut e = Experiment {
        goals: Vec::new(),
        goal_header: default_goal_header(),
    };
    match value.kind {
        Kind::Bool(on) => return Ok(on.then_some(e)),
        Kind::Object(_) => {}
        _ => return Err(invalid_type(value, path, "a boolean or a map")),
    }
    let names = ["goals", "goal_header"];
    fields(value, path, "struct Experiment", &names, &mut |i, v, p| {
        match i {
            0 => e.goals = list(v, p, string)?,
            _ => e.goal_header = string(v, p)?,
        }
        Ok(())
    })?;
    Ok(Some(e))
}

#[inline(never)]
fn prerequisite(value: &Value, path: &Path<'_>) -> Result<Prerequisite> {
    let (mut flag, mut variants) = (None, None);
    let names = ["flag", "variants"];
    fields(
        value,
        path,
        "struct Prerequisite",
        &names,
        &mut |i, v, p| {
            match i {
                0 => flag = Some(string(v, p)?),
                _ => variants = Some(list(v, p, string)?),
            }
            Ok(())
        },
    )?;
    Ok(Prerequisite {
        flag: required(flag, path, "flag")?,
        variants: required(variants, path, "variants")?,
    })
}

#[inline(never)]
fn rule(value: &Value, path: &Path<'_>) -> Result<Rule> {
    let mut r = Rule {
        name: None,
        when: None,
        serve: None,
        rollout: None,
    };
    let names = ["name", "when", "serve", "rollout"];
    fields(value, path, "struct Rule", &names, &mut |i, v, p| {
        match i {
            0 => r.name = opt(v, p, string)?,
            1 => r.when = opt(v, p, condition)?,
            2 => r.serve = opt(v, p, string)?,
            _ => r.rollout = opt(v, p, |v, p| named(v, p, float))?,
        }
        Ok(())
    })?;
    Ok(r)
}

#[inline(never)]
fn schedule(value: &Value, path: &Path<'_>) -> Result<Schedule> {
    let mut s = Schedule {
        enable_at: None,
        ramp: None,
    };
    let names = ["enable_at", "ramp"];
    fields(value, path, "struct Schedule", &names, &mut |i, v, p| {
        match i {
            0 => s.enable_at = opt(v, p, string)?,
            _ => s.ramp = opt(v, p, ramp)?,
        }
        Ok(())
    })?;
    Ok(s)
}

#[inline(never)]
fn ramp(value: &Value, path: &Path<'_>) -> Result<Ramp> {
    let (mut start, mut duration, mut from, mut to) = (None, None, None, None);
    let names = ["start", "duration", "from", "to"];
    fields(value, path, "struct Ramp", &names, &mut |i, v, p| {
        match i {
            0 => start = Some(string(v, p)?),
            1 => duration = Some(string(v, p)?),
            2 => from = Some(float(v, p)?),
            _ => to = Some(float(v, p)?),
        }
        Ok(())
    })?;
    Ok(Ramp {
        start: required(start, path, "start")?,
        duration: required(duration, path, "duration")?,
        from: required(from, path, "from")?,
        to: required(to, path, "to")?,
    })
}

const ROUTE: &[&str] = &[
    "match",
    "header",
    "versions",
    "canary",
    "blue_green",
    "split",
    "pins",
    "bucket_by",
    "salt",
    "without_identity",
    "sticky_cookie",
    "guard",
    "requires",
];

#[inline(never)]
fn route(value: &Value, path: &Path<'_>) -> Result<Route> {
    let (mut header, mut versions) = (None, None);
    let mut r = Route {
        matcher: RouteMatch::default(),
        header: String::new(),
        versions: Vec::new(),
        canary: None,
        blue_green: None,
        split: None,
        pins: Vec::new(),
        bucket_by: None,
        salt: None,
        without_identity: None,
        sticky_cookie: None,
        guard: None,
        requires: Named::default(),
    };
    fields(value, path, "struct Route", ROUTE, &mut |i, v, p| {
        match i {
            0 => r.matcher = route_match(v, p)?,
            1 => header = Some(string(v, p)?),
            2 => versions = Some(list(v, p, string)?),
            3..=6 => route_strategy_field(&mut r, i, v, p)?,
            _ => route_other_field(&mut r, i, v, p)?,
        }
        Ok(())
    })?;
    r.header = required(header, path, "header")?;
    r.versions = required(versions, path, "versions")?;
    Ok(r)
}

/// How the route chooses a version (`ROUTE[i]`): canary, blue_green, split, pins.
#[inline(never)]
fn route_strategy_field(r: &mut Route, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        3 => r.canary = opt(v, p, canary)?,
        4 => r.blue_green = opt(v, p, blue_green)?,
        5 => r.split = opt(v, p, |v, p| named(v, p, float))?,
        _ => r.pins = list(v, p, pin)?,
    }
    Ok(())
}

/// The route's other fields (`ROUTE[i]`): bucketing, sticky cookie, guard, requirements.
#[inline(never)]
fn route_other_field(r: &mut Route, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        7 => r.bucket_by = opt(v, p, bucket_by)?,
        8 => r.salt = opt(v, p, string)?,
        9 => r.without_identity = opt(v, p, without_identity)?,
        10 => r.sticky_cookie = opt(v, p, sticky_cookie)?,
        11 => r.guard = opt(v, p, guard)?,
        _ => r.requires = named(v, p, |v, p| list(v, p, chain::requirement))?,
    }
    Ok(())
}

#[inline(never)]
fn route_match(value: &Value, path: &Path<'_>) -> Result<RouteMatch> {
    let mut m = RouteMatch::default();
    let names = ["authority", "path_prefix", "methods"];
    fields(value, path, "struct RouteMatch", &names, &mut |i, v, p| {
        match i {
            0 => m.authority = list(v, p, string)?,
            1 => m.path_prefix = opt(v, p, string)?,
            _ => m.methods = list(v, p, string)?,
        }
        Ok(())
    })?;
    Ok(m)
}

#[inline(never)]
fn canary(value: &Value, path: &Path<'_>) -> Result<Canary> {
    let (mut stable, mut canary) = (None, None);
    let (mut weight, mut start, mut steps) = (0.0, None, Vec::new());
    let names = ["stable", "canary", "weight", "start", "steps"];
    fields(value, path, "struct Canary", &names, &mut |i, v, p| {
        match i {
            0 => stable = Some(string(v, p)?),
            1 => canary = Some(string(v, p)?),
            2 => weight = float(v, p)?,
            3 => start = opt(v, p, string)?,
            _ => steps = list(v, p, step)?,
        }
        Ok(())
    })?;
    Ok(Canary {
        stable: required(stable, path, "stable")?,
        canary: required(canary, path, "canary")?,
        weight,
        start,
        steps,
    })
}

#[inline(never)]
fn step(value: &Value, path: &Path<'_>) -> Result<Step> {
    let (mut at, mut after, mut weight) = (None, None, None);
    let names = ["at", "after", "weight"];
    fields(value, path, "struct Step", &names, &mut |i, v, p| {
        match i {
            0 => at = opt(v, p, string)?,
            1 => after = opt(v, p, string)?,
            _ => weight = Some(float(v, p)?),
        }
        Ok(())
    })?;
    Ok(Step {
        at,
        after,
        weight: required(weight, path, "weight")?,
    })
}

#[inline(never)]
fn blue_green(value: &Value, path: &Path<'_>) -> Result<BlueGreen> {
    let (mut active, mut preview, mut shift_) = (None, None, None);
    let names = ["active", "preview", "shift"];
    fields(value, path, "struct BlueGreen", &names, &mut |i, v, p| {
        match i {
            0 => active = Some(string(v, p)?),
            1 => preview = opt(v, p, condition)?,
            _ => shift_ = opt(v, p, shift)?,
        }
        Ok(())
    })?;
    Ok(BlueGreen {
        active: required(active, path, "active")?,
        preview,
        shift: shift_,
    })
}

#[inline(never)]
fn shift(value: &Value, path: &Path<'_>) -> Result<Shift> {
    let mut s = Shift {
        weight: 0.0,
        start: None,
        steps: Vec::new(),
    };
    let names = ["weight", "start", "steps"];
    fields(value, path, "struct Shift", &names, &mut |i, v, p| {
        match i {
            0 => s.weight = float(v, p)?,
            1 => s.start = opt(v, p, string)?,
            _ => s.steps = list(v, p, step)?,
        }
        Ok(())
    })?;
    Ok(s)
}

#[inline(never)]
fn pin(value: &Value, path: &Path<'_>) -> Result<Pin> {
    let (mut when, mut version) = (None, None);
    let names = ["when", "version"];
    fields(value, path, "struct Pin", &names, &mut |i, v, p| {
        match i {
            0 => when = Some(condition(v, p)?),
            _ => version = Some(string(v, p)?),
        }
        Ok(())
    })?;
    Ok(Pin {
        when: required(when, path, "when")?,
        version: required(version, path, "version")?,
    })
}

#[inline(never)]
fn sticky_cookie(value: &Value, path: &Path<'_>) -> Result<StickyCookie> {
    let mut name = None;
    let mut c = StickyCookie {
        name: String::new(),
        path: root_path(),
        max_age: None,
        same_site: None,
        secure: false,
        http_only: yes(),
    };
    let names = [
        "name",
        "path",
        "max_age",
        "same_site",
        "secure",
        "http_only",
    ];
    fields(
        value,
        path,
        "struct StickyCookie",
        &names,
        &mut |i, v, p| {
            match i {
                0 => name = Some(string(v, p)?),
                1 => c.path = string(v, p)?,
                2 => c.max_age = opt(v, p, string)?,
                3 => c.same_site = opt(v, p, same_site)?,
                4 => c.secure = boolean(v, p)?,
                _ => c.http_only = boolean(v, p)?,
            }
            Ok(())
        },
    )?;
    c.name = required(name, path, "name")?;
    Ok(c)
}

#[inline(never)]
fn same_site(value: &Value, path: &Path<'_>) -> Result<SameSite> {
    let names = ["Strict", "strict", "Lax", "lax", "None", "none"];
    Ok(
        match unit_variant(value, path, "enum SameSite", &names)? / 2 {
            0 => SameSite::Strict,
            1 => SameSite::Lax,
            _ => SameSite::None,
        },
    )
}

#[inline(never)]
fn guard(value: &Value, path: &Path<'_>) -> Result<Guard> {
    let mut g = Guard {
        max_error_rate: None,
        max_p99_ratio: None,
        window: default_window(),
        min_requests: default_min_requests(),
        count_local_replies: false,
        action: GuardAction::default(),
        method: GuardMethod::default(),
        alpha: None,
        slow: None,
        webhook: None,
    };
    let names = [
        "max_error_rate",
        "max_p99_ratio",
        "window",
        "min_requests",
        "count_local_replies",
        "action",
        "method",
        "alpha",
        "slow",
        "webhook",
    ];
    fields(value, path, "struct Guard", &names, &mut |i, v, p| {
        match i {
            0 => g.max_error_rate = opt(v, p, float)?,
            1 => g.max_p99_ratio = opt(v, p, float)?,
            2 => g.window = string(v, p)?,
            3 => g.min_requests = u64(v, p)?,
            4 => g.count_local_replies = boolean(v, p)?,
            6..=8 => guard_test_field(&mut g, i, v, p)?,
            9 => g.webhook = opt(v, p, webhook)?,
            _ => {
                let names = ["rollback", "pause"];
                g.action = match unit_variant(v, p, "enum GuardAction", &names)? {
                    0 => GuardAction::Rollback,
                    _ => GuardAction::Pause,
                }
            }
        }
        Ok(())
    })?;
    Ok(g)
}

/// How the guard tests the canary (its field `i`): method, alpha, slow.
#[inline(never)]
fn guard_test_field(g: &mut Guard, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        6 => {
            let names = ["threshold", "sequential"];
            g.method = match unit_variant(v, p, "enum GuardMethod", &names)? {
                0 => GuardMethod::Threshold,
                _ => GuardMethod::Sequential,
            }
        }
        7 => g.alpha = opt(v, p, float)?,
        _ => g.slow = opt(v, p, string)?,
    }
    Ok(())
}

#[inline(never)]
fn overrides(value: &Value, path: &Path<'_>) -> Result<Overrides> {
    let mut o = Overrides {
        header: default_override_header(),
        secret_header: default_secret_header(),
        secret_sha256: None,
        allow_sources: Vec::new(),
        debug_header: None,
    };
    let names = [
        "header",
        "secret_header",
        "secret_sha256",
        "allow_sources",
        "debug_header",
    ];
    fields(value, path, "struct Overrides", &names, &mut |i, v, p| {
        match i {
            0 => o.header = string(v, p)?,
            1 => o.secret_header = string(v, p)?,
            2 => o.secret_sha256 = opt(v, p, string)?,
            3 => o.allow_sources = list(v, p, string)?,
            _ => o.debug_header = opt(v, p, string)?,
        }
        Ok(())
    })?;
    Ok(o)
}

#[inline(never)]
fn outputs(value: &Value, path: &Path<'_>) -> Result<Outputs> {
    let mut o = Outputs::default();
    let names = ["flags_header", "baggage", "trust_incoming_from"];
    fields(value, path, "struct Outputs", &names, &mut |i, v, p| {
        match i {
            0 => o.flags_header = opt(v, p, string)?,
            1 => o.baggage = opt(v, p, baggage)?,
            _ => o.trust_incoming_from = list(v, p, string)?,
        }
        Ok(())
    })?;
    Ok(o)
}

#[inline(never)]
fn baggage(value: &Value, path: &Path<'_>) -> Result<Baggage> {
    let mut prefix = default_baggage_prefix();
    fields(
        value,
        path,
        "struct Baggage",
        &["prefix"],
        &mut |_, v, p| {
            prefix = string(v, p)?;
            Ok(())
        },
    )?;
    Ok(Baggage { prefix })
}

#[inline(never)]
fn unleash(value: &Value, path: &Path<'_>) -> Result<Unleash> {
    let mut u = Unleash {
        payload: None,
        poll: None,
        context: UnleashContext::default(),
        features: None,
        headers: Named::default(),
        before_first_payload: BeforeFirstPayload::default(),
        metrics: None,
    };
    let names = [
        "payload",
        "poll",
        "context",
        "features",
        "headers",
        "before_first_payload",
        "metrics",
    ];
    fields(value, path, "struct Unleash", &names, &mut |i, v, p| {
        match i {
            0 => u.payload = opt(v, p, any)?,
            1 => u.poll = opt(v, p, unleash_poll)?,
            2 => u.context = unleash_context(v, p)?,
            3 => u.features = opt(v, p, |v, p| list(v, p, string))?,
            4 => u.headers = named(v, p, string)?,
            6 => u.metrics = opt(v, p, unleash_metrics)?.flatten(),
            _ => {
                let names = ["defaults", "pass_through"];
                let what = "enum BeforeFirstPayload";
                u.before_first_payload = match unit_variant(v, p, what, &names)? {
                    0 => BeforeFirstPayload::Defaults,
                    _ => BeforeFirstPayload::PassThrough,
                }
            }
        }
        Ok(())
    })?;
    Ok(u)
}

/// `true` (the defaults), `false` (off) or a map of settings.
#[inline(never)]
fn unleash_metrics(value: &Value, path: &Path<'_>) -> Result<Option<UnleashMetrics>> {
    let mut m = UnleashMetrics::default();
    match value.kind {
        Kind::Bool(on) => return Ok(on.then_some(m)),
        Kind::Object(_) => {}
        _ => return Err(invalid_type(value, path, "a boolean or a map")),
    }
    let names = ["interval", "max_pending_buckets", "instance_id"];
    fields(
        value,
        path,
        "struct UnleashMetrics",
        &names,
        &mut |i, v, p| {
            match i {
                0 => m.interval = string(v, p)?,
                1 => m.max_pending_buckets = u64(v, p)?,
                _ => m.instance_id = opt(v, p, string)?,
            }
            Ok(())
        },
    )?;
    Ok(Some(m))
}

#[inline(never)]
fn unleash_poll(value: &Value, path: &Path<'_>) -> Result<UnleashPoll> {
    let mut cluster = None;
    let mut u = UnleashPoll {
        cluster: String::new(),
        authority: None,
        path: default_unleash_path(),
        authorization: None,
        interval: default_poll_interval(),
        timeout: default_poll_timeout(),
        max_body_bytes: default_max_body_bytes(),
    };
    let names = [
        "cluster",
        "authority",
        "path",
        "authorization",
        "interval",
        "timeout",
        "max_body_bytes",
    ];
    fields(value, path, "struct UnleashPoll", &names, &mut |i, v, p| {
        match i {
            0 => cluster = Some(string(v, p)?),
            1 => u.authority = opt(v, p, string)?,
            2 => u.path = string(v, p)?,
            3 => u.authorization = opt(v, p, string)?,
            4 => u.interval = string(v, p)?,
            5 => u.timeout = string(v, p)?,
            _ => u.max_body_bytes = u64(v, p)?,
        }
        Ok(())
    })?;
    u.cluster = required(cluster, path, "cluster")?;
    Ok(u)
}

#[inline(never)]
fn sources(value: &Value, path: &Path<'_>) -> Result<Sources> {
    let mut s = Sources::default();
    fields(
        value,
        path,
        "struct Sources",
        &["spring"],
        &mut |_, v, p| {
            s.spring = opt(v, p, spring_source)?;
            Ok(())
        },
    )?;
    Ok(s)
}

#[inline(never)]
fn spring_source(value: &Value, path: &Path<'_>) -> Result<SpringSource> {
    let (mut cluster, mut application, mut profiles) = (None, None, None);
    let mut s = SpringSource {
        cluster: String::new(),
        authority: None,
        application: String::new(),
        profiles: Vec::new(),
        label: None,
        prefix: "features".to_string(),
        authorization: None,
        basic: None,
        interval: default_poll_interval(),
        timeout: default_poll_timeout(),
        max_body_bytes: default_max_body_bytes(),
    };
    let names = [
        "cluster",
        "authority",
        "application",
        "profiles",
        "label",
        "prefix",
        "authorization",
        "basic",
        "interval",
        "timeout",
        "max_body_bytes",
    ];
    fields(
        value,
        path,
        "struct SpringSource",
        &names,
        &mut |i, v, p| {
            match i {
                0 => cluster = Some(string(v, p)?),
                1 => s.authority = opt(v, p, string)?,
                2 => application = Some(string(v, p)?),
                3 => profiles = Some(list(v, p, string)?),
                4 => s.label = opt(v, p, string)?,
                _ => spring_poll_field(&mut s, i, v, p)?,
            }
            Ok(())
        },
    )?;
    s.cluster = required(cluster, path, "cluster")?;
    s.application = required(application, path, "application")?;
    s.profiles = required(profiles, path, "profiles")?;
    Ok(s)
}

/// How the Spring source is polled and read (its field `i`, ≥ 5): prefix, credentials,
/// interval, timeout, body limit.
#[inline(never)]
fn spring_poll_field(s: &mut SpringSource, i: usize, v: &Value, p: &Path<'_>) -> Result<()> {
    match i {
        5 => s.prefix = string(v, p)?,
        6 => s.authorization = opt(v, p, string)?,
        7 => s.basic = opt(v, p, basic)?,
        8 => s.interval = string(v, p)?,
        9 => s.timeout = string(v, p)?,
        _ => s.max_body_bytes = u64(v, p)?,
    }
    Ok(())
}

/// `sources.spring.basic`: `(username, password)`.
#[inline(never)]
fn basic(value: &Value, path: &Path<'_>) -> Result<(String, String)> {
    let (mut user, mut password) = (None, None);
    fields(
        value,
        path,
        "struct Basic",
        &["username", "password"],
        &mut |i, v, p| {
            match i {
                0 => user = Some(string(v, p)?),
                _ => password = Some(string(v, p)?),
            }
            Ok(())
        },
    )?;
    Ok((
        required(user, path, "username")?,
        required(password, path, "password")?,
    ))
}

#[inline(never)]
fn unleash_context(value: &Value, path: &Path<'_>) -> Result<UnleashContext> {
    let mut c = UnleashContext::default();
    let names = [
        "user_id",
        "session_id",
        "remote_address",
        "app_name",
        "environment",
        "properties",
    ];
    fields(
        value,
        path,
        "struct UnleashContext",
        &names,
        &mut |i, v, p| {
            match i {
                0 => c.user_id = list(v, p, source)?,
                1 => c.session_id = list(v, p, source)?,
                2 => c.remote_address = list(v, p, source)?,
                3 => c.app_name = opt(v, p, string)?,
                4 => c.environment = opt(v, p, string)?,
                _ => c.properties = named(v, p, source)?,
            }
            Ok(())
        },
    )?;
    Ok(c)
}
