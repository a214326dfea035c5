//! Version routing: sticky canaries with time steps, blue-green, A/B splits,
//! pins, tester overrides, sticky cookies, spoof-proof headers.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, secret_hash, version, Req};
use sluice_core::decision::{OverrideStatus, Reason};

fn routes_config() -> String {
    r#"{
  "version": 1,
  "identity": {"user": [{"header": "x-user-id"}], "session": [{"cookie": "sid"}]},
  "segments": {"beta": {"header": "x-beta", "equals": "1"}},
  "routes": {
    "reviews": {
      "match": {"authority": ["reviews", "*.reviews.svc"], "path_prefix": "/reviews"},
      "header": "x-route-reviews",
      "versions": ["v1", "v2"],
      "canary": {"stable": "v1", "canary": "v2", "weight": 1, "start": "2026-12-01T00:00:00Z",
                 "steps": [{"after": "10m", "weight": 5}, {"after": "30m", "weight": 25}, {"after": "1h", "weight": 100}]},
      "pins": [{"when": {"segment": "beta"}, "version": "v2"},
               {"when": {"attr": "source_address", "cidr": "192.168.0.0/16"}, "version": "v1"}]
    },
    "ratings": {
      "match": {"authority": ["ratings"]},
      "header": "x-route-ratings",
      "versions": ["blue", "green"],
      "blue_green": {"active": "ACTIVE", "preview": {"header": "x-preview", "equals": "1"}}
    },
    "search": {
      "match": {"authority": ["search"]},
      "header": "x-route-search",
      "versions": ["a", "b", "c"],
      "split": {"a": 50, "b": 30, "c": 20}
    },
    "cart": {
      "match": {"authority": ["cart"]},
      "header": "x-route-cart",
      "versions": ["v1", "v2"],
      "canary": {"stable": "v1", "canary": "v2", "weight": 10},
      "sticky_cookie": {"name": "sluice-cart", "max_age": "1d", "same_site": "Lax", "secure": true}
    },
    "flat": {
      "match": {"authority": ["flat"]},
      "header": "x-route-flat",
      "versions": ["v1", "v2"],
      "canary": {"stable": "v1", "canary": "v2", "weight": 10}
    }
  },
  "overrides": {"secret_sha256": "SECRET", "allow_sources": ["10.99.0.0/16"], "debug_header": "x-sluice-debug"}
}"#
    .replace("SECRET", &secret_hash())
}

fn config_with_active(color: &str) -> sluice_core::plan::Plan {
    plan(&routes_config().replace("ACTIVE", color))
}

fn to(host: &str, user: &str) -> Req {
    Req::new()
        .set(":authority", host)
        .set(":path", "/reviews/1")
        .user(user)
}

#[test]
fn a_10_percent_canary_sends_10_percent_of_users_and_they_stay() {
    let p = config_with_active("blue");
    let mut on_canary = 0;
    for i in 0..100_000 {
        let req = to("flat", &format!("user-{i}"));
        let v = version(&p, &req.eval(&p), "flat").unwrap();
        on_canary += (v == "v2") as usize;
        if i % 10 == 0 {
            for _ in 0..3 {
                assert_eq!(
                    version(&p, &req.eval(&p), "flat"),
                    Some(v),
                    "user-{i} flipped"
                );
            }
        }
    }
    let share = on_canary as f64 / 1000.0;
    println!("10% canary: {share:.2}% of 100k users on v2");
    assert!(
        (share - 10.0).abs() <= 1.0,
        "canary got {share:.2}% of 100k users, expected 10 ± 1"
    );
}

#[test]
fn canary_steps_follow_the_clock_and_only_move_users_forward() {
    let p = config_with_active("blue");
    let checkpoints = [
        ("2026-11-30T23:00:00Z", 1.0),
        ("2026-12-01T00:05:00Z", 1.0),
        ("2026-12-01T00:10:00Z", 5.0),
        ("2026-12-01T00:45:00Z", 25.0),
        ("2026-12-01T01:00:00Z", 100.0),
    ];
    let users: Vec<String> = (0..20_000).map(|i| format!("u{i}")).collect();
    let mut on = vec![false; users.len()];
    for (at, want) in checkpoints {
        let mut count = 0;
        for (i, u) in users.iter().enumerate() {
            let now = to("reviews", u).at(at).eval(&p);
            let is_canary = version(&p, &now, "reviews") == Some("v2");
            assert!(!on[i] || is_canary, "{u} moved back to stable at {at}");
            on[i] = is_canary;
            count += is_canary as usize;
        }
        let share = count as f64 / users.len() as f64 * 100.0;
        assert!(
            (share - want).abs() < 1.0,
            "at {at}: {share:.2}% on canary, expected {want}%"
        );
    }
}

