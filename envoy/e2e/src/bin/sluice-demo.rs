//! `sluice-demo`: what `make demo` runs.
//!
//! Starts echo backends for every version of the demo's two services, starts a real Envoy on
//! loopback with the Sluice filter (`build/sluice.wasm`) and `examples/demo.json`
//! (`envoy/demo.yaml`), sends requests from simulated users, and prints where they really went
//! (the version of the backend that answered), which flag variants the services received (the
//! `x-sluice-flags` header as the upstream saw it), and whether every user stayed on one version
//! and one variant. Everything it started is stopped on exit, Ctrl-C included.
//!
//! ```text
//! sluice-demo [--users N] [--requests N] [--workers N] [--serve] [--name NAME]
//! ```
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sluice_cli::report::{render_table, thousands, Tally};
use sluice_e2e::{paths, template, Backends, Envoy, EnvoyOptions, HttpClient, Stack};

/// `println!` that ignores a closed stdout (`sluice-demo | head`): the demo still stops everything
/// it started instead of panicking half-way.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

const USAGE: &str = "\
usage: sluice-demo [--users N] [--requests N] [--workers N] [--serve] [--name NAME]

Runs Envoy with Sluice and examples/demo.json on loopback, sends requests from simulated users,
and prints where they went. Stops everything it started on exit (Ctrl-C included).

  --users N      simulated users (default 2000)
  --requests N   requests per user (default 3)
  --workers N    Envoy worker threads, one Wasm VM each (default 2)
  --serve        keep Envoy and the backends running after the report, until Ctrl-C
  --name NAME    run directory under target/e2e/ (default demo): Envoy's config and log

Exit status: 0 when every request succeeded, reached the version Sluice chose, and every user stayed
on one version and variant; 1 otherwise; 130 when interrupted before the report.";

/// The demo's Sluice config, Envoy template and services (route name → its versions' backends).
const CONFIG: &str = "demo.json";
const TEMPLATE: &str = "demo.yaml";
/// Paths under this prefix go to the ratings service, every other path to reviews
/// (`envoy/demo.yaml`).
const RATINGS_PREFIX: &str = "/ratings";
/// Backends to start: one echo instance per version (`BACKEND_<VERSION>_*` in the template).
const SERVICES: [(&str, [&str; 2], &str); 2] = [
    ("reviews", ["v1", "v2"], "every path but /ratings…"),
    ("ratings", ["blue", "green"], "paths /ratings…"),
];

/// How users are identified in `demo.json`.
const USER_HEADER: &str = "x-user-id";
const USER_COOKIE: &str = "uid";
/// The blue-green preview condition of `demo.json`.
const PREVIEW: (&str, &str) = ("x-preview", "1");
const FLAGS_HEADER: &str = "x-sluice-flags";

/// Client threads sending requests (each with its own keep-alive connection to Envoy).
const CLIENT_THREADS: usize = 8;

struct Options {
    users: usize,
    requests: usize,
    workers: u32,
    serve: bool,
    name: String,
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut options = Options {
        users: 2000,
        requests: 3,
        workers: 2,
        serve: false,
        name: "demo".to_string(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> Result<usize, String> {
            let value = args.next().ok_or(format!("{what} needs a number"))?;
            match value.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{what} {value}: expected a positive whole number")),
            }
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--users" => options.users = number("--users")?,
            "--requests" => options.requests = number("--requests")?,
            "--workers" => {
                options.workers = u32::try_from(number("--workers")?)
                    .map_err(|_| "--workers: too many".to_string())?
            }
            "--serve" => options.serve = true,
            "--name" => options.name = args.next().ok_or("--name needs a value")?,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Some(options))
}

/// How a simulated user identifies itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Identity {
    /// `x-user-id: <id>` (an API client, or a front end that forwards the user).
    Header,
    /// `cookie: uid=<id>` (a browser).
    Cookie,
    /// Neither: Sluice has no key, so the stable version and default variants.
    Anonymous,
}

