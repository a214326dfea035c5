//! Config → Plan. Everything that can be checked or precomputed happens here,
//! once per config push; every error names the config path and the reason.
mod chain;
mod conditions;
mod error;
mod flags;
mod routes;
mod spring;
mod text;
mod unleash;

pub use error::ConfigError;

use crate::config::{Config, Source, SCHEMA_VERSION};
use crate::plan::{HeaderId, OverridePlan, Plan, SpringPlan, Subject, UnleashPlan};
use conditions::Conditions;
use sluice_primitives::cidr::Cidr;
use sluice_primitives::names::{NameIndex, OwnedNameIndex};

/// Parses config JSON strictly; the error names the JSON path.
#[inline(never)]
pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
    Config::from_json(json)
}

/// Parses and compiles in one step: what `on_configure` calls. Secrets the
/// config names by environment variable (`chain.keys[].env`) are read from the
/// process environment: in Envoy, the VM's (`vm_config.environment_variables`).
#[inline(never)]
pub fn load(json: &[u8]) -> Result<Plan, ConfigError> {
    load_with_env(json, &|name| std::env::var(name).ok())
}

/// `load` with the environment given.
#[inline(never)]
pub fn load_with_env(
    json: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigError> {
    let mut config = parse(json)?;
    if let Some(chain) = &mut config.chain {
        for key in &mut chain.keys {
            if let (None, Some(var)) = (&key.secret, &key.env) {
                key.secret = env(var).filter(|s| !s.is_empty());
            }
        }
    }
    compile(&config)
}

#[inline(never)]
pub fn compile(config: &Config) -> Result<Plan, ConfigError> {
    check_version(config)?;
    let mut conditions = Conditions::new(config)?;
    let inputs = compile_inputs(config, &mut conditions)?;
    let outputs = &inputs.outputs;
    let decisions = compile_decisions(config, outputs.baggage_prefix.as_deref(), &mut conditions)?;
    let mut owned = claim_outputs(
        outputs.flags_header.as_deref(),
        outputs.baggage_prefix.is_some(),
        outputs.incoming_flags_header.is_some(),
        &decisions.flags,
        &decisions.routes,
        inputs.overrides.as_ref(),
        &conditions.headers,
    )?;
    let sources = compile_sources(
        config,
        &mut conditions.headers,
        &mut owned,
        &decisions.flags,
        &decisions.routes,
    )?;
    Ok(assemble(
        config, conditions, inputs, decisions, owned, sources,
    ))
}

/// The plan out of its compiled parts.
#[inline(never)]
fn assemble(
    config: &Config,
    conditions: Conditions,
    inputs: Inputs,
    decisions: Decisions,
    owned: OwnedHeaders,
    (unleash, spring): (Option<UnleashPlan>, Option<SpringPlan>),
) -> Plan {
    let Outputs {
        flags_header,
        baggage_prefix,
        baggage_header,
        trusted_peers,
        incoming_flags_header,
    } = inputs.outputs;
    let headers = conditions.headers;
    // Baggage is read (identity, tokens) or written: either way, one header fact.
    let baggage_header = baggage_header.or(headers.lookup("baggage"));
    let mut plan = Plan {
        revision: config.revision.clone().unwrap_or_default(),
        headers: headers.names,
        header_roles: Default::default(),
        outputs: Default::default(),
        reads_source_address: false,
        reads_clock: false,
        user_key: inputs.user_key,
        session_key: inputs.session_key,
        flags: decisions.flags,
        flag_order: decisions.flag_order,
        flag_order_covers_all: false,
        flag_count_slots: 0,
        routes: decisions.routes,
        overrides: inputs.overrides,
        flags_header,
        baggage_prefix,
        baggage_header,
        owned_headers: owned.names,
        unleash,
        spring,
        trusted_peers,
        incoming_flags_header,
        goal_headers: decisions.goal_headers,
        chain: decisions.chain,
        flag_pieces: Default::default(),
        salts: Default::default(),
    };
    plan.chain.baggage_keys = headers.baggage_keys;
    plan.reads_clock = reads_clock(&plan);
    plan.reads_source_address = conditions.reads_source_address || reads_source_address(&plan);
    index(&mut plan);
    plan
}

/// The request path's lookup tables (`Plan::index`), out of line: inlined, they made `compile`
/// the module's largest function.
#[inline(never)]
fn index(plan: &mut Plan) {
    plan.index();
}

/// Who a request is (identity keys), the testers' overrides, and the decision headers.
struct Inputs {
    user_key: Vec<Subject>,
    session_key: Vec<Subject>,
    overrides: Option<OverridePlan>,
    outputs: Outputs,
}

// `compile`'s phases are functions of their own, as are the other compile steps: V8 compiles
// every function of the module at load, and the memory Envoy keeps from that grows with the
// size of the largest functions (BENCHMARKS.md §0f).
#[inline(never)]
fn compile_inputs(config: &Config, conditions: &mut Conditions) -> Result<Inputs, ConfigError> {
    let headers = &mut conditions.headers;
    let user_key = key_sources(&config.identity.user, "identity.user", headers)?;
    let session_key = key_sources(&config.identity.session, "identity.session", headers)?;
    let overrides = match &config.overrides {
        Some(o) => Some(compile_overrides(o, headers)?),
        None => None,
    };
    let outputs = compile_outputs(config, conditions)?;
    Ok(Inputs {
        user_key,
        session_key,
        overrides,
        outputs,
    })
}

/// The decisions: flags (and the order prerequisites impose), experiments, routes, and what
/// rollouts across services need.
struct Decisions {
    flags: Vec<crate::plan::FlagPlan>,
    flag_order: Vec<usize>,
    goal_headers: Vec<String>,
    routes: Vec<crate::plan::RoutePlan>,
    chain: crate::plan::ChainPlan,
}

#[inline(never)]
fn compile_decisions<'c>(
    config: &'c Config,
    baggage_prefix: Option<&str>,
    conditions: &mut Conditions<'c>,
) -> Result<Decisions, ConfigError> {
    let (mut flags, flag_order) = flags::compile_flags(config, conditions)?;
    conditions.share_repeated_leaves(&mut flags);
    let goal_headers = experiments(config, &mut flags)?;
    let routes = routes::compile_routes(config, conditions)?;
    let chain = chain::compile_chain(config, &routes, &flags, baggage_prefix, conditions)?;
    Ok(Decisions {
        flags,
        flag_order,
        goal_headers,
        routes,
        chain,
    })
}

