//! Requests without identity under `without_identity: "random"`: each gets a fresh bucket from
//! the per-request entropy, and flags (or routes) with different salts roll independently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, variant, Req};
use sluice_core::bucket::random_bucket;

const REQUESTS: u64 = 4_000;

/// The entropy the filter hands each request (`VmState::entropy`: VM seed ^ context id * φ).
fn entropy(i: u64) -> u64 {
    0x1234_5678_9abc_def0 ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[test]
fn two_random_flags_are_independent() {
    let p = plan(
        r#"{"version":1,"identity":{"user":[{"header":"x-user-id"}],"without_identity":"random"},
            "flags":{"a":{"rules":[{"rollout":{"on":50,"off":50}}]},
                     "b":{"rules":[{"rollout":{"on":50,"off":50}}]}}}"#,
    );
    let (mut a, mut b, mut both) = (0u64, 0u64, 0u64);
    for i in 0..REQUESTS {
        let d = Req::new().entropy(entropy(i)).eval(&p);
        let (on_a, on_b) = (variant(&p, &d, "a") == "on", variant(&p, &d, "b") == "on");
        a += on_a as u64;
        b += on_b as u64;
        both += (on_a && on_b) as u64;
    }
    // Each flag serves `on` to half the requests, and both to a quarter: one flag's coin does
    // not decide the other's (they would if the salts were ignored).
    for (name, n) in [("a", a), ("b", b)] {
        assert!(
            n.abs_diff(REQUESTS / 2) < 200,
            "{name}: {n} of {REQUESTS} on"
        );
    }
    assert!(
        both.abs_diff(REQUESTS / 4) < 200,
        "both on for {both} of {REQUESTS}; independent 50% coins give ~{}",
        REQUESTS / 4
    );
}

#[test]
fn every_bit_of_the_entropy_counts() {
    // Hosts differ in which bits of the entropy vary (a clock's low bits, a counter's): flipping
    // any one bit, in either half, must move the request to another bucket.
    for base in [0u64, u64::MAX, 0x0123_4567_89ab_cdef] {
        let here = random_bucket("checkout", base);
        let unmoved: Vec<u32> = (0..64)
            .filter(|bit| random_bucket("checkout", base ^ (1 << bit)) == here)
            .collect();
        assert!(
            unmoved.is_empty(),
            "entropy {base:#x}: flipping bits {unmoved:?} leaves bucket {here}"
        );
    }
}
