//! The shared poll scheduler as the filter drives it, with several VMs on one shared data: one VM
//! polls per interval, the others take its answer on their next tick, `If-None-Match` carries the
//! last ETag, a 304 or an unchanged Spring `version` keeps what is in force, an answer that is
//! not this VM's is ignored, a lost compare-and-swap on the announcement is retried, and the
//! failures operators see in the log (no response, Envoy's 504, a missing cluster) are counted.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{capture_logs, log_text, logged};
use std::cell::{Cell, RefCell};

use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::{HttpCalls, SetError, SharedData};
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_core::vm::VmState;

/// A dispatched poll: cluster, headers, timeout.
type Call = (String, Vec<(String, String)>, u64);

/// Records every dispatched poll; tokens count up from 1. `refuse`: the cluster is missing.
#[derive(Default)]
struct Calls {
    sent: RefCell<Vec<Call>>,
    refuse: Cell<bool>,
}

impl HttpCalls for Calls {
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: u64,
    ) -> Result<u32, String> {
        if self.refuse.get() {
            return Err("BadArgument".into());
        }
        let mut sent = self.sent.borrow_mut();
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        sent.push((cluster.to_string(), headers.collect(), timeout));
        Ok(sent.len() as u32)
    }
}

impl Calls {
    fn count(&self) -> usize {
        self.sent.borrow().len()
    }
    fn header(&self, call: usize, name: &str) -> Option<String> {
        self.sent.borrow()[call]
            .1
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Shared data whose writes to keys ending in `suffix` lose their compare-and-swap while
/// `busy` is set, as when other VMs keep writing the same key.
struct Contended {
    inner: LocalShared,
    suffix: &'static str,
    busy: Cell<bool>,
    fail: Cell<bool>,
    /// Every key written, in order.
    written: RefCell<Vec<String>>,
}

impl SharedData for Contended {
    fn get(&self, key: &str) -> Option<(Option<Vec<u8>>, Option<u32>)> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        if key.ends_with(self.suffix) && self.fail.get() {
            return Err(SetError::Failed);
        }
        if key.ends_with(self.suffix) && self.busy.get() {
            return Err(SetError::CasMismatch);
        }
        self.written.borrow_mut().push(key.to_string());
        self.inner.set(key, value, cas)
    }
}

impl Contended {
    fn new(suffix: &'static str) -> Contended {
        Contended {
            inner: LocalShared::default(),
            suffix,
            busy: Cell::new(false),
            fail: Cell::new(false),
            written: RefCell::default(),
        }
    }
}

/// An Unleash poll through `cluster` (each test its own, so their log lines and shared keys
/// stay apart), every 10 s.
fn unleash_config(cluster: &str, poll_extra: &str) -> String {
    format!(
        r#"{{"version": 1, "identity": {{"user": [{{"header": "x-user"}}]}},
  "unleash": {{"poll": {{"cluster": "{cluster}", "interval": "10s", "timeout": "2s" {poll_extra}}},
              "features": ["checkout"]}}}}"#
    )
}

/// A payload with `checkout` on for everyone, or off.
fn payload(on: bool) -> String {
    format!(
        r#"{{"version": 2, "features": [{{"name": "checkout", "enabled": {on}, "strategies": [{{"name": "default"}}]}}]}}"#
    )
}

/// One VM of an Envoy: its state, its stats, its poll counters.
struct Vm {
    vm: VmState,
    stats: LocalStats,
    counters: PollCounters,
}

impl Vm {
    fn new(config: &str, seed: u64) -> Vm {
        let stats = LocalStats::default();
        let vm = VmState::new(common::plan(config), "p".into(), seed, &stats);
        let counters = PollCounters::define(&stats);
        Vm {
            vm,
            stats,
            counters,
        }
    }

    fn tick(&self, shared: &dyn SharedData, calls: &Calls, now: i64) {
        self.vm
            .tick_sources(shared, calls, &self.counters, &self.stats, now);
    }