#[inline(never)]
fn check_version(config: &Config) -> Result<(), ConfigError> {
    if config.version != SCHEMA_VERSION {
        return Err(ConfigError::new(
            "version",
            format!(
                "unsupported version {}, expected {SCHEMA_VERSION}",
                config.version
            ),
        ));
    }
    if let Some(revision) = &config.revision {
        text::check_header_value(revision, &"revision")?;
    }
    Ok(())
}

/// The flag sources besides the config's own flags: Unleash and Spring Cloud Config.
#[inline(never)]
fn compile_sources(
    config: &Config,
    headers: &mut HeaderTable,
    owned: &mut OwnedHeaders,
    flags: &[crate::plan::FlagPlan],
    routes: &[crate::plan::RoutePlan],
) -> Result<(Option<UnleashPlan>, Option<SpringPlan>), ConfigError> {
    let names: Vec<&str> = flags.iter().map(|f| f.name.as_str()).collect();
    let unleash = unleash::compile_unleash(config, headers, owned, &names)?;
    let spring = spring::compile_spring(config)?;
    for route in routes {
        // `names` is sorted (flags are compiled in name order).
        if names.binary_search(&route.name.as_str()).is_ok() {
            return Err(ConfigError::new(
                format!("routes.{}", route.name),
                "name is also a flag's; override keys (`name=value`) would be ambiguous",
            ));
        }
    }
    Ok((unleash, spring))
}

/// The decision headers the config writes (flags header, baggage) and whom it trusts to send
/// them.
struct Outputs {
    flags_header: Option<String>,
    baggage_prefix: Option<String>,
    baggage_header: Option<HeaderId>,
    trusted_peers: Vec<Cidr>,
    incoming_flags_header: Option<HeaderId>,
}

#[inline(never)]
fn compile_outputs(config: &Config, conditions: &mut Conditions) -> Result<Outputs, ConfigError> {
    let flags_header = match &config.outputs.flags_header {
        Some(name) => Some(text::output_header(name, &"outputs.flags_header")?),
        None => None,
    };
    let baggage_prefix = match &config.outputs.baggage {
        Some(b) => {
            if !b.prefix.bytes().all(text::is_token_byte) {
                return Err(ConfigError::new(
                    "outputs.baggage.prefix",
                    format!(
                        "`{}` is not a valid baggage key prefix (token characters only)",
                        b.prefix
                    ),
                ));
            }
            Some(b.prefix.clone())
        }
        None => None,
    };
    let baggage_header = match baggage_prefix {
        Some(_) => Some(conditions.headers.intern("baggage", "outputs.baggage")?),
        None => None,
    };
    let trusted_peers = config
        .outputs
        .trust_incoming_from
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Cidr::parse(c)
                .map_err(|e| ConfigError::new(format!("outputs.trust_incoming_from[{i}]"), e.0))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Trusting peers means reading the decision they send: the flags header
    // (and baggage, when configured) become inputs too.
    let incoming_flags_header = match (&flags_header, trusted_peers.is_empty()) {
        (Some(name), false) => Some(conditions.headers.intern(name, "outputs.flags_header")?),
        _ => None,
    };
    Ok(Outputs {
        flags_header,
        baggage_prefix,
        baggage_header,
        trusted_peers,
        incoming_flags_header,
    })
}

