//! What a VM hands to Envoy's stats on each tick, through its real request and response path:
//! requests and responses per route and version (by status class), latency samples, flag
//! evaluations, tester overrides honoured and refused, under stat-safe names; counts start
//! again after each flush. Also the names a VM gives a config and the per-request entropy.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use sluice_core::engine::Headers;
use sluice_core::host::local::LocalStats;
use sluice_core::pipeline::Facts;
use sluice_core::vm::{plan_id, Routed, VmState};

/// Names with dots, which Envoy would split on: they become `_` in stat names.
fn config() -> String {
    r#"{"version": 1, "revision": "rev-9", "identity": {"user": [{"header": "x-user"}]},
  "flags": {"ui.theme": {"variants": {"light": 1, "dark.v2": 2}, "default": "light",
                          "rules": [{"when": {"header": "x-dark", "equals": "1"}, "serve": "dark.v2"}]}},
  "routes": {"shop.api": {"header": "x-route-api", "versions": ["v1.0", "v2"],
                          "canary": {"stable": "v1.0", "canary": "v2", "weight": 0},
                          "pins": [{"when": {"header": "x-beta", "equals": "1"}, "version": "v2"}]}},
  "overrides": {"secret_sha256": "SECRET"}}"#
        .replace("SECRET", &common::secret_hash())
}

struct Vm {
    vm: VmState,
    stats: LocalStats,
}

impl Vm {
    fn new() -> Vm {
        let stats = LocalStats::default();
        let vm = VmState::new(common::plan(&config()), "rev-9".into(), 5, &stats);
        Vm { vm, stats }
    }

    fn request(&self, headers: &[(&str, &str)], now_ms: i64) -> Routed {
        let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let facts = Facts {
            headers: Headers::Pairs(&pairs),
            now_ms,
            ..Facts::default()
        };
        self.vm.on_request(&facts, |_, _| {})
    }

    fn stat(&self, name: &str) -> i64 {
        self.stats.value(name)
    }
}

#[test]
fn requests_responses_and_latency_are_counted_per_route_version_under_safe_names() {
    let vm = Vm::new();
    let stable = vm.request(&[("x-user", "u1")], 1_000);
    let beta = vm.request(&[("x-user", "u2"), ("x-beta", "1")], 1_000);
    let statuses = [100, 199, 200, 204, 301, 404, 499, 500, 599, 600, 0];
    for status in statuses {
        vm.vm.on_response(&stable, status, false, 1_007);
    }
    vm.vm.on_response(&beta, 503, false, 1_250);
    // A response "before" its request (a clock step back) is 0 ms, not a huge number.
    vm.vm.on_response(&beta, 200, false, 900);
    vm.vm.flush_metrics(&vm.stats);

    let route =
        |version: &str, what: &str| vm.stat(&format!("sluice.route.shop_api.{version}.{what}"));
    assert_eq!(route("v1_0", "requests"), 1);
    assert_eq!(route("v2", "requests"), 1);
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let stable_counts: Vec<i64> = classes
        .iter()
        .map(|c| route("v1_0", &format!("responses.{c}")))
        .collect();
    assert_eq!(stable_counts, [2, 2, 1, 2, 2], "600 and 0 are in no class");
    let beta_counts: Vec<i64> = classes
        .iter()
        .map(|c| route("v2", &format!("responses.{c}")))
        .collect();
    assert_eq!(beta_counts, [0, 1, 0, 0, 1]);
    assert_eq!(
        vm.stats.records("sluice.route.shop_api.v1_0.latency_ms"),
        vec![7; statuses.len()]
    );
    assert_eq!(
        vm.stats.records("sluice.route.shop_api.v2.latency_ms"),
        vec![250, 0]
    );
    assert_eq!(vm.stat("sluice.flag.ui_theme.light.evaluations"), 2);
    assert_eq!(vm.stat("sluice.flag.ui_theme.dark_v2.evaluations"), 0);

    // Counted once: the next flush adds only what came since.
    let dark = vm.request(&[("x-user", "u3"), ("x-dark", "1")], 2_000);
    vm.vm.on_response(&dark, 200, false, 2_001);
    vm.vm.flush_metrics(&vm.stats);
    assert_eq!(route("v1_0", "requests"), 2);
    assert_eq!(route("v2", "requests"), 1);
    assert_eq!(route("v1_0", "responses.2xx"), 3);
    assert_eq!(vm.stat("sluice.flag.ui_theme.light.evaluations"), 2);
    assert_eq!(vm.stat("sluice.flag.ui_theme.dark_v2.evaluations"), 1);
    assert_eq!(
        vm.stats
            .records("sluice.route.shop_api.v1_0.latency_ms")
            .len(),
        statuses.len() + 1
    );
}