    fn answer(&self, shared: &dyn SharedData, token: u32, response: &PollResponse) {
        self.vm
            .source_response(token, response, shared, &self.counters, &self.stats);
    }

    fn stat(&self, name: &str) -> i64 {
        self.stats.value(name)
    }

    /// Whether the Unleash payload in force here has `checkout` on (`None`: no payload yet).
    fn checkout(&self) -> Option<bool> {
        let engine = self.vm.unleash.borrow();
        engine
            .as_ref()
            .map(|e| e.is_enabled("checkout", &sluice_unleash::Context::new().user_id("u1")))
    }
}

/// Answers `token` with `status`, an ETag and a body.
fn respond(
    vm: &Vm,
    shared: &dyn SharedData,
    token: u32,
    status: Option<u32>,
    etag: Option<&str>,
    body: &str,
) {
    let bytes = body.as_bytes().to_vec();
    let read = || Some(bytes.clone());
    let response = PollResponse {
        status,
        etag: etag.map(str::to_string),
        body_size: bytes.len(),
        retry_after: None,
        location: None,
        read_body: &read,
    };
    vm.answer(shared, token, &response);
}

#[test]
fn one_vm_polls_per_interval_and_the_others_take_its_answer() {
    let config = unleash_config(
        "unleash-share",
        r#", "authority": "unleash.internal", "authorization": "client-token-1""#,
    );
    let (a, b) = (Vm::new(&config, 1), Vm::new(&config, 2));
    let (shared, calls) = (LocalShared::default(), Calls::default());

    a.tick(&shared, &calls, 1_000);
    b.tick(&shared, &calls, 1_000);
    assert_eq!(calls.count(), 1, "one poll for the two VMs");
    let (cluster, _, timeout) = calls.sent.borrow()[0].clone();
    assert_eq!((cluster.as_str(), timeout), ("unleash-share", 2_000));
    assert_eq!(calls.header(0, ":method").as_deref(), Some("GET"));
    assert_eq!(
        calls.header(0, ":path").as_deref(),
        Some("/api/client/features")
    );
    assert_eq!(
        calls.header(0, ":authority").as_deref(),
        Some("unleash.internal")
    );
    assert_eq!(
        calls.header(0, "authorization").as_deref(),
        Some("client-token-1")
    );
    assert_eq!(
        calls.header(0, "accept").as_deref(),
        Some("application/json")
    );
    assert_eq!(calls.header(0, "if-none-match"), None, "no ETag known yet");

    // B is not waiting for that call: its answer there changes nothing.
    respond(&b, &shared, 1, Some(200), Some("\"e1\""), &payload(true));
    assert_eq!((b.checkout(), b.stat("sluice.unleash.fetch.ok")), (None, 0));
    // Nor does an answer to a call A did not make.
    respond(&a, &shared, 7, Some(200), Some("\"e1\""), &payload(true));
    assert_eq!((a.checkout(), a.stat("sluice.unleash.fetch.ok")), (None, 0));

    respond(&a, &shared, 1, Some(200), Some("\"e1\""), &payload(true));
    assert_eq!(a.checkout(), Some(true));
    assert_eq!(a.stat("sluice.unleash.fetch.ok"), 1);
    assert!(logged(
        "sluice: unleash payload generation 1 loaded: 1 features (etag `\"e1\"`)"
    ));
    assert_eq!(b.checkout(), None, "B takes it on its next tick");
    b.tick(&shared, &calls, 2_000);
    assert_eq!(b.checkout(), Some(true));
    assert_eq!(calls.count(), 1, "within the interval nobody polls");

    // Before the interval is over nobody polls; at its end exactly one VM does.
    a.tick(&shared, &calls, 10_999);
    b.tick(&shared, &calls, 10_999);
    assert_eq!(calls.count(), 1);
    b.tick(&shared, &calls, 11_000);
    a.tick(&shared, &calls, 11_000);
    assert_eq!(calls.count(), 2, "B claimed this round");
    assert_eq!(calls.header(1, "if-none-match").as_deref(), Some("\"e1\""));
    respond(&b, &shared, 2, Some(304), None, "");
    assert_eq!(b.stat("sluice.unleash.fetch.not_modified"), 1);
    assert_eq!(b.checkout(), Some(true));

    // A new payload from B's poll: A switches on its next tick.
    b.tick(&shared, &calls, 21_000);
    assert_eq!(calls.count(), 3);
    respond(&b, &shared, 3, Some(200), Some("\"e2\""), &payload(false));
    assert_eq!(b.checkout(), Some(false));
    assert_eq!(a.checkout(), Some(true));
    a.tick(&shared, &calls, 21_500);
    assert_eq!(a.checkout(), Some(false));
    assert!(logged(
        "sluice: unleash payload generation 2 taken from shared data"
    ));

    // A VM of a config pushed later adopts the payload in force when it is configured.
    let c = Vm::new(&config, 3);
    assert_eq!(c.checkout(), None);
    c.vm.adopt_shared_sources(&shared);
    assert_eq!(c.checkout(), Some(false));
    // A poll with other credentials is another source: nothing to adopt.
    let other = Vm::new(
        &unleash_config(
            "unleash-share",
            r#", "authority": "unleash.internal", "authorization": "client-token-2""#,
        ),
        4,
    );
    other.vm.adopt_shared_sources(&shared);
    assert_eq!(other.checkout(), None);
}

