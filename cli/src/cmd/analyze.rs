//! `sluice analyze --config CONFIG SOURCE...`: experiments and canaries judged from Envoy's stats.
use crate::common::{self, Report};
use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};
use sluice_cli::analysis::{self, Histogram, Sample, Test};
use sluice_core::plan::{Plan, Strategy};
use sluice_core::telemetry::{stat_segment, STATUS_CLASSES};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};

const HELP: &str = "\
sluice analyze --config CONFIG SOURCE... [--since SOURCE...] [--alpha A] [--json]

Reads Envoy's stats (admin /stats/prometheus or /stats?format=json, from an http:// URL or a
file; several SOURCEs are several proxies, summed) and prints, per experiment flag and per
canary route of CONFIG: responses, error rate, p50/p99 latency, conversion per goal, with 95%
confidence intervals, and whether each variant (or the canary) differs significantly from the
control (the flag's default variant; the route's stable version).

Methods: rates by the two-proportion z-test (pooled) with Wilson intervals; latency by the
Mann-Whitney U test on the histogram buckets (ties corrected); Holm's correction over all
comparisons of one experiment or canary. Latency needs the Prometheus format (Envoy's JSON has
no buckets). A side with fewer than 30 responses gets no verdict.

OPTIONS:
  --config CONFIG      the config pushed to the proxies (names the experiments and canaries)
  --since SOURCE...    earlier samples of the same proxies, in the same order: analyze what
                       happened in between (a counter that went backwards is an error)
  --alpha A            significance level, default 0.05
  --json               one JSON document on stdout
  -h, --help           this help

EXIT STATUS: 0 nothing significantly worse; 1 a variant or canary is significantly worse than
its control; 2 usage error or unusable stats (unreadable, truncated, missing, counters backwards)
";

/// Fewer responses than this on either side: no test.
const MIN_RESPONSES: f64 = 30.0;