#[test]
fn an_unclocked_request_records_no_latency() {
    let vm = Vm::new();
    let routed = vm.request(&[("x-user", "u1")], 0);
    assert_eq!(routed.started_ms, 0);
    vm.vm.on_response(&routed, 200, false, 1_764_000_000_000);
    vm.vm.flush_metrics(&vm.stats);
    assert_eq!(vm.stat("sluice.route.shop_api.v1_0.responses.2xx"), 1);
    assert!(vm
        .stats
        .records("sluice.route.shop_api.v1_0.latency_ms")
        .is_empty());
}

#[test]
fn latency_samples_are_capped_per_flush_but_every_response_counts() {
    let vm = Vm::new();
    let routed = vm.request(&[("x-user", "u1")], 1_000);
    for _ in 0..4_100 {
        vm.vm.on_response(&routed, 200, false, 1_002);
    }
    // Beyond u32 milliseconds: the sample saturates.
    let old = vm.request(&[("x-user", "u1")], 1);
    vm.vm.on_response(&old, 200, false, 1 << 40);
    vm.vm.flush_metrics(&vm.stats);
    assert_eq!(vm.stat("sluice.route.shop_api.v1_0.responses.2xx"), 4_101);
    let samples = vm.stats.records("sluice.route.shop_api.v1_0.latency_ms");
    assert_eq!(samples.len(), 4_096);
    assert!(samples.iter().all(|ms| *ms == 2));
    let next = vm.request(&[("x-user", "u1")], 1);
    vm.vm.on_response(&next, 200, false, 1 << 40);
    vm.vm.flush_metrics(&vm.stats);
    let samples = vm.stats.records("sluice.route.shop_api.v1_0.latency_ms");
    assert_eq!(samples.last(), Some(&u64::from(u32::MAX)));
}

#[test]
fn tester_overrides_are_counted_honoured_or_refused() {
    let vm = Vm::new();
    vm.request(
        &[
            ("x-user", "u1"),
            ("x-sluice-override", "shop.api=v2"),
            ("x-sluice-secret", "let-me-test"),
        ],
        1_000,
    );
    for _ in 0..2 {
        vm.request(
            &[
                ("x-user", "u1"),
                ("x-sluice-override", "shop.api=v2"),
                ("x-sluice-secret", "guess"),
            ],
            1_000,
        );
    }
    vm.request(&[("x-user", "u1")], 1_000);
    vm.vm.flush_metrics(&vm.stats);
    assert_eq!(vm.stat("sluice.overrides.honoured"), 1);
    assert_eq!(vm.stat("sluice.overrides.refused"), 2);
    assert_eq!(vm.stat("sluice.route.shop_api.v2.requests"), 1);
    assert_eq!(vm.stat("sluice.route.shop_api.v1_0.requests"), 3);
}

#[test]
fn stats_are_defined_once_per_vm_not_per_flush() {
    let vm = Vm::new();
    let defined = vm.stats.definitions.get();
    for t in 0..3 {
        let routed = vm.request(&[("x-user", "u1")], 1_000 + t);
        vm.vm.on_response(&routed, 200, false, 1_010 + t);
        vm.vm.flush_metrics(&vm.stats);
    }
    assert_eq!(vm.stats.definitions.get(), defined);
    assert_eq!(vm.stat("sluice.route.shop_api.v1_0.requests"), 3);
}

#[test]
fn a_config_without_revision_is_named_by_its_text() {
    let with = common::plan(r#"{"version": 1, "revision": "r-12"}"#);
    assert_eq!(plan_id(&with, b"anything"), "r-12");
    let text_a = br#"{"version": 1, "flags": {"a": {}}}"#;
    let text_b = br#"{"version": 1, "flags": {"b": {}}}"#;
    let (a, b) = (
        plan_id(&common::plan(std::str::from_utf8(text_a).unwrap()), text_a),
        plan_id(&common::plan(std::str::from_utf8(text_b).unwrap()), text_b),
    );
    assert_eq!(a.len(), 8, "{a}");
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, b);
    assert_eq!(
        a,
        plan_id(&common::plan(std::str::from_utf8(text_a).unwrap()), text_a),
        "the same text, the same name"
    );
}

