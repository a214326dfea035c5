//! Polling Unleash through the module (build/sluice.wasm): the root context
//! calls the `unleash` cluster on its tick, one worker per interval, and every
//! worker writes the payload's answers into the flags header. The scripted
//! cluster answers 200, 304, 500, times out, resets, sends garbage or too much;
//! a failure keeps the last good payload, says why in the log and counts
//! `sluice.unleash.fetch.failed`.
mod common;

use sluice_wasm_host::{Host, HttpCall, LogLevel, ScriptedResponse};
use std::time::{Duration, SystemTime};

const CLUSTER: &str = "unleash";
const TOKEN: &str = "*:production.0123456789abcdef";
const INTERVAL: Duration = Duration::from_secs(10);
/// The filter's timer; it polls (and takes a payload another worker fetched) on every tick.
const TICK: Duration = Duration::from_millis(250);
const TICKS_PER_INTERVAL: u32 = (INTERVAL.as_millis() / TICK.as_millis()) as u32;

fn config(revision: &str, before_first_payload: &str) -> String {
    format!(
        r#"{{"version": 1, "revision": "{revision}", "identity": {{"user": [{{"header": "x-user-id"}}]}},
  "unleash": {{
    "poll": {{"cluster": "{CLUSTER}", "authority": "unleash.internal", "path": "/api/client/features",
              "authorization": "{TOKEN}", "interval": "10s", "timeout": "2s", "max_body_bytes": 4096}},
    "context": {{"app_name": "storefront", "environment": "production"}},
    "features": ["checkout", "banner"],
    "headers": {{"banner": "x-feature-banner"}},
    "before_first_payload": "{before_first_payload}"}}}}"#
    )
}

/// An `/api/client/features` payload: `checkout` rolled out to `rollout`% of
/// users, `banner` on for everyone with the variant `blue`.
fn payload(rollout: u32) -> String {
    format!(
        r#"{{"version": 2, "features": [
  {{"name": "checkout", "enabled": true, "strategies": [{{"name": "flexibleRollout",
    "parameters": {{"rollout": "{rollout}", "stickiness": "userId", "groupId": "checkout"}}}}]}},
  {{"name": "banner", "enabled": true, "strategies": [{{"name": "default"}}],
    "variants": [{{"name": "blue", "weight": 1000, "weightType": "variable", "stickiness": "default",
                  "payload": {{"type": "string", "value": "blue-banner"}}}}]}}]}}"#
    )
}

fn served(rollout: u32, etag: &str) -> ScriptedResponse {
    ScriptedResponse::ok(payload(rollout))
        .header("content-type", "application/json")
        .header("etag", etag)
}

struct Edge {
    host: Host,
    origin: SystemTime,
}

impl Edge {
    fn new(workers: usize, config: &str) -> Edge {
        let host = common::plugin("sluice.wasm")
            .host()
            .plugin_config(config)
            .workers(workers)
            .build()
            .unwrap();
        Edge {
            origin: host.now(),
            host,
        }
    }

    /// `(flags header, banner header)` for user 42 on worker `w`.
    fn flags(&mut self, w: usize) -> (Option<String>, Option<String>) {
        let out = self
            .host
            .request_on(w)
            .header("x-user-id", "42")
            .send()
            .unwrap();
        (
            out.request_header("x-sluice-flags"),
            out.request_header("x-feature-banner"),
        )
    }

    fn flags_header(&mut self, w: usize) -> Option<String> {
        self.flags(w).0
    }

    fn every_worker(&mut self) -> Vec<Option<String>> {
        (0..self.host.worker_count())
            .map(|w| self.flags_header(w))
            .collect()
    }

    /// Moves the clock to the next tick (the workers tick every 250ms from
    /// their configuration on).
    fn tick(&mut self) {
        let since = self.host.now().duration_since(self.origin).unwrap();
        let into = Duration::from_nanos((since.as_nanos() % TICK.as_nanos()) as u64);
        self.host.advance(TICK - into).unwrap();
    }

