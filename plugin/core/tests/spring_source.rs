//! `sources.spring` through the core as the filter runs it: the shared poll scheduler fetches a
//! Spring Cloud Config Environment (basic auth, several profiles, a label, property sources that
//! override each other), the flags reach the flags header bucketed like native flags, an
//! unchanged `version` counts as not modified, and bad Environments keep the last good flags.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{capture_logs, logged};
use std::cell::RefCell;

use sluice_core::bucket::bucket;
use sluice_core::engine::request::Headers;
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::HttpCalls;
use sluice_core::pipeline::Facts;
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_core::vm::VmState;

/// A dispatched poll: the cluster and the request headers.
type Call = (String, Vec<(String, String)>);

#[derive(Default)]
struct Calls(RefCell<Vec<Call>>);

impl HttpCalls for Calls {
    fn dispatch(&self, cluster: &str, headers: &[(&str, &str)], _: u64) -> Result<u32, String> {
        let mut calls = self.0.borrow_mut();
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        calls.push((cluster.to_string(), headers.collect()));
        Ok(calls.len() as u32)
    }
}

const CONFIG: &str = r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
  "flags": {"native": {"rules": [{"serve": "on"}]}},
  "sources": {"spring": {"cluster": "config-server", "authority": "config.internal",
    "application": "shop", "profiles": ["prod", "eu"], "label": "main",
    "basic": {"username": "sluice", "password": "s3cret"}, "interval": "2s", "timeout": "1s"}}}"#;

/// As a Config Server answers `GET /shop/prod,eu/main`: most specific source first.
fn environment(version: &str, checkout_rollout: &str) -> String {
    format!(
        r#"{{"name": "shop", "profiles": ["prod", "eu"], "label": "main", "version": "{version}", "state": null,
  "propertySources": [
    {{"name": "git:main:shop-eu.yml", "source": {{"features.checkout.rollout": {checkout_rollout}}}}},
    {{"name": "git:main:shop-prod.yml", "source": {{"features.checkout.enabled": true, "features.search.enabled": "false", "features.native.enabled": false}}}},
    {{"name": "git:main:application.yml", "source": {{"features.checkout.enabled": false, "features.search.enabled": true, "features.wishlist.enabled": true}}}}
  ]}}"#
    )
}

struct Edge {
    vm: VmState,
    shared: LocalShared,
    stats: LocalStats,
    calls: Calls,
    counters: PollCounters,
    now: i64,
}

impl Edge {
    fn new() -> Edge {
        capture_logs();
        let stats = LocalStats::default();
        let vm = VmState::new(common::plan(CONFIG), "p".into(), 1, &stats);
        let counters = PollCounters::define(&stats);
        Edge {
            vm,
            shared: LocalShared::default(),
            stats,
            calls: Calls::default(),
            counters,
            now: 0,
        }
    }

    fn poll(&mut self, status: u32, body: &str) {
        let before = self.calls.0.borrow().len();
        for _ in 0..4 {
            self.vm.tick_sources(
                &self.shared,
                &self.calls,
                &self.counters,
                &self.stats,
                self.now,
            );
            self.now += 1000;
            if self.calls.0.borrow().len() > before {
                break;
            }
        }
        let token = self.calls.0.borrow().len() as u32;
        assert!(token as usize > before, "no poll went out");
        let bytes = body.as_bytes().to_vec();
        let read = || Some(bytes.clone());
        let response = PollResponse {
            status: Some(status),
            etag: None,
            body_size: bytes.len(),
            retry_after: None,
            location: None,
            read_body: &read,
        };
        self.vm
            .source_response(token, &response, &self.shared, &self.counters, &self.stats);
    }

    fn flags(&self, user: &str) -> String {
        let pairs: Vec<(&str, &[u8])> = vec![(":path", b"/"), ("x-user", user.as_bytes())];
        let facts = Facts {
            headers: Headers::Pairs(&pairs),
            source: None,
            now_ms: self.now,
            entropy: 1,
        };
        let mut out = None;
        self.vm.on_request(&facts, |plan, patch| {
            out = patch
                .apply(plan, &pairs)
                .into_iter()
                .find(|(n, _)| n == "x-sluice-flags")
                .map(|(_, v)| String::from_utf8_lossy(&v).into_owned());
        });
        out.unwrap_or_default()
    }

    fn stat(&self, name: &str) -> i64 {
        self.stats.value(&format!("sluice.spring.fetch.{name}"))
    }
}

