//! Soak: many requests through one VM of build/sluice.wasm, with a config push
//! every 10,000 requests and Unleash polled on the virtual clock (a new payload
//! every third push, the same one again in between). The VM's linear memory must stop growing
//! once warm (wasm memory never shrinks, so a leak shows as growth) and nothing
//! may trap.
//!
//! `make soak-host` runs 1,000,000 requests in a release build (about 30 s). The
//! debug build of `make test` runs 30,000 (2 pushes, 3 polls; wasmtime and the host
//! are far slower unoptimised). `SOAK_REQUESTS=N` sets the count. Both print the
//! memory curve, and per block of 10,000 requests the host's speed and the VM's fuel per request.
mod common;

use sluice_wasm_host::{LogLevel, ScriptedResponse};
use std::time::{Duration, Instant};

/// Requests between two config pushes.
const PUSH_EVERY: usize = 10_000;
/// Virtual time per request: 1,000 requests a second, so an Unleash poll (10 s)
/// every 10,000 requests, as many polls as pushes.
const PER_REQUEST: Duration = Duration::from_millis(1);
/// Memory is sampled every this many requests.
const SAMPLE_EVERY: usize = 1_000;
/// Growth allowed after warm-up: one wasm page (64 KiB), in case the allocator
/// takes a last page for a rare size.
const SLACK: usize = 64 * 1024;

fn config(push: usize) -> String {
    // Every push changes the revision, the canary weight and a rollout, so the
    // plan is rebuilt and the guard's window starts over.
    let weight = 5 + push % 20;
    let on = 10 + push % 80;
    format!(
        r#"{{"version": 1, "revision": "soak-{push}",
  "identity": {{"user": [{{"header": "x-user-id"}}, {{"cookie": "uid"}}]}},
  "flags": {{
    "checkout": {{"rules": [{{"rollout": {{"on": {on}, "off": {off}}}}}]}},
    "search": {{"rules": [{{"when": {{"header": "x-beta", "equals": "1"}}, "serve": "on"}}]}}
  }},
  "routes": {{
    "reviews": {{
      "match": {{"authority": ["reviews"]}},
      "header": "x-route-reviews",
      "versions": ["v1", "v2"],
      "canary": {{"stable": "v1", "canary": "v2", "weight": {weight}}},
      "guard": {{"max_error_rate": 50, "window": "30s", "min_requests": 100}}
    }}
  }},
  "unleash": {{
    "poll": {{"cluster": "unleash", "authority": "unleash.internal", "path": "/api/client/features",
              "authorization": "*:production.0123", "interval": "10s", "timeout": "2s"}},
    "context": {{"app_name": "storefront", "environment": "production"}},
    "features": ["banner"],
    "headers": {{"banner": "x-feature-banner"}}
  }}
}}"#,
        off = 100 - on
    )
}

/// An Unleash payload; `generation` changes the rollout and the ETag.
fn payload(generation: usize) -> ScriptedResponse {
    let body = format!(
        r#"{{"version": 2, "features": [
  {{"name": "banner", "enabled": true, "strategies": [{{"name": "flexibleRollout",
    "parameters": {{"rollout": "{}", "stickiness": "userId", "groupId": "banner"}}}}],
    "variants": [{{"name": "blue", "weight": 1000, "weightType": "variable", "stickiness": "default"}}]}}]}}"#,
        generation % 100
    );
    ScriptedResponse::ok(body)
        .header("content-type", "application/json")
        .header("etag", format!("\"g{generation}\""))
}

