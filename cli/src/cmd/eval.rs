//! `sluice eval` and `sluice explain`: one request through the request pipeline (natively, the
//! same `sluice_core::pipeline::run` the filter calls), with reasons; explain adds every step.
use crate::common::{self, describe, reason_text, Report, RequestOptions};
use anyhow::{anyhow, Result};
use serde_json::{json, Value as Json};
use sluice_core::bucket::{bucket, BUCKETS};
use sluice_core::decision::Reason;
use sluice_core::engine::{matches, Headers, Request};
use sluice_core::pipeline::{self, Facts, Live};
use sluice_core::plan::{KeyPlan, Plan, Serve, Strategy, Subject};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

fn help(explain: bool) -> String {
    let head = if explain {
        "sluice explain CONFIG [REQUEST OPTIONS] [--json]\n\n\
         Why one request gets what it gets: for every flag and route, each step in the order\n\
         the engine takes them (kill switch, schedule, prerequisites, ramp, rules, pins,\n\
         preview, rollout and weight buckets with their numbers) and the answer.\n"
    } else {
        "sluice eval CONFIG [REQUEST OPTIONS] [--json]\n\n\
         One request through Sluice's request pipeline: every flag and route decision with\n\
         its reason, the routes that did not match and why, the headers written.\n"
    };
    format!(
        "{head}\n{}\nOTHER OPTIONS:\n  --json                    one JSON document on stdout\n  -h, --help                this help\n",
        common::REQUEST_HELP
    )
}

