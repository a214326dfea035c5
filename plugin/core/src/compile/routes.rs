//! Routes: matching, versions, canary/blue-green/split strategies with their
//! time steps, pins, sticky cookies, guards; and the check that two routes
//! which can match one request never write the same header.
use super::conditions::Conditions;
use super::flags::{key_plan, rollout};
use super::{text, ConfigError, OwnedHeaders};
use crate::config::{BlueGreen, Canary, Config, Guard, Route, RouteMatch, SameSite, Step};
use crate::plan::{
    AuthorityMatch, Cond, GuardPlan, RoutePlan, StickyCookiePlan, Strategy, WeightSchedule,
};
use sluice_primitives::json::Path;
use sluice_primitives::quoted::Escaped;
use std::fmt::Display;

#[inline(never)]
pub(crate) fn compile_routes<'c>(
    config: &'c Config,
    conditions: &mut Conditions<'c>,
) -> Result<Vec<RoutePlan>, ConfigError> {
    config
        .routes
        .iter()
        .map(|(name, route)| compile_route(config, name, route, conditions))
        .collect()
}

#[inline(never)]
fn compile_route<'c>(
    config: &'c Config,
    name: &str,
    route: &'c Route,
    conditions: &mut Conditions<'c>,
) -> Result<RoutePlan, ConfigError> {
    let path = format!("routes.{name}");
    let header = check_names(name, route, &path)?;
    let strategy = compile_strategy(route, &path, conditions)?;
    let pins = compile_pins(route, &path, conditions)?;
    let (authorities, methods) = compile_match(&route.matcher, &path)?;
    let (sticky_cookie, guard) = sticky_cookie_and_guard(route, &strategy, &path)?;
    let salt = route.salt.clone().unwrap_or_else(|| name.to_string());
    Ok(RoutePlan {
        name: name.to_string(),
        header,
        versions: route.versions.clone(),
        authorities,
        path_prefix: route.matcher.path_prefix.clone(),
        methods,
        pins,
        strategy,
        key: key_plan(salt, route.bucket_by, route.without_identity, config),
        sticky_cookie,
        guard,
    })
}

/// The route's optional parts: its sticky cookie and its guard.
#[inline(never)]
fn sticky_cookie_and_guard(
    route: &Route,
    strategy: &Strategy,
    path: &str,
) -> Result<(Option<StickyCookiePlan>, Option<GuardPlan>), ConfigError> {
    let sticky_cookie = match &route.sticky_cookie {
        Some(c) => Some(sticky_cookie(c, path)?),
        None => None,
    };
    let guard = match &route.guard {
        Some(g) => Some(guard_plan(g, strategy, path)?),
        None => None,
    };
    Ok((sticky_cookie, guard))
}

/// Checks the route's name, header and versions (at least one, each a name, none twice);
/// returns the header, lowercase.
#[inline(never)]
fn check_names(name: &str, route: &Route, path: &str) -> Result<String, ConfigError> {
    text::check_name(name, &path, "route name")?;
    let header = text::output_header(&route.header, &format!("{path}.header"))?;
    if route.versions.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.versions"),
            "no versions; give at least one",
        ));
    }
    for (i, v) in route.versions.iter().enumerate() {
        text::check_name(v, &format!("{path}.versions[{i}]"), "version name")?;
        if route.versions[..i].contains(v) {
            return Err(ConfigError::new(
                format!("{path}.versions[{i}]"),
                format!("duplicate version `{v}`"),
            ));
        }
    }
    Ok(header)
}

/// The route's pins: a condition and the version it sends matching requests to.
#[inline(never)]
fn compile_pins<'c>(
    route: &'c Route,
    path: &str,
    conditions: &mut Conditions<'c>,
) -> Result<Vec<(Cond, usize)>, ConfigError> {
    let mut pins = Vec::with_capacity(route.pins.len());
    for (i, pin) in route.pins.iter().enumerate() {
        let pp = format!("{path}.pins[{i}]");
        let cond = conditions.compile(&pin.when, &format!("{pp}.when"))?;
        pins.push((
            cond,
            route_version(route, &pin.version, &format!("{pp}.version"))?,
        ));
    }
    Ok(pins)
}

