//! `make bench-host`: the module under the wasmtime host (host-test): fuel (wasm instructions,
//! deterministic) per request and per hook, the cost of loading a config in the VM (fuel and
//! wall-clock time of `proxy_on_configure`), and the VM's linear memory after loading it.
//!
//! Setups: the no-op filter, the minimal routing filter, and Sluice with the example configs and
//! with generated configs of 10, 100 and 1000 flags (10 routes each). The request is the one
//! bench-envoy sends (a browser with a user id and cookies), at 2026-11-26T12:00:00Z; fuel is
//! taken from the third request on a VM (steady state). `BENCH_HOST_CONFIG=FILE` adds a row for
//! that config.
use sluice_benches::{config, NOW_MS};
use sluice_wasm_host::Plugin;
use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

struct Setup {
    name: String,
    module: PathBuf,
    config: String,
    authority: &'static str,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn module(name: &str, make_target: &str) -> Result<PathBuf, String> {
    let path = root().join("build").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("build/{name} not found: run `make {make_target}`"))
    }
}

fn example(name: &str) -> Result<String, String> {
    let path = root().join("examples").join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() {
    if let Err(err) = run() {
        eprintln!("bench-host: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    // SLUICE_WASM=path measures another build of the filter.
    let sluice = match std::env::var_os("SLUICE_WASM") {
        Some(path) => PathBuf::from(path),
        None => module("sluice.wasm", "build")?,
    };
    let mut setups = vec![
        Setup {
            name: "no-op filter".into(),
            module: module("noop.wasm", "noop-wasm")?,
            config: "{}".into(),
            authority: "www.acme-shop.example",
        },
        Setup {
            name: "minimal routing filter".into(),
            module: module("min.wasm", "min-wasm")?,
            config: "{}".into(),
            authority: "www.acme-shop.example",
        },
        Setup {
            name: "Sluice demo.json".into(),
            module: sluice.clone(),
            config: example("demo.json")?,
            authority: "reviews",
        },
        Setup {
            name: "Sluice flags.json".into(),
            module: sluice.clone(),
            config: example("flags.json")?,
            authority: "www.acme-shop.example",
        },
        Setup {
            name: "Sluice canary.json".into(),
            module: sluice.clone(),
            config: example("canary.json")?,
            authority: "reviews",
        },
    ];
    for flags in [10, 100, 1000] {
        setups.push(Setup {
            name: format!("Sluice {flags} flags, 10 routes"),
            module: sluice.clone(),
            config: config(flags, 10),
            authority: "svc-0",
        });
    }
    // Your own config, for its load and request cost: BENCH_HOST_CONFIG=path/to/config.json.
    if let Ok(path) = std::env::var("BENCH_HOST_CONFIG") {
        setups.push(Setup {
            name: format!("Sluice {path}"),
            module: sluice.clone(),
            config: std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?,
            authority: "www.acme-shop.example",
        });
    }

    println!("| setup | config KiB | on_configure fuel | on_configure ms (wasmtime, median of 5) | VM memory after configure KiB | fuel per request | on_request_headers | on_response_headers | other hooks |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for setup in &setups {
        let start = UNIX_EPOCH + Duration::from_millis(NOW_MS as u64);
        let mut host = Plugin::load(&setup.module)
            .map_err(|e| format!("{}: {e:#}", setup.name))?
            .host()
            .plugin_config(&setup.config)
            .start_time(start)
            .build()
            .map_err(|e| format!("{}: {e:#}", setup.name))?;
        let configure_fuel: u64 = host
            .hook_fuel()
            .iter()
            .filter(|h| h.hook == "proxy_on_configure")
            .map(|h| h.fuel)
            .sum();
        let memory = host.vm(0).memory_bytes();
        let mut times = Vec::new();
        for _ in 0..5 {
            let began = Instant::now();
            host.reconfigure(&setup.config)
                .map_err(|e| format!("{}: {e:#}", setup.name))?;
            times.push(began.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        // With an instrumented module: where one configure's fuel goes.
        host.take_execution_profile();
        host.reconfigure(&setup.config)
            .map_err(|e| format!("{}: {e:#}", setup.name))?;
        print_profile(&format!("configure {}", setup.name), &mut host);
        let mut fuel = None;
        for round in 0..3 {
            if round == 2 {
                host.take_execution_profile();
            }
            let out = host
                .request()
                .authority(setup.authority)
                .path("/products/4711?utm_campaign=spring-sale")
                .header("x-user-id", "user-00004711")
                .header(
                    "cookie",
                    "uid=user-00004711; shop_session=s-0f00d; tier=silver",
                )
                .header(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
                )
                .header("x-geo-country", "DE")
                .header("accept", "text/html")
                .source("203.0.113.7:51234")
                .send()
                .map_err(|e| format!("{}: {e:#}", setup.name))?;
            fuel = Some(out.fuel);
        }
        let fuel = fuel.unwrap_or_default();
        // A module instrumented with `wasm-opt --log-execution` (see benches/profile-wasm.sh):
        // the third request's fuel per location, largest first.
        print_profile(&setup.name, &mut host);
        let request = fuel.hook("proxy_on_request_headers");
        let response = fuel.hook("proxy_on_response_headers");
        println!(
            "| {} | {:.1} | {} | {:.2} | {} | {} | {} | {} | {} |",
            setup.name,
            setup.config.len() as f64 / 1024.0,
            configure_fuel,
            times[times.len() / 2],
            memory / 1024,
            fuel.total(),
            request,
            response,
            fuel.total() - request - response,
        );
    }
    Ok(())
}

/// Prints the fuel per instrumented location since the last take, largest first (nothing for
/// a module without `--log-execution`).
fn print_profile(name: &str, host: &mut sluice_wasm_host::Host) {
    let mut profile: Vec<(i32, u64)> = host.take_execution_profile().into_iter().collect();
    if profile.is_empty() {
        return;
    }
    profile.sort_by_key(|p| std::cmp::Reverse(p.1));
    let line: Vec<String> = profile
        .iter()
        .take(usize::MAX)
        .map(|(id, f)| format!("{id}:{f}"))
        .collect();
    eprintln!("profile {name}: {}", line.join(" "));
}
