//! Experiment outcomes per variant: responses by status class, latency and goals, through the
//! VM's real request/response path with in-memory stats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::engine::Headers;
use sluice_core::host::local::LocalStats;
use sluice_core::pipeline::Facts;
use sluice_core::vm::VmState;

const CONFIG: &str = r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]},
  "flags": {
    "button": {"variants": {"green": 1, "blue": 2}, "default": "green",
      "rules": [{"rollout": {"green": 50, "blue": 50}}],
      "experiment": {"goals": ["purchase", "signup"]}},
    "plain": {"rules": [{"rollout": {"on": 50, "off": 50}}]}
  }}"#;

fn vm(stats: &LocalStats) -> VmState {
    let plan = sluice_core::compile::load(CONFIG.as_bytes()).expect("config compiles");
    VmState::new(plan, "t".into(), 7, stats)
}

fn request(vm: &VmState, user: &str) -> (sluice_core::vm::Routed, usize) {
    let headers: [(&str, &[u8]); 1] = [("x-user-id", user.as_bytes())];
    let facts = Facts {
        headers: Headers::Pairs(&headers),
        now_ms: 1_000,
        ..Facts::default()
    };
    let routed = vm.on_request(&facts, |_, _| {});
    let variant = routed.variants.first().expect("an experiment variant").1;
    (routed, variant)
}

#[test]
fn responses_latency_and_goals_are_counted_per_variant() {
    let stats = LocalStats::default();
    let vm = vm(&stats);
    let names = &vm.plan.flags[0].variant_names;
    let mut expected = [[0i64; 4]; 2]; // per variant: 2xx, 5xx, purchase, signup
    for u in 0..200 {
        let (routed, v) = request(&vm, &format!("user-{u}"));
        let status = if u % 4 == 0 { 503 } else { 200 };
        vm.on_response(&routed, status, false, 1_000 + 20 + v as i64 * 100);
        expected[v][usize::from(status == 503)] += 1;
        if u % 5 == 0 {
            // Unknown goals and blanks are ignored; a repeated goal counts each time named.
            vm.on_goals(&routed, 0, b"purchase, unknown-goal,, signup");
            expected[v][2] += 1;
            expected[v][3] += 1;
        }
    }
    vm.flush_metrics(&stats);
    for (v, name) in names.iter().enumerate() {
        let stat = |what: &str| stats.value(&format!("sluice.experiment.button.{name}.{what}"));
        assert_eq!(stat("responses.2xx"), expected[v][0], "{name}");
        assert_eq!(stat("responses.5xx"), expected[v][1], "{name}");
        assert_eq!(stat("goal.purchase"), expected[v][2], "{name}");
        assert_eq!(stat("goal.signup"), expected[v][3], "{name}");
        let latency = stats.records(&format!("sluice.experiment.button.{name}.latency_ms"));
        assert_eq!(latency.len() as i64, expected[v][0] + expected[v][1]);
        assert!(latency.iter().all(|ms| *ms == 20 + v as u64 * 100));
    }
    assert!(expected[0][0] > 50 && expected[1][0] > 50, "{expected:?}");
    assert_eq!(
        stats.value("sluice.experiment.plain.on.responses.2xx"),
        0,
        "flags not marked as experiments get no outcome stats"
    );
    assert_eq!(vm.plan.goal_headers, ["x-sluice-goal"]);
}

#[test]
fn experiment_config_is_checked() {
    let bad = [
        (
            r#"{"version": 1, "flags": {"f": {"experiment": {"goals": ["buy", "buy"]}}}}"#,
            "flags.f.experiment.goals[1]: goal `buy` is listed twice",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"experiment": {"goal_header": "bad header"}}}}"#,
            "flags.f.experiment.goal_header",
        ),
        (
            r#"{"version": 1, "flags": {"f": {"experiment": "yes"}}}"#,
            "flags.f.experiment",
        ),
    ];
    for (config, want) in bad {
        let err = sluice_core::compile::load(config.as_bytes())
            .expect_err(config)
            .to_string();
        assert!(err.contains(want), "{config}: {err}");
    }
    let plan = sluice_core::compile::load(
        br#"{"version": 1, "flags": {"f": {"experiment": true}, "g": {"experiment": false}}}"#,
    )
    .expect("true and false are fine");
    assert!(plan.flags[0].experiment.is_some() && plan.flags[1].experiment.is_none());
}

/// The filter reads the clock for a request only when `plan.reads_clock`; an experiment's latency
/// needs it (a flag-only config used to leave the start at 0, so every sample was "now").
#[test]
fn experiments_clock_their_requests_and_unclocked_ones_record_no_latency() {
    let stats = LocalStats::default();
    let vm = vm(&stats);
    assert!(
        vm.plan.reads_clock,
        "experiment latency needs the request's start time"
    );
    let headers: [(&str, &[u8]); 1] = [("x-user-id", b"someone")];
    let unclocked = Facts {
        headers: Headers::Pairs(&headers),
        now_ms: 0,
        ..Facts::default()
    };
    let routed = vm.on_request(&unclocked, |_, _| {});
    vm.on_response(&routed, 200, false, 1_764_000_000_000);
    vm.flush_metrics(&stats);
    for name in &vm.plan.flags[0].variant_names {
        let latency = stats.records(&format!("sluice.experiment.button.{name}.latency_ms"));
        assert!(latency.is_empty(), "{name}: {latency:?}");
    }
    let counted: i64 = vm.plan.flags[0]
        .variant_names
        .iter()
        .map(|n| stats.value(&format!("sluice.experiment.button.{n}.responses.2xx")))
        .sum();
    assert_eq!(counted, 1, "the response itself still counts");
}
