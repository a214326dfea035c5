//! Unleash toggles as a flag source: every feature of the current payload
//! evaluated for one request into what the flags header and per-feature
//! headers carry. Pure: the payload (pushed or polled) is handed in.
use super::request::Request;
use crate::decision::{FeatureOutcome, FeatureUsage};
use crate::plan::{Subject, UnleashPlan};
use sluice_unleash::{Context, Engine, FeatureId};

/// Evaluates every feature the plan writes; `engine` is `None` until a first
/// payload has arrived. Features named like native flags are skipped
/// (native flags win).
#[inline(never)]
pub fn evaluate(plan: &UnleashPlan, engine: Option<&Engine>, req: &Request) -> Vec<FeatureOutcome> {
    let Some(engine) = engine else {
        return before_payload(plan);
    };
    let properties = properties_of(plan, req);
    let entropy = std::cell::Cell::new(req.entropy);
    let random = || {
        // A cheap generator over the request's entropy (splitmix64 step).
        let mut x = entropy.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        entropy.set(x);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31)) as u32
    };
    let ctx = Context::new()
        .current_time_millis(req.now_ms)
        .properties(&properties)
        .random(&random);
    let ctx = with_identity(plan, req, ctx);
    match &plan.features {
        Some(list) => evaluate_listed(plan, engine, &ctx, list),
        None => evaluate_all(plan, engine, &ctx),
    }
}

/// The features the config lists; one listed but not (or no longer) in the payload is off.
#[inline(never)]
fn evaluate_listed(
    plan: &UnleashPlan,
    engine: &Engine,
    ctx: &Context,
    list: &[String],
) -> Vec<FeatureOutcome> {
    list.iter()
        .map(|name| match engine.id(name) {
            Some(id) => evaluate_feature(plan, engine, ctx, name, id),
            None => outcome(plan, name, "off".to_string(), None),
        })
        .collect()
}

/// Every feature of the payload whose name can go into a header and is not a native flag's.
#[inline(never)]
fn evaluate_all(plan: &UnleashPlan, engine: &Engine, ctx: &Context) -> Vec<FeatureOutcome> {
    let mut outcomes = Vec::new();
    for (id, name) in engine.features() {
        if is_header_safe_name(name) && !plan.native_flags.iter().any(|f| f == name) {
            outcomes.push(evaluate_feature(plan, engine, ctx, name, id));
        }
    }
    outcomes
}

/// The context properties the plan reads from the request.
#[inline(never)]
fn properties_of<'a>(plan: &'a UnleashPlan, req: &Request<'a>) -> Vec<(&'a str, &'a str)> {
    plan.properties
        .iter()
        .filter_map(|(name, s)| Some((name.as_str(), std::str::from_utf8(req.value(s)?).ok()?)))
        .collect()
}

/// The context's user, session, address, app and environment, from the request and the plan.
#[inline(never)]
fn with_identity<'a>(
    plan: &'a UnleashPlan,
    req: &Request<'a>,
    mut ctx: Context<'a>,
) -> Context<'a> {
    let text = |subjects: &[Subject]| {
        subjects.iter().find_map(|s| {
            req.value(s)
                .filter(|v| !v.is_empty())
                .and_then(|v| std::str::from_utf8(v).ok())
        })
    };
    if let Some(v) = text(&plan.user_id) {
        ctx = ctx.user_id(v);
    }
    if let Some(v) = text(&plan.session_id) {
        ctx = ctx.session_id(v);
    }
    if let Some(v) = text(&plan.remote_address) {
        ctx = ctx.remote_address(v);
    }
    if let Some(v) = &plan.app_name {
        ctx = ctx.app_name(v);
    }
    if let Some(v) = &plan.environment {
        ctx = ctx.environment(v);
    }
    ctx
}

/// No payload yet: the listed features are off, unless the plan passes requests through.
#[inline(never)]
fn before_payload(plan: &UnleashPlan) -> Vec<FeatureOutcome> {
    if plan.pass_through_before_payload {
        return Vec::new();
    }
    plan.features
        .iter()
        .flatten()
        .map(|name| outcome(plan, name, "off".to_string(), None))
        .collect()
}

/// One feature of the payload for this request's context.
#[inline(never)]
fn evaluate_feature(
    plan: &UnleashPlan,
    engine: &Engine,
    ctx: &Context,
    name: &str,
    id: FeatureId,
) -> FeatureOutcome {
    let result = engine.evaluate(id, ctx);
    let variant = if !result.feature_enabled {
        "off".to_string()
    } else if result.enabled {
        header_token(result.name)
    } else {
        "on".to_string()
    };
    let payload = result
        .payload
        .map(|p| p.value.as_str())
        .filter(|v| !v.chars().any(char::is_control));
    let mut outcome = outcome(plan, name, variant, payload);
    if plan.metrics.is_some() {
        outcome.usage = Some(FeatureUsage {
            enabled: result.feature_enabled,
            variant: result.enabled.then(|| result.name.to_string()),
        });
    }
    outcome
}

#[inline(never)]
fn outcome(
    plan: &UnleashPlan,
    name: &str,
    variant: String,
    payload: Option<&str>,
) -> FeatureOutcome {
    let header = plan
        .feature_headers
        .iter()
        .position(|(feature, _)| feature == name)
        .map(|i| (i, payload.map_or_else(|| variant.clone(), str::to_string)));
    FeatureOutcome {
        name: name.to_string(),
        variant,
        header,
        usage: None,
    }
}

/// Feature names go into `name=variant;…` as they are, so only names of
/// letters, digits, `_`, `-` and `.` are written.
pub fn is_header_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Variant names from Unleash are free text: anything that could break the
/// `name=variant;` format or the header becomes `_`.
#[inline(never)]
fn header_token(name: &str) -> String {
    // One byte per character, every one ASCII.
    let bytes: Vec<u8> = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '.' => c as u8,
            _ => b'_',
        })
        .collect();
    String::from_utf8(bytes).unwrap_or_default()
}
