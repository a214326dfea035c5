//! The canary guard in a real Envoy: a canary that fails on purpose is rolled
//! back by the filter itself, within the guard's window, while traffic runs;
//! Envoy's stats show the trip.
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_e2e::{
    paths, stack, Backend, BackendOptions, Backends, EnvoyOptions, RequestSpec, Stack, Traffic,
};

fn guarded_config(window: &str) -> String {
    json!({
        "version": 1,
        "revision": "guarded-1",
        "identity": { "user": [{ "header": "x-user" }] },
        "routes": {
            "reviews": {
                "match": { "path_prefix": "/" },
                "header": "x-route-reviews",
                "versions": ["v1", "v2"],
                "canary": { "stable": "v1", "canary": "v2", "weight": 50 },
                "guard": { "max_error_rate": 5, "window": window, "min_requests": 30 }
            }
        }
    })
    .to_string()
}

#[test]
fn a_failing_canary_is_rolled_back_within_the_window_and_stats_show_the_trip() {
    let mut backends = Backends::start(&stack::VERSIONS).expect("backends");
    backends
        .add(Backend::start("v2", BackendOptions::new("v2").fail_rate(0.2)).expect("failing v2"));
    let stack = Stack::start_on(
        backends,
        &paths::sluice_wasm(),
        &guarded_config("10s"),
        EnvoyOptions::default().concurrency(2),
    )
    .expect("envoy with a guarded canary");

    let started = Instant::now();
    let traffic: Vec<Traffic> = (0..2)
        .map(|t| {
            Traffic::start(stack.envoy.addr(), move |i| {
                RequestSpec::get("/reviews")
                    .header("x-user", &format!("user-{}", (i * 2 + t) % 400))
            })
        })
        .collect();
    let tripped = sluice_e2e::wait_until(Duration::from_secs(20), || {
        stack.envoy.stat("wasmcustom.sluice.guard.reviews.tripped") == Some(1)
    });
    // Keep traffic going a little after the trip: all of it must be on stable.
    std::thread::sleep(Duration::from_millis(1500));
    let outcomes: Vec<_> = traffic.into_iter().flat_map(|t| t.stop()).collect();
    assert!(tripped, "guard never tripped; log:\n{}", stack.envoy.log());

    let first_failure = outcomes
        .iter()
        .filter(|o| o.status == Ok(503))
        .map(|o| o.at)
        .min()
        .expect("the canary failed some requests");
    let last_canary = outcomes
        .iter()
        .filter(|o| o.version.as_deref() == Some("v2"))
        .map(|o| o.at)
        .max()
        .expect("some requests reached the canary");
    let rollback = last_canary.saturating_sub(first_failure);
    println!(
        "first canary failure at {:?}, last request on the canary at {:?}: rolled back {:?} after the first failure ({} requests)",
        first_failure, last_canary, rollback, outcomes.len()
    );
    assert!(
        rollback < Duration::from_secs(10),
        "rollback took {rollback:?}, window is 10s"
    );
    let after: Vec<_> = outcomes.iter().filter(|o| o.at > last_canary).collect();
    assert!(
        after.len() > 50,
        "too little traffic after the rollback to judge ({})",
        after.len()
    );
    assert!(after
        .iter()
        .all(|o| o.version.as_deref() == Some("v1") && o.ok()));

    assert!(
        stack
            .envoy
            .stat("wasmcustom.sluice.guard.reviews.trips")
            .unwrap_or(0)
            >= 1
    );
    assert!(
        stack
            .envoy
            .stat("wasmcustom.sluice.route.reviews.v2.responses.5xx")
            .unwrap_or(0)
            > 0
    );
    assert!(
        stack
            .envoy
            .stat("wasmcustom.sluice.route.reviews.v1.requests")
            .unwrap_or(0)
            > 0
    );
    let log = stack.envoy.log();
    assert!(
        log.contains("guard tripped on route `reviews`: canary error rate"),
        "{log}"
    );
    println!("elapsed {:?}", started.elapsed());
}

#[test]
fn a_healthy_canary_is_left_alone_and_counted_in_stats() {
    let stack = Stack::start(&paths::sluice_wasm(), &guarded_config("5s")).expect("envoy");
    let mut client = stack.envoy.client();
    for i in 0..300 {
        let user = format!("user-{i}");
        let response = client
            .get("/reviews", &[("x-user", &user)])
            .expect("request");
        assert_eq!(response.status, 200);
    }
    // Stats are flushed on the filter's 1s tick.
    let counted = sluice_e2e::wait_until(Duration::from_secs(5), || {
        let v1 = stack
            .envoy
            .stat("wasmcustom.sluice.route.reviews.v1.requests")
            .unwrap_or(0);
        let v2 = stack
            .envoy
            .stat("wasmcustom.sluice.route.reviews.v2.requests")
            .unwrap_or(0);
        v1 + v2 == 300
    });
    assert!(
        counted,
        "stats: {:?}",
        stack
            .envoy
            .stats()
            .into_iter()
            .filter(|(k, _)| k.contains("sluice"))
            .collect::<Vec<_>>()
    );
    let v2 = stack
        .envoy
        .stat("wasmcustom.sluice.route.reviews.v2.requests")
        .unwrap_or(0);
    assert!((100..200).contains(&v2), "50% canary got {v2} of 300");
    assert_eq!(
        stack
            .envoy
            .stat("wasmcustom.sluice.guard.reviews.tripped")
            .unwrap_or(0),
        0
    );
    assert_eq!(
        stack
            .envoy
            .stat("wasmcustom.sluice.route.reviews.v2.responses.2xx")
            .unwrap_or(0),
        v2
    );
}
