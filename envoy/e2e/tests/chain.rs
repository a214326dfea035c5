//! Rollouts across services with real Envoys: edge -> a -> b (v1/v2) -> c (v1/v2), each hop a
//! Sluice, the apps forwarding only `baggage`. 10,000 users get one consistent set of versions
//! and flags at every hop (the one the core computes), keys rotate mid-run without a rejected
//! token, and clients that forge tokens, baggage members or route headers get only their own.
use sluice_e2e::chain::{rotation, run_scenario, Chain};
use sluice_e2e::paths;

#[test]
fn ten_thousand_users_see_one_consistent_set_across_three_hops() {
    let chain = Chain::start(&paths::sluice_wasm(), &rotation()[0], "chain").expect("the chain");
    let report = run_scenario(&chain, 10_000, 600);
    println!("{}", report.table());
    assert!(
        report.failed.is_empty(),
        "failed: {:#?}",
        &report.failed[..report.failed.len().min(5)]
    );
    assert!(
        report.inconsistent.is_empty(),
        "{} inconsistent users, e.g. {:#?}",
        report.inconsistent.len(),
        &report.inconsistent[..report.inconsistent.len().min(5)]
    );
    assert!(
        report.forged_honoured.is_empty(),
        "forged clients got what they asked for: {:#?}",
        &report.forged_honoured[..report.forged_honoured.len().min(5)]
    );
    let share = |n: usize| 100.0 * n as f64 / report.users as f64;
    assert!(
        (29.0..=31.0).contains(&share(report.in_release)),
        "release share {:.2}%",
        share(report.in_release)
    );
    assert!(
        (39.0..=41.0).contains(&share(report.flag_on)),
        "flag share {:.2}%",
        share(report.flag_on)
    );
    // The edge signs for every client; the later hops accept every honest token (the rotation
    // included) and reject every forged one.
    let (edge_signed, edge_accepted, _) = &report.hop_stats[0];
    assert!(*edge_signed >= 10_000, "edge signed {edge_signed}");
    assert_eq!(
        *edge_accepted, 0,
        "a token stolen from another user is never accepted"
    );
    for (hop, (_, accepted, rejected)) in report.hop_stats.iter().enumerate().skip(1) {
        assert!(*accepted >= 10_600, "hop {hop} accepted {accepted}");
        assert!(
            rejected.is_empty(),
            "hop {hop} rejected honest tokens: {rejected:?}"
        );
    }
    let rejected_at_edge: u64 = report.hop_stats[0].2.iter().map(|(_, n)| n).sum();
    assert_eq!(
        rejected_at_edge, 400,
        "the stolen and the garbage tokens: {:?}",
        report.hop_stats[0].2
    );
}
