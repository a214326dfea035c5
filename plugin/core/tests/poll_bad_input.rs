//! The Unleash poll against bad answers, natively: 401/403, 429 with Retry-After, 5xx, a
//! redirect, an oversized body, a payload with an unknown strategy or operator. Each is a clear
//! log line naming the source and the problem, a counted failure, and the last good payload stays.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{capture_logs, log_text, logged};
use std::cell::RefCell;

use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::HttpCalls;
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_core::vm::VmState;

/// Records every dispatched poll; tokens count up from 1.
#[derive(Default)]
struct Calls(RefCell<Vec<Vec<(String, String)>>>);

impl HttpCalls for Calls {
    fn dispatch(
        &self,
        _cluster: &str,
        headers: &[(&str, &str)],
        _timeout: u64,
    ) -> Result<u32, String> {
        let mut calls = self.0.borrow_mut();
        calls.push(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        Ok(calls.len() as u32)
    }
}

/// A bad answer: status, headers, body, the log line it must produce.
type Case = (
    u32,
    &'static [(&'static str, &'static str)],
    String,
    &'static str,
);

const CONFIG: &str = r#"{"version": 1, "identity": {"user": [{"header": "x-user"}]},
  "unleash": {"poll": {"cluster": "unleash", "interval": "1s", "timeout": "500ms", "max_body_bytes": 4096},
              "features": ["checkout"]}}"#;

fn payload(strategy: &str) -> String {
    format!(
        r#"{{"version": 2, "features": [{{"name": "checkout", "enabled": true, "strategies": [{strategy}]}}]}}"#
    )
}

struct Poller {
    vm: VmState,
    shared: LocalShared,
    stats: LocalStats,
    calls: Calls,
    counters: PollCounters,
    now: i64,
}

impl Poller {
    fn new() -> Poller {
        capture_logs();
        let stats = LocalStats::default();
        let vm = VmState::new(common::plan(CONFIG), "p".into(), 1, &stats);
        let counters = PollCounters::define(&stats);
        Poller {
            vm,
            shared: LocalShared::default(),
            stats,
            calls: Calls::default(),
            counters,
            now: 0,
        }
    }

    /// Ticks until a poll goes out (at most `max_ms` of ticks, 1 s apart); its token.
    fn next_poll(&mut self, max_ms: i64) -> Option<u32> {
        let before = self.calls.0.borrow().len();
        let until = self.now + max_ms;
        while self.now <= until {
            self.vm.tick_sources(
                &self.shared,
                &self.calls,
                &self.counters,
                &self.stats,
                self.now,
            );
            if self.calls.0.borrow().len() > before {
                return Some(self.calls.0.borrow().len() as u32);
            }
            self.now += 1000;
        }
        None
    }

    fn answer(&mut self, token: u32, status: u32, headers: &[(&str, &str)], body: &str) {
        let body = body.as_bytes().to_vec();
        let read = || Some(body.clone());
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let response = PollResponse {
            status: Some(status),
            etag: header("etag"),
            body_size: body.len(),
            retry_after: header("retry-after"),
            location: header("location"),
            read_body: &read,
        };
        self.vm
            .source_response(token, &response, &self.shared, &self.counters, &self.stats);
        self.now += 1000;
    }

    fn failed(&self) -> i64 {
        self.stats.value("sluice.unleash.fetch.failed")
    }

    /// Whether the payload in force has `checkout` on for everyone (the good payload does).
    fn checkout_on(&self) -> bool {
        let engine = self.vm.unleash.borrow();
        engine.as_ref().is_some_and(|e| {
            e.is_enabled("checkout", &sluice_unleash::Context::new().user_id("u1"))
        })
    }
}

#[test]
fn bad_answers_are_logged_counted_and_keep_the_last_good_payload() {
    let mut p = Poller::new();
    let t = p.next_poll(0).expect("the first tick polls");
    p.answer(
        t,
        200,
        &[("etag", "\"e1\"")],
        &payload(r#"{"name": "default"}"#),
    );
    assert_eq!(p.stats.value("sluice.unleash.fetch.ok"), 1);
    assert!(p.checkout_on());

    let cases: [Case; 6] = [
        (401, &[], String::new(), "HTTP 401 from cluster `unleash`: the credentials in poll.authorization were refused"),
        (403, &[], String::new(), "HTTP 403 from cluster `unleash`: the credentials in poll.authorization were refused"),
        (500, &[], "down".into(), "HTTP 500 from cluster `unleash`"),
        (302, &[("location", "https://unleash.example/login")], String::new(),
         "HTTP 302 redirect from cluster `unleash` to `https://unleash.example/login` not followed"),
        (200, &[], "x".repeat(5000), "payload of 5000 bytes is over max_body_bytes 4096"),
        (200, &[], payload(r#"{"name": "my-custom-strategy"}"#),
         "payload refused: features[\"checkout\"].strategies[0]: unknown strategy \"my-custom-strategy\""),
    ];
    for (i, (status, headers, body, message)) in cases.iter().enumerate() {
        let t = p.next_poll(2000).expect("polls at the interval");
        p.answer(t, *status, headers, body);
        assert_eq!(p.failed(), i as i64 + 1, "HTTP {status}: a counted failure");
        assert!(
            logged(message),
            "HTTP {status}: not logged: {message}\n{:?}",
            log_text()
        );
        assert!(
            p.checkout_on(),
            "HTTP {status}: the last good payload stays in force"
        );
    }
    let t = p.next_poll(2000).unwrap();
    p.answer(
        t,
        200,
        &[],
        &payload(r#"{"name": "default", "constraints": [{"contextName": "userId", "operator": "FANCY_NEW_OP", "values": ["u1"]}]}"#),
    );
    assert!(logged("unknown operator \"FANCY_NEW_OP\""));
    assert!(p.checkout_on());
    assert_eq!(p.failed(), 7);
}

#[test]
fn a_429_with_retry_after_postpones_the_next_poll() {
    let mut p = Poller::new();
    let t = p.next_poll(0).unwrap();
    p.answer(t, 200, &[], &payload(r#"{"name": "default"}"#));
    let t = p.next_poll(2000).unwrap();
    let asked_at = p.now;
    p.answer(t, 429, &[("retry-after", "30")], "slow down");
    assert!(logged(
        "HTTP 429 from cluster `unleash`; next poll after Retry-After 30s"
    ));
    let t = p.next_poll(60_000).expect("polls again after the wait");
    let waited = p.now - asked_at;
    assert!(
        (30_000..=32_000).contains(&waited),
        "next poll {waited} ms after the 429"
    );
    // Without Retry-After (or not in seconds), the interval applies.
    p.answer(
        t,
        503,
        &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
        "",
    );
    assert!(logged(
        "HTTP 503 from cluster `unleash` without Retry-After in seconds; polling at the interval"
    ));
    let asked_at = p.now;
    p.next_poll(5000).unwrap();
    assert!(p.now - asked_at <= 1000, "{}", p.now - asked_at);
    assert!(p.checkout_on());
}
