//! The canary guard's window and verdicts at their edges: how long a response counts, the exact
//! thresholds (at the limit is not above it), the 99th percentile, and the sequential trip
//! message's numbers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::guard::{Delta, Side, Window, CANARY, STABLE};
use sluice_core::plan::{GuardPlan, SequentialPlan};
use sluice_core::sequential::Evidence;
use sluice_core::telemetry::latency_bucket;

/// A real clock (2025-11-30T00:00:00Z), on a whole second.
const NOW: i64 = 1_764_460_800_000;

fn plan(max_error_rate_bp: Option<u32>, max_p99_ratio: Option<f64>, min: u64) -> GuardPlan {
    GuardPlan {
        max_error_rate_bp,
        max_p99_ratio,
        window_ms: 10_000,
        min_requests: min,
        count_local_replies: false,
        pause: false,
        sequential: None,
        webhook: None,
    }
}

/// `(responses, errors, latency ms)` per side.
fn delta(canary: (u32, u32, u64), stable: (u32, u32, u64)) -> Delta {
    let mut d = Delta::default();
    for (side, (total, errors, ms)) in [(CANARY, canary), (STABLE, stable)] {
        for i in 0..total {
            d.sides[side].record(i < errors, false, Some(latency_bucket(ms)));
        }
    }
    d
}

#[test]
fn responses_count_for_one_window_length_at_real_timestamps() {
    let g = plan(Some(500), None, 10);
    let mut w = Window::default();
    w.add(&delta((100, 50, 5), (0, 0, 5)), NOW, g.window_ms);
    assert!(w.judge(&g, NOW + 9_999).is_some(), "still inside 10 s");
    assert_eq!(w.totals(NOW + 9_999, g.window_ms)[CANARY].total, 100);
    assert_eq!(w.judge(&g, NOW + 10_000), None, "10 s later they are out");
    assert_eq!(w.totals(NOW + 10_000, g.window_ms)[CANARY].total, 0);
}

#[test]
fn exactly_min_requests_is_enough_to_judge() {
    let g = plan(Some(500), None, 50);
    let mut w = Window::default();
    w.add(&delta((50, 10, 5), (500, 0, 5)), NOW, g.window_ms);
    assert!(w.judge(&g, NOW).is_some(), "50 responses, 20% errors");
}

#[test]
fn an_error_rate_at_the_limit_does_not_trip() {
    let g = plan(Some(500), None, 50);
    let mut at = Window::default();
    at.add(&delta((100, 5, 5), (500, 0, 5)), NOW, g.window_ms);
    assert_eq!(at.judge(&g, NOW), None, "5.00% is not above 5%");
    let mut above = Window::default();
    above.add(&delta((100, 6, 5), (500, 0, 5)), NOW, g.window_ms);
    assert!(above.judge(&g, NOW).is_some(), "6.00% is");
}

#[test]
fn a_p99_at_the_ratio_does_not_trip() {
    let g = plan(None, Some(2.0), 20);
    let mut at = Window::default();
    at.add(&delta((50, 0, 20), (500, 0, 10)), NOW, g.window_ms);
    assert_eq!(at.judge(&g, NOW), None, "20 ms is 2x 10 ms, not above");
    let mut above = Window::default();
    above.add(&delta((50, 0, 30), (500, 0, 10)), NOW, g.window_ms);
    assert!(above.judge(&g, NOW).is_some(), "30 ms is above 2x 10 ms");
}

#[test]
fn p99_is_the_slowest_percent_not_the_bulk() {
    let mut side = Side::default();
    for i in 0..100 {
        let ms = if i < 98 { 5 } else { 500 };
        side.record(false, false, Some(latency_bucket(ms)));
    }
    assert_eq!(side.p99_ms(), Some(500));
    // Beyond the largest bound (10 s) the p99 reads as twice that bound.
    let mut slow = Side::default();
    for _ in 0..100 {
        slow.record(false, false, Some(latency_bucket(15_000)));
    }
    assert_eq!(slow.p99_ms(), Some(20_000));
}

#[test]
fn the_sequential_trip_names_both_rates() {
    let mut g = plan(None, None, 50);
    g.sequential = Some(SequentialPlan {
        alpha: 0.05,
        slow_ms: None,
    });
    let mut w = Window::default();
    for s in 0..20 {
        w.add(
            &delta((100, 5, 5), (900, 9, 5)),
            NOW + s * 1_000,
            g.window_ms,
        );
    }
    let reason = w.judge(&g, NOW + 19_000).expect("5% vs 1% for 20 s");
    assert!(
        reason.contains("5.00% (100 of 2000)") && reason.contains("1.00% (180 of 18000)"),
        "{reason}"
    );
}

#[test]
fn overwhelming_evidence_still_trips() {
    let e = Evidence {
        log_lr: [f64::INFINITY; 6],
        ..Evidence::default()
    };
    assert_eq!(e.e_value(), f64::INFINITY);
    assert!(e.rejects(0.05));
}

/// Each tick merges what the worker saw into the shared window: responses of earlier ticks
/// still count towards `min_requests`.
#[test]
fn responses_of_earlier_ticks_count_towards_min_requests() {
    use sluice_core::engine::Headers;
    use sluice_core::host::local::{LocalShared, LocalStats};
    use sluice_core::pipeline::Facts;
    use sluice_core::vm::VmState;
    const CONFIG: &str = r#"{"version": 1, "identity": {"without_identity": "random"},
      "routes": {"api": {"header": "x-route-api", "versions": ["v1", "v2"],
        "canary": {"stable": "v1", "canary": "v2", "weight": 50},
        "guard": {"max_error_rate": 5, "window": "30s", "min_requests": 100}}}}"#;
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let plan = sluice_core::compile::load(CONFIG.as_bytes()).expect("config compiles");
    let vm = VmState::new(plan, "r1".into(), 1, &stats);
    let headers: [(&str, &[u8]); 1] = [(":path", b"/")];
    let mut now = NOW;
    let mut canary = 0;
    for tick in 0..2u64 {
        // About 60 canary responses a tick, every other one failing: below 100 in one tick.
        for i in 0..120u64 {
            let facts = Facts {
                headers: Headers::Pairs(&headers),
                now_ms: now,
                entropy: (tick * 1000 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                ..Facts::default()
            };
            let routed = vm.on_request(&facts, |_, _| {});
            let (_, version) = *routed.routes.first().expect("routed");
            canary += usize::from(version == 1);
            let status = if version == 1 && i % 2 == 0 { 500 } else { 200 };
            vm.on_response(&routed, status, false, now + 3);
        }
        now += 1_000;
        vm.run_guards(&shared, &stats, now);
        if tick == 0 {
            assert!(canary < 100, "{canary} canary responses in the first tick");
            assert_eq!(stats.value("sluice.guard.api.trips"), 0);
        }
    }
    assert!(canary >= 100, "{canary} canary responses in two ticks");
    assert_eq!(stats.value("sluice.guard.api.trips"), 1);
}