/// Claims every header the plan writes or consumes; none may be one the config reads.
#[inline(never)]
fn claim_outputs(
    flags_header: Option<&str>,
    writes_baggage: bool,
    reads_incoming_flags: bool,
    flags: &[crate::plan::FlagPlan],
    routes: &[crate::plan::RoutePlan],
    overrides: Option<&OverridePlan>,
    headers: &HeaderTable,
) -> Result<OwnedHeaders, ConfigError> {
    let mut owned = OwnedHeaders::default();
    if let Some(name) = flags_header {
        owned.claim(name, "outputs.flags_header")?;
    }
    for flag in flags {
        if let Some(h) = &flag.header {
            owned.claim(h, &format!("flags.{}.header", flag.name))?;
        }
    }
    routes::claim_route_headers(routes, &mut owned)?;
    if writes_baggage {
        owned.claim("baggage", "outputs.baggage")?;
    }
    // No written header may be one the config reads: Sluice's output would
    // come back as a request fact.
    for (name, by) in owned.names.iter().zip(&owned.claimed_by) {
        let read_as_decision = Some(name.as_str()) == flags_header && reads_incoming_flags;
        if name != "baggage" && !read_as_decision && headers.lookup(name).is_some() {
            return Err(ConfigError::new(
                by.as_str(),
                format!("header `{name}` is also read by this config as an input"),
            ));
        }
    }
    if let Some(o) = overrides {
        // The tester's request headers are consumed here, never forwarded.
        let header = headers.names[o.header].clone();
        let secret = headers.names[o.secret_header].clone();
        owned.claim(&header, "overrides.header")?;
        owned.claim(&secret, "overrides.secret_header")?;
    }
    Ok(owned)
}

/// Whether requests need the clock.
#[inline(never)]
fn reads_clock(plan: &Plan) -> bool {
    let (flags, chain) = (&plan.flags, &plan.chain);
    plan.unleash.is_some()
        || flags
            .iter()
            .any(|f| f.enable_at_ms.is_some() || f.ramp.is_some())
        || plan.routes.iter().any(routes::reads_clock)
        || chain.token.is_some()
        || chain.releases.iter().any(|r| r.schedule.is_timed())
        // Experiments measure latency per variant: the request's start time is needed.
        || flags.iter().any(|f| f.experiment.is_some())
}

/// Whether requests need the peer address, beyond the conditions that read it.
#[inline(never)]
fn reads_source_address(plan: &Plan) -> bool {
    let source = &Subject::SourceAddress;
    !plan.trusted_peers.is_empty()
        || plan
            .unleash
            .as_ref()
            .is_some_and(|u| u.remote_address.contains(source))
        || plan.user_key.contains(source)
        || plan.session_key.contains(source)
        || plan
            .overrides
            .as_ref()
            .is_some_and(|o| !o.allow_sources.is_empty())
}

/// Marks experiment flags; returns the distinct goal headers they read.
#[inline(never)]
fn experiments(
    config: &Config,
    flags: &mut [crate::plan::FlagPlan],
) -> Result<Vec<String>, ConfigError> {
    let mut headers: Vec<String> = Vec::new();
    // Looked up by name: a scan of the config's flags per flag was quadratic (1,000 flags:
    // two thirds of the whole load).
    // Flag name to its index in the config.
    let marked: NameIndex = (config.flags.0.iter().enumerate())
        .filter(|(_, (_, f))| f.experiment.is_some())
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    if marked.is_empty() {
        return Ok(headers);
    }
    for flag in flags.iter_mut() {
        let Some(e) = (marked.get(flag.name.as_str()))
            .and_then(|&i| config.flags.0.get(i)?.1.experiment.as_ref())
        else {
            continue;
        };
        flag.experiment = Some(experiment(&flag.name, e, &mut headers)?);
    }
    Ok(headers)
}

/// Flag `name`'s experiment: its goals, and its goal header (added to `headers` if new).
#[inline(never)]
fn experiment(
    name: &str,
    e: &crate::config::Experiment,
    headers: &mut Vec<String>,
) -> Result<crate::plan::ExperimentPlan, ConfigError> {
    let path = format!("flags.{name}.experiment");
    let header = text::output_header(&e.goal_header, &format!("{path}.goal_header"))?;
    let mut goals: Vec<String> = Vec::new();
    for (i, goal) in e.goals.iter().enumerate() {
        text::check_name(goal, &format!("{path}.goals[{i}]"), "goal")?;
        if goals.contains(goal) {
            return Err(ConfigError::new(
                format!("{path}.goals[{i}]"),
                format!("goal `{goal}` is listed twice"),
            ));
        }
        goals.push(goal.clone());
    }
    let goal_header = match headers.iter().position(|h| *h == header) {
        Some(i) => i,
        None => {
            headers.push(header);
            headers.len() - 1
        }
    };
    Ok(crate::plan::ExperimentPlan { goals, goal_header })
}