#[test]
fn an_environment_becomes_flags_through_the_shared_scheduler() {
    let mut edge = Edge::new();
    assert_eq!(
        edge.flags("u1"),
        "native=on",
        "nothing from Spring before a first Environment"
    );
    edge.poll(200, &environment("c0ffee1", "20"));
    let (cluster, headers) = edge.calls.0.borrow()[0].clone();
    assert_eq!(cluster, "config-server");
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(header(":path").as_deref(), Some("/shop/prod,eu/main"));
    assert_eq!(header(":authority").as_deref(), Some("config.internal"));
    // base64("sluice:s3cret")
    assert_eq!(
        header("authorization").as_deref(),
        Some("Basic c2x1aWNlOnMzY3JldA==")
    );
    assert_eq!(edge.stat("ok"), 1);

    // checkout: enabled by prod over application, 20% from eu, bucketed like native flags;
    // search: off by prod over application; wishlist from application; `native` stays native.
    let mut on = 0;
    for i in 0..500 {
        let user = format!("user-{i}");
        let checkout = if bucket("checkout", user.as_bytes()) < 2000 {
            "on"
        } else {
            "off"
        };
        on += usize::from(checkout == "on");
        assert_eq!(
            edge.flags(&user),
            format!("native=on;checkout={checkout};search=off;wishlist=on")
        );
    }
    assert!((60..140).contains(&on), "{on} of 500 at 20%");

    // The same version again: not modified. A new version: loaded.
    edge.poll(200, &environment("c0ffee1", "20"));
    assert_eq!((edge.stat("ok"), edge.stat("not_modified")), (1, 1));
    edge.poll(200, &environment("c0ffee2", "100"));
    assert_eq!(edge.stat("ok"), 2);
    assert_eq!(
        edge.flags("user-1"),
        "native=on;checkout=on;search=off;wishlist=on"
    );

    // Bad Environments: logged with the source and the problem, counted, last good kept.
    for (body, message) in [
        (
            environment("c0ffee3", "20").replace(
                "\"features.checkout.enabled\": true",
                "\"features.checkout.enabled\": \"yes\"",
            ),
            "spring poll failed: `features.checkout.enabled` in property source `git:main:shop-prod.yml` is \"yes\", not a boolean",
        ),
        (
            environment("c0ffee4", "150"),
            "spring poll failed: `features.checkout.rollout` in property source `git:main:shop-eu.yml` is 150, not a percentage from 0 to 100",
        ),
        (
            r#"{"name": "shop", "profiles": ["prod"], "propertySources": []}"#.to_string(),
            "spring poll failed: empty `propertySources`",
        ),
    ] {
        let failed = edge.stat("failed");
        edge.poll(200, &body);
        assert_eq!(edge.stat("failed"), failed + 1, "{message}");
        assert!(
            logged(message),
            "not logged: {message}"
        );
        assert_eq!(edge.flags("user-1"), "native=on;checkout=on;search=off;wishlist=on");
    }
}

#[test]
fn bad_spring_sections_are_rejected_with_their_path() {
    for (section, message) in [
        (
            r#"{"cluster": "c", "application": "shop", "profiles": []}"#,
            "sources.spring.profiles",
        ),
        (
            r#"{"cluster": "c", "application": "shop/x", "profiles": ["prod"]}"#,
            "sources.spring.application",
        ),
        (
            r#"{"cluster": "c", "application": "shop", "profiles": ["prod"], "authorization": "Bearer t", "basic": {"username": "u", "password": "p"}}"#,
            "give `authorization` or `basic`, not both",
        ),
        (
            r#"{"cluster": "c", "application": "shop", "profiles": ["prod"], "interval": "500ms"}"#,
            "sources.spring.interval",
        ),
        (
            r#"{"application": "shop", "profiles": ["prod"]}"#,
            "cluster",
        ),
    ] {
        let config = format!(r#"{{"version": 1, "sources": {{"spring": {section}}}}}"#);
        match sluice_core::compile::load(config.as_bytes()) {
            Ok(_) => panic!("accepted: {section}"),
            Err(err) => assert!(err.to_string().contains(message), "{section}: {err}"),
        }
    }
}

#[test]
fn a_rollout_of_zero_is_off_for_every_user() {
    let doc = environment("v0", "0");
    let flags = sluice_core::spring::read_environment(doc.as_bytes(), "features").unwrap();
    let checkout = flags.flags.iter().find(|f| f.name == "checkout").unwrap();
    assert!(checkout.enabled);
    let on = (0..50_000)
        .filter(|i| checkout.is_on(Some(format!("user-{i}").as_bytes()), 0))
        .count();
    assert_eq!(on, 0, "users on at 0%");
    let random = (0..50_000u64).filter(|e| checkout.is_on(None, *e)).count();
    assert_eq!(random, 0, "requests without identity on at 0%");
}
