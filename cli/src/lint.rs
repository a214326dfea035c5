//! Warnings for configs the filter accepts but that are likely mistakes. Run on a config that
//! already compiled: the structure is known to be right, only the meaning is questioned.
use sluice_primitives::json::{Kind, Value};

/// A likely mistake: where (`path`, byte `offset` in the text) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    pub offset: usize,
    pub message: String,
}

/// Unleash's context fields that need no mapping.
const UNLEASH_FIELDS: &[&str] = &[
    "userId",
    "sessionId",
    "remoteAddress",
    "appName",
    "environment",
    "currentTime",
];

struct Lint {
    out: Vec<Warning>,
}

impl Lint {
    fn warn(&mut self, path: &str, value: &Value, message: String) {
        self.out.push(Warning {
            path: path.to_string(),
            offset: value.offset,
            message,
        });
    }

    /// A percent field that is above 0 but below 1: a fraction written where a percent is meant.
    fn percent(&mut self, path: &str, value: Option<&Value>) {
        let Some(v) = value else { return };
        if let Some(p) = v.as_f64() {
            if p > 0.0 && p < 1.0 {
                self.warn(
                    path,
                    v,
                    format!(
                        "{p} is a percent ({p}% of users); if you meant {}%, write {}",
                        p * 100.0,
                        p * 100.0
                    ),
                );
            }
        }
    }
}

fn members<'v, 't>(value: Option<&'v Value<'t>>) -> &'v [(std::borrow::Cow<'t, str>, Value<'t>)] {
    match value.map(|v| &v.kind) {
        Some(Kind::Object(members)) => members,
        _ => &[],
    }
}

fn items<'v, 't>(value: Option<&'v Value<'t>>) -> &'v [Value<'t>] {
    value.and_then(Value::as_array).unwrap_or(&[])
}

/// Every warning for a config document (parsed with `sluice_primitives::json::parse`).
pub fn lint(root: &Value) -> Vec<Warning> {
    let mut l = Lint { out: Vec::new() };
    for (name, flag) in members(root.get("flags")) {
        let fp = format!("flags.{name}");
        for (i, rule) in items(flag.get("rules")).iter().enumerate() {
            for (variant, weight) in members(rule.get("rollout")) {
                l.percent(&format!("{fp}.rules[{i}].rollout.{variant}"), Some(weight));
            }
        }
        if let Some(ramp) = flag.get("schedule").and_then(|s| s.get("ramp")) {
            l.percent(&format!("{fp}.schedule.ramp.from"), ramp.get("from"));
            l.percent(&format!("{fp}.schedule.ramp.to"), ramp.get("to"));
        }
    }
    for (name, route) in members(root.get("routes")) {
        let rp = format!("routes.{name}");
        if let Some(rate) = route.get("guard").and_then(|g| g.get("max_error_rate")) {
            if rate.as_f64().is_some_and(|r| r > 0.0 && r < 1.0) {
                let r = rate.as_f64().unwrap_or_default();
                l.warn(
                    &format!("{rp}.guard.max_error_rate"),
                    rate,
                    format!(
                        "max_error_rate is a percent: {r} trips at {r}% errors; for {}% write {}",
                        r * 100.0,
                        r * 100.0
                    ),
                );
            }
        }
        for (section, label) in [("canary", "canary"), ("blue_green", "shift")] {
            let Some(mut s) = route.get(section) else {
                continue;
            };
            let mut sp = format!("{rp}.{section}");
            if section == "blue_green" {
                let Some(shift) = s.get("shift") else {
                    continue;
                };
                s = shift;
                sp.push_str(".shift");
            }
            l.percent(&format!("{sp}.weight"), s.get("weight"));
            for (i, step) in items(s.get("steps")).iter().enumerate() {
                l.percent(&format!("{sp}.steps[{i}].weight"), step.get("weight"));
            }
            let weight = s.get("weight").and_then(Value::as_f64).unwrap_or(0.0);
            if let (Some(start), true) = (s.get("start").and_then(Value::as_str), weight > 0.0) {
                let w = s.get("weight").unwrap_or(s);
                l.warn(
                    &format!("{sp}.weight"),
                    w,
                    format!(
                        "the {label} weight {weight}% applies from the push on, before `start` \
                         ({start}); for nothing before `start`, set weight 0 and add a step \
                         {{\"at\": \"{start}\", \"weight\": {weight}}}"
                    ),
                );
            }
        }
        for (version, weight) in members(route.get("split")) {
            l.percent(&format!("{rp}.split.{version}"), Some(weight));
        }
        if let Some(prefix) = route.get("match").and_then(|m| m.get("path_prefix")) {
            let text = prefix.as_str().unwrap_or_default();
            if let Some(c) = text.chars().find(|c| matches!(c, '*' | '?' | '#' | ' ')) {
                l.warn(
                    &format!("{rp}.match.path_prefix"),
                    prefix,
                    format!(
                        "route `{name}` can never match a normal request: path_prefix `{text}` \
                         is a literal prefix and `{c}` is not a wildcard (use `{}`)",
                        text.split(c).next().unwrap_or("/")
                    ),
                );
            }
        }
        let methods = items(route.get("match").and_then(|m| m.get("methods")));
        for (i, method) in methods.iter().enumerate() {
            let m = method.as_str().unwrap_or_default().to_ascii_uppercase();
            const KNOWN: &[&str] = &[
                "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
            ];
            if !KNOWN.contains(&m.as_str()) {
                l.warn(
                    &format!("{rp}.match.methods[{i}]"),
                    method,
                    format!("`{m}` is not an HTTP method: route `{name}` never matches with it"),
                );
            }
        }
    }
    if let Some(unleash) = root.get("unleash") {
        lint_unleash(&mut l, unleash);
    }
    l.out.sort_by_key(|w| w.offset);
    l.out
}