/// Request headers the plan reads, interned: each is fetched once per request.
#[derive(Default)]
pub(crate) struct HeaderTable {
    names: Vec<String>,
    index: OwnedNameIndex,
    /// Baggage members read as facts, each once.
    baggage_keys: Vec<String>,
}

impl HeaderTable {
    #[inline(never)]
    pub(crate) fn intern(&mut self, name: &str, path: &str) -> Result<HeaderId, ConfigError> {
        let lower = text::input_header(name, &path)?;
        if let Some(id) = self.index.get(lower.as_str()) {
            return Ok(*id);
        }
        let id = self.names.len();
        self.index.insert(lower.as_str().into(), id);
        self.names.push(lower);
        Ok(id)
    }

    #[inline(never)]
    pub(crate) fn baggage_key(&mut self, key: &str) -> usize {
        match self.baggage_keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.baggage_keys.push(key.to_string());
                self.baggage_keys.len() - 1
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<HeaderId> {
        self.index.get(name).copied()
    }
}

/// Every request header Sluice writes, with who claimed it, so that two
/// writers of one header are a config error rather than a race.
#[derive(Default)]
pub(crate) struct OwnedHeaders {
    names: Vec<String>,
    claimed_by: Vec<String>,
}

impl OwnedHeaders {
    #[inline(never)]
    pub(crate) fn claim(&mut self, name: &str, path: &str) -> Result<(), ConfigError> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Err(ConfigError::new(
                path,
                format!(
                    "header `{name}` is already written by {}",
                    self.claimed_by[i]
                ),
            ));
        }
        self.names.push(name.to_string());
        self.claimed_by.push(path.to_string());
        Ok(())
    }
}

/// Turns a `Source` into a subject, interning headers and noting cookie use.
#[inline(never)]
pub(crate) fn subject_of(
    source: &Source,
    path: &str,
    headers: &mut HeaderTable,
) -> Result<Subject, ConfigError> {
    Ok(match source {
        Source::Header(name) => Subject::Header(headers.intern(name, path)?),
        Source::Cookie(name) => {
            text::check_name_like(name, &path, "cookie name")?;
            headers.intern("cookie", path)?;
            Subject::Cookie(name.clone())
        }
        Source::Query(name) => {
            text::check_name_like(name, &path, "query parameter")?;
            Subject::Query(name.clone())
        }
        Source::Path => Subject::Path,
        Source::Method => Subject::Method,
        Source::Authority => Subject::Authority,
        Source::SourceAddress => Subject::SourceAddress,
        Source::Baggage(key) => {
            text::check_name_like(key, &path, "baggage key")?;
            headers.intern("baggage", path)?;
            Subject::Baggage(headers.baggage_key(key))
        }
    })
}

#[inline(never)]
fn key_sources(
    sources: &[Source],
    path: &str,
    headers: &mut HeaderTable,
) -> Result<Vec<Subject>, ConfigError> {
    sources
        .iter()
        .enumerate()
        .map(|(i, s)| subject_of(s, &format!("{path}[{i}]"), headers))
        .collect()
}

#[inline(never)]
fn compile_overrides(
    o: &crate::config::Overrides,
    headers: &mut HeaderTable,
) -> Result<OverridePlan, ConfigError> {
    let header = headers.intern(&o.header, "overrides.header")?;
    let secret_header = headers.intern(&o.secret_header, "overrides.secret_header")?;
    let secret_sha256 = match &o.secret_sha256 {
        Some(hex) => Some(text::parse_sha256_hex(hex).ok_or_else(|| {
            ConfigError::new(
                "overrides.secret_sha256",
                "expected 64 hex digits (a SHA-256 of the secret)",
            )
        })?),
        None => None,
    };
    let allow_sources = o
        .allow_sources
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Cidr::parse(c)
                .map_err(|e| ConfigError::new(format!("overrides.allow_sources[{i}]"), e.0))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if secret_sha256.is_none() && allow_sources.is_empty() {
        return Err(ConfigError::new(
            "overrides",
            "set secret_sha256 or allow_sources; otherwise no override can ever be honoured",
        ));
    }
    let debug_header = match &o.debug_header {
        Some(h) => Some(text::output_header(h, &"overrides.debug_header")?),
        None => None,
    };
    Ok(OverridePlan {
        header,
        secret_header,
        secret_sha256,
        allow_sources,
        debug_header,
    })
}
