//! Unleash usage reports when things go wrong, through a VM's real tick and response path: a
//! host that cannot send a request body, registration answered outside 2xx (retried each
//! interval until it succeeds), a bucket Unleash did not take, and shared data that fails; counts
//! are kept for later rather than lost, and what is lost is counted.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{capture_logs, logged};
use std::cell::{Cell, RefCell};

use serde_json::Value;
use sluice_core::engine::Headers;
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::{HttpCalls, SetError, SharedData};
use sluice_core::pipeline::Facts;
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_core::vm::VmState;

/// A host with no request bodies: only the trait's default `dispatch_with_body`.
struct GetOnly;
impl HttpCalls for GetOnly {
    fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Ok(1_000)
    }
}

/// Records POSTs: path and JSON body; tokens count up from 1.
#[derive(Default)]
struct Posts(RefCell<Vec<(String, Value)>>);
impl HttpCalls for Posts {
    fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Ok(1_000)
    }
    fn dispatch_with_body(
        &self,
        _: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        _: u64,
    ) -> Result<u32, String> {
        let path = headers
            .iter()
            .find(|(k, _)| *k == ":path")
            .unwrap()
            .1
            .to_string();
        let mut posts = self.0.borrow_mut();
        posts.push((path, serde_json::from_slice(body).unwrap()));
        Ok(posts.len() as u32)
    }
}

impl Posts {
    fn to(&self, path: &str) -> Vec<(u32, Value)> {
        self.0
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| p == path)
            .map(|(i, (_, b))| (i as u32 + 1, b.clone()))
            .collect()
    }
}

/// Shared data whose usage writes fail while `down` is set.
#[derive(Default)]
struct Flaky {
    inner: LocalShared,
    down: Cell<bool>,
}
impl SharedData for Flaky {
    fn get(&self, key: &str) -> Option<(Option<Vec<u8>>, Option<u32>)> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        if self.down.get() && key.ends_with(".usage") {
            return Err(SetError::Failed);
        }
        self.inner.set(key, value, cas)
    }
}

const PAYLOAD: &str = r#"{"version": 2, "features": [{"name": "checkout", "enabled": true, "strategies": [{"name": "default"}]}]}"#;

struct Edge {
    vm: VmState,
    stats: LocalStats,
    counters: PollCounters,
    shared: Flaky,
    now: i64,
}

impl Edge {
    fn new(metrics: &str) -> Edge {
        capture_logs();
        let config = format!(
            r#"{{"version": 1, "identity": {{"user": [{{"header": "x-user"}}]}},
  "unleash": {{"poll": {{"cluster": "unleash-usage", "authorization": "client-token", "interval": "10s", "timeout": "1s"}},
              "context": {{"app_name": "shop"}}, "metrics": {metrics}, "payload": {PAYLOAD}}}}}"#
        );
        let stats = LocalStats::default();
        let vm = VmState::new(common::plan(&config), "p".into(), 7, &stats);
        let counters = PollCounters::define(&stats);
        Edge {
            vm,
            stats,
            counters,
            shared: Flaky::default(),
            now: 1_700_000_000_000,
        }
    }

    fn request(&self, user: &str) {
        let pairs: Vec<(&str, &[u8])> = vec![(":path", b"/"), ("x-user", user.as_bytes())];
        let facts = Facts {
            headers: Headers::Pairs(&pairs),
            now_ms: self.now,
            ..Facts::default()
        };
        self.vm.on_request(&facts, |_, _| {});
    }

    /// Ticks with `calls`, then moves the clock on by `ms`.
    fn tick(&mut self, calls: &dyn HttpCalls, ms: i64) {
        self.vm
            .tick_sources(&self.shared, calls, &self.counters, &self.stats, self.now);
        self.now += ms;
    }

    fn answer(&self, token: u32, status: Option<u32>) {
        let read = || None;
        let response = PollResponse {
            status,
            etag: None,
            body_size: 0,
            retry_after: None,
            location: None,
            read_body: &read,
        };
        self.vm
            .source_response(token, &response, &self.shared, &self.counters, &self.stats);
    }

    fn stat(&self, name: &str) -> i64 {
        self.stats.value(&format!("sluice.unleash.metrics.{name}"))
    }
}