#[test]
fn one_vm_stays_flat_under_requests_pushes_and_polls() {
    let requests: usize = std::env::var("SOAK_REQUESTS")
        .ok()
        .map(|n| n.parse().expect("SOAK_REQUESTS is a number"))
        .unwrap_or(if cfg!(debug_assertions) {
            30_000
        } else {
            1_000_000
        });
    let plugin = common::plugin("sluice.wasm");
    let mut host = plugin
        .host()
        .plugin_config(config(0))
        .log_level(LogLevel::Warn)
        .build()
        .unwrap();
    host.on_http_call("unleash", payload(0));

    let began = Instant::now();
    let mut curve = Vec::new(); // (requests, memory bytes)
                                // Per block of PUSH_EVERY requests: (wall time, fuel the VM spent on its requests). The wall
                                // time shows whether the host slows down; the fuel whether the VM does more per request.
    let mut blocks: Vec<(Duration, u64)> = Vec::new();
    let mut block_began = Instant::now();
    let mut block_fuel = 0;
    let mut pushes = 0;
    let mut polls = 0;
    for i in 0..requests {
        if i > 0 && i % PUSH_EVERY == 0 {
            blocks.push((block_began.elapsed(), block_fuel));
            block_began = Instant::now();
            block_fuel = 0;
            pushes += 1;
            assert_eq!(
                host.reconfigure(config(pushes)).unwrap(),
                vec![true],
                "push {pushes}"
            );
            // A new payload every third push; the polls in between get it again
            // (the filter sends If-None-Match; the scripted server ignores it).
            if pushes % 3 == 0 {
                host.on_http_call("unleash", payload(pushes / 3));
            }
        }
        if i > 0 && i % SAMPLE_EVERY == 0 {
            curve.push((i, host.vm(0).memory_bytes()));
            polls += host.http_calls().len();
            // The host keeps every log line, call and hook's fuel: forget them.
            host.clear_records();
        }
        host.advance(PER_REQUEST).unwrap();
        let user = (i * 7919) % 50_000;
        let mut request = host
            .request()
            .header("x-user-id", user.to_string())
            .upstream_status(if i % 1000 == 999 { 500 } else { 200 });
        if i % 2 == 0 {
            request = request.authority("reviews").path("/reviews/1");
        }
        if i % 5 == 0 {
            request = request.header("x-beta", "1");
        }
        let out = request
            .send()
            .unwrap_or_else(|e| panic!("request {i}: {e:#}"));
        assert!(out.forwarded, "request {i}");
        block_fuel += out.fuel.total();
    }
    if requests > 0 && requests.is_multiple_of(PUSH_EVERY) {
        blocks.push((block_began.elapsed(), block_fuel));
    }
    curve.push((requests, host.vm(0).memory_bytes()));
    polls += host.http_calls().len();
    assert!(host.vm(0).failure().is_none());

    let elapsed = began.elapsed();
    println!(
        "soak: {requests} requests, {pushes} pushes, {polls} Unleash polls in {:.1} s ({:.0} requests/s)",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
    println!("soak: {} metrics defined", host.metrics().len());
    println!("soak: per block of {PUSH_EVERY} requests: requests/s, fuel per request:");
    let step = (blocks.len() / 10).max(1);
    let last = blocks.len().saturating_sub(1);
    for (b, (took, fuel)) in blocks.iter().enumerate() {
        if b % step == 0 || b == last {
            println!(
                "  block {b:>4} {:>8.0} {:>8}",
                PUSH_EVERY as f64 / took.as_secs_f64(),
                fuel / PUSH_EVERY as u64
            );
        }
    }
    println!("soak: linear memory (KiB) after N requests:");
    let step = (curve.len() / 10).max(1);
    for (n, bytes) in curve.iter().step_by(step).chain(curve.last()) {
        println!("  {n:>9} {:>6}", bytes / 1024);
    }

    assert_eq!(pushes, requests.saturating_sub(1) / PUSH_EVERY);
    assert!(
        polls >= pushes,
        "Unleash was polled {polls} times over {pushes} intervals"
    );
    let failed = host
        .metric("sluice.unleash.fetch.failed")
        .map_or(0, |m| m.value());
    assert_eq!(failed, 0, "failed Unleash fetches");
    // Warm after the first 10%: from then on, at most one page of growth.
    let warm = curve[curve.len() / 10].1;
    let peak = curve.iter().map(|c| c.1).max().unwrap_or(0);
    assert!(
        peak <= warm + SLACK,
        "linear memory grew from {} KiB (10% in) to {} KiB",
        warm / 1024,
        peak / 1024
    );
    // Nor does the VM's work per request grow with the pushes behind it (a revision's leftovers
    // scanned per request would). The Unleash rollout climbs by 1% every third push, which costs
    // a few percent more fuel by itself (flat when the rollout is held: see BENCHMARKS.md).
    let early = blocks[..blocks.len().div_ceil(10)]
        .iter()
        .map(|b| b.1)
        .max()
        .unwrap_or(0);
    let last = blocks.last().map_or(0, |b| b.1);
    assert!(
        last * 10 <= early * 11,
        "fuel per request grew from {} (first 10% of blocks) to {} (last block)",
        early / PUSH_EVERY as u64,
        last / PUSH_EVERY as u64
    );
}