#[test]
fn while_a_poll_is_in_flight_no_other_goes_out() {
    capture_logs();
    let vm = Vm::new(&unleash_config("unleash-inflight", ""), 1);
    let (shared, calls) = (LocalShared::default(), Calls::default());
    vm.tick(&shared, &calls, 0);
    assert_eq!(calls.count(), 1);
    assert_eq!(
        calls.header(0, ":authority").as_deref(),
        Some("unleash-inflight"),
        "the authority defaults to the cluster's name"
    );
    for now in [10_000, 20_000, 30_000] {
        vm.tick(&shared, &calls, now);
    }
    assert_eq!(
        calls.count(),
        1,
        "the first poll is still waiting for its answer"
    );
    respond(&vm, &shared, 1, Some(200), None, &payload(true));
    vm.tick(&shared, &calls, 40_000);
    assert_eq!(calls.count(), 2);
}

#[test]
fn failures_without_an_answer_are_logged_counted_and_keep_the_payload() {
    capture_logs();
    let vm = Vm::new(&unleash_config("unleash-fail", ""), 1);
    let (shared, calls) = (LocalShared::default(), Calls::default());
    vm.tick(&shared, &calls, 0);
    respond(&vm, &shared, 1, Some(200), None, &payload(true));

    vm.tick(&shared, &calls, 10_000);
    respond(&vm, &shared, 2, None, None, "");
    assert!(logged(
        "sluice: unleash poll failed: no response from cluster `unleash-fail` (the call was reset"
    ));
    assert_eq!(vm.stat("sluice.unleash.fetch.failed"), 1);

    vm.tick(&shared, &calls, 20_000);
    respond(&vm, &shared, 3, Some(504), None, "upstream request timeout");
    assert!(logged("HTTP 504 from cluster `unleash-fail` (Envoy answers 504 when the poll times out after 2000ms)"));
    assert_eq!(vm.stat("sluice.unleash.fetch.failed"), 2);

    vm.tick(&shared, &calls, 30_000);
    let read = || None;
    let empty = PollResponse {
        status: Some(200),
        etag: None,
        body_size: 0,
        retry_after: None,
        location: None,
        read_body: &read,
    };
    vm.answer(&shared, 4, &empty);
    assert!(logged("sluice: unleash poll failed: empty body"));
    assert_eq!(vm.stat("sluice.unleash.fetch.failed"), 3);

    // The cluster is not defined: the dispatch itself fails.
    calls.refuse.set(true);
    vm.tick(&shared, &calls, 40_000);
    assert!(logged(
        "sluice: unleash poll: cannot call cluster `unleash-fail` (BadArgument); is it defined?"
    ));
    assert_eq!(vm.stat("sluice.unleash.fetch.failed"), 4);
    assert_eq!(vm.stat("sluice.unleash.fetch.ok"), 1);
    assert_eq!(vm.checkout(), Some(true), "the last good payload stays");
}

