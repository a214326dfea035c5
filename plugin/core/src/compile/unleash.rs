//! The `unleash` section: context mapping, per-feature headers, the inline
//! payload and the polling settings.
use super::{key_sources, subject_of, text, ConfigError, HeaderTable, OwnedHeaders};
use crate::config::{BeforeFirstPayload, Config, UnleashContext, Value};
use crate::plan::{PollPlan, Subject, UnleashPlan, UsagePlan};
use sluice_primitives::quoted::Escaped;
use sluice_unleash::Engine;
use std::rc::Rc;

#[inline(never)]
pub(crate) fn compile_unleash(
    config: &Config,
    headers: &mut HeaderTable,
    owned: &mut OwnedHeaders,
    native_flags: &[&str],
) -> Result<Option<UnleashPlan>, ConfigError> {
    let Some(u) = &config.unleash else {
        return Ok(None);
    };
    if u.payload.is_none() && u.poll.is_none() {
        return Err(ConfigError::new(
            "unleash",
            "give a payload, a poll, or both",
        ));
    }
    let initial = match &u.payload {
        Some(value) => Some(initial_engine(value)?),
        None => None,
    };
    let ctx = &u.context;
    let Context {
        user_id,
        session_id,
        remote_address,
        properties,
    } = compile_context(config, ctx, headers)?;
    let Features {
        features,
        feature_headers,
    } = compile_features(u, native_flags, owned)?;
    let (poll, metrics) = poll_and_metrics(u)?;
    Ok(Some(UnleashPlan {
        metrics,
        initial,
        poll,
        user_id,
        session_id,
        remote_address,
        properties,
        app_name: ctx.app_name.clone(),
        environment: ctx.environment.clone(),
        features,
        feature_headers,
        pass_through_before_payload: u.before_first_payload == BeforeFirstPayload::PassThrough,
        native_flags: native_flags.iter().map(|f| f.to_string()).collect(),
    }))
}

/// The inline payload (`unleash.payload`), compiled.
#[inline(never)]
fn initial_engine(value: &Value) -> Result<Rc<Engine>, ConfigError> {
    let payload = sluice_unleash::Payload::from_value(value).map_err(|e| {
        let at = if e.path.is_empty() {
            "unleash.payload".to_string()
        } else {
            format!("unleash.payload.{}", e.path)
        };
        ConfigError::new(at, e.message)
    })?;
    Ok(Rc::new(Engine::new(payload)))
}

/// Where Unleash's context fields come from in a request.
struct Context {
    user_id: Vec<Subject>,
    session_id: Vec<Subject>,
    remote_address: Vec<Subject>,
    properties: Vec<(String, Subject)>,
}

/// `unleash.context`: user and session ids (the config's identity unless given), the remote
/// address (the peer's unless given), properties; checks `app_name` and `environment`.
#[inline(never)]
fn compile_context(
    config: &Config,
    ctx: &UnleashContext,
    headers: &mut HeaderTable,
) -> Result<Context, ConfigError> {
    let sources = |list: &[crate::config::Source],
                   fallback: &[crate::config::Source],
                   path: &str,
                   headers: &mut HeaderTable| {
        key_sources(if list.is_empty() { fallback } else { list }, path, headers)
    };
    let user_id = sources(
        &ctx.user_id,
        &config.identity.user,
        "unleash.context.user_id",
        headers,
    )?;
    let session_id = sources(
        &ctx.session_id,
        &config.identity.session,
        "unleash.context.session_id",
        headers,
    )?;
    let remote_address = if ctx.remote_address.is_empty() {
        vec![Subject::SourceAddress]
    } else {
        key_sources(
            &ctx.remote_address,
            "unleash.context.remote_address",
            headers,
        )?
    };
    let properties = properties(ctx, headers)?;
    for (field, value) in [
        ("app_name", &ctx.app_name),
        ("environment", &ctx.environment),
    ] {
        if let Some(v) = value {
            text::check_header_value(v, &format!("unleash.context.{field}"))?;
        }
    }
    Ok(Context {
        user_id,
        session_id,
        remote_address,
        properties,
    })
}

