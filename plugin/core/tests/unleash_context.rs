//! How a request becomes Unleash's context and how Unleash's answers are written: identity
//! sources in order (an empty one skipped), names and values made safe for the headers,
//! native flags winning over payload features of the same name, random stickiness.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, Req};

fn config(flags: &str, features: &str) -> String {
    format!(
        r#"{{"version": 1,
        "identity": {{"user": [{{"header": "x-user-id"}}, {{"cookie": "uid"}}]}},
        "flags": {{{flags}}},
        "unleash": {{"payload": {{"version": 2, "features": [{features}]}},
                     "headers": {{"banner": "x-banner"}}}}}}"#
    )
}

const STAFF: &str = r#"{"name": "staff-only", "enabled": true,
    "strategies": [{"name": "userWithId", "parameters": {"userIds": "u-1"}}]}"#;

#[test]
fn an_empty_user_header_falls_through_to_the_next_identity_source() {
    let p = plan(&config("", STAFF));
    let h = Req::new().user("").header("cookie", "uid=u-1").headers(&p);
    assert_eq!(
        h["x-sluice-flags"], "staff-only=on",
        "an empty x-user-id is no identity: the cookie's u-1 is the user"
    );
    let h = Req::new().user("").headers(&p);
    assert_eq!(h["x-sluice-flags"], "staff-only=off");
}

#[test]
fn a_payload_value_with_control_characters_is_not_written_the_variant_is() {
    let banner = |value: &str| {
        format!(
            r#"{{"name": "banner", "enabled": true, "strategies": [{{"name": "default"}}],
            "variants": [{{"name": "blue", "weight": 1000, "weightType": "variable",
                          "stickiness": "default", "payload": {{"type": "string", "value": "{value}"}}}}]}}"#
        )
    };
    let p = plan(&config("", &banner(r"#00f\r\nx-admin: 1")));
    let h = Req::new().headers(&p);
    assert_eq!(
        h["x-banner"], "blue",
        "a payload that would split the header falls back to the variant name"
    );
    let p = plan(&config("", &banner("#00f")));
    assert_eq!(Req::new().headers(&p)["x-banner"], "#00f");
}

#[test]
fn feature_and_variant_names_that_could_break_the_flags_header_are_made_safe() {
    let features = r#"
      {"name": "bad name", "enabled": true, "strategies": [{"name": "default"}]},
      {"name": "a;b=c", "enabled": true, "strategies": [{"name": "default"}]},
      {"name": "theme.v2", "enabled": true, "strategies": [{"name": "default"}],
       "variants": [{"name": "dark blue;x=1", "weight": 1000, "weightType": "variable", "stickiness": "default"}]},
      {"name": "ok_name-1", "enabled": true, "strategies": [{"name": "default"}]}"#;
    let p = plan(&config("", features));
    let h = Req::new().headers(&p);
    assert_eq!(
        h["x-sluice-flags"], "ok_name-1=on;theme.v2=dark_blue_x_1",
        "features named outside [A-Za-z0-9_.-] are left out; variant names have such characters replaced by _"
    );
}

#[test]
fn a_native_flag_wins_over_a_payload_feature_of_the_same_name() {
    let features = r#"
      {"name": "checkout", "enabled": true, "strategies": [{"name": "default"}]},
      {"name": "banner", "enabled": true, "strategies": [{"name": "default"}]}"#;
    let p = plan(&config(
        r#""checkout": {"variants": {"on": true, "off": false}, "default": "off"}"#,
        features,
    ));
    let h = Req::new().headers(&p);
    assert_eq!(
        h["x-sluice-flags"], "checkout=off;banner=on",
        "Unleash's checkout is not written beside the native one"
    );
}

/// `n` requests with spread-out entropy (the filter draws it per request).
fn requests(n: u64) -> impl Iterator<Item = Req> {
    (0..n).map(|i| Req::new().entropy(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 7)))
}

#[test]
fn random_stickiness_serves_the_rollout_share_independently_per_feature() {
    let rollout = |name: &str, percent: u32| {
        format!(
            r#"{{"name": "{name}", "enabled": true, "strategies": [{{"name": "flexibleRollout",
               "parameters": {{"rollout": "{percent}", "stickiness": "random", "groupId": "{name}"}}}}]}}"#
        )
    };
    let features = [
        rollout("a", 50),
        rollout("b", 50),
        rollout("c", 10),
        rollout("d", 90),
    ]
    .join(",");
    let p = plan(&config("", &features));
    let n = 4000u64;
    let mut on = [0u64; 4];
    let mut both_ab = 0u64;
    for req in requests(n) {
        let flags = req.headers(&p)["x-sluice-flags"].clone();
        let get = |name: &str| flags.contains(&format!("{name}=on"));
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            on[i] += u64::from(get(name));
        }
        both_ab += u64::from(get("a") && get("b"));
    }
    let share = |count: u64| count as f64 / n as f64;
    for (i, want) in [0.5, 0.5, 0.1, 0.9].iter().enumerate() {
        assert!(
            (share(on[i]) - want).abs() < 0.03,
            "feature {i}: {} of requests on, rollout {want}",
            share(on[i])
        );
    }
    assert!(
        (share(both_ab) - 0.25).abs() < 0.03,
        "two 50% features draw apart: both on for {} of requests, not ~0.25",
        share(both_ab)
    );
}