struct User {
    id: String,
    identity: Identity,
    /// Sends `x-preview: 1` (a tester looking at the idle color).
    preview: bool,
}

/// `count` users: 65% identified by header, 30% by cookie, 5% anonymous; 2% are previewers.
fn simulated_users(count: usize) -> Vec<User> {
    (0..count)
        .map(|i| User {
            id: format!("user-{i:05}"),
            identity: match i % 20 {
                0 => Identity::Anonymous,
                1..=6 => Identity::Cookie,
                _ => Identity::Header,
            },
            preview: i % 50 == 17,
        })
        .collect()
}

impl User {
    /// The user's `n`-th request: path and headers.
    fn request(&self, index: usize, n: usize) -> (String, Vec<(&'static str, String)>) {
        let product = index % 97 + 1;
        let path = match n % 3 {
            0 => format!("/reviews/product/{product}"),
            1 => format!("{RATINGS_PREFIX}/product/{product}"),
            _ => format!("/reviews/product/{product}?page=2"),
        };
        let mut headers = vec![("accept", "application/json".to_string())];
        match self.identity {
            Identity::Header => headers.push((USER_HEADER, self.id.clone())),
            Identity::Cookie => {
                headers.push(("cookie", format!("{USER_COOKIE}={}; lang=en", self.id)))
            }
            Identity::Anonymous => headers.push(("cookie", "lang=en".to_string())),
        }
        if self.preview {
            headers.push((PREVIEW.0, PREVIEW.1.to_string()));
        }
        (path, headers)
    }
}

/// What happened to one request.
struct Record {
    user: usize,
    route: &'static str,
    /// Status, or the transport error.
    status: Result<u16, String>,
    /// The backend that answered (`x-echo-version`).
    version: Option<String>,
    /// Request headers as the backend received them (only those Sluice writes).
    received: BTreeMap<String, String>,
}

/// Set by Ctrl-C (SIGINT) or SIGTERM: stop sending, stop everything, exit.
static STOP: AtomicBool = AtomicBool::new(false);

fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sends every user's requests in rounds (round r = request r of every user), spread over
/// [`CLIENT_THREADS`] connections so that one user's requests arrive on different connections (and
/// so on different Envoy workers, one Wasm VM each).
fn send(
    addr: std::net::SocketAddr,
    users: &[User],
    requests: usize,
    watched: &[String],
) -> Vec<Record> {
    let threads = CLIENT_THREADS.min(users.len()).max(1);
    let mut records = Vec::with_capacity(users.len() * requests);
    for round in 0..requests {
        if stopping() {
            break;
        }
        let batches: Vec<Vec<Record>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|thread| {
                    scope.spawn(move || {
                        let mut client = HttpClient::new(addr).with_timeout(Duration::from_secs(5));
                        let mut out = Vec::new();
                        for (index, user) in users.iter().enumerate() {
                            if (index + round) % threads != thread {
                                continue;
                            }
                            if stopping() {
                                break;
                            }
                            out.push(one_request(&mut client, index, user, round, watched));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        records.extend(batches.into_iter().flatten());
    }
    records
}

fn one_request(
    client: &mut HttpClient,
    index: usize,
    user: &User,
    n: usize,
    watched: &[String],
) -> Record {
    let (path, headers) = user.request(index, n);
    let route = if path.starts_with(RATINGS_PREFIX) {
        "ratings"
    } else {
        "reviews"
    };
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match client.get(&path, &headers) {
        Ok(response) => {
            let echo = response.echo();
            let received = watched
                .iter()
                .filter_map(|name| {
                    let value = echo.as_ref()?.header(name)?;
                    Some((name.clone(), value.to_string()))
                })
                .collect();
            Record {
                user: index,
                route,
                status: Ok(response.status),
                version: response
                    .header(sluice_echo::VERSION_HEADER)
                    .map(str::to_string)
                    .or_else(|| echo.map(|e| e.version)),
                received,
            }
        }
        Err(err) => Record {
            user: index,
            route,
            status: Err(err.to_string()),
            version: None,
            received: BTreeMap::new(),
        },
    }
}

/// `a=b;c=d` → {a: b, c: d}.
fn parse_flags(header: &str) -> BTreeMap<String, String> {
    header
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One line on what a route does, from its config.
fn describe_route(route: &Value) -> String {
    if let Some(canary) = route.get("canary") {
        let weight = canary.get("weight").and_then(Value::as_f64).unwrap_or(0.0);
        let steps = canary
            .get("steps")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let mut text = format!(
            "canary {} → {} for {weight}% of users",
            text(canary, "stable"),
            text(canary, "canary")
        );
        if steps > 0 {
            let _ = write!(text, " (then {steps} steps)");
        }
        text
    } else if let Some(bg) = route.get("blue_green") {
        let mut text = format!("blue-green, {} active", text(bg, "active"));
        if let Some(preview) = bg.get("preview") {
            let _ = write!(
                text,
                "; requests with {} see the idle color",
                describe_condition(preview)
            );
        }
        text
    } else if let Some(split) = route.get("split") {
        format!("split {split}")
    } else {
        String::new()
    }
}

fn describe_condition(condition: &Value) -> String {
    match (
        condition.get("header").and_then(Value::as_str),
        condition.get("equals"),
    ) {
        (Some(header), Some(Value::String(value))) => format!("`{header}: {value}`"),
        _ => condition.to_string(),
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("?")
}

/// The variants of a flag, in the order a reader expects: on before off; multivariate flags by
/// their rollout share, largest first.
fn variants(flag: &Value) -> Vec<String> {
    match flag.get("variants").and_then(Value::as_object) {
        Some(variants) => {
            // Rollout order (largest share first) when there is one, else by name.
            let mut names: Vec<String> = variants.keys().cloned().collect();
            let rollout = flag
                .get("rules")
                .and_then(Value::as_array)
                .and_then(|rules| rules.iter().find_map(|r| r.get("rollout")?.as_object()));
            if let Some(rollout) = rollout {
                names.sort_by(|a, b| {
                    let share = |n: &String| rollout.get(n).and_then(Value::as_f64).unwrap_or(0.0);
                    share(b).total_cmp(&share(a))
                });
            }
            names
        }
        None => vec!["on".to_string(), "off".to_string()],
    }
}

/// The share of users a flag's ramp (if any) lets in now, in percent.
fn ramp_now(flag: &Value) -> Option<f64> {
    let ramp = flag.get("schedule")?.get("ramp")?;
    let start = parse_time(ramp.get("start")?.as_str()?)?;
    let duration = parse_duration(ramp.get("duration")?.as_str()?)?;
    let from = ramp.get("from")?.as_f64()?;
    let to = ramp.get("to")?.as_f64()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let progress = ((now - start) / duration).clamp(0.0, 1.0);
    Some(from + (to - from) * progress)
}

/// RFC 3339 (any offset, fractions) → seconds since the epoch: the filter's own reader.
fn parse_time(text: &str) -> Option<f64> {
    sluice_primitives::time::parse_rfc3339_millis(text).map(|ms| ms as f64 / 1000.0)
}

/// `365d`, `1h30m`, `500ms` → seconds: the filter's own reader.
fn parse_duration(text: &str) -> Option<f64> {
    sluice_primitives::duration::parse_duration_millis(text).map(|ms| ms as f64 / 1000.0)
}

/// Downstream connections each Envoy worker accepted on the listener
/// (`listener.<address>.worker_<n>.downstream_cx_total`), in worker order.
fn connections_per_worker(envoy: &Envoy) -> Vec<u64> {
    // The listener's stats are named after its configured address (`127.0.0.1_0`); the admin
    // listener's are `listener.admin.*`.
    let mut per_worker = BTreeMap::new();
    for (name, value) in envoy.stats() {
        if !name.starts_with("listener.") || name.starts_with("listener.admin.") {
            continue;
        }
        let Some(worker) = name
            .split_once(".worker_")
            .and_then(|(_, r)| r.strip_suffix(".downstream_cx_total"))
            .and_then(|w| w.parse::<u32>().ok())
        else {
            continue;
        };
        per_worker.insert(worker, value.parse().unwrap_or(0));
    }
    per_worker.into_values().collect()
}

/// The report on `records`; whether every check held (no failed request, every user sticky,
/// every request answered by the version Sluice chose).
fn report(config: &Value, users: &[User], records: &[Record]) -> (String, bool) {
    let mut out = String::new();
    let routes = config
        .get("routes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let flags = config
        .get("flags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let answered: Vec<&Record> = records.iter().filter(|r| r.status == Ok(200)).collect();
    let mut sticky: Vec<(String, usize, usize)> = Vec::new();

    // Routes: where requests really went (the backend that answered).
    let mut mismatches = 0;
    for (name, _, paths) in SERVICES {
        let Some(route) = routes.get(name) else {
            continue;
        };
        let header = text(route, "header");
        let mut tally = Tally::default();
        for record in answered.iter().filter(|r| r.route == name) {
            let version = record.version.as_deref().unwrap_or("?");
            tally.add(record.user, version);
            if record.received.get(header).map(String::as_str) != Some(version) {
                mismatches += 1;
            }
        }
        let _ = writeln!(
            out,
            "\nroute {name} ({paths}; header {header}): {}",
            describe_route(route)
        );
        let order: Vec<String> = route
            .get("versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&tally.table("version", &order));
        sticky.push((
            format!("route {name}"),
            tally.unsticky(),
            tally.user_count(),
        ));
    }

    // Flags: the variants the services received.
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for record in &answered {
        if let Some(header) = record.received.get(FLAGS_HEADER) {
            for (flag, variant) in parse_flags(header) {
                tallies.entry(flag).or_default().add(record.user, &variant);
            }
        }
    }
    for (name, flag) in &flags {
        let tally = tallies.remove(name).unwrap_or_default();
        let mut about = flag
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(now) = ramp_now(flag) {
            let _ = write!(about, " The ramp is at {now:.1}% now.");
        }
        let _ = writeln!(out, "\nflag {name}: {about}");
        out.push_str(&tally.table("variant", &variants(flag)));
        sticky.push((format!("flag {name}"), tally.unsticky(), tally.user_count()));
    }

    let anonymous = users
        .iter()
        .filter(|u| u.identity == Identity::Anonymous)
        .count();
    let _ = writeln!(
        out,
        "\n({} anonymous users have no {USER_HEADER} header and no {USER_COOKIE} cookie: they get the \
         stable version and each flag's default.)",
        thousands(anonymous)
    );

    // Stickiness: nobody may see two versions of a service, or two variants of a flag.
    let violations: usize = sticky.iter().map(|(_, n, _)| n).sum();
    let _ = writeln!(
        out,
        "\nstickiness: users who saw more than one version or variant (should be 0)"
    );
    let mut rows = Vec::new();
    for (what, unsticky, of) in &sticky {
        rows.push(vec![
            what.clone(),
            thousands(*unsticky),
            format!("of {} users", thousands(*of)),
            if *unsticky == 0 { "ok" } else { "NOT STICKY" }.to_string(),
        ]);
    }
    out.push_str(&render_table(&rows));
    let failed = records.len() - answered.len();
    let _ = writeln!(
        out,
        "  every request reached the version Sluice wrote into its route header: {}",
        if mismatches == 0 {
            "yes".to_string()
        } else {
            format!("NO, {} requests did not", thousands(mismatches))
        }
    );
    if failed > 0 {
        let example = records
            .iter()
            .find(|r| r.status != Ok(200))
            .map(|r| match &r.status {
                Ok(status) => format!("status {status}"),
                Err(err) => err.clone(),
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  FAILED requests: {} (e.g. {example})",
            thousands(failed)
        );
    }
    (out, violations == 0 && mismatches == 0 && failed == 0)
}

fn run(options: &Options) -> Result<bool, String> {
    let started = Instant::now();
    let root = paths::workspace_root();
    let config_path = root.join("examples").join(CONFIG);
    let config_json = std::fs::read_to_string(&config_path)
        .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
    let config: Value = serde_json::from_str(&config_json)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let wasm = root.join("build/sluice.wasm");
    if !wasm.is_file() {
        return Err("build/sluice.wasm not found: run `make build` (or `make demo`)".into());
    }
    // Panics with the command that installs Envoy when it is missing.
    let _ = paths::envoy_binary();

    let versions: Vec<&str> = SERVICES
        .iter()
        .flat_map(|(_, vs, _)| vs.iter().copied())
        .collect();
    let backends = Backends::start(&versions).map_err(|e| format!("cannot start backends: {e}"))?;
    let mut vars = backends.vars();
    vars.insert("WASM".into(), wasm.display().to_string());
    vars.insert("CONFIG_JSON".into(), template::yaml_string(&config_json));
    let yaml = template::fill(&paths::envoy_template(TEMPLATE), &vars);
    let envoy = Envoy::start_with(
        &yaml,
        EnvoyOptions::default()
            .concurrency(options.workers)
            .name(&options.name),
    )
    .map_err(|e| {
        if stopping() {
            "interrupted while Envoy was starting".to_string()
        } else {
            format!("Envoy did not start: {e}")
        }
    });
    // Dropping the stack stops Envoy, then the backends (on every way out of this function).
    let stack = Stack {
        envoy: envoy?,
        backends,
    };
    let (envoy, backends) = (&stack.envoy, &stack.backends);
    let ready = started.elapsed();

    let addr = envoy.addr();
    let relative = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    say!(
        "Sluice demo: Envoy {} (pid {}, {} workers) on http://{addr}, filter {} with {}",
        envoy.version().unwrap_or_else(|| "?".into()),
        envoy.pid().map_or("?".into(), |p| p.to_string()),
        options.workers,
        relative(&wasm),
        relative(&config_path),
    );
    let services: Vec<String> = SERVICES
        .iter()
        .map(|(service, vs, _)| {
            let ports: Vec<String> = vs
                .iter()
                .map(|v| format!("{v} :{}", backends.get(v).port()))
                .collect();
            format!("{service} {}", ports.join(", "))
        })
        .collect();
    say!(
        "  echo backends: {}; Envoy's config and log in {}",
        services.join("; "),
        relative(envoy.dir())
    );

    let users = simulated_users(options.users);
    let count = |identity| users.iter().filter(|u| u.identity == identity).count();
    say!(
        "  sending {} requests from {} simulated users ({} each: {} identified by the {USER_HEADER} \
         header, {} by the {USER_COOKIE} cookie, {} anonymous; {} also send `{}: {}`)",
        thousands(users.len() * options.requests),
        thousands(users.len()),
        options.requests,
        thousands(count(Identity::Header)),
        thousands(count(Identity::Cookie)),
        thousands(count(Identity::Anonymous)),
        thousands(users.iter().filter(|u| u.preview).count()),
        PREVIEW.0,
        PREVIEW.1,
    );

    let mut watched: Vec<String> = vec![FLAGS_HEADER.to_string()];
    if let Some(routes) = config.get("routes").and_then(Value::as_object) {
        watched.extend(routes.values().map(|r| text(r, "header").to_string()));
    }
    let traffic_started = Instant::now();
    let records = send(addr, &users, options.requests, &watched);
    let traffic_time = traffic_started.elapsed();
    if stopping() {
        say!("\ninterrupted: stopping");
        drop(stack);
        say!("stopped Envoy and {} backends", versions.len());
        return Ok(false);
    }

    say!(
        "\nWhere requests went (the version of the backend that answered) and which flag variants \
         the services received ({FLAGS_HEADER}), as shares of the users and of the requests:"
    );
    let (text, ok) = report(&config, &users, &records);
    say!("{}", text.trim_end());
    let per_worker = connections_per_worker(envoy);
    say!(
        "\n{} requests in {:.1} s ({} per second); Envoy was ready after {:.1} s; {:.1} s in all",
        thousands(records.len()),
        traffic_time.as_secs_f64(),
        thousands((records.len() as f64 / traffic_time.as_secs_f64().max(1e-3)) as usize),
        ready.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    if per_worker.len() > 1 {
        let counts: Vec<String> = per_worker.iter().map(|n| thousands(*n as usize)).collect();
        say!(
            "client connections per Envoy worker (one Sluice VM each): {}",
            counts.join(" / ")
        );
    }

    if options.serve {
        say!(
            "\nEnvoy keeps running (--serve); try:\n  \
             curl -s http://{addr}/reviews/1 -H '{USER_HEADER}: alice'\n  \
             curl -s http://{addr}/ratings/1 -H '{}: {}'\n  \
             curl -si http://{addr}/reviews/1 -H '{USER_HEADER}: alice' -H 'x-sluice-secret: let-me-test' \
             -H 'x-sluice-override: reviews=v2;theme=dark'\n\
             Ctrl-C stops it.",
            PREVIEW.0, PREVIEW.1
        );
        while !stopping() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(stack);
    say!("stopped Envoy and {} backends", versions.len());
    Ok(ok)
}

fn main() -> ExitCode {
    // Panics (e.g. a missing Envoy) print their message, not a backtrace hint.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| info.to_string());
        eprintln!("sluice-demo: {message}");
    }));
    let options = match parse_args() {
        Ok(Some(options)) => options,
        Ok(None) => {
            say!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("sluice-demo: {message}");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C (and SIGTERM): stop sending, then stop Envoy and the backends on the way out.
    let handler = ctrlc::set_handler(|| {
        if !STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsluice-demo: stopping (Ctrl-C)");
        }
    });
    if let Err(err) = handler {
        eprintln!("sluice-demo: cannot install the Ctrl-C handler: {err}");
    }
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if stopping() => ExitCode::from(130),
        Ok(false) => {
            eprintln!("sluice-demo: some checks failed (see above)");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("sluice-demo: {message}");
            if stopping() {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_times_and_headers() {
        assert_eq!(parse_time("1970-01-02T00:00:01Z"), Some(86_401.0));
        assert_eq!(parse_time("2026-11-01T00:00:00Z"), Some(1_793_491_200.0));
        assert_eq!(
            parse_time("2026-11-01T02:00:00+02:00"),
            Some(1_793_491_200.0)
        );
        assert_eq!(parse_duration("365d"), Some(365.0 * 86_400.0));
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("250ms"), Some(0.25));
        assert_eq!(parse_duration("3w"), None);
        let flags = parse_flags("checkout=on;theme=dark;new-search=off");
        assert_eq!(flags.get("theme").map(String::as_str), Some("dark"));
        assert_eq!(flags.len(), 3);
    }

    #[test]
    fn users_are_deterministic_and_mixed() {
        let users = simulated_users(2000);
        let count = |identity| users.iter().filter(|u| u.identity == identity).count();
        assert_eq!(count(Identity::Anonymous), 100);
        assert_eq!(count(Identity::Cookie), 600);
        assert_eq!(users.iter().filter(|u| u.preview).count(), 40);
        let (path, headers) = users[1].request(1, 1);
        assert!(path.starts_with(RATINGS_PREFIX));
        assert!(headers.contains(&("cookie", "uid=user-00001; lang=en".to_string())));
    }
}