#[test]
fn a_retry_after_beyond_an_hour_waits_an_hour() {
    capture_logs();
    let vm = Vm::new(&unleash_config("unleash-slow", ""), 1);
    let (shared, calls) = (LocalShared::default(), Calls::default());
    vm.tick(&shared, &calls, 0);
    let read = || Some(Vec::new());
    let response = PollResponse {
        status: Some(503),
        etag: None,
        body_size: 0,
        retry_after: Some(" 86400 ".into()),
        location: None,
        read_body: &read,
    };
    vm.answer(&shared, 1, &response);
    assert!(logged(
        "HTTP 503 from cluster `unleash-slow`; next poll after Retry-After 3600s"
    ));
    vm.tick(&shared, &calls, 1_000);
    vm.tick(&shared, &calls, 3_600_999);
    assert_eq!(calls.count(), 1, "still waiting");
    vm.tick(&shared, &calls, 3_601_000);
    assert_eq!(calls.count(), 2, "an hour after the 503's tick");
}

#[test]
fn several_unknown_strategies_are_named_with_how_many_more() {
    capture_logs();
    let vm = Vm::new(&unleash_config("unleash-custom", ""), 1);
    let (shared, calls) = (LocalShared::default(), Calls::default());
    vm.tick(&shared, &calls, 0);
    let body = r#"{"version": 2, "features": [
        {"name": "checkout", "enabled": true, "strategies": [{"name": "custom-a"}, {"name": "custom-b"}, {"name": "custom-c"}]}]}"#;
    respond(&vm, &shared, 1, Some(200), None, body);
    let log = log_text();
    assert!(
        log.contains("unknown strategy \"custom-a\"; it is never on and 2 more (Sluice implements"),
        "{log}"
    );
    assert_eq!(vm.checkout(), None);
    assert_eq!(vm.stat("sluice.unleash.fetch.failed"), 1);
}

#[test]
fn a_lost_announcement_is_retried_on_the_next_tick() {
    capture_logs();
    let config = unleash_config("unleash-race", "");
    let (a, b) = (Vm::new(&config, 1), Vm::new(&config, 2));
    let (shared, calls) = (Contended::new(".state"), Calls::default());
    a.tick(&shared, &calls, 0);
    shared.busy.set(true);
    respond(&a, &shared, 1, Some(200), Some("\"e1\""), &payload(true));
    assert_eq!(a.checkout(), Some(true), "in force here at once");
    assert_eq!(a.stat("sluice.unleash.publish.retries"), 1);
    assert!(logged(
        "sluice: unleash payload stored, but its generation could not be published"
    ));
    b.tick(&shared, &calls, 1_000);
    assert_eq!(b.checkout(), None, "not announced yet");
    a.tick(&shared, &calls, 1_000);
    assert_eq!(
        a.stat("sluice.unleash.publish.retries"),
        2,
        "still contended"
    );
    shared.busy.set(false);
    a.tick(&shared, &calls, 2_000);
    b.tick(&shared, &calls, 2_000);
    assert_eq!(b.checkout(), Some(true), "announced on A's next tick");
    a.tick(&shared, &calls, 3_000);
    assert_eq!(
        a.stat("sluice.unleash.publish.retries"),
        2,
        "nothing left to retry"
    );
    // The announcement carries the ETag: the next poll asks with it.
    a.tick(&shared, &calls, 10_000);
    b.tick(&shared, &calls, 10_000);
    assert_eq!(calls.count(), 2);
    assert_eq!(calls.header(1, "if-none-match").as_deref(), Some("\"e1\""));
}

