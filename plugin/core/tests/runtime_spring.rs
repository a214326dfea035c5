//! Reading a Spring Cloud Config Environment into flags, at the edges a Config Server produces:
//! rollouts written as decimal numbers, flag names with `-`, `_` and `.`, an empty flag name,
//! and the boundaries of a percentage.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::spring::read_environment;

fn environment(source: &str) -> String {
    format!(
        r#"{{"name": "shop", "propertySources": [{{"name": "git:shop.yml", "source": {{{source}}}}}]}}"#
    )
}

fn rollout(value: &str) -> Result<u32, String> {
    let doc = environment(&format!(r#""features.checkout.rollout": {value}"#));
    read_environment(doc.as_bytes(), "features").map(|f| f.flags[0].rollout)
}

#[test]
fn rollouts_may_be_decimal_numbers_up_to_two_places() {
    assert_eq!(rollout("12.5"), Ok(1_250));
    assert_eq!(rollout("0.01"), Ok(1));
    assert_eq!(rollout("99.99"), Ok(9_999));
    assert_eq!(rollout("100"), Ok(10_000));
    assert_eq!(rollout("100.0"), Ok(10_000));
    assert_eq!(rollout("0"), Ok(0));
    assert_eq!(rollout("\" 33.3 \""), Ok(3_330));
    // 0.00000001% is 1e-6 of a bucket away from 0: still more than two decimals.
    for bad in [
        "100.01",
        "-0.01",
        "12.345",
        "0.00000001",
        "1e3",
        "true",
        "null",
        "[]",
        "{}",
    ] {
        let err = rollout(bad).expect_err(bad);
        assert!(
            err.contains("`features.checkout.rollout` in property source `git:shop.yml` is")
                && err.ends_with("not a percentage from 0 to 100"),
            "{bad}: {err}"
        );
    }
    assert!(rollout("null").unwrap_err().contains("is null,"));
    assert!(rollout("[]").unwrap_err().contains("is a list,"));
    assert!(rollout("{}").unwrap_err().contains("is an object,"));
    assert!(rollout("true").unwrap_err().contains("is true,"));
    assert!(rollout("100.01").unwrap_err().contains("is 100.01,"));
}

#[test]
fn flag_names_keep_dashes_underscores_and_dots_but_cannot_be_empty() {
    let doc = environment(
        r#""features.new-ui_v2.beta.enabled": true, "features.a.enabled": " FALSE ", "features.x.description": "ignored""#,
    );
    let flags = read_environment(doc.as_bytes(), "features").unwrap();
    let read: Vec<(&str, bool, u32)> = flags
        .flags
        .iter()
        .map(|f| (f.name.as_str(), f.enabled, f.rollout))
        .collect();
    assert_eq!(
        read,
        [("a", false, 10_000), ("new-ui_v2.beta", true, 10_000)]
    );

    let doc = environment(r#""features..enabled": true"#);
    let err = read_environment(doc.as_bytes(), "features").unwrap_err();
    assert_eq!(
        err,
        "`features..enabled` in property source `git:shop.yml`: `` is not a flag name (letters, digits, `-`, `_`, `.`)"
    );
    // A source without a name is named by its position.
    let doc = r#"{"propertySources": [{"source": {"features.a.enabled": "maybe"}}]}"#;
    let err = read_environment(doc.as_bytes(), "features").unwrap_err();
    assert_eq!(
        err,
        "`features.a.enabled` in property source `#0` is \"maybe\", not a boolean"
    );
}
