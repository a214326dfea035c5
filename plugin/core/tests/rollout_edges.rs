//! Rollout weights at their edges: a variant at 0% reaches nobody, and a weight of 30% is
//! exactly the 3,000 buckets from 0 (the users on a boundary bucket included).
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, variant, Req};
use sluice_core::bucket::bucket;

/// A user id whose bucket under `salt` is `target`.
fn user_in_bucket(salt: &str, target: u32) -> String {
    (0..1_000_000)
        .map(|i| format!("user-{i}"))
        .find(|u| bucket(salt, u.as_bytes()) == target)
        .unwrap_or_else(|| panic!("no user in bucket {target}"))
}

#[test]
fn a_zero_weight_variant_is_never_served_and_boundaries_belong_to_the_next_variant() {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "flags": {
        "price": {"variants": {"a": 1, "b": 2, "c": 3}, "default": "c", "salt": "pricing",
                  "rules": [{"rollout": {"a": 0, "b": 30, "c": 70}}]}}}"#,
    );
    for (bucket, want) in [(0, "b"), (2999, "b"), (3000, "c"), (9999, "c")] {
        let user = user_in_bucket("pricing", bucket);
        let d = Req::new().user(&user).eval(&p);
        assert_eq!(
            variant(&p, &d, "price"),
            want,
            "{user} (bucket {bucket}): a at 0%, b on buckets 0..3000, c on 3000..10000"
        );
    }
}

#[test]
fn a_ramp_holds_its_end_share_after_it_ends() {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "flags": {
        "ramped": {"schedule": {"ramp": {"start": "2026-12-01T00:00:00Z", "duration": "10h", "from": 10, "to": 50}},
                   "rules": [{"serve": "on"}]}}}"#,
    );
    // The ramp's cohort is bucketed under its own salt, `<flag>.ramp`.
    let at = |user: &str, t: &str| variant(&p, &Req::new().user(user).at(t).eval(&p), "ramped");
    let cases = [
        ("2026-11-30T00:00:00Z", 999, "on"),
        ("2026-11-30T00:00:00Z", 1000, "off"),
        ("2026-12-01T05:00:00Z", 2999, "on"),
        ("2026-12-01T05:00:00Z", 3000, "off"),
        ("2026-12-01T10:00:00Z", 4999, "on"),
        ("2026-12-01T10:00:00Z", 5000, "off"),
        // Long after the end: still 50%, not the line carried on to 90% and beyond.
        ("2026-12-02T00:00:00Z", 4999, "on"),
        ("2026-12-02T00:00:00Z", 5000, "off"),
        ("2027-06-01T00:00:00Z", 5000, "off"),
    ];
    for (t, bucket, want) in cases {
        let user = user_in_bucket("ramped.ramp", bucket);
        assert_eq!(at(&user, t), want, "{user} (ramp bucket {bucket}) at {t}");
    }
}

/// The version the route `r` writes for `user` (`None`: no identity).
fn route_version(p: &sluice_core::plan::Plan, user: Option<&str>) -> Option<String> {
    let mut req = Req::new().set(":authority", "shop");
    if let Some(u) = user {
        req = req.user(u);
    }
    req.headers(p).get("x-route-r").cloned()
}

fn route(strategy: &str) -> sluice_core::plan::Plan {
    plan(&format!(
        r#"{{"version": 1, "identity": {{"user": [{{"header": "x-user-id"}}]}}, "routes": {{
        "r": {{"match": {{"authority": ["shop"]}}, "header": "x-route-r", "salt": "r-salt", {strategy}}}}}}}"#
    ))
}

#[test]
fn a_canary_weight_is_exactly_its_buckets_and_zero_is_nobody() {
    let ten = route(
        r#""versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 10}"#,
    );
    for (bucket, want) in [(0, "v2"), (999, "v2"), (1000, "v1")] {
        let user = user_in_bucket("r-salt", bucket);
        assert_eq!(
            route_version(&ten, Some(&user)).as_deref(),
            Some(want),
            "bucket {bucket}"
        );
    }
    let zero = route(
        r#""versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 0}"#,
    );
    let first = user_in_bucket("r-salt", 0);
    assert_eq!(route_version(&zero, Some(&first)).as_deref(), Some("v1"));
}

#[test]
fn a_blue_green_shift_is_exactly_its_buckets_and_zero_is_all_idle() {
    let shifting = route(
        r#""versions": ["blue", "green"], "blue_green": {"active": "green", "shift": {"weight": 30}}"#,
    );
    for (bucket, want) in [(0, "green"), (2999, "green"), (3000, "blue")] {
        let user = user_in_bucket("r-salt", bucket);
        assert_eq!(
            route_version(&shifting, Some(&user)).as_deref(),
            Some(want),
            "bucket {bucket}"
        );
    }
    let none_yet = route(
        r#""versions": ["blue", "green"], "blue_green": {"active": "green", "shift": {"weight": 0}}"#,
    );
    let first = user_in_bucket("r-salt", 0);
    assert_eq!(
        route_version(&none_yet, Some(&first)).as_deref(),
        Some("blue")
    );
}

#[test]
fn requests_without_identity_go_to_the_stable_or_active_version_wherever_it_is_listed() {
    let canary = route(
        r#""versions": ["v2", "v1"], "canary": {"stable": "v1", "canary": "v2", "weight": 50}"#,
    );
    assert_eq!(route_version(&canary, None).as_deref(), Some("v1"));
    let blue_green = route(r#""versions": ["blue", "green"], "blue_green": {"active": "green"}"#);
    assert_eq!(route_version(&blue_green, None).as_deref(), Some("green"));
}

#[test]
fn a_scheduled_flag_is_on_from_its_instant_on() {
    let p = plan(
        r#"{"version": 1, "flags": {
        "later": {"schedule": {"enable_at": "2027-01-01T00:00:00Z"}, "rules": [{"serve": "on"}]}}}"#,
    );
    let at = |t: &str| variant(&p, &Req::new().at(t).eval(&p), "later").to_string();
    assert_eq!(at("2026-12-31T23:59:59.999Z"), "off");
    assert_eq!(
        at("2027-01-01T00:00:00Z"),
        "on",
        "enable_at is the first instant on"
    );
    assert_eq!(at("2027-01-01T00:00:00.001Z"), "on");
}