#[test]
fn a_payload_that_cannot_be_stored_is_a_failure() {
    capture_logs();
    let vm = Vm::new(&unleash_config("unleash-full", ""), 1);
    let (shared, calls) = (Contended::new(".payload"), Calls::default());
    vm.tick(&shared, &calls, 0);
    shared.fail.set(true);
    respond(&vm, &shared, 1, Some(200), None, &payload(true));
    assert!(logged(
        "sluice: unleash poll failed: could not store the payload in shared data"
    ));
    assert_eq!(vm.stat("sluice.unleash.fetch.failed"), 1);
    assert_eq!(vm.checkout(), None);
}

const SPRING: &str = r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
  "sources": {"spring": {"cluster": "config-race", "application": "shop", "profiles": ["prod"], "interval": "2s", "timeout": "1s"}}}"#;

fn environment(version: Option<&str>, checkout: bool) -> String {
    let version = version.map_or("null".to_string(), |v| format!("\"{v}\""));
    format!(
        r#"{{"name": "shop", "version": {version}, "propertySources": [{{"name": "git:shop.yml", "source": {{"features.checkout.enabled": {checkout}}}}}]}}"#
    )
}

fn spring_checkout(vm: &Vm) -> Option<bool> {
    vm.vm
        .spring_flags()
        .map(|f| f.flags.iter().any(|f| f.name == "checkout" && f.enabled))
}

#[test]
fn spring_environments_are_shared_and_an_unchanged_version_is_not_modified() {
    capture_logs();
    let (a, b) = (Vm::new(SPRING, 1), Vm::new(SPRING, 2));
    let (shared, calls) = (LocalShared::default(), Calls::default());
    a.tick(&shared, &calls, 0);
    b.tick(&shared, &calls, 0);
    assert_eq!(calls.count(), 1);
    respond(
        &a,
        &shared,
        1,
        Some(200),
        None,
        &environment(Some("c1"), true),
    );
    assert_eq!(a.stat("sluice.spring.fetch.ok"), 1);
    assert_eq!(spring_checkout(&a), Some(true));
    b.tick(&shared, &calls, 500);
    assert_eq!(spring_checkout(&b), Some(true), "taken from shared data");

    a.tick(&shared, &calls, 2_000);
    respond(
        &a,
        &shared,
        2,
        Some(200),
        None,
        &environment(Some("c1"), true),
    );
    assert_eq!(
        a.stat("sluice.spring.fetch.not_modified"),
        1,
        "same version"
    );
    assert_eq!(a.stat("sluice.spring.fetch.ok"), 1);

    // Without a version there is no telling: each answer is taken.
    a.tick(&shared, &calls, 4_000);
    respond(&a, &shared, 3, Some(200), None, &environment(None, false));
    a.tick(&shared, &calls, 6_000);
    respond(&a, &shared, 4, Some(200), None, &environment(None, false));
    assert_eq!(a.stat("sluice.spring.fetch.ok"), 3);
    assert_eq!(a.stat("sluice.spring.fetch.not_modified"), 1);
    assert_eq!(spring_checkout(&a), Some(false));
    b.tick(&shared, &calls, 6_500);
    assert_eq!(spring_checkout(&b), Some(false));

    // A new VM adopts the Environment in force when configured.
    let c = Vm::new(SPRING, 3);
    c.vm.adopt_shared_sources(&shared);
    assert_eq!(spring_checkout(&c), Some(false));
}