pub fn run(args: Vec<OsString>) -> Result<Option<Report>> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let (mut config, mut sources, mut since, mut alpha, mut as_json) =
        (None::<String>, Vec::new(), Vec::new(), 0.05, false);
    let mut in_since = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {
                crate::print_out(HELP);
                return Ok(None);
            }
            Long("config") => config = Some(parser.value()?.to_string_lossy().into_owned()),
            Long("since") => in_since = true,
            Long("alpha") => {
                let v = parser.value()?.to_string_lossy().into_owned();
                alpha = v
                    .parse()
                    .ok()
                    .filter(|a: &f64| *a > 0.0 && *a < 1.0)
                    .ok_or_else(|| anyhow!("--alpha {v:?}: give a number between 0 and 1"))?;
            }
            Long("json") => as_json = true,
            Value(v) => {
                let v = v.to_string_lossy().into_owned();
                if in_since {
                    since.push(v);
                } else {
                    sources.push(v);
                }
            }
            _ => return Err(common::unexpected(owned(arg), "analyze")),
        }
    }
    let config =
        config.ok_or_else(|| anyhow!("missing --config CONFIG (see sluice analyze --help)"))?;
    if sources.is_empty() {
        bail!("missing SOURCE: an admin URL (http://127.0.0.1:9901/stats/prometheus) or a file");
    }
    if !since.is_empty() && since.len() != sources.len() {
        bail!(
            "--since gives {} sample(s) for {} source(s): give one earlier sample per source, in the same order",
            since.len(),
            sources.len()
        );
    }
    let loaded = match common::load(std::path::Path::new(&config))? {
        Ok(loaded) => loaded,
        Err(report) => return Ok(Some(report)),
    };
    let mut total = Sample::default();
    for (i, source) in sources.iter().enumerate() {
        let mut sample = analysis::parse(&read_source(source)?, source).map_err(|e| anyhow!(e))?;
        complete(&loaded.plan, &sample, source)?;
        if let Some(earlier) = since.get(i) {
            let before =
                analysis::parse(&read_source(earlier)?, earlier).map_err(|e| anyhow!(e))?;
            complete(&loaded.plan, &before, earlier)?;
            sample = sample.since(&before, source).map_err(|e| anyhow!(e))?;
        }
        total
            .add(&sample)
            .map_err(|e| anyhow!("{e} (summing {source})"))?;
    }
    let groups = groups(&loaded.plan, &total, alpha)?;
    if groups.is_empty() {
        bail!("{config} has no experiment flag (`experiment`) and no canary route: nothing to analyze");
    }
    let mut report = Report::default();
    let unknown = unknown_names(&loaded.plan, &total);
    if !unknown.is_empty() {
        let _ = writeln!(
            report.stderr,
            "warning: {} Sluice stat(s) in the sources are not from {config} (another revision, or a flag not marked `experiment`?), ignored: {}",
            unknown.len(),
            unknown.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let worse: Vec<String> = groups
        .iter()
        .flat_map(|g| {
            g["comparisons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["worse"] == true)
                .map(|c| {
                    format!(
                        "{} {}: {} {}",
                        g["kind"].as_str().unwrap_or(""),
                        g["name"].as_str().unwrap_or(""),
                        c["variant"].as_str().unwrap_or(""),
                        c["metric"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let doc = json!({
        "alpha": alpha,
        "sources": sources,
        "methods": {
            "rates": "two-proportion z-test (pooled), Wilson 95% intervals",
            "latency": "Mann-Whitney U on histogram buckets (tie-corrected normal approximation)",
            "correction": "Holm over all comparisons of one experiment or canary",
        },
        "groups": groups,
        "significantly_worse": worse,
    });
    if as_json {
        report.stdout = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    } else {
        report.stdout = text(&doc);
    }
    report.code = u8::from(!worse.is_empty());
    Ok(Some(report))
}

fn owned(arg: lexopt::Arg) -> common::Arg {
    match arg {
        lexopt::Arg::Short(c) => common::Arg::Opt(format!("-{c}")),
        lexopt::Arg::Long(l) => common::Arg::Opt(format!("--{l}")),
        lexopt::Arg::Value(v) => common::Arg::Value(v),
    }
}

/// A file, or an `http://host:port/path` URL (Envoy's admin listener: plain HTTP/1.0 GET).
fn read_source(source: &str) -> Result<String> {
    let Some(rest) = source.strip_prefix("http://") else {
        return std::fs::read_to_string(source).with_context(|| format!("cannot read {source}"));
    };
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/stats/prometheus".to_string()),
    };
    let timeout = std::time::Duration::from_secs(10);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .with_context(|| format!("{source}: cannot resolve {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{source}: no address for {host}"))?;
    let mut conn = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("{source}: cannot connect"))?;
    conn.set_read_timeout(Some(timeout))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    conn.read_to_end(&mut body)
        .with_context(|| format!("{source}: reading the answer"))?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{source}: not an HTTP answer"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("{source}: HTTP status {status}");
    }
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding") && v.trim() == "chunked"
        })
    });
    if chunked {
        return dechunk(body).ok_or_else(|| anyhow!("{source}: truncated chunked answer"));
    }
    Ok(body.to_string())
}

/// The body of a `Transfer-Encoding: chunked` answer; `None` when it ends early.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

fn name(parts: &str) -> String {
    analysis::prometheus_name(&format!("wasmcustom.sluice.{parts}"))
}

/// Envoy prints every counter Sluice defined, zeros included, and Sluice defines all of a
/// variant's (version's) counters at once; so a side with some of them in a source but not all is
/// cut-off output (a file cut at a line end passes the text checks), and a missing counter must
/// not read as 0 and tip a verdict.
fn complete(plan: &Plan, sample: &Sample, source: &str) -> Result<()> {
    let names = sluice_core::telemetry::MetricNames::of(plan);
    let route_sides = names.route_responses.iter().flatten().map(|c| c.to_vec());
    let experiment_sides = names
        .experiment_responses
        .iter()
        .zip(&names.experiment_goals)
        .flat_map(|(variants, goals)| {
            variants
                .iter()
                .zip(goals)
                .map(|(c, g)| c.iter().chain(g).cloned().collect::<Vec<_>>())
        });
    for side in route_sides.chain(experiment_sides) {
        let stats: Vec<String> = side
            .iter()
            .map(|n| analysis::prometheus_name(&format!("wasmcustom.{n}")))
            .collect();
        let present = stats.iter().find(|n| sample.counters.contains_key(*n));
        let missing = stats.iter().find(|n| !sample.counters.contains_key(*n));
        if let (Some(present), Some(missing)) = (present, missing) {
            bail!(
                "{source}: `{missing}` is missing while `{present}` is there: truncated output? \
                 (analyze needs every Sluice counter, so not `usedonly`)"
            );
        }
    }
    Ok(())
}

/// Responses by class, latency, goals of one variant or version.
struct Side {
    name: String,
    classes: [f64; 5],
    latency: Option<Histogram>,
    goals: Vec<(String, f64)>,
}

impl Side {
    fn responses(&self) -> f64 {
        self.classes.iter().sum()
    }
    fn errors(&self) -> f64 {
        self.classes[4]
    }
}

/// One side's stats (all of its counters or none: `complete` checked); a side with none reads as
/// zeros; `found` says whether any stat of the side was there at all.
fn side(sample: &Sample, prefix: &str, label: &str, goals: &[String]) -> (Side, bool) {
    let mut found = false;
    let mut get = |stat: String| match sample.counters.get(&stat) {
        Some(n) => {
            found = true;
            *n
        }
        None => 0.0,
    };
    let mut classes = [0.0; 5];
    for (slot, class) in classes.iter_mut().zip(STATUS_CLASSES) {
        *slot = get(name(&format!("{prefix}.responses.{class}")));
    }
    let goals = goals
        .iter()
        .map(|g| {
            let n = get(name(&format!("{prefix}.goal.{}", stat_segment(g))));
            (g.clone(), n)
        })
        .collect();
    let latency = sample
        .histograms
        .get(&name(&format!("{prefix}.latency_ms")))
        .cloned();
    let found = found || latency.is_some();
    (
        Side {
            name: label.to_string(),
            classes,
            latency,
            goals,
        },
        found,
    )
}

/// All sides of a group, or an error when none of their stats is in the sources.
fn sides_of(
    sample: &Sample,
    kind: &str,
    group: &str,
    prefixes: &[(String, String)],
    goals: &[String],
) -> Result<Vec<Side>> {
    let mut sides = Vec::new();
    let mut any = false;
    for (prefix, label) in prefixes {
        let (s, found) = side(sample, prefix, label, goals);
        any |= found;
        sides.push(s);
    }
    if !any {
        let first = prefixes
            .first()
            .map(|(p, _)| name(&format!("{p}.responses.2xx")))
            .unwrap_or_default();
        bail!(
            "no stats of {kind} `{group}` (e.g. `{first}`) in the sources: is the config pushed to \
             these proxies, has it had traffic, and are `wasmcustom.sluice` stats included \
             (Istio: proxyStatsMatcher)?"
        );
    }
    Ok(sides)
}

fn groups(plan: &Plan, sample: &Sample, alpha: f64) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for flag in &plan.flags {
        let Some(e) = &flag.experiment else { continue };
        let prefixes: Vec<(String, String)> = flag
            .variant_names
            .iter()
            .map(|v| {
                (
                    format!(
                        "experiment.{}.{}",
                        stat_segment(&flag.name),
                        stat_segment(v)
                    ),
                    v.clone(),
                )
            })
            .collect();
        let sides = sides_of(sample, "experiment", &flag.name, &prefixes, &e.goals)?;
        out.push(group("experiment", &flag.name, sides, flag.default, alpha));
    }
    for route in &plan.routes {
        let Strategy::Progressive {
            baseline, target, ..
        } = &route.strategy
        else {
            continue;
        };
        let prefixes: Vec<(String, String)> = [*baseline, *target]
            .iter()
            .map(|v| {
                let version = &route.versions[*v];
                (
                    format!(
                        "route.{}.{}",
                        stat_segment(&route.name),
                        stat_segment(version)
                    ),
                    version.clone(),
                )
            })
            .collect();
        let sides = sides_of(sample, "canary", &route.name, &prefixes, &[])?;
        out.push(group("canary", &route.name, sides, 0, alpha));
    }
    Ok(out)
}

