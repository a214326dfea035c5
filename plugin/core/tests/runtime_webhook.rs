//! Trip notifications as the notifier sends them: one POST per notification while it is in
//! flight (a slow webhook is not flooded), only 2xx is delivered, retries back off 1 s, 2 s, 4 s,
//! the log says which attempt failed and whether another follows, and the JSON text keeps
//! ordinary characters as they are.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{capture_logs, logged};
use std::cell::RefCell;

use sluice_core::host::HttpCalls;
use sluice_core::notify::{json_string, Event, Notifier};
use sluice_core::plan::WebhookPlan;

/// Records each POST's headers; tokens count up from 1.
#[derive(Default)]
struct Calls(RefCell<Vec<Vec<(String, String)>>>);

impl HttpCalls for Calls {
    fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Err("no GET expected".into())
    }
    fn dispatch_with_body(
        &self,
        _: &str,
        headers: &[(&str, &str)],
        _: &[u8],
        _: u64,
    ) -> Result<u32, String> {
        let mut sent = self.0.borrow_mut();
        sent.push(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        Ok(sent.len() as u32)
    }
}

fn hook(attempts: u32) -> WebhookPlan {
    WebhookPlan {
        cluster: "rollouts".into(),
        path: "/hooks/sluice".into(),
        authority: "rollouts.internal".into(),
        timeout_ms: 2_000,
        attempts,
    }
}

#[test]
fn a_notification_in_flight_is_not_sent_again() {
    let h = hook(5);
    let calls = Calls::default();
    let mut n = Notifier::default();
    n.enqueue(0, "{\"event\":\"x\"}".into(), 0);
    n.tick(|_| Some(&h), &calls, 0);
    for now in [1_000, 5_000, 60_000] {
        assert_eq!(n.tick(|_| Some(&h), &calls, now), vec![]);
    }
    assert_eq!(
        calls.0.borrow().len(),
        1,
        "still waiting for the first answer"
    );
    let headers = calls.0.borrow()[0].clone();
    assert!(headers.contains(&(":authority".into(), "rollouts.internal".into())));
    assert!(headers.contains(&("content-type".into(), "application/json".into())));
    assert!(headers.contains(&("content-length".into(), "13".into())));
    assert!(!n.is_idle());
}

#[test]
fn only_2xx_is_delivered_and_retries_back_off_doubling() {
    capture_logs();
    let h = hook(4);
    let calls = Calls::default();
    let mut n = Notifier::default();
    n.enqueue(2, "{}".into(), 0);
    let mut now = 0;
    let mut sent_at = Vec::new();
    // A redirect, Envoy's 504 and a reset: each a failed attempt, each retry later.
    for (i, status) in [Some(300), Some(504), None].into_iter().enumerate() {
        // Ticks every 100 ms until the attempt goes out (within 10 s).
        for _ in 0..100 {
            n.tick(|_| Some(&h), &calls, now);
            if calls.0.borrow().len() > i {
                sent_at.push(now);
                break;
            }
            now += 100;
        }
        assert_eq!(
            calls.0.borrow().len(),
            i + 1,
            "attempt {} never went out",
            i + 1
        );
        now += 100;
        assert_eq!(
            n.response(i as u32 + 1, status, |_| Some(&h), now),
            Some(Event::Failed { route: 2 })
        );
        sent_at.push(now);
    }
    assert!(logged(
        "sluice: guard webhook for route 2: attempt 1 of 4 failed (status 300); will retry"
    ));
    assert!(logged(
        "attempt 3 of 4 failed (no answer: timeout or reset); will retry"
    ));
    // Sent at 0; answered at 100, resent 1 s later; answered, resent 2 s later; answered.
    let waits: Vec<i64> = sent_at
        .windows(2)
        .skip(1)
        .step_by(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert_eq!(waits, [1_000, 2_000]);
    // The fourth attempt waits 4 s, then the last failure gives up.
    let answered = now;
    n.tick(|_| Some(&h), &calls, answered + 3_999);
    assert_eq!(calls.0.borrow().len(), 3);
    n.tick(|_| Some(&h), &calls, answered + 4_000);
    assert_eq!(calls.0.borrow().len(), 4);
    assert_eq!(
        n.response(4, Some(299), |_| Some(&h), answered + 4_100),
        Some(Event::Delivered { route: 2 })
    );
    assert!(n.is_idle());

    let once = hook(1);
    let mut n = Notifier::default();
    n.enqueue(3, "{}".into(), 0);
    n.tick(|_| Some(&once), &calls, 0);
    assert_eq!(
        n.response(5, Some(500), |_| Some(&once), 10),
        Some(Event::GaveUp { route: 3 })
    );
    assert!(logged(
        "sluice: guard webhook for route 3: attempt 1 of 1 failed (status 500); giving up"
    ));
    assert!(n.is_idle());
}

#[test]
fn json_text_escapes_only_what_json_requires() {
    assert_eq!(json_string("route a-1 / ü"), "\"route a-1 / ü\"");
    assert_eq!(json_string("tab\there"), "\"tab\\u0009here\"");
    assert_eq!(json_string("\u{1f}"), "\"\\u001f\"");
}