#[test]
fn pins_win_before_weights() {
    let p = config_with_active("blue");
    let late = "2026-12-01T02:00:00Z"; // 100% canary by now
    let beta = to("reviews", "u1")
        .header("x-beta", "1")
        .at("2026-11-01T00:00:00Z")
        .eval(&p);
    assert_eq!(version(&p, &beta, "reviews"), Some("v2"));
    assert_eq!(beta.routes[0].reason, Reason::Pinned(0));
    let lab = to("reviews", "u1")
        .source("192.168.4.4:1000")
        .at(late)
        .eval(&p);
    assert_eq!(
        version(&p, &lab, "reviews"),
        Some("v1"),
        "source-range pin beats the 100% canary"
    );
    let both = to("reviews", "u1")
        .header("x-beta", "1")
        .source("192.168.4.4:1000")
        .at(late)
        .eval(&p);
    assert_eq!(
        version(&p, &both, "reviews"),
        Some("v2"),
        "first matching pin wins"
    );
}

#[test]
fn routes_match_by_authority_and_path() {
    let p = config_with_active("blue");
    assert!(
        version(&p, &to("reviews:9080", "u").eval(&p), "reviews").is_some(),
        "port ignored"
    );
    assert!(
        version(&p, &to("x.reviews.svc", "u").eval(&p), "reviews").is_some(),
        "wildcard"
    );
    assert!(
        version(&p, &to("REVIEWS", "u").eval(&p), "reviews").is_some(),
        "case-insensitive"
    );
    assert!(version(
        &p,
        &to("reviews", "u").set(":path", "/other").eval(&p),
        "reviews"
    )
    .is_none());
    assert!(
        version(&p, &to("reviews.svc", "u").eval(&p), "reviews").is_none(),
        "wildcard needs a subdomain"
    );
    let headers = to("search", "u").headers(&p);
    assert!(headers.contains_key("x-route-search") && !headers.contains_key("x-route-reviews"));
}

#[test]
fn overrides_need_the_secret_or_an_allowed_source() {
    let p = config_with_active("blue");
    let ask = |req: Req| {
        req.header("x-sluice-override", "reviews=v2; flat=v2")
            .at("2026-11-01T00:00:00Z")
    };
    let none = ask(to("reviews", "u1")).eval(&p);
    assert_eq!(none.overrides, OverrideStatus::Refused);
    assert_eq!(version(&p, &none, "reviews"), Some("v1"));
    let wrong = ask(to("reviews", "u1").header("x-sluice-secret", "let-me-guess")).eval(&p);
    assert_eq!(wrong.overrides, OverrideStatus::Refused);
    let secret = ask(to("reviews", "u1").header("x-sluice-secret", "let-me-test")).eval(&p);
    assert_eq!(secret.overrides, OverrideStatus::Honoured);
    assert_eq!(version(&p, &secret, "reviews"), Some("v2"));
    assert_eq!(secret.routes[0].reason, Reason::Override);
    let office = ask(to("reviews", "u1").source("10.99.1.2:3333")).eval(&p);
    assert_eq!(version(&p, &office, "reviews"), Some("v2"));
    let unknown_version = to("reviews", "u1")
        .header("x-sluice-override", "reviews=v9")
        .source("10.99.1.2:1")
        .at("2026-11-01T00:00:00Z")
        .eval(&p);
    assert_eq!(
        version(&p, &unknown_version, "reviews"),
        Some("v1"),
        "an unknown version is ignored"
    );
}

#[test]
fn the_debug_header_is_only_for_testers() {
    let p = config_with_active("blue");
    let tester = to("reviews", "u1")
        .header("x-sluice-secret", "let-me-test")
        .eval(&p);
    assert!(tester.tester);
    assert!(
        tester.explain(&p).starts_with("reviews=v1(weight)"),
        "{}",
        tester.explain(&p)
    );
    assert!(!to("reviews", "u1").eval(&p).tester);
    assert!(
        !to("reviews", "u1")
            .header("x-sluice-secret", "nope")
            .eval(&p)
            .tester
    );
}

