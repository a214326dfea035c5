//! `sluice simulate`: users over time through the filter module in host-test's wasmtime host,
//! with upstreams that answer per version (so the guard can trip), per-round tables of shares
//! and of users who moved forward or backward, and every user's answers on request.
use crate::common::{self, Arg, Report, RequestOptions};
use anyhow::{anyhow, bail, Context as _, Result};
use lexopt::ValueExt as _;
use serde_json::{json, Value as Json};
use sluice_cli::report::{percent, thousands, Moves, Tally};
use sluice_core::engine::{Headers, RouteControl};
use sluice_core::pipeline::{self, Facts, Live};
use sluice_core::plan::{Plan, Strategy};
use sluice_host::{Host, LogLevel};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

const HELP: &str = "\
sluice simulate CONFIG [--users N] [--rounds R] [--advance DURATION] [--upstream SPEC]...
                [--per-user FILE.csv|FILE.json] [--workers W] [--wasm PATH] [--json]
                [REQUEST OPTIONS]

N users (user-0 ... user-N-1, keyed as the config's identity.user says) send one request per
route each round, through the filter module (the embedded build, or --wasm PATH) in the wasmtime
host, as in Envoy: one VM per worker, the guard and its ticks included. Between rounds the
virtual clock moves DURATION. Each round prints the share of users per version and variant and
how many users moved forward (into the canary, the new color, a variant) or backward (out of
it: should be 0 unless a guard tripped). Without --authority/--path, each route is sent a
request that matches it.

OPTIONS:
  --users N                 users (default 1000)
  --rounds R                rounds, one request per user and route each (default 1)
                            (--requests-per-user is the same)
  --advance DURATION        virtual time between rounds: 30s, 10m, 1h (default 1m)
  --upstream SPEC           how a version's upstream answers (repeatable), e.g.
                            v2=500:20%,latency=250ms   20% of v2's answers are 500, each after 250ms
                            v1=latency=40ms            (other versions answer 200 at once)
  --per-user FILE           every user's answers per round: CSV (.csv) or JSON (.json)
  --workers W               VMs (Envoy workers); users spread over them (default 2)
  --wasm PATH               another build of the filter module
  --json                    one JSON document on stdout
  -h, --help                this help
";

/// How one version's upstream answers.
#[derive(Debug, Default, Clone)]
struct Upstream {
    /// (status, share in basis points), checked in order; the rest answer 200.
    statuses: Vec<(u16, u32)>,
    latency: Duration,
}

/// `v2=500:20%,latency=250ms` → (v2, ...).
fn parse_upstream(spec: &str) -> Result<(String, Upstream)> {
    let (version, rest) = spec.split_once('=').ok_or_else(|| {
        anyhow!("--upstream wants VERSION=STATUS:PERCENT%,latency=DURATION, got {spec:?}")
    })?;
    let mut up = Upstream::default();
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(d) = part.strip_prefix("latency=") {
            let ms = sluice_primitives::duration::parse_duration_millis(d)
                .ok_or_else(|| anyhow!("--upstream {spec:?}: bad latency {d:?} (e.g. 250ms)"))?;
            up.latency = Duration::from_millis(ms);
        } else {
            let (status, share) = part.split_once(':').unwrap_or((part, "100%"));
            let status: u16 = status
                .parse()
                .ok()
                .filter(|s| (100..600).contains(s))
                .ok_or_else(|| anyhow!("--upstream {spec:?}: bad status {status:?}"))?;
            let share: f64 = share
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=100.0).contains(p))
                .ok_or_else(|| anyhow!("--upstream {spec:?}: bad share {share:?} (e.g. 20%)"))?;
            up.statuses.push((status, (share * 100.0).round() as u32));
        }
    }
    Ok((version.trim().to_string(), up))
}