/// The route's `match`: its authorities (hosts) and methods; checks the path prefix.
#[inline(never)]
fn compile_match(
    m: &RouteMatch,
    path: &str,
) -> Result<(Vec<AuthorityMatch>, Vec<String>), ConfigError> {
    let mut authorities = Vec::with_capacity(m.authority.len());
    for (i, a) in m.authority.iter().enumerate() {
        authorities.push(authority(a, &format!("{path}.match.authority[{i}]"))?);
    }
    if let Some(prefix) = &m.path_prefix {
        if !prefix.starts_with('/') {
            return Err(ConfigError::new(
                format!("{path}.match.path_prefix"),
                format!("`{prefix}` must start with `/`"),
            ));
        }
    }
    let mut methods = Vec::with_capacity(m.methods.len());
    for (i, method) in m.methods.iter().enumerate() {
        text::check_name_like(method, &format!("{path}.match.methods[{i}]"), "method")?;
        methods.push(method.to_ascii_uppercase());
    }
    Ok((authorities, methods))
}

/// One `match.authority` entry: a host name, or `*.` and a domain; never a port.
#[inline(never)]
fn authority(a: &str, ap: &str) -> Result<AuthorityMatch, ConfigError> {
    let lower = a.to_ascii_lowercase();
    let host = lower.strip_prefix("*.").unwrap_or(&lower);
    if host
        .rsplit_once(':')
        .is_some_and(|(h, port)| !h.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()))
        && !host.starts_with('[')
    {
        return Err(ConfigError::new(
            ap,
            format!("`{a}` has a port; match on the host alone (ports are ignored)"),
        ));
    }
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return Err(ConfigError::new(
            ap,
            format!("`{a}` is not a host name (wildcards: `*.example.com`)"),
        ));
    }
    Ok(if lower.starts_with("*.") {
        AuthorityMatch::Suffix(lower[1..].to_string())
    } else {
        AuthorityMatch::Exact(lower)
    })
}

/// The guard of the route at `route_path`: it watches the canary of a canary strategy.
#[inline(never)]
fn guard_plan(g: &Guard, strategy: &Strategy, route_path: &str) -> Result<GuardPlan, ConfigError> {
    let gp = &format!("{route_path}.guard");
    if !matches!(strategy, Strategy::Progressive { .. }) {
        return Err(ConfigError::new(
            gp,
            "a guard watches a canary; this route has no canary",
        ));
    }
    let sequential = sequential_plan(g, gp)?;
    if sequential.is_none() && g.max_error_rate.is_none() && g.max_p99_ratio.is_none() {
        return Err(ConfigError::new(
            gp,
            "give max_error_rate and/or max_p99_ratio",
        ));
    }
    let max_error_rate_bp = match g.max_error_rate {
        Some(r) => Some(text::percent_to_buckets(
            r,
            &format!("{gp}.max_error_rate"),
        )?),
        None => None,
    };
    if let Some(ratio) = g.max_p99_ratio {
        if !(ratio.is_finite() && ratio > 1.0) {
            return Err(ConfigError::new(
                format!("{gp}.max_p99_ratio"),
                "must be a number above 1",
            ));
        }
    }
    let window_ms = text::duration_millis_at_least_1s(&g.window, &format!("{gp}.window"))?;
    if g.min_requests == 0 {
        return Err(ConfigError::new(
            format!("{gp}.min_requests"),
            "must be at least 1",
        ));
    }
    Ok(GuardPlan {
        max_error_rate_bp,
        max_p99_ratio: g.max_p99_ratio,
        window_ms,
        min_requests: g.min_requests,
        count_local_replies: g.count_local_replies,
        pause: g.action == crate::config::GuardAction::Pause,
        sequential,
        webhook: match &g.webhook {
            Some(w) => Some(webhook_plan(w, &format!("{gp}.webhook"))?),
            None => None,
        },
    })
}

