//! What the subcommands share: reading a config (errors as FILE:LINE:COL), request options,
//! the embedded module, the report a command hands back to `main`.
use anyhow::{anyhow, Context as _, Result};
use sluice_core::compile::ConfigError;
use sluice_core::plan::{Plan, Subject};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The filter module this binary was built with (build.rs).
pub const EMBEDDED_WASM: &[u8] = include_bytes!(env!("SLUICE_EMBEDDED_WASM"));

/// What a command prints and its exit status.
#[derive(Default)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

impl Report {
    pub fn ok(stdout: String) -> Report {
        Report {
            stdout,
            ..Report::default()
        }
    }

    pub fn json(value: &serde_json::Value) -> Report {
        let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
        text.push('\n');
        Report::ok(text)
    }
}

/// A config file read and compiled, or why not.
pub struct Loaded {
    pub file: String,
    pub plan: Plan,
}

/// `FILE:LINE:COL: PATH: REASON` for a rejected config.
pub fn config_error(file: &str, text: &[u8], error: &ConfigError) -> (usize, usize, String) {
    // Syntax errors carry their position already: "... at line L column C".
    if let Some((reason, at)) = error.reason.rsplit_once(" at line ") {
        if let Some((line, column)) = at.split_once(" column ") {
            if let (Ok(l), Ok(c)) = (line.parse(), column.parse()) {
                return (l, c, format!("{file}:{l}:{c}: {}: {reason}", error.path));
            }
        }
    }
    let (l, c) = sluice_cli::locate::line_column(text, &error.path);
    (
        l,
        c,
        format!("{file}:{l}:{c}: {}: {}", error.path, error.reason),
    )
}

/// Compiles config text as the filter does, reading `chain.keys[].env` secrets from this process's
/// environment; one that is not set here (a laptop, a CI job) is replaced by a placeholder, so the
/// config can be checked and evaluated without the mesh's secrets.
pub fn compile(text: &[u8]) -> std::result::Result<Plan, sluice_core::compile::ConfigError> {
    sluice_core::compile::load_with_env(text, &|name| {
        Some(
            std::env::var(name)
                .unwrap_or_else(|_| "placeholder-secret-for-checking-only-0123456789".to_string()),
        )
    })
}

/// Reads and compiles a config; a rejection is a report (exit 1), not an error.
pub fn load(path: &Path) -> Result<std::result::Result<Loaded, Report>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = path.display().to_string();
    match compile(&text) {
        Ok(plan) => Ok(Ok(Loaded { file, plan })),
        Err(e) => {
            let (_, _, line) = config_error(&file, &text, &e);
            Ok(Err(Report {
                stderr: format!("{line}\n"),
                code: 1,
                ..Report::default()
            }))
        }
    }
}

/// RFC 3339 (`2026-03-01T12:00:00Z`) or unix seconds → unix millis.
pub fn parse_time(text: &str) -> Result<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds.saturating_mul(1000));
    }
    sluice_primitives::time::parse_rfc3339_millis(text).ok_or_else(|| {
        anyhow!("--at wants RFC 3339 (2026-03-01T12:00:00Z) or unix seconds, got {text:?}")
    })
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix millis → `2026-03-01T12:00:00Z` (UTC, seconds).
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The request options eval, explain and simulate share.
#[derive(Default, Clone)]
pub struct RequestOptions {
    pub headers: Vec<(String, String)>,
    pub path: Option<String>,
    pub method: Option<String>,
    pub authority: Option<String>,
    pub source: Option<String>,
    pub at_ms: Option<i64>,
}

pub const REQUEST_HELP: &str = "\
REQUEST OPTIONS:
  -H, --header NAME:VALUE   request header (repeatable; :authority, :path, :method too)
  --authority HOST          :authority (default: none, so routes matching on it say so)
  --path PATH               :path (default /)
  --method METHOD           :method (default GET)
  --source IP:PORT          the downstream peer address
  --at TIME                 the request's time: RFC 3339 or unix seconds (default: now)
";