struct Options {
    config: PathBuf,
    users: usize,
    rounds: usize,
    advance: Duration,
    upstreams: BTreeMap<String, Upstream>,
    per_user: Option<PathBuf>,
    workers: usize,
    wasm: Option<PathBuf>,
    json: bool,
    request: RequestOptions,
}

fn options(args: Vec<OsString>) -> Result<Option<Options>> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut o = Options {
        config: PathBuf::new(),
        users: 1000,
        rounds: 1,
        advance: Duration::from_secs(60),
        upstreams: BTreeMap::new(),
        per_user: None,
        workers: 2,
        wasm: None,
        json: false,
        request: RequestOptions::default(),
    };
    let mut config = None;
    while let Some(arg) = common::next(&mut parser)? {
        if let Arg::Opt(opt) = &arg {
            if o.request.parse(opt, &mut parser)? {
                continue;
            }
        }
        match arg {
            Arg::Opt(opt) => match opt.as_str() {
                "-h" | "--help" => {
                    crate::print_out(HELP);
                    return Ok(None);
                }
                "--users" => o.users = parser.value()?.parse()?,
                "--rounds" | "--requests-per-user" => o.rounds = parser.value()?.parse()?,
                "--advance" => {
                    let text = parser.value()?.string()?;
                    let ms = match text.parse::<f64>() {
                        Ok(s) if s >= 0.0 => (s * 1000.0) as u64,
                        _ => sluice_primitives::duration::parse_duration_millis(&text).ok_or_else(
                            || anyhow!("--advance wants a duration (30s, 10m), got {text:?}"),
                        )?,
                    };
                    o.advance = Duration::from_millis(ms);
                }
                "--upstream" => {
                    let (v, up) = parse_upstream(&parser.value()?.string()?)?;
                    o.upstreams.insert(v, up);
                }
                "--per-user" => o.per_user = Some(parser.value()?.into()),
                "--workers" => o.workers = parser.value()?.parse()?,
                "--wasm" => o.wasm = Some(parser.value()?.into()),
                "--json" => o.json = true,
                _ => return Err(common::unexpected(Arg::Opt(opt), "simulate")),
            },
            Arg::Value(v) if config.is_none() => config = Some(PathBuf::from(v)),
            arg => return Err(common::unexpected(arg, "simulate")),
        }
    }
    o.config = config.ok_or_else(|| anyhow!("missing CONFIG (see sluice simulate --help)"))?;
    if o.users == 0 || o.rounds == 0 || o.workers == 0 {
        bail!("--users, --rounds and --workers must be at least 1");
    }
    Ok(Some(o))
}

/// One request's answers.
#[derive(Clone)]
struct Row {
    user: usize,
    round: usize,
    at_ms: i64,
    target: String,
    status: u16,
    /// route name → version, flag name → variant.
    values: BTreeMap<String, String>,
}

/// What is tracked: a route (by its header) or a flag (from the flags header).
struct Tracked {
    kind: &'static str,
    name: String,
    order: Vec<String>,
    /// Values in rank 0 (stable, off): moving out of them is forward.
    baseline: Vec<String>,
}

