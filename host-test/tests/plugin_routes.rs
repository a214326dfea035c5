//! Progressive routing through the real module, as Envoy would run it: sticky
//! canary split, pins before weights, blue-green switch and preview, sticky
//! cookies, overrides, spoofed route headers.
mod common;

use sluice_wasm_host::{Host, Outcome};
use std::time::Duration;

const SECRET: &str = "let-me-test";
/// `printf %s let-me-test | sha256sum`
const SECRET_SHA256: &str = "76181a4db30da7e8308ba4c349de2a2fb5edc04e803ac248b480abfca3d12341";

fn config(active: &str) -> String {
    format!(
        r#"{{
  "version": 1,
  "revision": "routes-{active}",
  "identity": {{ "user": [{{ "header": "x-user-id" }}] }},
  "segments": {{ "beta": {{ "header": "x-beta", "equals": "1" }} }},
  "routes": {{
    "reviews": {{
      "match": {{ "authority": ["reviews"] }},
      "header": "x-route-reviews",
      "versions": ["v1", "v2"],
      "canary": {{ "stable": "v1", "canary": "v2", "weight": 10 }},
      "pins": [{{ "when": {{ "segment": "beta" }}, "version": "v2" }},
               {{ "when": {{ "attr": "source_address", "cidr": "192.168.0.0/16" }}, "version": "v1" }}]
    }},
    "ratings": {{
      "match": {{ "authority": ["ratings"] }},
      "header": "x-route-ratings",
      "versions": ["blue", "green"],
      "blue_green": {{ "active": "{active}", "preview": {{ "header": "x-preview", "equals": "1" }} }}
    }},
    "cart": {{
      "match": {{ "authority": ["cart"] }},
      "header": "x-route-cart",
      "versions": ["v1", "v2"],
      "canary": {{ "stable": "v1", "canary": "v2", "weight": 50 }},
      "sticky_cookie": {{ "name": "sluice-cart", "max_age": "1h", "same_site": "Lax" }}
    }}
  }},
  "overrides": {{ "secret_sha256": "{SECRET_SHA256}", "debug_header": "x-sluice-debug" }}
}}"#
    )
}

fn host(active: &str) -> Host {
    common::plugin("sluice.wasm")
        .host()
        .plugin_config(config(active))
        .workers(2)
        .build()
        .expect("sluice loads")
}

/// A user's request to one service.
fn visit(host: &mut Host, authority: &str, user: impl AsRef<[u8]>) -> Outcome {
    host.request()
        .authority(authority)
        .header("x-user-id", user)
        .send()
        .unwrap()
}

fn route(out: &Outcome, header: &str) -> String {
    out.request_header(header)
        .unwrap_or_else(|| panic!("{header} not written: {:?}", out.request_changes()))
}

#[test]
fn a_10_percent_canary_takes_10_percent_of_100k_users_and_they_stay() {
    let mut host = host("blue");
    let mut canary = 0usize;
    let mut first = Vec::with_capacity(100_000);
    for user in 0..100_000u32 {
        let out = visit(&mut host, "reviews", user.to_string());
        let version = route(&out, "x-route-reviews");
        canary += usize::from(version == "v2");
        first.push(version == "v2");
    }
    let share = canary as f64 / 1000.0;
    println!("canary share over 100k users: {share:.2}%");
    assert!(
        (share - 10.0).abs() <= 1.0,
        "{share:.2}% on the canary, expected 10 ± 1"
    );
    // Every user sticks: again on the other worker, and again later.
    for user in (0..100_000u32).step_by(97) {
        for worker in 0..2 {
            let out = host
                .request_on(worker)
                .authority("reviews")
                .header("x-user-id", user.to_string())
                .send()
                .unwrap();
            assert_eq!(
                route(&out, "x-route-reviews") == "v2",
                first[user as usize],
                "user {user} moved"
            );
        }
    }
}

