//! Every condition operator as a user reads it in docs/config.md: what holds and what does not,
//! with and without `ignore_case`, at the bounds of the text tests and at the boundaries of the
//! number and semver comparisons (equal values), CIDR on the source address and on a header.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, variant, Req};

/// Whether `cond` holds for `req`: a flag served `on` when it does (`off`, its default, if not).
fn holds(cond: &str, req: &Req) -> bool {
    let p = plan(&format!(
        r#"{{"version": 1, "flags": {{"f": {{"rules": [{{"when": {cond}, "serve": "on"}}]}}}}}}"#
    ));
    let got = variant(&p, &req.eval(&p), "f");
    match got {
        "on" => true,
        "off" => false,
        other => panic!("unexpected variant {other}"),
    }
}

/// `cond` against a request carrying `x-v: value`.
fn on_header(cond: &str, value: &str) -> bool {
    holds(cond, &Req::new().header("x-v", value))
}

/// The values among `values` for which `cond` holds (on the `x-v` header), in order.
fn matching<'v>(cond: &str, values: &[&'v str]) -> Vec<&'v str> {
    values
        .iter()
        .copied()
        .filter(|v| on_header(cond, v))
        .collect()
}

#[test]
fn equals_is_exact_unless_ignore_case() {
    let values = ["Beta", "beta", "BETA", "Bet", "Betas", " Beta", ""];
    assert_eq!(
        matching(r#"{"header": "x-v", "equals": "Beta"}"#, &values),
        ["Beta"]
    );
    assert_eq!(
        matching(
            r#"{"header": "x-v", "equals": "Beta", "ignore_case": true}"#,
            &values
        ),
        ["Beta", "beta", "BETA"]
    );
}

#[test]
fn in_is_one_of_the_list_unless_ignore_case() {
    let values = ["DE", "FR", "fr", "Fr", "NL", "F", "DEFR", ""];
    assert_eq!(
        matching(r#"{"header": "x-v", "in": ["DE", "FR"]}"#, &values),
        ["DE", "FR"]
    );
    assert_eq!(
        matching(
            r#"{"header": "x-v", "in": ["DE", "fR"], "ignore_case": true}"#,
            &values
        ),
        ["DE", "FR", "fr", "Fr"]
    );
}

#[test]
fn prefix_bounds_and_case() {
    let values = [
        "AcmeShop/4.2",
        "AcmeShop/",
        "acmeshop/4.2",
        "ACMESHOP/",
        "Acme",
        "AcmeShop",
        "xAcmeShop/4.2",
        "xcmeShop/4.2 and more",
        "",
    ];
    assert_eq!(
        matching(r#"{"header": "x-v", "prefix": "AcmeShop/"}"#, &values),
        ["AcmeShop/4.2", "AcmeShop/"]
    );
    assert_eq!(
        matching(
            r#"{"header": "x-v", "prefix": "AcmeShop/", "ignore_case": true}"#,
            &values
        ),
        ["AcmeShop/4.2", "AcmeShop/", "acmeshop/4.2", "ACMESHOP/"]
    );
}

#[test]
fn suffix_bounds_and_case() {
    let values = [
        "ana@shop.example",
        "@shop.example",
        "ana@SHOP.example",
        "@SHOP.EXAMPLE",
        "example",
        "shop.example",
        "ana@shop.example.org",
        "ana@shop.examplf and more text",
        "",
    ];
    assert_eq!(
        matching(r#"{"header": "x-v", "suffix": "@shop.example"}"#, &values),
        ["ana@shop.example", "@shop.example"]
    );
    assert_eq!(
        matching(
            r#"{"header": "x-v", "suffix": "@Shop.Example", "ignore_case": true}"#,
            &values
        ),
        [
            "ana@shop.example",
            "@shop.example",
            "ana@SHOP.example",
            "@SHOP.EXAMPLE"
        ]
    );
}

#[test]
fn contains_anywhere_bounds_and_case() {
    let values = [
        "Googlebot/2.1",
        "bot",
        "a robot",
        "GoogleBOT",
        "Bot",
        "bo",
        "b-o-t",
        "",
    ];
    assert_eq!(
        matching(r#"{"header": "x-v", "contains": "bot"}"#, &values),
        ["Googlebot/2.1", "bot", "a robot"]
    );
    assert_eq!(
        matching(
            r#"{"header": "x-v", "contains": "Bot", "ignore_case": true}"#,
            &values
        ),
        ["Googlebot/2.1", "bot", "a robot", "GoogleBOT", "Bot"]
    );
}

#[test]
fn present_is_about_the_header_not_its_value() {
    let present = r#"{"header": "x-v", "present": true}"#;
    let absent = r#"{"header": "x-v", "present": false}"#;
    assert!(on_header(present, "yes"));
    assert!(on_header(present, ""), "present even if empty");
    assert!(!holds(present, &Req::new()));
    assert!(!on_header(absent, "yes"));
    assert!(!on_header(absent, ""));
    assert!(holds(absent, &Req::new()));
}

#[test]
fn an_absent_subject_fails_every_operator_and_passes_negated() {
    for op in [
        r#""equals": "x""#,
        r#""in": ["x"]"#,
        r#""prefix": "x""#,
        r#""suffix": "x""#,
        r#""contains": "x""#,
        r#""equals": "x", "ignore_case": true"#,
        r#""num_gte": 0"#,
        r#""semver_gte": "0.0.0""#,
        r#""cidr": "0.0.0.0/0""#,
    ] {
        let cond = format!(r#"{{"header": "x-absent", {op}}}"#);
        assert!(!holds(&cond, &Req::new()), "{cond}");
        let negated = format!(r#"{{"header": "x-absent", {op}, "negate": true}}"#);
        assert!(holds(&negated, &Req::new()), "{negated}");
    }
}

#[test]
fn negate_inverts_a_leaf() {
    let cond = r#"{"header": "x-v", "equals": "a", "negate": true}"#;
    assert!(!on_header(cond, "a"));
    assert!(on_header(cond, "b"));
    let not = r#"{"not": {"header": "x-v", "equals": "a"}}"#;
    assert!(!on_header(not, "a"));
    assert!(on_header(not, "b"));
}

#[test]
fn all_and_any_combine() {
    let all = r#"{"all": [{"header": "x-v", "prefix": "a"}, {"header": "x-v", "suffix": "z"}]}"#;
    assert_eq!(matching(all, &["az", "abz", "ab", "bz"]), ["az", "abz"]);
    let any = r#"{"any": [{"header": "x-v", "prefix": "a"}, {"header": "x-v", "suffix": "z"}]}"#;
    assert_eq!(matching(any, &["az", "ab", "bz", "bb"]), ["az", "ab", "bz"]);
}

#[test]
fn number_comparisons_at_their_boundaries() {
    let values = [
        "2", "2.999", "3", "3.0", " 3 ", "3.001", "4", "-3", "inf", "NaN", "three",
    ];
    let at = |op: &str| matching(&format!(r#"{{"header": "x-v", "{op}": 3}}"#), &values);
    assert_eq!(at("num_eq"), ["3", "3.0", " 3 "]);
    assert_eq!(at("num_gt"), ["3.001", "4"]);
    assert_eq!(at("num_gte"), ["3", "3.0", " 3 ", "3.001", "4"]);
    assert_eq!(at("num_lt"), ["2", "2.999", "-3"]);
    assert_eq!(at("num_lte"), ["2", "2.999", "3", "3.0", " 3 ", "-3"]);
    // Infinity compares as a number would (it is greater than 3) but is refused: not finite.
    assert!(!on_header(r#"{"header": "x-v", "num_gt": 3}"#, "inf"));
    assert!(!on_header(r#"{"header": "x-v", "num_gt": 3}"#, "Infinity"));
    assert!(!on_header(r#"{"header": "x-v", "num_lt": 3}"#, "-inf"));
}

#[test]
fn semver_comparisons_at_their_boundaries() {
    let values = [
        "1.9.9",
        "2.0.0-rc.1",
        "2.0.0",
        "2.0.0+build.7",
        " 2.0.0 ",
        "2.0.1",
        "10.0.0",
        "2.0",
        "v2.0.0",
    ];
    let at = |op: &str| matching(&format!(r#"{{"header": "x-v", "{op}": "2.0.0"}}"#), &values);
    assert_eq!(at("semver_eq"), ["2.0.0", "2.0.0+build.7", " 2.0.0 "]);
    assert_eq!(at("semver_gt"), ["2.0.1", "10.0.0"]);
    assert_eq!(
        at("semver_gte"),
        ["2.0.0", "2.0.0+build.7", " 2.0.0 ", "2.0.1", "10.0.0"]
    );
    assert_eq!(at("semver_lt"), ["1.9.9", "2.0.0-rc.1"]);
    assert_eq!(
        at("semver_lte"),
        ["1.9.9", "2.0.0-rc.1", "2.0.0", "2.0.0+build.7", " 2.0.0 "]
    );
}

#[test]
fn cidr_matches_the_source_address() {
    let office = r#"{"attr": "source_address", "cidr": ["10.20.0.0/16", "fd00::/8"]}"#;
    let from = |addr: &str| holds(office, &Req::new().source(addr));
    assert!(from("10.20.3.4:51234"));
    assert!(from("10.20.255.255:1"));
    assert!(from("10.20.3.4"));
    assert!(from("[fd00::1]:443"));
    assert!(!from("10.21.0.1:51234"));
    assert!(!from("10.19.255.255:1"));
    assert!(!from("[fe00::1]:443"));
    assert!(!holds(office, &Req::new()), "no source address");
    // The source address, not a header a client could send.
    assert!(!holds(
        office,
        &Req::new()
            .header("x-forwarded-for", "10.20.3.4")
            .source("192.0.2.1:1")
    ));
    let outside = r#"{"attr": "source_address", "cidr": "10.20.0.0/16", "negate": true}"#;
    assert!(holds(outside, &Req::new().source("192.0.2.1:1")));
    assert!(!holds(outside, &Req::new().source("10.20.0.1:1")));
}

#[test]
fn cidr_on_a_header_value() {
    let values = [
        "10.1.2.3",
        " 10.1.2.3 ",
        "10.1.2.3:8080",
        "::ffff:10.1.2.3",
        "11.0.0.1",
        "10.1.2",
        "not-an-ip",
    ];
    assert_eq!(
        matching(r#"{"header": "x-v", "cidr": "10.0.0.0/8"}"#, &values),
        ["10.1.2.3", " 10.1.2.3 ", "10.1.2.3:8080", "::ffff:10.1.2.3"]
    );
}
