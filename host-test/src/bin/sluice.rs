//! `sluice`: run the filter module on a config without Envoy.
//!
//! It knows nothing of Sluice's config format: it hands the file to the module
//! as its plugin configuration and reports what the module does to requests.

use anyhow::{anyhow, bail, Context as _, Result};
use sluice_host::{HeaderChange, Host, HostBuilder, LogLevel, Outcome};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HELP: &str = "\
sluice: run the Sluice filter (.wasm) on a config, as Envoy would, without Envoy

USAGE:
  sluice check CONFIG.json [--wasm PATH]
      Configure the filter. Prints \"ok\", or the filter's error log lines and exits 1
      when it rejects the config.
  sluice eval CONFIG.json [REQUEST OPTIONS]
      Send one request. Prints the request headers the filter set or removed, any
      local reply, and the response headers after a default upstream 200.
  sluice simulate CONFIG.json --users N [--user-header NAME] [--requests-per-user K]
                  [--advance SECONDS] [--workers W] [REQUEST OPTIONS]
      N users (header NAME = 1..N, default x-user-id) send K requests each, round by
      round (the virtual clock moves SECONDS between rounds). For every request (and
      response) header the filter wrote: the share of users and of requests per value,
      and how many users saw more than one value (stickiness).

REQUEST OPTIONS:
  -H, --header NAME:VALUE   request header (repeatable)
  --path P                  :path (default /)
  --method M                :method (default GET)
  --authority A             :authority (default example.com)
  --source IP:PORT          downstream address (default 203.0.113.7:40000)
  --at TIME                 request time: RFC 3339 (2026-03-01T12:00:00Z) or unix seconds

COMMON OPTIONS:
  --wasm PATH               the filter module (default $SLUICE_WASM or build/sluice.wasm)
  -h, --help                this help

EXIT STATUS: 0 ok, 1 the filter rejected the config, 2 usage or runtime error
(unreadable file, a trap in the filter).
";

#[derive(Default)]
struct Args {
    command: String,
    config: Option<PathBuf>,
    wasm: Option<PathBuf>,
    headers: Vec<(String, String)>,
    path: Option<String>,
    method: Option<String>,
    authority: Option<String>,
    source: Option<String>,
    at: Option<SystemTime>,
    users: Option<u64>,
    user_header: Option<String>,
    requests_per_user: Option<u64>,
    advance: Option<f64>,
    workers: Option<usize>,
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Option<Args>> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut out = Args::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Short('H') | Long("header") => {
                let value = parser.value()?.string()?;
                let (name, value) = value
                    .split_once(':')
                    .ok_or_else(|| anyhow!("--header wants NAME:VALUE, got {value:?}"))?;
                out.headers
                    .push((name.trim().to_string(), value.trim_start().to_string()));
            }
            Long("wasm") => out.wasm = Some(parser.value()?.into()),
            Long("path") => out.path = Some(parser.value()?.string()?),
            Long("method") => out.method = Some(parser.value()?.string()?),
            Long("authority") => out.authority = Some(parser.value()?.string()?),
            Long("source") => out.source = Some(parser.value()?.string()?),
            Long("at") => out.at = Some(parse_time(&parser.value()?.string()?)?),
            Long("users") => out.users = Some(parser.value()?.parse()?),
            Long("user-header") => out.user_header = Some(parser.value()?.string()?),
            Long("requests-per-user") => out.requests_per_user = Some(parser.value()?.parse()?),
            Long("advance") => out.advance = Some(parser.value()?.parse()?),
            Long("workers") => out.workers = Some(parser.value()?.parse()?),
            Value(value) if out.command.is_empty() => out.command = value.string()?,
            Value(value) if out.config.is_none() => out.config = Some(value.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(Some(out))
}

/// RFC 3339 (`2026-03-01T12:00:00Z`, `2026-03-01T12:00:00.5+02:00`) or unix seconds.
fn parse_time(text: &str) -> Result<SystemTime> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(seconds));
    }
    // The filter's own RFC 3339 reader, so `--at` means what a config time means.
    let millis = sluice_primitives::time::parse_rfc3339_millis(text).ok_or_else(|| {
        anyhow!("--at wants RFC 3339 (2026-03-01T12:00:00Z) or unix seconds, got {text:?}")
    })?;
    let millis = u64::try_from(millis).map_err(|_| anyhow!("--at {text:?} is before 1970"))?;
    Ok(UNIX_EPOCH + Duration::from_millis(millis))
}

fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => bytes.escape_ascii().to_string(),
    }
}