#[test]
fn pins_come_before_weights_and_overrides_need_the_secret() {
    let mut host = host("blue");
    let stable_user = (0..200)
        .map(|u| u.to_string())
        .find(|u| route(&visit(&mut host, "reviews", u), "x-route-reviews") == "v1")
        .unwrap();
    let pinned = host
        .request()
        .authority("reviews")
        .header("x-user-id", &stable_user)
        .header("x-beta", "1")
        .send()
        .unwrap();
    assert_eq!(route(&pinned, "x-route-reviews"), "v2");
    let lab = host
        .request()
        .authority("reviews")
        .header("x-user-id", &stable_user)
        .source("192.168.7.7:1234")
        .header("x-beta", "0")
        .send()
        .unwrap();
    assert_eq!(route(&lab, "x-route-reviews"), "v1");

    let asked = |host: &mut Host, secret: Option<&str>| {
        let mut req = host
            .request()
            .authority("reviews")
            .header("x-user-id", &stable_user)
            .header("x-sluice-override", "reviews=v2");
        if let Some(s) = secret {
            req = req.header("x-sluice-secret", s);
        }
        req.send().unwrap()
    };
    let refused = asked(&mut host, None);
    assert_eq!(route(&refused, "x-route-reviews"), "v1");
    assert_eq!(
        refused.metric_delta("sluice.overrides.refused"),
        0,
        "counted on the next tick, not per request"
    );
    let honoured = asked(&mut host, Some(SECRET));
    assert_eq!(route(&honoured, "x-route-reviews"), "v2");
    assert!(
        honoured.request_header("x-sluice-secret").is_none(),
        "the secret is not forwarded"
    );
    assert_eq!(
        honoured.response_header("x-sluice-debug").as_deref(),
        Some("rev=routes-blue; reviews=v2(override)")
    );
    assert!(refused.response_header("x-sluice-debug").is_none());
    host.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(
        host.metric("sluice.overrides.refused").map(|m| m.value()),
        Some(1)
    );
    assert_eq!(
        host.metric("sluice.overrides.honoured").map(|m| m.value()),
        Some(1)
    );
}

#[test]
fn blue_green_switches_with_the_config_and_preview_reaches_the_idle_color() {
    let mut host = host("blue");
    for user in 0..200 {
        let out = visit(&mut host, "ratings", user.to_string());
        assert_eq!(route(&out, "x-route-ratings"), "blue");
    }
    let preview = host
        .request()
        .authority("ratings")
        .header("x-user-id", "1")
        .header("x-preview", "1")
        .send()
        .unwrap();
    assert_eq!(route(&preview, "x-route-ratings"), "green");
    let accepted = host.reconfigure(config("green")).unwrap();
    assert!(
        accepted.iter().all(|ok| *ok),
        "every worker takes the switch"
    );
    for user in 0..200 {
        let out = visit(&mut host, "ratings", user.to_string());
        assert_eq!(route(&out, "x-route-ratings"), "green");
    }
    let preview = host
        .request()
        .authority("ratings")
        .header("x-preview", "1")
        .send()
        .unwrap();
    assert_eq!(route(&preview, "x-route-ratings"), "blue");
}

#[test]
fn a_sticky_cookie_is_set_once_and_honoured_after() {
    let mut host = host("blue");
    let first = host.request().authority("cart").send().unwrap();
    let set_cookie = first
        .response_header("set-cookie")
        .expect("anonymous user gets a cookie");
    assert!(set_cookie.starts_with("sluice-cart="), "{set_cookie}");
    assert!(
        set_cookie.ends_with("; Path=/; Max-Age=3600; SameSite=Lax; HttpOnly"),
        "{set_cookie}"
    );
    let chosen = route(&first, "x-route-cart");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    for worker in [0, 1, 0, 1] {
        let next = host
            .request_on(worker)
            .authority("cart")
            .header("cookie", &cookie)
            .send()
            .unwrap();
        assert_eq!(route(&next, "x-route-cart"), chosen);
        assert!(
            next.response_header("set-cookie").is_none(),
            "set only once"
        );
    }
    // Anonymous users spread by the weight through their cookies.
    let on_canary = (0..2000)
        .filter(|_| {
            route(
                &host.request().authority("cart").send().unwrap(),
                "x-route-cart",
            ) == "v2"
        })
        .count();
    assert!(
        (800..1200).contains(&on_canary),
        "{on_canary} of 2000 cookie users on a 50% canary"
    );
}

#[test]
fn a_client_cannot_pick_its_version_by_sending_route_headers() {
    let mut host = host("blue");
    for user in 0..500 {
        let honest = visit(&mut host, "reviews", user.to_string());
        let spoofed = host
            .request()
            .authority("reviews")
            .header("x-user-id", user.to_string())
            .header("x-route-reviews", "v2")
            .header("x-route-reviews", "v9")
            .header("x-route-ratings", "green")
            .send()
            .unwrap();
        assert_eq!(
            route(&spoofed, "x-route-reviews"),
            route(&honest, "x-route-reviews")
        );
        assert_eq!(spoofed.sent_headers.get_all("x-route-reviews").len(), 2);
        assert_eq!(
            spoofed.request_headers.get_all("x-route-reviews").len(),
            1,
            "exactly one route header reaches the upstream"
        );
        assert!(
            spoofed.request_header("x-route-ratings").is_none(),
            "a route that did not match leaves no header"
        );
    }
}
