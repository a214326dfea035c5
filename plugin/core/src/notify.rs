//! Trip notifications: when a guard trips, the VM that tripped it POSTs a JSON report to the
//! guard's webhook through an Envoy cluster, retrying failures (non-2xx, reset, timeout) with
//! exponential backoff up to the configured number of attempts. Asynchronous: nothing waits for
//! the answer, so a slow or failing webhook never holds up requests or the guard.
use crate::host::HttpCalls;
use crate::plan::WebhookPlan;

/// First retry after this long, doubling each time.
pub const BACKOFF_MS: i64 = 1_000;

#[derive(Debug, Clone, PartialEq)]
struct Pending {
    route: usize,
    body: String,
    /// Attempts made so far.
    attempts: u32,
    next_at_ms: i64,
    in_flight: Option<u32>,
}

/// What happened to a notification, for the stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Delivered {
        route: usize,
    },
    /// One attempt failed (dispatch refused, non-2xx, reset or timeout); a retry may follow.
    Failed {
        route: usize,
    },
    /// The last attempt failed.
    GaveUp {
        route: usize,
    },
}

/// The notifications one VM still has to deliver.
#[derive(Debug, Default)]
pub struct Notifier {
    pending: Vec<Pending>,
}

impl Notifier {
    #[inline(never)]
    pub fn enqueue(&mut self, route: usize, body: String, now_ms: i64) {
        self.pending.push(Pending {
            route,
            body,
            attempts: 0,
            next_at_ms: now_ms,
            in_flight: None,
        });
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sends what is due. `plan_of` gives a route's webhook.
    #[inline(never)]
    pub fn tick<'p>(
        &mut self,
        plan_of: impl Fn(usize) -> Option<&'p WebhookPlan>,
        calls: &dyn HttpCalls,
        now_ms: i64,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for p in self.pending.iter_mut() {
            if p.in_flight.is_some() || now_ms < p.next_at_ms {
                continue;
            }
            let Some(hook) = plan_of(p.route) else {
                p.attempts = u32::MAX;
                continue;
            };
            p.attempts += 1;
            let length = p.body.len().to_string();
            let headers = [
                (":method", "POST"),
                (":path", hook.path.as_str()),
                (":authority", hook.authority.as_str()),
                ("content-type", "application/json"),
                ("content-length", length.as_str()),
            ];
            match calls.dispatch_with_body(
                &hook.cluster,
                &headers,
                p.body.as_bytes(),
                hook.timeout_ms,
            ) {
                Ok(token) => p.in_flight = Some(token),
                Err(why) => {
                    log::warn!(
                        "sluice: guard webhook: cannot call cluster `{}` ({why}); is it defined?",
                        hook.cluster
                    );
                    events.push(fail(p, hook, now_ms));
                }
            }
        }
        self.pending.retain(|p| {
            p.in_flight.is_some() || plan_of(p.route).is_some_and(|hook| p.attempts < hook.attempts)
        });
        events
    }

    /// An HTTP call's answer (`status` `None`: reset or timeout). `None` when the token is not
    /// one of ours.
    #[inline(never)]
    pub fn response<'p>(
        &mut self,
        token: u32,
        status: Option<u32>,
        plan_of: impl Fn(usize) -> Option<&'p WebhookPlan>,
        now_ms: i64,
    ) -> Option<Event> {
        let i = self
            .pending
            .iter()
            .position(|p| p.in_flight == Some(token))?;
        let p = &mut self.pending[i];
        p.in_flight = None;
        let route = p.route;
        if status.is_some_and(|s| (200..300).contains(&s)) {
            self.pending.remove(i);
            return Some(Event::Delivered { route });
        }
        let event = match plan_of(route) {
            Some(hook) => {
                log::warn!(
                    "sluice: guard webhook for route {route}: attempt {} of {} failed ({}); {}",
                    p.attempts,
                    hook.attempts,
                    status.map_or("no answer: timeout or reset".to_string(), |s| format!(
                        "status {s}"
                    )),
                    if p.attempts < hook.attempts {
                        "will retry"
                    } else {
                        "giving up"
                    }
                );
                fail(p, hook, now_ms)
            }
            None => Event::GaveUp { route },
        };
        if matches!(event, Event::GaveUp { .. }) {
            self.pending.remove(i);
        }
        Some(event)
    }
}