/// A version's index in the route's versions.
#[inline(never)]
fn route_version(route: &Route, v: &str, at: &dyn Display) -> Result<usize, ConfigError> {
    route.versions.iter().position(|x| x == v).ok_or_else(|| {
        ConfigError::new(
            at.to_string(),
            format!(
                "unknown version `{v}` (versions: {})",
                route.versions.join(", ")
            ),
        )
    })
}

/// The route's one strategy: canary, blue-green or split.
#[inline(never)]
fn compile_strategy<'c>(
    route: &'c Route,
    path: &str,
    conditions: &mut Conditions<'c>,
) -> Result<Strategy, ConfigError> {
    let strategy = match (&route.canary, &route.blue_green, &route.split) {
        (Some(c), None, None) => canary(route, c, path)?,
        (None, Some(bg), None) => blue_green(route, bg, path, conditions)?,
        (None, None, Some(weights)) => {
            // The route's path as the root's one key renders as itself.
            let route_at = Path::Root.key(path);
            Strategy::Split(rollout(weights, &route_at.key("split"), |v, at| {
                route_version(route, v, at)
            })?)
        }
        (None, None, None) => {
            return Err(ConfigError::new(
                path,
                "no strategy: give one of canary, blue_green or split",
            ))
        }
        _ => {
            return Err(ConfigError::new(
                path,
                "more than one strategy: give only one of canary, blue_green or split",
            ))
        }
    };
    Ok(strategy)
}

/// A canary: the stable and canary versions, and the canary's weight over time.
#[inline(never)]
fn canary(route: &Route, c: &Canary, path: &str) -> Result<Strategy, ConfigError> {
    let cp = format!("{path}.canary");
    let baseline = route_version(route, &c.stable, &format!("{cp}.stable"))?;
    let target = route_version(route, &c.canary, &format!("{cp}.canary"))?;
    if baseline == target {
        return Err(ConfigError::new(
            format!("{cp}.canary"),
            "canary and stable are the same version",
        ));
    }
    let schedule = weight_schedule(c.weight, c.start.as_deref(), &c.steps, &cp)?;
    Ok(Strategy::Progressive {
        baseline,
        target,
        schedule,
    })
}

/// Blue-green: the active version of two, an optional preview, and the shift over time.
#[inline(never)]
fn blue_green<'c>(
    route: &Route,
    bg: &'c BlueGreen,
    path: &str,
    conditions: &mut Conditions<'c>,
) -> Result<Strategy, ConfigError> {
    let bp = format!("{path}.blue_green");
    if route.versions.len() != 2 {
        return Err(ConfigError::new(
            format!("{path}.versions"),
            format!(
                "blue-green needs exactly two versions, got {}",
                route.versions.len()
            ),
        ));
    }
    let active = route_version(route, &bg.active, &format!("{bp}.active"))?;
    let preview = match &bg.preview {
        Some(c) => Some(conditions.compile(c, &format!("{bp}.preview"))?),
        None => None,
    };
    let schedule = match &bg.shift {
        Some(s) => weight_schedule(
            s.weight,
            s.start.as_deref(),
            &s.steps,
            &format!("{bp}.shift"),
        )?,
        None => WeightSchedule {
            initial: crate::bucket::BUCKETS,
            steps: Vec::new(),
        },
    };
    Ok(Strategy::BlueGreen {
        active,
        idle: 1 - active,
        preview,
        schedule,
    })
}

/// Weight over time: `initial` percent, then steps at absolute times or
/// durations after `start`, strictly increasing in time.
#[inline(never)]
pub(super) fn weight_schedule(
    initial: f64,
    start: Option<&str>,
    steps: &[Step],
    path: &str,
) -> Result<WeightSchedule, ConfigError> {
    let initial = text::percent_to_buckets(initial, &format!("{path}.weight"))?;
    let start_ms = match start {
        Some(t) => Some(text::time_millis(t, &format!("{path}.start"))?),
        None => None,
    };
    let mut out = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let sp = format!("{path}.steps[{i}]");
        let at = step_time(step, start_ms, &sp, path)?;
        if let Some((prev, _)) = out.last() {
            if at <= *prev {
                return Err(ConfigError::new(
                    sp,
                    "steps must be strictly increasing in time",
                ));
            }
        }
        out.push((
            at,
            text::percent_to_buckets(step.weight, &format!("{sp}.weight"))?,
        ));
    }
    Ok(WeightSchedule {
        initial,
        steps: out,
    })
}