fn ci(x: f64, n: f64) -> Value {
    match analysis::wilson(x, n) {
        Some((lo, hi)) => json!([lo, hi]),
        None => Value::Null,
    }
}

fn group(kind: &str, name: &str, sides: Vec<Side>, control: usize, alpha: f64) -> Value {
    let variants: Vec<Value> = sides
        .iter()
        .map(|s| {
            let n = s.responses();
            json!({
                "name": s.name,
                "responses": n,
                "errors": s.errors(),
                "error_rate": if n > 0.0 { json!(s.errors() / n) } else { Value::Null },
                "error_rate_ci95": ci(s.errors(), n),
                "p50_ms": s.latency.as_ref().and_then(|h| h.quantile(0.5)),
                "p99_ms": s.latency.as_ref().and_then(|h| h.quantile(0.99)),
                "goals": s.goals.iter().map(|(g, x)| json!({
                    "goal": g, "count": x,
                    "rate": if n > 0.0 { json!(x / n) } else { Value::Null },
                    "ci95": ci(*x, n),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    // Every test of the group, then Holm over them all.
    struct Cmp {
        variant: String,
        metric: String,
        effect: f64,
        test: Option<Test>,
        /// Whether a positive z is bad (errors, latency) or good (conversions).
        higher_is_worse: bool,
    }
    let mut cmps = Vec::new();
    let c = &sides[control.min(sides.len() - 1)];
    for (i, s) in sides.iter().enumerate() {
        if i == control {
            continue;
        }
        let enough = s.responses() >= MIN_RESPONSES && c.responses() >= MIN_RESPONSES;
        let rate = |x: f64, n: f64| if n > 0.0 { x / n } else { 0.0 };
        cmps.push(Cmp {
            variant: s.name.clone(),
            metric: "error_rate".into(),
            effect: rate(s.errors(), s.responses()) - rate(c.errors(), c.responses()),
            test: enough
                .then(|| {
                    analysis::two_proportions(c.errors(), c.responses(), s.errors(), s.responses())
                })
                .flatten(),
            higher_is_worse: true,
        });
        if let (Some(a), Some(b)) = (&c.latency, &s.latency) {
            cmps.push(Cmp {
                variant: s.name.clone(),
                metric: "latency".into(),
                effect: b.quantile(0.5).unwrap_or(0.0) - a.quantile(0.5).unwrap_or(0.0),
                test: enough.then(|| analysis::mann_whitney(a, b)).flatten(),
                higher_is_worse: true,
            });
        }
        for ((goal, x), (_, xc)) in s.goals.iter().zip(&c.goals) {
            cmps.push(Cmp {
                variant: s.name.clone(),
                metric: format!("goal.{goal}"),
                effect: rate(*x, s.responses()) - rate(*xc, c.responses()),
                test: enough
                    .then(|| analysis::two_proportions(*xc, c.responses(), *x, s.responses()))
                    .flatten(),
                higher_is_worse: false,
            });
        }
    }
    let tested: Vec<f64> = cmps.iter().filter_map(|c| c.test.map(|t| t.p)).collect();
    let mut adjusted = analysis::holm(&tested).into_iter();
    let comparisons: Vec<Value> = cmps
        .iter()
        .map(|cmp| match cmp.test {
            Some(t) => {
                let p_holm = adjusted.next().unwrap_or(1.0);
                let significant = p_holm < alpha;
                let worse = significant && ((t.z > 0.0) == cmp.higher_is_worse) && t.z != 0.0;
                json!({
                    "variant": cmp.variant, "metric": cmp.metric, "effect": cmp.effect,
                    "z": t.z, "p": t.p, "p_holm": p_holm,
                    "significant": significant, "worse": worse,
                })
            }
            None => json!({
                "variant": cmp.variant, "metric": cmp.metric, "effect": cmp.effect,
                "z": Value::Null, "p": Value::Null, "p_holm": Value::Null,
                "significant": false, "worse": false,
                "note": format!("fewer than {MIN_RESPONSES} responses on a side: no test"),
            }),
        })
        .collect();
    json!({
        "kind": kind,
        "name": name,
        "control": sides[control.min(sides.len() - 1)].name,
        "variants": variants,
        "comparisons": comparisons,
    })
}

/// Sluice experiment and route stats in the sources that CONFIG does not produce.
fn unknown_names(plan: &Plan, sample: &Sample) -> Vec<String> {
    let mut known = std::collections::BTreeSet::new();
    let names = sluice_core::telemetry::MetricNames::of(plan);
    for row in names
        .route_responses
        .iter()
        .chain(&names.experiment_responses)
    {
        for classes in row {
            known.extend(
                classes
                    .iter()
                    .map(|n| analysis::prometheus_name(&format!("wasmcustom.{n}"))),
            );
        }
    }
    for row in names
        .route_requests
        .iter()
        .chain(&names.route_latency)
        .chain(&names.experiment_latency)
    {
        known.extend(
            row.iter()
                .map(|n| analysis::prometheus_name(&format!("wasmcustom.{n}"))),
        );
    }
    for flag in &names.experiment_goals {
        for row in flag {
            known.extend(
                row.iter()
                    .map(|n| analysis::prometheus_name(&format!("wasmcustom.{n}"))),
            );
        }
    }
    let prefixes = [name("experiment."), name("route.")];
    sample
        .counters
        .keys()
        .chain(sample.histograms.keys())
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())))
        .filter(|n| {
            let base = n
                .strip_suffix("_sum")
                .or_else(|| n.strip_suffix("_count"))
                .unwrap_or(n);
            !known.contains(base)
        })
        .cloned()
        .collect()
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{:.2}%", x * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn ci_text(v: &Value) -> String {
    match (v[0].as_f64(), v[1].as_f64()) {
        (Some(lo), Some(hi)) => format!("[{:.2}%, {:.2}%]", lo * 100.0, hi * 100.0),
        _ => "-".into(),
    }
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{x:.1}ms"))
        .unwrap_or_else(|| "-".into())
}

fn text(doc: &Value) -> String {
    let mut out = String::new();
    for g in doc["groups"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{} {} (control: {})",
            g["kind"].as_str().unwrap_or(""),
            g["name"].as_str().unwrap_or(""),
            g["control"].as_str().unwrap_or("")
        );
        for v in g["variants"].as_array().into_iter().flatten() {
            let mut line = format!(
                "  {:<14} {:>8} responses  errors {} {}  p50 {}  p99 {}",
                v["name"].as_str().unwrap_or(""),
                v["responses"].as_f64().unwrap_or(0.0),
                pct(&v["error_rate"]),
                ci_text(&v["error_rate_ci95"]),
                ms(&v["p50_ms"]),
                ms(&v["p99_ms"])
            );
            for goal in v["goals"].as_array().into_iter().flatten() {
                let _ = write!(
                    line,
                    "  {} {} {}",
                    goal["goal"].as_str().unwrap_or(""),
                    pct(&goal["rate"]),
                    ci_text(&goal["ci95"])
                );
            }
            let _ = writeln!(out, "{line}");
        }
        for c in g["comparisons"].as_array().into_iter().flatten() {
            let verdict = if c["worse"] == true {
                "SIGNIFICANTLY WORSE"
            } else if c["significant"] == true {
                "significantly better"
            } else if c["p"].is_null() {
                "no test (too few responses)"
            } else {
                "no significant difference"
            };
            let _ = writeln!(
                out,
                "  {} vs control, {}: {}{}",
                c["variant"].as_str().unwrap_or(""),
                c["metric"].as_str().unwrap_or(""),
                verdict,
                match (c["p"].as_f64(), c["p_holm"].as_f64()) {
                    (Some(p), Some(h)) => format!(" (p = {p:.3e}, Holm-adjusted {h:.3e})"),
                    _ => String::new(),
                }
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "alpha {}; rates: two-proportion z-test, Wilson 95% intervals; latency: Mann-Whitney U on \
         histogram buckets; Holm correction per experiment/canary",
        doc["alpha"]
    );
    out
}
