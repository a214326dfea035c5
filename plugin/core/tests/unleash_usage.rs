//! Usage metrics back to Unleash, natively: two VMs count their requests, one of them per
//! interval registers the client and sends the summed bucket in Unleash's format; features that
//! Unleash did not evaluate are not counted; while Unleash does not answer, buckets are kept up to
//! the bound and the oldest dropped (counted); bad `unleash.metrics` settings are refused.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value;
use sluice_core::engine::Headers;
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::HttpCalls;
use sluice_core::pipeline::Facts;
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_core::vm::VmState;

/// One dispatched call: its headers and body (`None` for the GET polls).
type Call = (Vec<(String, String)>, Option<String>);

/// Every call any VM dispatched; tokens count up from 1 across VMs.
#[derive(Default)]
struct Calls(RefCell<Vec<Call>>);

impl Calls {
    fn record(&self, headers: &[(&str, &str)], body: Option<&[u8]>) -> u32 {
        let mut calls = self.0.borrow_mut();
        calls.push((
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body.map(|b| String::from_utf8_lossy(b).into_owned()),
        ));
        calls.len() as u32
    }

    /// Tokens and bodies of the POSTs to `path`.
    fn posts(&self, path: &str) -> Vec<(u32, Value)> {
        self.0
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, (h, _))| h.iter().any(|(k, v)| k == ":path" && v == path))
            .map(|(i, (h, body))| {
                assert!(h.iter().any(|(k, v)| k == ":method" && v == "POST"));
                assert!(
                    h.iter()
                        .any(|(k, v)| k == "authorization" && v == "client-token"),
                    "the poll's token goes with the report"
                );
                let body = body.as_deref().expect("a POST has a body");
                (i as u32 + 1, serde_json::from_str(body).expect("JSON body"))
            })
            .collect()
    }
}

impl HttpCalls for Calls {
    fn dispatch(&self, _: &str, headers: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Ok(self.record(headers, None))
    }
    fn dispatch_with_body(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        _: u64,
    ) -> Result<u32, String> {
        assert_eq!(cluster, "unleash", "reports go through the poll's cluster");
        Ok(self.record(headers, Some(body)))
    }
}

fn config(metrics: &str) -> String {
    format!(
        r#"{{"version": 1, "identity": {{"user": [{{"header": "x-user"}}]}},
  "unleash": {{"poll": {{"cluster": "unleash", "path": "/api/client/features", "authorization": "client-token",
                        "interval": "10s", "timeout": "1s"}},
              "context": {{"app_name": "shop"}},
              "features": ["checkout", "banner", "missing"],
              "metrics": {metrics},
              "payload": {PAYLOAD}}}}}"#
    )
}

/// `checkout`: 50% of users, variants blue/green; `banner`: off; `missing` is not in it.
const PAYLOAD: &str = r#"{"version": 2, "features": [
  {"name": "checkout", "enabled": true,
   "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "checkout"}}],
   "variants": [{"name": "blue", "weight": 500, "stickiness": "userId"}, {"name": "green", "weight": 500, "stickiness": "userId"}]},
  {"name": "banner", "enabled": false, "strategies": [{"name": "default"}]}]}"#;

/// Several VMs of one Envoy: one shared data, one host for calls.
struct Envoy {
    vms: Vec<VmState>,
    counters: Vec<PollCounters>,
    shared: LocalShared,
    stats: LocalStats,
    calls: Calls,
    now: i64,
}

impl Envoy {
    fn new(vms: usize, metrics: &str) -> Envoy {
        let stats = LocalStats::default();
        let config = config(metrics);
        Envoy {
            vms: (0..vms)
                .map(|i| VmState::new(common::plan(&config), "p".into(), i as u64 + 7, &stats))
                .collect(),
            counters: (0..vms).map(|_| PollCounters::define(&stats)).collect(),
            shared: LocalShared::default(),
            stats,
            calls: Calls::default(),
            now: 1_700_000_000_000,
        }
    }

    /// One request on VM `vm`: the flags header it wrote.
    fn request(&self, vm: usize, user: &str) -> String {
        let pairs: Vec<(&str, &[u8])> = vec![(":path", b"/"), ("x-user", user.as_bytes())];
        let facts = Facts {
            headers: Headers::Pairs(&pairs),
            source: None,
            now_ms: self.now,
            entropy: 1,
        };
        let mut out = None;
        self.vms[vm].on_request(&facts, |plan, patch| {
            out = patch
                .apply(plan, &pairs)
                .into_iter()
                .find(|(n, _)| n == "x-sluice-flags")
                .map(|(_, v)| String::from_utf8_lossy(&v).into_owned());
        });
        out.unwrap_or_default()
    }

