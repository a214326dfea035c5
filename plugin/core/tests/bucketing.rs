//! The bucketing properties users rely on, over 100k keys each.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::bucket::{bucket, BUCKETS};

const KEYS: usize = 100_000;

fn key(i: usize) -> String {
    format!("user-{i}")
}

#[test]
fn a_key_always_lands_in_the_same_bucket() {
    for i in 0..1000 {
        let k = key(i);
        let first = bucket("checkout", k.as_bytes());
        assert!(first < BUCKETS);
        for _ in 0..3 {
            assert_eq!(bucket("checkout", k.as_bytes()), first);
        }
    }
    // Known value: murmur3_x86_32("checkout:user-1") % 10000, fixed forever,
    // so every implementation (Envoy, host-test, tools) agrees.
    assert_eq!(
        bucket("checkout", b"user-1"),
        sluice_core::bucket::murmur3_x86_32(b"checkout:user-1", 0) % 10_000
    );
}

#[test]
fn raising_a_rollout_only_adds_users() {
    // In at 10% means bucket < 1000; at 20%, bucket < 2000.
    let mut in_at_10 = 0;
    for i in 0..KEYS {
        let b = bucket("new-search", key(i).as_bytes());
        if b < 1000 {
            in_at_10 += 1;
            assert!(b < 2000, "user {i} left the cohort when the rollout grew");
        }
    }
    let share = in_at_10 as f64 / KEYS as f64;
    assert!((share - 0.10).abs() < 0.005, "10% rollout gave {share}");
}

#[test]
fn two_flags_pick_independent_cohorts() {
    let (mut a, mut b, mut both) = (0usize, 0usize, 0usize);
    for i in 0..KEYS {
        let k = key(i);
        let in_a = bucket("checkout", k.as_bytes()) < 1000;
        let in_b = bucket("theme", k.as_bytes()) < 1000;
        a += in_a as usize;
        b += in_b as usize;
        both += (in_a && in_b) as usize;
    }
    let overlap = both as f64 / KEYS as f64 * 100.0;
    println!("two 10% cohorts: {a} and {b} users, overlap {overlap:.3}%");
    assert!(
        (overlap - 1.0).abs() <= 0.3,
        "10% cohorts overlap {overlap:.3}%, expected 1% ± 0.3"
    );
    assert!(
        a.abs_diff(10_000) < 600 && b.abs_diff(10_000) < 600,
        "cohorts {a} and {b}"
    );
}

#[test]
fn buckets_are_uniform() {
    let mut counts = [0u32; 100];
    for i in 0..KEYS {
        counts[(bucket("uniformity", key(i).as_bytes()) / 100) as usize] += 1;
    }
    let expected = KEYS as f64 / 100.0;
    let chi_square: f64 = counts
        .iter()
        .map(|c| (f64::from(*c) - expected).powi(2) / expected)
        .sum();
    println!("chi-square over 100 buckets, 100k keys: {chi_square:.1}");
    // Critical value of chi-square with 99 degrees of freedom at p = 0.001.
    assert!(
        chi_square < 148.23,
        "chi-square {chi_square:.1} over 100 buckets"
    );
}

#[test]
fn different_salts_place_a_user_differently() {
    let differ = (0..1000).filter(|i| {
        let k = key(*i);
        bucket("a", k.as_bytes()) != bucket("b", k.as_bytes())
    });
    assert!(differ.count() > 990);
}