#[test]
fn entropy_differs_per_request_context_and_per_vm() {
    let stats = LocalStats::default();
    for seed in [0, u64::MAX, 0x0123_4567_89ab_cdef] {
        let vm = VmState::new(common::plan(r#"{"version": 1}"#), "p".into(), seed, &stats);
        let mut seen: Vec<u64> = (1..=2_000).map(|ctx| vm.entropy(ctx)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(
            seen.len(),
            2_000,
            "seed {seed:x}: two contexts got the same entropy"
        );
        let other = VmState::new(
            common::plan(r#"{"version": 1}"#),
            "p".into(),
            seed ^ 1,
            &stats,
        );
        assert_ne!(vm.entropy(2), other.entropy(2), "seed {seed:x}");
    }
}

/// Two experiments reading goals from their own response headers.
const EXPERIMENTS: &str = r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
  "flags": {
    "button": {"rules": [{"serve": "on"}], "experiment": {"goals": ["buy"], "goal_header": "x-goal-button"}},
    "search": {"rules": [{"serve": "on"}], "experiment": {"goals": ["buy", "click"], "goal_header": "x-goal-search"}}
  }}"#;

#[test]
fn each_experiment_counts_the_goals_of_its_own_header() {
    let stats = LocalStats::default();
    let vm = VmState::new(common::plan(EXPERIMENTS), "e".into(), 1, &stats);
    let header = |name: &str| vm.plan.goal_headers.iter().position(|h| h == name).unwrap();
    let pairs: Vec<(&str, &[u8])> = vec![("x-user", b"u1")];
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        now_ms: 1_000,
        ..Facts::default()
    };
    let routed = vm.on_request(&facts, |_, _| {});
    vm.on_goals(&routed, header("x-goal-search"), b"buy, click");
    vm.on_goals(&routed, header("x-goal-button"), b"buy");
    vm.on_goals(&routed, header("x-goal-button"), b"click");
    vm.flush_metrics(&stats);
    assert_eq!(stats.value("sluice.experiment.button.on.goal.buy"), 1);
    assert_eq!(stats.value("sluice.experiment.search.on.goal.buy"), 1);
    assert_eq!(stats.value("sluice.experiment.search.on.goal.click"), 1);
}

#[test]
fn experiment_latency_samples_are_capped_per_flush_too() {
    let stats = LocalStats::default();
    let vm = VmState::new(common::plan(EXPERIMENTS), "e".into(), 1, &stats);
    let pairs: Vec<(&str, &[u8])> = vec![("x-user", b"u1")];
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        now_ms: 1_000,
        ..Facts::default()
    };
    let routed = vm.on_request(&facts, |_, _| {});
    for _ in 0..4_100 {
        vm.on_response(&routed, 200, false, 1_003);
    }
    vm.flush_metrics(&stats);
    assert_eq!(
        stats.value("sluice.experiment.button.on.responses.2xx"),
        4_100
    );
    let samples = stats.records("sluice.experiment.button.on.latency_ms");
    assert_eq!(samples.len(), 4_096);
    assert!(samples.iter().all(|ms| *ms == 3));
    let facts = Facts { now_ms: 1, ..facts };
    let old = vm.on_request(&facts, |_, _| {});
    vm.on_response(&old, 200, false, 1 << 40);
    vm.flush_metrics(&stats);
    let samples = stats.records("sluice.experiment.button.on.latency_ms");
    assert_eq!(samples.last(), Some(&u64::from(u32::MAX)));
}

#[test]
fn names_of_the_longest_length_make_whole_stat_names() {
    let route = format!("r{}", "o".repeat(127));
    let flag = format!("f{}", "l".repeat(127));
    let config = format!(
        r#"{{"version": 1, "identity": {{"without_identity": "random"}},
  "flags": {{"{flag}": {{"rules": [{{"serve": "on"}}], "experiment": true}}}},
  "routes": {{"{route}": {{"header": "x-r", "versions": ["a", "b"], "canary": {{"stable": "a", "canary": "b", "weight": 0}},
      "guard": {{"max_error_rate": 5}}}}}}}}"#
    );
    let stats = LocalStats::default();
    let vm = VmState::new(common::plan(&config), "x".into(), 1, &stats);
    let pairs: Vec<(&str, &[u8])> = vec![(":path", b"/")];
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        now_ms: 1_000,
        ..Facts::default()
    };
    let routed = vm.on_request(&facts, |_, _| {});
    vm.on_response(&routed, 200, false, 1_001);
    vm.flush_metrics(&stats);
    assert_eq!(stats.value(&format!("sluice.route.{route}.a.requests")), 1);
    assert_eq!(
        stats.value(&format!("sluice.route.{route}.a.responses.2xx")),
        1
    );
    assert_eq!(
        stats.value(&format!("sluice.flag.{flag}.on.evaluations")),
        1
    );
    assert_eq!(
        stats.value(&format!("sluice.experiment.{flag}.on.responses.2xx")),
        1
    );
    assert_eq!(stats.value(&format!("sluice.guard.{route}.tripped")), 0);
}