pub fn run(args: Vec<OsString>, explain: bool) -> Result<Option<Report>> {
    use common::Arg;
    let mut parser = lexopt::Parser::from_args(args);
    let (mut config, mut as_json) = (None::<PathBuf>, false);
    let mut req = RequestOptions::default();
    let command = if explain { "explain" } else { "eval" };
    while let Some(arg) = common::next(&mut parser)? {
        if let Arg::Opt(o) = &arg {
            if req.parse(o, &mut parser)? {
                continue;
            }
        }
        match arg {
            Arg::Opt(o) if o == "-h" || o == "--help" => {
                crate::print_out(&help(explain));
                return Ok(None);
            }
            Arg::Opt(o) if o == "--json" => as_json = true,
            Arg::Value(v) if config.is_none() => config = Some(v.into()),
            arg => return Err(common::unexpected(arg, command)),
        }
    }
    let config = config.ok_or_else(|| anyhow!("missing CONFIG (see sluice {command} --help)"))?;
    let loaded = match common::load(&config)? {
        Ok(l) => l,
        Err(report) => return Ok(Some(report)),
    };
    let plan = &loaded.plan;
    let now = req.at_ms.unwrap_or_else(common::now_ms);
    let pairs = req.pairs();
    let borrowed = common::borrow_pairs(&pairs);
    let facts = Facts {
        headers: Headers::Pairs(&borrowed),
        source: req.source.as_deref().map(str::as_bytes),
        now_ms: now,
        entropy: 0,
    };
    let live = Live {
        controls: &[],
        unleash: plan.unleash.as_ref().and_then(|u| u.initial.as_deref()),
        // No polled source outside the proxy.
        spring: None,
    };
    let scratch = pipeline::run_once(plan, live, &facts);
    let decision = &scratch.decision;
    let mut request = Request::from_pairs(plan, &borrowed);
    request.source = facts.source;
    request.now_ms = now;
    let keys = Keys::of(plan, &request);

    let mut text = String::new();
    let method = req.method.as_deref().unwrap_or("GET");
    let path = req.path.as_deref().unwrap_or("/");
    let _ = write!(text, "request: {method} {path}");
    if let Some(a) = &req.authority {
        let _ = write!(text, " to {a}");
    }
    let _ = writeln!(text, " at {}", common::format_time(now));
    let _ = writeln!(text, "user key: {}", keys.describe_user());

    let mut routes_json = Vec::new();
    let mut unmatched_json = Vec::new();
    let _ = writeln!(text, "routes:");
    if plan.routes.is_empty() {
        let _ = writeln!(text, "  (the config has none)");
    }
    for (i, route) in plan.routes.iter().enumerate() {
        let Some(outcome) = decision.routes.iter().find(|r| r.route == i) else {
            let why = common::route_mismatch(route, &req);
            let _ = writeln!(text, "  {}: not matched: {}", route.name, why.join("; "));
            unmatched_json.push(json!({"route": route.name, "why": why}));
            continue;
        };
        let version = &route.versions[outcome.version];
        let _ = writeln!(
            text,
            "  {} = {version} ({}): {}",
            route.name,
            reason_text(&outcome.reason),
            describe(&outcome.reason)
        );
        let mut steps = Vec::new();
        if explain {
            steps = explain_route(plan, i, &request, &keys);
            for s in &steps {
                let _ = writeln!(text, "      {s}");
            }
        }
        routes_json.push(json!({"route": route.name, "header": route.header,
            "version": version, "reason": reason_text(&outcome.reason),
            "why": describe(&outcome.reason), "steps": steps}));
    }
    let mut flags_json = Vec::new();
    if !plan.flags.is_empty() {
        let _ = writeln!(text, "flags:");
    }
    for (i, (flag, outcome)) in plan.flags.iter().zip(&decision.flags).enumerate() {
        let variant = &flag.variant_names[outcome.variant];
        let _ = writeln!(
            text,
            "  {} = {variant} ({}): {}",
            flag.name,
            reason_text(&outcome.reason),
            describe(&outcome.reason)
        );
        let mut steps = Vec::new();
        if explain {
            steps = explain_flag(plan, i, &request, &keys, &outcome.reason, decision);
            for s in &steps {
                let _ = writeln!(text, "      {s}");
            }
        }
        flags_json.push(json!({"flag": flag.name, "variant": variant,
            "reason": reason_text(&outcome.reason), "why": describe(&outcome.reason),
            "steps": steps}));
    }
    if !decision.unleash.is_empty() {
        let _ = writeln!(text, "unleash features:");
        for f in &decision.unleash {
            let _ = writeln!(text, "  {} = {}", f.name, f.variant);
        }
    }
    let overrides = format!("{:?}", decision.overrides).to_ascii_lowercase();
    if overrides != "absent" {
        let _ = writeln!(text, "tester override: {overrides}");
    }
    let patch = &scratch.patch;
    let set: Vec<(&str, &str)> = patch.sets(plan).collect();
    let removed: Vec<&str> = patch.removals(plan).collect();
    let response: Vec<(&str, &str)> = patch.response_headers(plan).collect();
    let _ = writeln!(text, "request headers set:");
    if set.is_empty() {
        let _ = writeln!(text, "  (none)");
    }
    for (n, v) in &set {
        let _ = writeln!(text, "  {n}: {v}");
    }
    if !removed.is_empty() {
        let _ = writeln!(text, "request headers removed: {}", removed.join(", "));
    }
    for (n, v) in &response {
        let _ = writeln!(text, "response header added: {n}: {v}");
    }
    if as_json {
        let unleash: Vec<Json> = decision
            .unleash
            .iter()
            .map(|f| json!({"feature": f.name, "variant": f.variant}))
            .collect();
        let value = json!({
            "request": {"method": method, "path": path, "authority": req.authority,
                "at": common::format_time(now), "user_key": keys.describe_user()},
            "routes": routes_json, "unmatched_routes": unmatched_json, "flags": flags_json,
            "unleash": unleash, "override": overrides,
            "headers": {
                "set": set.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                "removed": removed,
                "response": response.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            }
        });
        return Ok(Some(Report::json(&value)));
    }
    Ok(Some(Report::ok(text)))
}

