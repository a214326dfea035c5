//! The Sluice filter (build/sluice.wasm) through the host, as Envoy runs it:
//! headers written, spoofed copies stripped, the route cache cleared, bad
//! config rejected with its reason logged, no trap on hostile input, and the
//! same decisions on every worker and as the native engine.
mod common;

use sluice_wasm_host::{ConfigRejected, Host, HostBuilder, LogLevel, Outcome};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// sha256("letmein").
const SECRET_SHA256: &str = "1c8bfe8f801d79745c4631d09fff36c82aa37fc4cce4fc946683d7b336b63032";

fn config() -> String {
    format!(
        r#"{{
  "version": 1,
  "revision": "host-test-1",
  "identity": {{ "user": [{{ "header": "x-user-id" }}, {{ "cookie": "uid" }}] }},
  "flags": {{
    "checkout": {{ "rules": [{{ "rollout": {{ "on": 50, "off": 50 }} }}], "header": "x-feature-checkout" }},
    "search": {{ "rules": [{{ "when": {{ "header": "x-beta", "equals": "1" }}, "serve": "on" }}] }}
  }},
  "routes": {{
    "reviews": {{
      "match": {{ "authority": ["reviews"] }},
      "header": "x-route-reviews",
      "versions": ["v1", "v2"],
      "canary": {{ "stable": "v1", "canary": "v2", "weight": 10 }}
    }}
  }},
  "overrides": {{
    "header": "x-sluice-override",
    "secret_header": "x-sluice-secret",
    "secret_sha256": "{SECRET_SHA256}",
    "debug_header": "x-sluice-debug"
  }}
}}"#
    )
}

fn sluice(config: &str) -> HostBuilder {
    common::plugin("sluice.wasm").host().plugin_config(config)
}

/// The request headers Sluice wrote or changed.
fn written(out: &Outcome) -> BTreeMap<String, String> {
    out.request_changes()
        .into_iter()
        .filter_map(|c| match c {
            sluice_wasm_host::HeaderChange::Set { name, values } => Some((
                name,
                values
                    .iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            sluice_wasm_host::HeaderChange::Removed { .. } => None,
        })
        .collect()
}

#[test]
fn flags_header_and_per_flag_headers_are_written() {
    let mut host = sluice(&config()).build().unwrap();
    assert!(host
        .logs()
        .iter()
        .any(|l| l.message.contains("config loaded (revision `host-test-1`)")));
    let out = host
        .request()
        .header("x-user-id", "42")
        .header("x-beta", "1")
        .send()
        .unwrap();
    assert!(out.forwarded);
    // Expected answers from the core's bucketing (docs/config.md, Bucketing): variants sorted
    // by name, so `off` holds buckets [0, 5000) of salt `checkout`; the canary (weight 10%)
    // holds buckets [0, 1000) of salt `reviews`.
    let checkout = expected_checkout("42");
    assert_eq!(
        out.request_header("x-sluice-flags").as_deref(),
        Some(format!("checkout={checkout};search=on").as_str()),
        "flags sorted by name, the targeting rule applied to search"
    );
    assert_eq!(
        out.request_header("x-feature-checkout").as_deref(),
        Some(if checkout == "on" { "true" } else { "false" })
    );
    assert_eq!(
        out.request_header("x-route-reviews"),
        None,
        "the route matches authority reviews only"
    );
    assert_eq!(out.status(), Some(200));

    let mut seen = std::collections::BTreeSet::new();
    for user in [
        "42", "7", "1001", "alice", "bob", "carol", "dave", "erin", "u-19", "u-20",
    ] {
        let routed = host
            .request()
            .authority("reviews")
            .header("x-user-id", user)
            .send()
            .unwrap();
        let version = expected_version(user);
        assert_eq!(
            routed.request_header("x-route-reviews").as_deref(),
            Some(version),
            "user {user}"
        );
        seen.insert(version);
    }
    assert_eq!(seen.len(), 2, "the users chosen cover both versions");
}

/// The checkout variant a user gets: 50% rollout, buckets [0, 5000) to `off`.
fn expected_checkout(user: &str) -> &'static str {
    if sluice_core::bucket::bucket("checkout", user.as_bytes()) < 5000 {
        "off"
    } else {
        "on"
    }
}

/// The reviews version a user gets: canary v2 at weight 10, buckets [0, 1000).
fn expected_version(user: &str) -> &'static str {
    if sluice_core::bucket::bucket("reviews", user.as_bytes()) < 1000 {
        "v2"
    } else {
        "v1"
    }
}

