//! Constraints, compiled once: operands parsed (numbers, dates, semvers,
//! CIDRs, regexes), case-insensitive operands lowered, long IN lists hashed.
//!
//! Semantics follow the Unleash SDKs: a missing context field fails every
//! operator but NOT_IN; `inverted` flips the result. A constraint whose own
//! operand is unusable (unknown operator, bad number, date, semver or regex)
//! never matches, inverted or not, and leaves a warning.

use sluice_primitives::quoted::Quoted;
use std::cmp::Ordering;
use std::net::IpAddr;

#[cfg(feature = "regex")]
use crate::regex::{self, Regex};
use sluice_primitives::cidr::{parse_socket_ip, Cidr};
use sluice_primitives::names::OwnedNameIndex;
use sluice_primitives::semver::Version;
use sluice_primitives::time::parse_rfc3339_millis;

use crate::context::{Context, Field};
use crate::engine::Warning;
use crate::model::{self, Operator};

/// IN lists longer than this are looked up in a hash set.
const SET_THRESHOLD: usize = 8;
#[cfg(feature = "regex")]
/// Bound on a compiled regex, so a payload cannot make the VM allocate much.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct Constraint {
    field: Field,
    inverted: bool,
    op: Op,
}

#[derive(Debug)]
enum Op {
    In(Values),
    NotIn(Values),
    Str(StrOp, Box<[Box<str>]>, bool),
    Num(Cmp, f64),
    DateAfter(i64),
    DateBefore(i64),
    Semver(Cmp, Version),
    #[cfg(feature = "regex")]
    Regex(Regex),
    InCidr(Box<[Cidr]>),
    Never,
}

#[derive(Debug, Clone, Copy)]
enum StrOp {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    /// The comparison of a NUM_* or SEMVER_* operator.
    fn of(operator: &Operator) -> Cmp {
        match operator {
            Operator::NumGt | Operator::SemverGt => Cmp::Gt,
            Operator::NumGte | Operator::SemverGte => Cmp::Gte,
            Operator::NumLt | Operator::SemverLt => Cmp::Lt,
            Operator::NumLte | Operator::SemverLte => Cmp::Lte,
            _ => Cmp::Eq,
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Gte => ord != Ordering::Less,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Lte => ord != Ordering::Greater,
        }
    }
}

#[derive(Debug)]
enum Values {
    Few(Box<[Box<str>]>),
    /// A set: the names map's values are unused (one map type for the module's names).
    Many(OwnedNameIndex),
}

impl Values {
    #[inline(never)]
    fn new(values: &[String]) -> Values {
        if values.len() > SET_THRESHOLD {
            Values::Many(values.iter().map(|v| (v.as_str().into(), 0)).collect())
        } else {
            Values::Few(values.iter().map(|v| v.as_str().into()).collect())
        }
    }

    fn contains(&self, value: &str) -> bool {
        match self {
            Values::Few(list) => list.iter().any(|v| &**v == value),
            Values::Many(set) => set.contains_key(value),
        }
    }
}

