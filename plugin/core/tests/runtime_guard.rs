//! Canary guards through the VMs' real request, response and tick path, several VMs on one
//! shared data: the VM whose counts trip the guard counts the trip and reports it to the webhook
//! (threshold method: the window's numbers), the others follow without counting it again; a
//! rollback sends everyone to stable, a pause holds the share of the moment of the trip;
//! Envoy's own replies count as errors only with `count_local_replies`.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use std::cell::RefCell;

use sluice_core::engine::{Headers, RouteControl};
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::HttpCalls;
use sluice_core::pipeline::Facts;
use sluice_core::vm::{Routed, VmState};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;

fn config(guard: &str) -> String {
    format!(
        r#"{{"version": 1, "revision": "g1", "identity": {{"without_identity": "random"}},
  "routes": {{
    "api": {{"header": "x-route-api", "versions": ["v1", "v2"],
      "canary": {{"stable": "v1", "canary": "v2", "weight": 10, "start": "2026-12-01T00:00:00Z",
                 "steps": [{{"after": "1m", "weight": 100}}]}},
      "guard": {{"max_error_rate": 10, "window": "30s", "min_requests": 20 {guard}}}}},
    "web": {{"match": {{"path_prefix": "/web"}}, "header": "x-route-web", "versions": ["a", "b"],
      "split": {{"a": 50, "b": 50}}}}
  }}}}"#
    )
}

#[derive(Default)]
struct Hooks {
    posts: RefCell<Vec<String>>,
}

impl HttpCalls for Hooks {
    fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Err("no GET expected".into())
    }
    fn dispatch_with_body(
        &self,
        cluster: &str,
        _: &[(&str, &str)],
        body: &[u8],
        _: u64,
    ) -> Result<u32, String> {
        assert_eq!(cluster, "rollouts");
        let mut posts = self.posts.borrow_mut();
        posts.push(String::from_utf8(body.to_vec()).unwrap());
        Ok(posts.len() as u32)
    }
}

/// A request to `path` at `now`, with entropy `n` (no identity: a random bucket).
fn request(vm: &VmState, path: &str, now: i64, n: u64) -> Routed {
    let pairs: Vec<(&str, &[u8])> = vec![(":path", path.as_bytes())];
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        now_ms: now,
        entropy: n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555,
        ..Facts::default()
    };
    vm.on_request(&facts, |_, _| {})
}

/// `n` requests to the api route at `now`; the canary answers `canary_status` (local reply or
/// not), stable 200. Returns how many reached the canary.
fn traffic(vm: &VmState, now: i64, n: u64, canary_status: u32, local: bool) -> u64 {
    let mut canary = 0;
    for i in 0..n {
        let routed = request(vm, "/", now, now as u64 + i);
        let (_, version) = *routed.routes.first().expect("the api route matches");
        if version == 1 {
            canary += 1;
            vm.on_response(&routed, canary_status, local, now + 5);
        } else {
            vm.on_response(&routed, 200, false, now + 5);
        }
    }
    canary
}

fn share(vm: &VmState, now: i64) -> f64 {
    let canary = (0..2_000)
        .filter(|i| {
            request(vm, "/", now, 1_000_000 + i)
                .routes
                .first()
                .unwrap()
                .1
                == 1
        })
        .count();
    canary as f64 / 2_000.0
}