#[test]
fn decisions_are_sticky_per_user_and_split_about_evenly() {
    let mut host = sluice(&config()).build().unwrap();
    let mut on = 0;
    for user in 0..400 {
        let first = host
            .request()
            .header("x-user-id", user.to_string())
            .send()
            .unwrap();
        let again = host
            .request()
            .header("x-user-id", user.to_string())
            .send()
            .unwrap();
        assert_eq!(
            first.request_header("x-sluice-flags"),
            again.request_header("x-sluice-flags"),
            "user {user}"
        );
        assert_eq!(
            first.request_header("x-feature-checkout").as_deref(),
            Some(if expected_checkout(&user.to_string()) == "on" {
                "true"
            } else {
                "false"
            }),
            "user {user}"
        );
        on += (first.request_header("x-feature-checkout").as_deref() == Some("true")) as u32;
    }
    assert!((160..=240).contains(&on), "50% rollout gave {on}/400");
}

#[test]
fn spoofed_incoming_owned_headers_are_stripped() {
    let mut host = sluice(&config()).build().unwrap();
    let out = host
        .request()
        .header("x-user-id", "42")
        .header("x-sluice-flags", "checkout=on;search=on")
        .header("x-sluice-flags", "evil")
        .header("x-feature-checkout", "spoofed")
        .header("x-route-reviews", "v2")
        .header("x-sluice-override", "checkout=on")
        .header("x-sluice-secret", "wrong")
        .send()
        .unwrap();
    let flags = out.request_headers.get_all("x-sluice-flags");
    assert_eq!(
        flags.len(),
        1,
        "one value, Sluice's: {:?}",
        out.request_headers
    );
    assert!(
        flags[0].ends_with(b";search=off"),
        "the client's value is gone"
    );
    assert_ne!(
        out.request_header("x-feature-checkout").as_deref(),
        Some("spoofed")
    );
    assert_eq!(
        out.request_header("x-route-reviews"),
        None,
        "a route header for a route that did not match is removed"
    );
    assert!(!out.request_headers.contains("x-sluice-override"));
    assert!(!out.request_headers.contains("x-sluice-secret"));
    assert_eq!(
        out.response_header("x-sluice-debug"),
        None,
        "no debug header without the secret"
    );

    // The same user without spoofing gets the same decision: the junk had no effect.
    let clean = host.request().header("x-user-id", "42").send().unwrap();
    assert_eq!(
        clean.request_header("x-sluice-flags"),
        out.request_header("x-sluice-flags")
    );
}

#[test]
fn tester_overrides_need_the_secret() {
    let mut host = sluice(&config()).build().unwrap();
    let user = (0..100)
        .map(|u| u.to_string())
        .find(|u| {
            let out = host.request().header("x-user-id", u).send().unwrap();
            out.request_header("x-feature-checkout").as_deref() == Some("false")
        })
        .expect("some user has checkout off");
    let forced = host
        .request()
        .header("x-user-id", &user)
        .header("x-sluice-override", "checkout=on")
        .header("x-sluice-secret", "letmein")
        .send()
        .unwrap();
    assert_eq!(
        forced.request_header("x-feature-checkout").as_deref(),
        Some("true")
    );
    assert!(forced
        .response_header("x-sluice-debug")
        .unwrap()
        .contains("checkout=on(override)"));
    assert!(
        !forced.request_headers.contains("x-sluice-secret"),
        "the secret never goes upstream"
    );
}