/// `unleash.context.properties`: each property's name and where its value comes from.
#[inline(never)]
fn properties(
    ctx: &UnleashContext,
    headers: &mut HeaderTable,
) -> Result<Vec<(String, Subject)>, ConfigError> {
    let mut properties = Vec::with_capacity(ctx.properties.len());
    for (name, source) in ctx.properties.iter() {
        let path = format!("unleash.context.properties.{name}");
        text::check_name(name, &path, "property name")?;
        properties.push((name.to_string(), subject_of(source, &path, headers)?));
    }
    Ok(properties)
}

/// What Sluice does with Unleash features: which it evaluates, and where it writes each.
struct Features {
    features: Option<Vec<String>>,
    feature_headers: Vec<(String, String)>,
}

/// `unleash.features` and `unleash.headers`.
#[inline(never)]
fn compile_features(
    u: &crate::config::Unleash,
    native_flags: &[&str],
    owned: &mut OwnedHeaders,
) -> Result<Features, ConfigError> {
    let features = match &u.features {
        Some(list) => Some(features(list, native_flags)?),
        None => None,
    };
    Ok(Features {
        features,
        feature_headers: feature_headers(u, owned)?,
    })
}

/// `unleash.features`: the features Sluice evaluates, sorted by name; none a native flag.
#[inline(never)]
fn features(list: &[String], native_flags: &[&str]) -> Result<Vec<String>, ConfigError> {
    let mut names = Vec::with_capacity(list.len());
    for (i, name) in list.iter().enumerate() {
        let path = format!("unleash.features[{i}]");
        text::check_name(name, &path, "feature name")?;
        if native_flags.contains(&name.as_str()) {
            return Err(ConfigError::new(
                path,
                format!("`{name}` is also a native flag; the flags header would carry it twice"),
            ));
        }
        names.push(name.clone());
    }
    // The flags header lists features sorted by name, like native flags.
    sluice_primitives::order::sort_by(&mut names, |a, b| a.cmp(b));
    Ok(names)
}

/// `unleash.headers`: per feature, the header it is written to (claimed).
#[inline(never)]
fn feature_headers(
    u: &crate::config::Unleash,
    owned: &mut OwnedHeaders,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut feature_headers = Vec::with_capacity(u.headers.len());
    for (feature, header) in u.headers.iter() {
        let path = format!("unleash.headers.{feature}");
        text::check_name(feature, &path, "feature name")?;
        let header = text::output_header(header, &path)?;
        owned.claim(&header, &path)?;
        feature_headers.push((feature.to_string(), header));
    }
    Ok(feature_headers)
}

/// `unleash.poll` and `unleash.metrics` (usage reports go through the poll's cluster).
#[inline(never)]
fn poll_and_metrics(
    u: &crate::config::Unleash,
) -> Result<(Option<PollPlan>, Option<UsagePlan>), ConfigError> {
    let poll = match &u.poll {
        Some(p) => Some(poll_plan(
            "unleash.poll",
            PollSettings {
                cluster: &p.cluster,
                authority: p.authority.as_deref(),
                path: &p.path,
                authorization: p.authorization.clone(),
                interval: &p.interval,
                timeout: &p.timeout,
                max_body_bytes: p.max_body_bytes,
            },
        )?),
        None => None,
    };
    let metrics = match &u.metrics {
        Some(m) => Some(usage_plan(m, poll.as_ref(), u.context.app_name.as_deref())?),
        None => None,
    };
    Ok((poll, metrics))
}