impl Constraint {
    /// Compiles one constraint; `path` locates it in warnings.
    #[inline(never)]
    pub(crate) fn compile(
        c: &model::Constraint,
        path: &str,
        warnings: &mut Vec<Warning>,
    ) -> Constraint {
        let mut warn = |message: String| {
            warnings.push(Warning {
                path: path.to_string(),
                unknown: message.starts_with("unknown operator"),
                message,
            })
        };
        let single = c.value.as_deref().or(c.values.first().map(String::as_str));
        let op = match &c.operator {
            Operator::In => Op::In(Values::new(&c.values)),
            Operator::NotIn => Op::NotIn(Values::new(&c.values)),
            Operator::StrStartsWith => str_op(StrOp::StartsWith, c),
            Operator::StrEndsWith => str_op(StrOp::EndsWith, c),
            Operator::StrContains => str_op(StrOp::Contains, c),
            Operator::NumEq
            | Operator::NumGt
            | Operator::NumGte
            | Operator::NumLt
            | Operator::NumLte => num_op(Cmp::of(&c.operator), single, &mut warn),
            Operator::DateAfter => date_op(true, single, &mut warn),
            Operator::DateBefore => date_op(false, single, &mut warn),
            Operator::SemverEq
            | Operator::SemverGt
            | Operator::SemverGte
            | Operator::SemverLt
            | Operator::SemverLte => semver_op(Cmp::of(&c.operator), single, &mut warn),
            Operator::Regex => regex_op(single, c.case_insensitive, &mut warn),
            Operator::InCidr => cidr_op(&c.values, &mut warn),
            Operator::Unknown(name) => {
                warn(format!(
                    "unknown operator {}; the constraint never matches",
                    Quoted(name)
                ));
                Op::Never
            }
        };
        Constraint {
            field: Field::parse(&c.context_name),
            inverted: c.inverted,
            op,
        }
    }

    pub(crate) fn matches(&self, ctx: &Context<'_>) -> bool {
        let value = || ctx.field(&self.field);
        let hit = match &self.op {
            Op::Never => return false,
            Op::In(values) => value().is_some_and(|v| values.contains(v)),
            Op::NotIn(values) => !value().is_some_and(|v| values.contains(v)),
            Op::Str(kind, values, ci) => {
                value().is_some_and(|v| str_matches(*kind, values, *ci, v))
            }
            Op::Num(cmp, operand) => value().is_some_and(|v| num_holds(*cmp, *operand, v)),
            Op::DateAfter(at) => self.time(ctx).is_some_and(|now| now > *at),
            Op::DateBefore(at) => self.time(ctx).is_some_and(|now| now < *at),
            Op::Semver(cmp, operand) => value().is_some_and(|v| semver_holds(*cmp, operand, v)),
            #[cfg(feature = "regex")]
            Op::Regex(re) => value().is_some_and(|v| regex_matches(re, v)),
            Op::InCidr(nets) => self
                .ip(ctx)
                .is_some_and(|ip| nets.iter().any(|net| net.contains(ip))),
        };
        hit != self.inverted
    }

    fn time(&self, ctx: &Context<'_>) -> Option<i64> {
        match &self.field {
            Field::CurrentTime => ctx.current_time,
            _ => ctx.field(&self.field).and_then(parse_rfc3339_millis),
        }
    }

    fn ip(&self, ctx: &Context<'_>) -> Option<IpAddr> {
        match &self.field {
            Field::RemoteAddress => ctx.remote_ip,
            _ => ctx.field(&self.field).and_then(parse_socket_ip),
        }
    }
}

#[inline(never)]
fn num_holds(cmp: Cmp, operand: f64, value: &str) -> bool {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|v| v.partial_cmp(&operand))
        .is_some_and(|ord| cmp.holds(ord))
}

#[inline(never)]
fn semver_holds(cmp: Cmp, operand: &Version, value: &str) -> bool {
    Version::parse(value).is_ok_and(|v| cmp.holds(v.cmp(operand)))
}

/// The regex search, kept out of `matches` (it is most of its code).
#[cfg(feature = "regex")]
#[inline(never)]
fn regex_matches(re: &Regex, value: &str) -> bool {
    re.is_match(value)
}

#[inline(never)]
fn str_op(kind: StrOp, c: &model::Constraint) -> Op {
    let values = c
        .values
        .iter()
        .map(|v| {
            if c.case_insensitive {
                v.to_lowercase().into_boxed_str()
            } else {
                v.as_str().into()
            }
        })
        .collect();
    Op::Str(kind, values, c.case_insensitive)
}

fn str_matches(kind: StrOp, values: &[Box<str>], ci: bool, value: &str) -> bool {
    if ci {
        return str_matches_ignoring_case(kind, values, value);
    }
    values.iter().any(|v| match kind {
        StrOp::StartsWith => value.starts_with(&**v),
        StrOp::EndsWith => value.ends_with(&**v),
        StrOp::Contains => value.contains(&**v),
    })
}