impl RequestOptions {
    /// Takes a request option (`-H`, `--path`, ...); false when `opt` is not one.
    pub fn parse(&mut self, opt: &str, parser: &mut lexopt::Parser) -> Result<bool> {
        use lexopt::prelude::*;
        match opt {
            "-H" | "--header" => {
                let text = parser.value()?.string()?;
                // `:authority:reviews` names a pseudo-header.
                let split = if let Some(rest) = text.strip_prefix(':') {
                    rest.split_once(':').map(|(n, v)| (format!(":{n}"), v))
                } else {
                    text.split_once(':').map(|(n, v)| (n.to_string(), v))
                };
                let (name, value) =
                    split.ok_or_else(|| anyhow!("--header wants NAME:VALUE, got {text:?}"))?;
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim().to_string();
                match name.as_str() {
                    ":authority" | "host" => self.authority = Some(value),
                    ":path" => self.path = Some(value),
                    ":method" => self.method = Some(value),
                    _ => self.headers.push((name, value)),
                }
            }
            "--path" => self.path = Some(parser.value()?.string()?),
            "--method" => self.method = Some(parser.value()?.string()?),
            "--authority" => self.authority = Some(parser.value()?.string()?),
            "--source" => self.source = Some(parser.value()?.string()?),
            "--at" => self.at_ms = Some(parse_time(&parser.value()?.string()?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Header pairs as Envoy hands them over: pseudo-headers first.
    pub fn pairs(&self) -> Vec<(String, Vec<u8>)> {
        let mut pairs = vec![
            (
                ":path".to_string(),
                self.path.clone().unwrap_or_else(|| "/".into()).into_bytes(),
            ),
            (
                ":method".to_string(),
                self.method
                    .clone()
                    .unwrap_or_else(|| "GET".into())
                    .into_bytes(),
            ),
        ];
        if let Some(a) = &self.authority {
            pairs.push((":authority".to_string(), a.clone().into_bytes()));
        }
        for (n, v) in &self.headers {
            pairs.push((n.clone(), v.clone().into_bytes()));
        }
        pairs
    }
}

/// A command-line argument, owned: `-H`, `--json`, or a value.
pub enum Arg {
    Opt(String),
    Value(std::ffi::OsString),
}

/// The next argument, owned (lexopt's borrows the parser).
pub fn next(parser: &mut lexopt::Parser) -> Result<Option<Arg>> {
    Ok(parser.next()?.map(|arg| match arg {
        lexopt::Arg::Short(c) => Arg::Opt(format!("-{c}")),
        lexopt::Arg::Long(l) => Arg::Opt(format!("--{l}")),
        lexopt::Arg::Value(v) => Arg::Value(v),
    }))
}

pub fn unexpected(arg: Arg, command: &str) -> anyhow::Error {
    match arg {
        Arg::Opt(o) => {
            anyhow!("invalid option {o} for `sluice {command}` (see sluice {command} --help)")
        }
        Arg::Value(v) => anyhow!(
            "unexpected argument {:?} for `sluice {command}` (see sluice {command} --help)",
            v.to_string_lossy()
        ),
    }
}

/// Borrowed `(name, value)` pairs for `Headers::Pairs`.
pub fn borrow_pairs(pairs: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect()
}

/// How a plan's identity source is written on a request: `x-user-id`, `cookie uid`, `query u`.
pub fn subject_name(plan: &Plan, subject: &Subject) -> String {
    match subject {
        Subject::Header(i) => plan.headers.get(*i).cloned().unwrap_or_default(),
        Subject::Cookie(c) => format!("cookie {c}"),
        Subject::Query(q) => format!("query {q}"),
        Subject::Path => ":path".into(),
        Subject::Method => ":method".into(),
        Subject::Authority => ":authority".into(),
        Subject::SourceAddress => "source address".into(),
        Subject::Baggage(i) => format!(
            "baggage {}",
            plan.chain.baggage_keys.get(*i).map_or("", String::as_str)
        ),
    }
}

/// Adds `id` to a request as the plan's first user key source expects it; false if it cannot
/// (the plan keys users by path, method, authority or address only).
pub fn add_identity(plan: &Plan, pairs: &mut Vec<(String, Vec<u8>)>, id: &str) -> bool {
    for subject in &plan.user_key {
        match subject {
            Subject::Header(i) => {
                if let Some(name) = plan.headers.get(*i) {
                    pairs.push((name.clone(), id.as_bytes().to_vec()));
                    return true;
                }
            }
            Subject::Cookie(c) => {
                pairs.push(("cookie".into(), format!("{c}={id}").into_bytes()));
                return true;
            }
            Subject::Baggage(i) => {
                let Some(key) = plan.chain.baggage_keys.get(*i) else {
                    continue;
                };
                let mut member = format!("{key}=").into_bytes();
                sluice_primitives::baggage::percent_encode_into(id.as_bytes(), &mut member);
                pairs.push(("baggage".into(), member));
                return true;
            }
            Subject::Query(q) => {
                if let Some((_, path)) = pairs.iter_mut().find(|(n, _)| n == ":path") {
                    let sep = if path.contains(&b'?') { '&' } else { '?' };
                    path.extend_from_slice(format!("{sep}{q}={id}").as_bytes());
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// A request that matches `route`: its first authority, path prefix and method.
pub fn route_request(route: &sluice_core::plan::RoutePlan) -> RequestOptions {
    use sluice_core::plan::AuthorityMatch;
    RequestOptions {
        authority: route.authorities.first().map(|a| match a {
            AuthorityMatch::Exact(h) => h.clone(),
            AuthorityMatch::Suffix(s) => format!("www{s}"),
        }),
        path: route.path_prefix.clone(),
        method: route.methods.first().cloned(),
        ..RequestOptions::default()
    }
}

/// `--wasm PATH` or the embedded module.
pub fn module_bytes(path: Option<&PathBuf>) -> Result<Vec<u8>> {
    match path {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("cannot read the module {}", p.display()))
        }
        None => Ok(EMBEDDED_WASM.to_vec()),
    }
}

/// What each reason means, for people.
pub fn describe(reason: &sluice_core::decision::Reason) -> String {
    use sluice_core::decision::Reason::*;
    match reason {
        Disabled => "the flag is switched off (enabled: false)".into(),
        Scheduled => "before the flag's schedule.enable_at".into(),
        RampedOut => "outside the ramp's current share of users".into(),
        PrerequisiteFailed => "a prerequisite flag has another variant".into(),
        Rule(i) => format!("rule {i} matched and serves this variant"),
        Rollout(i) => format!("rule {i}'s rollout placed the user by bucket"),
        Default => "no rule matched: the default variant".into(),
        NoIdentity => "the request carries no user key: default / stable".into(),
        Override => "an authorised tester override asked for it".into(),
        Propagated => "an earlier hop had decided it (a verified token, or a trusted peer)".into(),
        Pinned(i) => format!("pin {i} matched and forces this version"),
        Preview => "the blue-green preview condition matched: the idle color".into(),
        Weighted => "the weights placed the user by bucket".into(),
        GuardTripped => "the canary guard tripped: everyone on stable".into(),
        Release => "the route's release placed the user (in: its version; out: stable)".into(),
        Requires => "the version's requirements do not hold for this user: stable".into(),
    }
}

pub fn reason_text(reason: &sluice_core::decision::Reason) -> String {
    let mut out = String::new();
    reason.write_to(&mut out);
    out
}

/// Why `route` does not match the request (empty: it matches).
pub fn route_mismatch(route: &sluice_core::plan::RoutePlan, req: &RequestOptions) -> Vec<String> {
    use sluice_core::plan::AuthorityMatch;
    let mut why = Vec::new();
    let method = req.method.as_deref().unwrap_or("GET");
    if !route.methods.is_empty() && !route.methods.iter().any(|m| m == method) {
        why.push(format!(
            "method {method} is not one of {}",
            route.methods.join(", ")
        ));
    }
    let path = req.path.as_deref().unwrap_or("/");
    if let Some(prefix) = &route.path_prefix {
        if !path.starts_with(prefix.as_str()) {
            why.push(format!("path `{path}` does not start with `{prefix}`"));
        }
    }
    if !route.authorities.is_empty() {
        let names: Vec<String> = route
            .authorities
            .iter()
            .map(|a| match a {
                AuthorityMatch::Exact(h) => h.clone(),
                AuthorityMatch::Suffix(s) => format!("*{s}"),
            })
            .collect();
        match &req.authority {
            None => why.push(format!(
                "the request has no authority (pass --authority; the route wants {})",
                names.join(", ")
            )),
            Some(a) => {
                let host = host_of(a).to_ascii_lowercase();
                let ok = route.authorities.iter().any(|m| match m {
                    AuthorityMatch::Exact(h) => host == *h,
                    AuthorityMatch::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
                });
                if !ok {
                    why.push(format!("authority `{a}` is not {}", names.join(", ")));
                }
            }
        }
    }
    why
}

fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |e| &authority[..=e]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}
