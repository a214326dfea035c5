//! `make bench-envoy`: what a filter costs in a real Envoy 1.40 (one worker, loopback, wrk).
//!
//! Setups, each its own Envoy, all started up front and measured in alternating rounds (a, b, c,
//! …, then again) so that drift in the machine's load hits every setup alike:
//!   none      no filter but the router
//!   noop      the no-op proxy-wasm filter (build/noop.wasm): the floor any wasm filter pays
//!   min       the least a routing wasm filter does (build/min.wasm): read x-user-id, hash it, set
//!             x-route-reviews, clear_route_cache — the floor any header-routing filter pays
//!   sluice    Sluice with examples/flags.json (23 flags, 2 routes, segments, baggage)
//!   demo      Sluice with examples/demo.json (3 flags, a canary and a blue-green route)
//!   lua       Envoy's Lua filter: reads x-user-id, hashes it, sets x-route-reviews,
//!             clearRouteCache()
//! The route table matches x-route-reviews (v2 / v1 / default). By default each route answers with
//! a `direct_response`, so a request's whole cost is Envoy's own HTTP work plus the filter's, and
//! the filter's share is not diluted by an upstream hop (nor by an upstream process competing for
//! the same cores); `--backend echo` proxies to a sluice-echo upstream instead.
//!
//! Options: --rounds N (5) --duration SECS (10) --connections N (10) --backend direct|echo
//!          --setups none,noop,min,sluice,demo,lua (also min-get, min-get-set: the minimal filter
//!          doing less, to price each hostcall; min-set8, min-pairs8: eight headers written one
//!          call each, or as one whole map; min-add8: the eight added, not replaced; min-set4:
//!          four set, as many as demo.json writes)
use sluice_benches::wrk::{self, median, WrkResult};
use sluice_e2e::{paths, template, Backends, Envoy, EnvoyOptions};
use std::collections::BTreeMap;
use std::process::Command;

const LUA: &str = r#"
function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local user = headers:get("x-user-id")
  local version = "v1"
  if user ~= nil then
    local h = 5381
    for i = 1, #user do
      h = (h * 33 + string.byte(user, i)) % 4294967296
    end
    if h % 10000 < 1000 then
      version = "v2"
    end
  end
  headers:replace("x-route-reviews", version)
  request_handle:clearRouteCache()
end
"#;

/// The headers every request carries (a browser with a user id and cookies).
const HEADERS: [&str; 6] = [
    "Host: www.acme-shop.example",
    "x-user-id: user-00004711",
    "cookie: uid=user-00004711; shop_session=s-0f00d; tier=silver",
    "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "x-geo-country: DE",
    "accept: text/html",
];