fn builder(args: &Args) -> Result<HostBuilder> {
    let config_path = args
        .config
        .as_ref()
        .ok_or_else(|| anyhow!("missing CONFIG.json (see sluice --help)"))?;
    let config = std::fs::read(config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let wasm = args
        .wasm
        .clone()
        .or_else(|| std::env::var_os("SLUICE_WASM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("build/sluice.wasm"));
    if !wasm.exists() {
        bail!(
            "{} not found: build it with `make build`, or pass --wasm PATH",
            wasm.display()
        );
    }
    let mut builder = Host::builder(&wasm)
        .plugin_config(config)
        .log_level(LogLevel::Info)
        .workers(args.workers.unwrap_or(1));
    if let Some(at) = args.at {
        builder = builder.start_time(at);
    }
    Ok(builder)
}

/// Starts the host; a rejected config prints the filter's complaints and exits 1.
fn start(args: &Args) -> Result<Result<Host, ExitCode>> {
    let (host, rejected) = builder(args)?.start()?;
    if let Some(rejected) = rejected {
        eprintln!("config rejected by the filter:");
        let lines: Vec<_> = rejected
            .logs
            .iter()
            .filter(|l| l.level >= LogLevel::Warn)
            .collect();
        for log in &lines {
            println!("{log}");
        }
        if lines.is_empty() {
            println!("(the filter logged no error)");
        }
        return Ok(Err(ExitCode::from(1)));
    }
    Ok(Ok(host))
}

fn request<'h>(host: &'h mut Host, args: &Args, worker: usize) -> sluice_host::RequestBuilder<'h> {
    let mut request = host.worker(worker).request();
    if let Some(path) = &args.path {
        request = request.path(path);
    }
    if let Some(method) = &args.method {
        request = request.method(method);
    }
    if let Some(authority) = &args.authority {
        request = request.authority(authority);
    }
    if let Some(source) = &args.source {
        request = request.source(source);
    }
    for (name, value) in &args.headers {
        request = request.header(name, value);
    }
    request
}

fn check(args: &Args) -> Result<ExitCode> {
    let host = match start(args)? {
        Ok(host) => host,
        Err(code) => return Ok(code),
    };
    for log in host.logs().iter().filter(|l| l.level >= LogLevel::Warn) {
        eprintln!("{log}");
    }
    println!("ok");
    Ok(ExitCode::SUCCESS)
}

fn eval(args: &Args) -> Result<ExitCode> {
    let mut host = match start(args)? {
        Ok(host) => host,
        Err(code) => return Ok(code),
    };
    let out = request(&mut host, args, 0).send()?;
    print_outcome(&out);
    Ok(ExitCode::SUCCESS)
}

fn print_outcome(out: &Outcome) {
    let changes = out.request_changes();
    println!("request headers set by the filter:");
    let mut any = false;
    for change in &changes {
        if let HeaderChange::Set { name, values } = change {
            for value in values {
                println!("  {name}: {}", show(value));
            }
            any = true;
        }
    }
    if !any {
        println!("  (none)");
    }
    let removed: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            HeaderChange::Removed { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !removed.is_empty() {
        println!("request headers removed by the filter:");
        for name in removed {
            println!("  {name}");
        }
    }
    match &out.local_reply {
        Some(reply) => {
            println!(
                "local reply: {} {}",
                reply.status,
                if reply.details.is_empty() {
                    ""
                } else {
                    &reply.details
                }
            );
            if !reply.body.is_empty() {
                println!("  body: {}", show(&reply.body));
            }
        }
        None => println!("local reply: none (forwarded upstream)"),
    }
    println!(
        "response headers{}:",
        if out.local_reply.is_some() {
            ""
        } else {
            " (upstream answered 200)"
        }
    );
    for (name, value) in out.response_headers.iter() {
        println!("  {}: {}", show(name), show(value));
    }
    if !out.foreign_calls.is_empty() {
        let names: Vec<&str> = out.foreign_calls.iter().map(|c| c.name.as_str()).collect();
        println!("foreign calls: {}", names.join(", "));
    }
    for log in out.logs.iter().filter(|l| l.level >= LogLevel::Info) {
        println!("log {log}");
    }
    println!("fuel: {} instructions", out.fuel.total());
}

#[derive(Default)]
struct Tally {
    requests: u64,
    users: std::collections::BTreeSet<u64>,
}

fn simulate(args: &Args) -> Result<ExitCode> {
    let users = args
        .users
        .ok_or_else(|| anyhow!("simulate needs --users N"))?;
    let per_user = args.requests_per_user.unwrap_or(1).max(1);
    let user_header = args
        .user_header
        .clone()
        .unwrap_or_else(|| "x-user-id".to_string());
    let mut host = match start(args)? {
        Ok(host) => host,
        Err(code) => return Ok(code),
    };
    let workers = host.worker_count();
    // header -> value -> tally; user -> header -> distinct values
    let mut by_header: BTreeMap<String, BTreeMap<Vec<u8>, Tally>> = BTreeMap::new();
    let mut seen: BTreeMap<(u64, String), std::collections::BTreeSet<Vec<u8>>> = BTreeMap::new();
    let mut outcomes = Vec::new();
    let (mut local_replies, mut fuel_total, mut fuel_max) = (0u64, 0u64, 0u64);
    for round in 0..per_user {
        if round > 0 {
            if let Some(seconds) = args.advance {
                host.advance(Duration::from_secs_f64(seconds))?;
            }
        }
        for user in 1..=users {
            let worker = ((user - 1) as usize) % workers;
            let out = request(&mut host, args, worker)
                .header(&user_header, user.to_string())
                .send()?;
            local_replies += out.local_reply.is_some() as u64;
            fuel_total += out.fuel.total();
            fuel_max = fuel_max.max(out.fuel.total());
            let mut written = BTreeMap::new();
            for change in out.request_changes() {
                if let HeaderChange::Set { name, values } = change {
                    written.insert(name, values.join(&b","[..]));
                }
            }
            for change in out.response_changes() {
                if let HeaderChange::Set { name, values } = change {
                    written.insert(format!("{name} (response)"), values.join(&b","[..]));
                }
            }
            outcomes.push((user, written));
            host.clear_records();
        }
    }
    let headers: std::collections::BTreeSet<String> = outcomes
        .iter()
        .flat_map(|(_, w)| w.keys().cloned())
        .collect();
    for (user, written) in &outcomes {
        for header in &headers {
            let value = written
                .get(header)
                .cloned()
                .unwrap_or_else(|| b"(not set)".to_vec());
            let tally = by_header
                .entry(header.clone())
                .or_default()
                .entry(value.clone())
                .or_default();
            tally.requests += 1;
            tally.users.insert(*user);
            seen.entry((*user, header.clone()))
                .or_default()
                .insert(value);
        }
    }
    let total = outcomes.len() as u64;
    println!(
        "simulated {users} users x {per_user} requests = {total} requests on {workers} worker(s)"
    );
    if headers.is_empty() {
        println!("the filter wrote no header");
    }
    for (header, values) in &by_header {
        println!("\n{header}");
        let mut rows: Vec<_> = values.iter().collect();
        rows.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
        // Many distinct values (minted cookies, timestamps): a summary, not a table.
        let shown = if rows.len() > 20 { 5 } else { rows.len() };
        if shown < rows.len() {
            println!("  {} distinct values; the {shown} most common:", rows.len());
        }
        println!("  {:<40} {:>8} {:>9}", "value", "users", "requests");
        for (value, tally) in rows.iter().take(shown) {
            let users_share = 100.0 * tally.users.len() as f64 / users as f64;
            let requests_share = 100.0 * tally.requests as f64 / total as f64;
            println!(
                "  {:<40} {:>7.2}% {:>8.2}%",
                show(value),
                users_share,
                requests_share
            );
        }
        let flipping = (1..=users)
            .filter(|u| seen.get(&(*u, header.clone())).is_some_and(|v| v.len() > 1))
            .count();
        println!(
            "  users that saw more than one value: {flipping} ({:.2}%)",
            100.0 * flipping as f64 / users as f64
        );
    }
    println!("\nlocal replies: {local_replies}");
    if let Some(mean) = fuel_total.checked_div(total) {
        println!("fuel per request: mean {mean}, max {fuel_max}");
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let result = (|| -> Result<ExitCode> {
        let Some(args) = parse_args(std::env::args_os().skip(1))? else {
            print!("{HELP}");
            return Ok(ExitCode::SUCCESS);
        };
        match args.command.as_str() {
            "check" => check(&args),
            "eval" => eval(&args),
            "simulate" => simulate(&args),
            "" => {
                eprint!("{HELP}");
                Ok(ExitCode::from(2))
            }
            other => {
                bail!("unknown command {other:?}: use check, eval or simulate (see sluice --help)")
            }
        }
    })();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_unix_seconds() {
        let at = |s: &str| parse_time(s).unwrap().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(at("1767225600"), Duration::from_secs(1_767_225_600));
        assert_eq!(
            at("2026-01-01T00:00:00Z"),
            Duration::from_secs(1_767_225_600)
        );
        assert_eq!(
            at("2026-03-01T12:30:15.25+02:00"),
            Duration::new(1_772_361_015, 250_000_000)
        );
        assert_eq!(at("2000-02-29T00:00:00Z"), Duration::from_secs(951_782_400));
        assert!(parse_time("2026-13-01T00:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