/// When the step at `sp` takes effect (Unix millis): its `at`, or `start_ms` (the schedule's
/// `start`, if `path` sets one) plus its `after`.
#[inline(never)]
fn step_time(step: &Step, start_ms: Option<i64>, sp: &str, path: &str) -> Result<i64, ConfigError> {
    Ok(match (&step.at, &step.after) {
        (Some(t), None) => text::time_millis(t, &format!("{sp}.at"))?,
        (None, Some(d)) => {
            let Some(start) = start_ms else {
                return Err(ConfigError::new(
                    format!("{sp}.after"),
                    format!("`after` counts from `start`, which {path} does not set"),
                ));
            };
            start + text::duration_millis(d, &format!("{sp}.after"))? as i64
        }
        _ => {
            return Err(ConfigError::new(
                sp,
                "a step needs exactly one of at or after",
            ))
        }
    })
}

/// The sticky cookie of the route at `route_path`.
#[inline(never)]
fn sticky_cookie(
    c: &crate::config::StickyCookie,
    route_path: &str,
) -> Result<StickyCookiePlan, ConfigError> {
    let path = format!("{route_path}.sticky_cookie");
    text::check_name_like(&c.name, &format!("{path}.name"), "cookie name")?;
    if !c.path.starts_with('/') || c.path.bytes().any(|b| b == b';' || b.is_ascii_control()) {
        return Err(ConfigError::new(
            format!("{path}.path"),
            format!("`{}` is not a cookie path", Escaped(&c.path)),
        ));
    }
    let mut attributes = format!("; Path={}", c.path);
    if let Some(age) = &c.max_age {
        let ms = text::duration_millis(age, &format!("{path}.max_age"))?;
        attributes.push_str(&format!("; Max-Age={}", ms / 1000));
    }
    if let Some(same_site) = c.same_site {
        if matches!(same_site, SameSite::None) && !c.secure {
            return Err(ConfigError::new(
                format!("{path}.same_site"),
                "SameSite=None requires secure: true (browsers drop it otherwise)",
            ));
        }
        attributes.push_str(match same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
    }
    if c.secure {
        attributes.push_str("; Secure");
    }
    if c.http_only {
        attributes.push_str("; HttpOnly");
    }
    Ok(StickyCookiePlan {
        name: c.name.clone(),
        attributes,
    })
}

#[inline(never)]
pub(crate) fn reads_clock(route: &RoutePlan) -> bool {
    match &route.strategy {
        Strategy::Progressive { schedule, .. } | Strategy::BlueGreen { schedule, .. } => {
            schedule.is_timed()
        }
        Strategy::Split(_) => false,
    }
}

/// Claims each route's header; routes may share a header only when no request
/// can match both.
#[inline(never)]
pub(crate) fn claim_route_headers(
    routes: &[RoutePlan],
    owned: &mut OwnedHeaders,
) -> Result<(), ConfigError> {
    for (i, route) in routes.iter().enumerate() {
        let path = format!("routes.{}.header", route.name);
        let earlier = routes[..i].iter().filter(|r| r.header == route.header);
        let mut shared = false;
        for other in earlier {
            if may_overlap(other, route) {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "routes `{}` and `{}` can match the same request and both write `{}`",
                        other.name, route.name, route.header
                    ),
                ));
            }
            shared = true;
        }
        if !shared {
            owned.claim(&route.header, &path)?;
        }
    }
    Ok(())
}

