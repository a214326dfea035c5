//! Per-request context: strip spoofed headers, evaluate, write the outcome;
//! on the response, count it for stats and the canary guard.
use super::headers::HeaderMap;
use super::worker::Worker;
use crate::decision::Decision;
use crate::engine::{self, Request};
use crate::guard::{CANARY, STABLE};
use crate::plan::{Plan, Strategy};
use crate::telemetry::latency_bucket;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

pub struct SluiceHttp {
    worker: Rc<Worker>,
    entropy: u64,
    /// Response headers decided at request time (cookies, debug).
    response_headers: Vec<(String, String)>,
    /// (route, version) this request was sent to, for response accounting.
    routed: Vec<(usize, usize)>,
    started_ms: Option<i64>,
    responded: bool,
}

impl SluiceHttp {
    pub fn new(worker: Rc<Worker>, entropy: u64) -> Self {
        SluiceHttp {
            worker,
            entropy,
            response_headers: Vec::new(),
            routed: Vec::new(),
            started_ms: None,
            responded: false,
        }
    }

    fn now_ms(&self) -> i64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Counts one response (or a stream that ended without one) for stats and guards.
    fn account(&self, status: u32, local_reply: bool) {
        let plan = &self.worker.plan;
        let latency = self
            .started_ms
            .map(|start| (self.now_ms() - start).max(0) as u64);
        let mut tally = self.worker.tally.borrow_mut();
        let mut deltas = self.worker.guard_deltas.borrow_mut();
        for &(route, version) in &self.routed {
            tally.count_response(route, version, status, latency);
            let r = &plan.routes[route];
            let (
                Some(guard),
                Strategy::Progressive {
                    baseline, target, ..
                },
            ) = (&r.guard, &r.strategy)
            else {
                continue;
            };
            let side = if version == *target {
                CANARY
            } else if version == *baseline {
                STABLE
            } else {
                continue;
            };
            let error = status >= 500 || (guard.count_local_replies && local_reply);
            deltas[route].sides[side].record(error, latency.map(latency_bucket));
        }
    }
}

impl Context for SluiceHttp {}

impl HttpContext for SluiceHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let worker = Rc::clone(&self.worker);
        let plan = &worker.plan;
        // One hostcall for every header: cheaper than one per name the plan reads; read in
        // place, without a copy per header.
        let map = HeaderMap::request();
        let pairs = map.pairs();
        let source = if plan.reads_source_address {
            self.get_property(vec!["source", "address"])
        } else {
            None
        };
        let mut req = Request::from_pairs(plan, &pairs);
        req.source = source.as_deref();
        req.entropy = self.entropy;
        if plan.reads_clock || !plan.routes.is_empty() {
            req.now_ms = self.now_ms();
        }
        let unleash = worker.unleash.borrow().clone();
        let decision =
            engine::evaluate_with(plan, &req, &worker.controls.borrow(), unleash.as_deref());
        worker.tally.borrow_mut().count_decision(&decision);
        if !decision.routes.is_empty() {
            self.routed = decision
                .routes
                .iter()
                .map(|r| (r.route, r.version))
                .collect();
            self.started_ms = Some(req.now_ms);
        }
        let baggage = plan
            .baggage_header
            .and_then(|i| req.headers.get(i).copied().flatten());
        let writes = decision.request_headers(plan, baggage);

        let mut changed = false;
        for owned in &plan.owned_headers {
            let incoming = pairs.iter().any(|(name, _)| *name == owned.as_str());
            if incoming && !writes.iter().any(|(name, _)| *name == owned.as_str()) {
                self.set_http_request_header(owned, None);
                changed = true;
            }
        }
        for (name, value) in &writes {
            let same = pairs
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .eq([value.as_bytes()]);
            if !same {
                self.set_http_request_header(name, Some(value));
                changed = true;
            }
        }
        if changed {
            // Envoy picked the route before this filter ran; make it look again.
            // Hosts without the function (or older ABIs) answer NotFound: ignore.
            let _ = self.call_foreign_function("clear_route_cache", None);
        }
        self.response_headers = response_headers(plan, &decision);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            self.add_http_response_header(&name, &value);
        }
        if !self.routed.is_empty() && !self.responded {
            self.responded = true;
            let status = self
                .get_http_response_header_bytes(":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u32>().ok())
                .unwrap_or(0);
            let counts_local = self.routed.iter().any(|(r, _)| {
                self.worker.plan.routes[*r]
                    .guard
                    .as_ref()
                    .is_some_and(|g| g.count_local_replies)
            });
            // Envoy marks its own replies (timeouts, no healthy upstream, …)
            // with details other than `via_upstream`.
            let local_reply = counts_local
                && status < 500
                && self
                    .get_property(vec!["response", "code_details"])
                    .is_some_and(|d| d != b"via_upstream");
            self.account(status, local_reply);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // A stream reset before any response still counts, as a failure.
        if !self.routed.is_empty() && !self.responded {
            self.responded = true;
            self.account(0, true);
        }
    }
}

fn response_headers(plan: &Plan, decision: &Decision) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = decision
        .set_cookies(plan)
        .into_iter()
        .map(|c| ("set-cookie".to_string(), c))
        .collect();
    if let (true, Some(name)) = (
        decision.tester,
        plan.overrides
            .as_ref()
            .and_then(|o| o.debug_header.as_ref()),
    ) {
        out.push((name.clone(), decision.explain(plan)));
    }
    out
}
