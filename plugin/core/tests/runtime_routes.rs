//! Route decisions at their edges: a release's share is exact to the bucket (0% has nobody,
//! 0.01% exactly one bucket), and a version that requires another route's version is served only
//! to users who have that version.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, version, Req};
use sluice_core::bucket::bucket;
use sluice_core::decision::Reason;

fn release(weight: &str) -> sluice_core::plan::Plan {
    plan(&format!(
        r#"{{"version": 1, "identity": {{"user": [{{"header": "x-user"}}]}},
  "routes": {{"web": {{"header": "x-route-web", "versions": ["v1", "v2"],
                      "canary": {{"stable": "v1", "canary": "v2", "weight": 0}}}}}},
  "releases": {{"launch": {{"routes": {{"web": "v2"}}, "weight": {weight}}}}}}}"#
    ))
}

/// A user whose bucket under the release's salt is `want`.
fn user_in_bucket(want: u32) -> String {
    (0..1_000_000)
        .map(|i| format!("user-{i}"))
        .find(|u| bucket("launch", u.as_bytes()) == want)
        .expect("some user lands in every bucket")
}

#[test]
fn a_release_share_is_exact_to_the_bucket() {
    let (first, second) = (user_in_bucket(0), user_in_bucket(1));
    let web = |p: &sluice_core::plan::Plan, user: &str| {
        let d = Req::new().header("x-user", user).eval(p);
        version(p, &d, "web").unwrap().to_string()
    };
    let nobody = release("0");
    assert_eq!(web(&nobody, &first), "v1", "0%: not even bucket 0");
    let one = release("0.01");
    assert_eq!(web(&one, &first), "v2", "0.01%: bucket 0 is in");
    assert_eq!(web(&one, &second), "v1", "0.01%: bucket 1 is not");
}

#[test]
fn a_version_requiring_another_routes_version_goes_only_to_its_users() {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
  "routes": {
    "web": {"match": {"authority": ["web"]}, "header": "x-route-web", "versions": ["v1", "v2"],
            "canary": {"stable": "v1", "canary": "v2", "weight": 50},
            "requires": {"v2": [{"route": "api", "version": "v2"}]}},
    "api": {"match": {"authority": ["api"]}, "header": "x-route-api", "versions": ["v1", "v2"],
            "canary": {"stable": "v1", "canary": "v2", "weight": 50}}}}"#,
    );
    let web_index = p.routes.iter().position(|r| r.name == "web").unwrap();
    let (mut both, mut held_back, mut api_only) = (0, 0, 0);
    for i in 0..400 {
        let user = format!("user-{i}");
        let to = |host: &str| {
            Req::new()
                .set(":authority", host)
                .header("x-user", &user)
                .eval(&p)
        };
        let web = to("web");
        let api = to("api");
        let (w, a) = (
            version(&p, &web, "web").unwrap(),
            version(&p, &api, "api").unwrap(),
        );
        let reason = web
            .routes
            .iter()
            .find(|r| r.route == web_index)
            .unwrap()
            .reason;
        match (w, a) {
            ("v2", "v2") => both += 1,
            ("v2", _) => panic!("{user} got web v2 without api v2"),
            ("v1", "v2") => api_only += 1,
            ("v1", "v1") if reason == Reason::Requires => held_back += 1,
            _ => {}
        }
    }
    // Independent 50% canaries: about a quarter each.
    assert!(both > 50 && api_only > 50, "{both} {api_only}");
    assert!(
        held_back > 50,
        "{held_back} users held back on web v1 by the requirement"
    );
}

#[test]
fn chained_requirements_settle_whatever_their_length() {
    // front v2 needs cart v2, which needs pay v2: a user on pay v1 gets neither, which takes
    // two rounds (cart falls back first, then front sees it).
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
  "routes": {
    "front": {"match": {"authority": ["front"]}, "header": "x-route-front", "versions": ["v1", "v2"],
              "canary": {"stable": "v1", "canary": "v2", "weight": 100},
              "requires": {"v2": [{"route": "cart", "version": "v2"}]}},
    "cart": {"match": {"authority": ["cart"]}, "header": "x-route-cart", "versions": ["v1", "v2"],
             "canary": {"stable": "v1", "canary": "v2", "weight": 100},
             "requires": {"v2": [{"route": "pay", "version": "v2"}]}},
    "pay": {"match": {"authority": ["pay"]}, "header": "x-route-pay", "versions": ["v1", "v2"],
            "canary": {"stable": "v1", "canary": "v2", "weight": 50}}}}"#,
    );
    let mut held = 0;
    for i in 0..200 {
        let user = format!("user-{i}");
        let to = |host: &str| {
            let d = Req::new()
                .set(":authority", host)
                .header("x-user", &user)
                .eval(&p);
            version(&p, &d, host).unwrap().to_string()
        };
        let (front, cart, pay) = (to("front"), to("cart"), to("pay"));
        assert_eq!(front, cart, "{user}: front {front}, cart {cart}");
        assert_eq!(cart, pay, "{user}: cart {cart}, pay {pay}");
        held += usize::from(pay == "v1");
    }
    assert!(held > 50, "{held} users on pay v1");
}