/// The request's user and session keys, as the engine finds them.
struct Keys<'a> {
    user: Option<(String, &'a [u8])>,
    session: Option<(String, &'a [u8])>,
}

impl<'a> Keys<'a> {
    fn of(plan: &Plan, req: &Request<'a>) -> Keys<'a> {
        let first = |sources: &[Subject]| {
            sources.iter().find_map(|s| {
                req.value(s)
                    .filter(|v| !v.is_empty())
                    .map(|v| (common::subject_name(plan, s), v))
            })
        };
        Keys {
            user: first(&plan.user_key),
            session: first(&plan.session_key),
        }
    }

    fn describe_user(&self) -> String {
        match &self.user {
            Some((n, v)) => format!("{n}={}", String::from_utf8_lossy(v)),
            None => "(none)".into(),
        }
    }

    fn for_plan(&self, key: &KeyPlan) -> Option<&(String, &'a [u8])> {
        if key.session_first {
            self.session.as_ref().or(self.user.as_ref())
        } else {
            self.user.as_ref().or(self.session.as_ref())
        }
    }

    /// `bucket 1234 (salt `x`, key x-user-id=42)`, or why there is none.
    fn bucket(&self, key: &KeyPlan, salt: &str) -> (Option<u32>, String) {
        match self.for_plan(key) {
            Some((name, value)) => {
                let b = bucket(salt, value);
                (
                    Some(b),
                    format!(
                        "bucket {b} of {BUCKETS} (salt `{salt}`, key {name}={})",
                        String::from_utf8_lossy(value)
                    ),
                )
            }
            None if key.random_without_identity => (
                None,
                "no user key: a random bucket per request (without_identity: random)".into(),
            ),
            None => (None, "no user key: no bucket".into()),
        }
    }
}

fn pct(bp: u32) -> String {
    format!("{:.2}%", f64::from(bp) / 100.0)
}

/// `[0, 2000) → on, [2000, 10000) → off`.
fn ranges(upper: &[(u32, usize)], name: impl Fn(usize) -> String) -> String {
    let mut lower = 0;
    let mut parts = Vec::new();
    for (u, choice) in upper {
        if *u > lower {
            parts.push(format!("[{lower}, {u}) → {}", name(*choice)));
        }
        lower = *u;
    }
    parts.join(", ")
}

fn explain_flag(
    plan: &Plan,
    index: usize,
    req: &Request,
    keys: &Keys,
    reason: &Reason,
    decision: &sluice_core::decision::Decision,
) -> Vec<String> {
    let flag = &plan.flags[index];
    let name = |v: usize| flag.variant_names.get(v).cloned().unwrap_or_default();
    let mut steps = Vec::new();
    match reason {
        Reason::Override => {
            steps.push("tester override (secret or allowed source): decides first".into());
            return steps;
        }
        Reason::Propagated => {
            steps.push("decided by a trusted earlier hop (outputs.trust_incoming_from)".into());
            return steps;
        }
        _ => {}
    }
    if !flag.enabled {
        steps.push(format!(
            "kill switch: enabled false → {}",
            name(flag.off_variant)
        ));
        return steps;
    }
    steps.push("kill switch: enabled".into());
    if let Some(at) = flag.enable_at_ms {
        let passed = req.now_ms >= at;
        steps.push(format!(
            "schedule.enable_at {}: {}",
            common::format_time(at),
            if passed { "passed" } else { "not yet → off" }
        ));
        if !passed {
            return steps;
        }
    }
    for (dep, allowed) in &flag.prerequisites {
        let d = &plan.flags[*dep];
        let got = decision.flags.get(*dep).map_or(0, |o| o.variant);
        let names: Vec<&str> = allowed
            .iter()
            .filter_map(|v| d.variant_names.get(*v).map(String::as_str))
            .collect();
        let ok = allowed.contains(&got);
        steps.push(format!(
            "prerequisite {} in [{}]: it is {} {}",
            d.name,
            names.join(", "),
            d.variant_names.get(got).cloned().unwrap_or_default(),
            if ok { "✓" } else { "✗ → off" }
        ));
        if !ok {
            return steps;
        }
    }
    if let Some(ramp) = &flag.ramp {
        let share = ramp.share_at(req.now_ms);
        let (b, text) = keys.bucket(&flag.key, &ramp.salt);
        let verdict = match b {
            Some(b) if b < share => "inside → rules".to_string(),
            Some(_) => format!("outside → {} (ramped-out)", name(flag.off_variant)),
            None => "→ decided without a key".to_string(),
        };
        steps.push(format!(
            "ramp {} → {}: share now {}; {text}: {verdict}",
            pct(ramp.from),
            pct(ramp.to),
            pct(share)
        ));
        if b.is_some_and(|b| b >= share) {
            return steps;
        }
    }
    for (i, rule) in flag.rules.iter().enumerate() {
        if let Some(when) = &rule.when {
            if !matches(when, req) {
                steps.push(format!("rule {i}: condition does not match"));
                continue;
            }
            steps.push(format!("rule {i}: condition matches"));
        } else {
            steps.push(format!("rule {i}: no condition (everyone)"));
        }
        match &rule.serve {
            Serve::Variant(v) => steps.push(format!("rule {i} serves {}", name(*v))),
            Serve::Rollout(r) => {
                let (b, text) = keys.bucket(&flag.key, &flag.key.salt);
                let picked = match b {
                    Some(b) => name(r.pick(b)),
                    None => format!("{} (default)", name(flag.default)),
                };
                steps.push(format!(
                    "rule {i} rollout {}; {text} → {picked}",
                    ranges(&r.upper, name)
                ));
            }
        }
        return steps;
    }
    steps.push(format!("no rule matched → default {}", name(flag.default)));
    steps
}

fn explain_route(plan: &Plan, index: usize, req: &Request, keys: &Keys) -> Vec<String> {
    let route = &plan.routes[index];
    let version = |v: usize| route.versions.get(v).cloned().unwrap_or_default();
    let mut steps = vec!["match: authority, path and method match".to_string()];
    if let Some(o) = &plan.overrides {
        let _ = o;
        steps.push("tester override: checked first (none honoured unless shown)".into());
    }
    if route.guard.is_some() {
        steps.push(
            "guard: not tripped (eval runs the config alone; simulate runs the guard)".into(),
        );
    }
    for (i, (cond, v)) in route.pins.iter().enumerate() {
        if matches(cond, req) {
            steps.push(format!("pin {i} → {}: matches", version(*v)));
            return steps;
        }
        steps.push(format!("pin {i} → {}: does not match", version(*v)));
    }
    if let Strategy::BlueGreen {
        idle,
        preview: Some(preview),
        ..
    } = &route.strategy
    {
        if matches(preview, req) {
            steps.push(format!("preview condition matches → {}", version(*idle)));
            return steps;
        }
        steps.push("preview condition does not match".into());
    }
    let identity = keys.for_plan(&route.key).is_some();
    let (b, text) = keys.bucket(&route.key, &route.key.salt);
    if !identity {
        if let Some(cookie) = &route.sticky_cookie {
            steps.push(format!(
                "no user key: the sticky cookie `{}` keys the user (minted on first visit)",
                cookie.name
            ));
        }
    }
    steps.push(text);
    let (weights, what) = match &route.strategy {
        Strategy::Progressive {
            baseline,
            target,
            schedule,
        } => {
            let w = schedule.weight_at(req.now_ms);
            (
                ranges(&[(w, *target), (BUCKETS, *baseline)], version),
                format!("canary weight now {}", pct(w)),
            )
        }
        Strategy::BlueGreen {
            active,
            idle,
            schedule,
            ..
        } => {
            let w = schedule.weight_at(req.now_ms);
            (
                ranges(&[(w, *active), (BUCKETS, *idle)], version),
                format!("active share now {}", pct(w)),
            )
        }
        Strategy::Split(r) => (ranges(&r.upper, version), "split".to_string()),
    };
    let picked = match (b, &route.strategy) {
        (Some(b), Strategy::Split(r)) => version(r.pick(b)),
        (
            Some(b),
            Strategy::Progressive {
                baseline,
                target,
                schedule,
            },
        ) => version(if b < schedule.weight_at(req.now_ms) {
            *target
        } else {
            *baseline
        }),
        (
            Some(b),
            Strategy::BlueGreen {
                active,
                idle,
                schedule,
                ..
            },
        ) => version(if b < schedule.weight_at(req.now_ms) {
            *active
        } else {
            *idle
        }),
        (None, _) => "decided without a stable key".into(),
    };
    steps.push(format!("{what}: {weights} → {picked}"));
    steps
}