/// Checks `unleash.metrics`: it reports through the poll's cluster and token, to the client
/// API beside the poll's path.
#[inline(never)]
fn usage_plan(
    m: &crate::config::UnleashMetrics,
    poll: Option<&PollPlan>,
    app_name: Option<&str>,
) -> Result<UsagePlan, ConfigError> {
    let Some(poll) = poll else {
        return Err(ConfigError::new(
            "unleash.metrics",
            "needs unleash.poll: metrics go to the polled Unleash through its cluster and token",
        ));
    };
    let Some(at) = poll.path.find("/client/features") else {
        return Err(ConfigError::new(
            "unleash.metrics",
            format!(
                "unleash.poll.path `{}` is not an Unleash client API path (`…/client/features`), so the metrics path cannot be derived",
                Escaped(&poll.path)
            ),
        ));
    };
    let base = &poll.path[..at];
    let interval_ms = text::duration_millis_at_least_1s(&m.interval, &"unleash.metrics.interval")?;
    if m.max_pending_buckets == 0 || m.max_pending_buckets > 1000 {
        return Err(ConfigError::new(
            "unleash.metrics.max_pending_buckets",
            format!(
                "{} is out of range 1..=1000 (buckets kept while Unleash is unreachable)",
                m.max_pending_buckets
            ),
        ));
    }
    if let Some(id) = &m.instance_id {
        if id.is_empty() {
            return Err(ConfigError::new(
                "unleash.metrics.instance_id",
                "must not be empty",
            ));
        }
        text::check_header_value(id, &"unleash.metrics.instance_id")?;
    }
    Ok(UsagePlan {
        interval_ms,
        max_pending: m.max_pending_buckets as usize,
        app_name: app_name.unwrap_or("sluice").to_string(),
        instance_id: m.instance_id.clone(),
        register_path: format!("{base}/client/register"),
        metrics_path: format!("{base}/client/metrics"),
    })
}

/// A polled source's settings as configured, for [`poll_plan`].
pub(crate) struct PollSettings<'a> {
    pub cluster: &'a str,
    pub authority: Option<&'a str>,
    pub path: &'a str,
    pub authorization: Option<String>,
    pub interval: &'a str,
    pub timeout: &'a str,
    pub max_body_bytes: u64,
}

/// Checks a polled source's settings (every source kind the same way) into a [`PollPlan`];
/// `path` is where they are in the config, for errors.
#[inline(never)]
pub(crate) fn poll_plan(path: &str, p: PollSettings) -> Result<PollPlan, ConfigError> {
    if p.cluster.is_empty() || p.cluster.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ConfigError::new(
            format!("{path}.cluster"),
            "must name an Envoy cluster",
        ));
    }
    if !p.path.starts_with('/') || p.path.chars().any(char::is_control) {
        return Err(ConfigError::new(
            format!("{path}.path"),
            format!("`{}` must start with `/`", Escaped(p.path)),
        ));
    }
    if let Some(a) = &p.authorization {
        text::check_header_value(a, &format!("{path}.authorization"))?;
    }
    let authority = p.authority.unwrap_or(p.cluster).to_string();
    text::check_header_value(&authority, &format!("{path}.authority"))?;
    let (interval_ms, timeout_ms) = poll_timing(path, p.interval, p.timeout)?;
    if p.max_body_bytes == 0 {
        return Err(ConfigError::new(
            format!("{path}.max_body_bytes"),
            "must be above 0",
        ));
    }
    Ok(PollPlan {
        cluster: p.cluster.to_string(),
        authority,
        path: p.path.to_string(),
        authorization: p.authorization,
        interval_ms,
        timeout_ms,
        max_body_bytes: p.max_body_bytes,
    })
}

/// A poll's interval and timeout in milliseconds (`path`: the poll's settings, for errors): the
/// interval at least 1s, the timeout above 0 and shorter than the interval.
#[inline(never)]
fn poll_timing(path: &str, interval: &str, timeout: &str) -> Result<(u64, u64), ConfigError> {
    let interval_ms = text::duration_millis_at_least_1s(interval, &format!("{path}.interval"))?;
    let timeout_ms = text::duration_millis(timeout, &format!("{path}.timeout"))?;
    // A poll must end before the next one may start.
    if timeout_ms == 0 || timeout_ms >= interval_ms {
        return Err(ConfigError::new(
            format!("{path}.timeout"),
            "must be above 0 and shorter than the interval",
        ));
    }
    Ok((interval_ms, timeout_ms))
}