fn lint_unleash(l: &mut Lint, unleash: &Value) {
    let properties: Vec<&str> = members(unleash.get("context").and_then(|c| c.get("properties")))
        .iter()
        .map(|(k, _)| k.as_ref())
        .collect();
    let payload = unleash.get("payload");
    let payload_features: Vec<&str> = items(payload.and_then(|p| p.get("features")))
        .iter()
        .filter_map(|f| f.get("name").and_then(Value::as_str))
        .collect();
    let listed: Option<Vec<&str>> = unleash
        .get("features")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    for (feature, header) in members(unleash.get("headers")) {
        let known = match &listed {
            Some(list) => list.contains(&feature.as_ref()),
            None if payload.is_some() => payload_features.contains(&feature.as_ref()),
            None => true,
        };
        if !known {
            let whence = if listed.is_some() {
                "unleash.features"
            } else {
                "the payload"
            };
            l.warn(
                &format!("unleash.headers.{feature}"),
                header,
                format!("feature `{feature}` is not in {whence}: its header is never written"),
            );
        }
    }
    if let Some(payload) = payload {
        constraints(l, payload, "unleash.payload", &properties);
    }
}

/// Every constraint in the payload (features' strategies, segments): operators in upper case,
/// context fields that Sluice fills.
fn constraints(l: &mut Lint, value: &Value, path: &str, properties: &[&str]) {
    match &value.kind {
        Kind::Object(members) => {
            if let Some(op) = value.get("operator") {
                let name = op.as_str().unwrap_or_default();
                if name.chars().any(|c| c.is_ascii_lowercase()) {
                    l.warn(
                        &format!("{path}.operator"),
                        op,
                        format!(
                            "Unleash operators are upper case: `{name}` is unknown and the \
                             constraint never matches; write `{}`",
                            name.to_ascii_uppercase()
                        ),
                    );
                }
                if let Some(field) = value.get("contextName") {
                    let f = field.as_str().unwrap_or_default();
                    if !UNLEASH_FIELDS.contains(&f) && !properties.contains(&f) {
                        l.warn(
                            &format!("{path}.contextName"),
                            field,
                            format!(
                                "context field `{f}` is not mapped (unleash.context.properties): \
                                 the constraint never sees a value"
                            ),
                        );
                    }
                }
            }
            for (k, v) in members {
                constraints(l, v, &format!("{path}.{k}"), properties);
            }
        }
        Kind::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                constraints(l, v, &format!("{path}[{i}]"), properties);
            }
        }
        _ => {}
    }
}