#[test]
fn blue_green_switches_by_config_and_previews_the_idle_color() {
    let blue = config_with_active("blue");
    let green = config_with_active("green");
    for i in 0..500 {
        let u = format!("u{i}");
        assert_eq!(
            version(&blue, &to("ratings", &u).eval(&blue), "ratings"),
            Some("blue")
        );
        assert_eq!(
            version(&green, &to("ratings", &u).eval(&green), "ratings"),
            Some("green")
        );
    }
    let preview = to("ratings", "u1").header("x-preview", "1");
    assert_eq!(
        version(&blue, &preview.eval(&blue), "ratings"),
        Some("green")
    );
    assert_eq!(
        version(&green, &preview.eval(&green), "ratings"),
        Some("blue")
    );
}

#[test]
fn a_three_way_split_is_sticky_and_weighted() {
    let p = config_with_active("blue");
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..30_000 {
        let v = version(&p, &to("search", &format!("s{i}")).eval(&p), "search").unwrap();
        *counts.entry(v).or_insert(0usize) += 1;
    }
    for (v, want) in [("a", 50.0), ("b", 30.0), ("c", 20.0)] {
        let share = counts[v] as f64 / 300.0;
        assert!(
            (share - want).abs() < 1.5,
            "{v}: {share:.2}% (counts {counts:?})"
        );
    }
}

#[test]
fn growing_one_split_version_only_moves_users_into_it() {
    let before = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "routes": {"s": {"header": "x-route-s", "versions": ["a", "b", "c"], "split": {"a": 50, "b": 30, "c": 20}}}}"#,
    );
    let after = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "routes": {"s": {"header": "x-route-s", "versions": ["a", "b", "c"], "split": {"a": 40, "b": 35, "c": 25}}}}"#,
    );
    // b and c grow, a shrinks: nobody leaves c (the last), nobody enters a.
    for i in 0..20_000 {
        let u = format!("m{i}");
        let v0 = version(&before, &Req::new().user(&u).eval(&before), "s").unwrap();
        let v1 = version(&after, &Req::new().user(&u).eval(&after), "s").unwrap();
        assert!(!(v0 == "c" && v1 != "c"), "{u} left c");
        assert!(!(v0 != "a" && v1 == "a"), "{u} moved into the shrinking a");
    }
}

#[test]
fn a_sticky_cookie_is_set_once_and_then_honoured() {
    let p = config_with_active("blue");
    let anonymous = Req::new().set(":authority", "cart");
    let first = anonymous.entropy(12345).eval(&p);
    let cookies = first.set_cookies(&p);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    assert!(cookie.starts_with("sluice-cart="), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/; Max-Age=86400; SameSite=Lax; Secure; HttpOnly"),
        "{cookie}"
    );
    let value = cookie.split(';').next().unwrap();
    let chosen = version(&p, &first, "cart").unwrap();
    for e in 0..50 {
        let next = Req::new()
            .set(":authority", "cart")
            .header("cookie", value)
            .entropy(e)
            .eval(&p);
        assert_eq!(version(&p, &next, "cart"), Some(chosen));
        assert!(
            next.set_cookies(&p).is_empty(),
            "cookie re-set on a request that carried it"
        );
    }
    // Across many anonymous users the cookie cohort follows the weight.
    let canary = (0..10_000u64)
        .filter(|e| {
            version(
                &p,
                &Req::new()
                    .set(":authority", "cart")
                    .entropy(e * 2654435761)
                    .eval(&p),
                "cart",
            ) == Some("v2")
        })
        .count();
    assert!(
        (canary as f64 / 100.0 - 10.0).abs() < 1.5,
        "{canary} of 10000 cookie users on canary"
    );
    // Users with an identity get no cookie.
    assert!(Req::new()
        .set(":authority", "cart")
        .user("u1")
        .eval(&p)
        .set_cookies(&p)
        .is_empty());
}

#[test]
fn without_identity_and_without_cookie_everyone_gets_stable() {
    let p = config_with_active("blue");
    for e in 0..200 {
        let d = Req::new().set(":authority", "flat").entropy(e).eval(&p);
        assert_eq!(version(&p, &d, "flat"), Some("v1"));
        assert_eq!(d.routes[0].reason, Reason::NoIdentity);
    }
}

#[test]
fn a_client_cannot_choose_its_version_by_sending_the_route_header() {
    let p = config_with_active("blue");
    let stable_user = (0..100)
        .map(|i| format!("x{i}"))
        .find(|u| version(&p, &to("flat", u).eval(&p), "flat") == Some("v1"))
        .unwrap();
    let spoof = to("flat", &stable_user).header("x-route-flat", "v2");
    assert_eq!(spoof.headers(&p)["x-route-flat"], "v1");
    assert!(p.owned_headers.contains(&"x-route-flat".to_string()));
    assert!(
        p.owned_headers.contains(&"x-sluice-secret".to_string()),
        "the tester secret is never forwarded"
    );
}