#[test]
/// Envoy clears the route cache by itself when a filter of ABI 0.2.1 (what the Rust SDK
/// declares) changes request headers, so Sluice makes no `clear_route_cache` call: the real-Envoy
/// routing tests (envoy/e2e) prove the route follows the headers without it.
fn headers_change_only_when_they_must_and_no_route_cache_call_is_made() {
    let route_only = r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]},
        "routes": {"reviews": {"match": {"authority": ["reviews"]}, "header": "x-route-reviews",
                               "versions": ["v1", "v2"], "canary": {"stable": "v1", "canary": "v2", "weight": 50}}},
        "outputs": {"flags_header": null}}"#;
    let mut host = sluice(route_only).build().unwrap();
    let untouched = host
        .request()
        .authority("ratings")
        .header("x-user-id", "7")
        .send()
        .unwrap();
    assert!(untouched.request_changes().is_empty());
    assert!(
        untouched.foreign_calls.is_empty(),
        "nothing changed, the route stays"
    );

    let routed = host
        .request()
        .authority("reviews")
        .header("x-user-id", "7")
        .send()
        .unwrap();
    assert!(routed.request_header("x-route-reviews").is_some());
    assert_eq!(routed.request_changes().len(), 1);
    assert!(
        routed.foreign_calls.is_empty(),
        "Envoy re-reads the route itself"
    );

    let stripped = host
        .request()
        .authority("ratings")
        .header("x-route-reviews", "v2")
        .send()
        .unwrap();
    assert!(!stripped.request_headers.contains("x-route-reviews"));
    assert_eq!(stripped.request_changes().len(), 1, "the spoofed copy goes");
    assert!(stripped.foreign_calls.is_empty());

    // A client that already sent exactly Sluice's value changes nothing.
    let version = routed.request_header("x-route-reviews").unwrap();
    let same = host
        .request()
        .authority("reviews")
        .header("x-user-id", "7")
        .header("x-route-reviews", &version)
        .send()
        .unwrap();
    assert!(same.request_changes().is_empty());
    assert!(same.foreign_calls.is_empty());
}

#[test]
fn invalid_config_is_rejected_with_the_error_logged() {
    let bad = r#"{"version": 1, "flags": {"x": {"rules": [{"rollout": {"on": 50, "off": 40}}]}}}"#;
    let error = sluice(bad).build().err().expect("rejected");
    let rejected = error
        .downcast_ref::<ConfigRejected>()
        .expect("ConfigRejected");
    let errors: Vec<&str> = rejected
        .logs
        .iter()
        .filter(|l| l.level == LogLevel::Error)
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(
        errors,
        ["sluice: config rejected: flags.x.rules[0].rollout: weights sum to 90, expected 100"]
    );

    for (config, reason) in [
        ("not json", "sluice: config rejected:"),
        (r#"{"version": 1, "flagz": {}}"#, "flagz"),
        (r#"{"version": 2}"#, "version"),
        ("", "sluice: config rejected:"),
    ] {
        let (_, rejected) = sluice(config).start().unwrap();
        let logs = rejected
            .unwrap_or_else(|| panic!("{config:?} accepted"))
            .logs;
        assert!(
            logs.iter()
                .any(|l| l.level == LogLevel::Error && l.message.contains(reason)),
            "{config:?}: {logs:?}"
        );
    }
}

/// splitmix64, for reproducible hostile input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Any bytes an HTTP codec lets through in a value (no NUL, CR, LF).
    fn value(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                [
                    b'a', b';', b'=', b',', b' ', b'"', 0xff, 0xc3, 0x28, b'%', b'9', b'.', b'/',
                    b'v',
                ][self.below(14) as usize]
            })
            .collect()
    }
    fn len(&mut self) -> usize {
        match self.below(10) {
            0 => 0,
            1 => 64 * 1024,
            2 => self.below(8192) as usize,
            _ => self.below(40) as usize,
        }
    }
}

#[test]
fn hostile_headers_never_trap() {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/flags.json"
    ))
    .unwrap();
    let mut host = sluice(&config).build().unwrap();
    let names = [
        "x-user-id",
        "cookie",
        "x-sluice-flags",
        "baggage",
        "x-feature-new-checkout",
        "x-geo-country",
        "x-app-version",
        "user-agent",
        "x-cart-total",
        "x-cart-items",
        "x-user-email",
        "x-session-id",
        "x-random",
    ];
    let mut rng = Rng(7);
    for round in 0..300 {
        let mut request = host.request();
        for _ in 0..rng.below(12) {
            let name = names[rng.below(names.len() as u64) as usize];
            let len = rng.len();
            request = request.header(name, rng.value(len));
        }
        let path_len = rng.len().min(2048);
        let path = [b"/".to_vec(), rng.value(path_len)].concat();
        let authority_len = rng.below(30) as usize;
        let source = [
            "203.0.113.9:1",
            "[2001:db8::1]:443",
            "garbage",
            "10.0.0.1",
            "",
        ][rng.below(5) as usize];
        let out = request
            .path(path)
            .authority(rng.value(authority_len))
            .source(source)
            .send()
            .unwrap_or_else(|e| panic!("round {round}: {e:#}"));
        assert!(out.forwarded, "round {round}");
        assert_eq!(
            out.request_headers.get_all("x-sluice-flags").len(),
            1,
            "round {round}"
        );
    }
    assert!(
        host.logs().iter().all(|l| l.level < LogLevel::Critical),
        "no panic was logged"
    );
}