#[test]
fn the_tripping_vm_counts_and_reports_the_trip_and_the_others_follow() {
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let hooks = Hooks::default();
    let guard = r#", "webhook": {"cluster": "rollouts", "path": "/hooks", "attempts": 2}"#;
    let a = VmState::new(common::plan(&config(guard)), "g1".into(), 1, &stats);
    let b = VmState::new(common::plan(&config(guard)), "g1".into(), 2, &stats);
    assert_eq!(stats.value("sluice.guard.api.tripped"), 0);

    // Healthy: B's canary answers fine; nothing trips.
    let mut now = T0 + 1_000;
    let healthy = traffic(&b, now, 400, 200, false);
    b.run_guards(&shared, &stats, now + 100);
    assert_eq!(b.controls.borrow()[0], RouteControl::Normal);

    // A's canary fails every request.
    now += 1_000;
    let failed = traffic(&a, now, 400, 503, false);
    assert!(failed >= 20, "{failed} canary requests");
    a.run_guards(&shared, &stats, now + 100);
    assert_eq!(a.controls.borrow()[0], RouteControl::RolledBack);
    assert_eq!(stats.value("sluice.guard.api.trips"), 1);
    assert_eq!(stats.value("sluice.guard.api.tripped"), 1);
    assert_eq!(
        b.controls.borrow()[0],
        RouteControl::Normal,
        "B learns it on its tick"
    );
    b.run_guards(&shared, &stats, now + 200);
    assert_eq!(b.controls.borrow()[0], RouteControl::RolledBack);
    a.run_guards(&shared, &stats, now + 300);
    assert_eq!(
        stats.value("sluice.guard.api.trips"),
        1,
        "one trip, counted once"
    );
    assert_eq!(share(&b, now + 400), 0.0, "everyone on stable");

    // Only the tripping VM reports it.
    b.tick_webhooks(&hooks, &stats, now + 400);
    assert!(hooks.posts.borrow().is_empty());
    a.tick_webhooks(&hooks, &stats, now + 400);
    let posts = hooks.posts.borrow().clone();
    assert_eq!(posts.len(), 1);
    let report: serde_json::Value = serde_json::from_str(&posts[0]).unwrap();
    assert_eq!(report["event"], "sluice.guard.tripped");
    assert_eq!(report["route"], "api");
    assert_eq!(report["config"], "g1");
    assert_eq!(
        (report["stable"].as_str(), report["canary"].as_str()),
        (Some("v1"), Some("v2"))
    );
    assert_eq!(report["action"], "rollback");
    assert_eq!(report["method"], "threshold");
    assert!(report.get("e_value").is_none(), "{report}");
    assert_eq!(report["at_ms"], now + 100);
    assert_eq!(report["window_ms"], 30_000);
    let window = &report["window"];
    assert_eq!(
        window["canary"]["responses"],
        healthy + failed,
        "both VMs' counts"
    );
    assert_eq!(window["canary"]["errors"], failed);
    assert!(
        window["stable"]["responses"].as_u64().unwrap() > 600,
        "{report}"
    );
    assert_eq!(window["stable"]["errors"], 0);
    assert!(
        report["reason"].as_str().unwrap().contains("error rate"),
        "{report}"
    );

    // The webhook fails twice: the second failure is the last attempt.
    assert!(a.webhook_response(1, Some(500), &stats, now + 500));
    a.tick_webhooks(&hooks, &stats, now + 1_500);
    assert_eq!(hooks.posts.borrow().len(), 2);
    assert!(a.webhook_response(2, None, &stats, now + 1_600));
    assert_eq!(stats.value("sluice.guard.api.webhook.failed"), 2);
    assert_eq!(stats.value("sluice.guard.api.webhook.gave_up"), 1);
    assert_eq!(stats.value("sluice.guard.api.webhook.delivered"), 0);
    a.tick_webhooks(&hooks, &stats, now + 60_000);
    assert_eq!(hooks.posts.borrow().len(), 2, "given up");

    // A config pushed again starts untripped on every VM, then follows the shared window.
    let c = VmState::new(common::plan(&config(guard)), "g1".into(), 3, &stats);
    assert_eq!(stats.value("sluice.guard.api.tripped"), 0);
    c.run_guards(&shared, &stats, now + 2_000);
    assert_eq!(c.controls.borrow()[0], RouteControl::RolledBack);
    assert_eq!(stats.value("sluice.guard.api.tripped"), 1);
    assert_eq!(stats.value("sluice.guard.api.trips"), 1);
}