    /// Every VM ticks once, then the clock moves on by `ms`.
    fn tick(&mut self, ms: i64) {
        for (vm, counters) in self.vms.iter().zip(&self.counters) {
            vm.tick_sources(&self.shared, &self.calls, counters, &self.stats, self.now);
        }
        self.now += ms;
    }

    /// Answers call `token` (whichever VM made it).
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
        for (vm, counters) in self.vms.iter().zip(&self.counters) {
            vm.source_response(token, &response, &self.shared, counters, &self.stats);
        }
    }

    fn stat(&self, name: &str) -> i64 {
        self.stats.value(&format!("sluice.unleash.metrics.{name}"))
    }
}

/// What an Unleash SDK would count for the flags header values seen: per feature yes/no, and
/// per variant (`disabled` when the feature is off or has no variant).
fn expected(headers: &[String]) -> BTreeMap<String, (u64, u64, BTreeMap<String, u64>)> {
    let mut out: BTreeMap<String, (u64, u64, BTreeMap<String, u64>)> = BTreeMap::new();
    for header in headers {
        for pair in header.split(';') {
            let (name, variant) = pair.split_once('=').unwrap();
            if name == "missing" {
                continue;
            }
            let entry = out.entry(name.to_string()).or_default();
            if variant == "off" {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
            let name = if variant == "off" || variant == "on" {
                "disabled"
            } else {
                variant
            };
            *entry.2.entry(name.to_string()).or_default() += 1;
        }
    }
    out
}

fn toggles(body: &Value) -> BTreeMap<String, (u64, u64, BTreeMap<String, u64>)> {
    body["bucket"]["toggles"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| {
            let variants = t["variants"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(v, n)| (v.clone(), n.as_u64().unwrap()))
                .collect();
            (
                name.clone(),
                (
                    t["yes"].as_u64().unwrap(),
                    t["no"].as_u64().unwrap(),
                    variants,
                ),
            )
        })
        .collect()
}

#[test]
fn two_vms_counts_are_summed_and_sent_once_per_interval_after_registering() {
    let mut envoy = Envoy::new(2, r#"{"interval": "10s"}"#);
    envoy.tick(1000);
    // The first round registers, in the format of Unleash's /api/client/register.
    let registers = envoy.calls.posts("/api/client/register");
    assert_eq!(registers.len(), 1, "one VM registers");
    let (register_token, register) = &registers[0];
    assert_eq!(register["appName"], "shop");
    let instance = register["instanceId"].as_str().unwrap().to_string();
    assert!(instance.starts_with("sluice-"), "{instance}");
    assert_eq!(register["interval"], 10_000);
    assert_eq!(register["started"], "2023-11-14T22:13:20.000Z");
    assert!(register["sdkVersion"]
        .as_str()
        .unwrap()
        .starts_with("sluice:"));
    assert!(register["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "flexibleRollout"));
    envoy.answer(*register_token, Some(202));

    let mut headers = Vec::new();
    for i in 0..40 {
        headers.push(envoy.request(i % 2, &format!("user-{i}")));
    }
    // Both VMs add their counts on their ticks; one VM closes the bucket when the round is due.
    for _ in 0..10 {
        envoy.tick(1000);
    }
    let posts = envoy.calls.posts("/api/client/metrics");
    assert_eq!(posts.len(), 1, "one bucket for the interval, from one VM");
    let (token, body) = &posts[0];
    assert_eq!(body["appName"], "shop");
    assert_eq!(body["instanceId"], instance.as_str());
    assert_eq!(body["bucket"]["start"], "2023-11-14T22:13:20.000Z");
    assert_eq!(body["bucket"]["stop"], "2023-11-14T22:13:30.000Z");
    let want = expected(&headers);
    assert_eq!(toggles(body), want);
    // Both outcomes of the rollout and both variants occur among 40 users.
    let checkout = &want["checkout"];
    assert!(checkout.0 > 0 && checkout.1 > 0, "{checkout:?}");
    assert!(checkout.2.contains_key("blue") && checkout.2.contains_key("green"));
    assert_eq!(
        want["banner"],
        (0, 40, BTreeMap::from([("disabled".into(), 40)]))
    );
    envoy.answer(*token, Some(202));
    assert_eq!(envoy.stat("sent"), 1);
    assert_eq!(envoy.stat("failed"), 0);

    // No traffic in the next interval: nothing is sent, and the client is not registered again.
    for _ in 0..10 {
        envoy.tick(1000);
    }
    assert_eq!(envoy.calls.posts("/api/client/metrics").len(), 1);
    assert_eq!(envoy.calls.posts("/api/client/register").len(), 1);
}

#[test]
fn features_unleash_did_not_evaluate_are_not_counted() {
    let mut envoy = Envoy::new(1, "true");
    envoy.tick(1000);
    assert_eq!(envoy.request(0, "u1").split(';').count(), 3);
    for _ in 0..59 {
        envoy.tick(1000);
    }
    assert!(
        envoy.calls.posts("/api/client/metrics").is_empty(),
        "the default interval is 60s"
    );
    envoy.tick(1000);
    let posts = envoy.calls.posts("/api/client/metrics");
    assert_eq!(posts.len(), 1);
    let counted: Vec<String> = toggles(&posts[0].1).into_keys().collect();
    assert_eq!(
        counted,
        ["banner", "checkout"],
        "`missing` is not in the payload"
    );
}

#[test]
fn without_metrics_nothing_is_counted_or_sent() {
    let mut envoy = Envoy::new(1, "false");
    envoy.request(0, "u1");
    assert!(envoy.vms[0].usage.borrow().delta.is_empty());
    for _ in 0..70 {
        envoy.tick(1000);
    }
    assert!(envoy.calls.posts("/api/client/register").is_empty());
    assert!(envoy.calls.posts("/api/client/metrics").is_empty());
}

#[test]
fn while_unleash_fails_buckets_are_kept_up_to_the_bound_then_sent() {
    let mut envoy = Envoy::new(2, r#"{"interval": "2s", "max_pending_buckets": 3}"#);
    let mut answered = 0;
    // Six intervals, each with one request, each report answered 503 or not at all. The
    // requests go to the VM that ticks first, so each interval's bucket holds its request.
    for round in 0..6 {
        envoy.request(0, &format!("user-{round}"));
        envoy.tick(1000);
        envoy.tick(1000);
        let calls = envoy.calls.0.borrow().len() as u32;
        for token in answered + 1..=calls {
            envoy.answer(token, if round % 2 == 0 { Some(503) } else { None });
        }
        answered = calls;
    }
    assert_eq!(envoy.stat("sent"), 0);
    assert!(envoy.stat("failed") >= 6, "{}", envoy.stat("failed"));
    // Six buckets were made, three kept: the three oldest were dropped.
    assert_eq!(envoy.stat("dropped"), 3);

    // Unleash is back: the newest three buckets go out (the new one pushed out one more).
    envoy.request(0, "user-6");
    envoy.tick(1000);
    envoy.tick(1000);
    let calls = envoy.calls.0.borrow().len() as u32;
    let sent: Vec<(u32, Value)> = envoy
        .calls
        .posts("/api/client/metrics")
        .into_iter()
        .filter(|(t, _)| *t > answered)
        .collect();
    for token in answered + 1..=calls {
        envoy.answer(token, Some(202));
    }
    let users: Vec<u64> = sent.iter().map(|(_, b)| toggles(b)["banner"].1).collect();
    assert_eq!(users, [1, 1, 1], "one request in each bucket");
    let starts: Vec<&str> = sent
        .iter()
        .map(|(_, b)| b["bucket"]["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2023-11-14T22:13:26.000Z",
            "2023-11-14T22:13:28.000Z",
            "2023-11-14T22:13:30.000Z"
        ],
        "the oldest buckets were the ones dropped"
    );
    assert_eq!(envoy.stat("sent"), 3);
    assert_eq!(envoy.stat("dropped"), 4);
    assert_eq!(
        envoy.calls.posts("/api/client/metrics").len() as u32 - 3,
        1 + 2 + 3 + 3 + 3 + 3
    );
}

#[test]
fn bad_metrics_settings_are_refused_with_path_and_reason() {
    let load = |json: String| sluice_core::compile::load(json.as_bytes()).map(|_| ());
    let cases = [
        (
            r#"{"interval": "0s"}"#,
            "unleash.metrics.interval: must be at least 1s",
        ),
        (r#"{"interval": "soon"}"#, "unleash.metrics.interval"),
        (
            r#"{"max_pending_buckets": 0}"#,
            "unleash.metrics.max_pending_buckets: 0 is out of range 1..=1000",
        ),
        (
            r#"{"instance_id": ""}"#,
            "unleash.metrics.instance_id: must not be empty",
        ),
        (r#"{"every": "1s"}"#, "unleash.metrics"),
        (r#""yes""#, "unleash.metrics"),
    ];
    for (metrics, want) in cases {
        let err = load(config(metrics)).expect_err(metrics).to_string();
        assert!(err.contains(want), "{metrics}: {err}");
    }
    let pushed_only = r#"{"version": 1, "unleash": {"payload": {"version": 2, "features": []}, "metrics": true}}"#;
    let err = load(pushed_only.to_string()).unwrap_err().to_string();
    assert!(err.contains("unleash.metrics: needs unleash.poll"), "{err}");
    let odd_path = config("true").replace("/api/client/features", "/flags.json");
    let err = load(odd_path).unwrap_err().to_string();
    assert!(
        err.contains("`/flags.json` is not an Unleash client API path"),
        "{err}"
    );
}