fn yes(body: &Value) -> u64 {
    body["bucket"]["toggles"]["checkout"]["yes"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_host_that_cannot_post_keeps_the_buckets_until_one_can() {
    let mut edge = Edge::new(r#"{"interval": "10s"}"#);
    edge.request("u1");
    edge.request("u2");
    edge.tick(&GetOnly, 10_000);
    assert!(logged(
        "sluice: unleash metrics: cannot register through cluster `unleash-usage` (this host cannot send a request body to `unleash-usage`)"
    ));
    assert!(logged("sluice: unleash metrics: cannot call cluster `unleash-usage` (this host cannot send a request body to `unleash-usage`); bucket kept"));
    assert_eq!(edge.stat("failed"), 2, "the register call and the bucket");
    assert_eq!(edge.stat("dropped"), 0);

    edge.request("u3");
    let posts = Posts::default();
    edge.tick(&posts, 10_000);
    assert_eq!(posts.to("/api/client/register").len(), 1);
    let metrics = posts.to("/api/client/metrics");
    let counted: Vec<u64> = metrics.iter().map(|(_, b)| yes(b)).collect();
    assert_eq!(
        counted,
        [2, 1],
        "the kept bucket first, then this interval's"
    );
}

#[test]
fn registration_is_retried_each_interval_until_unleash_answers_2xx() {
    let mut edge = Edge::new(r#"{"interval": "10s"}"#);
    let posts = Posts::default();
    for (round, status) in [Some(500), Some(300), None, Some(299)]
        .into_iter()
        .enumerate()
    {
        edge.tick(&posts, 10_000);
        let registers = posts.to("/api/client/register");
        assert_eq!(registers.len(), round + 1, "round {round}");
        edge.answer(registers[round].0, status);
    }
    assert!(logged("sluice: unleash metrics: register at `/api/client/register` failed: HTTP 500; retrying next interval"));
    assert!(logged(
        "register at `/api/client/register` failed: no response (the call was reset)"
    ));
    assert!(logged(
        "sluice: unleash metrics: registered app `shop` with Unleash"
    ));
    assert_eq!(edge.stat("failed"), 3);
    // Each retry introduces the same client: same instance, same start.
    let registers = posts.to("/api/client/register");
    for (_, body) in &registers {
        assert_eq!(body["started"], "2023-11-14T22:13:20.000Z", "{body}");
        assert_eq!(body["instanceId"], registers[0].1["instanceId"]);
    }
    edge.tick(&posts, 10_000);
    edge.tick(&posts, 10_000);
    assert_eq!(
        posts.to("/api/client/register").len(),
        4,
        "registered: not again"
    );
}

#[test]
fn a_bucket_answered_outside_2xx_is_sent_again() {
    let mut edge = Edge::new(r#"{"interval": "10s"}"#);
    let posts = Posts::default();
    edge.request("u1");
    edge.tick(&posts, 10_000);
    let (register, _) = posts.to("/api/client/register")[0];
    edge.answer(register, Some(200));
    let (first, _) = posts.to("/api/client/metrics")[0];
    edge.answer(first, Some(300));
    assert!(logged("sluice: unleash metrics: sending a bucket to `/api/client/metrics` failed: HTTP 300; bucket kept for the next interval"));
    assert_eq!((edge.stat("failed"), edge.stat("sent")), (1, 0));
    // An answer that is not ours changes nothing.
    edge.answer(99, Some(200));
    assert_eq!(edge.stat("sent"), 0);
    edge.tick(&posts, 10_000);
    let metrics = posts.to("/api/client/metrics");
    assert_eq!(metrics.len(), 2);
    assert_eq!(yes(&metrics[1].1), 1, "the same request, sent again");
    edge.answer(metrics[1].0, Some(204));
    assert_eq!((edge.stat("failed"), edge.stat("sent")), (1, 1));
    // Nothing was dropped, and the log does not say otherwise.
    assert_eq!(edge.stat("dropped"), 0);
    assert!(!logged("0 bucket(s) dropped"));
}

#[test]
fn counts_survive_shared_data_failures_and_a_lost_bucket_is_counted() {
    let mut edge = Edge::new(r#"{"interval": "10s"}"#);
    let posts = Posts::default();
    edge.tick(&posts, 10_000);
    let (register, _) = posts.to("/api/client/register")[0];
    edge.answer(register, Some(200));
    edge.request("u1");
    edge.shared.down.set(true);
    edge.tick(&posts, 10_000);
    assert!(
        posts.to("/api/client/metrics").is_empty(),
        "nothing could be closed"
    );
    edge.request("u2");
    edge.shared.down.set(false);
    edge.tick(&posts, 10_000);
    let metrics = posts.to("/api/client/metrics");
    assert_eq!(metrics.len(), 1);
    assert_eq!(
        yes(&metrics[0].1),
        2,
        "the count of the failed tick is kept"
    );
    // Unleash refuses it and shared data fails as it is put back: lost, and counted.
    edge.shared.down.set(true);
    edge.answer(metrics[0].0, Some(503));
    assert_eq!(edge.stat("dropped"), 1);
    edge.shared.down.set(false);
    edge.tick(&posts, 10_000);
    assert_eq!(
        posts.to("/api/client/metrics").len(),
        1,
        "nothing left to send"
    );
}