#[test]
fn a_paused_canary_keeps_the_share_it_had_when_it_tripped() {
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let vm = VmState::new(
        common::plan(&config(r#", "action": "pause""#)),
        "g1".into(),
        1,
        &stats,
    );
    let now = T0 + 10_000;
    for tick in 0..3 {
        traffic(&vm, now + tick * 1_000, 500, 500, false);
        vm.run_guards(&shared, &stats, now + tick * 1_000 + 500);
    }
    assert_eq!(vm.controls.borrow()[0], RouteControl::Paused(1_000));
    // Two minutes on, the schedule says 100%; the pause holds 10%.
    let held = share(&vm, T0 + 120_000);
    assert!((0.07..0.13).contains(&held), "{held}");
}

#[test]
fn envoys_own_replies_count_as_errors_only_when_asked() {
    for (count_local, trips) in [(false, false), (true, true)] {
        let stats = LocalStats::default();
        let shared = LocalShared::default();
        let guard = format!(r#", "count_local_replies": {count_local}"#);
        let vm = VmState::new(common::plan(&config(&guard)), "g1".into(), 1, &stats);
        let routed = request(&vm, "/", T0, 1);
        assert_eq!(routed.counts_local_replies, count_local);
        let web = request(&vm, "/web/x", T0, 1);
        assert_eq!(web.routes.len(), 2, "api and web both match");
        let now = T0 + 1_000;
        for tick in 0..3 {
            // Reset streams (status 0) and Envoy's 404s, on the canary only.
            traffic(
                &vm,
                now + tick * 1_000,
                400,
                if tick == 0 { 0 } else { 404 },
                true,
            );
            vm.run_guards(&shared, &stats, now + tick * 1_000 + 500);
        }
        assert_eq!(
            stats.value("sluice.guard.api.trips") == 1,
            trips,
            "count_local_replies {count_local}"
        );
    }
    // A request that only reaches an unguarded route need not ask who answered.
    let stats = LocalStats::default();
    let plan = common::plan(
        r#"{"version": 1, "routes": {"web": {"header": "x-route-web", "versions": ["a", "b"], "split": {"a": 50, "b": 50}}}}"#,
    );
    let vm = VmState::new(plan, "w".into(), 1, &stats);
    assert!(!request(&vm, "/", T0, 1).counts_local_replies);
}

/// Three versions: the canary's two, and v3 reached only by a pin.
fn three_versions(guard: &str) -> String {
    format!(
        r#"{{"version": 1, "identity": {{"without_identity": "random"}},
  "routes": {{"api": {{"header": "x-route-api", "versions": ["v1", "v2", "v3"],
      "canary": {{"stable": "v1", "canary": "v2", "weight": 50}},
      "pins": [{{"when": {{"header": "x-v3", "equals": "1"}}, "version": "v3"}}],
      "guard": {{{guard}}}}}}}}}"#
    )
}

/// Ticks of 200 requests (`pinned`: with the v3 pin); the canary answers after `canary_ms`
/// with `canary_status`, the others after 5 ms with 200 (v3 with `v3_status`). Whether it tripped.
fn run(vm: &VmState, canary_ms: i64, canary_status: u32, pinned: bool, v3_status: u32) -> bool {
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let mut now = T0;
    for _ in 0..20 {
        for i in 0..200u64 {
            let mut pairs: Vec<(&str, &[u8])> = vec![(":path", b"/")];
            if pinned && i % 2 == 0 {
                pairs.push(("x-v3", b"1"));
            }
            let facts = Facts {
                headers: Headers::Pairs(&pairs),
                now_ms: now,
                entropy: (now as u64 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                ..Facts::default()
            };
            let routed = vm.on_request(&facts, |_, _| {});
            let (_, version) = *routed.routes.first().unwrap();
            let (ms, status) = match version {
                1 => (canary_ms, canary_status),
                2 => (5, v3_status),
                _ => (5, 200),
            };
            vm.on_response(&routed, status, false, now + ms);
        }
        now += 1_000;
        vm.run_guards(&shared, &stats, now);
        if vm.controls.borrow()[0] != RouteControl::Normal {
            return true;
        }
    }
    false
}

#[test]
fn a_sequential_guard_counts_responses_slower_than_slow_as_bad() {
    let guard = r#""method": "sequential", "alpha": 0.05, "slow": "100ms""#;
    let stats = LocalStats::default();
    let at_limit = VmState::new(common::plan(&three_versions(guard)), "s".into(), 1, &stats);
    assert!(
        !run(&at_limit, 100, 200, false, 200),
        "100 ms is not slower than 100ms"
    );
    let over = VmState::new(common::plan(&three_versions(guard)), "s".into(), 1, &stats);
    assert!(run(&over, 101, 200, false, 200), "101 ms is");
}

#[test]
fn a_version_outside_the_canary_does_not_count_for_its_guard() {
    let guard = r#""max_error_rate": 5, "window": "30s", "min_requests": 20"#;
    let stats = LocalStats::default();
    let vm = VmState::new(common::plan(&three_versions(guard)), "t".into(), 1, &stats);
    assert!(
        !run(&vm, 5, 200, true, 500),
        "v3's errors are not the canary's"
    );
    let vm = VmState::new(common::plan(&three_versions(guard)), "t".into(), 1, &stats);
    assert!(run(&vm, 5, 500, true, 200), "the canary's own 500s are");
}

#[test]
fn a_trip_by_responses_leaving_the_window_is_counted_and_shared() {
    let config = r#"{"version": 1, "revision": "x1", "identity": {"without_identity": "random"},
  "routes": {"api": {"header": "x-route-api", "versions": ["v1", "v2"],
      "canary": {"stable": "v1", "canary": "v2", "weight": 50},
      "guard": {"max_error_rate": 30, "window": "30s", "min_requests": 20}}}}"#;
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let a = VmState::new(common::plan(config), "x1".into(), 1, &stats);
    let b = VmState::new(common::plan(config), "x1".into(), 2, &stats);
    let mut ok = 0;
    while ok < 100 {
        ok += traffic(&a, T0, 10, 200, false);
    }
    a.run_guards(&shared, &stats, T0 + 500);
    let mut failed = 0;
    while failed < 35 {
        failed += traffic(&a, T0 + 20_000, 1, 500, false);
    }
    a.run_guards(&shared, &stats, T0 + 20_500);
    assert_eq!(
        a.controls.borrow()[0],
        RouteControl::Normal,
        "{failed} of {} is under 30%",
        ok + failed
    );
    // The successes leave the window; no new responses: the failures alone trip it.
    a.run_guards(&shared, &stats, T0 + 45_000);
    assert_eq!(a.controls.borrow()[0], RouteControl::RolledBack);
    assert_eq!(stats.value("sluice.guard.api.trips"), 1);
    b.run_guards(&shared, &stats, T0 + 45_500);
    assert_eq!(
        b.controls.borrow()[0],
        RouteControl::RolledBack,
        "stored for the other VMs"
    );
}