#[test]
fn several_workers_give_identical_decisions() {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/flags.json"
    ))
    .unwrap();
    let mut host = sluice(&config).workers(4).build().unwrap();
    for user in 0..100 {
        let decisions: Vec<BTreeMap<String, String>> = (0..4)
            .map(|w| {
                let out = host
                    .request_on(w)
                    .header("x-user-id", format!("user-{user}"))
                    .header("x-geo-country", "de")
                    .send()
                    .unwrap();
                written(&out)
            })
            .collect();
        assert!(
            decisions.iter().all(|d| *d == decisions[0]),
            "user {user}: {decisions:?}"
        );
        assert!(decisions[0].contains_key("x-sluice-flags"));
    }
}

#[test]
fn the_module_writes_what_the_native_engine_decides() {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/flags.json"
    ))
    .unwrap();
    let plan = sluice_core::compile::load(config.as_bytes()).unwrap();
    let mut host = sluice(&config).build().unwrap();
    let countries = ["de", "us", "fr", "jp"];
    for user in 0..150 {
        let country = countries[user % countries.len()];
        let out = host
            .request()
            .header("x-user-id", user.to_string())
            .header("x-geo-country", country)
            .header("x-cart-total", (user * 7 % 300).to_string())
            .send()
            .unwrap();
        let native = common::native_sets(
            &plan,
            &out,
            Some(&b"203.0.113.7:40000"[..]),
            out_time_ms(&host),
        );
        assert_eq!(written(&out), native, "user {user}");
    }
}

fn out_time_ms(host: &Host) -> i64 {
    host.now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn a_canary_ramps_on_the_virtual_clock() {
    let config = r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]},
        "routes": {"reviews": {"match": {"authority": ["reviews"]}, "header": "x-route-reviews", "versions": ["v1", "v2"],
            "canary": {"stable": "v1", "canary": "v2", "weight": 10, "start": "2026-01-01T00:00:00Z",
                       "steps": [{"after": "1h", "weight": 50}, {"after": "2h", "weight": 100}]}}},
        "outputs": {"flags_header": null}}"#;
    let mut host = sluice(config).build().unwrap();
    fn share(host: &mut Host) -> (usize, Vec<bool>) {
        let canary: Vec<bool> = (0..1000)
            .map(|u| {
                let out = host
                    .request()
                    .authority("reviews")
                    .header("x-user-id", u.to_string())
                    .send()
                    .unwrap();
                out.request_header("x-route-reviews").as_deref() == Some("v2")
            })
            .collect();
        (canary.iter().filter(|c| **c).count(), canary)
    }
    let (at_start, cohort_start) = share(&mut host);
    host.advance(Duration::from_secs(3600)).unwrap();
    let (after_1h, cohort_1h) = share(&mut host);
    host.advance(Duration::from_secs(3600)).unwrap();
    let (after_2h, _) = share(&mut host);
    assert!((60..=140).contains(&at_start), "10%: {at_start}");
    assert!((430..=570).contains(&after_1h), "50%: {after_1h}");
    assert_eq!(after_2h, 1000);
    assert!(
        cohort_start
            .iter()
            .zip(&cohort_1h)
            .all(|(early, later)| !early || *later),
        "a user on the canary stays on it as it grows"
    );
}

