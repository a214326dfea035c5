//! Semantic versions as `semver_*` conditions and Unleash constraints compare them (semver 2.0.0):
//! what parses, what does not, and precedence at its edges.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_primitives::semver::Version;
use std::cmp::Ordering;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn parses_the_three_numbers_pre_release_and_build() {
    let x = v("12.0.345");
    assert_eq!((x.major, x.minor, x.patch), (12, 0, 345));
    assert!(!x.is_prerelease());
    let zero = v("0.0.0");
    assert_eq!((zero.major, zero.minor, zero.patch), (0, 0, 0));
    let rc = v("1.2.3-rc.1+build.7");
    assert_eq!((rc.major, rc.minor, rc.patch), (1, 2, 3));
    assert!(rc.is_prerelease());
    assert!(
        v("1.0.0-x-y").is_prerelease(),
        "hyphens inside a pre-release"
    );
    assert!(
        !v("1.0.0+build-5").is_prerelease(),
        "a hyphen in build metadata"
    );
}

#[test]
fn rejects_what_is_not_strict_semver() {
    for bad in [
        "1.+2.3",
        "1.2.-3",
        "1.2.3a",
        "1.2.3-a_b",
        "1.2.3-a.",
        "1.2.3-.a",
        "00.1.2",
        "1.02.3",
        "1.2.03",
        " 1.2.3",
        "1..3",
        "1.2.3-é",
    ] {
        assert!(Version::parse(bad).is_err(), "{bad} should be rejected");
    }
    assert_eq!(
        Version::parse("1.x.3").unwrap_err().to_string(),
        "`1.x.3` is not a semantic version: minor `x` is not a number"
    );
    assert_eq!(
        Version::parse("1.2.3.4").unwrap_err().to_string(),
        "`1.2.3.4` is not a semantic version: expected three numbers"
    );
    assert_eq!(
        Version::parse("1.2.3-a..b").unwrap_err().to_string(),
        "`1.2.3-a..b` is not a semantic version: bad pre-release identifier"
    );
    assert_eq!(
        Version::parse("").unwrap_err().to_string(),
        "`` is not a semantic version: major `` is not a number"
    );
}

#[test]
fn precedence_at_the_edges() {
    let cmp = |a: &str, b: &str| v(a).cmp(&v(b));
    assert_eq!(cmp("1.2.3", "1.2.3"), Ordering::Equal);
    assert_eq!(cmp("1.2.3+a", "1.2.3+b"), Ordering::Equal);
    assert_eq!(cmp("1.2.3-rc.1", "1.2.3-rc.1"), Ordering::Equal);
    assert_eq!(cmp("1.2.3-rc.1+a", "1.2.3-rc.1"), Ordering::Equal);
    assert_eq!(cmp("1.2.3", "1.2.4"), Ordering::Less);
    assert_eq!(cmp("1.2.4", "1.2.3"), Ordering::Greater);
    assert_eq!(cmp("1.3.0", "1.2.9"), Ordering::Greater);
    assert_eq!(cmp("2.0.0", "1.99.99"), Ordering::Greater);
    assert_eq!(cmp("1.2.3", "1.2.3-rc.1"), Ordering::Greater);
    assert_eq!(cmp("1.2.3-rc.1", "1.2.3"), Ordering::Less);
    assert_eq!(cmp("1.2.3-rc.1", "1.2.3-rc.2"), Ordering::Less);
    assert_eq!(cmp("1.2.3-rc.2", "1.2.3-rc.1"), Ordering::Greater);
    assert_eq!(
        cmp("1.2.3-rc.2", "1.2.3-rc.10"),
        Ordering::Less,
        "numeric, not text"
    );
    assert_eq!(
        cmp("1.2.3-1", "1.2.3-alpha"),
        Ordering::Less,
        "numbers before words"
    );
    assert_eq!(cmp("1.2.3-alpha", "1.2.3-1"), Ordering::Greater);
    assert_eq!(cmp("1.2.3-alpha", "1.2.3-beta"), Ordering::Less);
    assert_eq!(cmp("1.2.3-beta", "1.2.3-alpha"), Ordering::Greater);
    assert_eq!(cmp("1.2.3-x", "1.2.3-x-y"), Ordering::Less);
    assert_eq!(
        cmp("1.2.3-alpha", "1.2.3-alpha.1"),
        Ordering::Less,
        "shorter first"
    );
    assert_eq!(cmp("1.2.3-alpha.1", "1.2.3-alpha"), Ordering::Greater);
    assert_eq!(
        v("1.2.3").partial_cmp(&v("1.2.3-rc.1")),
        Some(Ordering::Greater)
    );
    assert!(v("1.2.3-rc.1") < v("1.2.3"));
    assert!(v("1.2.3-rc.1") <= v("1.2.3-rc.1"));
}