#[test]
fn an_unreadable_shared_payload_is_logged_and_skipped() {
    capture_logs();
    let config = unleash_config("unleash-garbled", "");
    let (a, b) = (Vm::new(&config, 1), Vm::new(&config, 2));
    let (shared, calls) = (Contended::new(".never"), Calls::default());
    a.tick(&shared, &calls, 0);
    respond(&a, &shared, 1, Some(200), None, &payload(true));
    // The stored payload garbled (as by a VM of another build): B logs it and keeps going.
    let key = shared
        .written
        .borrow()
        .iter()
        .find(|k| k.ends_with(".payload"))
        .cloned()
        .unwrap();
    shared.inner.set(&key, b"{not json", None).unwrap();
    b.tick(&shared, &calls, 1_000);
    assert_eq!(b.checkout(), None);
    assert!(logged(
        "sluice: shared unleash payload generation 1 unreadable: invalid payload"
    ));
    // A's next good answer reaches B.
    a.tick(&shared, &calls, 10_000);
    respond(&a, &shared, 2, Some(200), None, &payload(false));
    b.tick(&shared, &calls, 11_000);
    assert_eq!(b.checkout(), Some(false));
}

#[test]
fn a_body_of_exactly_max_body_bytes_is_taken() {
    capture_logs();
    let body = payload(true);
    let limit = format!(r#", "max_body_bytes": {}"#, body.len());
    let vm = Vm::new(&unleash_config("unleash-limit", &limit), 1);
    let (shared, calls) = (LocalShared::default(), Calls::default());
    vm.tick(&shared, &calls, 0);
    respond(&vm, &shared, 1, Some(200), None, &body);
    assert_eq!(vm.stat("sluice.unleash.fetch.ok"), 1);
    vm.tick(&shared, &calls, 10_000);
    respond(&vm, &shared, 2, Some(200), None, &format!("{body} "));
    assert_eq!(vm.stat("sluice.unleash.fetch.failed"), 1);
    assert!(logged(&format!(
        "payload of {} bytes is over max_body_bytes {}",
        body.len() + 1,
        body.len()
    )));
}

#[test]
fn a_retry_after_shorter_than_the_interval_does_not_poll_sooner() {
    capture_logs();
    let vm = Vm::new(&unleash_config("unleash-brief", ""), 1);
    let (shared, calls) = (LocalShared::default(), Calls::default());
    vm.tick(&shared, &calls, 0);
    let read = || Some(Vec::new());
    let response = PollResponse {
        status: Some(429),
        etag: None,
        body_size: 0,
        retry_after: Some("1".into()),
        location: None,
        read_body: &read,
    };
    vm.answer(&shared, 1, &response);
    for now in [1_000, 2_000, 5_000, 9_999] {
        vm.tick(&shared, &calls, now);
    }
    assert_eq!(
        calls.count(),
        1,
        "the interval (10 s) is longer than the wait"
    );
    vm.tick(&shared, &calls, 10_000);
    assert_eq!(calls.count(), 2);
}

#[test]
fn a_generation_already_loaded_is_not_read_again() {
    let config = unleash_config("unleash-once", "");
    let (a, b) = (Vm::new(&config, 1), Vm::new(&config, 2));
    let (shared, calls) = (LocalShared::default(), Calls::default());
    a.tick(&shared, &calls, 0);
    respond(&a, &shared, 1, Some(200), None, &payload(true));
    b.tick(&shared, &calls, 1_000);
    let loaded = b.vm.unleash.borrow().clone().unwrap();
    // Ticks every 250 ms: a payload of megabytes must not be parsed again each time.
    for now in [1_250, 1_500, 1_750, 2_000] {
        a.tick(&shared, &calls, now);
        b.tick(&shared, &calls, now);
    }
    let now_b = b.vm.unleash.borrow().clone().unwrap();
    let now_a = a.vm.unleash.borrow().clone().unwrap();
    assert!(
        std::rc::Rc::ptr_eq(&loaded, &now_b),
        "B parsed generation 1 again"
    );
    // A fetched it itself: its own copy stays too.
    a.tick(&shared, &calls, 3_000);
    assert!(std::rc::Rc::ptr_eq(
        &now_a,
        &a.vm.unleash.borrow().clone().unwrap()
    ));
}