/// `str_matches` for a `caseInsensitive` constraint (operands lower-cased at compile). Out of
/// line: few constraints set it, and the case-sensitive match is the common one.
#[inline(never)]
fn str_matches_ignoring_case(kind: StrOp, values: &[Box<str>], value: &str) -> bool {
    if value.is_ascii() {
        // The operands are already lower case: compare without allocating.
        let hay = value.as_bytes();
        return values.iter().any(|v| {
            let v = v.as_bytes();
            match kind {
                StrOp::StartsWith => hay.len() >= v.len() && hay[..v.len()].eq_ignore_ascii_case(v),
                StrOp::EndsWith => {
                    hay.len() >= v.len() && hay[hay.len() - v.len()..].eq_ignore_ascii_case(v)
                }
                StrOp::Contains => {
                    v.is_empty() || hay.windows(v.len()).any(|w| w.eq_ignore_ascii_case(v))
                }
            }
        });
    }
    let lower = value.to_lowercase();
    str_matches(kind, values, false, &lower)
}

#[inline(never)]
fn num_op(cmp: Cmp, operand: Option<&str>, warn: &mut impl FnMut(String)) -> Op {
    match operand.map(|v| (v, v.trim().parse::<f64>())) {
        Some((_, Ok(n))) if n.is_finite() => Op::Num(cmp, n),
        Some((text, _)) => {
            warn(format!(
                "{} is not a number; the constraint never matches",
                Quoted(text)
            ));
            Op::Never
        }
        None => {
            warn("no value to compare with; the constraint never matches".into());
            Op::Never
        }
    }
}

#[inline(never)]
fn date_op(after: bool, operand: Option<&str>, warn: &mut impl FnMut(String)) -> Op {
    match operand.map(|v| (v, parse_rfc3339_millis(v.trim()))) {
        Some((_, Some(at))) if after => Op::DateAfter(at),
        Some((_, Some(at))) => Op::DateBefore(at),
        Some((text, None)) => {
            warn(format!(
                "{} is not an RFC 3339 time; the constraint never matches",
                Quoted(text)
            ));
            Op::Never
        }
        None => {
            warn("no date to compare with; the constraint never matches".into());
            Op::Never
        }
    }
}

#[inline(never)]
fn semver_op(cmp: Cmp, operand: Option<&str>, warn: &mut impl FnMut(String)) -> Op {
    match operand.map(Version::parse) {
        Some(Ok(version)) => Op::Semver(cmp, version),
        Some(Err(err)) => {
            warn(format!("{err}; the constraint never matches"));
            Op::Never
        }
        None => {
            warn("no version to compare with; the constraint never matches".into());
            Op::Never
        }
    }
}

#[cfg(not(feature = "regex"))]
fn regex_op(_: Option<&str>, _: bool, warn: &mut impl FnMut(String)) -> Op {
    warn("REGEX is not compiled in (feature `regex`); the constraint never matches".into());
    Op::Never
}

#[cfg(feature = "regex")]
#[inline(never)]
fn regex_op(pattern: Option<&str>, ci: bool, warn: &mut impl FnMut(String)) -> Op {
    let Some(pattern) = pattern else {
        warn("no pattern; the constraint never matches".into());
        return Op::Never;
    };
    match build_regex(pattern, ci) {
        Ok(re) => Op::Regex(re),
        Err(err) => {
            warn(regex_warning(pattern, &err));
            Op::Never
        }
    }
}

/// The regex parser and compiler, kept out of `regex_op` (they are most of its code).
#[cfg(feature = "regex")]
#[inline(never)]
fn build_regex(pattern: &str, ci: bool) -> Result<Regex, regex::Error> {
    Regex::new(pattern, ci, REGEX_SIZE_LIMIT)
}