    /// Runs the clock to just after the next poll is dispatched; returns it.
    fn next_poll(&mut self) -> HttpCall {
        let before = self.host.http_calls().len();
        for _ in 0..TICKS_PER_INTERVAL {
            self.tick();
            let calls = self.host.http_calls();
            if calls.len() > before {
                assert_eq!(calls.len(), before + 1, "one poll at a time");
                return calls[before].clone();
            }
        }
        panic!("no poll within an interval")
    }

    fn counter(&self, outcome: &str) -> u64 {
        self.host
            .metric(&format!("sluice.unleash.fetch.{outcome}"))
            .map_or(0, |m| m.value())
    }

    fn seconds(&self) -> u64 {
        self.host
            .now()
            .duration_since(self.origin)
            .unwrap()
            .as_secs()
    }

    fn warnings(&self) -> Vec<String> {
        self.host
            .logs()
            .into_iter()
            .filter(|l| l.level == LogLevel::Warn)
            .map(|l| l.message)
            .collect()
    }
}

fn header(call: &HttpCall, name: &str) -> Option<String> {
    call.headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

const ON: &str = "banner=blue;checkout=on";
const OFF: &str = "banner=blue;checkout=off";

#[test]
fn a_200_is_loaded_and_the_flags_header_follows_the_payload() {
    let mut edge = Edge::new(2, &config("poll-1", "defaults"));
    edge.host.on_http_call(CLUSTER, served(100, "\"e1\""));
    assert_eq!(
        edge.flags(0),
        (Some("banner=off;checkout=off".into()), Some("off".into())),
        "before the first payload the listed features are off"
    );

    let call = edge.next_poll();
    println!("first poll {}s after configure", edge.seconds());
    assert_eq!(call.cluster, CLUSTER);
    assert_eq!(header(&call, ":method").as_deref(), Some("GET"));
    assert_eq!(
        header(&call, ":path").as_deref(),
        Some("/api/client/features")
    );
    assert_eq!(
        header(&call, ":authority").as_deref(),
        Some("unleash.internal")
    );
    assert_eq!(header(&call, "authorization").as_deref(), Some(TOKEN));
    assert_eq!(header(&call, "if-none-match"), None, "no ETag yet");
    assert_eq!(call.timeout, Some(Duration::from_secs(2)));

    for w in 0..2 {
        assert_eq!(
            edge.flags(w),
            (Some(ON.into()), Some("blue-banner".into())),
            "worker {w}"
        );
    }
    assert_eq!(edge.counter("ok"), 1);
    assert!(
        edge.host
            .logs()
            .iter()
            .any(|l| l.message.contains("generation 1 loaded: 2 features")),
        "{:?}",
        edge.host.logs()
    );

    // The server rolls `checkout` back to 0%: the header follows on the next poll.
    edge.host.on_http_call(CLUSTER, served(0, "\"e2\""));
    let changed_at = edge.seconds();
    let mut ticks = 0;
    while edge.every_worker() != vec![Some(OFF.to_string()); 2] {
        edge.tick();
        ticks += 1;
        assert!(ticks <= TICKS_PER_INTERVAL, "no switch within an interval");
    }
    println!(
        "payload changed at {changed_at}s; every worker follows after {ticks} ticks (interval 10s)"
    );
    assert_eq!(edge.counter("ok"), 2);
    assert_eq!(edge.counter("failed"), 0);
}

#[test]
fn a_304_keeps_the_payload_and_the_poll_sends_the_etag() {
    let mut edge = Edge::new(2, &config("etag-1", "defaults"));
    edge.host.on_http_call(CLUSTER, served(100, "\"v1-abc\""));
    edge.next_poll();
    assert_eq!(edge.flags_header(1).as_deref(), Some(ON));

    edge.host.on_http_call(
        CLUSTER,
        ScriptedResponse::status(304).header("etag", "\"v1-abc\""),
    );
    for _ in 0..3 {
        let call = edge.next_poll();
        assert_eq!(
            header(&call, "if-none-match").as_deref(),
            Some("\"v1-abc\"")
        );
        assert_eq!(edge.every_worker(), vec![Some(ON.to_string()); 2]);
    }
    assert_eq!(edge.counter("not_modified"), 3);
    assert_eq!(edge.counter("ok"), 1);
    assert_eq!(edge.counter("failed"), 0);
    assert!(edge.warnings().is_empty(), "{:?}", edge.warnings());

    // A new payload with a new ETag: the next poll asks with it.
    edge.host.on_http_call(CLUSTER, served(0, "\"v2-def\""));
    edge.next_poll();
    edge.tick();
    assert_eq!(edge.every_worker(), vec![Some(OFF.to_string()); 2]);
    let call = edge.next_poll();
    assert_eq!(
        header(&call, "if-none-match").as_deref(),
        Some("\"v2-def\"")
    );
}

#[test]
fn a_failed_poll_keeps_the_last_good_payload_says_why_and_recovers() {
    let mut edge = Edge::new(2, &config("fail-1", "defaults"));
    edge.host.on_http_call(CLUSTER, served(100, "\"good\""));
    edge.next_poll();
    edge.tick();
    assert_eq!(edge.every_worker(), vec![Some(ON.to_string()); 2]);

    let oversized = format!(
        r#"{{"version": 2, "features": [], "padding": "{}"}}"#,
        "x".repeat(5000)
    );
    let failures: [(&str, ScriptedResponse, &str); 6] = [
        (
            "500",
            ScriptedResponse::status(500).body("boom"),
            "HTTP 500 from cluster `unleash`",
        ),
        (
            "timeout",
            ScriptedResponse::timeout(),
            "HTTP 504 from cluster `unleash` (Envoy answers 504 when the poll times out after 2000ms)",
        ),
        (
            "reset",
            ScriptedResponse::fail(),
            "no response from cluster `unleash` (the call was reset: the server is unreachable",
        ),
        (
            "garbage",
            ScriptedResponse::ok("<html>502 Bad Gateway</html>"),
            "invalid payload",
        ),
        (
            "truncated JSON",
            ScriptedResponse::ok(&payload(0)[..100]),
            "invalid payload",
        ),
        (
            "oversized",
            ScriptedResponse::ok(&oversized),
            "is over max_body_bytes 4096",
        ),
    ];
    for (i, (what, response, why)) in failures.into_iter().enumerate() {
        edge.host.on_http_call(CLUSTER, response);
        let call = edge.next_poll();
        assert_eq!(
            header(&call, "if-none-match").as_deref(),
            Some("\"good\""),
            "{what}"
        );
        // A timeout fails when the call's 2s timeout elapses.
        edge.host.advance(Duration::from_secs(3)).unwrap();
        assert_eq!(edge.counter("failed"), i as u64 + 1, "{what}");
        let warnings = edge.warnings();
        let last = warnings.last().unwrap();
        assert!(
            last.contains("unleash poll failed")
                && last.contains(why)
                && last.ends_with("keeping the last good payload"),
            "{what}: {last}"
        );
        println!("{what}: {last}");
        assert_eq!(
            edge.every_worker(),
            vec![Some(ON.to_string()); 2],
            "{what}: the last good payload stays in force"
        );
    }
    assert_eq!(edge.counter("ok"), 1);

    // The server is back, with a change: every worker takes it.
    edge.host.on_http_call(CLUSTER, served(0, "\"better\""));
    edge.next_poll();
    edge.tick();
    assert_eq!(edge.every_worker(), vec![Some(OFF.to_string()); 2]);
    assert_eq!(edge.counter("ok"), 2);
    assert_eq!(edge.counter("failed"), 6);
}

#[test]
fn workers_share_one_fetch_per_interval() {
    const WORKERS: usize = 3;
    let mut edge = Edge::new(WORKERS, &config("share-1", "defaults"));
    // The server takes 300ms to answer.
    edge.host.on_http_call(
        CLUSTER,
        served(100, "\"s1\"").after(Duration::from_millis(300)),
    );
    let first = edge.next_poll();
    let mut switch_ticks = Vec::new();
    for round in 0..6u32 {
        // The poll is in flight: nobody has the new payload yet.
        let expected = if round % 2 == 0 { ON } else { OFF };
        let before = edge.every_worker();
        assert!(before.iter().all(|f| f.as_deref() != Some(expected)));
        edge.host.advance(Duration::from_millis(300)).unwrap();
        // The poller has it as soon as the answer arrives; the others on
        // their next tick.
        let now: Vec<Option<String>> = edge.every_worker();
        let poller = edge.host.http_calls().last().unwrap().worker;
        assert_eq!(now[poller].as_deref(), Some(expected), "round {round}");
        let mut ticks = 0;
        while edge.every_worker() != vec![Some(expected.to_string()); WORKERS] {
            edge.tick();
            ticks += 1;
            assert!(ticks <= 1, "round {round}: the others follow within a tick");
        }
        switch_ticks.push(ticks);
        // The next payload flips `checkout`.
        let (rollout, etag) = if round % 2 == 0 {
            (0, "\"s0\"")
        } else {
            (100, "\"s1\"")
        };
        edge.host.on_http_call(
            CLUSTER,
            served(rollout, etag).after(Duration::from_millis(300)),
        );
        if round < 5 {
            edge.next_poll();
        }
    }
    println!("ticks for the other workers to switch, per poll: {switch_ticks:?}");
    let calls = edge.host.http_calls();
    assert_eq!(
        calls.len(),
        6,
        "one fetch per interval for the three workers"
    );
    assert_eq!(edge.counter("ok"), 6);
    assert_eq!(first.worker, 0, "the first worker to tick polls first");
    let loaded_from_shared = edge
        .host
        .logs()
        .iter()
        .filter(|l| l.message.contains("taken from shared data"))
        .count();
    assert_eq!(loaded_from_shared, 6 * (WORKERS - 1));
}

#[test]
fn before_the_first_payload_defaults_or_pass_through() {
    // defaults: the listed features are written off, with their headers.
    let mut edge = Edge::new(1, &config("first-1", "defaults"));
    assert_eq!(
        edge.flags(0),
        (Some("banner=off;checkout=off".into()), Some("off".into()))
    );

    // pass_through: nothing is written, yet a client's own copies are removed.
    let mut edge = Edge::new(1, &config("first-2", "pass_through"));
    let out = edge
        .host
        .request()
        .header("x-user-id", "42")
        .header("x-sluice-flags", "checkout=on")
        .header("x-feature-banner", "gold")
        .send()
        .unwrap();
    assert_eq!(out.request_header("x-sluice-flags"), None);
    assert_eq!(out.request_header("x-feature-banner"), None);

    // A failed first poll changes nothing; the first good one applies.
    edge.host
        .on_http_call(CLUSTER, ScriptedResponse::status(503));
    edge.next_poll();
    assert_eq!(edge.flags(0), (None, None));
    assert_eq!(edge.counter("failed"), 1);
    edge.host.on_http_call(CLUSTER, served(100, "\"x\""));
    edge.next_poll();
    assert_eq!(edge.flags(0), (Some(ON.into()), Some("blue-banner".into())));
}

#[test]
fn a_config_pushed_again_keeps_the_polled_payload() {
    let mut edge = Edge::new(2, &config("push-1", "defaults"));
    edge.host.on_http_call(CLUSTER, served(100, "\"p\""));
    edge.next_poll();
    edge.tick();
    assert_eq!(edge.every_worker(), vec![Some(ON.to_string()); 2]);

    // The same config again (Envoy re-pushes on unrelated changes): the
    // features must not fall back to their defaults, not even until a tick.
    assert_eq!(
        edge.host.reconfigure(config("push-1", "defaults")).unwrap(),
        vec![true; 2]
    );
    assert_eq!(edge.every_worker(), vec![Some(ON.to_string()); 2]);

    // A new revision with the same poll settings (say, a canary weight
    // changed elsewhere in the config): the payload stays in force too.
    assert_eq!(
        edge.host.reconfigure(config("push-2", "defaults")).unwrap(),
        vec![true; 2]
    );
    assert_eq!(edge.every_worker(), vec![Some(ON.to_string()); 2]);
    edge.tick();
    assert_eq!(edge.every_worker(), vec![Some(ON.to_string()); 2]);
}