#[inline(never)]
fn fail(p: &mut Pending, hook: &WebhookPlan, now_ms: i64) -> Event {
    if p.attempts >= hook.attempts {
        return Event::GaveUp { route: p.route };
    }
    let shift = (p.attempts.saturating_sub(1)).min(16);
    p.next_at_ms = now_ms + (BACKOFF_MS << shift);
    Event::Failed { route: p.route }
}

/// `text` as a JSON string literal.
#[inline(never)]
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// One POST: cluster, headers, body.
    type Sent = (String, Vec<(String, String)>, Vec<u8>);

    #[derive(Default)]
    struct Calls {
        sent: RefCell<Vec<Sent>>,
        refuse: bool,
    }

    impl HttpCalls for Calls {
        fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
            Err("GET not expected".into())
        }
        fn dispatch_with_body(
            &self,
            cluster: &str,
            headers: &[(&str, &str)],
            body: &[u8],
            _: u64,
        ) -> Result<u32, String> {
            if self.refuse {
                return Err("BadArgument".into());
            }
            let mut sent = self.sent.borrow_mut();
            sent.push((
                cluster.to_string(),
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                body.to_vec(),
            ));
            Ok(sent.len() as u32)
        }
    }

    fn hook(attempts: u32) -> WebhookPlan {
        WebhookPlan {
            cluster: "ctrl".into(),
            path: "/trip".into(),
            authority: "ctrl.local".into(),
            timeout_ms: 500,
            attempts,
        }
    }

    #[test]
    fn posts_json_and_retries_with_backoff_until_delivered() {
        let h = hook(3);
        let calls = Calls::default();
        let mut n = Notifier::default();
        n.enqueue(0, "{\"route\":\"r\"}".into(), 1_000);
        assert_eq!(n.tick(|_| Some(&h), &calls, 1_000), vec![]);
        {
            let sent = calls.sent.borrow();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].0, "ctrl");
            assert!(sent[0].1.contains(&(":method".into(), "POST".into())));
            assert!(sent[0].1.contains(&(":path".into(), "/trip".into())));
            assert_eq!(sent[0].2, b"{\"route\":\"r\"}");
        }
        // A 500: retry after 1s, not before.
        assert_eq!(
            n.response(1, Some(500), |_| Some(&h), 1_200),
            Some(Event::Failed { route: 0 })
        );
        n.tick(|_| Some(&h), &calls, 2_000);
        assert_eq!(calls.sent.borrow().len(), 1, "backoff: not yet");
        n.tick(|_| Some(&h), &calls, 2_200);
        assert_eq!(calls.sent.borrow().len(), 2);
        // A timeout (no answer): the next retry waits 2s.
        assert_eq!(
            n.response(2, None, |_| Some(&h), 2_700),
            Some(Event::Failed { route: 0 })
        );
        n.tick(|_| Some(&h), &calls, 4_600);
        assert_eq!(calls.sent.borrow().len(), 2);
        n.tick(|_| Some(&h), &calls, 4_700);
        assert_eq!(calls.sent.borrow().len(), 3);
        assert_eq!(
            n.response(99, Some(200), |_| Some(&h), 4_800),
            None,
            "not ours"
        );
        assert_eq!(
            n.response(3, Some(204), |_| Some(&h), 4_800),
            Some(Event::Delivered { route: 0 })
        );
        assert!(n.is_idle());
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        let h = hook(2);
        let calls = Calls::default();
        let mut n = Notifier::default();
        n.enqueue(3, "{}".into(), 0);
        n.tick(|_| Some(&h), &calls, 0);
        assert_eq!(
            n.response(1, Some(503), |_| Some(&h), 10),
            Some(Event::Failed { route: 3 })
        );
        n.tick(|_| Some(&h), &calls, 1_010);
        assert_eq!(
            n.response(2, Some(503), |_| Some(&h), 1_020),
            Some(Event::GaveUp { route: 3 })
        );
        assert!(n.is_idle());
        let refusing = Calls {
            refuse: true,
            ..Calls::default()
        };
        n.enqueue(3, "{}".into(), 0);
        assert_eq!(
            n.tick(|_| Some(&h), &refusing, 0),
            vec![Event::Failed { route: 3 }]
        );
        assert_eq!(
            n.tick(|_| Some(&h), &refusing, 1_000),
            vec![Event::GaveUp { route: 3 }]
        );
        assert!(n.is_idle());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