pub fn run(args: Vec<OsString>) -> Result<Option<Report>> {
    let Some(o) = options(args)? else {
        return Ok(None);
    };
    let loaded = match common::load(&o.config)? {
        Ok(l) => l,
        Err(r) => return Ok(Some(r)),
    };
    let plan = &loaded.plan;
    let text = std::fs::read(&o.config)?;
    let module = common::module_bytes(o.wasm.as_ref())?;
    let mut builder = Host::builder_from_bytes(&module)
        .plugin_config(&text)
        .log_level(LogLevel::Warn)
        .workers(o.workers);
    if let Some(at) = o.request.at_ms {
        builder = builder.start_time(UNIX_EPOCH + Duration::from_millis(at.max(0) as u64));
    }
    let (mut host, rejected) = builder.start()?;
    if let Some(rejected) = rejected {
        let logs: Vec<String> = rejected.logs.iter().map(|l| l.message.clone()).collect();
        return Ok(Some(Report {
            stderr: format!(
                "{}: rejected by the filter module: {}\n",
                loaded.file,
                logs.join("; ")
            ),
            code: 1,
            ..Report::default()
        }));
    }

    // Targets: the request options as given, or one request per route that matches it.
    let given = o.request.authority.is_some() || o.request.path.is_some();
    let targets: Vec<(String, RequestOptions)> = if given || plan.routes.is_empty() {
        vec![("request".to_string(), o.request.clone())]
    } else {
        plan.routes
            .iter()
            .map(|r| {
                let mut req = common::route_request(r);
                req.headers = o.request.headers.clone();
                req.source = o.request.source.clone();
                (r.name.clone(), req)
            })
            .collect()
    };
    let tracked = tracked(plan);
    let mut rows: Vec<Row> = Vec::new();
    let mut text_out = String::new();
    let mut rounds_json = Vec::new();
    let mut previous: BTreeMap<String, BTreeMap<usize, String>> = BTreeMap::new();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let _ = writeln!(
        text_out,
        "{} users x {} round(s) x {} request(s) through the filter module on {} worker(s), {} apart",
        thousands(o.users),
        o.rounds,
        targets.len(),
        o.workers,
        show_duration(o.advance)
    );
    for round in 0..o.rounds {
        if round > 0 {
            host.advance(o.advance)?;
        }
        let at_ms = millis(&host);
        let start = rows.len();
        for user in 0..o.users {
            let id = format!("user-{user}");
            for (target, req) in &targets {
                let mut pairs = req.pairs();
                if !common::add_identity(plan, &mut pairs, &id) {
                    pairs.push(("x-user-id".into(), id.clone().into_bytes()));
                }
                let version = predict(plan, &host, &pairs, req, target, millis(&host));
                let up = version
                    .as_ref()
                    .and_then(|v| o.upstreams.get(v))
                    .cloned()
                    .unwrap_or_default();
                let status = pick_status(&up, user, round, target);
                let mut request = host.worker(user % o.workers).request();
                for (n, v) in &pairs {
                    request = match n.as_str() {
                        ":path" => request.path(v),
                        ":method" => request.method(v),
                        ":authority" => request.authority(v),
                        _ => request.header(n, v),
                    };
                }
                if let Some(s) = &req.source {
                    request = request.source(s);
                }
                if req.authority.is_none() {
                    request = request.authority("");
                }
                let out = request
                    .upstream_status(status)
                    .upstream_latency(up.latency)
                    .send()
                    .with_context(|| format!("request of {id} in round {round}"))?;
                let status = out
                    .response_headers
                    .get(":status")
                    .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok())
                    .unwrap_or(status);
                let mut values = BTreeMap::new();
                for route in &plan.routes {
                    if let Some(v) = out.request_header(&route.header) {
                        values.insert(format!("route {}", route.name), v);
                    }
                }
                if let Some(h) = &plan.flags_header {
                    if let Some(flags) = out.request_header(h) {
                        for pair in flags.split(';') {
                            if let Some((k, v)) = pair.split_once('=') {
                                values.insert(format!("flag {}", k.trim()), v.trim().to_string());
                            }
                        }
                    }
                }
                host.clear_records();
                rows.push(Row {
                    user,
                    round,
                    at_ms,
                    target: target.clone(),
                    status,
                    values,
                });
            }
        }
        // This round's table.
        let this = &rows[start..];
        let errors = this.iter().filter(|r| r.status >= 500).count();
        let _ = writeln!(
            text_out,
            "\nround {} at {}: {} requests, {} 5xx ({})",
            round + 1,
            common::format_time(at_ms),
            thousands(this.len()),
            thousands(errors),
            percent(errors, this.len())
        );
        let mut table = vec![vec![
            String::new(),
            "shares".to_string(),
            "forward".to_string(),
            "backward".to_string(),
        ]];
        let mut items_json = Vec::new();
        for t in &tracked {
            let key = format!("{} {}", t.kind, t.name);
            let mut now: BTreeMap<usize, String> = BTreeMap::new();
            let mut round_tally = Tally::default();
            for r in this {
                if let Some(v) = r.values.get(&key) {
                    now.insert(r.user, v.clone());
                    round_tally.add(r.user, v);
                    tallies.entry(key.clone()).or_default().add(r.user, v);
                }
            }
            if now.is_empty() {
                continue;
            }
            let moves = previous
                .get(&key)
                .map(|before| {
                    Moves::between(before, &now, |v| {
                        u8::from(!t.baseline.iter().any(|b| b == v))
                    })
                })
                .unwrap_or_default();
            let shares: Vec<String> = round_tally
                .values(&t.order)
                .iter()
                .map(|v| {
                    format!(
                        "{v} {}",
                        percent(round_tally.users_of(v), round_tally.user_count())
                    )
                })
                .collect();
            table.push(vec![
                key.clone(),
                shares.join("  "),
                thousands(moves.forward),
                thousands(moves.backward),
            ]);
            let shares_json: BTreeMap<String, f64> = round_tally
                .values(&t.order)
                .iter()
                .map(|v| {
                    let share = round_tally.users_of(v) as f64 * 100.0
                        / round_tally.user_count().max(1) as f64;
                    (v.clone(), (share * 100.0).round() / 100.0)
                })
                .collect();
            items_json.push(
                json!({"kind": t.kind, "name": t.name, "shares": shares_json,
                "forward": moves.forward, "backward": moves.backward, "sideways": moves.sideways}),
            );
            previous.insert(key, now);
        }
        text_out.push_str(&render(&table));
        let mut guards = BTreeMap::new();
        for route in plan.routes.iter().filter(|r| r.guard.is_some()) {
            let name = format!(
                "sluice.guard.{}.tripped",
                sluice_core::telemetry::stat_segment(&route.name)
            );
            let tripped = host.metric(&name).is_some_and(|m| m.value() > 0);
            let _ = writeln!(
                text_out,
                "  guard {}: {}",
                route.name,
                if tripped { "TRIPPED" } else { "ok" }
            );
            guards.insert(route.name.clone(), tripped);
        }
        rounds_json.push(json!({"round": round + 1, "at": common::format_time(at_ms),
            "requests": this.len(), "errors_5xx": errors, "items": items_json, "guards": guards}));
    }
    let _ = writeln!(text_out, "\nover all rounds:");
    for t in &tracked {
        let key = format!("{} {}", t.kind, t.name);
        if let Some(tally) = tallies.get(&key) {
            text_out.push_str(&tally.table(&key, &t.order));
            let _ = writeln!(
                text_out,
                "  users that saw more than one value: {} ({})",
                thousands(tally.unsticky()),
                percent(tally.unsticky(), tally.user_count())
            );
        }
    }
    if let Some(path) = &o.per_user {
        write_per_user(path, &rows, &tracked)?;
        let _ = writeln!(
            text_out,
            "\nwrote {} rows to {}",
            thousands(rows.len()),
            path.display()
        );
    }
    if o.json {
        return Ok(Some(Report::json(
            &json!({"config": loaded.file, "users": o.users,
            "rounds": rounds_json}),
        )));
    }
    Ok(Some(Report::ok(text_out)))
}