/// The filter skips the response accounting of a request with nothing to count.
#[test]
fn only_a_request_with_a_route_or_an_experiment_has_a_response_to_count() {
    let stats = LocalStats::default();
    let config = r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
      "flags": {"plain": {"rules": [{"serve": "on"}]},
                "button": {"rules": [{"serve": "on"}], "experiment": true}},
      "routes": {"api": {"match": {"path_prefix": "/api"}, "header": "x-route-api", "versions": ["v1"],
                         "split": {"v1": 100}}}}"#;
    let vm = VmState::new(common::plan(config), "c".into(), 1, &stats);
    let routed = |path: &str| {
        let pairs: Vec<(&str, &[u8])> = vec![(":path", path.as_bytes())];
        let facts = Facts {
            headers: Headers::Pairs(&pairs),
            now_ms: 1_000,
            ..Facts::default()
        };
        vm.on_request(&facts, |_, _| {})
    };
    let api = routed("/api/x");
    assert_eq!((api.routes.len(), api.variants.len()), (1, 1));
    assert!(!api.is_empty());
    let other = routed("/other");
    assert_eq!((other.routes.len(), other.variants.len()), (0, 1));
    assert!(!other.is_empty(), "the experiment counts its responses");
    let plain = VmState::new(
        common::plan(
            r#"{"version": 1, "flags": {"plain": {"rules": [{"serve": "on"}]}},
          "routes": {"api": {"match": {"path_prefix": "/api"}, "header": "x-route-api", "versions": ["v1"], "split": {"v1": 100}}}}"#,
        ),
        "d".into(),
        1,
        &stats,
    );
    let pairs: Vec<(&str, &[u8])> = vec![(":path", b"/api")];
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        ..Facts::default()
    };
    let only_route = plain.on_request(&facts, |_, _| {});
    assert!(!only_route.is_empty(), "the route counts its responses");
    let pairs: Vec<(&str, &[u8])> = vec![(":path", b"/")];
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        ..Facts::default()
    };
    assert!(plain.on_request(&facts, |_, _| {}).is_empty());
}

/// Each flag's variants have counters of their own, however many variants the flags before it
/// have: every request counts one variant of every flag, the one it was served.
#[test]
fn every_flag_counts_the_variant_each_request_got() {
    let config = r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
      "flags": {
        "a": {"rules": [{"when": {"header": "x-a", "equals": "1"}, "serve": "on"}]},
        "b": {"variants": {"x": 1, "y": 2, "z": 3}, "default": "x",
              "rules": [{"when": {"header": "x-b", "equals": "y"}, "serve": "y"},
                        {"when": {"header": "x-b", "equals": "z"}, "serve": "z"}]},
        "c": {"enabled": false, "rules": [{"serve": "on"}]},
        "d": {"variants": {"p": 1, "q": 2}, "default": "q", "rules": []}
      }}"#;
    let stats = LocalStats::default();
    let vm = VmState::new(common::plan(config), "r".into(), 5, &stats);
    let send = |headers: &[(&str, &str)]| {
        let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let facts = Facts {
            headers: Headers::Pairs(&pairs),
            ..Facts::default()
        };
        vm.on_request(&facts, |_, _| {});
    };
    send(&[("x-a", "1"), ("x-b", "z")]);
    send(&[("x-b", "y")]);
    send(&[("x-b", "z")]);
    vm.flush_metrics(&stats);
    let count = |flag: &str, variant: &str| {
        stats.value(&format!("sluice.flag.{flag}.{variant}.evaluations"))
    };
    assert_eq!((count("a", "on"), count("a", "off")), (1, 2));
    assert_eq!(
        (count("b", "x"), count("b", "y"), count("b", "z")),
        (0, 1, 2)
    );
    assert_eq!((count("c", "on"), count("c", "off")), (0, 3));
    assert_eq!((count("d", "p"), count("d", "q")), (0, 3));

    send(&[("x-b", "y")]);
    vm.flush_metrics(&stats);
    assert_eq!(
        (count("a", "off"), count("b", "y"), count("d", "q")),
        (3, 2, 4)
    );
}