#[inline(never)]
fn may_overlap(a: &RoutePlan, b: &RoutePlan) -> bool {
    let hosts = a.authorities.is_empty()
        || b.authorities.is_empty()
        || a.authorities
            .iter()
            .any(|x| b.authorities.iter().any(|y| authorities_overlap(x, y)));
    let paths = match (&a.path_prefix, &b.path_prefix) {
        (Some(p), Some(q)) => p.starts_with(q.as_str()) || q.starts_with(p.as_str()),
        _ => true,
    };
    let methods = a.methods.is_empty()
        || b.methods.is_empty()
        || a.methods.iter().any(|m| b.methods.contains(m));
    hosts && paths && methods
}

#[inline(never)]
fn authorities_overlap(x: &AuthorityMatch, y: &AuthorityMatch) -> bool {
    match (x, y) {
        (AuthorityMatch::Exact(a), AuthorityMatch::Exact(b)) => a == b,
        (AuthorityMatch::Exact(h), AuthorityMatch::Suffix(s))
        | (AuthorityMatch::Suffix(s), AuthorityMatch::Exact(h)) => h.ends_with(s.as_str()),
        (AuthorityMatch::Suffix(a), AuthorityMatch::Suffix(b)) => {
            a.ends_with(b.as_str()) || b.ends_with(a.as_str())
        }
    }
}

/// The sequential guard's settings, checked; `None` for the threshold method.
#[inline(never)]
fn sequential_plan(
    g: &crate::config::Guard,
    gp: &str,
) -> Result<Option<crate::plan::SequentialPlan>, ConfigError> {
    use crate::config::GuardMethod;
    if g.method == GuardMethod::Threshold {
        for (set, field) in [(g.alpha.is_some(), "alpha"), (g.slow.is_some(), "slow")] {
            if set {
                return Err(ConfigError::new(
                    format!("{gp}.{field}"),
                    "only for `method: sequential`",
                ));
            }
        }
        return Ok(None);
    }
    for (set, field) in [
        (g.max_error_rate.is_some(), "max_error_rate"),
        (g.max_p99_ratio.is_some(), "max_p99_ratio"),
    ] {
        if set {
            return Err(ConfigError::new(
                format!("{gp}.{field}"),
                "a sequential guard has no thresholds; it trips when the canary is significantly worse than stable (set `alpha`, and `slow` for latency)",
            ));
        }
    }
    let alpha = g.alpha.unwrap_or(0.05);
    if !(alpha > 0.0 && alpha <= 0.5) {
        return Err(ConfigError::new(
            format!("{gp}.alpha"),
            "must be above 0 and at most 0.5",
        ));
    }
    let slow_ms = match &g.slow {
        Some(s) => Some(text::duration_millis(s, &format!("{gp}.slow"))?),
        None => None,
    };
    Ok(Some(crate::plan::SequentialPlan { alpha, slow_ms }))
}

#[inline(never)]
fn webhook_plan(
    w: &crate::config::Webhook,
    path: &str,
) -> Result<crate::plan::WebhookPlan, ConfigError> {
    if w.cluster.is_empty() || w.cluster.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ConfigError::new(
            format!("{path}.cluster"),
            "must name an Envoy cluster",
        ));
    }
    if !w.path.starts_with('/') || w.path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ConfigError::new(
            format!("{path}.path"),
            "must be a URL path starting with `/`",
        ));
    }
    let timeout_ms = text::duration_millis(&w.timeout, &format!("{path}.timeout"))?;
    if timeout_ms == 0 {
        return Err(ConfigError::new(
            format!("{path}.timeout"),
            "must be above 0",
        ));
    }
    if !(1..=20).contains(&w.attempts) {
        return Err(ConfigError::new(
            format!("{path}.attempts"),
            "must be 1 to 20",
        ));
    }
    Ok(crate::plan::WebhookPlan {
        cluster: w.cluster.clone(),
        path: w.path.clone(),
        authority: w.authority.clone().unwrap_or_else(|| w.cluster.clone()),
        timeout_ms,
        attempts: w.attempts,
    })
}
