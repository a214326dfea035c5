//! The guard simulation cross-checked on the real engine: the same seeded rollouts, once through
//! the native core (`rollout`, what `make bench-guard` measures) and once through build/sluice.wasm
//! in host-test's wasmtime host on its virtual clock. Every request must be split the same way and
//! every guard must trip (or not) at the same simulated second; a difference means the bench does
//! not measure what the filter does.
//!
//! Small on purpose (five seeds, 100 req/s, 30 s): the module runs every request.
use serde_json::json;
use sluice_guard_sim::{
    rollout, tick_ms, GuardUnderTest, Scenario, Traffic, Users, LATENCY_MS, ROUTE_HEADER, START_MS,
    USER_HEADER,
};
use sluice_wasm_host::Plugin;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

const SEEDS: std::ops::Range<u64> = 0..5;

fn guards() -> Vec<GuardUnderTest> {
    vec![
        GuardUnderTest {
            label: "sequential, alpha 0.05".into(),
            guard: json!({"method": "sequential", "alpha": 0.05}),
        },
        GuardUnderTest {
            label: "threshold 2%, 30s, min 50".into(),
            guard: json!({"max_error_rate": 2, "window": "30s", "min_requests": 50}),
        },
    ]
}

fn scenario(canary_error: f64) -> Scenario {
    Scenario {
        rate: 100,
        canary_weight: 20.0,
        stable_error: 0.01,
        canary_error,
        horizon_s: 30,
        proxies: 1,
        users: Users::Header,
    }
}

/// build/sluice.wasm, compiled once; fails (never skips) when it is missing.
fn plugin() -> Plugin {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/sluice.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with `make wasm` (make test does)",
        path.display()
    );
    Plugin::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e:#}", path.display()))
}

fn at(ms: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

/// One rollout of `guard` through the module (one worker, as the native rollout's one proxy):
/// the second after which it tripped, if it did within the horizon.
fn wasm_rollout(plugin: &Plugin, s: &Scenario, guard: &GuardUnderTest, seed: u64) -> Option<f64> {
    let mut host = plugin
        .host()
        .plugin_config(sluice_guard_sim::config(s, Some(&guard.guard)))
        .workers(1)
        .start_time(at(START_MS))
        .build()
        .expect("the simulation config loads in the module");
    let mut traffic = Traffic::new(s, seed).expect("simulation traffic");
    for second in 0..i64::from(s.horizon_s) {
        for r in traffic.second(second).expect("a second of traffic") {
            let user = r.user.expect("Users::Header traffic names its users");
            let out = host
                .request()
                .authority("api")
                .path("/")
                .header(USER_HEADER, &user)
                .at(at(r.at_ms))
                .upstream_status(r.status as u16)
                .upstream_latency(Duration::from_millis(LATENCY_MS as u64))
                .send()
                .expect("request through the module");
            let want = if r.canary { "canary" } else { "stable" };
            assert_eq!(
                out.request_header(ROUTE_HEADER).as_deref(),
                Some(want),
                "seed {seed}, second {second}: user {user} split differently in the module"
            );
        }
        // The filter's tick (every second since it was configured) runs the guard.
        let tick = at(tick_ms(second));
        let until = tick.duration_since(host.now()).expect("the tick is ahead");
        host.advance(until).expect("tick");
        if host
            .metric("sluice.guard.api.tripped")
            .is_some_and(|m| m.value() == 1)
        {
            return Some((second + 1) as f64);
        }
    }
    None
}

fn cross_check(canary_error: f64) -> Vec<Vec<Option<f64>>> {
    let s = scenario(canary_error);
    let guards = guards();
    let plugin = plugin();
    let mut native_times = vec![Vec::new(); guards.len()];
    for seed in SEEDS {
        let native = rollout(&s, &guards, seed).expect("native rollout");
        for (k, g) in guards.iter().enumerate() {
            let wasm = wasm_rollout(&plugin, &s, g, seed);
            assert_eq!(
                wasm, native.first_trip_s[k],
                "{} (canary errors {canary_error}), seed {seed}: the module tripped at {wasm:?} s, \
                 the native simulation at {:?} s",
                g.label, native.first_trip_s[k]
            );
            native_times[k].push(native.first_trip_s[k]);
        }
    }
    for (g, t) in guards.iter().zip(&native_times) {
        eprintln!(
            "canary errors {canary_error}, {}: tripped at {t:?} s",
            g.label
        );
    }
    native_times
}

#[test]
fn a_bad_canary_trips_at_the_same_second_in_the_module_as_in_the_simulation() {
    let times = cross_check(0.05);
    // Both guards caught every bad canary: the comparison covered trip times, not just "never".
    for (g, t) in guards().iter().zip(&times) {
        assert!(t.iter().all(Option::is_some), "{}: {t:?}", g.label);
    }
}

#[test]
fn a_healthy_canary_gets_the_same_verdicts_in_the_module_as_in_the_simulation() {
    let times = cross_check(0.01);
    // The sequential guard holds on these seeds; the 2% threshold cries wolf on some of them, so
    // both "never" and trip times are compared.
    assert!(times[0].iter().all(Option::is_none), "{:?}", times[0]);
    assert!(times[1].iter().any(Option::is_some), "{:?}", times[1]);
}
