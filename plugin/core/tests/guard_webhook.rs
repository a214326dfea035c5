//! A tripped guard tells its webhook, through the VM's real response and guard path: the JSON
//! body names the route, revision and numbers; failures are retried with backoff and counted;
//! requests keep flowing meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::engine::Headers;
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::HttpCalls;
use sluice_core::pipeline::Facts;
use sluice_core::vm::VmState;
use std::cell::RefCell;

const CONFIG: &str = r#"{"version": 1, "revision": "r7", "identity": {"without_identity": "random"},
  "routes": {"api": {"header": "x-route-api", "versions": ["v1", "v2"],
    "canary": {"stable": "v1", "canary": "v2", "weight": 50},
    "guard": {"method": "sequential", "alpha": 0.05,
      "webhook": {"cluster": "rollouts", "path": "/hooks/sluice", "attempts": 3}}}}}"#;

#[derive(Default)]
struct Recorder {
    posts: RefCell<Vec<(String, String, String)>>,
}

impl HttpCalls for Recorder {
    fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Err("no GET expected".into())
    }
    fn dispatch_with_body(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        _: u64,
    ) -> Result<u32, String> {
        let path = headers
            .iter()
            .find(|(n, _)| *n == ":path")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let mut posts = self.posts.borrow_mut();
        posts.push((cluster.into(), path, String::from_utf8_lossy(body).into()));
        Ok(100 + posts.len() as u32)
    }
}

#[test]
fn a_trip_is_posted_retried_on_500_and_counted() {
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let calls = Recorder::default();
    let plan = sluice_core::compile::load(CONFIG.as_bytes()).expect("config compiles");
    let vm = VmState::new(plan, "r7".into(), 1, &stats);
    let headers: [(&str, &[u8]); 1] = [(":path", b"/")];
    let mut now = 1_000_000i64;
    let mut tripped_at = None;
    for second in 0..60 {
        for i in 0..100u64 {
            let facts = Facts {
                headers: Headers::Pairs(&headers),
                now_ms: now,
                entropy: (second * 1000 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                ..Facts::default()
            };
            let routed = vm.on_request(&facts, |_, _| {});
            let (_, version) = *routed.routes.first().expect("routed");
            // The canary fails every 4th request, stable never.
            let status = if version == 1 && i % 4 == 0 { 500 } else { 200 };
            vm.on_response(&routed, status, false, now + 3);
        }
        now += 1_000;
        vm.run_guards(&shared, &stats, now);
        vm.tick_webhooks(&calls, &stats, now);
        if stats.value("sluice.guard.api.trips") == 1 {
            tripped_at = Some(now);
            break;
        }
    }
    let tripped_at = tripped_at.expect("a canary failing 25% vs 0% trips within a minute");
    {
        let posts = calls.posts.borrow();
        assert_eq!(posts.len(), 1);
        let (cluster, path, body) = &posts[0];
        assert_eq!(
            (cluster.as_str(), path.as_str()),
            ("rollouts", "/hooks/sluice")
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("valid JSON");
        assert_eq!(json["route"], "api");
        assert_eq!(json["revision"], "r7");
        assert_eq!(json["canary"], "v2");
        assert_eq!(json["action"], "rollback");
        assert_eq!(json["method"], "sequential");
        assert!(json["e_value"].as_f64().unwrap() >= 20.0, "{body}");
        assert!(json["since_start"]["canary"]["bad"].as_u64().unwrap() > 0);
        assert_eq!(json["since_start"]["stable"]["bad"], 0);
        assert!(json["reason"]
            .as_str()
            .unwrap()
            .contains("significantly above"));
    }
    // The webhook answers 500: counted, retried a second later, not sooner.
    assert!(vm.webhook_response(101, Some(500), &stats, tripped_at + 100));
    assert!(
        !vm.webhook_response(7, Some(200), &stats, tripped_at + 100),
        "not a webhook call"
    );
    vm.tick_webhooks(&calls, &stats, tripped_at + 500);
    assert_eq!(calls.posts.borrow().len(), 1);
    vm.tick_webhooks(&calls, &stats, tripped_at + 1_200);
    assert_eq!(calls.posts.borrow().len(), 2);
    // Requests are served (to stable) while the webhook is pending.
    let facts = Facts {
        headers: Headers::Pairs(&headers),
        now_ms: tripped_at + 1_300,
        entropy: 3,
        ..Facts::default()
    };
    assert_eq!(
        vm.on_request(&facts, |_, _| {}).routes.first().map(|r| r.1),
        Some(0)
    );
    assert!(vm.webhook_response(102, Some(200), &stats, tripped_at + 1_400));
    assert_eq!(stats.value("sluice.guard.api.webhook.failed"), 1);
    assert_eq!(stats.value("sluice.guard.api.webhook.delivered"), 1);
    assert_eq!(stats.value("sluice.guard.api.webhook.gave_up"), 0);
}