#[test]
fn fuel_per_request_of_the_standard_scenarios() {
    let flags = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/flags.json"
    ))
    .unwrap();
    let canary = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/canary.json"
    ))
    .unwrap();
    let scenarios: [(&str, &str, &str); 3] = [
        (
            "flags.json, user with country",
            flags.as_str(),
            "shop.example.com",
        ),
        ("canary.json, routed request", canary.as_str(), "reviews"),
        ("canary.json, other authority", canary.as_str(), "ratings"),
    ];
    for (name, config, authority) in scenarios {
        let steady = |host: &mut Host| {
            for _ in 0..2 {
                host.request()
                    .authority(authority)
                    .header("x-user-id", "42")
                    .header("x-geo-country", "de")
                    .send()
                    .unwrap();
            }
            host.request()
                .authority(authority)
                .header("x-user-id", "42")
                .header("x-geo-country", "de")
                .send()
                .unwrap()
                .fuel
        };
        let mut first = sluice(config).build().unwrap();
        let mut second = sluice(config).build().unwrap();
        let fuel = steady(&mut first);
        assert_eq!(fuel, steady(&mut second), "{name}: fuel is deterministic");
        assert!(
            fuel.total() < 250_000,
            "{name}: {} instructions per request",
            fuel.total()
        );
        println!(
            "{name}: {} instructions per request (request headers {}, response headers {})",
            fuel.total(),
            fuel.hook("proxy_on_request_headers"),
            fuel.hook("proxy_on_response_headers")
        );
    }
}

#[test]
fn a_request_enters_the_vm_four_times() {
    // Envoy calls only the callbacks a module exports; Sluice's request end is
    // `proxy_on_delete` alone (no `proxy_on_log`, no `proxy_on_done`).
    let mut host = sluice(&config()).build().unwrap();
    let out = host
        .request()
        .authority("reviews")
        .header("x-user-id", "42")
        .send()
        .unwrap();
    let hooks: Vec<&str> = out.fuel.hooks.iter().map(|h| h.hook).collect();
    assert_eq!(
        hooks,
        [
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_response_headers",
            "proxy_on_delete"
        ]
    );
}

#[test]
fn the_active_config_revision_is_a_stat() {
    // With Envoy's canary VM, which configures each config and is killed without on_done: a
    // gauge counted per VM kept its +1 for every replaced revision.
    let mut host = sluice(&config())
        .workers(2)
        .envoy_canary(true)
        .build()
        .unwrap();
    let active = |host: &Host, rev: &str| {
        host.metric(&format!("sluice.config.revision.{rev}"))
            .map(|m| m.value())
            .unwrap_or(0)
    };
    assert_eq!(
        active(&host, "host-test-1"),
        1,
        "in force (on both worker VMs)"
    );
    let next = config().replace(
        "\"revision\": \"host-test-1\"",
        "\"revision\": \"host-test-2\"",
    );
    assert!(host.reconfigure(&next).unwrap().iter().all(|ok| *ok));
    assert_eq!(active(&host, "host-test-2"), 1);
    assert_eq!(
        active(&host, "host-test-1"),
        0,
        "the replaced revision is no longer in force"
    );
    assert_eq!(
        host.metric("sluice.config.loaded").map(|m| m.value()),
        Some(6),
        "two configs, each on the canary and two workers"
    );
}

#[test]
fn each_vm_defines_its_metrics_once_not_on_every_push() {
    // Envoy's defineMetric hands out a new id and map entry on every call (host-test does the
    // same), so a filter that defined its metrics again per push would grow them with each push.
    let mut host = sluice(&config()).workers(2).build().unwrap();
    let traffic = |host: &mut Host| {
        for user in ["u-1", "u-2", "u-3"] {
            host.request()
                .authority("reviews")
                .header("x-user-id", user)
                .send()
                .unwrap();
        }
        host.advance(Duration::from_secs(2)).unwrap();
    };
    traffic(&mut host);
    let after_first = host.metric_definitions();
    assert!(after_first > 0, "the filter defines its metrics");
    for _ in 0..5 {
        assert!(host.reconfigure(config()).unwrap().iter().all(|ok| *ok));
        traffic(&mut host);
    }
    assert_eq!(
        host.metric_definitions(),
        after_first,
        "5 pushes of the same config defined metrics again"
    );
    // A new revision adds its own gauge, once per VM, and nothing else.
    let next = config().replace(
        "\"revision\": \"host-test-1\"",
        "\"revision\": \"host-test-2\"",
    );
    assert!(host.reconfigure(&next).unwrap().iter().all(|ok| *ok));
    traffic(&mut host);
    assert_eq!(host.metric_definitions(), after_first + 2);
}
