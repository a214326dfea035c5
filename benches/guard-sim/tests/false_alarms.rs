//! The sequential guard's promise on the real engine, on a fixed seed set: a healthy canary trips
//! in at most alpha of the rollouts, and a bad one is caught. Deterministic (fixed seeds), and
//! not marginal: the bound is proven (Ville's inequality), the observed share sits well below it
//! (about 2% of rollouts at alpha 5% in `make bench-guard`'s 1,000-rollout runs), so the
//! assertion tests the guarantee, not luck.
use serde_json::json;
use sluice_guard_sim::{run_many, GuardUnderTest, Scenario, Users};

fn guards() -> Vec<GuardUnderTest> {
    vec![GuardUnderTest {
        label: "sequential".into(),
        guard: json!({"method": "sequential", "alpha": 0.05}),
    }]
}

fn scenario(canary_error: f64, horizon_s: u32) -> Scenario {
    Scenario {
        rate: 50,
        canary_weight: 20.0,
        stable_error: 0.01,
        canary_error,
        horizon_s,
        proxies: 1,
        users: Users::Random,
    }
}

#[test]
fn a_healthy_canary_trips_in_at_most_alpha_of_rollouts() {
    let (first, _) = run_many(&scenario(0.01, 120), &guards(), 0..100).expect("simulation runs");
    let tripped = first[0].iter().filter(|t| t.is_some()).count();
    eprintln!("{tripped} of 100 healthy rollouts tripped");
    assert!(
        tripped <= 5,
        "{tripped} of 100 healthy rollouts tripped (alpha 5%: at most 5)"
    );
}

#[test]
fn a_canary_with_five_times_the_errors_is_caught() {
    let (first, _) = run_many(&scenario(0.05, 600), &guards(), 0..20).expect("simulation runs");
    let caught = first[0].iter().filter(|t| t.is_some()).count();
    assert_eq!(
        caught, 20,
        "only {caught} of 20 bad canaries tripped within 10 minutes"
    );
}