fn millis(host: &Host) -> i64 {
    host.now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 || s == 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The routes and flags to follow, with the values that count as "not moved in".
fn tracked(plan: &Plan) -> Vec<Tracked> {
    let mut out = Vec::new();
    for r in &plan.routes {
        let baseline = match &r.strategy {
            Strategy::Progressive { baseline, .. } => vec![r.versions[*baseline].clone()],
            Strategy::BlueGreen { idle, .. } => vec![r.versions[*idle].clone()],
            Strategy::Split(_) => r.versions.clone(),
        };
        out.push(Tracked {
            kind: "route",
            name: r.name.clone(),
            order: r.versions.clone(),
            baseline,
        });
    }
    if plan.flags_header.is_some() {
        for f in &plan.flags {
            out.push(Tracked {
                kind: "flag",
                name: f.name.clone(),
                order: f.variant_names.clone(),
                baseline: vec![
                    f.variant_names[f.off_variant].clone(),
                    f.variant_names[f.default].clone(),
                ],
            });
        }
    }
    out
}

/// The version the module will pick for this request: the same pipeline natively, with the
/// guards' state read from the module's gauges. Used to pick the upstream's answer before the
/// request is sent.
fn predict(
    plan: &Plan,
    host: &Host,
    pairs: &[(String, Vec<u8>)],
    req: &RequestOptions,
    target: &str,
    now_ms: i64,
) -> Option<String> {
    let controls: Vec<RouteControl> = plan
        .routes
        .iter()
        .map(|r| {
            let name = format!(
                "sluice.guard.{}.tripped",
                sluice_core::telemetry::stat_segment(&r.name)
            );
            match (&r.guard, host.metric(&name).map(|m| m.value())) {
                (Some(g), Some(v)) if v > 0 && !g.pause => RouteControl::RolledBack,
                _ => RouteControl::Normal,
            }
        })
        .collect();
    let borrowed = common::borrow_pairs(pairs);
    let facts = Facts {
        headers: Headers::Pairs(&borrowed),
        source: req.source.as_deref().map(str::as_bytes),
        now_ms,
        entropy: 0,
    };
    let live = Live {
        controls: &controls,
        unleash: plan.unleash.as_ref().and_then(|u| u.initial.as_deref()),
        // No polled source outside the proxy.
        spring: None,
    };
    let scratch = pipeline::run_once(plan, live, &facts);
    let routes = &scratch.decision.routes;
    let outcome = routes
        .iter()
        .find(|o| plan.routes[o.route].name == target)
        .or_else(|| routes.first())?;
    plan.routes[outcome.route]
        .versions
        .get(outcome.version)
        .cloned()
}

/// The status for this request: a stable pseudo-random draw per (user, round, target).
fn pick_status(up: &Upstream, user: usize, round: usize, target: &str) -> u16 {
    let key = format!("{user}:{round}:{target}");
    let draw = sluice_primitives::murmur3_x86_32(key.as_bytes(), 0x5eed) % 10_000;
    let mut upper = 0;
    for (status, share) in &up.statuses {
        upper += share;
        if draw < upper {
            return *status;
        }
    }
    200
}

fn render(rows: &[Vec<String>]) -> String {
    sluice_cli::report::render_table(rows)
}

fn write_per_user(path: &PathBuf, rows: &[Row], tracked: &[Tracked]) -> Result<()> {
    let keys: Vec<String> = tracked
        .iter()
        .map(|t| format!("{} {}", t.kind, t.name))
        .collect();
    let json = path.extension().is_some_and(|e| e == "json");
    let text = if json {
        let list: Vec<Json> = rows
            .iter()
            .map(|r| {
                json!({"user": format!("user-{}", r.user), "round": r.round + 1,
                    "at": common::format_time(r.at_ms), "request": r.target, "status": r.status,
                    "answers": r.values})
            })
            .collect();
        serde_json::to_string_pretty(&list)? + "\n"
    } else {
        let mut out = String::from("user,round,at,request,status");
        for k in &keys {
            out.push(',');
            out.push_str(&csv(k));
        }
        out.push('\n');
        for r in rows {
            let _ = write!(
                out,
                "user-{},{},{},{},{}",
                r.user,
                r.round + 1,
                common::format_time(r.at_ms),
                csv(&r.target),
                r.status
            );
            for k in &keys {
                out.push(',');
                out.push_str(&csv(r.values.get(k).map_or("", String::as_str)));
            }
            out.push('\n');
        }
        out
    };
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