#[cfg(feature = "regex")]
#[cold]
#[inline(never)]
fn regex_warning(pattern: &str, why: &regex::Error) -> String {
    format!(
        "regex {} does not compile ({why}); the constraint never matches",
        Quoted(pattern)
    )
}

#[inline(never)]
fn cidr_op(values: &[String], warn: &mut impl FnMut(String)) -> Op {
    let mut nets = Vec::with_capacity(values.len());
    for value in values {
        match Cidr::parse(value.trim()) {
            Ok(net) => nets.push(net),
            Err(err) => warn(format!("{err}; ignored")),
        }
    }
    Op::InCidr(nets.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constraint(json: &str) -> (Constraint, Vec<Warning>) {
        let value = crate::json::parse(json.as_bytes()).unwrap();
        let model = model::Constraint::read(&value, &crate::json::Path::Root).unwrap();
        let mut warnings = Vec::new();
        let c = Constraint::compile(&model, "c", &mut warnings);
        (c, warnings)
    }

    fn check(json: &str, props: &[(&str, &str)]) -> bool {
        constraint(json)
            .0
            .matches(&Context::new().properties(props))
    }

    #[test]
    fn inverted_flips_every_operator_including_missing_fields() {
        let c = r#"{"contextName": "x", "operator": "IN", "values": ["a"], "inverted": true}"#;
        assert!(!check(c, &[("x", "a")]));
        assert!(check(c, &[("x", "b")]));
        assert!(check(c, &[]));
        let c = r#"{"contextName": "x", "operator": "NOT_IN", "values": ["a"], "inverted": true}"#;
        assert!(check(c, &[("x", "a")]));
        assert!(!check(c, &[]));
        let c = r#"{"contextName": "x", "operator": "NUM_GT", "value": "3", "inverted": true}"#;
        assert!(check(c, &[("x", "2")]));
        assert!(!check(c, &[("x", "4")]));
    }

    #[test]
    fn case_insensitive_string_operators() {
        let sw = r#"{"contextName": "x", "operator": "STR_STARTS_WITH", "values": ["TeSt"], "caseInsensitive": true}"#;
        assert!(check(sw, &[("x", "tEsT@x")]));
        assert!(!check(sw, &[("x", "te")]));
        let ew = r#"{"contextName": "x", "operator": "STR_ENDS_WITH", "values": ["Straße"], "caseInsensitive": true}"#;
        assert!(check(ew, &[("x", "HAUPTSTRAßE")]));
        let ct = r#"{"contextName": "x", "operator": "STR_CONTAINS", "values": ["MAIL"], "caseInsensitive": true}"#;
        assert!(check(ct, &[("x", "a@email.com")]));
        let cs = r#"{"contextName": "x", "operator": "STR_CONTAINS", "values": ["MAIL"]}"#;
        assert!(!check(cs, &[("x", "a@email.com")]));
        // IN ignores caseInsensitive, as in the SDKs.
        let inn =
            r#"{"contextName": "x", "operator": "IN", "values": ["A"], "caseInsensitive": true}"#;
        assert!(!check(inn, &[("x", "a")]));
    }

    #[test]
    fn long_in_lists_use_a_set() {
        let values: Vec<String> = (0..100).map(|i| format!("\"u{i}\"")).collect();
        let json = format!(
            r#"{{"contextName": "userId", "operator": "IN", "values": [{}]}}"#,
            values.join(",")
        );
        let (c, _) = constraint(&json);
        assert!(matches!(c.op, Op::In(Values::Many(_))));
        assert!(c.matches(&Context::new().user_id("u99")));
        assert!(!c.matches(&Context::new().user_id("u100")));
    }

    #[test]
    fn bad_operands_never_match_even_inverted_and_warn() {
        for json in [
            r#"{"contextName": "x", "operator": "NUM_EQ", "value": "twelve", "inverted": true}"#,
            r#"{"contextName": "x", "operator": "SEMVER_GT", "value": "v1.0.0", "inverted": true}"#,
            r#"{"contextName": "x", "operator": "DATE_AFTER", "value": "soon", "inverted": true}"#,
            r#"{"contextName": "x", "operator": "REGEX", "value": "(a", "inverted": true}"#,
            r#"{"contextName": "x", "operator": "FOO", "values": ["a"], "inverted": true}"#,
        ] {
            let (c, warnings) = constraint(json);
            assert!(
                !c.matches(&Context::new().properties(&[("x", "a")])),
                "{json}"
            );
            assert_eq!(warnings.len(), 1, "{json}");
        }
        let (_, warnings) = constraint(r#"{"contextName": "x", "operator": "FOO"}"#);
        assert_eq!(
            warnings[0].to_string(),
            "c: unknown operator \"FOO\"; the constraint never matches"
        );
    }

    #[test]
    fn dates_read_the_context_time_or_a_property() {
        let (c, _) = constraint(
            r#"{"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2022-01-29T13:00:00.000Z"}"#,
        );
        let at = parse_rfc3339_millis("2022-01-29T13:00:00Z").unwrap();
        assert!(c.matches(&Context::new().current_time_millis(at + 1)));
        assert!(!c.matches(&Context::new().current_time_millis(at)));
        assert!(!c.matches(&Context::new()));
        let (c, _) = constraint(
            r#"{"contextName": "signup", "operator": "DATE_BEFORE", "value": "2022-01-29T13:00:00Z"}"#,
        );
        assert!(c.matches(&Context::new().properties(&[("signup", "2021-05-01T00:00:00Z")])));
    }

    #[test]
    fn odd_operands_and_values_do_not_panic() {
        let operators = [
            "IN",
            "NOT_IN",
            "STR_STARTS_WITH",
            "STR_ENDS_WITH",
            "STR_CONTAINS",
            "NUM_EQ",
            "NUM_GT",
            "NUM_GTE",
            "NUM_LT",
            "NUM_LTE",
            "DATE_AFTER",
            "DATE_BEFORE",
            "SEMVER_EQ",
            "SEMVER_GT",
            "SEMVER_GTE",
            "SEMVER_LT",
            "SEMVER_LTE",
            "REGEX",
            "IN_CIDR",
        ];
        let odd = [
            "",
            " ",
            "ß",
            "İ",
            "😃",
            "1e400",
            "-0",
            "NaN",
            "1.2.3-",
            "::",
            "/",
            "0.0.0.0/0",
            "2022-02-30T00:00:00Z",
            "ÄÖÜ long text with spaces",
            "(",
            "\\",
        ];
        for op in operators {
            for operand in odd {
                for ci in [false, true] {
                    let json = serde_json::json!({
                        "contextName": "x", "operator": op, "value": operand,
                        "values": [operand, ""], "caseInsensitive": ci, "inverted": ci,
                    });
                    let (c, _) = constraint(&json.to_string());
                    for value in odd {
                        let props = [("x", value)];
                        c.matches(&Context::new().properties(&props));
                        c.matches(&Context::new());
                    }
                }
            }
        }
    }

    #[test]
    fn cidr_reads_remote_address_and_other_fields() {
        let (c, warnings) = constraint(
            r#"{"contextName": "remoteAddress", "operator": "IN_CIDR", "values": ["10.0.0.0/8", "nope"]}"#,
        );
        assert_eq!(warnings.len(), 1);
        assert!(c.matches(&Context::new().remote_address("10.1.2.3")));
        assert!(c.matches(&Context::new().remote_address("10.1.2.3:443")));
        assert!(!c.matches(&Context::new().remote_address("11.1.2.3")));
        let (c, _) = constraint(
            r#"{"contextName": "clientIp", "operator": "IN_CIDR", "values": ["2001:db8::/32"]}"#,
        );
        assert!(c.matches(&Context::new().properties(&[("clientIp", "2001:db8::5")])));
    }
}
