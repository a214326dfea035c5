//! Unleash activation strategies at their edges: host names compared without case (beyond
//! ASCII too), remote addresses by text or network, percentages at 0, 100 and out of range.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_unleash::{Context, Engine, Payload};
use std::cell::Cell;

/// One feature with one strategy `name` and the given parameters.
fn engine(name: &str, parameters: &[(&str, &str)]) -> Engine {
    let params: Vec<String> = parameters
        .iter()
        .map(|(k, v)| format!("{k:?}:{v:?}"))
        .collect();
    let json = format!(
        r#"{{"version":2,"features":[{{"name":"f","enabled":true,
            "strategies":[{{"name":"{name}","parameters":{{{}}}}}]}}]}}"#,
        params.join(",")
    );
    match Payload::from_json(&json) {
        Ok(payload) => Engine::new(payload),
        Err(err) => panic!("payload rejected: {err}: {json}"),
    }
}

#[test]
fn application_hostname_ignores_case_and_spaces() {
    let e = engine("applicationHostname", &[("hostNames", "Web-01, bücher-01")]);
    let on = |host: &str| e.is_enabled("f", &Context::new().hostname(host));
    assert!(on("web-01"));
    assert!(on("WEB-01"));
    assert!(on(" web-01 "), "the host name is trimmed");
    assert!(
        on("BÜCHER-01"),
        "non-ASCII host names compare without case too"
    );
    assert!(on("bücher-01"));
    assert!(!on("bücher-02"));
    assert!(!on("web-02"));
    assert!(!e.is_enabled("f", &Context::new()), "no host name");
}

#[test]
fn remote_address_by_text_or_by_network() {
    let e = engine(
        "remoteAddress",
        &[("IPs", "10.0.0.0/8, 192.168.1.7, 2001:db8::/32, gateway")],
    );
    let on = |addr: &str| e.is_enabled("f", &Context::new().remote_address(addr));
    assert!(on("10.20.30.40"), "inside a network");
    assert!(on("10.20.30.40:51000"), "Envoy's ip:port form");
    assert!(on("192.168.1.7"), "one address");
    assert!(on("[2001:db8::1]:443"));
    assert!(
        on("gateway"),
        "an entry that is no address matches its exact text"
    );
    assert!(!on("11.0.0.1"));
    assert!(!on("192.168.1.8"));
    assert!(!on("Gateway"));
    assert!(!e.is_enabled("f", &Context::new()), "no address");
}

#[test]
fn rollout_percentages_at_their_edges() {
    let users: Vec<String> = (0..500).map(|i| format!("user-{i}")).collect();
    let share = |e: &Engine| {
        users
            .iter()
            .filter(|u| e.is_enabled("f", &Context::new().user_id(u)))
            .count()
    };
    let flexible = |rollout: &str| {
        engine(
            "flexibleRollout",
            &[
                ("rollout", rollout),
                ("stickiness", "userId"),
                ("groupId", "g"),
            ],
        )
    };
    assert_eq!(share(&flexible("0")), 0, "0% is nobody");
    assert_eq!(share(&flexible("100")), users.len(), "100% is everybody");
    assert!((200..300).contains(&share(&flexible("50"))), "50%");
    // Out of range: a warning, and never on (not clamped to 100).
    for bad in ["150", "-1", "half"] {
        let e = flexible(bad);
        assert_eq!(share(&e), 0, "rollout {bad:?}");
        assert!(
            e.warnings()
                .iter()
                .any(|w| w.message.contains("percentage")),
            "rollout {bad:?}: no warning in {:?}",
            e.warnings().iter().map(|w| &w.message).collect::<Vec<_>>()
        );
    }
    let by_user = |p: &str| {
        engine(
            "gradualRolloutUserId",
            &[("percentage", p), ("groupId", "g")],
        )
    };
    assert_eq!(share(&by_user("0")), 0);
    assert_eq!(share(&by_user("100")), users.len());
}

#[test]
fn random_rollout_at_0_and_100_percent() {
    // Draws across the whole u32 range: 0% never and 100% always, whatever the draw.
    let draw = Cell::new(0u32);
    let roll = || {
        draw.set(draw.get().wrapping_add(0x0123_4567));
        draw.get()
    };
    let count = |p: &str| {
        let e = engine("gradualRolloutRandom", &[("percentage", p)]);
        (0..1_000)
            .filter(|_| e.is_enabled("f", &Context::new().random(&roll)))
            .count()
    };
    assert_eq!(count("0"), 0);
    assert_eq!(count("100"), 1_000);
    assert!((400..600).contains(&count("50")), "50%: {}", count("50"));
    assert_eq!(count("101"), 0, "out of range: never on");
}