struct Options {
    rounds: usize,
    duration_s: u32,
    connections: u32,
    echo_backend: bool,
    setups: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        rounds: 5,
        duration_s: 10,
        connections: 10,
        echo_backend: false,
        setups: ["none", "noop", "min", "sluice", "demo", "lua"]
            .map(String::from)
            .to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--rounds" => o.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--duration" => {
                o.duration_s = value()?.parse().map_err(|e| format!("--duration: {e}"))?
            }
            "--connections" => {
                o.connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?
            }
            "--backend" => match value()?.as_str() {
                "direct" => o.echo_backend = false,
                "echo" => o.echo_backend = true,
                other => return Err(format!("--backend direct|echo, not {other}")),
            },
            "--setups" => o.setups = value()?.split(',').map(String::from).collect(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn wasm_filter(name: &str, wasm: &str, config_json: &str) -> String {
    format!(
        r#"
          - name: {name}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                root_id: {name}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {config}
                failure_policy: FAIL_CLOSED
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  vm_id: {name}
                  code:
                    local: {{ filename: "{wasm}" }}"#,
        config = template::yaml_string(config_json),
    )
}

fn lua_filter() -> String {
    let code: String = LUA
        .lines()
        .map(|l| format!("                  {l}\n"))
        .collect();
    format!(
        r#"
          - name: envoy.filters.http.lua
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
              default_source_code:
                inline_string: |
{code}"#
    )
}

fn route_action(version: &str, upstream: Option<u16>) -> String {
    match upstream {
        Some(_) => format!("route: {{ cluster: reviews-{version} }}"),
        None => {
            format!(r#"direct_response: {{ status: 200, body: {{ inline_string: "{version}" }} }}"#)
        }
    }
}

fn envoy_yaml(filters: &str, upstream: Option<u16>) -> String {
    let clusters = match upstream {
        Some(port) => ["v1", "v2"]
            .iter()
            .map(|v| {
                format!(
                    r#"
  - name: reviews-{v}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: reviews-{v}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}"#
                )
            })
            .collect::<String>(),
        None => " []".to_string(),
    };
    format!(
        r#"admin:
  address:
    socket_address: {{ address: "{{{{LISTEN_ADDRESS}}}}", port_value: {{{{ADMIN_PORT}}}} }}
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: {{ address: "{{{{LISTEN_ADDRESS}}}}", port_value: {{{{LISTEN_PORT}}}} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          route_config:
            name: local
            virtual_hosts:
            - name: services
              domains: ["*"]
              routes:
              - match:
                  prefix: /
                  headers: [{{ name: x-route-reviews, string_match: {{ exact: v2 }} }}]
                {v2}
              - match:
                  prefix: /
                  headers: [{{ name: x-route-reviews, string_match: {{ exact: v1 }} }}]
                {v1}
              - match: {{ prefix: / }}
                {v1}
          http_filters:{filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:{clusters}
"#,
        v1 = route_action("v1", upstream),
        v2 = route_action("v2", upstream),
    )
}

fn describe(setup: &str) -> String {
    let (name, build) = match setup.split_once('@') {
        Some((name, wasm)) => (name, format!(" [{wasm}]")),
        None => (setup, String::new()),
    };
    let text = match name {
        "none" => "(a) no filter",
        "noop" => "(b) no-op wasm filter",
        "min" => "(b') minimal routing wasm filter (get 1, set 1, clear cache)",
        "min-get" => "(b'1) minimal filter, get 1 header only",
        "min-get-set" => "(b'2) minimal filter, get 1 + set 1 (no clear_route_cache)",
        "min-set8" => "(b'3) minimal filter, get the map + set 8, one call each",
        "min-pairs8" => "(b'4) minimal filter, get the map + write it back with 8 more",
        "min-add8" => "(b'5) minimal filter, get the map + add 8, one call each",
        "min-set4" => "(b'6) minimal filter, get the map + set 4, one call each",
        "sluice" => "(c) Sluice, examples/flags.json",
        "demo" => "(c') Sluice, examples/demo.json",
        "lua" => "(d) Lua filter (hash user, set header, clearRouteCache)",
        _ => "?",
    };
    format!("{text}{build}")
}

fn filters_for(setup: &str) -> Result<String, String> {
    // `sluice@path/to/other.wasm`, `demo@…`: the same setup with another build of the module (to
    // compare builds within one run).
    let (setup, sluice_wasm) = match setup.split_once('@') {
        Some((setup, wasm)) => (setup, wasm.to_string()),
        None => (setup, String::new()),
    };
    let sluice_wasm = if sluice_wasm.is_empty() {
        paths::sluice_wasm().display().to_string()
    } else {
        sluice_wasm
    };
    let example = |name: &str| {
        let path = paths::workspace_root().join("examples").join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    Ok(match setup {
        "none" => String::new(),
        "noop" => wasm_filter("noop", &paths::noop_wasm().display().to_string(), "{}"),
        "min" | "min-get" | "min-get-set" | "min-set8" | "min-pairs8" | "min-add8" | "min-set4" => {
            let wasm = paths::workspace_root().join("build/min.wasm");
            if !wasm.is_file() {
                return Err("build/min.wasm not found: run `make min-wasm`".to_string());
            }
            let variant = setup.strip_prefix("min-").unwrap_or("{}");
            wasm_filter("min", &wasm.display().to_string(), variant)
        }
        "sluice" => wasm_filter("sluice", &sluice_wasm, &example("flags.json")?),
        "demo" => wasm_filter("sluice", &sluice_wasm, &example("demo.json")?),
        "lua" => lua_filter(),
        other => return Err(format!("unknown setup {other}")),
    })
}

fn run_wrk(url: &str, seconds: u32, connections: u32) -> Result<WrkResult, String> {
    let mut command = Command::new("wrk");
    command
        .arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency");
    for header in HEADERS {
        command.arg("-H").arg(header);
    }
    let output = command
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk (make setup-wrk): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    wrk::parse(&String::from_utf8_lossy(&output.stdout))
}

fn main() {
    if let Err(err) = run() {
        eprintln!("bench-envoy: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let o = options()?;
    let backends = if o.echo_backend {
        Some(Backends::start(&["v1"]).map_err(|e| format!("echo backend: {e}"))?)
    } else {
        None
    };
    let upstream = backends.as_ref().map(|b| b.get("v1").port());

    let mut envoys: Vec<(String, Envoy)> = Vec::new();
    for setup in &o.setups {
        let yaml = envoy_yaml(&filters_for(setup)?, upstream);
        let mut options = EnvoyOptions::default().name(&format!("bench-envoy-{}", envoys.len()));
        options.log_level = "warn".to_string();
        let envoy = Envoy::start_with(&yaml, options).map_err(|e| format!("{setup}: {e}"))?;
        // One request through it: the setup answers 200 before it is measured.
        let reply = envoy
            .client()
            .get("/reviews", &[("x-user-id", "user-1")])
            .map_err(|e| format!("{setup}: {e}"))?;
        if reply.status != 200 {
            return Err(format!(
                "{setup}: status {}: {}",
                reply.status,
                reply.text()
            ));
        }
        envoys.push((setup.clone(), envoy));
    }

    println!(
        "Envoy {} · --concurrency 1 · wrk -t1 -c{} -d{}s --latency · {} rounds · backend: {} · {} CPUs ({})",
        envoy_version(),
        o.connections,
        o.duration_s,
        o.rounds,
        if o.echo_backend { "sluice-echo upstream" } else { "direct_response" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    // Warm-up: JIT, connection pools, caches.
    for (_, envoy) in &envoys {
        run_wrk(
            &format!("http://{}/reviews", envoy.addr()),
            2,
            o.connections,
        )?;
    }
    let mut results: BTreeMap<String, Vec<WrkResult>> = BTreeMap::new();
    for round in 1..=o.rounds {
        for (setup, envoy) in &envoys {
            let r = run_wrk(
                &format!("http://{}/reviews", envoy.addr()),
                o.duration_s,
                o.connections,
            )?;
            println!(
                "round {round} {setup:<7} {:>9.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs{}",
                r.requests_per_sec,
                r.p50_us,
                r.p99_us,
                if r.errors > 0 {
                    format!("  ({} errors!)", r.errors)
                } else {
                    String::new()
                }
            );
            results.entry(setup.clone()).or_default().push(r);
        }
    }

    let med = |setup: &str, f: fn(&WrkResult) -> f64| -> Option<f64> {
        results
            .get(setup)
            .map(|rs| median(&rs.iter().map(f).collect::<Vec<_>>()))
    };
    let rps = |s: &str| med(s, |r| r.requests_per_sec);
    println!();
    println!("Medians over {} rounds:", o.rounds);
    println!();
    // One worker serves every request, so 1 / throughput is the worker's time per request and
    // the difference to (b) is what the filter adds beyond crossing into the VM.
    println!("| setup | req/s | p50 µs | p99 µs | req/s ÷ (b) no-op | req/s ÷ (a) no filter | worker µs/request − (b) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for setup in &o.setups {
        let ratio = |base: &str| match (rps(setup), rps(base)) {
            (Some(x), Some(b)) => format!("{:.3}", x / b),
            _ => "–".to_string(),
        };
        let p50 = med(setup, |r| r.p50_us).unwrap_or(f64::NAN);
        let per_request_delta = match (rps(setup), rps("noop")) {
            (Some(x), Some(b)) => format!("{:+.1}", 1e6 / x - 1e6 / b),
            _ => "–".to_string(),
        };
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
            describe(setup),
            rps(setup).unwrap_or(f64::NAN),
            p50,
            med(setup, |r| r.p99_us).unwrap_or(f64::NAN),
            ratio("noop"),
            ratio("none"),
            per_request_delta,
        );
    }
    let errors: u64 = results.values().flatten().map(|r| r.errors).sum();
    if errors > 0 {
        return Err(format!("{errors} failed requests: the numbers are suspect"));
    }
    drop(envoys);
    memory(&o, upstream)?;
    drop(backends);
    Ok(())
}

/// Envoy's resident memory per setup: each its own Envoy with 2 workers, warmed up with 300
/// requests, then VmRSS from /proc. One Envoy at a time, so they do not crowd each other. Each
/// setup twice: as it is, and with Envoy handing freed memory back to the OS (the
/// `memory_allocator_manager` docs/deploying.md recommends), read after a few seconds.
fn memory(o: &Options, upstream: Option<u16>) -> Result<(), String> {
    const REQUESTS: usize = 300;
    const RELEASE: &str =
        "memory_allocator_manager: { bytes_to_release: 16777216, memory_release_interval: 1s }\n";
    let mut rss: Vec<(String, [u64; 2])> = Vec::new();
    for setup in &o.setups {
        let mut kib = [0; 2];
        for (slot, release) in [false, true].into_iter().enumerate() {
            let mut yaml = envoy_yaml(&filters_for(setup)?, upstream);
            if release {
                yaml.insert_str(0, RELEASE);
            }
            let mut options = EnvoyOptions::default()
                .name(&format!("bench-envoy-rss-{}-{slot}", rss.len()))
                .concurrency(2);
            options.log_level = "warn".to_string();
            let envoy = Envoy::start_with(&yaml, options).map_err(|e| format!("{setup}: {e}"))?;
            let mut client = envoy.client();
            for i in 0..REQUESTS {
                let user = format!("user-{i:08}");
                let reply = client
                    .get("/reviews", &[("x-user-id", user.as_str())])
                    .map_err(|e| format!("{setup}: {e}"))?;
                if reply.status != 200 {
                    return Err(format!("{setup}: status {}", reply.status));
                }
            }
            if release {
                // 16 MiB a second: what V8's compiler freed (~20 MiB) is back within seconds.
                std::thread::sleep(std::time::Duration::from_secs(5));
            }
            let pid = envoy.pid().ok_or(format!("{setup}: Envoy exited"))?;
            kib[slot] = vm_rss_kib(pid)?;
        }
        rss.push((setup.clone(), kib));
    }
    let noop = rss.iter().find(|(s, _)| s == "noop").map(|(_, k)| *k);
    println!();
    println!(
        "Envoy resident memory (VmRSS), --concurrency 2, after {REQUESTS} requests; then the same"
    );
    println!("with `memory_allocator_manager` releasing 16 MiB/s, read 5 s later:");
    println!();
    println!(
        "| setup | VmRSS MiB | − (b) no-op MiB | with release MiB | − (b) no-op with release MiB |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (setup, kib) in &rss {
        let delta = |i: usize| {
            noop.map_or("–".to_string(), |n| {
                format!("{:+.1}", (kib[i] as f64 - n[i] as f64) / 1024.0)
            })
        };
        println!(
            "| {} | {:.1} | {} | {:.1} | {} |",
            describe(setup),
            kib[0] as f64 / 1024.0,
            delta(0),
            kib[1] as f64 / 1024.0,
            delta(1)
        );
    }
    Ok(())
}

fn vm_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or(format!("no VmRSS in /proc/{pid}/status"))
}

fn envoy_version() -> String {
    Command::new(paths::envoy_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let at = text.find("version: ")?;
            text[at + 9..].split_whitespace().next().map(String::from)
        })
        .unwrap_or_else(|| "?".to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}
