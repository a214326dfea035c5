//! `make soak`: a real Envoy (two workers) with Sluice and echo backends for every version,
//! under wrk for SOAK_SECONDS (default 600), with a new Sluice config pushed by ECDS every
//! SOAK_PUSH_SECONDS (default 30). Prints Envoy's RSS every 10 s and wrk's totals; fails when any
//! response was not 2xx, a push was not taken, or RSS grew after warm-up (the first third) by more
//! than SOAK_RSS_SLACK_MIB (default 16).
use sluice_e2e::{paths, EnvoyOptions, Stack};
use std::process::Command;
use std::time::{Duration, Instant};

fn knob(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v}: expected a number")),
        Err(_) => Ok(default),
    }
}

/// examples/demo.json with its canary weight and revision changed per push, so each push
/// compiles a different plan.
fn config(demo: &str, push: u64) -> String {
    demo.replace(
        r#""canary": { "stable": "v1", "canary": "v2", "weight": 10 }"#,
        &format!(
            r#""canary": {{ "stable": "v1", "canary": "v2", "weight": {} }}"#,
            5 + push % 20
        ),
    )
    .replace(
        r#""revision": "demo-1""#,
        &format!(r#""revision": "soak-{push}""#),
    )
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read Envoy's /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc status".to_string())
}

/// wrk, killed if the soak stops early (an error) rather than left running.
struct Wrk(Option<std::process::Child>);

impl Wrk {
    fn finish(mut self) -> Result<std::process::Output, String> {
        let child = self.0.take().ok_or("wrk already finished")?;
        child.wait_with_output().map_err(|e| format!("wrk: {e}"))
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("soak-envoy: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let seconds = knob("SOAK_SECONDS", 600)?;
    let push_every = knob("SOAK_PUSH_SECONDS", 30)?.max(1);
    let slack_kib = knob("SOAK_RSS_SLACK_MIB", 16)? * 1024;
    let demo = std::fs::read_to_string(paths::workspace_root().join("examples/demo.json"))
        .map_err(|e| format!("examples/demo.json: {e}"))?;
    let wasm = paths::sluice_wasm();
    let stack = Stack::start_ecds(
        &wasm,
        &config(&demo, 0),
        EnvoyOptions::default().concurrency(2).name("soak"),
        |yaml| yaml,
    )
    .map_err(|e| format!("envoy: {e}"))?;
    if !stack.wait_ecds("1", Duration::from_secs(30)) {
        return Err("Envoy did not take the first config".into());
    }
    let pid = stack.envoy.pid().ok_or("Envoy has no pid")?;
    let url = format!("http://{}/reviews/1", stack.envoy.addr());

    let wrk = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "--latency"])
        .args([
            "-H",
            "host: reviews",
            "-H",
            "x-user-id: 4242",
            "-H",
            "x-beta: 1",
        ])
        .arg(&url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run wrk (make setup-wrk): {e}"))?;
    let wrk = Wrk(Some(wrk));

    println!("soak: {seconds} s of wrk against Envoy (pid {pid}, 2 workers) with Sluice; a push every {push_every} s");
    println!("{:>6} {:>9} {:>6}", "s", "RSS MiB", "pushes");
    let began = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::new(); // (second, RSS KiB)
    let mut pushes = 0;
    let mut next_push = push_every;
    let mut next_sample = 0;
    while began.elapsed().as_secs() < seconds {
        let now = began.elapsed().as_secs();
        if now >= next_push {
            pushes += 1;
            let version = (pushes + 1).to_string();
            stack
                .push(&version, &wasm, &config(&demo, pushes))
                .map_err(|e| format!("push {pushes}: {e}"))?;
            if !stack.wait_ecds(&version, Duration::from_secs(10)) {
                return Err(format!("Envoy did not take push {pushes} within 10 s"));
            }
            next_push += push_every;
        }
        if now >= next_sample {
            let rss = rss_kib(pid)?;
            println!("{now:>6} {:>9.1} {pushes:>6}", rss as f64 / 1024.0);
            samples.push((now, rss));
            next_sample += 10;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = wrk.finish()?;
    let report = String::from_utf8_lossy(&output.stdout);
    let result = sluice_benches::wrk::parse(&report)?;
    let rejected = stack.ecds_stat("update_rejected");
    samples.push((seconds, rss_kib(pid)?));
    // Stats are never deleted in Envoy: what the filter defined, and how much of it is per revision.
    let stats = stack.envoy.stats();
    let sluice_stats = stats.keys().filter(|k| k.contains("sluice.")).count();
    let revision_gauges: Vec<(&str, &str)> = stats
        .iter()
        .filter_map(|(k, v)| {
            let revision = k.split_once("sluice.config.revision.")?.1;
            Some((revision, v.as_str()))
        })
        .collect();
    println!(
        "soak: {sluice_stats} sluice stats in Envoy, {} of them revision gauges: {}",
        revision_gauges.len(),
        revision_gauges
            .iter()
            .map(|(r, v)| format!("{r}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let in_force = format!("soak-{pushes}");
    let mut wrong: Vec<String> = revision_gauges
        .iter()
        .filter(|(r, v)| *v != if *r == in_force { "1" } else { "0" })
        .map(|(r, v)| format!("{r}={v}"))
        .collect();
    if !revision_gauges.iter().any(|(r, _)| *r == in_force) {
        wrong.push(format!("{in_force} missing"));
    }

    let warm = samples[samples.len() / 3].1;
    let peak = samples[samples.len() / 3..]
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(warm);
    println!(
        "soak: {} requests ({:.0}/s, p99 {:.2} ms), {} non-2xx or socket errors; {pushes} pushes ({rejected} rejected); RSS {:.1} MiB at {} s (warm), peak after {:.1} MiB, end {:.1} MiB",
        result.requests,
        result.requests_per_sec,
        result.p99_us / 1000.0,
        result.errors,
        warm as f64 / 1024.0,
        samples[samples.len() / 3].0,
        peak as f64 / 1024.0,
        samples.last().map_or(0, |s| s.1) as f64 / 1024.0,
    );
    let mut failures = Vec::new();
    if result.errors > 0 {
        failures.push(format!(
            "{} non-2xx responses or socket errors",
            result.errors
        ));
    }
    if !wrong.is_empty() {
        failures.push(format!(
            "revision gauges should read 1 for {in_force} and 0 for the rest: {}",
            wrong.join(" ")
        ));
    }
    if rejected > 0 {
        failures.push(format!("{rejected} pushes rejected"));
    }
    if peak > warm + slack_kib {
        failures.push(format!(
            "RSS grew by {:.1} MiB after warm-up (allowed {} MiB)",
            (peak - warm) as f64 / 1024.0,
            slack_kib / 1024
        ));
    }
    if failures.is_empty() {
        println!("soak: ok");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
